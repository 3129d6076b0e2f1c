import { gzipSync } from 'node:zlib';
import request from 'supertest';
import { type TestApp, auth, bootApp, uniqueOrderId } from '../utils/test-app.js';

/**
 * What the switch from Express to Fastify (issue 14) must keep or states as changed: compressed
 * bodies are refused (Express inflated them), a trailing slash still routes, odd content types reach
 * validation (not Fastify's 415), and the request id is on every answer, the sandbox's included.
 */
describe('HTTP adapter (Fastify) behaviour', () => {
  let t: TestApp;
  let http: ReturnType<typeof request>;

  beforeAll(async () => {
    t = await bootApp();
    http = request(t.app.getHttpServer());
  });
  afterAll(async () => {
    await t.close();
  });

  it('refuses a gzip-encoded body with 400 INVALID_PARAMS and creates nothing', async () => {
    const orderId = uniqueOrderId('GZ');
    const res = await http
      .post('/api/v1/orders')
      .set(auth())
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', 'gzip')
      .send(gzipSync(JSON.stringify({ orderId, subject: 'x', amount: '1.00' })));
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('INVALID_PARAMS');
    await http.get(`/api/v1/orders/${orderId}`).set(auth()).expect(404);
  });

  it('routes a path with a trailing slash as without one', async () => {
    expect((await http.get('/health/live/').expect(200)).body).toEqual({ status: 'ok' });
  });

  it('hands a body of an unknown content type to validation (400 INVALID_PARAMS), not a 415', async () => {
    const res = await http.post('/api/v1/orders').set(auth()).set('Content-Type', 'text/plain').send('amount=1');
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('INVALID_PARAMS');
  });

  it('echoes X-Request-Id on API errors, 404s and the sandbox simulators', async () => {
    const api = await http.get('/api/v1/orders/nope').set(auth()).set('X-Request-Id', 'req-1.a');
    expect(api.headers['x-request-id']).toBe('req-1.a');
    expect(api.body.requestId).toBe('req-1.a');
    const missing = await http.get('/no/such/route').set('X-Request-Id', 'req-2');
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ code: 'NOT_FOUND', requestId: 'req-2' });
    const sandbox = await http.get('/sandbox/webhooks').set('X-Request-Id', 'req-3');
    expect(sandbox.headers['x-request-id']).toBe('req-3');
  });
});
