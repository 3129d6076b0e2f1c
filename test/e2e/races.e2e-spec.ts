import request from 'supertest';
import { DataSource } from 'typeorm';
import { OrderSyncJob, TimeoutCloserJob } from '#payments';
import { auth, bootApp, type TestApp, uniqueOrderId, until } from '../utils/test-app.js';

/** Races between pay requests, cancel, the sweep and late trades (found in review). */
describe('races around creating a trade', () => {
  let t: TestApp;
  let http: ReturnType<typeof request>;
  let db: DataSource;

  beforeAll(async () => {
    t = await bootApp();
    http = request(t.app.getHttpServer());
    db = t.app.get(DataSource);
  });
  afterAll(async () => {
    await t.close();
  });

  const wallet = () => t.sandbox!.alipayplus;

  async function order(): Promise<string> {
    const orderId = uniqueOrderId('R');
    await http.post('/api/v1/orders').set(auth()).send({ orderId, subject: 'Race', amount: '3.00' }).expect(201);
    return orderId;
  }

  const payWallet = (orderId: string, authCode: string) =>
    http
      .post(`/api/v1/orders/${orderId}/pay`)
      .set(auth())
      .send({ channel: 'pays.AlipayPlusType', payType: 'CASHIER', authCode });

  async function statusOf(orderId: string): Promise<string> {
    return (await http.get(`/api/v1/orders/${orderId}`).set(auth())).body.status as string;
  }

  async function walletAttempts(orderId: string): Promise<{ out_trade_no: string; status: string }[]> {
    return db.query(
      `SELECT out_trade_no, status FROM payment_attempts WHERE order_id = $1 AND channel = 'pays.myWallet'`,
      [orderId],
    );
  }

  it('a refused pay request racing a good one never orphans the good one’s wallet payment', async () => {
    const orderId = await order();
    wallet().setLatencyMs(200);
    try {
      const [bad, good] = await Promise.all([
        payWallet(orderId, 'AUTH_not_issued_by_the_wallet'),
        payWallet(orderId, wallet().issueAuthCode()),
      ]);
      // Whoever gets the attempt first holds it while its trade is created; the other is refused (400 for
      // the bad code) or told to retry (409). The good one either ran or can run now.
      expect([400, 409]).toContain(bad.status);
      expect([200, 409]).toContain(good.status);
      expect(bad.status === 409 && good.status === 409).toBe(false);
      const retry = good.status === 200 ? good : await payWallet(orderId, wallet().issueAuthCode());
      expect(retry.status).toBe(200);
    } finally {
      wallet().setLatencyMs(0);
    }
    const attempts = await walletAttempts(orderId);
    expect(attempts).toHaveLength(1);
    expect(attempts[0]?.status).toBe('open');
    await wallet().pay(attempts[0]!.out_trade_no);
    await until(async () => ((await statusOf(orderId)) === 'success' ? true : undefined));
  });

  it('cancel while a trade is being created closes the order; the pay request closes its trade and answers 409', async () => {
    const orderId = await order();
    wallet().setLatencyMs(1000);
    let payRes: request.Response | undefined;
    try {
      const paying = payWallet(orderId, wallet().issueAuthCode()).then((r) => (payRes = r));
      await until(async () => ((await walletAttempts(orderId)).length ? true : undefined), 5000, 10);
      const cancel = await http.post(`/api/v1/orders/${orderId}/cancel`).set(auth()).send({});
      expect(cancel.status).toBe(200);
      expect(cancel.body.status).toBe('close');
      // Once the cancel started, no new pay request gets anywhere.
      const late = await payWallet(orderId, wallet().issueAuthCode());
      expect(late.status).toBe(409);
      await paying;
    } finally {
      wallet().setLatencyMs(0);
    }
    expect(payRes?.status).toBe(409);
    expect(payRes?.body.payUrl).toBeUndefined();
    const attempts = await walletAttempts(orderId);
    expect(attempts).toHaveLength(1);
    expect(attempts[0]?.status).toBe('closed');
    expect(wallet().payment(attempts[0]!.out_trade_no)?.status).toBe('CANCELLED');
  });

  it('pay requests racing a cancel either win before it (their trade is then closed) or get 409, never a live payUrl', async () => {
    const orders = await Promise.all(Array.from({ length: 12 }, () => order()));
    wallet().setLatencyMs(50);
    const results: { orderId: string; pay: request.Response; cancel: request.Response }[] = [];
    try {
      await Promise.all(
        orders.map(async (orderId, i) => {
          const paying = payWallet(orderId, wallet().issueAuthCode()).then((r) => r);
          // Stagger the cancel so that it lands before, during and after the trade's creation.
          await new Promise((r) => setTimeout(r, (i % 4) * 25));
          const cancel = await http.post(`/api/v1/orders/${orderId}/cancel`).set(auth()).send({});
          results.push({ orderId, pay: await paying, cancel });
        }),
      );
    } finally {
      wallet().setLatencyMs(0);
    }
    // A trade the cancel could not reach (created after it) is closed by the pay request or the sync job.
    await t.app.get(OrderSyncJob).syncOnce();
    for (const { orderId, pay, cancel } of results) {
      expect([200, 409]).toContain(pay.status);
      expect(cancel.status).toBe(200);
      expect(await statusOf(orderId)).toBe('close');
      for (const a of await walletAttempts(orderId)) {
        expect(a.status).toBe('closed');
        const p = wallet().payment(a.out_trade_no);
        if (p) expect(p.status).toBe('CANCELLED');
      }
      if (pay.status === 200) {
        const [a] = await walletAttempts(orderId);
        await expect(wallet().pay(a!.out_trade_no)).rejects.toThrow(/CANCELLED/);
      }
    }
  });

  it('an order that ended while its trade was being created gets the trade closed, not handed out', async () => {
    const orderId = await order();
    wallet().setLatencyMs(1000);
    let payRes: request.Response | undefined;
    try {
      const paying = payWallet(orderId, wallet().issueAuthCode()).then((r) => (payRes = r));
      await until(async () => ((await walletAttempts(orderId)).length ? true : undefined), 5000, 10);
      // A cancel that listed the attempts before this one existed: the order is closed under the pay request.
      await db.query(`UPDATE orders SET status = 'close', closed_reason = 'cancelled' WHERE order_id = $1`, [orderId]);
      await paying;
    } finally {
      wallet().setLatencyMs(0);
    }
    expect(payRes?.status).toBe(409);
    const [a] = await walletAttempts(orderId);
    expect(a?.status).toBe('closed');
    expect(wallet().payment(a!.out_trade_no)?.status).toBe('CANCELLED');
  });

  it('the sweep postpones an expired order whose trade is being created', async () => {
    const orderId = await order();
    wallet().setLatencyMs(1000);
    try {
      const paying = payWallet(orderId, wallet().issueAuthCode()).then((r) => r); // supertest sends on then()
      await until(async () => ((await walletAttempts(orderId)).length ? true : undefined), 5000, 10);
      await db.query(`UPDATE orders SET expire_time = now() - interval '1 second' WHERE order_id = $1`, [orderId]);
      const r = await t.app.get(TimeoutCloserJob).sweepOnce({ retryScheduleMs: [0] });
      expect(r.stuck).toBeGreaterThanOrEqual(1);
      expect(await statusOf(orderId)).toBe('wait');
      await paying;
    } finally {
      wallet().setLatencyMs(0);
    }
    await t.app.get(TimeoutCloserJob).sweepOnce({ retryScheduleMs: [0] });
    expect(await statusOf(orderId)).toBe('timeout');
  });

  it('an Alipay QR closed before anyone scanned it is looked at once more: a later payment with a lost notify is found and recorded as late', async () => {
    const orderId = await order();
    await http
      .post(`/api/v1/orders/${orderId}/pay`)
      .set(auth())
      .send({ channel: 'pays.AliPayType', payType: 'pc' })
      .expect(200);
    const cancel = await http.post(`/api/v1/orders/${orderId}/cancel`).set(auth()).send({});
    expect(cancel.body.status).toBe('close'); // nothing existed at Alipay to close
    const rows = await db.query<{ status: string; due: boolean }[]>(
      `SELECT a.status, a.next_sync_at >= o.expire_time AS due FROM payment_attempts a JOIN orders o ON o.id = a.order_pk WHERE a.order_id = $1`,
      [orderId],
    );
    expect(rows).toEqual([{ status: 'closed', due: true }]);
    // The payer scans the old QR and pays; the notify is lost.
    t.sandbox!.alipay.scan(orderId);
    t.sandbox!.alipay.setDropNotifies(true);
    try {
      await t.sandbox!.alipay.pay(orderId);
      await db.query(`UPDATE payment_attempts SET next_sync_at = now() WHERE order_id = $1`, [orderId]);
      const r = await t.app.get(OrderSyncJob).syncOnce();
      expect(r.paid).toBeGreaterThanOrEqual(1);
    } finally {
      t.sandbox!.alipay.setDropNotifies(false);
    }
    // The order stays what the merchant was told (closed); the money is recorded on its attempt.
    expect(await statusOf(orderId)).toBe('close');
    const after = await db.query<{ status: string }[]>(`SELECT status FROM payment_attempts WHERE order_id = $1`, [
      orderId,
    ]);
    expect(after).toEqual([{ status: 'paid' }]);
    await until(async () => {
      const rows = await db.query<{ status: string }[]>(`SELECT status FROM refunds WHERE order_id = $1`, [orderId]);
      return rows[0]?.status === 'success' ? true : undefined;
    });
    const events = await db.query<{ topic: string }[]>(
      `SELECT type AS topic FROM events WHERE order_id = $1 ORDER BY seq`,
      [orderId],
    );
    expect(events.map((e) => e.topic)).toEqual(['order.closed', 'payment.late', 'refund.succeeded']);
  });

  it('a paid trade whose amount differs from the order stops cancel and the sweep instead of closing the order', async () => {
    const orderId = await order();
    await http
      .post(`/api/v1/orders/${orderId}/pay`)
      .set(auth())
      .send({ channel: 'pays.AliPayType', payType: 'pc' })
      .expect(200);
    t.sandbox!.alipay.scan(orderId);
    t.sandbox!.alipay.setDropNotifies(true);
    try {
      await t.sandbox!.alipay.pay(orderId);
    } finally {
      t.sandbox!.alipay.setDropNotifies(false);
    }
    // Our record and the channel's disagree (3.00 at Alipay): nothing may be concluded from it.
    await db.query(`UPDATE payment_attempts SET amount_minor = 299 WHERE order_id = $1`, [orderId]);
    const cancel = await http.post(`/api/v1/orders/${orderId}/cancel`).set(auth()).send({});
    expect(cancel.status).toBe(502);
    expect(cancel.body.code).toBe('CHANNEL_ERROR');
    expect(await statusOf(orderId)).toBe('wait');
    await db.query(`UPDATE orders SET expire_time = now() - interval '1 second' WHERE order_id = $1`, [orderId]);
    const r = await t.app.get(TimeoutCloserJob).sweepOnce({ retryScheduleMs: [60_000] });
    expect(r.stuck).toBeGreaterThanOrEqual(1);
    expect(await statusOf(orderId)).toBe('wait');
    const [a] = await db.query<{ status: string }[]>(`SELECT status FROM payment_attempts WHERE order_id = $1`, [
      orderId,
    ]);
    expect(a?.status).toBe('open');
  });
});
