import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { JobStats } from '#payments';
import { prepareDataSource, runMigrations } from '#database';
import { auth, bootApp, type TestApp, uniqueOrderId, until } from '../utils/test-app.js';
import { type Spawned, listen, spawnWorker } from '../utils/processes.js';

/** Issue 11: merchant webhooks, delivered to real loopback receivers and checked independently. */

const SECRETS = ['e2e-webhook-secret-old-0123456789', 'e2e-webhook-secret-new-0123456789'];

interface Hit {
  readonly eventId: string;
  readonly body: string;
  readonly headers: IncomingHttpHeaders;
  /** The status this receiver answered, or null while it holds the request open. */
  answered: number | null;
}

/** A merchant endpoint on loopback: records every request and answers what `answer` says. */
class Receiver {
  readonly hits: Hit[] = [];
  private readonly held: ServerResponse[] = [];
  server!: Server;
  url!: string;
  /** The status for the n-th request (0-based), or 'hang' to hold it open. */
  answer: (n: number, eventId: string) => number | 'hang' = () => 200;

  async start(): Promise<this> {
    const { server, port } = await listen((req, res) => this.handle(req, res));
    this.server = server;
    this.url = `http://127.0.0.1:${port}/hooks`;
    return this;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const hit: Hit = {
        eventId: String(req.headers['paybridge-event-id']),
        body,
        headers: req.headers,
        answered: null,
      };
      const verdict = this.answer(this.hits.length, hit.eventId);
      this.hits.push(hit);
      if (verdict === 'hang') {
        this.held.push(res);
        return;
      }
      hit.answered = verdict;
      res.writeHead(verdict, { 'Content-Type': 'text/plain' }).end('ok');
    });
  }

  ids(): string[] {
    return this.hits.map((h) => h.eventId);
  }

  async close(): Promise<void> {
    for (const r of this.held.splice(0)) r.destroy();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

/** The receiver side of API.md §10, from the contract alone (node:crypto; not the app's signer). */
function verify(headers: IncomingHttpHeaders, body: string, secret: string): boolean {
  const header = String(headers['paybridge-signature'] ?? '');
  const parts = header.split(',').map((p) => p.split('='));
  const t = Number(parts.find(([k]) => k === 't')?.[1]);
  if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > 300) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${body}`, 'utf8').digest();
  return parts.some(
    ([k, v]) =>
      k === 'v1' && v !== undefined && /^[0-9a-f]{64}$/.test(v) && timingSafeEqual(Buffer.from(v, 'hex'), expected),
  );
}

/**
 * Marks what this suite left pending to its loopback receivers as failed: on a shared PostgreSQL database
 * a later run's receiver may get the same port and must not receive an earlier run's events.
 */
async function settleLeftovers(db: DataSource): Promise<void> {
  await db.query(
    `UPDATE event_deliveries SET status = 'failed' WHERE status = 'pending' AND endpoint LIKE 'http://127.0.0.1:%/hooks'`,
  );
}

describe('merchant webhooks', () => {
  let t: TestApp;
  let http: ReturnType<typeof request>;
  let db: DataSource;
  let everyEvent: Receiver;
  const receivers: Receiver[] = [];

  async function receiver(): Promise<Receiver> {
    const r = await new Receiver().start();
    receivers.push(r);
    return r;
  }

  beforeAll(async () => {
    everyEvent = await receiver();
    t = await bootApp({
      env: {
        WEBHOOK_ALLOW_PRIVATE: 'true',
        WEBHOOK_SECRETS: SECRETS.join(','),
        WEBHOOK_URLS: everyEvent.url,
        WEBHOOK_RETRY_SCHEDULE: '150ms',
      },
    });
    http = request(t.app.getHttpServer());
    db = t.app.get(DataSource);
  });
  afterAll(async () => {
    await settleLeftovers(db);
    await t.close();
    for (const r of receivers) await r.close();
  });

  async function order(notifyUrl?: string): Promise<string> {
    const orderId = uniqueOrderId('W');
    await http
      .post('/api/v1/orders')
      .set(auth())
      .send({ orderId, subject: 'Webhook test', amount: '2.00', ...(notifyUrl ? { notifyUrl } : {}) })
      .expect(201);
    return orderId;
  }

  async function payWithAlipay(orderId: string): Promise<void> {
    await http
      .post(`/api/v1/orders/${orderId}/pay`)
      .set(auth())
      .send({ channel: 'pays.AliPayType', payType: 'pc' })
      .expect(200);
    t.sandbox!.alipay.scan(orderId);
    await t.sandbox!.alipay.pay(orderId);
  }

  const hitsFor = (r: Receiver, n: number): Promise<Hit[]> =>
    until(() => Promise.resolve(r.hits.length >= n ? r.hits : undefined), 15_000, 20);

  it("a paid order's event reaches its notifyUrl and every WEBHOOK_URLS endpoint, signed for each secret", async () => {
    const merchant = await receiver();
    const orderId = await order(merchant.url);
    await payWithAlipay(orderId);

    const [hit] = await hitsFor(merchant, 1);
    const event = JSON.parse(hit!.body) as {
      id: string;
      type: string;
      createdAt: string;
      data: { order: Record<string, unknown> };
    };
    expect(Object.keys(event)).toEqual(['id', 'type', 'createdAt', 'data']);
    expect(event.id).toMatch(/^evt_[0-9a-f]{32}$/);
    expect(event.type).toBe('order.succeeded');
    expect(event.data.order).toMatchObject({
      orderId,
      status: 'success',
      amount: '2.00',
      currency: 'CNY',
      channel: 'pays.aliPayment',
    });
    expect(hit!.headers['paybridge-event-id']).toBe(event.id);
    expect(hit!.headers['content-type']).toBe('application/json');
    for (const secret of SECRETS) expect(verify(hit!.headers, hit!.body, secret)).toBe(true);
    expect(verify(hit!.headers, hit!.body, 'some-other-secret-0123456789')).toBe(false);
    expect(verify(hit!.headers, hit!.body.replace('2.00', '3.00'), SECRETS[0]!)).toBe(false);
    // Nothing secret in the payload: no key, no notify URL.
    expect(hit!.body).not.toMatch(/secret|notifyUrl|privateKey/i);

    const copy = await until(() => Promise.resolve(everyEvent.hits.find((h) => h.eventId === event.id)));
    expect(copy.body).toBe(hit!.body);

    const api = await http.get(`/api/v1/events/${event.id}`).set(auth()).expect(200);
    expect(api.body).toMatchObject({ id: event.id, type: 'order.succeeded', orderId, createdAt: event.createdAt });
    expect(api.body.data).toEqual(event.data);
    const deliveries = (api.body.deliveries as Record<string, unknown>[]).sort((a, b) =>
      String(a['endpoint']).localeCompare(String(b['endpoint'])),
    );
    await until(async () => {
      const d = (await http.get(`/api/v1/events/${event.id}`).set(auth())).body.deliveries as { status: string }[];
      return d.every((x) => x.status === 'delivered') ? true : undefined;
    });
    expect(deliveries.map((d) => d['endpoint']).sort()).toEqual([merchant.url, everyEvent.url].sort());
    const listed = await http.get('/api/v1/events').query({ orderId }).set(auth()).expect(200);
    expect(listed.body.items.map((e: { id: string }) => e.id)).toEqual([event.id]);
    expect(listed.body.nextCursor).toBeNull();
  });

  it('cancel writes order.closed in the same transaction as the close', async () => {
    const merchant = await receiver();
    const orderId = await order(merchant.url);
    await http.post(`/api/v1/orders/${orderId}/cancel`).set(auth()).expect(200);
    const [hit] = await hitsFor(merchant, 1);
    const event = JSON.parse(hit!.body) as { type: string; data: { order: { status: string } } };
    expect(event.type).toBe('order.closed');
    expect(event.data.order.status).toBe('close');
    // A second cancel changes nothing and writes nothing.
    await http.post(`/api/v1/orders/${orderId}/cancel`).set(auth()).expect(200);
    const rows = await db.query<{ n: number }[]>(`SELECT count(*)::int AS n FROM events WHERE order_id = $1`, [
      orderId,
    ]);
    expect(rows[0]?.n).toBe(1);
  });

  it('an endpoint answering 500 twice then 200 gets the same event three times, then no more', async () => {
    const merchant = await receiver();
    merchant.answer = (n) => (n < 2 ? 500 : 200);
    const orderId = await order(merchant.url);
    await http.post(`/api/v1/orders/${orderId}/cancel`).set(auth()).expect(200);
    const hits = await hitsFor(merchant, 3);
    expect(new Set(hits.map((h) => h.eventId)).size).toBe(1);
    expect(new Set(hits.map((h) => h.body)).size).toBe(1);
    for (const h of hits) expect(verify(h.headers, h.body, SECRETS[1]!)).toBe(true);
    const eventId = hits[0]!.eventId;
    const delivery = await until(async () => {
      const d = (await http.get(`/api/v1/events/${eventId}`).set(auth())).body.deliveries as Record<string, unknown>[];
      const mine = d.find((x) => x['endpoint'] === merchant.url);
      return mine?.['status'] === 'delivered' ? mine : undefined;
    });
    expect(delivery).toMatchObject({ attempts: 3, lastStatusCode: 200, nextAttemptAt: null });
    // Delivered is final: several retry periods later the endpoint has still seen it three times.
    await new Promise((r) => setTimeout(r, 1000));
    expect(merchant.hits).toHaveLength(3);
  });

  it('an endpoint that hangs or is down does not hold up other endpoints or its other events', async () => {
    const hanging = await receiver();
    hanging.answer = () => 'hang';
    const down = await receiver();
    await down.close();
    receivers.splice(receivers.indexOf(down), 1);
    const orders: string[] = [];
    for (let i = 0; i < 6; i++) orders.push(await order(i % 2 === 0 ? hanging.url : down.url));
    for (const o of orders) await http.post(`/api/v1/orders/${o}/cancel`).set(auth()).expect(200);
    const ids = await db.query<{ id: string }[]>(`SELECT id FROM events WHERE order_id = ANY($1)`, [orders]);
    expect(ids).toHaveLength(6);
    // Every event reaches the healthy endpoint while the hanging one still holds its requests open.
    await until(
      () => Promise.resolve(ids.every(({ id }) => everyEvent.ids().includes(id)) ? true : undefined),
      8000,
      20,
    );
    expect(hanging.hits.length).toBeGreaterThanOrEqual(1);
    expect(hanging.hits.every((h) => h.answered === null)).toBe(true);
    const rows = await db.query<{ status: string; last_error: string | null }[]>(
      `SELECT d.status, d.last_error FROM event_deliveries d JOIN events e ON e.id = d.event_id
        WHERE e.order_id = ANY($1) AND d.endpoint = $2`,
      [orders, down.url],
    );
    expect(rows).toHaveLength(3);
    await until(async () => {
      const r = await db.query<{ n: number }[]>(
        `SELECT count(*)::int AS n FROM event_deliveries WHERE endpoint = $1 AND attempts > 0 AND last_error IS NOT NULL`,
        [down.url],
      );
      return r[0]?.n === 3 ? true : undefined;
    });
  });

  it('resend delivers the event again with the same id and bytes (operator or admin only)', async () => {
    const merchant = await receiver();
    const orderId = await order(merchant.url);
    await http.post(`/api/v1/orders/${orderId}/cancel`).set(auth()).expect(200);
    const [first] = await hitsFor(merchant, 1);
    await until(async () => {
      const d = (await http.get(`/api/v1/events/${first!.eventId}`).set(auth())).body.deliveries as {
        status: string;
      }[];
      return d.every((x) => x.status === 'delivered') ? true : undefined;
    });
    await http.post(`/api/v1/events/${first!.eventId}/resend`).set(auth('service')).expect(403);
    await http.post(`/api/v1/events/${first!.eventId}/resend`).set(auth('operator')).expect(200);
    const [, second] = await hitsFor(merchant, 2);
    expect(second!.eventId).toBe(first!.eventId);
    expect(second!.body).toBe(first!.body);
    expect(verify(second!.headers, second!.body, SECRETS[0]!)).toBe(true);
    await http.post(`/api/v1/events/${first!.eventId}/resend`).set(auth('admin')).expect(200);
    await hitsFor(merchant, 3);

    const missing = await http.post('/api/v1/events/evt_00000000000000000000000000000000/resend').set(auth('operator'));
    expect(missing.status).toBe(404);
    expect(missing.body.code).toBe('EVENT_NOT_EXIST');
    const none = await http.get('/api/v1/events/evt_nope').set(auth());
    expect(none.status).toBe(404);
    expect(none.body.code).toBe('EVENT_NOT_EXIST');
  });

  it('lists events newest first with a keyset cursor, filtered by type', async () => {
    const orders = [await order(), await order(), await order()];
    for (const o of orders) await http.post(`/api/v1/orders/${o}/cancel`).set(auth()).expect(200);
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 20; page++) {
      const res = await http
        .get('/api/v1/events')
        .query({ type: 'order.closed', limit: 2, ...(cursor ? { cursor } : {}) })
        .set(auth())
        .expect(200);
      for (const e of res.body.items as { orderId: string; type: string }[]) {
        expect(e.type).toBe('order.closed');
        seen.push(e.orderId);
      }
      cursor = res.body.nextCursor ?? undefined;
      if (!cursor || orders.every((o) => seen.includes(o))) break;
    }
    expect(seen.slice(0, 3)).toEqual([...orders].reverse());
    await http.get('/api/v1/events').query({ type: 'order.nope' }).set(auth()).expect(400);
    await http.get('/api/v1/events').query({ cursor: 'not-a-cursor' }).set(auth()).expect(400);
  });

  it('counts deliveries by outcome and shows the oldest undelivered event on /metrics', async () => {
    const stats = t.app.get(JobStats).counters;
    expect(stats['webhook_deliveries_delivered']).toBeGreaterThan(0);
    expect(stats['webhook_deliveries_retried']).toBeGreaterThan(0);
    const res = await http.get('/metrics').set(auth('viewer')).expect(200);
    expect(res.text).toMatch(/paybridge_webhook_deliveries_total\{outcome="delivered"\} [1-9]/);
    expect(res.text).toMatch(/paybridge_webhook_deliveries_total\{outcome="retried"\} [1-9]/);
    expect(res.text).toMatch(/^paybridge_webhook_oldest_pending_event_seconds \d+/m);
  });
});

describe('notifyUrl safety outside the sandbox', () => {
  let t: TestApp;
  let http: ReturnType<typeof request>;
  beforeAll(async () => {
    t = await bootApp({ sandbox: false, env: { WEBHOOK_SECRETS: 'whsec_notify_url_safety_0123456789' } });
    http = request(t.app.getHttpServer());
  });
  afterAll(async () => {
    await t.close();
  });

  it.each([
    'http://127.0.0.1:9/hooks',
    'https://127.0.0.1/hooks',
    'https://10.0.0.8/hooks',
    'https://169.254.169.254/latest/meta-data',
    'https://[::1]/hooks',
    'https://localhost/hooks',
    'http://93.184.215.14/hooks',
  ])('refuses %s with 400 and creates nothing', async (notifyUrl) => {
    const orderId = uniqueOrderId('U');
    const res = await http
      .post('/api/v1/orders')
      .set(auth())
      .send({ orderId, subject: 's', amount: '1.00', notifyUrl });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('INVALID_PARAMS');
    expect(res.body.message).toMatch(/notifyUrl/);
    await http.get(`/api/v1/orders/${orderId}`).set(auth()).expect(404);
  });

  it('accepts a public https notifyUrl', async () => {
    await http
      .post('/api/v1/orders')
      .set(auth())
      .send({ orderId: uniqueOrderId('U'), subject: 's', amount: '1.00', notifyUrl: 'https://93.184.215.14/hooks' })
      .expect(201);
  });
});

/** Publishers in separate processes on one PostgreSQL database (the embedded one has one process). */
const databaseUrl = process.env['DATABASE_URL'];
const describePg = databaseUrl ? describe : describe.skip;
if (!databaseUrl) console.warn('webhook multi-process tests skipped: they need DATABASE_URL (PostgreSQL)');

describePg('webhook publishers in several processes', () => {
  let db: DataSource;
  const procs: Spawned[] = [];
  const receivers: Receiver[] = [];
  const paysDir = mkdtempSync(join(tmpdir(), 'paybridge-pays-empty-'));

  beforeAll(async () => {
    const prepared = await prepareDataSource({ databaseUrl, dataDir: '', poolSize: 4 });
    db = new DataSource(prepared.options);
    await db.initialize();
    await runMigrations(db, false);
  });
  afterAll(async () => {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    for (const r of receivers) await r.close();
    await settleLeftovers(db);
    await db.destroy();
  });

  const env = (extra: Record<string, string> = {}): Record<string, string> => ({
    DATABASE_URL: databaseUrl ?? '',
    PAYS_DIR: paysDir,
    SWEEP_INTERVAL_SECONDS: '3600',
    WEBHOOK_ALLOW_PRIVATE: 'true',
    WEBHOOK_SECRETS: SECRETS[0]!,
    WEBHOOK_RETRY_SCHEDULE: '200ms',
    ...extra,
  });

  /** Events with one pending delivery each to `endpoint`, as the api's writer leaves them. */
  async function seedEvents(n: number, endpoint: string): Promise<string[]> {
    const ids = Array.from({ length: n }, () => `evt_${randomBytes(16).toString('hex')}`);
    const bodies = ids.map((id) =>
      JSON.stringify({
        id,
        type: 'order.closed',
        createdAt: new Date().toISOString(),
        data: { order: { orderId: 'MPWEBHOOK' } },
      }),
    );
    await db.query(
      `INSERT INTO events (id, type, order_id, body) SELECT id, 'order.closed', 'MPWEBHOOK', body
         FROM unnest($1::varchar[], $2::text[]) AS t(id, body)`,
      [ids, bodies],
    );
    await db.query(
      `INSERT INTO event_deliveries (event_id, endpoint, status, give_up_at)
       SELECT id, $2, 'pending', now() + interval '3 days' FROM unnest($1::varchar[]) AS t(id)`,
      [ids, endpoint],
    );
    return ids;
  }

  async function pendingOf(endpoint: string): Promise<number> {
    const rows = await db.query<{ n: number }[]>(
      `SELECT count(*)::int AS n FROM event_deliveries WHERE endpoint = $1 AND status <> 'delivered'`,
      [endpoint],
    );
    return rows[0]?.n ?? -1;
  }

  it('two publisher processes deliver 1,000 events exactly once each', async () => {
    const counter = await new Receiver().start();
    receivers.push(counter);
    const ids = await seedEvents(1000, counter.url);
    procs.push(spawnWorker(env()), spawnWorker(env()));
    await until(async () => ((await pendingOf(counter.url)) === 0 ? true : undefined), 90_000, 100);
    const counts = new Map<string, number>();
    for (const id of counter.ids()) counts.set(id, (counts.get(id) ?? 0) + 1);
    expect(counts.size).toBe(1000);
    expect([...counts.values()].filter((n) => n !== 1)).toEqual([]);
    expect(ids.every((id) => counts.get(id) === 1)).toBe(true);
    for (const h of counter.hits.slice(0, 20)) expect(verify(h.headers, h.body, SECRETS[0]!)).toBe(true);
    for (const p of procs.splice(0)) {
      p.child.kill('SIGTERM');
      const exit = await p.exited;
      expect(p.output()).not.toMatch(/failed to start|Unhandled|TypeError/);
      expect(exit.code === 0 || exit.signal === 'SIGTERM').toBe(true);
    }
  });

  it('a publisher killed with SIGKILL mid-delivery loses no event: its claims come back after the lease', async () => {
    const merchant = await new Receiver().start();
    receivers.push(merchant);
    let holding = true;
    merchant.answer = () => (holding ? 'hang' : 200);
    const ids = await seedEvents(10, merchant.url);
    const first = spawnWorker(env({ WEBHOOK_LEASE_SECONDS: '15' }));
    procs.push(first);
    await until(() => Promise.resolve(merchant.hits.length >= 4 ? true : undefined), 30_000, 20); // requests in flight
    first.child.kill('SIGKILL');
    await first.exited;
    holding = false;
    const second = spawnWorker(env({ WEBHOOK_LEASE_SECONDS: '15' }));
    procs.push(second);
    await until(async () => ((await pendingOf(merchant.url)) === 0 ? true : undefined), 60_000, 100);
    const answered = new Set(merchant.hits.filter((h) => h.answered === 200).map((h) => h.eventId));
    expect(ids.filter((id) => !answered.has(id))).toEqual([]);
  });
});
