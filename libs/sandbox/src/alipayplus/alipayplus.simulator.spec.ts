import { generateKeyPairSync, sign } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  AlipayPlusProvider,
  type AttemptInput,
  type AttemptRef,
  type PaymentChannel,
  type RawNotify,
  type VerifiedNotify,
} from '#channels';
import { Clock, type Money } from '#common';
import { AlipayPlusSimulator, createAlipayPlusSandbox } from './alipayplus.simulator.js';
import { payErrorOf as caught, readAll, mounted } from '../../../../test/utils/spec-helpers.js';

/** Drives the simulator with the REAL AlipayPlusChannel built from the sandbox instance config. */

class TestClock extends Clock {
  offsetMs = 0;
  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }
}

async function listen(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ server: Server; port: number }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let seq = 0;
function attempt(overrides: Partial<AttemptInput> & { amount?: Money } = {}): AttemptInput {
  seq += 1;
  const attemptId = `att_${Date.now()}_${seq}`;
  return {
    orderId: `D2024010112000000000${seq}`,
    attemptId,
    outTradeNo: attemptId,
    subject: 'Coffee <b>&</b> "cake"',
    amount: { minor: 1234, currency: 'USD' },
    payType: 'CASHIER',
    expireTime: new Date(Date.now() + 15 * 60_000),
    notifyUrl: 'http://127.0.0.1:1/unused',
    ...overrides,
  };
}

function refOf(a: AttemptInput): AttemptRef {
  return {
    orderId: a.orderId,
    attemptId: a.attemptId,
    outTradeNo: a.outTradeNo,
    payType: a.payType,
    amount: a.amount,
    createdAt: new Date(),
  };
}

describe('AlipayPlusSimulator driven by the real AlipayPlusChannel', () => {
  let wallet: { server: Server; port: number };
  let merchant: { server: Server; port: number };
  let simulator: AlipayPlusSimulator;
  let channel: PaymentChannel;
  let clock: TestClock;
  let baseUrl: string;
  let notifyUrl: string;
  let instanceConfig: Readonly<Record<string, unknown>>;
  let provider: AlipayPlusProvider;
  let makeChannel: (config: Record<string, unknown>) => PaymentChannel;
  /** How the merchant's notify endpoint answers: a queue of outcomes, then 'accepted'. */
  const replies: Array<'accepted' | 'rejected'> = [];
  const verified: VerifiedNotify[] = [];
  const rawNotifies: RawNotify[] = [];

  beforeAll(async () => {
    let walletHandler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end();
    wallet = await listen((req, res) => walletHandler(req, res));
    baseUrl = `http://127.0.0.1:${wallet.port}/sandbox/alipayplus`;
    const sandbox = createAlipayPlusSandbox({ baseUrl, notifyRetryDelaysMs: [50, 50, 50, 50, 50] });
    simulator = sandbox.simulator;
    walletHandler = simulator.listener;
    instanceConfig = sandbox.instance.config;
    expect(sandbox.instance).toMatchObject({ fullName: 'pays.myWallet', type: 'pays.AlipayPlusType', isDefault: true });
    expect(instanceConfig['gatewayUrl']).toBe(baseUrl);

    clock = new TestClock();
    provider = new AlipayPlusProvider(clock);
    channel = provider.createInstance(sandbox.instance);
    makeChannel = (config) =>
      provider.createInstance({ ...sandbox.instance, config: { ...instanceConfig, ...config } });

    merchant = await listen((req, res) => {
      void (async (): Promise<void> => {
        const body = await readAll(req);
        const raw: RawNotify = {
          headers: Object.fromEntries(
            Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? (v[0] ?? '') : (v ?? '')]),
          ),
          body,
          method: req.method ?? 'POST',
          path: req.url ?? '/',
        };
        rawNotifies.push(raw);
        let outcome: 'accepted' | 'rejected';
        try {
          verified.push(await channel.verifyNotify(raw));
          outcome = replies.shift() ?? 'accepted';
        } catch {
          outcome = 'rejected';
        }
        const reply = channel.notifyReply(outcome);
        res.writeHead(reply.status, { 'Content-Type': reply.contentType });
        res.end(reply.body);
      })();
    });
    notifyUrl = `http://127.0.0.1:${merchant.port}/api/v1/notify/alipayplus`;
  });

  afterAll(async () => {
    simulator.close();
    await closeServer(wallet.server);
    await closeServer(merchant.server);
  });

  beforeEach(() => {
    clock.offsetMs = 0;
    simulator.setDown(false);
    simulator.setLatencyMs(0);
    simulator.setDropNotifies(false);
  });

  it('authCode -> pay -> pending -> user pays -> notify rejected once, then accepted -> paid', async () => {
    const code = simulator.issueAuthCode('2188000000000001');
    const a = attempt({ authCode: code, notifyUrl, returnUrl: 'https://shop.example/done' });

    const info = await channel.createPayment(a);
    const sim = simulator.payment(a.attemptId);
    expect(sim).toMatchObject({
      status: 'PROCESSING',
      customerId: '2188000000000001',
      amount: { currency: 'USD', value: '1234' },
    });
    expect(info.payUrl).toBe(`${baseUrl}/cashier/${sim?.paymentId}`);
    expect(info.channelTradeNo).toBe(sim?.paymentId);
    expect(JSON.stringify(info)).not.toMatch(/AT_|RT_|accessToken|refreshToken/); // tokens stay server-side

    const pending = await channel.queryPayment(refOf(a));
    expect(pending).toMatchObject({
      status: 'pending',
      channelTradeNo: sim?.paymentId,
      amount: { minor: 1234, currency: 'USD' },
    });

    const page = await fetch(info.payUrl ?? '');
    const html = await page.text();
    expect(page.status).toBe(200);
    expect(html).toContain('12.34 USD');
    expect(html).toContain('Coffee &#60;b&#62;&#38;&#60;/b&#62; &#34;cake&#34;');
    expect(html).not.toContain('<b>');
    expect(html).toMatch(/<form method="post" action="\/sandbox\/alipayplus\/cashier\/[0-9]+\/pay">/);
    expect(html).toContain('Abandon');

    replies.push('rejected');
    const before = verified.length;
    await simulator.pay(a.attemptId);
    expect(await simulator.whenAcknowledged(a.attemptId, 5000)).toBe(true);

    const log = simulator.notifyLog.filter((e) => e.paymentRequestId === a.attemptId);
    expect(log.map((e) => e.outcome)).toEqual(['not_acknowledged', 'acknowledged']);
    expect(log[0]).toMatchObject({ attempt: 1, httpStatus: 500, replyStatus: 'F', resultStatus: 'S' });
    expect(log[1]).toMatchObject({ attempt: 2, httpStatus: 200, replyStatus: 'S' });

    const mine = verified.slice(before);
    expect(mine).toHaveLength(2);
    for (const n of mine) {
      expect(n).toMatchObject({
        outTradeNo: a.attemptId,
        channelTradeNo: sim?.paymentId,
        status: 'paid',
        amount: { minor: 1234, currency: 'USD' },
        dedupeKey: `${sim?.paymentId}:S`,
      });
      expect(n.paidAt).toBeInstanceOf(Date);
    }

    const paid = await channel.queryPayment(refOf(a));
    expect(paid).toMatchObject({ status: 'paid', raw: 'SUCCESS', amount: { minor: 1234, currency: 'USD' } });
    expect(paid.paidAt).toBeInstanceOf(Date);
    expect(await channel.closePayment(refOf(a))).toBe('already_paid');
  }, 20_000);

  it('a tampered, misdirected or replayed-elsewhere notify fails verifyNotify', async () => {
    const a = attempt({ authCode: simulator.issueAuthCode(), notifyUrl });
    await channel.createPayment(a);
    await simulator.pay(a.attemptId);
    expect(await simulator.whenAcknowledged(a.attemptId, 5000)).toBe(true);
    const raw = rawNotifies.at(-1);
    if (!raw) throw new Error('no notify seen');
    await expect(channel.verifyNotify(raw)).resolves.toMatchObject({ status: 'paid' });
    const tamperedBody = Buffer.from(raw.body.toString('utf8').replace('"1234"', '"1"'));
    for (const bad of [
      { ...raw, body: tamperedBody },
      { ...raw, path: '/api/v1/notify/other' },
      { ...raw, headers: { ...raw.headers, 'request-time': '2000-01-01T00:00:00+08:00' } },
      { ...raw, headers: { ...raw.headers, 'client-id': 'SANDBOX_SOMEONE_ELSE' } },
      { ...raw, headers: { ...raw.headers, signature: '' } },
    ]) {
      expect((await caught(channel.verifyNotify(bad))).code).toBe('INVALID_PARAMS');
    }
  }, 20_000);

  it('refuses a used auth code, an unknown one, and a request with neither code nor customer', async () => {
    const code = simulator.issueAuthCode();
    await channel.createPayment(attempt({ authCode: code, notifyUrl }));
    const used = await caught(channel.createPayment(attempt({ authCode: code, notifyUrl })));
    expect(used.code).toBe('INVALID_PARAMS');
    expect(used.detail).toMatchObject({ api: 'applyToken', resultStatus: 'F', resultCode: 'EXPIRED_CODE' });
    expect(used.message).not.toContain('EXPIRED_CODE'); // raw codes only in detail

    const unknown = await caught(channel.createPayment(attempt({ authCode: 'AUTH_made_up', notifyUrl })));
    expect(unknown.code).toBe('INVALID_PARAMS');
    expect((await caught(channel.createPayment(attempt({ notifyUrl })))).code).toBe('INVALID_PARAMS');
  });

  it('accepts a known customerId, refreshes an expired access token, refuses once the refresh token is gone', async () => {
    await channel.createPayment(attempt({ authCode: simulator.issueAuthCode('2188000000000077'), notifyUrl }));
    await expect(channel.createPayment(attempt({ customerId: '2188000000000077', notifyUrl }))).resolves.toHaveProperty(
      'payUrl',
    );
    expect((await caught(channel.createPayment(attempt({ customerId: '2188000000009999', notifyUrl })))).code).toBe(
      'INVALID_PARAMS',
    );

    clock.offsetMs = 2 * 3600_000; // the simulator's access tokens last 1 h: the channel must refresh
    const [r1, r2] = await Promise.all([
      channel.createPayment(attempt({ customerId: '2188000000000077', notifyUrl })),
      channel.createPayment(attempt({ customerId: '2188000000000077', notifyUrl })),
    ]); // one refresh for both (the simulator's refresh tokens are single use)
    expect(r1.payUrl).toBeDefined();
    expect(r2.payUrl).toBeDefined();

    clock.offsetMs = 40 * 24 * 3600_000; // past the 30-day refresh token too
    const expired = await caught(channel.createPayment(attempt({ customerId: '2188000000000077', notifyUrl })));
    expect(expired.code).toBe('INVALID_PARAMS');
    // an authCode for the same customer restores it
    clock.offsetMs = 0;
    await channel.createPayment(attempt({ authCode: simulator.issueAuthCode('2188000000000077'), notifyUrl }));
    await expect(channel.createPayment(attempt({ customerId: '2188000000000077', notifyUrl }))).resolves.toHaveProperty(
      'payUrl',
    );
  });

  it('pay is idempotent on paymentRequestId; other parameters -> REPEAT_REQ_INCONSISTENT', async () => {
    const a = attempt({ authCode: simulator.issueAuthCode('2188000000000002'), notifyUrl });
    const first = await channel.createPayment(a);
    const again = await channel.createPayment({ ...a, authCode: undefined, customerId: '2188000000000002' });
    expect(again).toEqual(first);
    const changed = await caught(
      channel.createPayment({
        ...a,
        authCode: undefined,
        customerId: '2188000000000002',
        amount: { minor: 1235, currency: 'USD' },
      }),
    );
    expect(changed.code).toBe('ORDER_STATUS_ERROR'); // a conflict of this order, not an outage
    expect(changed.detail).toMatchObject({ api: 'pay', resultStatus: 'F', resultCode: 'REPEAT_REQ_INCONSISTENT' });
  });

  it.each([
    [{ minor: 500, currency: 'JPY' }, '500', '500 JPY'],
    [{ minor: 12000, currency: 'KRW' }, '12000', '12000 KRW'],
    [{ minor: 1234, currency: 'IQD' }, '1234', '1.234 IQD'],
    [{ minor: 9999, currency: 'CNY' }, '9999', '99.99 CNY'],
  ])('sends %p as value "%s" and shows %s on the cashier', async (amount, value, shown) => {
    const a = attempt({ authCode: simulator.issueAuthCode(), notifyUrl, amount });
    const info = await channel.createPayment(a);
    expect(simulator.payment(a.attemptId)?.amount).toEqual({ currency: amount.currency, value });
    expect(await (await fetch(info.payUrl ?? '')).text()).toContain(shown);
    expect((await channel.queryPayment(refOf(a))).amount).toEqual(amount);
  });

  it('cancel closes an unpaid payment, which then cannot be paid; unknown ids are not_found', async () => {
    const a = attempt({ authCode: simulator.issueAuthCode(), notifyUrl });
    await channel.createPayment(a);
    expect(await channel.closePayment(refOf(a))).toBe('closed');
    expect(await channel.closePayment(refOf(a))).toBe('closed'); // idempotent
    expect(await channel.queryPayment(refOf(a))).toMatchObject({ status: 'closed', raw: 'CANCELLED' });
    await expect(simulator.pay(a.attemptId)).rejects.toThrow('CANCELLED');

    const ghost = refOf(attempt());
    expect(await channel.closePayment(ghost)).toBe('not_found');
    expect(await channel.queryPayment(ghost)).toEqual({ status: 'not_found', raw: 'ORDER_NOT_EXIST' });
  });

  it('an abandoned payment fails and its failure notify is verified as failed', async () => {
    const a = attempt({ authCode: simulator.issueAuthCode(), notifyUrl });
    await channel.createPayment(a);
    const before = verified.length;
    await simulator.abandon(a.attemptId);
    expect(await simulator.whenAcknowledged(a.attemptId, 5000)).toBe(true);
    expect(verified.slice(before)[0]).toMatchObject({ outTradeNo: a.attemptId, status: 'failed' });
    expect(await channel.queryPayment(refOf(a))).toMatchObject({ status: 'failed' });
    expect(await channel.closePayment(refOf(a))).toBe('closed');
  });

  it('an expired payment is not payable', async () => {
    const a = attempt({ authCode: simulator.issueAuthCode(), notifyUrl, expireTime: new Date(Date.now() + 2000) });
    const info = await channel.createPayment(a);
    await sleep(2100);
    await expect(simulator.pay(a.attemptId)).rejects.toThrow('ORDER_IS_CLOSED');
    expect(simulator.payment(a.attemptId)?.status).toBe('FAIL');
    expect(await channel.queryPayment(refOf(a))).toMatchObject({ status: 'failed' });
    const res = await fetch(`${info.payUrl ?? ''}/pay`, { method: 'POST' });
    expect(res.status).toBe(409);
  }, 10_000);

  it('the cashier Pay form pays and notifies', async () => {
    const a = attempt({ authCode: simulator.issueAuthCode(), notifyUrl });
    const info = await channel.createPayment(a);
    const res = await fetch(`${info.payUrl ?? ''}/pay`, { method: 'POST', body: '' });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('Paid');
    expect(await simulator.whenAcknowledged(a.attemptId, 5000)).toBe(true);
    expect((await channel.queryPayment(refOf(a))).status).toBe('paid');
  });

  it('refuses a request signed with another key, and a body changed after signing', async () => {
    const stranger = makeChannel({
      privateKey: generateKeyPairSync('rsa', { modulusLength: 2048 })
        .privateKey.export({ type: 'pkcs8', format: 'pem' })
        .toString(),
    });
    const refused = await caught(stranger.createPayment(attempt({ authCode: simulator.issueAuthCode(), notifyUrl })));
    expect(refused.code).toBe('CHANNEL_ERROR');
    expect(refused.detail).toMatchObject({ api: 'applyToken', resultStatus: 'F', resultCode: 'INVALID_SIGNATURE' });

    // A correctly signed request whose body is changed on the way.
    const merchantKey = String(instanceConfig['privateKey']);
    const key = { key: Buffer.from(merchantKey, 'base64'), format: 'der' as const, type: 'pkcs8' as const };
    const uri = '/sandbox/alipayplus/v1/payments/inquiryPayment';
    const time = '2024-01-01T12:00:00+08:00';
    const body = '{"paymentRequestId":"x"}';
    const clientId = String(instanceConfig['clientId']);
    const sig = sign('sha256', Buffer.from(`POST ${uri}\n${clientId}.${time}.${body}`), key).toString('base64');
    const send = async (b: string): Promise<unknown> =>
      (
        await fetch(`http://127.0.0.1:${wallet.port}${uri}`, {
          method: 'POST',
          body: b,
          headers: {
            'Content-Type': 'application/json',
            'Client-Id': clientId,
            'Request-Time': time,
            Signature: `algorithm=RSA256, keyVersion=1, signature=${encodeURIComponent(sig)}`,
          },
        })
      ).json();
    expect(await send(body)).toMatchObject({ result: { resultStatus: 'F', resultCode: 'ORDER_NOT_EXIST' } }); // signature accepted
    expect(await send('{"paymentRequestId":"y"}')).toMatchObject({
      result: { resultStatus: 'F', resultCode: 'INVALID_SIGNATURE' },
    });
  });

  it('refuses an answer the channel cannot verify with the wallet key', async () => {
    const wrongWallet = makeChannel({
      walletPublicKey: generateKeyPairSync('rsa', { modulusLength: 2048 })
        .publicKey.export({ type: 'spki', format: 'der' })
        .toString('base64'),
    });
    const e = await caught(wrongWallet.queryPayment(refOf(attempt())));
    expect(e.code).toBe('CHANNEL_ERROR');
    expect(e.message).toContain('signature');
  });

  it('test hooks: down -> CHANNEL_ERROR, latency is waited out, dropped notifies are logged and retried', async () => {
    simulator.setDown(true);
    const down = await caught(channel.queryPayment(refOf(attempt())));
    expect(down.code).toBe('CHANNEL_ERROR');
    expect(down.detail).toMatchObject({ httpStatus: 503 });
    simulator.setDown(false);

    simulator.setLatencyMs(300);
    const started = Date.now();
    await expect(channel.queryPayment(refOf(attempt()))).resolves.toMatchObject({ status: 'not_found' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    simulator.setLatencyMs(0);

    const a = attempt({ authCode: simulator.issueAuthCode(), notifyUrl });
    await channel.createPayment(a);
    simulator.setDropNotifies(true);
    await simulator.pay(a.attemptId);
    await sleep(80);
    simulator.setDropNotifies(false);
    expect(await simulator.whenAcknowledged(a.attemptId, 5000)).toBe(true);
    const outcomes = simulator.notifyLog.filter((e) => e.paymentRequestId === a.attemptId).map((e) => e.outcome);
    expect(outcomes[0]).toBe('dropped');
    expect(outcomes.at(-1)).toBe('acknowledged');
  }, 20_000);

  it('works mounted at /sandbox/alipayplus (the path prefix stripped, as the api app mounts it)', async () => {
    let listener: (req: IncomingMessage, res: ServerResponse) => void = (_q, s) => s.end();
    const srv = createServer(mounted('/sandbox/alipayplus', (req, res) => listener(req, res)));
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const port = (srv.address() as AddressInfo).port;
    const sb = createAlipayPlusSandbox({
      baseUrl: `http://127.0.0.1:${port}/sandbox/alipayplus`,
      notifyRetryDelaysMs: [50],
    });
    listener = sb.simulator.listener;
    try {
      const ch = new AlipayPlusProvider().createInstance(sb.instance);
      const a = attempt({ authCode: sb.simulator.issueAuthCode(), notifyUrl: 'http://127.0.0.1:9/none' });
      const info = await ch.createPayment(a);
      expect(info.payUrl).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${port}/sandbox/alipayplus/cashier/\\d+$`));
      expect((await fetch(info.payUrl ?? '')).status).toBe(200);
      expect((await ch.queryPayment(refOf(a))).status).toBe('pending');
      expect(await ch.closePayment(refOf(a))).toBe('closed');
    } finally {
      sb.simulator.close();
      await closeServer(srv);
    }
  });

  it('refuses to construct with NODE_ENV=production', () => {
    const prior = process.env['NODE_ENV'];
    process.env['NODE_ENV'] = 'production';
    try {
      expect(() => createAlipayPlusSandbox({ baseUrl: 'http://127.0.0.1:1/x' })).toThrow('production');
    } finally {
      if (prior === undefined) delete process.env['NODE_ENV'];
      else process.env['NODE_ENV'] = prior;
    }
  });
});
