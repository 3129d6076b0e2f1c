import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import wechatpay from 'wechatpay-axios-plugin';
import { PayError } from '#common';
import {
  WechatPayProvider,
  type AttemptInput,
  type AttemptRef,
  type PaymentChannel,
  type VerifiedNotify,
} from '#channels';
import {
  WECHAT_SIM_CLOSE_TOO_EARLY_ERR_CODE,
  WechatPaySimulator,
  createWechatPaySandbox,
} from './wechatpay.simulator.js';
import { simParseXml, simXml } from './wechatpay.wire.js';
import { mounted } from '../../../../test/utils/spec-helpers.js';

const { Hash } = wechatpay;
type SignType = 'MD5' | 'HMAC-SHA256';

async function listen(handler: RequestListener): Promise<{ server: Server; base: string }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((r) => server.close(() => r()));
}

async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The merchant's notify endpoint: verifies with the real channel; rejects each order's first notify, then accepts. */
class NotifyReceiver {
  server!: Server;
  url = '';
  channel!: PaymentChannel;
  received: { outTradeNo: string; verified?: VerifiedNotify; error?: unknown; replied: 'accepted' | 'rejected' }[] = [];

  async start(): Promise<void> {
    const { server, base } = await listen((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void (async () => {
          const body = Buffer.concat(chunks);
          let verified: VerifiedNotify | undefined;
          let error: unknown;
          try {
            verified = await this.channel.verifyNotify({ headers: {}, body, method: 'POST', path: req.url ?? '/' });
          } catch (err) {
            error = err;
          }
          const outTradeNo = verified?.outTradeNo ?? '?';
          const seenBefore = this.received.some((r) => r.outTradeNo === outTradeNo);
          const replied = verified && seenBefore ? 'accepted' : 'rejected';
          this.received.push({ outTradeNo, ...(verified ? { verified } : {}), error, replied });
          const reply = this.channel.notifyReply(replied);
          res.writeHead(reply.status, { 'content-type': reply.contentType }).end(reply.body);
        })();
      });
    });
    this.server = server;
    this.url = `${base}/api/v1/notify/pays.myWechatPay`;
  }
}

interface Rig {
  sim: WechatPaySimulator;
  channel: PaymentChannel;
  base: string;
  apiKey: string;
  appId: string;
  mchId: string;
  close(): Promise<void>;
}

async function rig(opts: { minCloseAgeMs?: number; signType?: SignType } = {}): Promise<Rig> {
  const holder: { sim?: WechatPaySimulator } = {};
  const { server, base } = await listen((req, res) => holder.sim?.listener(req, res));
  const sandbox = createWechatPaySandbox({ baseUrl: base, notifyRetryDelaysMs: [50, 100, 200], ...opts });
  const sim = sandbox.simulator;
  holder.sim = sim;
  const channel = new WechatPayProvider().createInstance(sandbox.instance);
  const cfg = sandbox.instance.config as Record<string, string>;
  return {
    sim,
    channel,
    base,
    apiKey: cfg['apiKey'] ?? '',
    appId: cfg['appId'] ?? '',
    mchId: cfg['mchId'] ?? '',
    async close() {
      sandbox.simulator.close();
      await closeServer(server);
    },
  };
}

let seq = 0;
function orderId(): string {
  seq += 1;
  return `D20240501120000${String(100000 + seq)}${Math.floor(Math.random() * 1000)}`;
}

function attempt(notifyUrl: string, over: Partial<AttemptInput> = {}): AttemptInput {
  const id = over.outTradeNo ?? orderId();
  return {
    orderId: id,
    attemptId: `att-${id}`,
    outTradeNo: id,
    subject: 'Sandbox <b>Tea</b> & "cake"',
    amount: { minor: 1234, currency: 'CNY' },
    payType: 'NATIVE',
    expireTime: new Date(Date.now() + 30 * 60_000),
    notifyUrl,
    ...over,
  };
}

function refOf(a: AttemptInput, createdAt = new Date()): AttemptRef {
  return {
    orderId: a.orderId,
    attemptId: a.attemptId,
    outTradeNo: a.outTradeNo,
    payType: a.payType,
    amount: a.amount,
    createdAt,
  };
}

/** A request signed by the independent peer library, posted straight at the simulator. */
async function signedPost(
  r: Rig,
  path: string,
  fields: Record<string, string>,
  signType: SignType = 'MD5',
  key = r.apiKey,
) {
  const all = { appid: r.appId, mch_id: r.mchId, nonce_str: Math.random().toString(36).slice(2), ...fields };
  const body = simXml({ ...all, sign: Hash.sign(signType, all, key) });
  const res = await fetch(`${r.base}${path}`, { method: 'POST', body, headers: { 'content-type': 'text/xml' } });
  const parsed = await simParseXml(await res.text());
  if (!parsed) throw new Error('unparseable answer');
  return parsed;
}

async function caught(p: Promise<unknown>): Promise<PayError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(PayError);
    return err as PayError;
  }
  throw new Error('expected a PayError');
}

const receiver = new NotifyReceiver();
let r: Rig;

beforeAll(async () => {
  await receiver.start();
  r = await rig();
  receiver.channel = r.channel;
});

afterAll(async () => {
  await r.close();
  await closeServer(receiver.server);
});

describe('WechatPaySimulator driven by the real WechatPayChannel', () => {
  it('NATIVE: code_url points at the cashier page, which shows the escaped subject, amount, QR and forms', async () => {
    const a = attempt(receiver.url);
    const info = await r.channel.createPayment(a);
    const cashier = `${r.base}/cashier/${a.outTradeNo}`;
    expect(info).toEqual({ payUrl: cashier, qrContent: cashier });

    const page = await fetch(cashier);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const html = await page.text();
    expect(html).toContain('Sandbox &#60;b&#62;Tea&#60;/b&#62; &#38; &#34;cake&#34;');
    expect(html).not.toContain('<b>Tea</b>');
    expect(html).toContain('&yen;12.34');
    expect(html).toMatch(/src="data:image\/png;base64,[A-Za-z0-9+/=]+"/);
    expect(html).toContain(`action="./${a.outTradeNo}/pay"`);
    expect(html).toContain(`action="./${a.outTradeNo}/abandon"`);
    expect(r.sim.trade(a.outTradeNo)).toMatchObject({ state: 'NOTPAY', tradeType: 'NATIVE', totalFee: 1234 });
  });

  it('MWEB: mweb_url + redirect_url; Pay on the cashier pays and redirects back', async () => {
    const a = attempt(receiver.url, {
      payType: 'mobile',
      clientIp: '203.0.113.9',
      returnUrl: 'https://shop.example.com/done?x=1',
    });
    const info = await r.channel.createPayment(a);
    expect(info.payUrl).toBe(
      `${r.base}/cashier/${a.outTradeNo}?redirect_url=${encodeURIComponent('https://shop.example.com/done?x=1')}`,
    );
    const html = await (await fetch(info.payUrl ?? '')).text();
    expect(html).toContain('name="redirect_url" value="https://shop.example.com/done?x=1"');

    const pay = await fetch(`${r.base}/cashier/${a.outTradeNo}/pay`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ redirect_url: 'https://shop.example.com/done?x=1' }).toString(),
      redirect: 'manual',
    });
    expect(pay.status).toBe(303);
    expect(pay.headers.get('location')).toBe('https://shop.example.com/done?x=1');
    expect(r.sim.trade(a.outTradeNo)?.state).toBe('SUCCESS');
    await waitFor('MWEB notify acknowledged', () =>
      r.sim.notifyLog.find((e) => e.outTradeNo === a.outTradeNo && e.outcome === 'acknowledged'),
    );
  });

  it('MWEB without a client IP is refused by the channel before any call', async () => {
    expect((await caught(r.channel.createPayment(attempt(receiver.url, { payType: 'MWEB' })))).code).toBe(
      'INVALID_PARAMS',
    );
  });

  it('JSAPI: the prepay params carry a paySign that wechatpay-axios-plugin verifies', async () => {
    const a = attempt(receiver.url, { payType: 'JSAPI', openid: 'oUpF8uMEb4qRXf22hE3X68TekukE' });
    const p = (await r.channel.createPayment(a)).jsapiParams;
    expect(p).toBeDefined();
    if (!p) return;
    expect(p.package).toBe(`prepay_id=${r.sim.trade(a.outTradeNo)?.prepayId}`);
    expect(p.timeStamp).toMatch(/^\d{10}$/);
    const { paySign, ...rest } = p;
    expect(paySign).toBe(Hash.sign('MD5', rest, r.apiKey));
    expect(r.sim.trade(a.outTradeNo)?.openid).toBe('oUpF8uMEb4qRXf22hE3X68TekukE');
  });

  it('query NOTPAY -> pay -> signed notify (first reply FAIL, retried until SUCCESS) -> query paid', async () => {
    const a = attempt(receiver.url);
    await r.channel.createPayment(a);
    expect(await r.channel.queryPayment(refOf(a))).toMatchObject({
      status: 'pending',
      raw: 'NOTPAY',
      amount: { minor: 1234, currency: 'CNY' },
    });

    await r.sim.pay(a.outTradeNo);
    const trade = r.sim.trade(a.outTradeNo);
    expect(trade?.state).toBe('SUCCESS');
    expect(trade?.transactionId).toMatch(/^4200\d{24}$/);

    await waitFor('notify acknowledged', () =>
      r.sim.notifyLog.find((e) => e.outTradeNo === a.outTradeNo && e.outcome === 'acknowledged'),
    );
    const log = r.sim.notifyLog.filter((e) => e.outTradeNo === a.outTradeNo);
    expect(log.map((e) => [e.attempt, e.outcome])).toEqual([
      [1, 'rejected'],
      [2, 'acknowledged'],
    ]);
    const got = receiver.received.filter((x) => x.outTradeNo === a.outTradeNo);
    expect(got.map((x) => x.replied)).toEqual(['rejected', 'accepted']);
    expect(got[1]?.verified).toEqual({
      kind: 'payment',
      dedupeKey: trade?.transactionId,
      outTradeNo: a.outTradeNo,
      channelTradeNo: trade?.transactionId,
      status: 'paid',
      amount: { minor: 1234, currency: 'CNY' },
      paidAt: expect.any(Date),
      raw: 'SUCCESS',
    });
    expect(got[0]?.verified?.dedupeKey).toBe(got[1]?.verified?.dedupeKey); // a retry deduplicates

    const snap = await r.channel.queryPayment(refOf(a));
    expect(snap).toMatchObject({
      status: 'paid',
      raw: 'SUCCESS',
      channelTradeNo: trade?.transactionId,
      amount: { minor: 1234, currency: 'CNY' },
    });
    expect(snap.paidAt?.getTime()).toBe(got[1]?.verified?.paidAt?.getTime());
    // once paid, querying by transaction_id works too
    expect((await r.channel.queryPayment({ ...refOf(a), channelTradeNo: trade?.transactionId ?? null })).status).toBe(
      'paid',
    );
  });

  it('closeorder too early: the channel answers too_early without calling; the simulator itself refuses', async () => {
    const a = attempt(receiver.url);
    await r.channel.createPayment(a);
    r.sim.setDown(true); // any call would now fail: 'too_early' proves none was made
    try {
      expect(await r.channel.closePayment(refOf(a))).toBe('too_early');
    } finally {
      r.sim.setDown(false);
    }
    expect(r.sim.trade(a.outTradeNo)?.state).toBe('NOTPAY');

    // Pretend the attempt is old: the channel calls, and the simulator's own 5-minute rule refuses.
    const err = await caught(r.channel.closePayment(refOf(a, new Date(Date.now() - 10 * 60_000))));
    expect(err.code).toBe('CHANNEL_ERROR');
    expect(err.detail?.['errCode']).toBe(WECHAT_SIM_CLOSE_TOO_EARLY_ERR_CODE);

    const direct = await signedPost(r, '/pay/closeorder', { out_trade_no: a.outTradeNo });
    expect(direct).toMatchObject({
      return_code: 'SUCCESS',
      result_code: 'FAIL',
      err_code: WECHAT_SIM_CLOSE_TOO_EARLY_ERR_CODE,
    });
    expect(direct['err_code_des']).toContain('5分钟');
    expect(direct['sign']).toBe(Hash.sign('MD5', direct, r.apiKey));
    expect(r.sim.trade(a.outTradeNo)?.state).toBe('NOTPAY');
  });

  it('a bad request signature gets return_code FAIL / 签名错误', async () => {
    const a = attempt(receiver.url);
    await r.channel.createPayment(a);
    const bad = await signedPost(r, '/pay/orderquery', { out_trade_no: a.outTradeNo }, 'MD5', 'x'.repeat(32));
    expect({ ...bad }).toEqual({ return_code: 'FAIL', return_msg: '签名错误' });
    const good = await signedPost(r, '/pay/orderquery', { out_trade_no: a.outTradeNo });
    expect(good).toMatchObject({ return_code: 'SUCCESS', result_code: 'SUCCESS', trade_state: 'NOTPAY' });
  });

  it('answers an HMAC-signed request with an HMAC-signed answer', async () => {
    const a = attempt(receiver.url);
    await r.channel.createPayment(a);
    const res = await signedPost(
      r,
      '/pay/orderquery',
      { out_trade_no: a.outTradeNo, sign_type: 'HMAC-SHA256' },
      'HMAC-SHA256',
    );
    expect(res['sign']).toHaveLength(64);
    expect(res['sign']).toBe(Hash.sign('HMAC-SHA256', res, r.apiKey));
  });

  it('the same params give the same prepay_id; different params give OUT_TRADE_NO_USED', async () => {
    const no = orderId();
    const fields = {
      body: 'x',
      out_trade_no: no,
      total_fee: '100',
      spbill_create_ip: '127.0.0.1',
      notify_url: receiver.url,
      trade_type: 'NATIVE',
      product_id: no,
    };
    const first = await signedPost(r, '/pay/unifiedorder', fields);
    const again = await signedPost(r, '/pay/unifiedorder', fields);
    expect(first['prepay_id']).toMatch(/^wx/);
    expect(again['prepay_id']).toBe(first['prepay_id']);
    expect(again['code_url']).toBe(`${r.base}/cashier/${no}`);
    const conflict = await signedPost(r, '/pay/unifiedorder', { ...fields, total_fee: '101' });
    expect(conflict).toMatchObject({ result_code: 'FAIL', err_code: 'OUT_TRADE_NO_USED' });

    // Through the channel: a second attempt of the same order with another trade_type (out_trade_no = orderId).
    const a = attempt(receiver.url);
    await r.channel.createPayment(a);
    const err = await caught(r.channel.createPayment({ ...a, payType: 'JSAPI', openid: 'o1' }));
    expect(err.detail?.['errCode']).toBe('OUT_TRADE_NO_USED');
  });

  it('refuses an XXE body', async () => {
    const body = `<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><appid>&x;</appid></xml>`;
    const res = await fetch(`${r.base}/pay/orderquery`, { method: 'POST', body });
    expect({ ...(await simParseXml(await res.text())) }).toEqual({
      return_code: 'FAIL',
      return_msg: 'XML_FORMAT_ERROR',
    });
  });

  it('Abandon leaves the trade unpaid', async () => {
    const a = attempt(receiver.url);
    await r.channel.createPayment(a);
    const res = await fetch(`${r.base}/cashier/${a.outTradeNo}/abandon`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('Payment abandoned');
    expect(r.sim.trade(a.outTradeNo)?.state).toBe('NOTPAY');
  });

  it('setDown makes the channel fail with CHANNEL_ERROR; setLatencyMs slows answers', async () => {
    r.sim.setDown(true);
    try {
      expect((await caught(r.channel.createPayment(attempt(receiver.url)))).code).toBe('CHANNEL_ERROR');
    } finally {
      r.sim.setDown(false);
    }
    r.sim.setLatencyMs(150);
    try {
      const started = Date.now();
      await r.channel.createPayment(attempt(receiver.url));
      expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    } finally {
      r.sim.setLatencyMs(0);
    }
  });

  it('setDropNotifies loses every notify (the retry schedule still runs)', async () => {
    const a = attempt(receiver.url);
    await r.channel.createPayment(a);
    r.sim.setDropNotifies(true);
    try {
      await r.sim.pay(a.outTradeNo);
      await waitFor(
        'all attempts dropped',
        () => r.sim.notifyLog.filter((e) => e.outTradeNo === a.outTradeNo).length === 4,
      );
      expect(r.sim.notifyLog.filter((e) => e.outTradeNo === a.outTradeNo).every((e) => e.outcome === 'dropped')).toBe(
        true,
      );
      expect(receiver.received.some((x) => x.outTradeNo === a.outTradeNo)).toBe(false);
      expect((await r.channel.queryPayment(refOf(a))).status).toBe('paid'); // the query still tells the truth
    } finally {
      r.sim.setDropNotifies(false);
    }
  });
});

describe('WechatPaySimulator close after the window (minCloseAgeMs shortened)', () => {
  let s: Rig;
  beforeAll(async () => {
    s = await rig({ minCloseAgeMs: 100 });
  });
  afterAll(() => s.close());
  const old = (a: AttemptInput): AttemptRef => refOf(a, new Date(Date.now() - 10 * 60_000));

  it('closes, then reports closed again, already_paid for a paid trade and not_found for an unknown one', async () => {
    const a = attempt(receiver.url);
    await s.channel.createPayment(a);
    await new Promise((res) => setTimeout(res, 150));
    expect(await s.channel.closePayment(old(a))).toBe('closed');
    expect(s.sim.trade(a.outTradeNo)?.state).toBe('CLOSED');
    expect((await s.channel.queryPayment(old(a))).status).toBe('closed');
    expect(await s.channel.closePayment(old(a))).toBe('closed'); // ORDERCLOSED
    await expect(s.sim.pay(a.outTradeNo)).rejects.toThrow('CLOSED');
    expect((await caught(s.channel.createPayment(a))).detail?.['errCode']).toBe('ORDERCLOSED');

    const b = attempt(receiver.url);
    await s.channel.createPayment(b);
    s.sim.setDropNotifies(true);
    await s.sim.pay(b.outTradeNo);
    await new Promise((res) => setTimeout(res, 150));
    expect(await s.channel.closePayment(old(b))).toBe('already_paid');
    s.sim.setDropNotifies(false);

    const ghost = attempt(receiver.url);
    expect(await s.channel.closePayment(old(ghost))).toBe('not_found');
    expect((await s.channel.queryPayment(old(ghost))).status).toBe('not_found');
  });
});

describe('WechatPaySimulator with an HMAC-SHA256 instance', () => {
  let h: Rig;
  const hmacReceiver = new NotifyReceiver();
  beforeAll(async () => {
    h = await rig({ signType: 'HMAC-SHA256' });
    await hmacReceiver.start();
    hmacReceiver.channel = h.channel;
  });
  afterAll(async () => {
    await h.close();
    await closeServer(hmacReceiver.server);
  });

  it('creates JSAPI with an HMAC paySign, and delivers an HMAC-signed notify the channel verifies', async () => {
    const a = attempt(hmacReceiver.url, { payType: 'JSAPI', openid: 'oUser' });
    const p = (await h.channel.createPayment(a)).jsapiParams;
    if (!p) throw new Error('no jsapi params');
    const { paySign, ...rest } = p;
    expect(p.signType).toBe('HMAC-SHA256');
    expect(paySign).toBe(Hash.sign('HMAC-SHA256', rest, h.apiKey));
    expect(h.sim.trade(a.outTradeNo)?.signType).toBe('HMAC-SHA256');
    await h.sim.pay(a.outTradeNo);
    await waitFor('HMAC notify acknowledged', () => h.sim.notifyLog.find((e) => e.outcome === 'acknowledged'));
    expect(hmacReceiver.received.at(-1)?.verified?.status).toBe('paid');
  });
});

describe('mounting and safety', () => {
  it('works mounted at /sandbox/wechatpay (the path prefix stripped, as the api app mounts it)', async () => {
    let sim: WechatPaySimulator | undefined;
    const { server, base } = await listen(mounted('/sandbox/wechatpay', (req, res) => sim?.listener(req, res)));
    try {
      const sandbox = createWechatPaySandbox({ baseUrl: `${base}/sandbox/wechatpay`, notifyRetryDelaysMs: [] });
      sim = sandbox.simulator;
      const ch = new WechatPayProvider().createInstance(sandbox.instance);
      const a = attempt(receiver.url);
      const info = await ch.createPayment(a);
      expect(info.payUrl).toBe(`${base}/sandbox/wechatpay/cashier/${a.outTradeNo}`);
      expect((await fetch(info.payUrl ?? '')).status).toBe(200);
      const pay = await fetch(`${base}/sandbox/wechatpay/cashier/${a.outTradeNo}/pay`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'redirect_url=https%3A%2F%2Fshop.example.com%2F',
        redirect: 'manual',
      });
      expect(pay.status).toBe(303);
      expect((await ch.queryPayment(refOf(a))).status).toBe('paid');
      sandbox.simulator.close();
    } finally {
      await closeServer(server);
    }
  });

  it('refuses to construct with NODE_ENV=production', () => {
    const before = process.env['NODE_ENV'];
    process.env['NODE_ENV'] = 'production';
    try {
      expect(() => createWechatPaySandbox({ baseUrl: 'http://127.0.0.1:1' })).toThrow('NODE_ENV=production');
    } finally {
      process.env['NODE_ENV'] = before;
    }
  });

  it('generates credentials the provider accepts', () => {
    const { instance, simulator } = createWechatPaySandbox({ baseUrl: 'http://127.0.0.1:1/sandbox/wechatpay/' });
    simulator.close();
    expect(instance).toMatchObject({ fullName: 'pays.myWechatPay', type: 'pays.WechatPayType', isDefault: true });
    expect(instance.config['appId']).toMatch(/^wx[0-9a-f]{16}$/);
    expect(instance.config['apiKey']).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(instance.config['baseUrl']).toBe('http://127.0.0.1:1/sandbox/wechatpay');
  });
});
