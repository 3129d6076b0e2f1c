import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SwaggerParser from '@apidevtools/swagger-parser';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { auth, bootApp, freePort, type TestApp, uniqueOrderId, until } from '../utils/test-app.js';
import { type Spawned, spawnApi } from '../utils/processes.js';

type Row = Record<string, unknown>;

/** The value of one series in a Prometheus text exposition (0 when absent). */
function series(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => have.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}

/**
 * Every route the running app serves, as `METHOD /path/{param}`, read from Fastify's route tree
 * (`printRoutes({ commonPrefix: false })`: one node a line, indented four columns a level, its
 * methods in parentheses). HEAD is Fastify's automatic twin of each GET.
 */
function servedRoutes(t: TestApp): string[] {
  const tree = t.app.getHttpAdapter().getInstance().printRoutes({ commonPrefix: false });
  const out: string[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const start = line.search(/[^│├└─ ]/);
    if (start < 0) continue;
    const m = /^(.*?)(?: \(([A-Z, ]+)\))?$/.exec(line.slice(start));
    if (!m?.[1]) continue;
    const depth = Math.floor(start / 4);
    stack.length = depth;
    stack.push(m[1]);
    const path = stack.join('').replace(/:(\w+)/g, '{$1}');
    for (const method of (m[2] ?? '').split(', ')) if (method && method !== 'HEAD') out.push(`${method} ${path}`);
  }
  return [...new Set(out)];
}

describe('operations (issue 13)', () => {
  let t: TestApp;
  let http: ReturnType<typeof request>;
  let ds: DataSource;

  beforeAll(async () => {
    t = await bootApp();
    http = request(t.app.getHttpServer());
    ds = t.app.get(DataSource);
  });
  afterAll(async () => {
    await t.close();
  });

  describe('OpenAPI', () => {
    it('serves a valid OpenAPI document at /openapi.json', async () => {
      const res = await http.get('/openapi.json').expect(200);
      expect(res.body.openapi).toMatch(/^3\./);
      // swagger-parser validates against the OpenAPI 3.0 JSON schema and resolves every $ref.
      await expect(SwaggerParser.validate(structuredClone(res.body))).resolves.toBeDefined();
      const create = res.body.paths['/api/v1/orders'].post;
      const schemaRef = create.requestBody.content['application/json'].schema.$ref as string;
      const schema = res.body.components.schemas[schemaRef.split('/').pop()!];
      // Fields that carry only class-validator decorators are there (class-validator-jsonschema).
      expect(Object.keys(schema.properties)).toEqual(
        expect.arrayContaining(['subject', 'amount', 'orderId', 'currency', 'timeoutMinutes', 'notifyUrl', 'metadata']),
      );
      expect(schema.required).toEqual(expect.arrayContaining(['subject']));
      expect(create.responses['201'].content['application/json'].schema.$ref).toBe('#/components/schemas/Order');
      expect(create.responses['409'].content['application/json'].schema.$ref).toBe('#/components/schemas/Error');
    });

    it('describes every route the app serves except the notifies and the sandbox', async () => {
      const doc = (await http.get('/openapi.json').expect(200)).body as {
        paths: Record<string, Record<string, unknown>>;
      };
      const documented = new Set(
        Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)),
      );
      const served = servedRoutes(t);
      const excluded = (r: string): boolean =>
        /^POST \/api\/v1\/notify\//.test(r) ||
        r === 'POST /api/{app}/pays/services/PaySvc/wechatNotify' ||
        / \/sandbox(\/|$)/.test(r) ||
        / \/docs(\/|$)/.test(r) ||
        r.includes('*') || // catch-alls (Nest's not-found handling), not API routes
        r === 'GET /openapi.json';
      const mustBeDocumented = served.filter((r) => !excluded(r));
      expect(mustBeDocumented.length).toBeGreaterThan(15);
      expect(mustBeDocumented.filter((r) => !documented.has(r))).toEqual([]);
      // And nothing excluded slipped in.
      expect([...documented].filter((r) => /notify|wechatNotify|sandbox/i.test(r))).toEqual([]);
      // Every documented operation of an authenticated route lists the error body.
      for (const [path, ops] of Object.entries(doc.paths)) {
        for (const [method, op] of Object.entries(
          ops as Record<string, { responses: Record<string, unknown>; security?: unknown }>,
        )) {
          if (!path.startsWith('/api/')) continue;
          expect({ route: `${method} ${path}`, has401: '401' in op.responses }).toEqual({
            route: `${method} ${path}`,
            has401: true,
          });
        }
      }
    });

    it('serves Swagger UI at /docs from the package, with no CDN', async () => {
      const page = await http.get('/docs').redirects(1).expect(200);
      expect(page.text).toContain('swagger-ui');
      const srcs = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
      expect(srcs.length).toBeGreaterThan(0);
      for (const s of srcs) expect(s).not.toMatch(/^(https?:)?\/\//);
      const script = srcs.find((s) => s.endsWith('swagger-ui-bundle.js'));
      expect(script).toBeDefined();
      // As a browser resolves it against the page's URL.
      const asset = await http.get(new URL(script!, 'http://host/docs').pathname);
      expect(asset.status).toBe(200);
      expect(asset.text.length).toBeGreaterThan(100_000);
    });
  });

  describe('health', () => {
    it('live, ready and the /health alias', async () => {
      expect((await http.get('/health/live').expect(200)).body).toEqual({ status: 'ok' });
      const ready = await http.get('/health/ready').expect(200);
      expect(ready.body).toEqual({ status: 'ok', checks: { database: 'up', http: 'up' } });
      expect((await http.get('/health').expect(200)).body).toEqual(ready.body);
    });
  });

  describe('metrics', () => {
    it('keeps its roles', async () => {
      await http.get('/metrics').expect(401);
      await http.get('/metrics').set(auth('service')).expect(403);
      await http.get('/metrics').set(auth('viewer')).expect(200);
    });

    it('counts HTTP requests by route template, business events by channel, and reads the gauges', async () => {
      const scrape = async (): Promise<string> => {
        const r = await http.get('/metrics').set(auth('viewer')).expect(200);
        expect(r.headers['content-type']).toMatch(/^text\/plain/);
        return r.text;
      };
      const before = await scrape();
      const orderId = uniqueOrderId('M');
      await http.post('/api/v1/orders').set(auth()).send({ orderId, subject: 'Metrics', amount: '2.00' }).expect(201);
      await http
        .post(`/api/v1/orders/${orderId}/pay`)
        .set(auth())
        .send({ channel: 'pays.WechatPayType', payType: 'NATIVE' })
        .expect(200);
      const rows = await ds.query<Row[]>('SELECT out_trade_no FROM payment_attempts WHERE order_id = $1', [orderId]);
      await t.sandbox!.wechatpay.pay(String(rows[0]!['out_trade_no']));
      await until(async () =>
        (await http.get(`/api/v1/orders/${orderId}`).set(auth())).body.status === 'success' ? true : undefined,
      );
      const refund = await http.post(`/api/v1/orders/${orderId}/refunds`).set(auth()).send({}).expect(201);
      await until(async () =>
        (await http.post(`/api/v1/refunds/${refund.body.refundId}/check`).set(auth())).body.status === 'success'
          ? true
          : undefined,
      );
      // A stuck order: still wait ten minutes after its expiry.
      const stuckId = uniqueOrderId('M');
      await http
        .post('/api/v1/orders')
        .set(auth())
        .send({ orderId: stuckId, subject: 'Stuck', amount: '1.00' })
        .expect(201);
      await ds.query(`UPDATE orders SET expire_time = now() - interval '10 minutes' WHERE order_id = $1`, [stuckId]);

      const after = await scrape();
      const delta = (name: string, labels: Record<string, string> = {}): number =>
        series(after, name, labels) - series(before, name, labels);
      expect(series(after, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
      expect(delta('paybridge_orders_created_total', { currency: 'CNY' })).toBe(2);
      expect(
        delta('paybridge_payment_attempts_created_total', { channel: 'pays.myWechatPay', pay_type: 'NATIVE' }),
      ).toBe(1);
      expect(delta('paybridge_orders_paid_total', { channel: 'pays.myWechatPay' })).toBe(1);
      expect(
        delta('paybridge_notify_verdicts_total', { channel_type: 'pays.WechatPayType', verdict: 'applied' }),
      ).toBeGreaterThanOrEqual(1);
      expect(delta('paybridge_refunds_total', { channel: 'pays.myWechatPay', outcome: 'created' })).toBe(1);
      expect(delta('paybridge_refunds_total', { channel: 'pays.myWechatPay', outcome: 'succeeded' })).toBe(1);
      expect(
        delta('http_request_duration_seconds_count', {
          method: 'POST',
          route: '/api/v1/orders/:orderId/pay',
          status: '200',
        }),
      ).toBe(1);
      // No raw ids in labels: the route is the template.
      expect(after).not.toContain(`route="/api/v1/orders/${orderId}`);
      expect(series(after, 'paybridge_orders_stuck')).toBeGreaterThanOrEqual(1);
      expect(series(after, 'paybridge_metrics_database_up')).toBe(1);
      for (const g of [
        'paybridge_refunds_pending',
        'paybridge_webhook_deliveries_pending',
        'paybridge_webhook_oldest_pending_event_seconds',
      ]) {
        expect(after).toMatch(new RegExp(`^${g} \\d`, 'm'));
      }
    });
  });

  describe('security headers', () => {
    it('helmet everywhere, with the sandbox cashier free to redirect to the merchant page', async () => {
      const api = await http.get('/health/live');
      expect(api.headers['x-powered-by']).toBeUndefined();
      expect(api.headers['x-content-type-options']).toBe('nosniff');
      expect(api.headers['content-security-policy']).toContain("form-action 'self'");
      expect(api.headers['content-security-policy']).not.toContain('upgrade-insecure-requests');
      const sandbox = await http.get('/sandbox/webhooks');
      expect(sandbox.headers['x-content-type-options']).toBe('nosniff');
      expect(sandbox.headers['content-security-policy']).toBeDefined();
      expect(sandbox.headers['content-security-policy']).not.toContain('form-action');
    });
  });
});

describe('shutdown: /health/ready answers 503 while draining', () => {
  it('during SHUTDOWN_GRACE_MS the listener is open and readiness is 503', async () => {
    const t = await bootApp({ env: { SHUTDOWN_GRACE_MS: '3000' } });
    const http = request(t.app.getHttpServer());
    await http.get('/health/ready').expect(200);
    const closing = t.close();
    const draining = await until(
      async () => {
        const r = await http.get('/health/ready');
        return r.status === 503 ? (r.body as Row) : undefined;
      },
      2500,
      20,
    );
    expect(draining).toEqual({ status: 'shutting_down', checks: { database: 'up', http: 'draining' } });
    expect((await http.get('/health/live')).status).toBe(200);
    await closing;
  });
});

(process.env['DATABASE_URL'] ? describe.skip : describe)('sandbox keys persist in DATA_DIR (embedded)', () => {
  const started: Spawned[] = [];
  afterEach(async () => {
    for (const s of started.splice(0)) {
      if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGTERM');
      await s.exited;
    }
  });

  const keysIn = (out: string): Record<string, string> =>
    Object.fromEntries(
      [...out.matchAll(/^ {2}(service|viewer|operator|admin)\s+(pb_\S+)$/gm)].map((m) => [m[1]!, m[2]!]),
    );
  const secretIn = (out: string): string | undefined => /^ {2}(whsec_\S+)$/m.exec(out)?.[1];

  it('a restart prints the same keys and webhook secret, and the keys still work', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'paybridge-keys-'));
    const start = async (): Promise<{ s: Spawned; port: number }> => {
      const port = await freePort();
      const s = spawnApi({ DATA_DIR: dataDir, PORT: String(port), JOBS_ENABLED: 'false' });
      started.push(s);
      await until(() => Promise.resolve(s.output().includes('PayBridge listening') ? true : undefined), 30_000);
      return { s, port };
    };
    const first = await start();
    const keys = keysIn(first.s.output());
    expect(Object.keys(keys).sort()).toEqual(['admin', 'operator', 'service', 'viewer']);
    const secret = secretIn(first.s.output());
    expect(secret).toBeDefined();
    const file = join(dataDir, 'sandbox-keys.json');
    expect(existsSync(file)).toBe(true);
    expect(statSync(file).mode & 0o077).toBe(0);
    expect(readFileSync(file, 'utf8')).toContain(keys['service']!);
    first.s.child.kill('SIGTERM');
    await first.s.exited;

    const second = await start();
    expect(keysIn(second.s.output())).toEqual(keys);
    expect(secretIn(second.s.output())).toBe(secret);
    expect(second.s.output()).toContain('kept in');
    const res = await request(`http://127.0.0.1:${second.port}`)
      .get('/api/v1/orders/NoSuchOrder1')
      .set('Authorization', `Bearer ${keys['service']!}`);
    expect(res.status).toBe(404);
    // The keys went to the terminal, never into a log line.
    const logLines = second.s
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'));
    expect(logLines.length).toBeGreaterThan(0);
    for (const l of logLines) for (const k of Object.values(keys)) expect(l).not.toContain(k);
  });

  it('a damaged key file stops the start with a message naming the file, not its content', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'paybridge-keys-'));
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(dataDir, 'sandbox-keys.json'), '{"keys": {"service": "pb_service_leakcheck_0123456789"}}');
    const s = spawnApi({ DATA_DIR: dataDir, PORT: String(await freePort()), JOBS_ENABLED: 'false' });
    started.push(s);
    const { code } = await s.exited;
    expect(code).not.toBe(0);
    expect(s.output()).toContain('sandbox-keys.json');
    expect(s.output()).not.toContain('leakcheck');
  });
});
