import request from 'supertest';
import type { AlipaySimulator } from '#sandbox';
import { auth, bootApp, type TestApp, uniqueOrderId, until } from '../utils/test-app.js';
import { TcpProxy } from '../utils/tcp-proxy.js';

/**
 * PostgreSQL going away (API.md §7, issue 9 item 8): the app reaches PostgreSQL through a TCP proxy the
 * test cuts (open connections reset, new ones refused, as during a restart) and restores. While it is
 * cut the API answers 503 SERVICE_UNAVAILABLE with Retry-After, a notify gets the channel's failure
 * reply (so the provider retries), and once restored the pool reconnects without a restart of the app.
 * Not applicable to the embedded database (in-process, it cannot go away).
 */
const databaseUrl = process.env['DATABASE_URL'];
const describePg = databaseUrl ? describe : describe.skip;

describePg('PostgreSQL outage (through a cuttable proxy)', () => {
  let proxy: TcpProxy;
  let t: TestApp;
  let http: ReturnType<typeof request>;
  let sim: AlipaySimulator;

  beforeAll(async () => {
    const target = new URL(databaseUrl ?? '');
    proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    const port = await proxy.start();
    t = await bootApp({
      env: { DATABASE_URL: TcpProxy.urlThrough(databaseUrl ?? '', port) },
      // The simulator re-sends a refused notify every 300 ms for a while, as Alipay does (slower).
      notifyRetryDelaysMs: Array.from({ length: 60 }, () => 300),
    });
    http = request(t.app.getHttpServer());
    sim = t.sandbox!.alipay;
  });

  afterEach(async () => {
    await proxy.restore(); // a failed test must not leave the next one without a database
  });

  afterAll(async () => {
    await t?.close();
    await proxy?.close();
  });

  it('answers 503 with Retry-After while the database is away, and recovers by itself', async () => {
    const orderId = uniqueOrderId('O');
    expect(
      (await http.post('/api/v1/orders').set(auth()).send({ orderId, subject: 'outage', amount: '3.21' })).status,
    ).toBe(201);
    const paid = await http
      .post(`/api/v1/orders/${orderId}/pay`)
      .set(auth())
      .send({ channel: 'pays.AliPayType', payType: 'PRE_PAY' });
    expect(paid.status).toBe(200);
    const outTradeNo = sim.callLog.find(
      (c) => c.method === 'alipay.trade.precreate' && c.outTradeNo === orderId,
    )?.outTradeNo;
    expect(outTradeNo).toBeDefined();

    await proxy.cut();

    const read = await http.get(`/api/v1/orders/${orderId}`).set(auth());
    expect(read.status).toBe(503);
    expect(read.headers['retry-after']).toMatch(/^\d+$/);
    expect(read.body).toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    expect(typeof read.body.requestId).toBe('string');
    expect(JSON.stringify(read.body)).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|postgres/i);

    const create = await http
      .post('/api/v1/orders')
      .set(auth())
      .send({ orderId: uniqueOrderId('O'), subject: 'during outage', amount: '1.00' });
    expect(create.status).toBe(503);
    expect(create.body.code).toBe('SERVICE_UNAVAILABLE');
    expect(create.headers['retry-after']).toMatch(/^\d+$/);

    expect((await http.get('/health')).status).toBe(503);

    // The buyer pays while the database is away: the notify is answered with Alipay's failure reply.
    await sim.pay(outTradeNo ?? '');
    const first = sim.notifyLog.find((n) => n.outTradeNo === outTradeNo);
    expect(first).toMatchObject({ acknowledged: false, status: 200, reply: 'fail' });

    await proxy.restore();

    // The pool reconnects on its own: the same app answers again, and the provider's retry lands.
    await until(
      async () => ((await http.get(`/api/v1/orders/${orderId}`).set(auth())).status === 200 ? true : undefined),
      10_000,
    );
    const settled = await until(async () => {
      const o = await http.get(`/api/v1/orders/${orderId}`).set(auth());
      return o.body.status === 'success' ? o.body : undefined;
    }, 20_000);
    expect(settled).toMatchObject({ orderId, status: 'success' });
    expect(sim.notifyLog.filter((n) => n.outTradeNo === outTradeNo && n.acknowledged)).toHaveLength(1);
    expect(proxy.accepted).toBeGreaterThan(1);
  });

  it('answers 503, not 500, when connections are reset under running requests', async () => {
    const ids = Array.from({ length: 5 }, () => uniqueOrderId('R'));
    for (const orderId of ids) {
      expect(
        (await http.post('/api/v1/orders').set(auth()).send({ orderId, subject: 'reset', amount: '1.00' })).status,
      ).toBe(201);
    }
    // Fire reads, cut while they run, then restore: every answer is 200 or 503.
    const reads = Array.from({ length: 40 }, (_, i) => http.get(`/api/v1/orders/${ids[i % ids.length]}`).set(auth()));
    const pending = Promise.all(reads.map((r) => r.then((res) => res.status)));
    await proxy.cut();
    const statuses = await pending;
    await proxy.restore();
    expect(statuses.filter((s) => s !== 200 && s !== 503)).toEqual([]);
    expect(statuses).toContain(503);
    await until(
      async () => ((await http.get(`/api/v1/orders/${ids[0]}`).set(auth())).status === 200 ? true : undefined),
      10_000,
    );
  });
});
