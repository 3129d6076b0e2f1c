import request from 'supertest';
import { DataSource } from 'typeorm';
import { type ApiKey, apiKey } from '#config';
import { API_KEYS, KEYS, auth, bootApp, type TestApp, uniqueOrderId, until } from '../utils/test-app.js';

/** Issue 12: the admin API (API.md §11): roles, search, an order's story, stats, actions and the audit log. */

const ALICE = 'test-alice-operator-key-0123456789';
const MALLORY = 'test-mallory-operator-key-0123456789';
const KEYS_WITH_NAMES: ApiKey[] = [
  ...API_KEYS,
  apiKey('operator', ALICE, 'alice'),
  apiKey('operator', MALLORY, 'mallory'),
];
const as = (secret: string) => ({ Authorization: `Bearer ${secret}` });

type Who = keyof typeof KEYS | 'none';
const WHO: Who[] = ['none', 'service', 'viewer', 'operator', 'admin'];

interface Route {
  readonly method: 'get' | 'post';
  readonly path: string;
  readonly may: readonly Who[];
  /** What an allowed role gets for this (deliberately unknown) target: proves the guard let it through. */
  readonly allowed: number;
}

const NO_ORDER = 'NoSuchOrder0001';
const ROUTES: Route[] = [
  { method: 'get', path: '/api/admin/orders', may: ['viewer', 'operator', 'admin'], allowed: 200 },
  { method: 'get', path: `/api/admin/orders/${NO_ORDER}`, may: ['viewer', 'operator', 'admin'], allowed: 404 },
  { method: 'get', path: '/api/admin/stats', may: ['viewer', 'operator', 'admin'], allowed: 200 },
  { method: 'post', path: `/api/admin/orders/${NO_ORDER}/check`, may: ['operator', 'admin'], allowed: 404 },
  { method: 'post', path: `/api/admin/orders/${NO_ORDER}/cancel`, may: ['operator', 'admin'], allowed: 404 },
  { method: 'post', path: `/api/admin/orders/${NO_ORDER}/refunds`, may: ['operator', 'admin'], allowed: 404 },
  { method: 'post', path: '/api/admin/events/evt_nosuchevent/resend', may: ['operator', 'admin'], allowed: 404 },
  { method: 'get', path: '/api/admin/audit', may: ['admin'], allowed: 200 },
];

type Schema = Record<string, unknown> & {
  $ref?: string;
  allOf?: Schema[];
  type?: string;
  nullable?: boolean;
  enum?: unknown[];
  pattern?: string;
  format?: string;
  required?: string[];
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: unknown;
};
interface OpenApiDoc {
  paths: Record<
    string,
    Record<string, { responses: Record<string, { content?: Record<string, { schema: Schema }> }> }>
  >;
  components: { schemas: Record<string, Schema> };
}

/**
 * What is wrong with `value` as an instance of `schema` (OpenAPI 3.0 subset the document uses: $ref,
 * allOf, type, nullable, enum, pattern, date-time, required, properties, items). Properties the schema
 * does not name are errors too, unless it allows additionalProperties: the document must say it all.
 */
function conformance(doc: OpenApiDoc, schema: Schema, value: unknown, at = '$'): string[] {
  const resolve = (s: Schema): Schema => {
    while (s.$ref) s = doc.components.schemas[s.$ref.split('/').pop()!] ?? {};
    return s;
  };
  const named = (s: Schema): Set<string> | 'any' => {
    s = resolve(s);
    if (s.additionalProperties) return 'any';
    const out = new Set(Object.keys(s.properties ?? {}));
    for (const sub of s.allOf ?? []) {
      const k = named(sub);
      if (k === 'any') return 'any';
      for (const n of k) out.add(n);
    }
    return out;
  };
  const walk = (raw: Schema, v: unknown, path: string, extrasChecked: boolean): string[] => {
    const s = resolve(raw);
    const errs: string[] = [];
    if (s.allOf) {
      for (const sub of s.allOf) errs.push(...walk(sub, v, path, true));
    } else if (v === null) {
      if (s.type && !s.nullable) errs.push(`${path}: null`);
      return errs;
    } else if (s.type) {
      const ok =
        s.type === 'integer'
          ? Number.isInteger(v)
          : s.type === 'array'
            ? Array.isArray(v)
            : s.type === 'object'
              ? typeof v === 'object' && !Array.isArray(v)
              : typeof v === s.type;
      if (!ok) return [`${path}: ${JSON.stringify(v)} is not ${s.type}`];
    }
    if (s.enum && !s.enum.includes(v)) errs.push(`${path}: ${JSON.stringify(v)} not in ${s.enum.join('|')}`);
    if (typeof v === 'string' && s.pattern && !new RegExp(s.pattern).test(v))
      errs.push(`${path}: ${v} !~ ${s.pattern}`);
    if (
      typeof v === 'string' &&
      s.format === 'date-time' &&
      !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(v)
    ) {
      errs.push(`${path}: ${v} is not a date-time`);
    }
    if (Array.isArray(v) && s.items) v.forEach((x, i) => errs.push(...walk(s.items!, x, `${path}[${i}]`, false)));
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      const o = v as Record<string, unknown>;
      for (const r of s.required ?? []) if (!(r in o)) errs.push(`${path}.${r}: missing`);
      for (const [k, sub] of Object.entries(s.properties ?? {})) {
        if (k in o && o[k] !== undefined) errs.push(...walk(sub, o[k], `${path}.${k}`, false));
      }
      const known = extrasChecked || (s.type !== 'object' && !s.allOf) ? 'any' : named(raw);
      if (known !== 'any') for (const k of Object.keys(o)) if (!known.has(k)) errs.push(`${path}.${k}: not documented`);
    }
    return errs;
  };
  return walk(schema, value, at, false);
}

describe('admin API', () => {
  let t: TestApp;
  let http: ReturnType<typeof request>;
  let db: DataSource;

  beforeAll(async () => {
    t = await bootApp({ apiKeys: KEYS_WITH_NAMES, env: { WEBHOOK_ALLOW_PRIVATE: 'true' } });
    http = request(t.app.getHttpServer());
    db = t.app.get(DataSource);
  });
  afterAll(async () => {
    await t?.close();
  });

  const auditCount = async (): Promise<number> =>
    Number((await db.query<Array<{ n: string }>>(`SELECT count(*) AS n FROM audit_log`))[0]!.n);

  async function newOrder(subject = 'Admin test', amount = '10.00'): Promise<string> {
    const orderId = uniqueOrderId('AD');
    await http.post('/api/v1/orders').set(auth()).send({ orderId, subject, amount }).expect(201);
    return orderId;
  }

  async function paidOrder(subject = 'Admin paid', amount = '10.00'): Promise<string> {
    const orderId = await newOrder(subject, amount);
    await http
      .post(`/api/v1/orders/${orderId}/pay`)
      .set(auth())
      .send({ channel: 'pays.AliPayType', payType: 'pc' })
      .expect(200);
    t.sandbox!.alipay.scan(orderId);
    await t.sandbox!.alipay.pay(orderId);
    await until(async () => {
      const r = await http.get(`/api/v1/orders/${orderId}`).set(auth());
      return (r.body as { status: string }).status === 'success' ? true : undefined;
    });
    return orderId;
  }

  describe('role matrix: every route × every role × no key', () => {
    for (const route of ROUTES) {
      for (const who of WHO) {
        const expected = who === 'none' ? 401 : route.may.includes(who) ? route.allowed : 403;
        it(`${route.method.toUpperCase()} ${route.path} as ${who} → ${expected}`, async () => {
          const before = await auditCount();
          let req = http[route.method](route.path);
          if (who !== 'none') req = req.set(auth(who));
          const res = await req.send(route.method === 'post' ? {} : undefined);
          expect(res.status).toBe(expected);
          if (expected === 401) expect(res.body.code).toBe('UNAUTHORIZED');
          if (expected === 403) expect(res.body.code).toBe('FORBIDDEN');
          // A refused caller leaves no trace in the audit log, and changes nothing.
          if (expected === 401 || expected === 403) expect(await auditCount()).toBe(before);
        });
      }
    }
  });

  it('a wrong key is 401 and the service key cannot reach the console, but admin keys keep the service API', async () => {
    await http.get('/api/admin/orders').set(as('not-a-key-0123456789')).expect(401);
    await http.get('/api/admin/orders').set(auth('service')).expect(403);
    const orderId = await newOrder();
    await http.get(`/api/v1/orders/${orderId}`).set(auth('admin')).expect(200);
    await http.get(`/api/v1/orders/${orderId}`).set(auth('viewer')).expect(403);
  });

  it('searches by orderId prefix, subject (Chinese too), trade number, status, amount; pages newest first without gaps', async () => {
    const tag = uniqueOrderId('S').slice(0, 14);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const orderId = `${tag}x${i}`;
      await http
        .post('/api/v1/orders')
        .set(auth())
        .send({ orderId, subject: `会员充值 ${tag} №${i} <b>`, amount: `${i + 1}.50` })
        .expect(201);
      ids.push(orderId);
    }
    const byPrefix = await http.get('/api/admin/orders').query({ q: tag, limit: 2 }).set(auth('viewer')).expect(200);
    const seen: string[] = byPrefix.body.items.map((o: { orderId: string }) => o.orderId);
    let cursor: string | null = byPrefix.body.nextCursor;
    while (cursor) {
      const next = await http
        .get('/api/admin/orders')
        .query({ q: tag, limit: 2, cursor })
        .set(auth('viewer'))
        .expect(200);
      seen.push(...next.body.items.map((o: { orderId: string }) => o.orderId));
      cursor = next.body.nextCursor;
    }
    expect(seen).toEqual([...ids].reverse());

    const bySubject = await http
      .get('/api/admin/orders')
      .query({ q: `充值 ${tag} №3` })
      .set(auth('viewer'))
      .expect(200);
    expect(bySubject.body.items.map((o: { orderId: string }) => o.orderId)).toEqual([ids[3]]);
    // LIKE metacharacters are literal.
    const percent = await http
      .get('/api/admin/orders')
      .query({ q: `${tag}%` })
      .set(auth('viewer'))
      .expect(200);
    expect(percent.body.items).toEqual([]);

    const amounts = await http
      .get('/api/admin/orders')
      .query({ q: tag, minAmount: '2.50', maxAmount: '4.50' })
      .set(auth('viewer'))
      .expect(200);
    expect(amounts.body.items.map((o: { amount: string }) => o.amount)).toEqual(['4.50', '3.50', '2.50']);

    const paid = await paidOrder(`paid ${tag}`);
    const detail = await http.get(`/api/admin/orders/${paid}`).set(auth('viewer')).expect(200);
    const tradeNo = detail.body.channelTradeNo as string;
    expect(tradeNo).toBeTruthy();
    const byTrade = await http.get('/api/admin/orders').query({ q: tradeNo }).set(auth('viewer')).expect(200);
    expect(byTrade.body.items.map((o: { orderId: string }) => o.orderId)).toEqual([paid]);
    const success = await http
      .get('/api/admin/orders')
      .query({ q: tag, status: 'success' })
      .set(auth('viewer'))
      .expect(200);
    expect(success.body.items.map((o: { orderId: string }) => o.orderId)).toEqual([paid]);

    await http.get('/api/admin/orders').query({ cursor: 'bm90LWEtY3Vyc29y' }).set(auth('viewer')).expect(400);
    await http.get('/api/admin/orders').query({ status: 'paid' }).set(auth('viewer')).expect(400);
    await http.get('/api/admin/orders').query({ minAmount: '1e3' }).set(auth('viewer')).expect(400);
  });

  it("an order's detail: attempts, payments, notifies with verdicts (no signature), events with deliveries, one sorted timeline", async () => {
    const orderId = await paidOrder('Detail 详情');
    const res = await http.get(`/api/admin/orders/${orderId}`).set(auth('viewer')).expect(200);
    const d = res.body;
    expect(d.status).toBe('success');
    expect(d.refundableAmount).toBe('10.00');
    expect(d.attempts).toHaveLength(1);
    expect(d.payments).toHaveLength(1);
    const notify = d.notifies[0];
    expect(notify.verdict).toBeTruthy();
    expect(notify).not.toHaveProperty('headers');
    expect(notify.body).toContain('sign=[redacted]');
    expect(notify.body).not.toMatch(/\nsign=(?!\[redacted\])/);
    expect(d.events.map((e: { type: string }) => e.type)).toContain('order.succeeded');
    const times = d.timeline.map((i: { at: string }) => i.at);
    expect([...times].sort()).toEqual(times);
    const kinds = new Set(d.timeline.map((i: { kind: string }) => i.kind));
    for (const k of ['order', 'attempt', 'notify', 'event']) expect(kinds.has(k)).toBe(true);
  });

  it('a refund by a named operator is audited with who, before, after and the request id, in its own transaction', async () => {
    const orderId = await paidOrder();
    const requestId = `req-${uniqueOrderId('R')}`;
    const res = await http
      .post(`/api/admin/orders/${orderId}/refunds`)
      .set(as(ALICE))
      .set('X-Request-Id', requestId)
      .send({ amount: '3.25', reason: 'customer asked' })
      .expect(201);
    expect(res.body.amount).toBe('3.25');
    expect(res.body.source).toBe('admin');
    const audit = await http.get('/api/admin/audit').query({ orderId }).set(auth('admin')).expect(200);
    expect(audit.body.items).toHaveLength(1);
    const e = audit.body.items[0];
    expect(e).toMatchObject({ actor: 'alice', role: 'operator', action: 'refund.create', outcome: 'ok', requestId });
    expect(e.target).toBe(res.body.refundId);
    expect(e.before.status).toBe('success');
    expect(e.before.refundedAmount).toBe('0.00');
    expect(e.after.refund.amount).toBe('3.25');

    const detail = await http.get(`/api/admin/orders/${orderId}`).set(auth('viewer')).expect(200);
    expect(detail.body.refundableAmount).toBe('6.75');
    expect(detail.body.audit).toHaveLength(1);

    // More than is left: 409, nothing held, and the refusal is on record.
    await http.post(`/api/admin/orders/${orderId}/refunds`).set(as(ALICE)).send({ amount: '7.00' }).expect(409);
    const after = await http.get('/api/admin/audit').query({ orderId, actor: 'alice' }).set(auth('admin')).expect(200);
    expect(after.body.items[0]).toMatchObject({ action: 'refund.create', outcome: 'refused' });
    expect(after.body.items[0].after.error.code).toBe('REFUND_AMOUNT_EXCEEDED');
  });

  it('when the audit entry cannot be written, the refund does not happen either', async () => {
    const orderId = await paidOrder();
    // A trigger that refuses mallory's entries: the refund must roll back with its audit row.
    await db.query(`CREATE OR REPLACE FUNCTION test_refuse_mallory() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.actor = 'mallory' THEN RAISE EXCEPTION 'audit refused for the test'; END IF; RETURN NEW; END $$`);
    await db.query(`CREATE TRIGGER tr_test_refuse_mallory BEFORE INSERT ON audit_log
      FOR EACH ROW EXECUTE FUNCTION test_refuse_mallory()`);
    try {
      await http.post(`/api/admin/orders/${orderId}/refunds`).set(as(MALLORY)).send({ amount: '1.00' }).expect(500);
    } finally {
      await db.query(`DROP TRIGGER tr_test_refuse_mallory ON audit_log`);
      await db.query(`DROP FUNCTION test_refuse_mallory()`);
    }
    const refunds = await db.query(`SELECT count(*) AS n FROM refunds WHERE order_id = $1`, [orderId]);
    expect(Number(refunds[0].n)).toBe(0);
    const held = await db.query(
      `SELECT refund_held_minor FROM payment_attempts WHERE order_id = $1 AND status = 'paid'`,
      [orderId],
    );
    expect(Number(held[0].refund_held_minor)).toBe(0);
  });

  it('cancel is audited once with its effect; a second cancel is a no-op entry; check records its result', async () => {
    const orderId = await newOrder();
    const c1 = await http.post(`/api/admin/orders/${orderId}/cancel`).set(auth('operator')).expect(200);
    expect(c1.body.status).toBe('close');
    await http.post(`/api/admin/orders/${orderId}/cancel`).set(auth('operator')).expect(200);
    await http.post(`/api/admin/orders/${orderId}/check`).set(auth('admin')).send({}).expect(200);
    const audit = await http.get('/api/admin/audit').query({ orderId }).set(auth('admin')).expect(200);
    const entries = [...audit.body.items].reverse();
    expect(entries.map((e: { action: string; outcome: string }) => `${e.action}:${e.outcome}`)).toEqual([
      'order.cancel:ok',
      'order.cancel:noop',
      'order.check:noop',
    ]);
    expect(entries[0].before.status).toBe('wait');
    expect(entries[0].after.status).toBe('close');
    // The close event exists with it.
    const events = await db.query(`SELECT type FROM events WHERE order_id = $1`, [orderId]);
    expect(events.map((e: { type: string }) => e.type)).toEqual(['order.closed']);
  });

  it('resend is audited with the deliveries before and after', async () => {
    const orderId = await paidOrder();
    const [ev] = await db.query(`SELECT id FROM events WHERE order_id = $1 AND type = 'order.succeeded'`, [orderId]);
    const res = await http.post(`/api/admin/events/${ev.id}/resend`).set(auth('operator')).expect(200);
    expect(res.body.id).toBe(ev.id);
    const audit = await http.get('/api/admin/audit').query({ orderId }).set(auth('admin')).expect(200);
    expect(audit.body.items[0]).toMatchObject({ action: 'event.resend', target: ev.id, outcome: 'ok' });
    expect(Array.isArray(audit.body.items[0].after.deliveries)).toBe(true);
  });

  it('audit entries cannot be changed or deleted: no route, and the database refuses', async () => {
    await http
      .post(`/api/admin/orders/${await newOrder()}/cancel`)
      .set(auth('operator'))
      .expect(200);
    for (const method of ['put', 'patch', 'delete'] as const) {
      const r = await http[method]('/api/admin/audit').set(auth('admin'));
      expect(r.status).toBe(404);
    }
    await expect(db.query(`UPDATE audit_log SET actor = 'someone else'`)).rejects.toThrow(/append-only/);
    await expect(db.query(`DELETE FROM audit_log`)).rejects.toThrow(/append-only/);
    await expect(db.query(`TRUNCATE audit_log`)).rejects.toThrow(/append-only/);
    expect(await auditCount()).toBeGreaterThan(0);
  });

  it('the audit log pages by cursor and filters by actor', async () => {
    for (let i = 0; i < 3; i++) {
      await http
        .post(`/api/admin/orders/${await newOrder()}/cancel`)
        .set(as(ALICE))
        .expect(200);
    }
    const first = await http.get('/api/admin/audit').query({ actor: 'alice', limit: 2 }).set(auth('admin')).expect(200);
    expect(first.body.items).toHaveLength(2);
    const second = await http
      .get('/api/admin/audit')
      .query({ actor: 'alice', limit: 2, cursor: first.body.nextCursor })
      .set(auth('admin'))
      .expect(200);
    const ids = [...first.body.items, ...second.body.items].map((e: { id: string }) => Number(e.id));
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort((a, b) => b - a)).toEqual(ids);
    for (const e of [...first.body.items, ...second.body.items]) expect(e.actor).toBe('alice');
  });

  it('stats count the orders of each bucket and channel, money as decimal strings', async () => {
    const from = new Date(Date.now() - 3_600_000).toISOString();
    const to = new Date(Date.now() + 3_600_000).toISOString();
    const sum = async () => {
      const r = await http.get('/api/admin/stats').query({ from, to, bucket: 'hour' }).set(auth('viewer')).expect(200);
      const rows = (r.body.items as Array<Record<string, unknown>>).filter(
        (i) => i['channel'] === 'pays.aliPayment' && i['currency'] === 'CNY',
      );
      const minor = (s: unknown) => {
        const [a, b = ''] = String(s).split('.');
        return Number(a) * 100 + Number(b.padEnd(2, '0'));
      };
      return {
        created: rows.reduce((n, i) => n + Number(i['created']), 0),
        paid: rows.reduce((n, i) => n + Number(i['paid']), 0),
        paidMinor: rows.reduce((n, i) => n + minor(i['paidAmount']), 0),
        rates: rows.map((i) => i['conversionRate']),
        amounts: rows.map((i) => i['paidAmount']),
      };
    };
    const before = await sum();
    await paidOrder('stats', '12.34');
    const after = await sum();
    expect(after.created - before.created).toBe(1);
    expect(after.paid - before.paid).toBe(1);
    expect(after.paidMinor - before.paidMinor).toBe(1234);
    for (const a of after.amounts) expect(a).toMatch(/^\d+\.\d\d$/);
    for (const r of after.rates) expect(r).toMatch(/^[01]\.\d{4}$/);
    await http.get('/api/admin/stats').query({ bucket: 'week' }).set(auth('viewer')).expect(400);
    await http.get('/api/admin/stats').query({ tz: 'Mars/Base' }).set(auth('viewer')).expect(400);
  });
  it('every admin answer is what /openapi.json documents for its route and status', async () => {
    const doc = (await http.get('/openapi.json').expect(200)).body as OpenApiDoc;
    const conforms = (method: string, route: string, res: { status: number; body: unknown }): void => {
      const op = doc.paths[route]?.[method];
      expect({ route, documented: op !== undefined }).toEqual({ route, documented: true });
      const schema = op!.responses[String(res.status)]?.content?.['application/json']?.schema;
      expect({ route, status: res.status, hasSchema: schema !== undefined }).toEqual({
        route,
        status: res.status,
        hasSchema: true,
      });
      expect({ route, status: res.status, errors: conformance(doc, schema!, res.body) }).toEqual({
        route,
        status: res.status,
        errors: [],
      });
    };
    // The checker itself catches a drift (an undocumented field, a wrong type, a missing field).
    const orderSchema = { $ref: '#/components/schemas/AdminOrderDetail' };
    expect(conformance(doc, orderSchema, {})).toEqual(
      expect.arrayContaining(['$.timeline: missing', '$.orderId: missing']),
    );
    expect(conformance(doc, { $ref: '#/components/schemas/StatsBucket' }, { created: 1.5, extra: 1 })).toEqual(
      expect.arrayContaining(['$.created: 1.5 is not integer', '$.extra: not documented']),
    );

    const orderId = await paidOrder('OpenAPI 文档', '20.00');
    const refund = await http
      .post(`/api/admin/orders/${orderId}/refunds`)
      .set(as(ALICE))
      .send({ amount: '5.00', reason: 'schema' })
      .expect(201);
    conforms('post', '/api/admin/orders/{orderId}/refunds', refund);
    conforms(
      'post',
      '/api/admin/orders/{orderId}/refunds',
      await http.post(`/api/admin/orders/${orderId}/refunds`).set(as(ALICE)).send({ amount: '99.00' }).expect(409),
    );
    conforms(
      'post',
      '/api/admin/orders/{orderId}/check',
      await http.post(`/api/admin/orders/${orderId}/check`).set(auth('operator')).send({}).expect(200),
    );
    const [ev] = await db.query(`SELECT id FROM events WHERE order_id = $1 AND type = 'order.succeeded'`, [orderId]);
    conforms(
      'post',
      '/api/admin/events/{id}/resend',
      await http.post(`/api/admin/events/${ev.id}/resend`).set(auth('operator')).expect(200),
    );
    const open = await newOrder();
    conforms(
      'post',
      '/api/admin/orders/{orderId}/cancel',
      await http.post(`/api/admin/orders/${open}/cancel`).set(auth('operator')).expect(200),
    );

    const detail = await http.get(`/api/admin/orders/${orderId}`).set(auth('viewer')).expect(200);
    // Every list of the story is filled, so every item schema is exercised.
    for (const k of ['attempts', 'payments', 'refunds', 'notifies', 'events', 'audit', 'timeline']) {
      expect({ k, n: detail.body[k].length > 0 }).toEqual({ k, n: true });
    }
    conforms('get', '/api/admin/orders/{orderId}', detail);
    conforms(
      'get',
      '/api/admin/orders/{orderId}',
      await http.get(`/api/admin/orders/${NO_ORDER}`).set(auth('viewer')).expect(404),
    );
    const page = await http.get('/api/admin/orders').query({ limit: 2 }).set(auth('viewer')).expect(200);
    expect(page.body.nextCursor).not.toBeNull();
    conforms('get', '/api/admin/orders', page);
    conforms(
      'get',
      '/api/admin/orders',
      await http.get('/api/admin/orders').query({ status: 'nope' }).set(auth('viewer')).expect(400),
    );
    const stats = await http.get('/api/admin/stats').query({ bucket: 'hour' }).set(auth('viewer')).expect(200);
    expect(stats.body.items.length).toBeGreaterThan(0);
    conforms('get', '/api/admin/stats', stats);
    const audit = await http.get('/api/admin/audit').query({ limit: 3 }).set(auth('admin')).expect(200);
    expect(audit.body.items).toHaveLength(3);
    conforms('get', '/api/admin/audit', audit);
    conforms('get', '/api/admin/audit', await http.get('/api/admin/audit').set(auth('viewer')).expect(403));
    conforms('get', '/api/admin/audit', await http.get('/api/admin/audit').expect(401));
  });
});
