import { createHash } from 'node:crypto';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { RateLimiter } from '../../apps/api/src/http/rate-limit.js';
import { auth, bootApp, type TestApp, uniqueOrderId } from '../utils/test-app.js';
import { WECHAT_SUCCESS_XML, paidNotifyFields, signed, toXml, wechatCreds } from '../utils/wechat-notify.js';

const ALIPAY_NOTIFY = '/api/v1/notify/alipay';
const WECHAT_NOTIFY = '/api/v1/notify/wechatpay';

/**
 * Starts every count at zero (earlier tests on this database counted the same keys and address) and
 * waits, never asserting on time, until the database's minute has at least 15 s left, so one test
 * stays in one window.
 */
async function freshWindow(ds: DataSource): Promise<void> {
  const rows = await ds.query<{ s: number }[]>(`SELECT extract(second FROM now())::float AS s`);
  const s = Number(rows[0]?.s ?? 0);
  if (s > 45) await new Promise((r) => setTimeout(r, (61 - s) * 1000));
  await ds.query(`DELETE FROM rate_limit_counters`);
}

/** An Alipay notify no instance matches (an app_id nobody configured): refused before any signature check. */
const strayAlipay = (tag: string, size = 0) =>
  `app_id=2099${tag}&notify_id=${tag}&out_trade_no=${tag}&sign=${'A'.repeat(size)}`;

describe('unauthenticated routes cannot stall the service or fill the disk (issue 9 item 7)', () => {
  describe('notify body limit and hash-only refusals', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await bootApp({ sandbox: false, env: { NOTIFY_REFUSED_PER_MINUTE: '0' } });
    });
    afterAll(async () => {
      await t.close();
    });

    it('answers 413 to a notify over NOTIFY_BODY_LIMIT_BYTES (16 KiB) and keeps nothing', async () => {
      const ds = t.app.get(DataSource);
      const before = await ds.query<{ n: number }[]>(`SELECT count(*)::int AS n FROM notify_inbox`);
      const res = await request(t.app.getHttpServer())
        .post(WECHAT_NOTIFY)
        .set('Content-Type', 'text/xml')
        .send('<!--'.repeat(4 * 1024 + 1));
      expect(res.status).toBe(413);
      expect(res.body.code).toBe('PAYLOAD_TOO_LARGE');
      const after = await ds.query<{ n: number }[]>(`SELECT count(*)::int AS n FROM notify_inbox`);
      expect(after[0]?.n).toBe(before[0]?.n);
    });

    it('keeps a notify refused before its signature is checked as a hash and a counter only', async () => {
      const ds = t.app.get(DataSource);
      const tag = uniqueOrderId('S');
      const body = strayAlipay(tag, 12_000);
      const http = request(t.app.getHttpServer());
      for (let i = 0; i < 3; i += 1) {
        const res = await http.post(ALIPAY_NOTIFY).type('form').send(body);
        expect(res.text).toBe('fail');
      }
      const hash = createHash('sha256').update(body).update('\n').digest('hex');
      const rows = await ds.query<{ verdict: string; body: string; receive_count: number; headers: unknown }[]>(
        `SELECT verdict, body, receive_count, headers FROM notify_inbox WHERE payload_sha256 = $1`,
        [hash],
      );
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ verdict: 'unknown_instance', body: '', receive_count: 3 });
      expect(JSON.stringify(rows[0]?.headers).length).toBeLessThan(1024);
    });
  });

  describe('with the 16 KiB limit raised, a 64 KiB body of <!-- is refused by the linear pre-scan', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await bootApp({ sandbox: false, env: { NOTIFY_BODY_LIMIT_BYTES: String(128 * 1024) } });
    });
    afterAll(async () => {
      await t.close();
    });

    it('answers the channel failure reply', async () => {
      const res = await request(t.app.getHttpServer())
        .post(WECHAT_NOTIFY)
        .set('Content-Type', 'text/xml')
        .send('<!--'.repeat(16 * 1024));
      expect(res.status).toBe(200);
      expect(res.text).toContain('FAIL');
    });
  });

  describe('refused notifies per source IP (NOTIFY_REFUSED_PER_MINUTE)', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await bootApp({ env: { NOTIFY_REFUSED_PER_MINUTE: '2' } });
    });
    afterAll(async () => {
      await t.close();
    });

    it('answers 429 with Retry-After past the limit, keeps no more rows, and still applies a valid notify', async () => {
      const ds = t.app.get(DataSource);
      const http = request(t.app.getHttpServer());
      await freshWindow(ds);
      // A real order paid by WeChat, to prove a genuine notify from the same address still goes through.
      const orderId = uniqueOrderId('R');
      await http.post('/api/v1/orders').set(auth()).send({ orderId, subject: 'limit', amount: '1.23' }).expect(201);
      await http
        .post(`/api/v1/orders/${orderId}/pay`)
        .set(auth())
        .send({ channel: 'pays.WechatPayType', payType: 'NATIVE' })
        .expect(200);

      const statuses: number[] = [];
      const tags: string[] = [];
      for (let i = 0; i < 5; i += 1) {
        const tag = uniqueOrderId('L');
        tags.push(tag);
        const res = await http.post(ALIPAY_NOTIFY).type('form').send(strayAlipay(tag));
        statuses.push(res.status);
        if (res.status === 429) {
          expect(res.body.code).toBe('RATE_LIMITED');
          expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
          expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(60);
        }
      }
      expect(statuses).toEqual([200, 200, 429, 429, 429]);
      const kept = await ds.query<{ n: number }[]>(
        `SELECT count(*)::int AS n FROM notify_inbox WHERE out_trade_no IS NULL AND payload_sha256 = ANY($1)`,
        [tags.map((tag) => createHash('sha256').update(strayAlipay(tag)).update('\n').digest('hex'))],
      );
      expect(kept[0]?.n).toBe(3); // the two under the limit and the one that crossed it; none after

      const creds = wechatCreds(t.sandbox!.instances);
      const xml = toXml(signed(paidNotifyFields(creds, { outTradeNo: orderId, totalFee: 123 }), creds.apiKey));
      const ok = await http.post(WECHAT_NOTIFY).set('Content-Type', 'text/xml').send(xml);
      expect(ok.status).toBe(200);
      expect(ok.text).toBe(WECHAT_SUCCESS_XML);
      const order = await http.get(`/api/v1/orders/${orderId}`).set(auth());
      expect(order.body.status).toBe('success');
    });
  });

  describe('service API per API key (RATE_LIMIT_PER_MINUTE)', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await bootApp({ sandbox: false, env: { RATE_LIMIT_PER_MINUTE: '3' } });
    });
    afterAll(async () => {
      await t.close();
    });

    it('answers 429 RATE_LIMITED with Retry-After past the limit, per key, facade included', async () => {
      const http = request(t.app.getHttpServer());
      await freshWindow(t.app.get(DataSource));
      const facade = `/api/${t.config.appName}/pays/services/PaySvc/query`;
      const statuses: number[] = [];
      for (let i = 0; i < 2; i += 1) statuses.push((await http.get('/api/v1/orders/NOPE000001').set(auth())).status);
      statuses.push((await http.post(facade).set(auth()).send({ orderId: 'NOPE000001' })).status);
      const over = await http.post(facade).set(auth()).send({ orderId: 'NOPE000001' });
      expect(statuses).toEqual([404, 404, 404]);
      expect(over.status).toBe(429);
      expect(over.body.code).toBe('RATE_LIMITED');
      expect(Number(over.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(Number(over.headers['retry-after'])).toBeLessThanOrEqual(60);
      const again = await http.get('/api/v1/orders/NOPE000001').set(auth());
      expect(again.status).toBe(429);
      // Another key has its own count; health stays open.
      expect((await http.get('/api/v1/orders/NOPE000001').set(auth('admin'))).status).toBe(404);
    });
  });

  // Two api instances on one database share the counts: PostgreSQL only (an embedded database has one process).
  (process.env['DATABASE_URL'] ? describe : describe.skip)('two instances on one PostgreSQL share the counts', () => {
    let a: TestApp;
    let b: TestApp;
    beforeAll(async () => {
      const env = { RATE_LIMIT_PER_MINUTE: '4', NOTIFY_REFUSED_PER_MINUTE: '3' };
      a = await bootApp({ sandbox: false, env });
      b = await bootApp({ sandbox: false, env });
    });
    afterAll(async () => {
      await a.close();
      await b.close();
    });

    it('counts API-key requests made on both', async () => {
      await freshWindow(a.app.get(DataSource));
      const get = (t: TestApp) => request(t.app.getHttpServer()).get('/api/v1/orders/NOPE000002').set(auth());
      const statuses = [
        (await get(a)).status,
        (await get(b)).status,
        (await get(a)).status,
        (await get(b)).status,
        (await get(a)).status,
      ];
      expect(statuses).toEqual([404, 404, 404, 404, 429]);
    });

    it('counts refused notifies from one address received by both', async () => {
      await freshWindow(a.app.get(DataSource));
      const send = async (t: TestApp) =>
        (
          await request(t.app.getHttpServer())
            .post(ALIPAY_NOTIFY)
            .type('form')
            .send(strayAlipay(uniqueOrderId('M')))
        ).status;
      const statuses = [await send(a), await send(b), await send(a), await send(b), await send(a)];
      // Three under the limit; the fourth (on b) crosses it; a learns on its next refusal.
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
    });
  });
  // A flood through two instances: positions are claimed in blocks, never more than the limit let through.
  (process.env['DATABASE_URL'] ? describe : describe.skip)('a flood on two instances (claims in blocks)', () => {
    const LIMIT = 200;
    let a: TestApp;
    let b: TestApp;
    beforeAll(async () => {
      const env = { RATE_LIMIT_PER_MINUTE: String(LIMIT) };
      a = await bootApp({ sandbox: false, env });
      b = await bootApp({ sandbox: false, env });
    });
    afterAll(async () => {
      await a.close();
      await b.close();
    });

    it('lets through at most the limit, nearly all of it, with far fewer statements than requests', async () => {
      await freshWindow(a.app.get(DataSource));
      const claimsBefore = a.app.get(RateLimiter).claims + b.app.get(RateLimiter).claims;
      const get = (t: TestApp) => request(t.app.getHttpServer()).get('/api/v1/orders/NOPE000003').set(auth());
      // 600 requests, 300 on each instance, 50 at a time per instance.
      const statuses: number[] = [];
      await Promise.all(
        [a, b].map(async (t) => {
          for (let round = 0; round < 6; round++) {
            const res = await Promise.all(Array.from({ length: 50 }, () => get(t)));
            statuses.push(...res.map((r) => r.status));
          }
        }),
      );
      const admitted = statuses.filter((s) => s === 404).length;
      expect(statuses.filter((s) => s !== 404 && s !== 429)).toEqual([]);
      expect(admitted).toBeLessThanOrEqual(LIMIT);
      // Positions a process took and did not use are lost: at most a block (LIMIT / 20) per instance.
      expect(admitted).toBeGreaterThanOrEqual(LIMIT - 2 * (LIMIT / 20));
      const claims = a.app.get(RateLimiter).claims + b.app.get(RateLimiter).claims - claimsBefore;
      // One statement per admitted request would be at least 200.
      expect(claims).toBeGreaterThan(0);
      expect(claims).toBeLessThan(LIMIT / 2);
      const [row] = await a.app
        .get(DataSource)
        .query<{ n: number }[]>(`SELECT sum(n)::int AS n FROM rate_limit_counters WHERE scope = 'api_key'`);
      // Every admitted request holds a position of its own.
      expect(Number(row?.n)).toBeGreaterThanOrEqual(admitted);
    });
  });
});
