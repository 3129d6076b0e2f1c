import request from 'supertest';
import { DataSource } from 'typeorm';
import { JobStats, OrderSyncJob, TimeoutCloserJob } from '#payments';
import { auth, bootApp, type TestApp, uniqueOrderId, until } from '../utils/test-app.js';

/** Issue 5 in one process: the timeout closer and the stuck-order sync against the simulators. */
describe('timeout closer and order sync', () => {
  let t: TestApp;
  let http: ReturnType<typeof request>;
  let db: DataSource;

  beforeAll(async () => {
    t = await bootApp({ wechatMinCloseAgeMs: 0 });
    http = request(t.app.getHttpServer());
    db = t.app.get(DataSource);
  });
  afterAll(async () => {
    await t.close();
  });

  const sim = () => t.sandbox!;

  async function order(opts: { expireInMs?: number; amount?: string } = {}): Promise<string> {
    const orderId = uniqueOrderId('J');
    const body: Record<string, unknown> = { orderId, subject: 'Job test', amount: opts.amount ?? '2.00' };
    if (opts.expireInMs !== undefined) body['expireTime'] = new Date(Date.now() + opts.expireInMs).toISOString();
    await http.post('/api/v1/orders').set(auth()).send(body).expect(201);
    return orderId;
  }

  async function pay(orderId: string, channel: string): Promise<void> {
    await http.post(`/api/v1/orders/${orderId}/pay`).set(auth()).send({ channel, payType: 'pc' }).expect(200);
  }

  /** Moves an order's expiry into the past: the sweep's notion of time is the database's. */
  async function expire(...orderIds: string[]): Promise<void> {
    await db.query(`UPDATE orders SET expire_time = now() - interval '1 second' WHERE order_id = ANY($1)`, [orderIds]);
  }

  async function statusOf(orderId: string): Promise<string> {
    const rows = await db.query<{ status: string }[]>(`SELECT status FROM orders WHERE order_id = $1`, [orderId]);
    return rows[0]?.status ?? 'missing';
  }

  async function attempts(orderId: string): Promise<Record<string, string>> {
    const rows = await db.query<{ channel: string; status: string }[]>(
      `SELECT channel, status FROM payment_attempts WHERE order_id = $1`,
      [orderId],
    );
    return Object.fromEntries(rows.map((r) => [r.channel, r.status]));
  }

  const closer = () => t.app.get(TimeoutCloserJob);

  it('closes expired orders on both sides (Alipay scanned, WeChat, no attempt) and only then times them out', async () => {
    const ali = await order({ expireInMs: 2000 });
    const wx = await order({ expireInMs: 2000 });
    const bare = await order({ expireInMs: 2000 });
    const alive = await order({ expireInMs: 600_000 });
    await pay(ali, 'pays.AliPayType');
    sim().alipay.scan(ali);
    await pay(wx, 'pays.WechatPayType');
    await pay(alive, 'pays.WechatPayType');
    await new Promise((r) => setTimeout(r, 2100));

    await closer().sweepOnce();

    expect(await statusOf(ali)).toBe('timeout');
    expect(await statusOf(wx)).toBe('timeout');
    expect(await statusOf(bare)).toBe('timeout');
    expect(await statusOf(alive)).toBe('wait');
    expect(await attempts(ali)).toEqual({ 'pays.aliPayment': 'closed' });
    expect(await attempts(wx)).toEqual({ 'pays.myWechatPay': 'closed' });
    expect(sim().alipay.trade(ali)?.status).toBe('TRADE_CLOSED');
    expect(sim().wechatpay.trade(wx)?.state).toBe('CLOSED');
    expect(sim().wechatpay.trade(alive)?.state).toBe('NOTPAY');
    // The channel was asked first; the trade carried the order's expiry as time_expire, so Alipay had
    // already closed it by itself and no close call was needed.
    const calls = sim()
      .alipay.callLog.filter((c) => c.outTradeNo === ali)
      .map((c) => c.method);
    expect(calls).toEqual(['alipay.trade.precreate', 'alipay.trade.query']);
  });

  it('finds a payment whose notify was lost instead of timing the order out', async () => {
    const ali = await order();
    await pay(ali, 'pays.AliPayType');
    sim().alipay.scan(ali);
    sim().alipay.setDropNotifies(true);
    try {
      await sim().alipay.pay(ali);
      expect(await statusOf(ali)).toBe('wait');
      await expire(ali);
      const before = t.app.get(JobStats).counters['sweep_late_payments'] ?? 0;
      await closer().sweepOnce();
      expect(await statusOf(ali)).toBe('success');
      expect(await attempts(ali)).toEqual({ 'pays.aliPayment': 'paid' });
      expect(t.app.get(JobStats).counters['sweep_late_payments']).toBe(before + 1);
    } finally {
      sim().alipay.setDropNotifies(false);
    }
    expect(sim().alipay.trade(ali)?.status).toBe('TRADE_SUCCESS');
    expect(sim().alipay.callLog.filter((c) => c.outTradeNo === ali && c.method === 'alipay.trade.close')).toHaveLength(
      0,
    );
  });

  it('leaves an order wait while its channel is down, and finishes it on a later sweep', async () => {
    const wx = await order();
    await pay(wx, 'pays.WechatPayType');
    await expire(wx);
    sim().wechatpay.setDown(true);
    try {
      const r = await closer().sweepOnce({ retryScheduleMs: [0] });
      expect(r.stuck).toBeGreaterThanOrEqual(1);
      expect(await statusOf(wx)).toBe('wait');
      expect(await attempts(wx)).toEqual({ 'pays.myWechatPay': 'open' });
    } finally {
      sim().wechatpay.setDown(false);
    }
    await closer().sweepOnce({ retryScheduleMs: [0] });
    expect(await statusOf(wx)).toBe('timeout');
    expect(sim().wechatpay.trade(wx)?.state).toBe('CLOSED');
  });

  it('shows stuck orders in the metrics (viewer key; service key refused)', async () => {
    const wx = await order();
    await pay(wx, 'pays.WechatPayType');
    await expire(wx);
    sim().wechatpay.setDown(true);
    try {
      await closer().sweepOnce({ retryScheduleMs: [60_000] });
      const m = await http.get('/metrics').set(auth('viewer'));
      expect(m.status).toBe(200);
      expect(m.text).toMatch(/paybridge_job_events_total\{event="sweep_orders_stuck"\} [1-9]/);
      const gauge = /paybridge_orders_expired_wait (\d+)/.exec(m.text);
      expect(Number(gauge?.[1])).toBeGreaterThanOrEqual(1);
      expect((await http.get('/metrics').set(auth('service'))).status).toBe(403);
    } finally {
      sim().wechatpay.setDown(false);
      await db.query(`UPDATE orders SET sweep_after = NULL WHERE order_id = $1`, [wx]);
    }
    await closer().sweepOnce({ retryScheduleMs: [0] });
    expect(await statusOf(wx)).toBe('timeout');
  });

  it('backs off: a stuck order is not retried before its next time', async () => {
    const wx = await order();
    await pay(wx, 'pays.WechatPayType');
    await expire(wx);
    sim().wechatpay.setDown(true);
    try {
      await closer().sweepOnce({ retryScheduleMs: [60_000] });
      const rows = await db.query<{ due: boolean; n: number }[]>(
        `SELECT sweep_after > now() + interval '50 seconds' AS due, sweep_attempts AS n FROM orders WHERE order_id = $1`,
        [wx],
      );
      expect(rows[0]).toEqual({ due: true, n: 1 });
      const again = await closer().sweepOnce({ retryScheduleMs: [60_000] });
      const n2 = await db.query<{ n: number }[]>(`SELECT sweep_attempts AS n FROM orders WHERE order_id = $1`, [wx]);
      expect(n2[0]?.n).toBe(1);
      expect(again.claimed).toBe(0);
    } finally {
      sim().wechatpay.setDown(false);
      await db.query(`UPDATE orders SET sweep_after = NULL WHERE order_id = $1`, [wx]);
    }
  });

  it('syncs a stuck attempt: a lost notify of a live order costs one sync, not the money', async () => {
    const wx = await order();
    await pay(wx, 'pays.WechatPayType');
    sim().wechatpay.setDropNotifies(true); // every delivery of this payment's notify is lost
    try {
      await sim().wechatpay.pay(wx);
      // Not due yet: the first query is a minute after the attempt was created.
      await t.app.get(OrderSyncJob).syncOnce();
      expect(await statusOf(wx)).toBe('wait');
      await db.query(`UPDATE payment_attempts SET next_sync_at = now() WHERE order_id = $1`, [wx]);
      const r = await t.app.get(OrderSyncJob).syncOnce();
      expect(r.paid).toBeGreaterThanOrEqual(1);
      expect(await statusOf(wx)).toBe('success');
    } finally {
      sim().wechatpay.setDropNotifies(false);
    }
  });

  it('queries a pending attempt at 1, 2, 5, 10, 30, 60, 90 min after its creation (offsets, not sums)', async () => {
    const wx = await order();
    await pay(wx, 'pays.WechatPayType');
    const seen: number[] = [];
    for (let i = 0; i < 7; i++) {
      // Each pass runs when the attempt is due; the query is made "late" (now) and the next time must
      // still be the schedule's next offset from creation, not the last offset plus a step.
      await db.query(
        `UPDATE payment_attempts SET next_sync_at = now(), created_at = now() - make_interval(secs => $2)
          WHERE order_id = $1`,
        [wx, [0, 60, 120, 300, 600, 1800, 3600][i]],
      );
      await t.app.get(OrderSyncJob).syncOnce();
      const rows = await db.query<{ secs: number; n: number }[]>(
        `SELECT round(EXTRACT(EPOCH FROM next_sync_at - created_at))::int AS secs, sync_count AS n
           FROM payment_attempts WHERE order_id = $1`,
        [wx],
      );
      expect(rows[0]?.n).toBe(i + 1);
      seen.push(Math.round((rows[0]?.secs ?? 0) / 60));
    }
    expect(seen).toEqual([2, 5, 10, 30, 60, 90, 120]);
    expect(await statusOf(wx)).toBe('wait');
  });

  it('settles 500 orders raced by payments and the closer: success if and only if the channel was paid', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 500; i += 50) {
      ids.push(...(await Promise.all(Array.from({ length: 50 }, () => order({ amount: '1.00' })))));
    }
    for (let i = 0; i < ids.length; i += 50) {
      await Promise.all(ids.slice(i, i + 50).map((id) => pay(id, 'pays.AliPayType')));
    }
    for (const id of ids) sim().alipay.scan(id);
    await expire(...ids);
    const payers = ids.filter((_, i) => i % 2 === 0);
    const paying = Promise.allSettled(payers.map((id) => sim().alipay.pay(id)));
    await Promise.all([closer().sweepOnce({ concurrency: 8 }), closer().sweepOnce({ concurrency: 8 }), paying]);
    await sim().alipay.idle();
    // Whatever was left (claimed by a sweep while its payment landed) is settled by later sweeps.
    await until(
      async () => {
        await closer().sweepOnce({ retryScheduleMs: [0], leaseSeconds: 1 });
        const rows = await db.query<{ n: number }[]>(
          `SELECT count(*)::int AS n FROM orders WHERE order_id = ANY($1) AND status = 'wait'`,
          [ids],
        );
        return rows[0]?.n === 0 ? true : undefined;
      },
      30_000,
      200,
    );
    const rows = await db.query<{ order_id: string; status: string }[]>(
      `SELECT order_id, status FROM orders WHERE order_id = ANY($1)`,
      [ids],
    );
    let paid = 0;
    for (const r of rows) {
      const channelPaid = sim().alipay.trade(r.order_id)?.status === 'TRADE_SUCCESS';
      expect({ id: r.order_id, status: r.status }).toEqual({
        id: r.order_id,
        status: channelPaid ? 'success' : 'timeout',
      });
      if (channelPaid) paid++;
    }
    expect(rows).toHaveLength(500);
    expect(paid).toBeGreaterThan(0);
    expect(paid).toBeLessThan(500);
  });
});
