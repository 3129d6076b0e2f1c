import type { Server } from 'node:http';
import request from 'supertest';
import { type BeforeQueryEvent, DataSource, type EntitySubscriberInterface, type QueryRunner } from 'typeorm';
import type { AlipaySimulator } from '#sandbox';
import { auth, bootApp, type TestApp, uniqueOrderId } from '../utils/test-app.js';
import { notifyFields } from '../utils/alipay-notify.js';
import { listen } from '../utils/processes.js';

/**
 * Issue 14: what a notify costs in round trips to the database. Every statement the app sends is
 * logged per query runner (a transaction runs on one), and the notify's transaction is the one that
 * writes its inbox row. The outcome of each notify (order, attempt, event, deliveries, verdict) is
 * checked beside its count, so a statement saved never changes what is recorded.
 */

const NOTIFY = '/api/v1/notify/alipay';
const FORM = 'application/x-www-form-urlencoded; charset=utf-8';

type Row = Record<string, unknown>;

/** The statements of every finished transaction, in the order they were sent. */
class TransactionLog implements EntitySubscriberInterface {
  private readonly open = new Map<QueryRunner, string[]>();
  readonly done: string[][] = [];

  beforeQuery(e: BeforeQueryEvent): void {
    const sql = e.query.replace(/\s+/g, ' ').trim();
    if (sql === 'START TRANSACTION') {
      this.open.set(e.queryRunner, [sql]);
      return;
    }
    const list = this.open.get(e.queryRunner);
    if (!list) return;
    list.push(sql);
    if (sql === 'COMMIT' || sql === 'ROLLBACK') {
      this.open.delete(e.queryRunner);
      this.done.push(list);
    }
  }

  /** The one transaction since `from` (an index into done) that wrote a notify_inbox row. */
  notifyTransaction(from: number): string[] {
    const found = this.done.slice(from).filter((t) => t.some((s) => s.startsWith('INSERT INTO notify_inbox')));
    expect(found).toHaveLength(1);
    return found[0]!;
  }
}

/** Round trips of the notify's transaction, START and COMMIT included. */
const roundTrips = (statements: readonly string[]): number => statements.length;

describe.each([
  ['with WEBHOOK_URLS', true],
  ['without WEBHOOK_URLS', false],
])('round trips of a notify (%s)', (_name, withSettings) => {
  let t: TestApp;
  let http: ReturnType<typeof request>;
  let sim: AlipaySimulator;
  let db: DataSource;
  const log = new TransactionLog();
  let receiver: Server;
  let everyEvent: string;
  let merchant: string;

  beforeAll(async () => {
    // One loopback receiver answering 200 to everything: the deliveries leave and are done with.
    const r = await listen((_req, res) => res.writeHead(200).end('ok'));
    receiver = r.server;
    everyEvent = `http://127.0.0.1:${r.port}/every`;
    merchant = `http://127.0.0.1:${r.port}/merchant`;
    t = await bootApp({
      env: {
        WEBHOOK_ALLOW_PRIVATE: 'true',
        WEBHOOK_SECRETS: 'round-trips-webhook-secret-0123456789',
        ...(withSettings ? { WEBHOOK_URLS: everyEvent } : {}),
      },
    });
    http = request(t.app.getHttpServer());
    sim = t.sandbox!.alipay;
    db = t.app.get(DataSource);
    db.subscribers.push(log);
  });

  afterAll(async () => {
    await sim.idle();
    await t.close();
    receiver.closeAllConnections();
    await new Promise((r) => receiver.close(r));
  });

  const settings = (): string[] => (withSettings ? [everyEvent] : []);

  /** A `wait` order with an open, scanned Alipay attempt. */
  async function openAttempt(notifyUrl: string | undefined, amount = '3.21'): Promise<string> {
    const orderId = uniqueOrderId('RT');
    await http
      .post('/api/v1/orders')
      .set(auth())
      .send({ orderId, subject: 'round trips', amount, ...(notifyUrl ? { notifyUrl } : {}) })
      .expect(201);
    await http
      .post(`/api/v1/orders/${orderId}/pay`)
      .set(auth())
      .send({ channel: 'pays.AliPayType', payType: 'pc' })
      .expect(200);
    sim.scan(orderId);
    return orderId;
  }

  /** Sends the notify and answers its reply and the statements of its transaction. */
  async function notify(body: string): Promise<{ reply: string; statements: string[] }> {
    const from = log.done.length;
    const res = await http.post(NOTIFY).set('Content-Type', FORM).send(body).expect(200);
    return { reply: res.text, statements: log.notifyTransaction(from) };
  }

  const verdictOf = async (orderId: string): Promise<string[]> =>
    (
      await db.query<{ verdict: string }[]>(`SELECT verdict FROM notify_inbox WHERE order_id = $1 ORDER BY id`, [
        orderId,
      ])
    ).map((r) => r.verdict);

  const eventsOf = (orderId: string) =>
    db.query<{ id: string; type: string; body: string }[]>(
      `SELECT id, type, body FROM events WHERE order_id = $1 ORDER BY seq`,
      [orderId],
    );

  const endpointsOf = async (eventId: string): Promise<string[]> =>
    (
      await db.query<{ endpoint: string }[]>(`SELECT endpoint FROM event_deliveries WHERE event_id = $1 ORDER BY id`, [
        eventId,
      ])
    ).map((r) => r.endpoint);

  const urlCases: Array<[string, (u: { merchant: string; everyEvent: string }) => string | undefined]> = [
    ['its own notifyUrl', (u) => u.merchant],
    ['no notifyUrl', () => undefined],
  ];
  if (withSettings) urlCases.push(['a notifyUrl that is also in WEBHOOK_URLS', (u) => u.everyEvent]);

  it.each(urlCases)(
    'a paid notify of an order with %s: 5 round trips, the order paid, one event, its deliveries',
    async (_n, url) => {
      const notifyUrl = url({ merchant, everyEvent });
      const orderId = await openAttempt(notifyUrl);
      const { reply, statements } = await notify(sim.signNotifyBody(notifyFields(sim, orderId)));

      expect(reply).toBe('success');
      expect(roundTrips(statements)).toBe(5);
      expect(statements[0]).toBe('START TRANSACTION');
      expect(statements.at(-1)).toBe('COMMIT');

      expect(await verdictOf(orderId)).toEqual(['applied']);
      const [row] = await db.query<Row[]>(`SELECT * FROM orders WHERE order_id = $1`, [orderId]);
      expect(row).toMatchObject({ status: 'success', version: 2, channel: 'pays.aliPayment' });
      const attempts = await db.query<Row[]>(`SELECT * FROM payment_attempts WHERE order_id = $1`, [orderId]);
      expect(attempts.map((a) => a['status'])).toEqual(['paid']);
      expect(row!['paid_attempt_id']).toBe(attempts[0]!['id']);
      expect(row!['pay_type']).toBe(attempts[0]!['pay_type']);
      expect(row!['pay_time']).toEqual(attempts[0]!['paid_at']);
      expect(row!['channel_trade_no']).toBe(sim.trade(orderId)!.tradeNo);
      expect(attempts[0]!['next_sync_at']).toBeNull();

      const events = await eventsOf(orderId);
      expect(events.map((e) => e.type)).toEqual(['order.succeeded']);
      // The event carries the order as the API answers it once paid (with its one payment).
      const event = JSON.parse(events[0]!.body) as { data: { order: unknown } };
      const view = await http.get(`/api/v1/orders/${orderId}`).set(auth()).expect(200);
      expect(event.data.order).toEqual(view.body);
      // The order's notifyUrl first, then every configured endpoint, each once.
      const expected = [...new Set([...(notifyUrl ? [notifyUrl] : []), ...settings()])];
      expect(await endpointsOf(events[0]!.id)).toEqual(expected);
    },
  );

  it('a repeat of a paid notify: 5 round trips, duplicate, nothing more written', async () => {
    const orderId = await openAttempt(merchant);
    const body = sim.signNotifyBody(notifyFields(sim, orderId));
    expect((await notify(body)).reply).toBe('success');
    const [before] = await db.query<Row[]>(`SELECT * FROM orders WHERE order_id = $1`, [orderId]);

    const again = await notify(body);
    expect(again.reply).toBe('success');
    expect(roundTrips(again.statements)).toBe(5);
    expect(await verdictOf(orderId)).toEqual(['duplicate']); // one inbox row per payload, its latest verdict
    const [after] = await db.query<Row[]>(`SELECT * FROM orders WHERE order_id = $1`, [orderId]);
    expect(after).toEqual(before);
    expect((await eventsOf(orderId)).map((e) => e.type)).toEqual(['order.succeeded']);
  });

  it('a paid notify with another amount: amount_mismatch, nothing moved', async () => {
    const orderId = await openAttempt(merchant, '5.00');
    const f = notifyFields(sim, orderId);
    const { reply, statements } = await notify(
      sim.signNotifyBody({ ...f, total_amount: '4.99', receipt_amount: '4.99', buyer_pay_amount: '4.99' }),
    );
    expect(reply).toBe('fail');
    expect(roundTrips(statements)).toBe(4);
    expect(await verdictOf(orderId)).toEqual(['amount_mismatch']);
    const [row] = await db.query<Row[]>(`SELECT status, version FROM orders WHERE order_id = $1`, [orderId]);
    expect(row).toEqual({ status: 'wait', version: 1 });
    expect(
      (await db.query<Row[]>(`SELECT status FROM payment_attempts WHERE order_id = $1`, [orderId])).map(
        (a) => a['status'],
      ),
    ).toEqual(['open']);
    expect(await eventsOf(orderId)).toEqual([]);
  });

  it('a paid notify of an order already closed: late_payment, the order stays closed, payment.late', async () => {
    const orderId = await openAttempt(merchant);
    expect((await http.post(`/api/v1/orders/${orderId}/cancel`).set(auth()).send({})).body.status).toBe('close');
    const { reply, statements } = await notify(sim.signNotifyBody(notifyFields(sim, orderId)));
    expect(reply).toBe('success');
    // Was 14: the event's 3 statements are 1, the attempt's and the order's compare-and-sets 1.
    expect(roundTrips(statements)).toBeLessThanOrEqual(10);
    expect(await verdictOf(orderId)).toEqual(['late_payment']);
    const [row] = await db.query<Row[]>(`SELECT status, version FROM orders WHERE order_id = $1`, [orderId]);
    expect(row).toEqual({ status: 'close', version: 2 });
    expect((await eventsOf(orderId)).map((e) => e.type).slice(0, 2)).toEqual(['order.closed', 'payment.late']);
  });

  it('a pay request: the order read and the attempt inserted in one statement, the pay URL written back in another', async () => {
    const orderId = uniqueOrderId('RT');
    await http.post('/api/v1/orders').set(auth()).send({ orderId, subject: 'round trips', amount: '1.23' }).expect(201);
    const sent: string[] = [];
    const counter: EntitySubscriberInterface = {
      beforeQuery: (e: BeforeQueryEvent) => void sent.push(e.query.replace(/\s+/g, ' ').trim()),
    };
    db.subscribers.push(counter);
    try {
      const pay = await http
        .post(`/api/v1/orders/${orderId}/pay`)
        .set(auth())
        .send({ channel: 'pays.AliPayType', payType: 'PRE_PAY' })
        .expect(200);
      expect(pay.body.qrCode).toMatch(/^data:image\/png;base64,/);
    } finally {
      db.subscribers.splice(db.subscribers.indexOf(counter), 1);
    }
    // Jobs run beside the request: count the statements that name this pay's tables and shapes.
    const own = sent.filter((q) =>
      /INSERT INTO payment_attempts|UPDATE payment_attempts a SET pay_type|FROM orders WHERE order_id/.test(q),
    );
    expect(own).toHaveLength(2);
    expect(own[0]).toMatch(/^WITH o AS \(SELECT \* FROM orders WHERE order_id = \$2 FOR SHARE\)/);
    const [attempt] = await db.query<Row[]>(
      `SELECT a.status, a.pay_url, a.creating_until, a.amount_minor FROM payment_attempts a WHERE a.order_id = $1`,
      [orderId],
    );
    expect(attempt).toMatchObject({ status: 'open', creating_until: null });
    expect(Number(attempt!['amount_minor'])).toBe(123);
  });
});
