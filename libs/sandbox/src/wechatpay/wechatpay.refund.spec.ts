import { createDecipheriv, createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, PayError } from '#common';
import {
  WechatPayProvider,
  type AttemptInput,
  type ChannelInstanceConfig,
  type PaymentChannel,
  type RefundInput,
  type VerifiedNotify,
} from '#channels';
import { WECHAT_SANDBOX_CLIENT_PFX_BASE64, WECHAT_SANDBOX_STRANGER_PFX_BASE64 } from './wechatpay.sandbox-certs.js';
import { startWechatPaySandbox, type WechatPaySecapiListener, type WechatPaySimulator } from './wechatpay.simulator.js';
import { simParseXml } from './wechatpay.wire.js';

/**
 * WeChat Pay v2 refunds between the real WechatPayChannel and the simulator: secapi/pay/refund over
 * mutual TLS with the client certificate the sandbox issued, refundquery, and the encrypted refund
 * notify (checked by the channel, and decrypted independently here with node:crypto).
 */

interface Received {
  readonly body: string;
  readonly verified?: VerifiedNotify;
  readonly error?: string;
}

let plain: Server;
let merchant: Server;
let sim: WechatPaySimulator;
let secapi: WechatPaySecapiListener;
let instance: ChannelInstanceConfig;
let channel: PaymentChannel;
let payNotifyUrl: string;
let refundNotifyUrl: string;
const received: Received[] = [];

async function readAll(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function onNotify(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readAll(req);
  try {
    const verified = await channel.verifyNotify({
      headers: {},
      body: Buffer.from(body),
      method: 'POST',
      path: req.url ?? '/',
    });
    received.push({ body, verified });
    const r = channel.notifyReply('accepted');
    res.writeHead(r.status, { 'content-type': r.contentType }).end(r.body);
  } catch (e) {
    received.push({ body, error: e instanceof Error ? e.message : String(e) });
    const r = channel.notifyReply('rejected');
    res.writeHead(r.status, { 'content-type': r.contentType }).end(r.body);
  }
}

beforeAll(async () => {
  const holder: { sim?: WechatPaySimulator } = {};
  plain = createServer((req, res) => holder.sim?.listener(req, res));
  merchant = createServer((req, res) => void onNotify(req, res));
  await Promise.all([
    new Promise<void>((r) => plain.listen(0, '127.0.0.1', r)),
    new Promise<void>((r) => merchant.listen(0, '127.0.0.1', r)),
  ]);
  const sandbox = await startWechatPaySandbox({
    baseUrl: `http://127.0.0.1:${(plain.address() as AddressInfo).port}`,
    notifyRetryDelaysMs: [40, 40],
  });
  sim = sandbox.simulator;
  holder.sim = sim;
  secapi = sandbox.secapi;
  instance = sandbox.instance;
  channel = new WechatPayProvider().createInstance(instance);
  const m = `http://127.0.0.1:${(merchant.address() as AddressInfo).port}`;
  payNotifyUrl = `${m}/api/v1/notify/wechatpay`;
  refundNotifyUrl = `${m}/api/v1/notify/wechatpay/refund`;
});

afterAll(async () => {
  sim.close();
  secapi.close();
  for (const s of [plain, merchant]) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

beforeEach(() => {
  received.length = 0;
  sim.setRefundDelayMs(0);
});

let seq = 0;
async function paid(minor = 1000): Promise<AttemptInput & { channelTradeNo: string }> {
  seq += 1;
  const id = `WRF${Date.now()}${seq}`;
  const input: AttemptInput = {
    orderId: id,
    attemptId: `a-${id}`,
    outTradeNo: id,
    subject: 'Refund test',
    amount: { minor, currency: 'CNY' },
    payType: 'NATIVE',
    expireTime: new Date(Date.now() + 30 * 60_000),
    notifyUrl: payNotifyUrl,
  };
  await channel.createPayment(input);
  await sim.pay(id);
  await until(() => received.some((r) => r.verified?.outTradeNo === id));
  received.length = 0;
  return { ...input, channelTradeNo: sim.trade(id)?.transactionId as string };
}

function refundOf(p: AttemptInput & { channelTradeNo: string }, refundId: string, minor: number): RefundInput {
  return {
    refundId,
    orderId: p.orderId,
    payment: { ...p, createdAt: new Date() },
    amount: { minor, currency: 'CNY' },
    reason: 'returned',
    notifyUrl: refundNotifyUrl,
  };
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** req_info decrypted as the fact sheet says (§2.13), written here apart from the channel and the simulator. */
function decryptIndependently(reqInfo: string, apiKey: string): string {
  const key = createHash('md5').update(apiKey).digest('hex'); // lower-case hex: 32 ASCII bytes
  const d = createDecipheriv('aes-256-ecb', Buffer.from(key, 'utf8'), null);
  return Buffer.concat([d.update(Buffer.from(reqInfo, 'base64')), d.final()]).toString('utf8');
}

const refundNews = (): Received[] => received.filter((r) => r.verified?.kind === 'refund');

describe('WeChat Pay refunds against the simulator (mutual TLS)', () => {
  it('a full refund over mTLS succeeds; the encrypted refund notify decrypts and verifies', async () => {
    const p = await paid(1000);
    const snap = await channel.refund(refundOf(p, `${p.orderId}R1`, 1000));
    expect(snap).toMatchObject({ status: 'success', raw: 'SUCCESS', amount: { minor: 1000, currency: 'CNY' } });
    expect(snap.channelRefundNo).toBe(sim.refundsOf(p.outTradeNo)[0]?.refundId);
    expect(snap.finishedAt).toBeInstanceOf(Date);

    await until(() => refundNews().length === 1);
    const n = refundNews()[0] as Received;
    const outer = await simParseXml(n.body);
    expect(outer?.['sign']).toBeUndefined(); // refund notifies carry no sign (§2.8)
    const inner = decryptIndependently(outer?.['req_info'] ?? '', instance.config['apiKey'] as string);
    expect(inner.startsWith('<root>')).toBe(true);
    expect(inner).toContain(`<out_refund_no><![CDATA[${p.orderId}R1]]></out_refund_no>`);
    expect(inner).toContain('<refund_status><![CDATA[SUCCESS]]></refund_status>');
    expect(n.verified).toMatchObject({
      kind: 'refund',
      outTradeNo: p.outTradeNo,
      channelTradeNo: p.channelTradeNo,
      refund: { refundId: `${p.orderId}R1`, status: 'success', amount: { minor: 1000, currency: 'CNY' } },
    });
    // The trade reads REFUND at orderquery, which is still a paid trade.
    expect((await channel.queryPayment({ ...p, createdAt: new Date() })).status).toBe('paid');
  });

  it('two partial refunds; the same refundId twice is one refund; another amount under it is INVALID_REQUEST', async () => {
    const p = await paid(1000);
    expect((await channel.refund(refundOf(p, `${p.orderId}A`, 300))).status).toBe('success');
    expect((await channel.refund(refundOf(p, `${p.orderId}B`, 200))).status).toBe('success');
    expect((await channel.refund(refundOf(p, `${p.orderId}A`, 300))).status).toBe('success');
    expect(sim.refundsOf(p.outTradeNo).map((r) => r.refundFee)).toEqual([300, 200]);
    expect(await channel.refund(refundOf(p, `${p.orderId}A`, 301))).toMatchObject({
      status: 'failed',
      failureCode: 'INVALID_REQUEST',
    });
  });

  it('an over-refund is failed (ERROR) and refunds nothing', async () => {
    const p = await paid(1000);
    await channel.refund(refundOf(p, `${p.orderId}A`, 800));
    expect(await channel.refund(refundOf(p, `${p.orderId}B`, 201))).toMatchObject({
      status: 'failed',
      failureCode: 'ERROR',
    });
    expect(sim.refundsOf(p.outTradeNo)).toHaveLength(1);
  });

  it('a delayed refund is pending, then success through refundquery; an unknown refund is not_found', async () => {
    const p = await paid(1000);
    sim.setRefundDelayMs(200);
    const input = refundOf(p, `${p.orderId}D`, 400);
    const first = await channel.refund(input);
    expect(first).toMatchObject({ status: 'pending', raw: 'PROCESSING' });
    let last = first;
    const end = Date.now() + 5000;
    while (last.status === 'pending' && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 50));
      last = await channel.queryRefund(input);
    }
    expect(last).toMatchObject({ status: 'success', amount: { minor: 400, currency: 'CNY' } });
    expect((await channel.queryRefund(refundOf(p, `${p.orderId}NEVER`, 1))).status).toBe('not_found');
    await until(() => refundNews().length === 1);
  });

  it('forced failures: NOTENOUGH is failed; REFUNDCLOSE ends failed; SYSTEMERROR throws and a retry refunds once', async () => {
    const p = await paid(1000);
    sim.failNextRefund();
    expect(await channel.refund(refundOf(p, `${p.orderId}F`, 100))).toMatchObject({
      status: 'failed',
      failureCode: 'NOTENOUGH',
    });
    sim.closeNextRefund();
    const closed = await channel.refund(refundOf(p, `${p.orderId}C`, 100));
    expect(closed).toMatchObject({ status: 'failed', failureCode: 'REFUNDCLOSE' });
    await until(() => refundNews().some((r) => r.verified?.refund?.status === 'failed'));

    sim.failNextRefund('SYSTEMERROR');
    const input = refundOf(p, `${p.orderId}S`, 100);
    const err = await channel.refund(input).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PayError);
    expect((err as PayError).code).toBe('CHANNEL_ERROR');
    expect((await channel.queryRefund(input)).status).toBe('not_found');
    expect((await channel.refund(input)).status).toBe('success');
    expect((await channel.refund(input)).status).toBe('success');
    expect(sim.refundsOf(p.outTradeNo).filter((r) => r.outRefundNo === `${p.orderId}S`)).toHaveLength(1);
  });

  it('no refund without the sandbox-issued certificate; the cashier page lists refunds', async () => {
    const p = await paid(1000);
    const { pfx: _p, pfxPassword: _w, ...noCert } = instance.config;
    const bare = new WechatPayProvider().createInstance({ ...instance, config: noCert });
    const err = await bare.refund(refundOf(p, `${p.orderId}N`, 100)).catch((e: unknown) => e);
    expect((err as PayError).code).toBe('CHANNEL_ERROR');
    expect((err as PayError).message).toContain('client certificate');

    const stranger = new WechatPayProvider().createInstance({
      ...instance,
      config: { ...instance.config, pfx: WECHAT_SANDBOX_STRANGER_PFX_BASE64 },
    });
    const refused = await stranger.refund(refundOf(p, `${p.orderId}X`, 100)).catch((e: unknown) => e);
    expect((refused as PayError).code).toBe('CHANNEL_ERROR'); // the TLS handshake is refused
    // Over plain HTTP the simulator refuses secapi outright.
    const res = await fetch(`${instance.config['baseUrl'] as string}/secapi/pay/refund`, {
      method: 'POST',
      body: '<xml></xml>',
    });
    expect((await simParseXml(await res.text()))?.['return_code']).toBe('FAIL');
    expect(sim.refundsOf(p.outTradeNo)).toHaveLength(0);

    await channel.refund(refundOf(p, `${p.orderId}OK`, 100));
    const html = await (await fetch(`${instance.config['baseUrl'] as string}/cashier/${p.outTradeNo}`)).text();
    expect(html).toContain(`${p.orderId}OK`);
  });

  it("an instance's refunds share one mutual-TLS connection (keep-alive)", async () => {
    const p = await paid(1000);
    const fresh = new WechatPayProvider().createInstance(instance); // its own agent: no pooled connection yet
    let handshakes = 0;
    const count = (): void => void (handshakes += 1);
    secapi.server.on('secureConnection', count);
    try {
      expect((await fresh.refund(refundOf(p, `${p.orderId}K1`, 100))).status).toBe('success');
      expect((await fresh.refund(refundOf(p, `${p.orderId}K2`, 200))).status).toBe('success');
    } finally {
      secapi.server.off('secureConnection', count);
    }
    expect(handshakes).toBe(1);
    expect(sim.refundsOf(p.outTradeNo).map((r) => r.refundFee)).toEqual([100, 200]);
  });

  it('a refund notify encrypted under another key is refused', async () => {
    const p = await paid(1000);
    await channel.refund(refundOf(p, `${p.orderId}K`, 100));
    await until(() => refundNews().length === 1);
    const body = (refundNews()[0] as Received).body;
    const other = new WechatPayProvider().createInstance({
      ...instance,
      config: { ...instance.config, apiKey: 'Z'.repeat(32) },
    });
    await expect(
      other.verifyNotify({ headers: {}, body: Buffer.from(body), method: 'POST', path: '/' }),
    ).rejects.toThrow('does not decrypt');
  });
});

describe('WeChat Pay client certificate config', () => {
  const base = (config: Record<string, unknown>): ChannelInstanceConfig => ({
    fullName: 'pays.myWechatPay',
    type: 'pays.WechatPayType',
    title: 'WeChat',
    isDefault: true,
    config: { appId: 'wx0000000000000001', mchId: '1900000109', apiKey: 'A'.repeat(32), ...config },
  });

  const parseWechatPaySettings = (inst: ChannelInstanceConfig): unknown => new WechatPayProvider().createInstance(inst);

  it('opens the PKCS#12 with the mch_id as the default password', () => {
    expect(() => parseWechatPaySettings(base({ pfx: WECHAT_SANDBOX_CLIENT_PFX_BASE64 }))).not.toThrow();
    // Another mch_id without pfxPassword: the default password is that mch_id, which does not open it.
    expect(() => parseWechatPaySettings(base({ mchId: '1900000110', pfx: WECHAT_SANDBOX_CLIENT_PFX_BASE64 }))).toThrow(
      'config.pfx does not open',
    );
  });

  it('a certificate that does not open is a ConfigError naming the instance and field, never the value', () => {
    const run = (): unknown =>
      parseWechatPaySettings(base({ pfx: WECHAT_SANDBOX_CLIENT_PFX_BASE64, pfxPassword: 'wrong-pass' }));
    expect(run).toThrow(ConfigError);
    expect(run).toThrow(/pays\.myWechatPay: config\.pfx does not open/);
    try {
      run();
    } catch (e) {
      expect((e as Error).message).not.toContain('wrong-pass');
      expect((e as Error).message).not.toContain(WECHAT_SANDBOX_CLIENT_PFX_BASE64.slice(0, 20));
    }
    expect(() => parseWechatPaySettings(base({ pfxPath: '/nonexistent/apiclient_cert.p12' }))).toThrow(
      'config.pfxPath cannot be read',
    );
    expect(() => parseWechatPaySettings(base({ pfx: WECHAT_SANDBOX_CLIENT_PFX_BASE64, pfxPath: '/x' }))).toThrow(
      'not both',
    );
    expect(() =>
      parseWechatPaySettings(base({ pfx: WECHAT_SANDBOX_CLIENT_PFX_BASE64, secapiBaseUrl: 'http://127.0.0.1:1' })),
    ).toThrow('secapiBaseUrl');
    expect(() => parseWechatPaySettings(base({ caCert: 'not a pem' }))).toThrow('config.caCert');
  });

  it('an instance without a certificate starts (its refunds throw, see above)', () => {
    expect(() => parseWechatPaySettings(base({}))).not.toThrow();
  });
});
