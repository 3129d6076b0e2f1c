import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { Clock } from '#common';
import { TimeoutCloserJob } from '#payments';
import type { AlipayPlusSimulator } from '#sandbox';
import {
  NOTIFY_PATH,
  type OwnWallet,
  alipayPlusSignature,
  inboxHash,
  isoWithOffset,
  notifyBody,
  signedNotifyHeaders,
  startOwnWallet,
} from '../utils/alipayplus-notify.js';
import { auth, bootApp, type TestApp, uniqueOrderId, until } from '../utils/test-app.js';

/**
 * The Alipay+ mini-program wallet channel end to end (API.md §4, §6; PROTOCOLS.md §3): authCode →
 * applyToken → pay → cashier URL (my.tradePay) → signed notifyPayment → order success; the client result
 * table; forged and replayed notifies; auth codes; expiry through the timeout closer.
 */

type Row = Record<string, unknown>;

/** What a wallet access or refresh token looks like in the sandbox (`AT_`/`RT_` + 32 hex). */
const TOKEN = /\b(?:AT|RT)_[0-9a-f]{32}\b|accessToken|refreshToken/;

describe('Alipay+ mini-program wallet (pays.AlipayPlusType)', () => {
  let t: TestApp;
  let http: ReturnType<typeof request>;
  let wallet: AlipayPlusSimulator;
  let own: OwnWallet;
  let ds: DataSource;

  beforeAll(async () => {
    own = await startOwnWallet();
    t = await bootApp({ instances: [own.instance] });
    http = request(t.app.getHttpServer());
    wallet = t.sandbox!.alipayplus;
    ds = t.app.get(DataSource);
  });
  afterAll(async () => {
    await t?.close();
    await own?.close();
  });
  afterEach(() => {
    wallet.setDown(false);
    wallet.setDropNotifies(false);
    own.simulator.setDropNotifies(false);
  });

  // -------------------------------------------------------------------------------------------------
  // helpers

  async function createOrder(extra: Record<string, unknown> = {}, amount = '12.34'): Promise<string> {
    const orderId = uniqueOrderId('AP');
    const res = await http
      .post('/api/v1/orders')
      .set(auth())
      .send({ orderId, subject: 'Mini-program coffee', amount, ...extra });
    expect(res.status).toBe(201);
    return orderId;
  }

  const payRequest = (orderId: string, body: Record<string, unknown>) =>
    http.post(`/api/v1/orders/${orderId}/pay`).set(auth()).send(body);

  /** Creates an order and opens the wallet cashier for it; answers what the test needs to drive it. */
  async function openPayment(
    opts: { channel?: string; sim?: AlipayPlusSimulator; extra?: Record<string, unknown>; customerId?: string } = {},
  ): Promise<{ orderId: string; paymentRequestId: string; paymentId: string; payUrl: string }> {
    const sim = opts.sim ?? wallet;
    const orderId = await createOrder(opts.extra);
    const res = await payRequest(orderId, {
      channel: opts.channel ?? 'pays.AlipayPlusType',
      payType: 'CASHIER',
      authCode: sim.issueAuthCode(opts.customerId),
    });
    expect(res.status).toBe(200);
    const attempt = await attemptOf(orderId);
    const paymentRequestId = String(attempt['out_trade_no']);
    const payment = sim.payment(paymentRequestId);
    expect(payment?.status).toBe('PROCESSING');
    return { orderId, paymentRequestId, paymentId: payment!.paymentId, payUrl: res.body.payUrl as string };
  }

  async function orderRow(orderId: string): Promise<Row> {
    const rows = await ds.query<Row[]>('SELECT * FROM orders WHERE order_id = $1', [orderId]);
    expect(rows).toHaveLength(1);
    return rows[0]!;
  }

  async function attemptOf(orderId: string): Promise<Row> {
    const rows = await ds.query<Row[]>('SELECT * FROM payment_attempts WHERE order_id = $1', [orderId]);
    expect(rows).toHaveLength(1);
    return rows[0]!;
  }

  /** Everything a notify could change about one order. */
  async function stateOf(orderId: string): Promise<{ order: Row; attempts: Row[]; outbox: Row[] }> {
    return {
      order: await orderRow(orderId),
      attempts: await ds.query<Row[]>('SELECT * FROM payment_attempts WHERE order_id = $1 ORDER BY id', [orderId]),
      outbox: await ds.query<Row[]>('SELECT type AS topic, order_id FROM events WHERE order_id = $1 ORDER BY seq', [
        orderId,
      ]),
    };
  }

  async function inboxRow(body: string, signature: string): Promise<Row | undefined> {
    const rows = await ds.query<Row[]>(
      'SELECT channel_type, channel, verdict, order_id, out_trade_no, receive_count FROM notify_inbox WHERE payload_sha256 = $1',
      [inboxHash(body, signature)],
    );
    return rows[0];
  }

  const postNotify = (body: string, headers: Record<string, string>) => http.post(NOTIFY_PATH).set(headers).send(body);

  const clientResult = (orderId: string, resultCode: string) =>
    http.post(`/api/v1/orders/${orderId}/client-result`).set(auth()).send({ resultCode });

  const getOrder = async (orderId: string): Promise<Row> =>
    (await http.get(`/api/v1/orders/${orderId}`).set(auth()).expect(200)).body as Row;

  const paidOrder = (orderId: string): Promise<Row> =>
    until(async () => {
      const o = await getOrder(orderId);
      return o['status'] === 'success' ? o : undefined;
    });

  // -------------------------------------------------------------------------------------------------

  describe('authCode → pay → cashier → notifyPayment → success', () => {
    it('pays through the cashier form as a browser would; no token ever reaches a client', async () => {
      const answers: string[] = [];
      const orderId = await createOrder();
      const authCode = wallet.issueAuthCode();

      const pay = await payRequest(orderId, { channel: 'pays.AlipayPlusType', payType: 'CASHIER', authCode });
      answers.push(pay.text);
      expect(pay.status).toBe(200);
      expect(pay.body).toMatchObject({
        orderId,
        channel: 'pays.myWallet',
        payType: 'CASHIER',
        qrCode: null,
        form: null,
        jsapiParams: null,
      });
      const payUrl = pay.body.payUrl as string;
      expect(payUrl).toMatch(new RegExp(`^${t.baseUrl}/sandbox/alipayplus/cashier/\\d+$`));

      const attempt = await attemptOf(orderId);
      expect(attempt).toMatchObject({ channel: 'pays.myWallet', status: 'open', pay_url: payUrl });
      const paymentRequestId = String(attempt['out_trade_no']);
      const atWallet = wallet.payment(paymentRequestId)!;
      expect(atWallet).toMatchObject({ status: 'PROCESSING', amount: { currency: 'CNY', value: '1234' } });
      expect(payUrl.endsWith(`/cashier/${atWallet.paymentId}`)).toBe(true);
      expect(attempt['channel_trade_no']).toBe(atWallet.paymentId);

      // my.tradePay({paymentUrl}) opens the cashier page.
      const page = await fetch(payUrl);
      const html = await page.text();
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      expect(html).toContain('12.34 CNY');
      expect(html).toContain('Mini-program coffee');
      const action = /<form method="post" action="([^"]+\/pay)"/.exec(html)?.[1];
      expect(action).toBeDefined();

      // The user taps "Pay": the form posts, the wallet takes the money and sends a signed notify.
      const submitted = await fetch(new URL(action!, payUrl), {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: '',
      });
      expect(submitted.status).toBe(200);
      expect(await submitted.text()).toContain('Paid');
      expect(await wallet.whenAcknowledged(paymentRequestId, 5000)).toBe(true);

      const order = await paidOrder(orderId);
      expect(order).toMatchObject({
        orderId,
        status: 'success',
        channel: 'pays.myWallet',
        payType: 'CASHIER',
        channelTradeNo: atWallet.paymentId,
        amount: '12.34',
        currency: 'CNY',
      });
      expect(order['payTime']).toEqual(expect.any(String));
      answers.push(JSON.stringify(order));

      const state = await stateOf(orderId);
      expect(state.attempts).toEqual([expect.objectContaining({ status: 'paid', out_trade_no: paymentRequestId })]);
      expect(state.outbox).toEqual([{ topic: 'order.succeeded', order_id: orderId }]);
      const inbox = await ds.query<Row[]>('SELECT verdict, channel FROM notify_inbox WHERE order_id = $1', [orderId]);
      expect(inbox).toEqual([{ verdict: 'applied', channel: 'pays.myWallet' }]);
      expect(wallet.notifyLog.filter((e) => e.paymentRequestId === paymentRequestId)).toEqual([
        expect.objectContaining({ attempt: 1, outcome: 'acknowledged', resultStatus: 'S', httpStatus: 200 }),
      ]);

      // Every answer a client can see about this order: none carries a wallet token.
      answers.push((await http.post(`/api/v1/orders/${orderId}/check`).set(auth()).send({})).text);
      answers.push((await clientResult(orderId, '9000')).text);
      answers.push((await http.get(`/api/v1/orders/${orderId}`).set(auth())).text);
      for (const text of answers) expect(text).not.toMatch(TOKEN);
    });

    it('pays through the wallet hook (payType mobile), and 9000 afterwards answers done', async () => {
      const orderId = await createOrder();
      const pay = await payRequest(orderId, {
        channel: 'pays.myWallet',
        payType: 'mobile',
        authCode: wallet.issueAuthCode(),
      });
      expect(pay.status).toBe(200);
      expect(pay.body.payType).toBe('CASHIER');
      expect(pay.text).not.toMatch(TOKEN);
      const paymentRequestId = String((await attemptOf(orderId))['out_trade_no']);

      await wallet.pay(paymentRequestId);
      expect(await wallet.whenAcknowledged(paymentRequestId, 5000)).toBe(true);
      const order = await paidOrder(orderId);
      expect(order['channelTradeNo']).toBe(wallet.payment(paymentRequestId)?.paymentId);

      const done = await clientResult(orderId, '9000');
      expect(done.status).toBe(200);
      expect(done.body).toMatchObject({ orderId, status: 'success', next: 'done' });
      expect((await stateOf(orderId)).outbox).toHaveLength(1);
    });
  });

  // -------------------------------------------------------------------------------------------------

  describe('client results (POST /orders/:id/client-result)', () => {
    it("9000 before the wallet has the money → poll: the client's word never marks the order paid", async () => {
      const { orderId, paymentRequestId } = await openPayment();
      const res = await clientResult(orderId, '9000');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ orderId, status: 'wait', next: 'poll' });
      expect(typeof res.body.meaning).toBe('string');
      const state = await stateOf(orderId);
      expect(state.order['status']).toBe('wait');
      expect(state.attempts[0]?.['status']).toBe('open');
      expect(state.outbox).toEqual([]);
      expect(wallet.payment(paymentRequestId)?.status).toBe('PROCESSING');
    });

    it('9000 after the wallet took the money but the notify was lost → the check finds it → done', async () => {
      const { orderId, paymentRequestId } = await openPayment();
      wallet.setDropNotifies(true);
      await wallet.pay(paymentRequestId);
      expect(wallet.payment(paymentRequestId)?.status).toBe('SUCCESS');
      expect((await getOrder(orderId))['status']).toBe('wait');

      const res = await clientResult(orderId, '9000');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ orderId, status: 'success', next: 'done', channel: 'pays.myWallet' });
      // It was the inquiry, not a notify, that settled it.
      const log = wallet.notifyLog.filter((e) => e.paymentRequestId === paymentRequestId);
      expect(log.length).toBeGreaterThan(0);
      expect(log.every((e) => e.outcome === 'dropped')).toBe(true);
      const state = await stateOf(orderId);
      expect(state.attempts[0]?.['status']).toBe('paid');
      expect(state.outbox).toEqual([{ topic: 'order.succeeded', order_id: orderId }]);
    });

    it.each(['8000', '6004', '6002', '1003'])('%s → poll, the order stays wait', async (code) => {
      const { orderId, paymentRequestId } = await openPayment();
      const res = await clientResult(orderId, code);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ orderId, status: 'wait', next: 'poll' });
      expect((await attemptOf(orderId))['status']).toBe('open');
      expect(wallet.payment(paymentRequestId)?.status).toBe('PROCESSING');
    });

    it.each(['6001', '1001'])(
      '%s while the cashier is still open → retry, and the order stays payable',
      async (code) => {
        const customerId = `2188${randomBytes(6).toString('hex')}`;
        const { orderId, paymentRequestId, payUrl } = await openPayment({ customerId });
        const res = await clientResult(orderId, code);
        expect(res.status).toBe(200);
        expect(res.body).toMatchObject({ orderId, status: 'wait', next: 'retry' });
        // The user tries again: the same cashier comes back, and paying it settles the order.
        const again = await payRequest(orderId, {
          channel: 'pays.AlipayPlusType',
          payType: 'CASHIER',
          authCode: wallet.issueAuthCode(customerId),
        });
        expect(again.status).toBe(200);
        expect(again.body.payUrl).toBe(payUrl);
        await wallet.pay(paymentRequestId);
        await paidOrder(orderId);
      },
    );

    // Product bug (see the report): after the user abandons the wallet cashier, the wallet payment is
    // FAIL and its notify marks the attempt `failed`; 6001 then answers `retry` ("the order stays
    // payable"), but POST /pay answers 409 ORDER_STATUS_ERROR, because getPayUrl reuses the failed
    // attempt (one attempt per order and channel) instead of opening a new wallet payment.
    it.each(['6001', '1001'])(
      '%s after the user abandoned the cashier → retry, and a new /pay opens a cashier that can be paid',
      async (code) => {
        const customerId = `2188${randomBytes(6).toString('hex')}`;
        const { orderId, paymentRequestId, payUrl } = await openPayment({ customerId });
        const page = await (await fetch(payUrl)).text();
        const action = /<form method="post" action="([^"]+\/abandon)"/.exec(page)?.[1];
        expect(action).toBeDefined();
        const abandoned = await fetch(new URL(action!, payUrl), { method: 'POST', body: '' });
        expect(abandoned.status).toBe(200);
        expect(wallet.payment(paymentRequestId)).toMatchObject({ status: 'FAIL', resultCode: 'USER_CANCELLED' });
        expect(await wallet.whenAcknowledged(paymentRequestId, 5000)).toBe(true);

        const res = await clientResult(orderId, code);
        expect(res.status).toBe(200);
        expect(res.body).toMatchObject({ orderId, status: 'wait', next: 'retry' });

        const again = await payRequest(orderId, {
          channel: 'pays.AlipayPlusType',
          payType: 'CASHIER',
          authCode: wallet.issueAuthCode(customerId),
        });
        // Today: 409 {code: 'ORDER_STATUS_ERROR', message: 'the pays.myWallet payment of this order is failed'}.
        expect({ status: again.status, body: again.body as unknown }).toMatchObject({
          status: 200,
          body: { orderId, channel: 'pays.myWallet' },
        });
        const newUrl = String(again.body.payUrl);
        expect(newUrl).not.toBe(payUrl); // the abandoned payment is dead at the wallet
        const fresh = await (await fetch(newUrl)).text();
        expect(fresh).toContain('/pay"');
        const open = await ds.query<Row[]>(
          "SELECT out_trade_no FROM payment_attempts WHERE order_id = $1 AND status = 'open'",
          [orderId],
        );
        expect(open).toHaveLength(1);
        await wallet.pay(String(open[0]!['out_trade_no']));
        await paidOrder(orderId);
      },
    );

    it('9000 or 4000 while the wallet cannot be asked → poll, nothing changes; 9000 once it is back → done', async () => {
      const { orderId, paymentRequestId } = await openPayment();
      wallet.setDropNotifies(true);
      await wallet.pay(paymentRequestId);
      const before = await stateOf(orderId);
      wallet.setDown(true);
      try {
        for (const code of ['9000', '4000']) {
          const res = await clientResult(orderId, code);
          expect(res.status).toBe(200);
          expect(res.body).toMatchObject({ orderId, status: 'wait', next: 'poll' });
        }
      } finally {
        wallet.setDown(false);
      }
      expect(await stateOf(orderId)).toEqual(before);
      const back = await clientResult(orderId, '9000');
      expect(back.body).toMatchObject({ orderId, status: 'success', next: 'done' });
    });

    it.each(['4000', '1000', '1002', '1005'])('%s → the wallet is asked first, then choose_again', async (code) => {
      const { orderId, paymentRequestId } = await openPayment();
      // The payment failed at the wallet and its notify was lost: only a check can learn it.
      wallet.setDropNotifies(true);
      await wallet.abandon(paymentRequestId);
      expect((await attemptOf(orderId))['status']).toBe('open');

      const res = await clientResult(orderId, code);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ orderId, status: 'wait', next: 'choose_again' });
      // The check ran: the attempt now knows the wallet payment failed.
      expect((await attemptOf(orderId))['status']).toBe('failed');
      expect((await stateOf(orderId)).outbox).toEqual([]);
    });

    it('4000 while the wallet actually has the money → the check finds it → done', async () => {
      const { orderId, paymentRequestId } = await openPayment();
      wallet.setDropNotifies(true);
      await wallet.pay(paymentRequestId);
      const res = await clientResult(orderId, '4000');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ orderId, status: 'success', next: 'done' });
    });

    it('2001 → authorize_again', async () => {
      const { orderId } = await openPayment();
      const res = await clientResult(orderId, '2001');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ orderId, status: 'wait', next: 'authorize_again' });
    });

    it.each(['1234', '9999', '99', 'abcd', ''])('unknown code %p → 400 INVALID_PARAMS', async (code) => {
      const { orderId } = await openPayment();
      const before = await stateOf(orderId);
      const res = await clientResult(orderId, code);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ code: 'INVALID_PARAMS', requestId: expect.any(String) });
      expect(await stateOf(orderId)).toEqual(before);
    });
  });

  // -------------------------------------------------------------------------------------------------

  describe('forged and replayed notifies', () => {
    const REJECTED = { result: { resultStatus: 'F' } };
    const ACCEPTED = { result: { resultCode: 'SUCCESS', resultStatus: 'S' } };

    /** Sends a notify that must be refused, and checks it changed nothing but left its verdict. */
    async function expectRefused(
      orderId: string,
      body: string,
      headers: Record<string, string>,
      verdict: string,
    ): Promise<Row> {
      const before = await stateOf(orderId);
      const res = await postNotify(body, headers);
      expect(res.status).toBe(500);
      expect(res.body).toMatchObject(REJECTED);
      const after = await stateOf(orderId);
      expect(after).toEqual(before);
      expect(after.order['status']).toBe('wait');
      expect(after.outbox).toEqual([]);
      const inbox = await inboxRow(body, headers['Signature'] ?? '');
      expect(inbox).toMatchObject({ channel_type: 'pays.AlipayPlusType', verdict, receive_count: 1 });
      return inbox!;
    }

    it('a notify genuinely signed by the test-held wallet is accepted (control for the cases below)', async () => {
      const p = await openPayment({ channel: 'pays.ownWallet', sim: own.simulator });
      const body = notifyBody({ ...p, currency: 'CNY', value: '1234' });
      const headers = own.signNotify(body);
      const res = await postNotify(body, headers);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject(ACCEPTED);
      const order = await getOrder(p.orderId);
      expect(order).toMatchObject({ status: 'success', channel: 'pays.ownWallet', channelTradeNo: p.paymentId });
      expect(await inboxRow(body, headers['Signature']!)).toMatchObject({
        verdict: 'applied',
        order_id: p.orderId,
        channel: 'pays.ownWallet',
      });
    });

    it('a bad signature (signed with another key) is refused', async () => {
      const p = await openPayment({ channel: 'pays.ownWallet', sim: own.simulator });
      const body = notifyBody({ ...p, currency: 'CNY', value: '1234' });
      const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
      const headers = signedNotifyHeaders(stranger, own.clientId, body);
      const inbox = await expectRefused(p.orderId, body, headers, 'refused');
      expect(inbox['channel']).toBe('pays.ownWallet');
    });

    it('a genuine signature over another path, or a missing signature, is refused', async () => {
      const p = await openPayment({ channel: 'pays.ownWallet', sim: own.simulator });
      const body = notifyBody({ ...p, currency: 'CNY', value: '1234' });
      await expectRefused(p.orderId, body, own.signNotify(body, '/payNotify'), 'refused');
      const { Signature: _dropped, ...unsigned } = own.signNotify(body);
      const before = await stateOf(p.orderId);
      const res = await postNotify(body, unsigned);
      expect(res.status).toBe(500);
      expect(res.body).toMatchObject(REJECTED);
      expect(await stateOf(p.orderId)).toEqual(before);
    });

    it.each([
      ['another amount', { currency: 'CNY', value: '1' }],
      ['a larger amount', { currency: 'CNY', value: '123400' }],
      ['another currency', { currency: 'USD', value: '1234' }],
    ])('%s, genuinely signed, is refused (amount_mismatch)', async (_name, money) => {
      const p = await openPayment({ channel: 'pays.ownWallet', sim: own.simulator });
      const body = notifyBody({ ...p, ...money });
      const inbox = await expectRefused(p.orderId, body, own.signNotify(body), 'amount_mismatch');
      expect(inbox).toMatchObject({ order_id: p.orderId, out_trade_no: p.paymentRequestId });
    });

    it('an unknown paymentRequestId, genuinely signed, is refused (unknown_order)', async () => {
      const p = await openPayment({ channel: 'pays.ownWallet', sim: own.simulator });
      const unknownId = `unknown-${randomBytes(8).toString('hex')}`;
      const body = notifyBody({ ...p, paymentRequestId: unknownId, currency: 'CNY', value: '1234' });
      const inbox = await expectRefused(p.orderId, body, own.signNotify(body), 'unknown_order');
      expect(inbox).toMatchObject({ order_id: null, out_trade_no: unknownId });
    });

    it('an unknown Client-Id is refused (unknown_instance)', async () => {
      const p = await openPayment({ channel: 'pays.ownWallet', sim: own.simulator });
      const body = notifyBody({ ...p, currency: 'CNY', value: '1234' });
      const headers = signedNotifyHeaders(own.walletPrivateKey, 'SOMEONE_ELSE', body);
      const inbox = await expectRefused(p.orderId, body, headers, 'unknown_instance');
      expect(inbox['channel']).toBeNull();
    });

    it('the sandbox wallet itself notifying an unknown paymentRequestId is refused, and it retries', async () => {
      // A payment made at the wallet by someone holding the merchant key, but never by this server.
      const cfg = t.sandbox!.instances.find((i) => i.fullName === 'pays.myWallet')!.config;
      const merchantKey = createPrivateKey({
        key: Buffer.from(String(cfg['privateKey']), 'base64'),
        format: 'der',
        type: 'pkcs8',
      });
      const paymentRequestId = `stray-${randomBytes(8).toString('hex')}`;
      const payBody = JSON.stringify({
        productCode: 'CASHIER_PAYMENT',
        paymentRequestId,
        paymentAmount: { currency: 'CNY', value: '1234' },
        order: { referenceOrderId: 'nobody', orderDescription: 'stray' },
        paymentNotifyUrl: `${t.baseUrl}${NOTIFY_PATH}`,
      });
      const uri = '/sandbox/alipayplus/v2/payments/pay';
      const time = isoWithOffset(new Date());
      const made = await fetch(`${t.baseUrl}${uri}`, {
        method: 'POST',
        body: payBody,
        headers: {
          'Content-Type': 'application/json; charset=UTF-8',
          'Client-Id': String(cfg['clientId']),
          'Request-Time': time,
          Signature: alipayPlusSignature(merchantKey, String(cfg['clientId']), 'POST', uri, time, payBody),
        },
      });
      expect(((await made.json()) as { result: { resultStatus: string } }).result.resultStatus).toBe('A');

      await wallet.pay(paymentRequestId);
      const first = wallet.notifyLog.find((e) => e.paymentRequestId === paymentRequestId);
      expect(first).toMatchObject({ outcome: 'not_acknowledged', httpStatus: 500, replyStatus: 'F' });
      // Not acknowledged, so the wallet sends it again (and is refused again).
      const retries = await until(() => {
        const log = wallet.notifyLog.filter((e) => e.paymentRequestId === paymentRequestId);
        return Promise.resolve(log.length >= 2 ? log : undefined);
      }, 5000);
      for (const e of retries) expect(e).toMatchObject({ outcome: 'not_acknowledged', httpStatus: 500 });
      const inbox = await ds.query<Row[]>(
        'SELECT verdict, order_id, channel FROM notify_inbox WHERE out_trade_no = $1 ORDER BY id',
        [paymentRequestId],
      );
      expect(inbox.length).toBeGreaterThanOrEqual(1);
      for (const r of inbox) expect(r).toEqual({ verdict: 'unknown_order', order_id: null, channel: 'pays.myWallet' });
      const events = await ds.query<Row[]>(`SELECT 1 FROM events WHERE strpos(body, $1) > 0`, [paymentRequestId]);
      expect(events).toEqual([]);
    });

    it('a replayed genuine notify is acknowledged once more and changes nothing; a tampered replay is refused', async () => {
      const { orderId, paymentRequestId } = await openPayment();
      await wallet.pay(paymentRequestId);
      await paidOrder(orderId);
      const [genuine] = await ds.query<{ body: string; headers: Record<string, string> | string }[]>(
        "SELECT body, headers FROM notify_inbox WHERE order_id = $1 AND verdict = 'applied'",
        [orderId],
      );
      expect(genuine).toBeDefined();
      const h = typeof genuine!.headers === 'string' ? JSON.parse(genuine!.headers) : genuine!.headers;
      const headers = {
        'Content-Type': h['content-type'],
        'Client-Id': h['client-id'],
        'Request-Time': h['request-time'],
        Signature: h['signature'],
      } as Record<string, string>;
      const before = await stateOf(orderId);

      const replay = await postNotify(genuine!.body, headers);
      expect(replay.status).toBe(200);
      expect(replay.body).toMatchObject(ACCEPTED);
      expect(await stateOf(orderId)).toEqual(before);
      expect(await inboxRow(genuine!.body, headers['Signature']!)).toMatchObject({
        verdict: 'duplicate',
        receive_count: 2,
      });

      // The same signature over a body that now claims a smaller amount.
      const tampered = genuine!.body.replace('"value":"1234"', '"value":"1"');
      expect(tampered).not.toBe(genuine!.body);
      const res = await postNotify(tampered, headers);
      expect(res.status).toBe(500);
      expect(res.body).toMatchObject(REJECTED);
      expect(await stateOf(orderId)).toEqual(before);
      expect(await inboxRow(tampered, headers['Signature']!)).toMatchObject({ verdict: 'refused' });
    });
  });

  // -------------------------------------------------------------------------------------------------

  describe('auth codes and repeated pay requests', () => {
    it('a used auth code is refused on a new order (400 INVALID_PARAMS)', async () => {
      const authCode = wallet.issueAuthCode();
      const first = await createOrder();
      expect((await payRequest(first, { channel: 'pays.AlipayPlusType', payType: 'CASHIER', authCode })).status).toBe(
        200,
      );
      const second = await createOrder();
      const res = await payRequest(second, { channel: 'pays.AlipayPlusType', payType: 'CASHIER', authCode });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ code: 'INVALID_PARAMS' });
      expect(res.text).not.toMatch(TOKEN);
      expect((await getOrder(second))['status']).toBe('wait');
      // The refused request left no attempt behind, so nothing at the wallet to chase or close.
      const rows = await ds.query<Row[]>('SELECT out_trade_no FROM payment_attempts WHERE order_id = $1', [second]);
      expect(rows).toEqual([]);
    });

    it('an auth code the wallet never issued, or a customerId this server holds no authorization for → 400', async () => {
      const orderId = await createOrder();
      const bogus = await payRequest(orderId, {
        channel: 'pays.AlipayPlusType',
        payType: 'CASHIER',
        authCode: 'AUTH_never_issued',
      });
      expect(bogus.status).toBe(400);
      expect(bogus.body.code).toBe('INVALID_PARAMS');
      const stranger = await payRequest(orderId, {
        channel: 'pays.AlipayPlusType',
        payType: 'CASHIER',
        customerId: '2188000000000000',
      });
      expect(stranger.status).toBe(400);
      expect(stranger.body.code).toBe('INVALID_PARAMS');
      const none = await payRequest(orderId, { channel: 'pays.AlipayPlusType', payType: 'CASHIER' });
      expect(none.status).toBe(400);
      expect(none.body.code).toBe('INVALID_PARAMS');
    });

    it('a repeated /pay of one order by the same customer is idempotent at the wallet', async () => {
      const customerId = `2188${randomBytes(6).toString('hex')}`;
      const orderId = await createOrder();
      const body = { channel: 'pays.AlipayPlusType', payType: 'CASHIER' };
      const first = await payRequest(orderId, { ...body, authCode: wallet.issueAuthCode(customerId) });
      expect(first.status).toBe(200);
      const second = await payRequest(orderId, { ...body, authCode: wallet.issueAuthCode(customerId) });
      expect(second.status).toBe(200);
      const third = await payRequest(orderId, { ...body, customerId });
      expect(third.status).toBe(200);
      expect(second.body.payUrl).toBe(first.body.payUrl);
      expect(third.body.payUrl).toBe(first.body.payUrl);
      for (const r of [first, second, third]) expect(r.text).not.toMatch(TOKEN);

      const attempt = await attemptOf(orderId); // one attempt, one paymentRequestId
      const paymentRequestId = String(attempt['out_trade_no']);
      const atWallet = wallet.payment(paymentRequestId)!;
      expect(first.body.payUrl).toBe(`${t.baseUrl}/sandbox/alipayplus/cashier/${atWallet.paymentId}`);
      expect(atWallet.customerId).toBe(customerId);

      await wallet.pay(paymentRequestId);
      const order = await paidOrder(orderId);
      expect(order['channelTradeNo']).toBe(atWallet.paymentId);
      expect((await stateOf(orderId)).outbox).toHaveLength(1);
    });
  });

  // -------------------------------------------------------------------------------------------------

  describe('expiry: the timeout closer (TimeoutCloserJob.sweepOnce)', () => {
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const shortExpiry = () => ({ expireTime: new Date(Date.now() + 2500).toISOString() });
    const afterExpiry = async (orderId: string): Promise<void> => {
      const expireTime = Date.parse(String((await getOrder(orderId))['expireTime']));
      await sleep(Math.max(0, expireTime - Date.now()) + 100);
    };

    /**
     * Runs the sweep and answers the order's status. On the shared PostgreSQL other test processes
     * sweep the same table with their own sandboxes: one of them may hold this order's lease (120 s),
     * or have postponed it (30 s and up) after failing on a payment its wallet does not know. Only then
     * is this test's own order released and swept again. A postponement by this sweep itself (200 ms,
     * the retryScheduleMs below) is not retried: that would be a failure of the closer.
     */
    async function sweep(orderId: string): Promise<string> {
      const job = t.app.get(TimeoutCloserJob);
      for (let round = 0; ; round++) {
        await job.sweepOnce({ retryScheduleMs: [200] });
        const row = await orderRow(orderId);
        const after = row['sweep_after'] as string | Date | null;
        const lease = after === null ? 0 : new Date(after).getTime();
        const leasedAway = lease > Date.now() + 5_000;
        if (row['status'] !== 'wait' || !leasedAway || round === 3) return String(row['status']);
        await ds.query("UPDATE orders SET sweep_after = NULL WHERE order_id = $1 AND status = 'wait'", [orderId]);
      }
    }

    it('an expired order becomes timeout and its wallet payment can no longer be paid', async () => {
      const { orderId, paymentRequestId, payUrl } = await openPayment({ extra: shortExpiry() });
      await afterExpiry(orderId);
      expect(await sweep(orderId)).toBe('timeout');

      const state = await stateOf(orderId);
      expect(state.order['status']).toBe('timeout');
      expect(['closed', 'failed']).toContain(state.attempts[0]?.['status']);
      expect(state.outbox).toEqual([{ topic: 'order.timeout', order_id: orderId }]);
      // The sandbox wallet expires an unpaid payment at paymentExpiryTime itself (FAIL/ORDER_IS_CLOSED),
      // so the closer's inquiry already finds it dead; the explicit cancel is covered below.
      const atWallet = wallet.payment(paymentRequestId)!;
      expect(['CANCELLED', 'FAIL']).toContain(atWallet.status);
      expect(atWallet.resultCode).toBe('ORDER_IS_CLOSED');
      await expect(wallet.pay(paymentRequestId)).rejects.toThrow();
      const html = await (await fetch(payUrl)).text();
      expect(html).not.toContain('<form');
      expect((await clientResult(orderId, '9000')).body).toMatchObject({ status: 'timeout', next: 'done' });
    });

    it('an expired order whose wallet payment was paid (notify lost) becomes success, not timeout', async () => {
      const { orderId, paymentRequestId, paymentId } = await openPayment({ extra: shortExpiry() });
      wallet.setDropNotifies(true);
      await wallet.pay(paymentRequestId);
      await afterExpiry(orderId);
      expect((await getOrder(orderId))['status']).toBe('wait');

      expect(await sweep(orderId)).toBe('success');
      const state = await stateOf(orderId);
      expect(state.order).toMatchObject({ status: 'success', channel: 'pays.myWallet', channel_trade_no: paymentId });
      expect(state.attempts[0]?.['status']).toBe('paid');
      expect(state.outbox).toEqual([{ topic: 'order.succeeded', order_id: orderId }]);
      expect(wallet.payment(paymentRequestId)?.status).toBe('SUCCESS');
      expect(
        wallet.notifyLog.filter((e) => e.paymentRequestId === paymentRequestId).map((e) => e.outcome),
      ).not.toContain('acknowledged');
    });

    describe('with the server clock ahead of the wallet (own embedded database)', () => {
      /** The server's clock; the wallet keeps real time. */
      class MovableClock extends Clock {
        offsetMs = 0;
        now(): Date {
          return new Date(Date.now() + this.offsetMs);
        }
      }
      const clock = new MovableClock();
      let t2: TestApp;

      beforeAll(async () => {
        // Its own embedded database whatever DATABASE_URL says: a sweep at a moved clock would claim
        // other runs' orders on a shared database.
        t2 = await bootApp({ clock, env: { DATABASE_URL: '' } });
      });
      afterAll(async () => {
        await t2?.close();
      });

      it('an order that expired while its wallet payment is still open: the closer cancels it at the wallet', async () => {
        const h2 = request(t2.app.getHttpServer());
        const w2 = t2.sandbox!.alipayplus;
        const orderId = uniqueOrderId('AP');
        await h2
          .post('/api/v1/orders')
          .set(auth())
          .send({ orderId, subject: 'x', amount: '5.00', timeoutMinutes: 1 })
          .expect(201);
        const pay = await h2
          .post(`/api/v1/orders/${orderId}/pay`)
          .set(auth())
          .send({ channel: 'pays.AlipayPlusType', payType: 'CASHIER', authCode: w2.issueAuthCode() });
        expect(pay.status).toBe(200);
        const [attempt] = await t2.app
          .get(DataSource)
          .query<Row[]>('SELECT out_trade_no FROM payment_attempts WHERE order_id = $1', [orderId]);
        const paymentRequestId = String(attempt!['out_trade_no']);

        clock.offsetMs = 2 * 60_000; // the order is past its expiry; the wallet's payment is not (yet)
        // Claims compare times on the database's clock: the order's expiry has passed there too.
        await t2.app
          .get(DataSource)
          .query(`UPDATE orders SET expire_time = now() - interval '1 second' WHERE order_id = $1`, [orderId]);
        expect(w2.payment(paymentRequestId)?.status).toBe('PROCESSING');
        const swept = await t2.app.get(TimeoutCloserJob).sweepOnce({ retryScheduleMs: [200] });
        expect(swept).toMatchObject({ claimed: 1, timedOut: 1, latePaid: 0, stuck: 0 });

        const order = (await h2.get(`/api/v1/orders/${orderId}`).set(auth())).body as Row;
        expect(order['status']).toBe('timeout');
        expect(w2.payment(paymentRequestId)).toMatchObject({ status: 'CANCELLED', resultCode: 'ORDER_IS_CLOSED' });
        await expect(w2.pay(paymentRequestId)).rejects.toThrow(/CANCELLED/);
        const [after] = await t2.app
          .get(DataSource)
          .query<Row[]>('SELECT status FROM payment_attempts WHERE order_id = $1', [orderId]);
        expect(after).toEqual({ status: 'closed' });
      });
    });
  });
});
