import request from 'supertest';
import { DataSource } from 'typeorm';
import { Clock } from '#common';
import { TimeoutCloserJob } from '#payments';
import { auth, bootApp, type TestApp, uniqueOrderId, until } from '../utils/test-app.js';

type Row = Record<string, unknown>;

/** Issue 9: no window for a second charge; a QR that cannot outlive its order. */
describe('money holes (issue 9)', () => {
  let t: TestApp;
  let http: ReturnType<typeof request>;
  let db: DataSource;

  beforeAll(async () => {
    // wechatMinCloseAgeMs 0: the simulator's WeChat closes at once (its 5-minute rule is tested elsewhere).
    t = await bootApp({ wechatMinCloseAgeMs: 0 });
    http = request(t.app.getHttpServer());
    db = t.app.get(DataSource);
  });
  afterAll(async () => {
    await t.close();
  });

  async function order(amount = '6.60'): Promise<string> {
    const orderId = uniqueOrderId('H');
    await http.post('/api/v1/orders').set(auth()).send({ orderId, subject: 'Hole', amount }).expect(201);
    return orderId;
  }

  const pay = (orderId: string, channel: string, payType: string) =>
    http.post(`/api/v1/orders/${orderId}/pay`).set(auth()).send({ channel, payType });

  it('paid by WeChat: the Alipay QR of the same order is closed at Alipay within seconds, without any job', async () => {
    const orderId = await order();
    expect((await pay(orderId, 'pays.AliPayType', 'pc')).status).toBe(200);
    expect((await pay(orderId, 'pays.WechatPayType', 'NATIVE')).status).toBe(200);
    t.sandbox!.alipay.scan(orderId); // the payer's phone opened the Alipay QR: the trade exists at Alipay
    expect(t.sandbox!.alipay.trade(orderId)?.status).toBe('WAIT_BUYER_PAY');

    await t.sandbox!.wechatpay.pay(orderId); // … but pays by WeChat
    await until(async () =>
      (await http.get(`/api/v1/orders/${orderId}`).set(auth())).body.status === 'success' ? true : undefined,
    );
    // JOBS_ENABLED=false in tests: only the in-process close after the payment's commit can do this.
    await until(
      () => Promise.resolve(t.sandbox!.alipay.trade(orderId)?.status === 'TRADE_CLOSED' ? true : undefined),
      5000,
    );
    await expect(t.sandbox!.alipay.pay(orderId)).rejects.toThrow();
    const attempts = await db.query<Row[]>(
      `SELECT channel, status FROM payment_attempts WHERE order_id = $1 ORDER BY channel`,
      [orderId],
    );
    expect(attempts).toEqual([
      { channel: 'pays.aliPayment', status: 'closed' },
      { channel: 'pays.myWechatPay', status: 'paid' },
    ]);
  });

  it('an Alipay QR carries the order expiry as an absolute time_expire: it cannot be paid after the order ends', async () => {
    const orderId = uniqueOrderId('H');
    const expireTime = new Date(Date.now() + 3_000).toISOString();
    await http
      .post('/api/v1/orders')
      .set(auth())
      .send({ orderId, subject: 'Short', amount: '1.00', expireTime })
      .expect(201);
    expect((await pay(orderId, 'pays.AliPayType', 'pc')).status).toBe(200);
    t.sandbox!.alipay.scan(orderId);
    const trade = t.sandbox!.alipay.trade(orderId);
    expect(trade?.expiresAt?.getTime()).toBeLessThanOrEqual(Date.parse(expireTime));
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(expireTime) - Date.now()) + 200));
    await expect(t.sandbox!.alipay.pay(orderId)).rejects.toThrow();
  });

  it('a pay request after a cancel started is 409 and creates no attempt', async () => {
    const orderId = await order();
    await db.query(`UPDATE orders SET cancel_requested_at = now() WHERE order_id = $1`, [orderId]);
    const res = await pay(orderId, 'pays.AliPayType', 'pc');
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('ORDER_STATUS_ERROR');
    expect(await db.query(`SELECT id FROM payment_attempts WHERE order_id = $1`, [orderId])).toEqual([]);
  });

  it('a WeChat payment after the order was cancelled is recorded as a late payment; the order stays closed', async () => {
    const orderId = await order();
    expect((await pay(orderId, 'pays.WechatPayType', 'NATIVE')).status).toBe(200);
    // The payer has the QR open; the merchant cancels; the close at WeChat fails (the channel is down),
    // so the order cannot be closed … then the channel comes back, and the order is closed.
    t.sandbox!.wechatpay.setDropNotifies(true);
    try {
      await t.sandbox!.wechatpay.pay(orderId);
      // Simulate a cancel that happened before the payment was known: close the order on our side.
      await db.query(`UPDATE orders SET status = 'close', closed_reason = 'cancelled' WHERE order_id = $1`, [orderId]);
    } finally {
      t.sandbox!.wechatpay.setDropNotifies(false);
    }
    const res = await http.post(`/api/v1/orders/${orderId}/check`).set(auth()).send({});
    expect(res.body.status).toBe('close');
    const [a] = await db.query<Row[]>(`SELECT status FROM payment_attempts WHERE order_id = $1`, [orderId]);
    expect(a).toEqual({ status: 'paid' });
    const events = await db.query<Row[]>(`SELECT type AS topic FROM events WHERE order_id = $1 ORDER BY seq`, [
      orderId,
    ]);
    expect(events.map((e) => e['topic'])).toEqual(['payment.late']);
  });

  it('without WEBHOOK_SECRETS an order with a notifyUrl is refused: webhooks are never sent unsigned', async () => {
    const orderId = uniqueOrderId('HW');
    const res = await http
      .post('/api/v1/orders')
      .set(auth())
      .send({ orderId, subject: 'hook', amount: '1.00', notifyUrl: 'https://merchant.example.com/hooks' });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('INVALID_PARAMS');
    expect(res.body.message).toMatch(/WEBHOOK_SECRETS/);
    expect(await db.query(`SELECT id FROM orders WHERE order_id = $1`, [orderId])).toEqual([]);
  });

  it('a sweep pass takes each order once, even when orders that keep failing are postponed by 0 s', async () => {
    const ids = Array.from({ length: 12 }, () => uniqueOrderId('HP'));
    await db.query(
      `INSERT INTO orders (id, order_id, subject, amount_minor, currency, status, expire_time)
       SELECT gen_random_uuid(), oid, 'gone', 100, 'CNY', 'wait', now() - interval '1 second' FROM unnest($1::varchar[]) oid`,
      [ids],
    );
    // Attempts on a channel instance this app does not have: every try fails (CHANNEL_NOT_FOUND).
    await db.query(
      `INSERT INTO payment_attempts (id, order_pk, order_id, channel, channel_type, pay_type, out_trade_no, amount_minor, currency, status)
       SELECT gen_random_uuid(), o.id, o.order_id, 'pays.gone', 'pays.AliPayType', 'PRE_PAY', o.order_id, 100, 'CNY', 'open'
         FROM orders o WHERE o.order_id = ANY($1)`,
      [ids],
    );
    const r = await t.app.get(TimeoutCloserJob).sweepOnce({ retryScheduleMs: [0] });
    expect(r.stuck).toBeGreaterThanOrEqual(12);
    const rows = await db.query<Row[]>(`SELECT sweep_attempts AS n FROM orders WHERE order_id = ANY($1)`, [ids]);
    expect(rows.map((x) => x['n'])).toEqual(ids.map(() => 1));
    // Postponed by 0 s: the next pass takes them again.
    await t.app.get(TimeoutCloserJob).sweepOnce({ retryScheduleMs: [0] });
    const again = await db.query<Row[]>(`SELECT sweep_attempts AS n FROM orders WHERE order_id = ANY($1)`, [ids]);
    expect(again.map((x) => x['n'])).toEqual(ids.map(() => 2));
    // Leave nothing for other suites' sweeps to trip on.
    await db.query(`UPDATE orders SET status = 'close', closed_reason = 'test' WHERE order_id = ANY($1)`, [ids]);
  });

  describe('with the process clock an hour behind the database', () => {
    class BehindClock extends Clock {
      now(): Date {
        return new Date(Date.now() - 3_600_000);
      }
    }
    let t2: TestApp;
    beforeAll(async () => {
      t2 = await bootApp({ clock: new BehindClock() });
    });
    afterAll(async () => {
      await t2?.close();
    });

    it('the sweep claims by the database clock: an order expired there is swept, and its lease is set on that clock', async () => {
      const h2 = request(t2.app.getHttpServer());
      const db2 = t2.app.get(DataSource);
      const orderId = uniqueOrderId('HC');
      await h2.post('/api/v1/orders').set(auth()).send({ orderId, subject: 'clock', amount: '1.00' }).expect(201);
      await db2.query(`UPDATE orders SET expire_time = now() - interval '1 second' WHERE order_id = $1`, [orderId]);
      const r = await t2.app.get(TimeoutCloserJob).sweepOnce({ retryScheduleMs: [60_000] });
      expect(r.timedOut).toBeGreaterThanOrEqual(1);
      const [row] = await db2.query<Row[]>(
        `SELECT status, sweep_after > now() AS leased, sweep_after < now() + interval '10 minutes' AS near
           FROM orders WHERE order_id = $1`,
        [orderId],
      );
      // Swept at once (the process's clock would say it expires in an hour), with a lease of about
      // 120 s from the database's now (the process's clock would have put it an hour in the past).
      expect(row).toEqual({ status: 'timeout', leased: true, near: true });
    });
  });
});
