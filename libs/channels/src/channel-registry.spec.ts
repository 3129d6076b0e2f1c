import { ConfigError, PayError } from '#common';
import { ChannelRegistry } from './channel-registry.js';
import type {
  ChannelInstanceConfig,
  ChannelProvider,
  ChannelType,
  PaymentChannel,
  RawNotify,
} from './channel.interface.js';

/** A minimal provider: the registry's own behaviour is under test, not a channel's. */
function provider(type: ChannelType, keyField = 'appId'): ChannelProvider {
  return {
    type,
    createInstance(inst: ChannelInstanceConfig): PaymentChannel {
      const key = inst.config[keyField];
      if (typeof key !== 'string') throw new ConfigError(`${inst.fullName}: field "${keyField}" is required`);
      return {
        type,
        fullName: inst.fullName,
        title: inst.title,
        payTypes: ['X'],
        notifyKey: key,
        resolvePayType: (p) => (p === 'X' ? p : undefined),
        outTradeNoFor: (o) => o,
        createPayment: () => Promise.reject(new Error('unused')),
        queryPayment: () => Promise.reject(new Error('unused')),
        closePayment: () => Promise.reject(new Error('unused')),
        refund: () => Promise.reject(new Error('unused')),
        queryRefund: () => Promise.reject(new Error('unused')),
        verifyNotify: () => Promise.reject(new Error('unused')),
        notifyReply: () => ({ status: 200, contentType: 'text/plain', body: 'success' }),
      };
    },
    notifyKeyOf: (raw: RawNotify) => new URLSearchParams(raw.body.toString()).get('app_id') ?? undefined,
    rejectReply: () => ({ status: 200, contentType: 'text/plain', body: 'fail' }),
  };
}

const inst = (fullName: string, type: ChannelType, appId: string, isDefault = false): ChannelInstanceConfig => ({
  fullName,
  type,
  title: fullName,
  isDefault,
  config: { appId },
});

describe('ChannelRegistry', () => {
  const providers = [provider('pays.AliPayType'), provider('pays.WechatPayType')];

  it('maps instances by fullName and a type to its default instance', () => {
    const sut = new ChannelRegistry(providers, [
      inst('pays.ali1', 'pays.AliPayType', 'A1'),
      inst('pays.ali2', 'pays.AliPayType', 'A2', true),
      inst('pays.wx', 'pays.WechatPayType', 'W1'),
    ]);
    expect(sut.resolve('pays.ali1').fullName).toBe('pays.ali1');
    expect(sut.resolve('pays.AliPayType').fullName).toBe('pays.ali2');
    expect(sut.resolve('pays.WechatPayType').fullName).toBe('pays.wx'); // the only one of its type
    expect(sut.size).toBe(3);
  });

  it('answers CHANNEL_NOT_FOUND for unknown names and types without an instance', () => {
    const sut = new ChannelRegistry(providers, [
      inst('pays.ali1', 'pays.AliPayType', 'A1'),
      inst('pays.ali2', 'pays.AliPayType', 'A2'),
    ]);
    for (const name of ['pays.nope', 'pays.AlipayPlusType', 'pays.AliPayType' /* two, no default */]) {
      let caught: unknown;
      try {
        sut.resolve(name);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(PayError);
      expect((caught as PayError).code).toBe('CHANNEL_NOT_FOUND');
    }
  });

  it('never makes a sandbox instance the default beside a real instance of its type', () => {
    const sandbox = (fullName: string, type: ChannelType, appId: string): ChannelInstanceConfig => ({
      ...inst(fullName, type, appId, true),
      sandbox: true,
    });
    // A real instance (not marked default) beside a sandbox one marked default: the real one wins.
    const sut = new ChannelRegistry(providers, [
      inst('pays.realAli', 'pays.AliPayType', 'R1'),
      sandbox('pays.aliPayment', 'pays.AliPayType', 'S1'),
      sandbox('pays.myWechatPay', 'pays.WechatPayType', 'S2'),
    ]);
    expect(sut.resolve('pays.AliPayType').fullName).toBe('pays.realAli');
    expect(sut.resolve('pays.aliPayment').fullName).toBe('pays.aliPayment'); // still reachable by name
    expect(sut.resolve('pays.WechatPayType').fullName).toBe('pays.myWechatPay'); // no real one: the sandbox's
    // Two real instances without a marked default: no default at all rather than the simulator.
    const two = new ChannelRegistry(providers, [
      inst('pays.r1', 'pays.AliPayType', 'R1'),
      inst('pays.r2', 'pays.AliPayType', 'R2'),
      sandbox('pays.aliPayment', 'pays.AliPayType', 'S1'),
    ]);
    expect(() => two.resolve('pays.AliPayType')).toThrow(PayError);
    // A real default beside a sandbox default is not a conflict.
    const both = new ChannelRegistry(providers, [
      inst('pays.r1', 'pays.AliPayType', 'R1', true),
      inst('pays.r2', 'pays.AliPayType', 'R2'),
      sandbox('pays.aliPayment', 'pays.AliPayType', 'S1'),
    ]);
    expect(both.resolve('pays.AliPayType').fullName).toBe('pays.r1');
  });

  it('finds the instance a notify names', () => {
    const sut = new ChannelRegistry(providers, [
      inst('pays.ali1', 'pays.AliPayType', 'A1'),
      inst('pays.ali2', 'pays.AliPayType', 'A2'),
    ]);
    const raw = (body: string): RawNotify => ({ headers: {}, body: Buffer.from(body), method: 'POST', path: '/n' });
    expect(sut.findForNotify('pays.AliPayType', raw('app_id=A2&x=1'))?.fullName).toBe('pays.ali2');
    expect(sut.findForNotify('pays.AliPayType', raw('app_id=ZZ'))).toBeUndefined();
    expect(sut.findForNotify('pays.WechatPayType', raw('app_id=A1'))).toBeUndefined();
  });

  it.each([
    [
      'a duplicate instance',
      [inst('pays.a', 'pays.AliPayType', '1'), inst('pays.a', 'pays.AliPayType', '2')],
      'pays.a: configured twice',
    ],
    [
      'two defaults of one type',
      [inst('pays.a', 'pays.AliPayType', '1', true), inst('pays.b', 'pays.AliPayType', '2', true)],
      'already the default',
    ],
    ['a type without a provider', [inst('pays.w', 'pays.AlipayPlusType', '1')], 'no provider'],
    [
      'an instance named like a type',
      [inst('pays.AliPayType', 'pays.AliPayType', '1')],
      'may not be named after a channel type',
    ],
    [
      'a config error of the provider',
      [{ ...inst('pays.a', 'pays.AliPayType', '1'), config: {} }],
      'pays.a: field "appId"',
    ],
  ])('fails at startup on %s', (_name, instances, message) => {
    expect(() => new ChannelRegistry(providers, instances)).toThrow(message);
  });
});
