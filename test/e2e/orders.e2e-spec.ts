import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { HousekeepingJob } from '#payments';
import { API_KEYS, auth, bootApp, type TestApp, uniqueOrderId } from '../utils/test-app.js';

describe('orders API (API.md §4, §7, §8)', () => {
  let t: TestApp;
  let http: ReturnType<typeof request>;

  beforeAll(async () => {
    t = await bootApp({ sandbox: false });
    http = request(t.app.getHttpServer());
  });
  afterAll(async () => {
    await t.close();
  });

  const create = (body: unknown, headers: Record<string, string> = auth()) =>
    http
      .post('/api/v1/orders')
      .set(headers)
      .send(body as object);

  async function countOrders(orderId: string): Promise<number> {
    const rows = await t.app
      .get(DataSource)
      .query<{ n: number }[]>('SELECT count(*)::int AS n FROM orders WHERE order_id = $1', [orderId]);
    return rows[0]?.n ?? -1;
  }

  it('creates an order with a generated id and reads it back', async () => {
    const res = await create({ subject: 'Coffee', amount: 99.99 });
    expect(res.status).toBe(201);
    expect(res.body.orderId).toMatch(/^D\d{14}\d{6}$/);
    expect(res.body).toMatchObject({
      subject: 'Coffee',
      amount: '99.99',
      currency: 'CNY',
      status: 'wait',
      channel: null,
      refundedAmount: '0.00',
    });
    const expireIn = Date.parse(res.body.expireTime) - Date.now();
    expect(expireIn).toBeGreaterThan(29 * 60_000);
    expect(expireIn).toBeLessThanOrEqual(30 * 60_000);
    const got = await http.get(`/api/v1/orders/${res.body.orderId}`).set(auth());
    expect(got.status).toBe(200);
    expect(got.body).toEqual(res.body);
  });

  it('creates with a given id, string amount, currency, expireTime and metadata', async () => {
    const orderId = uniqueOrderId();
    const expireTime = new Date(Date.now() + 3_600_000).toISOString();
    const res = await create({
      orderId,
      subject: '券',
      amount: '100',
      currency: 'JPY',
      expireTime,
      metadata: { sku: 'A1' },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ orderId, amount: '100', currency: 'JPY', expireTime, metadata: { sku: 'A1' } });
  });

  it('answers 200 with the existing order on an identical re-create, 409 on a conflicting one', async () => {
    const orderId = uniqueOrderId();
    const first = await create({ orderId, subject: 'Tea', amount: '12.50' });
    expect(first.status).toBe(201);
    const again = await create({ orderId, subject: 'Tea', amount: 12.5 });
    expect(again.status).toBe(200);
    expect(again.body.createdAt).toBe(first.body.createdAt);
    const conflict = await create({ orderId, subject: 'Tea', amount: '12.51' });
    expect(conflict.status).toBe(409);
    expect(conflict.body).toMatchObject({ code: 'ORDER_EXISTS' });
    expect(typeof conflict.body.requestId).toBe('string');
    expect(await countOrders(orderId)).toBe(1);
  });

  it('makes exactly one row of 50 concurrent creates of one orderId', async () => {
    const orderId = uniqueOrderId();
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => create({ orderId, subject: 'Race', amount: '1.00' })),
    );
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 200)).toHaveLength(49);
    expect(await countOrders(orderId)).toBe(1);
  });

  describe('bad input gets its code and changes nothing', () => {
    const badAmounts: unknown[] = [0, -1, 0.001, '1e3', 'abc', 100000000.01];
    it.each(badAmounts)('amount %p → 400 INVALID_AMOUNT', async (amount) => {
      const orderId = uniqueOrderId();
      const res = await create({ orderId, subject: 'x', amount });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('INVALID_AMOUNT');
      expect(await countOrders(orderId)).toBe(0);
    });

    it.each([
      ['a missing subject', { amount: '1.00' }],
      ['a 2,000-character subject', { subject: 'x'.repeat(2000), amount: '1.00' }],
      ['an orderId with characters a channel refuses', { orderId: 'bad id/1', subject: 'x', amount: '1.00' }],
      ['an orderId longer than 32', { orderId: 'A'.repeat(33), subject: 'x', amount: '1.00' }],
      ['an unknown field', { subject: 'x', amount: '1.00', price: 1 }],
      ['an unknown currency', { subject: 'x', amount: '1.00', currency: 'XXX' }],
      ['an expireTime in the past', { subject: 'x', amount: '1.00', expireTime: '2020-01-01T00:00:00Z' }],
      ['a NUL character in the subject', { subject: 'a\u0000b', amount: '1.00' }],
      ['a NUL character in metadata', { subject: 'x', amount: '1.00', metadata: { deep: { k: 'x\u0000' } } }],
    ])('%s → 400 INVALID_PARAMS', async (_name, body) => {
      const before = await t.app.get(DataSource).query<{ n: number }[]>('SELECT count(*)::int AS n FROM orders');
      const res = await create(body);
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('INVALID_PARAMS');
      const after = await t.app.get(DataSource).query<{ n: number }[]>('SELECT count(*)::int AS n FROM orders');
      // Other suites may write concurrently on a shared database; this suite runs alone in its process.
      expect(after[0]?.n).toBe(before[0]?.n);
    });

    it('a malformed JSON body → 400 INVALID_PARAMS', async () => {
      const res = await http
        .post('/api/v1/orders')
        .set(auth())
        .set('Content-Type', 'application/json')
        .send('{"subject": "x", amount: }');
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('INVALID_PARAMS');
    });

    it('a body over the limit → 413', async () => {
      const res = await create({ subject: 'x', amount: '1.00', metadata: { blob: 'x'.repeat(100_000) } });
      expect(res.status).toBe(413);
      expect(res.body.code).toBe('PAYLOAD_TOO_LARGE');
    });

    it('a missing or wrong key → 401; a viewer key → 403', async () => {
      const orderId = uniqueOrderId();
      const none = await create({ orderId, subject: 'x', amount: '1.00' }, {});
      expect(none.status).toBe(401);
      expect(none.body.code).toBe('UNAUTHORIZED');
      const wrong = await create(
        { orderId, subject: 'x', amount: '1.00' },
        { Authorization: 'Bearer nope-nope-nope-nope' },
      );
      expect(wrong.status).toBe(401);
      const viewer = await create({ orderId, subject: 'x', amount: '1.00' }, auth('viewer'));
      expect(viewer.status).toBe(403);
      expect(viewer.body.code).toBe('FORBIDDEN');
      const operator = await http.get(`/api/v1/orders/${orderId}`).set(auth('operator'));
      expect(operator.status).toBe(403);
      expect(await countOrders(orderId)).toBe(0);
      const admin = await create({ orderId, subject: 'x', amount: '1.00' }, auth('admin'));
      expect(admin.status).toBe(201);
    });

    it('an order that does not exist → 404 ORDER_NOT_EXIST_ERROR', async () => {
      const res = await http.get('/api/v1/orders/NOPE_000000').set(auth());
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('ORDER_NOT_EXIST_ERROR');
      const cancel = await http.post('/api/v1/orders/NOPE_000000/cancel').set(auth()).send({});
      expect(cancel.status).toBe(404);
    });
  });

  it('cancels a waiting order (no attempts) and keeps cancel idempotent', async () => {
    const orderId = uniqueOrderId();
    await create({ orderId, subject: 'x', amount: '1.00' });
    const res = await http.post(`/api/v1/orders/${orderId}/cancel`).set(auth()).send({});
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('close');
    const again = await http.post(`/api/v1/orders/${orderId}/cancel`).set(auth()).send({});
    expect(again.status).toBe(200);
    expect(again.body.status).toBe('close');
    const pay = await http.post(`/api/v1/orders/${orderId}/pay`).set(auth()).send({ channel: 'nope', payType: 'pc' });
    expect(pay.status).toBe(400);
    expect(pay.body.code).toBe('CHANNEL_NOT_FOUND');
  });

  it('refuses to cancel a paid order with 409 ORDER_STATUS_ERROR and leaves it paid', async () => {
    const orderId = uniqueOrderId();
    await create({ orderId, subject: 'x', amount: '1.00' });
    await t.app
      .get(DataSource)
      .query(`UPDATE orders SET status = 'success', pay_time = now() WHERE order_id = $1`, [orderId]);
    const res = await http.post(`/api/v1/orders/${orderId}/cancel`).set(auth()).send({});
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('ORDER_STATUS_ERROR');
    const got = await http.get(`/api/v1/orders/${orderId}`).set(auth());
    expect(got.body.status).toBe('success');
  });

  describe('Idempotency-Key', () => {
    it('replays the first answer for the same key and body, 422 for another body', async () => {
      const key = `idem-${uniqueOrderId()}`;
      const first = await create({ subject: 'Idem', amount: '3.00' }, { ...auth(), 'Idempotency-Key': key });
      expect(first.status).toBe(201);
      const replay = await create({ amount: '3.00', subject: 'Idem' }, { ...auth(), 'Idempotency-Key': key });
      expect(replay.status).toBe(201);
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(replay.body.orderId).toBe(first.body.orderId); // a generated id: a new order would differ
      const reused = await create({ subject: 'Idem', amount: '3.01' }, { ...auth(), 'Idempotency-Key': key });
      expect(reused.status).toBe(422);
      expect(reused.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
    });

    it('replays a 4xx answer too, and scopes keys to the API key', async () => {
      const key = `idem-${uniqueOrderId()}`;
      const bad = await create({ subject: 'Idem', amount: '0' }, { ...auth(), 'Idempotency-Key': key });
      expect(bad.status).toBe(400);
      const again = await create({ subject: 'Idem', amount: '0' }, { ...auth(), 'Idempotency-Key': key });
      expect(again.status).toBe(400);
      expect(again.headers['idempotent-replayed']).toBe('true');
      const otherPrincipal = await create(
        { subject: 'Idem', amount: '2.00' },
        { ...auth('admin'), 'Idempotency-Key': key },
      );
      expect(otherPrincipal.status).toBe(201);
    });

    it('forgets keys past their time (housekeeping), so the key can be used afresh', async () => {
      const key = `idem-${uniqueOrderId()}`;
      const first = await create({ subject: 'Old', amount: '1.00' }, { ...auth(), 'Idempotency-Key': key });
      expect(first.status).toBe(201);
      const db = t.app.get(DataSource);
      await db.query(`UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE idem_key = $1`, [key]);
      expect(await t.app.get(HousekeepingJob).deleteExpiredIdempotencyKeys()).toBeGreaterThanOrEqual(1);
      const left = await db.query<{ n: number }[]>(
        `SELECT count(*)::int AS n FROM idempotency_keys WHERE idem_key = $1`,
        [key],
      );
      expect(left[0]?.n).toBe(0);
      const fresh = await create({ subject: 'New', amount: '2.00' }, { ...auth(), 'Idempotency-Key': key });
      expect(fresh.status).toBe(201);
      expect(fresh.body.orderId).not.toBe(first.body.orderId);
    });

    it('takes over a key whose first request died mid-way (a claim older than two minutes)', async () => {
      const key = `idem-${uniqueOrderId()}`;
      const db = t.app.get(DataSource);
      await db.query(
        `INSERT INTO idempotency_keys (principal, idem_key, request_hash, state, created_at, expires_at)
         VALUES ($3, $1, $2, 'running', now() - interval '3 minutes', now() + interval '1 day')`,
        [key, 'f'.repeat(64), API_KEYS[0]?.label],
      );
      const res = await create({ subject: 'Retry after crash', amount: '1.00' }, { ...auth(), 'Idempotency-Key': key });
      expect(res.status).toBe(201);
      const fresh = `idem-${uniqueOrderId()}`;
      await db.query(
        `INSERT INTO idempotency_keys (principal, idem_key, request_hash, state, expires_at)
         VALUES ($3, $1, $2, 'running', now() + interval '1 day')`,
        [
          fresh,
          createHash('sha256').update('POST /api/v1/orders\n{"amount":"1.00","subject":"Still running"}').digest('hex'),
          API_KEYS[0]?.label,
        ],
      );
      const busy = await create({ subject: 'Still running', amount: '1.00' }, { ...auth(), 'Idempotency-Key': fresh });
      expect(busy.status).toBe(409);
      expect(busy.body.code).toBe('IDEMPOTENCY_KEY_IN_USE');
    });

    it('housekeeping drops refused notifies after 30 days and keeps accepted ones', async () => {
      const db = t.app.get(DataSource);
      const tag = uniqueOrderId('H');
      await db.query(
        `INSERT INTO notify_inbox (channel_type, payload_sha256, headers, body, verdict, order_id, last_received_at)
         VALUES ('pays.AliPayType', md5($1) || md5($1), '{}', 'x', 'refused', $1, now() - interval '31 days'),
                ('pays.AliPayType', md5($1 || 'a') || md5($1 || 'a'), '{}', 'x', 'applied', $1, now() - interval '31 days'),
                ('pays.AliPayType', md5($1 || 'b') || md5($1 || 'b'), '{}', 'x', 'refused', $1, now())`,
        [tag],
      );
      await t.app.get(HousekeepingJob).deleteOldRefusedNotifies();
      const left = await db.query<{ verdict: string }[]>(
        `SELECT verdict FROM notify_inbox WHERE order_id = $1 ORDER BY verdict`,
        [tag],
      );
      expect(left.map((r) => r.verdict)).toEqual(['applied', 'refused']);
    });

    it('lets exactly one of concurrent requests with one key run', async () => {
      const key = `idem-${uniqueOrderId()}`;
      const answers = await Promise.all(
        Array.from({ length: 10 }, () =>
          create({ subject: 'IdemRace', amount: '4.00' }, { ...auth(), 'Idempotency-Key': key }),
        ),
      );
      const ids = new Set(answers.filter((a) => a.status === 201).map((a) => a.body.orderId as string));
      expect(ids.size).toBe(1);
      for (const a of answers) expect([201, 409]).toContain(a.status);
    });
  });

  describe('seed facade (API.md §5)', () => {
    it('serves create, query, cancel with the seeds argument names', async () => {
      const orderId = uniqueOrderId();
      const base = `/api/${t.config.appName}/pays/services/PaySvc`;
      const created = await http
        .post(`${base}/create`)
        .set(auth())
        .send({ orderId, subject: 'Facade', amount: '5.00' });
      expect(created.status).toBe(200);
      expect(created.body).toMatchObject({ orderId, status: 'wait', amount: '5.00' });
      const q = await http.post(`${base}/query`).set(auth()).send({ orderId });
      expect(q.body.orderId).toBe(orderId);
      const c = await http.post(`${base}/cancel`).set(auth()).send({ orderId });
      expect(c.body.status).toBe('close');
      const unknown = await http.post(`${base}/query`).set(auth()).send({ orderId, extra: 1 });
      expect(unknown.status).toBe(400);
      const noMethod = await http.post(`${base}/drop`).set(auth()).send({});
      expect(noMethod.status).toBe(404);
      const wrongApp = await http.post(`/api/other/pays/services/PaySvc/query`).set(auth()).send({ orderId });
      expect(wrongApp.status).toBe(404);
      const unauth = await http.post(`${base}/query`).send({ orderId });
      expect(unauth.status).toBe(401);
    });
  });

  it('keeps its data across a restart', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'paybridge-restart-'));
    const orderId = uniqueOrderId();
    const first = await bootApp({ sandbox: false, dataDir });
    await request(first.app.getHttpServer())
      .post('/api/v1/orders')
      .set(auth())
      .send({ orderId, subject: 'Survives', amount: '7.77' })
      .expect(201);
    await first.close();
    const second = await bootApp({ sandbox: false, dataDir });
    try {
      const got = await request(second.app.getHttpServer()).get(`/api/v1/orders/${orderId}`).set(auth());
      expect(got.status).toBe(200);
      expect(got.body).toMatchObject({ orderId, amount: '7.77', status: 'wait' });
    } finally {
      await second.close();
    }
  });

  it('GET /health checks the database', async () => {
    const res = await http.get('/health');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'ok', checks: { database: 'up' } });
  });
});
