import request from 'supertest';
import { DataSource } from 'typeorm';
import { auth, bootApp, type TestApp, uniqueOrderId } from '../utils/test-app.js';

/**
 * Issue 9 item 5 (API.md §3): an amount is judged by the text the client sent, not by the float
 * JSON.parse would make of it. Bodies are sent as raw JSON text so the literals reach the server as written.
 */
describe('exact amounts from the JSON text (issue 9 item 5)', () => {
  let t: TestApp;
  let http: ReturnType<typeof request>;

  beforeAll(async () => {
    t = await bootApp({ sandbox: false });
    http = request(t.app.getHttpServer());
  });
  afterAll(async () => {
    await t.close();
  });

  const facade = () => `/api/${t.config.appName}/pays/services/PaySvc/create`;
  const post = (path: string, json: string) =>
    http.post(path).set(auth()).set('Content-Type', 'application/json').send(json);

  async function exists(orderId: string): Promise<boolean> {
    const rows = await t.app
      .get(DataSource)
      .query<{ n: number }[]>('SELECT count(*)::int AS n FROM orders WHERE order_id = $1', [orderId]);
    return (rows[0]?.n ?? 0) > 0;
  }

  const REFUSED: [string, string][] = [
    ['1e2', 'CNY'],
    ['1E2', 'CNY'],
    ['1e+2', 'CNY'],
    ['99.999999999999999', 'CNY'],
    ['-0', 'CNY'],
    ['100.001', 'CNY'],
    ['1.10', 'JPY'],
    ['5.0', 'JPY'],
    ['0.0001', 'KWD'],
  ];

  it.each(REFUSED)(
    'refuses %p (%s) with 400 INVALID_AMOUNT on the service API and creates nothing',
    async (literal, currency) => {
      const orderId = uniqueOrderId('A');
      const res = await post(
        '/api/v1/orders',
        `{"orderId":"${orderId}","subject":"x","currency":"${currency}","amount":${literal}}`,
      );
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('INVALID_AMOUNT');
      expect(await exists(orderId)).toBe(false);
    },
  );

  it.each(REFUSED)(
    'refuses %p (%s) with 400 INVALID_AMOUNT on the seed facade and creates nothing',
    async (literal, currency) => {
      const orderId = uniqueOrderId('F');
      const res = await post(
        facade(),
        `{"orderId":"${orderId}","subject":"x","currency":"${currency}","amount":${literal}}`,
      );
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('INVALID_AMOUNT');
      expect(await exists(orderId)).toBe(false);
    },
  );

  it('refuses the literal even when its name is escaped', async () => {
    const res = await post('/api/v1/orders', '{"subject":"x","\\u0061mount":99.999999999999999}');
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('INVALID_AMOUNT');
  });

  it.each([
    ['99.99', 'CNY', '99.99'],
    ['100', 'CNY', '100.00'],
    ['0.1', 'CNY', '0.10'],
    ['100000000.00', 'CNY', '100000000.00'],
    ['5', 'JPY', '5'],
    ['1.234', 'KWD', '1.234'],
  ])('accepts the number %p (%s) exactly as %p', async (literal, currency, shown) => {
    for (const path of ['/api/v1/orders', facade()]) {
      const res = await post(path, `{"subject":"x","currency":"${currency}","amount":${literal}}`);
      expect([200, 201]).toContain(res.status);
      expect(res.body.amount).toBe(shown);
    }
  });

  it('leaves numbers elsewhere alone: metadata keeps its numbers, timeoutMinutes stays an integer', async () => {
    const res = await post(
      '/api/v1/orders',
      '{"subject":"x","amount":"1.00","timeoutMinutes":5,"metadata":{"amount":1.5,"n":1e2}}',
    );
    expect(res.status).toBe(201);
    expect(res.body.metadata).toEqual({ amount: 1.5, n: 100 });
  });

  it('still answers 400 INVALID_PARAMS for invalid JSON, non-object JSON and 415-style charsets', async () => {
    const bad = await post('/api/v1/orders', '{"subject":"x","amount":1e}');
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('INVALID_PARAMS');
    const scalar = await post('/api/v1/orders', '"amount"');
    expect(scalar.status).toBe(400);
    expect(scalar.body.code).toBe('INVALID_PARAMS');
    const latin1 = await http
      .post('/api/v1/orders')
      .set(auth())
      .set('Content-Type', 'application/json; charset=latin1')
      .send('{"subject":"x","amount":"1.00"}');
    expect(latin1.status).toBe(400);
    expect(latin1.body.code).toBe('INVALID_PARAMS');
  });
});
