import request from 'supertest';
import { DataSource } from 'typeorm';
import { RefundSyncJob } from '#payments';
import { auth, bootApp, type TestApp, uniqueOrderId, until } from '../utils/test-app.js';

type Row = Record<string, unknown>;

/** What a test needs of one channel: how a buyer pays, and what its simulator knows of refunds. */
interface Harness {
  readonly name: string;
  readonly channel: string;
  readonly payType: string;
  payExtra(): Record<string, unknown>;
  /** The buyer pays at the simulator (its notify then reaches the app). */
  buyerPays(orderId: string): Promise<void>;
  /** Refunds the simulator holds for the order's payment: amount in fen and status. */
  simRefunds(orderId: string): Promise<Array<{ fen: number; status: string }>>;
  setRefundDelayMs(ms: number): void;
  failNextRefund(): void;
  setLatencyMs(ms: number): void;
  setDropNotifies(drop: boolean): void;
}

/** One app for the suite; channel calls time out after 1.5 s so a "timeout" can be provoked quickly. */
describe('refunds on the three channels (issue 10)', () => {
  let t: TestApp;
  let http: ReturnType<typeof request>;
  let db: DataSource;

  beforeAll(async () => {
    t = await bootApp({ wechatMinCloseAgeMs: 0, sandboxInstanceConfig: { timeoutMs: 1500 } });
    http = request(t.app.getHttpServer());
    db = t.app.get(DataSource);
  });
  afterAll(async () => {
    await t.close();
  });

  const sim = () => t.sandbox!;
  const outTradeNoOf = async (orderId: string, channel: string): Promise<string> => {
    const rows = await db.query<Row[]>(
      `SELECT a.out_trade_no FROM payment_attempts a WHERE a.order_id = $1 AND a.channel_type = $2`,
      [orderId, channel],
    );
    return String(rows[0]?.['out_trade_no']);
  };

  const harnesses: Harness[] = [
    {
      name: 'Alipay',
      channel: 'pays.AliPayType',
      payType: 'PRE_PAY',
      payExtra: () => ({}),
      async buyerPays(orderId) {
        sim().alipay.scan(orderId);
        await sim().alipay.pay(orderId);
      },
      simRefunds: (orderId) =>
        Promise.resolve(
          (sim().alipay.trade(orderId)?.refunds ?? []).map((r) => ({ fen: Number(r.amountFen), status: r.status })),
        ),
      setRefundDelayMs: (ms) => sim().alipay.setRefundDelayMs(ms),
      failNextRefund: () => sim().alipay.failNextRefund(),
      setLatencyMs: (ms) => sim().alipay.setLatencyMs(ms),
      setDropNotifies: (d) => sim().alipay.setDropNotifies(d),
    },
    {
      name: 'WeChat Pay',
      channel: 'pays.WechatPayType',
      payType: 'NATIVE',
      payExtra: () => ({}),
      buyerPays: (orderId) => sim().wechatpay.pay(orderId),
      simRefunds: (orderId) =>
        Promise.resolve(
          sim()
            .wechatpay.refundsOf(orderId)
            .map((r) => ({ fen: r.refundFee, status: r.status })),
        ),
      setRefundDelayMs: (ms) => sim().wechatpay.setRefundDelayMs(ms),
      failNextRefund: () => sim().wechatpay.failNextRefund(),
      setLatencyMs: (ms) => sim().wechatpay.setLatencyMs(ms),
      setDropNotifies: (d) => sim().wechatpay.setDropNotifies(d),
    },
    {
      name: 'Alipay+',
      channel: 'pays.AlipayPlusType',
      payType: 'CASHIER',
      payExtra: () => ({ authCode: sim().alipayplus.issueAuthCode() }),
      async buyerPays(orderId) {
        await sim().alipayplus.pay(await outTradeNoOf(orderId, 'pays.AlipayPlusType'));
      },
      async simRefunds(orderId) {
        return sim()
          .alipayplus.refundsOf(await outTradeNoOf(orderId, 'pays.AlipayPlusType'))
          .map((r) => ({ fen: Number(r.amount.value), status: r.status }));
      },
      setRefundDelayMs: (ms) => sim().alipayplus.setRefundDelayMs(ms),
      failNextRefund: () => sim().alipayplus.failNextRefund(),
      setLatencyMs: (ms) => sim().alipayplus.setLatencyMs(ms),
      setDropNotifies: (d) => sim().alipayplus.setDropNotifies(d),
    },
  ];

  const getOrder = async (orderId: string): Promise<Row> =>
    (await http.get(`/api/v1/orders/${orderId}`).set(auth())).body as Row;
  const refund = (orderId: string, body: Record<string, unknown> = {}) =>
    http.post(`/api/v1/orders/${orderId}/refunds`).set(auth()).send(body);
  const getRefund = async (refundId: string): Promise<Row> =>
    (await http.get(`/api/v1/refunds/${refundId}`).set(auth())).body as Row;
  const eventTypes = async (orderId: string): Promise<string[]> =>
    (await db.query<Row[]>(`SELECT type FROM events WHERE order_id = $1 ORDER BY seq`, [orderId])).map((e) =>
      String(e['type']),
    );
  /** Makes every pending refund of the order due and runs one refund sync pass. */
  const syncRefunds = async (orderId: string) => {
    await db.query(`UPDATE refunds SET next_sync_at = now() WHERE order_id = $1 AND status = 'pending'`, [orderId]);
    return t.app.get(RefundSyncJob).syncOnce();
  };

  async function paidOrder(h: Harness, amount = '6.60'): Promise<string> {
    const orderId = uniqueOrderId('RF');
    await http.post('/api/v1/orders').set(auth()).send({ orderId, subject: '退款测试 refund', amount }).expect(201);
    const pay = await http
      .post(`/api/v1/orders/${orderId}/pay`)
      .set(auth())
      .send({ channel: h.channel, payType: h.payType, ...h.payExtra() });
    expect(pay.status).toBe(200);
    await h.buyerPays(orderId);
    await until(async () => ((await getOrder(orderId))['status'] === 'success' ? true : undefined));
    return orderId;
  }

  describe.each(harnesses)('$name', (h) => {
    it('a full refund: 201 success, the order says full, one refund at the channel, refund.succeeded', async () => {
      const orderId = await paidOrder(h);
      const res = await refund(orderId, { reason: '顾客退货' });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({
        orderId,
        amount: '6.60',
        currency: 'CNY',
        status: 'success',
        source: 'api',
        reason: '顾客退货',
      });
      expect(res.body.refundId).toMatch(/^RF[0-9a-f]{24}$/);
      expect(await getOrder(orderId)).toMatchObject({ refundedAmount: '6.60', refundStatus: 'full' });
      expect(await h.simRefunds(orderId)).toEqual([{ fen: 660, status: expect.stringMatching(/SUCCESS/) }]);
      expect(await eventTypes(orderId)).toEqual(['order.succeeded', 'refund.succeeded']);
      // Nothing is left: a further refund is 409, and nothing reaches the channel.
      const more = await refund(orderId, { amount: '0.01' });
      expect(more.status).toBe(409);
      expect(more.body.code).toBe('REFUND_AMOUNT_EXCEEDED');
      expect(await h.simRefunds(orderId)).toHaveLength(1);
    });

    it('two partial refunds, then one over what is left (409); the same refundId again answers the first', async () => {
      const orderId = await paidOrder(h);
      const first = await refund(orderId, { amount: '1.00', refundId: `${orderId}_1` });
      const second = await refund(orderId, { amount: 2, refundId: `${orderId}_2` });
      expect([first.status, second.status]).toEqual([201, 201]);
      expect([first.body.status, second.body.status]).toEqual(['success', 'success']);
      expect(await getOrder(orderId)).toMatchObject({ refundedAmount: '3.00', refundStatus: 'partial' });
      const over = await refund(orderId, { amount: '3.61' });
      expect(over.status).toBe(409);
      expect(over.body.code).toBe('REFUND_AMOUNT_EXCEEDED');
      const again = await refund(orderId, { amount: '1.00', refundId: `${orderId}_1` });
      expect(again.status).toBe(200);
      expect(again.body.refundId).toBe(`${orderId}_1`);
      const clash = await refund(orderId, { amount: '1.50', refundId: `${orderId}_1` });
      expect(clash.status).toBe(409);
      expect(clash.body.code).toBe('REFUND_EXISTS');
      const list = await http.get(`/api/v1/orders/${orderId}/refunds`).set(auth());
      expect(list.body.map((r: Row) => r['amount'])).toEqual(['1.00', '2.00']);
      expect((await h.simRefunds(orderId)).map((r) => r.fen).sort((a, b) => a - b)).toEqual([100, 200]);
    });

    it('a refund of an unpaid order is 409 ORDER_STATUS_ERROR and creates nothing', async () => {
      const orderId = uniqueOrderId('RF');
      await http.post('/api/v1/orders').set(auth()).send({ orderId, subject: 'x', amount: '1.00' }).expect(201);
      const res = await refund(orderId);
      expect(res.status).toBe(409);
      expect(res.body.code).toBe('ORDER_STATUS_ERROR');
      expect(await db.query(`SELECT id FROM refunds WHERE order_id = $1`, [orderId])).toEqual([]);
    });

    it('a refund whose channel call timed out stays pending and is settled by the sync job: one refund at the channel', async () => {
      const orderId = await paidOrder(h);
      // Longer than the instance's 1.5 s timeoutMs: whether the channel did it is unknown to us.
      h.setLatencyMs(2500);
      h.setDropNotifies(true); // and no refund notify tells us: only the sync job can settle it
      let res: request.Response;
      try {
        res = await refund(orderId, { amount: '2.00' });
        h.setLatencyMs(0);
        expect(res.status).toBe(201);
        expect(res.body.status).toBe('pending');
        await new Promise((r) => setTimeout(r, 1500)); // the simulator finishes what it was sent
        const r = await syncRefunds(orderId);
        expect(r.succeeded).toBe(1);
      } finally {
        h.setLatencyMs(0);
        h.setDropNotifies(false);
      }
      expect(await getRefund(String(res.body.refundId))).toMatchObject({ status: 'success', amount: '2.00' });
      expect(await h.simRefunds(orderId)).toEqual([{ fen: 200, status: expect.stringMatching(/SUCCESS/) }]);
      expect(await getOrder(orderId)).toMatchObject({ refundedAmount: '2.00' });
    });

    it('a refund the channel finishes later: pending, then settled by the sync job', async () => {
      const orderId = await paidOrder(h);
      h.setRefundDelayMs(300);
      h.setDropNotifies(true);
      let res: request.Response;
      try {
        res = await refund(orderId, { amount: '1.10' });
        expect(res.status).toBe(201);
        expect(res.body.status).toBe('pending');
        await new Promise((r) => setTimeout(r, 500));
        expect((await getRefund(String(res.body.refundId)))['status']).toBe('pending');
        const r = await syncRefunds(orderId);
        expect(r.succeeded).toBe(1);
      } finally {
        h.setRefundDelayMs(0);
        h.setDropNotifies(false);
      }
      expect(await getRefund(String(res.body.refundId))).toMatchObject({ status: 'success' });
      expect(await getOrder(orderId)).toMatchObject({ refundedAmount: '1.10', refundStatus: 'partial' });
    });

    it('a refund the channel finishes later: settled by its refund notify (no job runs)', async () => {
      const orderId = await paidOrder(h);
      h.setRefundDelayMs(200);
      let res: request.Response;
      try {
        res = await refund(orderId);
        expect(res.body.status).toBe('pending');
      } finally {
        h.setRefundDelayMs(0);
      }
      const refundId = String(res.body.refundId);
      await until(async () => ((await getRefund(refundId))['status'] === 'success' ? true : undefined));
      const inbox = await db.query<Row[]>(
        `SELECT verdict FROM notify_inbox WHERE order_id = $1 AND verdict LIKE 'refund%'`,
        [orderId],
      );
      expect(inbox.map((i) => i['verdict'])).toContain('refund_applied');
      expect(await getOrder(orderId)).toMatchObject({ refundedAmount: '6.60', refundStatus: 'full' });
    });

    it('a refund the channel refuses is failed with its code, and its amount can be refunded again', async () => {
      const orderId = await paidOrder(h);
      h.failNextRefund();
      const res = await refund(orderId, { amount: '6.60' });
      expect(res.status).toBe(201);
      expect(res.body.status).toBe('failed');
      expect(res.body.failureCode).toEqual(expect.any(String));
      expect(await getOrder(orderId)).toMatchObject({ refundedAmount: '0.00', refundStatus: 'none' });
      expect(await eventTypes(orderId)).toEqual(['order.succeeded', 'refund.failed']);
      const retry = await refund(orderId);
      expect(retry.body).toMatchObject({ status: 'success', amount: '6.60' });
    });
  });

  it('an order paid by Alipay and by WeChat keeps one payment; the second is refunded by itself', async () => {
    const orderId = uniqueOrderId('RF');
    await http.post('/api/v1/orders').set(auth()).send({ orderId, subject: 'twice', amount: '4.20' }).expect(201);
    await http.post(`/api/v1/orders/${orderId}/pay`).set(auth()).send({ channel: 'pays.AliPayType', payType: 'pc' });
    await http
      .post(`/api/v1/orders/${orderId}/pay`)
      .set(auth())
      .send({ channel: 'pays.WechatPayType', payType: 'NATIVE' });
    sim().alipay.scan(orderId);
    // Both buyers pay before the other attempt can be closed (WeChat's first notify is held back).
    sim().wechatpay.setDropNotifies(true);
    try {
      await sim().wechatpay.pay(orderId);
    } finally {
      sim().wechatpay.setDropNotifies(false);
    }
    await sim().alipay.pay(orderId);
    await until(async () => ((await getOrder(orderId))['status'] === 'success' ? true : undefined));
    // The WeChat attempt is closed right away … and WeChat says it was paid: a second payment.
    await until(async () => {
      const rows = await db.query<Row[]>(`SELECT status FROM refunds WHERE order_id = $1`, [orderId]);
      return rows[0]?.['status'] === 'success' ? true : undefined;
    });
    // Whichever payment was recorded first is kept; the other is the second payment, refunded.
    const order = await getOrder(orderId);
    const kept = String(order['channel']);
    const other = kept === 'pays.aliPayment' ? 'pays.myWechatPay' : 'pays.aliPayment';
    expect(order).toMatchObject({ status: 'success', refundStatus: 'none', refundedAmount: '0.00' });
    const payments = order['payments'] as Row[];
    expect(payments.map((p) => [p['channel'], p['second'], p['refundedAmount']]).sort()).toEqual(
      [
        [kept, false, '0.00'],
        [other, true, '4.20'],
      ].sort(),
    );
    const refunds = (await http.get(`/api/v1/orders/${orderId}/refunds`).set(auth())).body as Row[];
    expect(refunds).toEqual([
      expect.objectContaining({ source: 'auto_second_payment', channel: other, amount: '4.20', status: 'success' }),
    ]);
    const atWechat = sim()
      .wechatpay.refundsOf(orderId)
      .map((r) => r.refundFee);
    const atAlipay = (sim().alipay.trade(orderId)?.refunds ?? []).map((r) => Number(r.amountFen));
    expect(kept === 'pays.aliPayment' ? [atAlipay, atWechat] : [atWechat, atAlipay]).toEqual([[], [420]]);
    expect(await eventTypes(orderId)).toEqual(['order.succeeded', 'payment.second', 'refund.succeeded']);
  });

  it('a payment after cancel is refunded by itself; the order stays closed', async () => {
    const orderId = uniqueOrderId('RF');
    await http.post('/api/v1/orders').set(auth()).send({ orderId, subject: 'late', amount: '3.30' }).expect(201);
    await http.post(`/api/v1/orders/${orderId}/pay`).set(auth()).send({ channel: 'pays.AliPayType', payType: 'pc' });
    // Cancelled before anyone scanned the QR: nothing existed at Alipay to close.
    expect((await http.post(`/api/v1/orders/${orderId}/cancel`).set(auth()).send({})).body.status).toBe('close');
    sim().alipay.scan(orderId);
    await sim().alipay.pay(orderId); // its notify arrives: a late payment
    await until(async () => {
      const rows = await db.query<Row[]>(`SELECT status FROM refunds WHERE order_id = $1`, [orderId]);
      return rows[0]?.['status'] === 'success' ? true : undefined;
    });
    const order = await getOrder(orderId);
    expect(order).toMatchObject({ status: 'close', refundedAmount: '0.00' });
    expect((order['payments'] as Row[]).map((p) => [p['late'], p['refundedAmount']])).toEqual([[true, '3.30']]);
    expect(
      sim()
        .alipay.trade(orderId)
        ?.refunds.map((r) => Number(r.amountFen)),
    ).toEqual([330]);
    expect(await eventTypes(orderId)).toEqual(['order.closed', 'payment.late', 'refund.succeeded']);
  });

  it('AUTO_REFUND is honoured per payment: one automatic refund even when the news comes twice', async () => {
    const orderId = uniqueOrderId('RF');
    await http.post('/api/v1/orders').set(auth()).send({ orderId, subject: 'late2', amount: '2.00' }).expect(201);
    await http.post(`/api/v1/orders/${orderId}/pay`).set(auth()).send({ channel: 'pays.AliPayType', payType: 'pc' });
    await http.post(`/api/v1/orders/${orderId}/cancel`).set(auth()).send({}).expect(200);
    sim().alipay.scan(orderId);
    await sim().alipay.pay(orderId);
    await until(async () =>
      (await db.query<Row[]>(`SELECT 1 FROM refunds WHERE order_id = $1`, [orderId])).length ? true : undefined,
    );
    // A check and the sync job see the same paid trade again: nothing more is refunded.
    await http.post(`/api/v1/orders/${orderId}/check`).set(auth()).send({}).expect(200);
    expect(await db.query(`SELECT source FROM refunds WHERE order_id = $1`, [orderId])).toEqual([
      { source: 'auto_late_payment' },
    ]);
  });

  it('20 concurrent partial refunds of one order never refund more than was paid', async () => {
    const orderId = await paidOrder(harnesses[0]!, '10.00');
    const results = await Promise.all(Array.from({ length: 20 }, () => refund(orderId, { amount: '0.75' })));
    const ok = results.filter((r) => r.status === 201);
    const refused = results.filter((r) => r.status === 409);
    expect(ok.length + refused.length).toBe(20);
    expect(ok).toHaveLength(13); // 13 × 0.75 = 9.75 ≤ 10.00 < 14 × 0.75
    expect(refused.every((r) => r.body.code === 'REFUND_AMOUNT_EXCEEDED')).toBe(true);
    const [sum] = await db.query<Row[]>(
      `SELECT sum(amount_minor)::int AS held, (SELECT refund_held_minor::int FROM payment_attempts a
          WHERE a.order_id = $1 AND a.status = 'paid') AS payment_held
         FROM refunds WHERE order_id = $1 AND status <> 'failed'`,
      [orderId],
    );
    expect(sum).toEqual({ held: 975, payment_held: 975 });
    expect(await getOrder(orderId)).toMatchObject({ refundedAmount: '9.75' });
    const atAlipay = sim().alipay.trade(orderId)?.refunds ?? [];
    expect(atAlipay.reduce((s, r) => s + Number(r.amountFen), 0)).toBe(975);
  });

  it('the facade refunds too, with the seeds argument names', async () => {
    const orderId = await paidOrder(harnesses[0]!, '1.00');
    const res = await http
      .post(`/api/paybridge/pays/services/PaySvc/refund`)
      .set(auth())
      .send({ orderId, amount: '0.40', refundId: `${orderId}_F` });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ refundId: `${orderId}_F`, amount: '0.40', status: 'success' });
  });

  it('bad refund input changes nothing: amount, refundId, unknown order and unknown refund', async () => {
    const orderId = await paidOrder(harnesses[0]!, '1.00');
    for (const [body, code] of [
      [{ amount: '0' }, 'INVALID_AMOUNT'],
      [{ amount: '1e2' }, 'INVALID_AMOUNT'],
      [{ amount: '0.001' }, 'INVALID_AMOUNT'],
      [{ refundId: 'a b' }, 'INVALID_PARAMS'],
      [{ extra: 1 }, 'INVALID_PARAMS'],
    ] as const) {
      const res = await refund(orderId, body);
      expect([res.status, res.body.code]).toEqual([400, code]);
    }
    expect((await refund('NO_SUCH_ORDER_1')).status).toBe(404);
    expect((await http.get('/api/v1/refunds/NO_SUCH_REFUND').set(auth())).body.code).toBe('REFUND_NOT_EXIST');
    expect(await db.query(`SELECT id FROM refunds WHERE order_id = $1`, [orderId])).toEqual([]);
  });
});
