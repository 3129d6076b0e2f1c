import { DataSource } from 'typeorm';
import { auth, bootApp, type TestApp, uniqueOrderId, until } from '../utils/test-app.js';

/**
 * The embedded database's single connection under load (issue 9 item 9): requests queue for it up to
 * EMBEDDED_QUEUE_MAX, wait at most EMBEDDED_QUEUE_WAIT_MS, and beyond either answer 503
 * SERVICE_UNAVAILABLE with Retry-After, never 500. PostgreSQL has a real pool: not applicable there.
 */
const describeEmbedded = process.env['DATABASE_URL'] ? describe.skip : describe;

async function getMany(baseUrl: string, orderId: string, n: number): Promise<Response[]> {
  return Promise.all(
    Array.from({ length: n }, () => fetch(`${baseUrl}/api/v1/orders/${orderId}`, { headers: auth() })),
  );
}

async function createOrder(baseUrl: string): Promise<string> {
  const orderId = uniqueOrderId('Q');
  const res = await fetch(`${baseUrl}/api/v1/orders`, {
    method: 'POST',
    headers: { ...auth(), 'Content-Type': 'application/json' },
    body: JSON.stringify({ orderId, subject: 'queue', amount: '1.00' }),
  });
  expect(res.status).toBe(201);
  return orderId;
}

describeEmbedded('embedded database queue', () => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('200 concurrent GETs all answer 200 or 503, never 500 (default settings)', async () => {
    t = await bootApp({ sandbox: false });
    const orderId = await createOrder(t.baseUrl);
    const answers = await getMany(t.baseUrl, orderId, 200);
    const statuses = answers.map((r) => r.status);
    expect(statuses.filter((s) => s !== 200 && s !== 503)).toEqual([]);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0);
    for (const r of answers.filter((a) => a.status === 503)) expect(r.headers.get('retry-after')).toMatch(/^\d+$/);
  });

  it('beyond EMBEDDED_QUEUE_MAX waiting requests, the rest answer 503 at once', async () => {
    t = await bootApp({ sandbox: false, env: { EMBEDDED_QUEUE_MAX: '5' } });
    const base = t.baseUrl;
    const orderId = await createOrder(base);
    // Hold the single connection so that the queue fills deterministically.
    const runner = t.app.get(DataSource).createQueryRunner();
    await runner.connect();
    await runner.startTransaction();
    let answered = 0;
    const pending = Promise.all(
      Array.from({ length: 40 }, () =>
        fetch(`${base}/api/v1/orders/${orderId}`, { headers: auth() }).finally(() => (answered += 1)),
      ),
    );
    // Beyond the 5 queued, the others answer while the connection is still held.
    await until(() => Promise.resolve(answered >= 35 ? true : undefined), 20_000);
    await runner.commitTransaction();
    await runner.release();
    const answers = await pending;
    const refused = answers.filter((a) => a.status === 503);
    expect(answers.filter((a) => a.status !== 200 && a.status !== 503).map((a) => a.status)).toEqual([]);
    expect(refused.length).toBe(35);
    expect(answers.filter((a) => a.status === 200).length).toBe(5);
    const body = (await refused[0]?.json()) as { code: string };
    expect(body.code).toBe('SERVICE_UNAVAILABLE');
    expect(refused[0]?.headers.get('retry-after')).toMatch(/^\d+$/);
  });

  it('a request that waits longer than EMBEDDED_QUEUE_WAIT_MS answers 503, and service resumes', async () => {
    t = await bootApp({ sandbox: false, env: { EMBEDDED_QUEUE_WAIT_MS: '200' } });
    const orderId = await createOrder(t.baseUrl);
    const runner = t.app.get(DataSource).createQueryRunner();
    await runner.connect();
    await runner.startTransaction();
    try {
      const answers = await getMany(t.baseUrl, orderId, 3);
      expect(answers.map((a) => a.status)).toEqual([503, 503, 503]);
      expect(((await answers[0]?.json()) as { code: string }).code).toBe('SERVICE_UNAVAILABLE');
    } finally {
      await runner.commitTransaction();
      await runner.release();
    }
    expect((await getMany(t.baseUrl, orderId, 1)).map((a) => a.status)).toEqual([200]);
  });
});
