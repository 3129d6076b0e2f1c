import { readFileSync } from 'node:fs';
import { ConfigError, PayError } from '#common';
import type { ChannelInstanceConfig, RawNotify } from '../channel.interface.js';
import { AlipayPlusChannel } from './alipayplus.channel.js';
import { isGrantRefusal } from './alipayplus.mapper.js';
import { AlipayPlusProvider } from './alipayplus.provider.js';
import { AlipayPlusSigner } from './alipayplus.signer.js';

const fixture = (name: string): string => readFileSync(new URL(`./__fixtures__/${name}`, import.meta.url), 'utf8');
const PRIVATE_B64 = fixture('app-private-key-pkcs8.b64').trim();
const PUBLIC_B64 = fixture('app-public-key-spki.b64').trim();
const CLIENT_ID = 'SANDBOX_5X00000000000000';

function instance(config: Record<string, unknown> = {}): ChannelInstanceConfig {
  return {
    fullName: 'pays.testWallet',
    type: 'pays.AlipayPlusType',
    title: 'Test wallet',
    isDefault: true,
    config: {
      clientId: CLIENT_ID,
      privateKey: PRIVATE_B64,
      // The fixture key plays the wallet too, so a notify signed below verifies.
      walletPublicKey: PUBLIC_B64,
      gatewayUrl: 'http://127.0.0.1:9/gw/',
      ...config,
    },
  };
}

const provider = new AlipayPlusProvider();
const channel = provider.createInstance(instance());
const wallet = new AlipayPlusSigner({ clientId: CLIENT_ID, privateKey: PRIVATE_B64, walletPublicKey: PUBLIC_B64 });

function signedNotify(body: unknown, opts: { path?: string; headerCase?: 'lower' | 'title' } = {}): RawNotify {
  const text = JSON.stringify(body);
  const path = opts.path ?? '/api/v1/notify/alipayplus';
  const h = wallet.signRequest('POST', path, '2024-01-01T12:00:05+08:00', text);
  const headers: Record<string, string> =
    opts.headerCase === 'title'
      ? { 'Content-Type': 'application/json', ...h }
      : {
          'content-type': 'application/json',
          'client-id': h['Client-Id'],
          'request-time': h['Request-Time'],
          signature: h.Signature,
        };
  return { headers, body: Buffer.from(text, 'utf8'), method: 'POST', path };
}

const paidBody = {
  paymentId: '20240101120000123456789',
  paymentRequestId: 'att_1',
  paymentResult: { resultCode: 'SUCCESS', resultStatus: 'S', resultMessage: 'success' },
  paymentAmount: { currency: 'KRW', value: '12000' },
  paymentTime: '2024-01-01T12:00:04+08:00',
};

describe('AlipayPlusProvider', () => {
  it('builds an instance with the CASHIER pay type and the Client-Id as notify key', () => {
    expect(provider.type).toBe('pays.AlipayPlusType');
    expect(channel).toBeInstanceOf(AlipayPlusChannel);
    expect(channel).toMatchObject({
      type: 'pays.AlipayPlusType',
      fullName: 'pays.testWallet',
      notifyKey: CLIENT_ID,
      payTypes: ['CASHIER'],
    });
    expect(channel.resolvePayType('pc')).toBe('CASHIER');
    expect(channel.resolvePayType('mobile')).toBe('CASHIER');
    expect(channel.resolvePayType('NATIVE')).toBeUndefined();
    expect(channel.outTradeNoFor('D20240101120000123456', 'attempt-uuid')).toBe('attempt-uuid');
  });

  it.each([
    ['clientId', undefined, 'config.clientId is missing'],
    ['clientId', 42, 'config.clientId must be a non-empty string'],
    ['clientId', 'has space', 'config.clientId must not contain'],
    ['privateKey', undefined, 'config.privateKey is missing'],
    ['privateKey', 'c2VjcmV0LXByaXZhdGUta2V5LXZhbHVl', 'config.privateKey is not a PEM'],
    ['privateKey', PUBLIC_B64, 'config.privateKey is not a PEM'],
    ['walletPublicKey', undefined, 'config.walletPublicKey is missing'],
    ['walletPublicKey', 'c2VjcmV0LXB1YmxpYy1rZXktdmFsdWU=', 'config.walletPublicKey is not a PEM'],
    ['gatewayUrl', undefined, 'config.gatewayUrl is missing'],
    ['gatewayUrl', 'not a url', 'config.gatewayUrl is not a URL'],
    ['gatewayUrl', 'ftp://wallet.example', 'config.gatewayUrl must be an http(s) URL'],
    ['keyVersion', 'v1', 'config.keyVersion must be a positive integer'],
    ['productCode', '  ', 'config.productCode must be a non-empty string'],
    ['customerBelongsTo', 7, 'config.customerBelongsTo must be a non-empty string'],
  ])('refuses %s = %p naming the instance and field, never the value', (field, value, message) => {
    let err: unknown;
    try {
      provider.createInstance(instance({ [field]: value }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const text = (err as Error).message;
    expect(text).toContain('pays.testWallet');
    expect(text).toContain(message);
    if (typeof value === 'string' && value.length > 5) expect(text).not.toContain(value);
  });

  it('accepts the optional fields, a numeric keyVersion and PEM keys', () => {
    const c = provider.createInstance(
      instance({
        keyVersion: 2,
        customerBelongsTo: 'GCASH',
        productCode: 'CASHIER_PAYMENT',
        privateKey: fixture('app-private-key.pem'),
        walletPublicKey: fixture('app-public-key.pem'),
      }),
    );
    expect(c.notifyKey).toBe(CLIENT_ID);
  });

  it('reads the notify key from Client-Id in any case, and rejects with the §3.6 failure JSON', () => {
    const raw = (headers: Record<string, string>): RawNotify => ({
      headers,
      body: Buffer.from('{}'),
      method: 'POST',
      path: '/n',
    });
    expect(provider.notifyKeyOf(raw({ 'client-id': 'A' }))).toBe('A');
    expect(provider.notifyKeyOf(raw({ 'Client-Id': 'B' }))).toBe('B');
    expect(provider.notifyKeyOf(raw({ 'CLIENT-ID': ' C ' }))).toBe('C');
    expect(provider.notifyKeyOf(raw({}))).toBeUndefined();
    expect(provider.notifyKeyOf(raw({ 'client-id': '' }))).toBeUndefined();
    const reply = provider.rejectReply();
    expect(reply.contentType).toBe('application/json');
    expect(JSON.parse(reply.body)).toMatchObject({ result: { resultStatus: 'F' } });
  });
});

describe('AlipayPlusChannel.verifyNotify', () => {
  it.each(['lower', 'title'] as const)('verifies a signed paid notify (%s-case headers)', async (headerCase) => {
    const n = await channel.verifyNotify(signedNotify(paidBody, { headerCase }));
    expect(n).toEqual({
      kind: 'payment',
      dedupeKey: '20240101120000123456789:S',
      outTradeNo: 'att_1',
      channelTradeNo: '20240101120000123456789',
      status: 'paid',
      amount: { minor: 12000, currency: 'KRW' },
      paidAt: new Date('2024-01-01T04:00:04Z'),
      raw: 'S/SUCCESS',
    });
  });

  it('maps F to failed', async () => {
    const body = { paymentRequestId: 'att_2', paymentResult: { resultCode: 'PROCESS_FAIL', resultStatus: 'F' } };
    await expect(channel.verifyNotify(signedNotify(body))).resolves.toMatchObject({
      status: 'failed',
      dedupeKey: 'req:att_2:F',
    });
  });

  it.each<[string, (r: RawNotify) => RawNotify]>([
    ['another instance', (r) => ({ ...r, headers: { ...r.headers, 'client-id': 'OTHER' } })],
    [
      'no Client-Id',
      (r) => ({
        ...r,
        headers: { signature: r.headers['signature'] ?? '', 'request-time': r.headers['request-time'] ?? '' },
      }),
    ],
    ['no signature', (r) => ({ ...r, headers: { ...r.headers, signature: '' } })],
    ['no Request-Time', (r) => ({ ...r, headers: { ...r.headers, 'request-time': '' } })],
    ['another path', (r) => ({ ...r, path: '/api/v1/notify/alipayplus?x=1' })],
    ['a changed body', (r) => ({ ...r, body: Buffer.from(r.body.toString().replace('12000', '1')) })],
    ['a changed time', (r) => ({ ...r, headers: { ...r.headers, 'request-time': '2024-01-01T12:00:06+08:00' } })],
  ])('refuses %s with INVALID_PARAMS', async (_label, mutate) => {
    let err: unknown;
    try {
      await channel.verifyNotify(mutate(signedNotify(paidBody)));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PayError);
    expect((err as PayError).code).toBe('INVALID_PARAMS');
  });

  it('refuses a correctly signed body that is not a usable notify', async () => {
    for (const body of [
      [1, 2],
      { paymentResult: paidBody.paymentResult },
      { ...paidBody, paymentAmount: { currency: 'KRW', value: '12000.5' } },
    ]) {
      await expect(channel.verifyNotify(signedNotify(body))).rejects.toMatchObject({ code: 'INVALID_PARAMS' });
    }
  });

  it('replies with the §3.6 JSON', () => {
    expect(channel.notifyReply('accepted')).toEqual({
      status: 200,
      contentType: 'application/json',
      body: '{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}',
    });
    expect(JSON.parse(channel.notifyReply('rejected').body).result.resultStatus).toBe('F');
  });
});

describe('AlipayPlusChannel.createPayment input checks (no network reached)', () => {
  const base = {
    orderId: 'D20240101120000123456',
    attemptId: 'att_x',
    outTradeNo: 'att_x',
    subject: 's',
    amount: { minor: 100, currency: 'USD' },
    payType: 'CASHIER',
    expireTime: new Date(Date.now() + 60_000),
    notifyUrl: 'https://pay.example/api/v1/notify/alipayplus',
  };

  it('needs an authCode or a customerId this server has an authorization for', async () => {
    await expect(channel.createPayment(base)).rejects.toMatchObject({ code: 'INVALID_PARAMS' });
    await expect(channel.createPayment({ ...base, customerId: '2188' })).rejects.toMatchObject({
      code: 'INVALID_PARAMS',
    });
  });

  it('refuses an unknown payType, a fractional amount and an unsupported currency', async () => {
    await expect(channel.createPayment({ ...base, payType: 'JSAPI', authCode: 'x' })).rejects.toMatchObject({
      code: 'UNKNOWN_PAY_TYPE',
    });
    await expect(
      channel.createPayment({ ...base, amount: { minor: 1.5, currency: 'USD' }, authCode: 'x' }),
    ).rejects.toMatchObject({
      code: 'INVALID_AMOUNT',
    });
    await expect(
      channel.createPayment({ ...base, amount: { minor: 100, currency: 'XXX' }, authCode: 'x' }),
    ).rejects.toMatchObject({
      code: 'INVALID_PARAMS',
    });
  });

  it("knows which applyToken refusals are the user's (authorize again) and which are the channel's", () => {
    for (const code of ['EXPIRED_CODE', 'USED_REFRESH_TOKEN']) expect(isGrantRefusal(code)).toBe(true);
    for (const code of [
      'INVALID_SIGNATURE',
      'INVALID_AUTH_CLIENT',
      'ACCESS_DENIED',
      'PARAM_ILLEGAL',
      'UNKNOWN_EXCEPTION',
    ]) {
      expect(isGrantRefusal(code)).toBe(false);
    }
  });
});
