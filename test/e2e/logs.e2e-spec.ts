import { createPrivateKey } from 'node:crypto';
import { type Server, createServer } from 'node:http';
import { Writable } from 'node:stream';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { ChannelRegistry } from '#channels';
import { KEYS, auth, bootApp, freePort, type TestApp, uniqueOrderId, until } from '../utils/test-app.js';

/**
 * Issue 13 item 1: the logs are JSON lines with one access line per request carrying the requestId of
 * the answer, and a full pay and refund flow in each channel leaves no API key, private key, WeChat
 * API secret, Alipay+ access token or signature anywhere in them. The secrets are taken from the
 * sandbox instance configs, the database and the wire, not written down here.
 */

/** Every line the app logged. */
const lines: string[] = [];
const capture = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(l);
    done();
  },
});
type Row = Record<string, unknown>;
const parsed = (): Row[] => lines.map((l) => JSON.parse(l) as Row);

/** A merchant endpoint that records the PayBridge-Signature headers it receives. */
async function signatureRecorder(): Promise<{ url: string; signatures: string[]; server: Server }> {
  const signatures: string[] = [];
  const server = createServer((req, res) => {
    const sig = req.headers['paybridge-signature'];
    if (typeof sig === 'string') signatures.push(sig);
    req.resume();
    req.on('end', () => res.writeHead(200).end('ok'));
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${port}/hooks`, signatures, server };
}

/** The base64 body of a key and every 64-character line of its PEM forms (what a leaked PEM shows). */
function keyFragments(b64: string, type: 'pkcs1' | 'pkcs8'): string[] {
  const key = createPrivateKey({ key: Buffer.from(b64, 'base64'), format: 'der', type });
  const pems = [
    key.export({ type: 'pkcs1', format: 'pem' }).toString(),
    key.export({ type: 'pkcs8', format: 'pem' }).toString(),
  ];
  const pemLines = pems.flatMap((p) => p.split('\n').filter((l) => l.length >= 40 && !l.startsWith('-----')));
  // Any 32-character stretch of the DER base64 (a key cut into a message would show one).
  const chunks: string[] = [];
  for (let i = 0; i + 32 <= b64.length; i += 32) chunks.push(b64.slice(i, i + 32));
  return [...pemLines, ...chunks];
}

describe('JSON logs without secrets (issue 13)', () => {
  let t: TestApp;
  let http: ReturnType<typeof request>;
  let ds: DataSource;
  let hooks: Awaited<ReturnType<typeof signatureRecorder>>;
  const webhookSecret = `whsec_logs_${Math.random().toString(36).slice(2)}_0123456789`;
  const wireSignatures: string[] = [];

  beforeAll(async () => {
    hooks = await signatureRecorder();
    t = await bootApp({
      logger: ['error', 'warn', 'log', 'debug', 'verbose'],
      logDestination: capture,
      env: { WEBHOOK_SECRETS: webhookSecret, WEBHOOK_URLS: hooks.url, WEBHOOK_ALLOW_PRIVATE: 'true' },
    });
    http = request(t.app.getHttpServer());
    ds = t.app.get(DataSource);
  });
  afterAll(async () => {
    await t.close();
    hooks.server.close();
    if (process.env['LOGS_DUMP']) (await import('node:fs')).writeFileSync(process.env['LOGS_DUMP'], lines.join('\n'));
  });

  async function createAndPay(channel: string, payType: string, amount: string, extra: Row = {}): Promise<Row> {
    const orderId = uniqueOrderId('L');
    await http.post('/api/v1/orders').set(auth()).send({ orderId, subject: 'Log test', amount }).expect(201);
    const pay = await http
      .post(`/api/v1/orders/${orderId}/pay`)
      .set(auth())
      .send({ channel, payType, ...extra });
    expect(pay.status).toBe(200);
    return { orderId, ...(pay.body as Row) };
  }

  const paid = (orderId: string): Promise<Row> =>
    until(async () => {
      const r = await http.get(`/api/v1/orders/${orderId}`).set(auth());
      return r.body.status === 'success' ? (r.body as Row) : undefined;
    });

  async function refundFully(orderId: string): Promise<Row> {
    const created = await http.post(`/api/v1/orders/${orderId}/refunds`).set(auth()).send({ amount: '0.40' });
    expect(created.status).toBe(201);
    const refundId = String(created.body.refundId);
    return until(async () => {
      const r = await http.post(`/api/v1/refunds/${refundId}/check`).set(auth());
      return r.body.status === 'success' ? (r.body as Row) : undefined;
    });
  }

  async function outTradeNoOf(orderId: string): Promise<string> {
    const rows = await ds.query<Row[]>('SELECT out_trade_no FROM payment_attempts WHERE order_id = $1', [orderId]);
    expect(rows).toHaveLength(1);
    return String(rows[0]!['out_trade_no']);
  }

  it('pays and refunds in the three channels', async () => {
    // Alipay (precreate QR).
    const a = await createAndPay('pays.AliPayType', 'PRE_PAY', '1.00');
    const aliNo = await outTradeNoOf(String(a['orderId']));
    t.sandbox!.alipay.scan(aliNo);
    await t.sandbox!.alipay.pay(aliNo);
    expect((await paid(String(a['orderId'])))['channel']).toBe('pays.aliPayment');
    expect((await refundFully(String(a['orderId'])))['status']).toBe('success');

    // WeChat Pay (JSAPI: the answer carries a paySign) and a refund over mutual TLS.
    const w = await createAndPay('pays.WechatPayType', 'JSAPI', '1.00', { openid: 'oLogTestOpenId0123456789' });
    const jsapi = w['jsapiParams'] as Row;
    expect(typeof jsapi['paySign']).toBe('string');
    wireSignatures.push(String(jsapi['paySign']));
    await t.sandbox!.wechatpay.pay(await outTradeNoOf(String(w['orderId'])));
    expect((await paid(String(w['orderId'])))['channel']).toBe('pays.myWechatPay');
    expect((await refundFully(String(w['orderId'])))['status']).toBe('success');

    // Alipay+ (authCode → access token → cashier).
    const p = await createAndPay('pays.AlipayPlusType', 'CASHIER', '1.00', {
      authCode: t.sandbox!.alipayplus.issueAuthCode(),
    });
    await t.sandbox!.alipayplus.pay(await outTradeNoOf(String(p['orderId'])));
    expect((await paid(String(p['orderId'])))['channel']).toBe('pays.myWallet');
    expect((await refundFully(String(p['orderId'])))['status']).toBe('success');

    // A channel that is down: the error is logged inside the request (with its request logger).
    t.sandbox!.alipayplus.setDown(true);
    try {
      const orderId = uniqueOrderId('L');
      await http.post('/api/v1/orders').set(auth()).send({ orderId, subject: 'Log test', amount: '1.00' }).expect(201);
      const down = await http
        .post(`/api/v1/orders/${orderId}/pay`)
        .set(auth())
        .send({ channel: 'pays.AlipayPlusType', payType: 'CASHIER', authCode: t.sandbox!.alipayplus.issueAuthCode() });
      expect(down.status).toBeGreaterThanOrEqual(500);
    } finally {
      t.sandbox!.alipayplus.setDown(false);
    }

    // Every notify received, replayed with its amount changed: refused for its signature, and logged.
    const received = await ds.query<Row[]>(
      "SELECT channel_type, headers, body FROM notify_inbox WHERE order_id LIKE 'L%'",
    );
    expect(received.length).toBeGreaterThanOrEqual(3);
    const routes: Record<string, string> = {
      'pays.AliPayType': '/api/v1/notify/alipay',
      'pays.WechatPayType': '/api/v1/notify/wechatpay',
      'pays.AlipayPlusType': '/api/v1/notify/alipayplus',
    };
    for (const n of received) {
      const headers = (typeof n['headers'] === 'string' ? JSON.parse(n['headers']) : n['headers']) as Record<
        string,
        string
      >;
      const body = String(n['body'])
        .replace(/total_amount=1\.00/, 'total_amount=0.01')
        .replace(/<total_fee>(<!\[CDATA\[)?100(\]\]>)?<\/total_fee>/, '<total_fee>1</total_fee>')
        .replace(/"value":"100"/, '"value":"1"');
      for (const h of ['content-length', 'host', 'connection', 'transfer-encoding']) delete headers[h];
      const route = routes[String(n['channel_type'])];
      expect(route).toBeDefined();
      await http.post(route!).set(headers).send(body);
    }
    const refused = await ds.query<Row[]>("SELECT count(*)::int AS n FROM notify_inbox WHERE verdict = 'refused'");
    expect(Number(refused[0]!['n'])).toBeGreaterThanOrEqual(3);

    // The merchant webhooks went out signed.
    await until(() => Promise.resolve(hooks.signatures.length >= 6 ? true : undefined), 15_000);
  });

  it('honours X-Request-Id: the answer header, the error body and the access line carry it', async () => {
    const res = await http.get('/api/v1/orders/NoSuchOrder123').set(auth()).set('X-Request-Id', 'ops-log-req-1');
    expect(res.status).toBe(404);
    expect(res.headers['x-request-id']).toBe('ops-log-req-1');
    expect(res.body.requestId).toBe('ops-log-req-1');
    const own = await http.get('/api/v1/orders/NoSuchOrder456').set(auth());
    expect(own.body.requestId).toBe(own.headers['x-request-id']);
    const unauthorized = await http
      .get('/api/v1/orders/NoSuchOrder789')
      .set('Authorization', 'Bearer pb_wrong_key_0123456789abcdef');
    expect(unauthorized.status).toBe(401);
    wireSignatures.push('pb_wrong_key_0123456789abcdef');

    await until(() =>
      Promise.resolve(parsed().some((l) => l['requestId'] === own.body.requestId && l['status']) ? true : undefined),
    );
    const access = parsed().filter((l) => l['requestId'] === 'ops-log-req-1' && l['status'] !== undefined);
    expect(access).toHaveLength(1);
    expect(access[0]).toMatchObject({
      level: 'info',
      context: 'HTTP',
      method: 'GET',
      route: '/api/v1/orders/:orderId',
      status: 404,
      orderId: 'NoSuchOrder123',
    });
    expect(typeof access[0]!['durationMs']).toBe('number');
  });

  it("gives the app's own lines made during a request that request's id (a POST: after body parsing)", async () => {
    const alipay = t.app
      .get(ChannelRegistry)
      .list()
      .find((c) => c.type === 'pays.AliPayType');
    const body = new URLSearchParams({
      app_id: String(alipay?.notifyKey),
      out_trade_no: 'NoSuchTrade1',
      trade_status: 'TRADE_SUCCESS',
      sign_type: 'RSA2',
      sign: 'bm90IGEgc2lnbmF0dXJl',
    }).toString();
    const res = await http
      .post('/api/v1/notify/alipay')
      .set('Content-Type', 'application/x-www-form-urlencoded')
      .set('X-Request-Id', 'ops-log-notify-1')
      .send(body);
    expect(res.text).toBe('fail');
    const own = await until(() =>
      Promise.resolve(parsed().find((l) => l['context'] === 'Notify' && l['requestId'] === 'ops-log-notify-1')),
    );
    expect(own).toMatchObject({ level: 'warn', msg: expect.stringContaining('rejected') });
    // Lines of other requests and of the jobs do not carry it.
    expect(parsed().filter((l) => l['requestId'] === 'ops-log-notify-1').length).toBe(2);
  });

  it('writes one JSON access line per request with the route template, and Nest context on app lines', () => {
    const rows = parsed();
    expect(rows.length).toBeGreaterThan(20);
    for (const r of rows) {
      expect(typeof r['time']).toBe('string');
      expect(typeof r['level']).toBe('string');
    }
    const access = rows.filter((r) => r['context'] === 'HTTP' && r['status'] !== undefined);
    const refunds = access.filter((r) => r['route'] === '/api/v1/orders/:orderId/refunds' && r['method'] === 'POST');
    expect(refunds).toHaveLength(3);
    for (const r of refunds) {
      expect(r['status']).toBe(201);
      expect(r['orderId']).toMatch(/^L/);
      expect(typeof r['requestId']).toBe('string');
    }
    // Every request id is logged once by the access log (no duplicates, none missing for the API calls).
    const ids = access.map((r) => r['requestId']);
    expect(new Set(ids).size).toBe(ids.length);
    // Lines from inside Nest carry their context (Notify, Refunds, Webhooks, ...).
    expect(rows.some((r) => r['context'] && r['context'] !== 'HTTP' && typeof r['msg'] === 'string')).toBe(true);
  });

  it('holds no API key, private key, API secret, access token or signature', async () => {
    const secrets: Array<[string, string]> = [];
    const add = (what: string, v: unknown): void => {
      if (typeof v === 'string' && v.length >= 8) secrets.push([what, v]);
    };
    for (const [role, key] of Object.entries(KEYS)) add(`API key ${role}`, key);
    add('webhook secret', webhookSecret);
    for (const inst of t.sandbox!.instances) {
      const c = inst.config;
      if (typeof c['privateKey'] === 'string') {
        const type = inst.type === 'pays.AlipayPlusType' ? 'pkcs8' : 'pkcs1';
        for (const f of keyFragments(c['privateKey'], type)) add(`${inst.fullName} private key`, f);
      }
      add(`${inst.fullName} apiKey`, c['apiKey']);
      if (typeof c['pfx'] === 'string') {
        for (let i = 0; i + 32 <= c['pfx'].length; i += 32) add(`${inst.fullName} pfx`, c['pfx'].slice(i, i + 32));
      }
    }
    // Alipay+ access and refresh tokens the wallet issued, as the app stored them.
    const tokens = await ds.query<Row[]>('SELECT access_token, refresh_token FROM alipayplus_authorizations');
    expect(tokens.length).toBeGreaterThan(0);
    for (const r of tokens) {
      add('Alipay+ access token', r['access_token']);
      add('Alipay+ refresh token', r['refresh_token']);
    }
    // Signatures that crossed the wire: the providers' notifies as received, our webhooks, JSAPI paySign.
    const notifies = await ds.query<Row[]>(
      "SELECT channel_type, headers, body FROM notify_inbox WHERE order_id LIKE 'L%'",
    );
    expect(notifies.length).toBeGreaterThanOrEqual(3);
    for (const n of notifies) {
      const body = String(n['body']);
      add('Alipay notify sign', new URLSearchParams(body).get('sign'));
      add(
        'WeChat notify sign',
        /<sign><!\[CDATA\[([^\]]+)\]\]><\/sign>|<sign>([^<]+)<\/sign>/.exec(body)?.slice(1).find(Boolean),
      );
      const headers = (typeof n['headers'] === 'string' ? JSON.parse(n['headers']) : n['headers']) as Row;
      add(
        'Alipay+ notify signature',
        /signature=([^,\s]+)/.exec(typeof headers['signature'] === 'string' ? headers['signature'] : '')?.[1],
      );
    }
    for (const h of hooks.signatures) add('webhook signature', /v1=([0-9a-f]+)/.exec(h)?.[1]);
    for (const s of wireSignatures) add('signature or key on the wire', s);
    const kinds = new Set(secrets.map(([w]) => w.replace(/^pays\.\w+ /, '')));
    expect(kinds).toEqual(
      new Set([
        'API key service',
        'API key viewer',
        'API key operator',
        'API key admin',
        'webhook secret',
        'private key',
        'apiKey',
        'pfx',
        'Alipay+ access token',
        'Alipay+ refresh token',
        'Alipay notify sign',
        'WeChat notify sign',
        'Alipay+ notify signature',
        'webhook signature',
        'signature or key on the wire',
      ]),
    );

    const all = lines.join('\n');
    const decoded = all.replace(/\\\//g, '/').replace(/\\n/g, '\n');
    const leaks = secrets.filter(
      ([, v]) => all.includes(v) || decoded.includes(v) || all.includes(encodeURIComponent(v)),
    );
    expect(leaks.map(([what]) => what)).toEqual([]);
  });
});
