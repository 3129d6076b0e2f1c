import type { CallHandler, ExecutionContext } from '@nestjs/common';
import { type Observable, from, lastValueFrom } from 'rxjs';
import { DataSource } from 'typeorm';
import { PayError } from '#common';
import { IdempotencyInterceptor } from '../../apps/api/src/http/idempotency.interceptor.js';
import { bootApp, type TestApp, uniqueOrderId } from '../utils/test-app.js';

/**
 * Issue 9 item 6, on the real interceptor and database: only final answers are kept, and a request
 * whose stale claim was taken over cannot write or delete the new owner's row (claim tokens).
 * The downstream handler is a promise the test settles, so "a slow first request" is exact, not timed.
 */
describe('Idempotency-Key claims (issue 9 item 6)', () => {
  let t: TestApp;
  let sut: IdempotencyInterceptor;
  let db: DataSource;
  const principal = { role: 'service', label: `service:${uniqueOrderId('p').slice(0, 12)}` };

  beforeAll(async () => {
    t = await bootApp({ sandbox: false });
    sut = t.app.get(IdempotencyInterceptor);
    db = t.app.get(DataSource);
  });
  afterAll(async () => {
    await t.close();
  });

  interface Call {
    /** What the client gets: the body, or the error thrown. */
    readonly answer: Promise<{ status: number; body: unknown; replayed: boolean }>;
  }

  /** A controllable downstream: settle() decides what "the controller" answers. */
  function deferred(): {
    handler: CallHandler;
    calls: () => number;
    settle: (v: unknown) => void;
    fail: (e: unknown) => void;
  } {
    let calls = 0;
    let settle!: (v: unknown) => void;
    let fail!: (e: unknown) => void;
    const p = new Promise<unknown>((resolve, reject) => {
      settle = resolve;
      fail = reject;
    });
    return {
      handler: {
        handle: (): Observable<unknown> => {
          calls += 1;
          return from(p);
        },
      },
      calls: () => calls,
      settle,
      fail,
    };
  }

  function call(key: string, body: unknown, handler: CallHandler, status = 201): Call {
    const headers: Record<string, string> = {};
    // Fastify's request and reply, as far as the interceptor uses them.
    const res = {
      statusCode: status,
      header(k: string, v: string) {
        headers[k.toLowerCase()] = v;
        return this;
      },
      code(n: number) {
        this.statusCode = n;
        return this;
      },
    };
    const req = {
      method: 'POST',
      url: '/api/v1/orders',
      body,
      principal,
      headers: { 'idempotency-key': key },
    };
    const ctx = {
      switchToHttp: () => ({ getRequest: () => req, getResponse: () => res }),
    } as unknown as ExecutionContext;
    const answer = lastValueFrom(sut.intercept(ctx, handler), { defaultValue: undefined }).then(
      (b) => ({ status: res.statusCode, body: b, replayed: headers['idempotent-replayed'] === 'true' }),
      (err: unknown) => {
        if (err instanceof PayError)
          return { status: err.status, body: { code: err.code }, replayed: headers['idempotent-replayed'] === 'true' };
        throw err;
      },
    );
    return { answer };
  }

  /** Downstreams that answer at once. */
  const now = (v: unknown): CallHandler => ({ handle: () => from(Promise.resolve(v)) });
  const failing = (e: Error): CallHandler => ({ handle: () => from(Promise.reject(e)) });

  async function row(key: string): Promise<{ state: string; response_body: unknown } | undefined> {
    const rows = await db.query<{ state: string; response_body: unknown }[]>(
      `SELECT state, response_body FROM idempotency_keys WHERE principal = $1 AND idem_key = $2`,
      [principal.label, key],
    );
    return rows[0];
  }

  /** Makes the key's claim look older than the two-minute takeover limit. */
  const age = (key: string) =>
    db.query(
      `UPDATE idempotency_keys SET created_at = now() - interval '3 minutes' WHERE principal = $1 AND idem_key = $2`,
      [principal.label, key],
    );

  it.each([
    ['502 CHANNEL_ERROR', new PayError('CHANNEL_ERROR', 'channel down')],
    ['504 CHANNEL_TIMEOUT', new PayError('CHANNEL_TIMEOUT', 'slow')],
    ['500 INTERNAL_ERROR', new PayError('INTERNAL_ERROR', 'boom')],
    ['429 RATE_LIMITED', new PayError('RATE_LIMITED', 'slow down', undefined, { retryAfterSeconds: 5 })],
    [
      '409 "being created"',
      new PayError('ORDER_STATUS_ERROR', 'a payment is being created; retry', undefined, { retryable: true }),
    ],
    ['an unexpected error', new Error('socket hang up')],
  ])('does not keep a retryable answer (%s): the retry runs again', async (_name, error) => {
    const key = `idem-${uniqueOrderId()}`;
    const first = await call(key, { a: 1 }, failing(error)).answer.catch((e: unknown) => ({ thrown: e }));
    expect(first).not.toHaveProperty('replayed', true);
    expect(await row(key)).toBeUndefined();
    const retry = deferred();
    const second = call(key, { a: 1 }, retry.handler);
    retry.settle({ orderId: 'second' });
    expect(await second.answer).toEqual({ status: 201, body: { orderId: 'second' }, replayed: false });
    expect(retry.calls()).toBe(1);
    const third = await call(key, { a: 1 }, now({ orderId: 'third' })).answer;
    expect(third).toEqual({ status: 201, body: { orderId: 'second' }, replayed: true });
  });

  it('keeps and replays a final 4xx (ORDER_STATUS_ERROR without the retry hint)', async () => {
    const key = `idem-${uniqueOrderId()}`;
    const first = await call(key, { a: 2 }, failing(new PayError('ORDER_STATUS_ERROR', 'order is close'))).answer;
    expect(first).toEqual({ status: 409, body: { code: 'ORDER_STATUS_ERROR' }, replayed: false });
    const again = deferred();
    const second = await call(key, { a: 2 }, again.handler).answer;
    expect(second).toEqual({ status: 409, body: { code: 'ORDER_STATUS_ERROR' }, replayed: true });
    expect(again.calls()).toBe(0);
  });

  it('a late first owner cannot overwrite the answer of the request that took its stale claim over', async () => {
    const key = `idem-${uniqueOrderId()}`;
    const slow = deferred();
    const first = call(key, { a: 3 }, slow.handler);
    // Wait until the first request holds the claim, then make the claim stale.
    for (let i = 0; i < 200 && slow.calls() === 0; i += 1) await new Promise((r) => setTimeout(r, 10));
    expect(slow.calls()).toBe(1);
    await age(key);
    const second = await call(key, { a: 3 }, now({ orderId: 'taker' })).answer;
    expect(second).toEqual({ status: 201, body: { orderId: 'taker' }, replayed: false });
    slow.settle({ orderId: 'late' });
    expect((await first.answer).body).toEqual({ orderId: 'late' }); // its own client still gets its answer
    expect(await row(key)).toEqual({ state: 'done', response_body: { orderId: 'taker' } });
    const replay = await call(key, { a: 3 }, now({ orderId: 'x' })).answer;
    expect(replay).toEqual({ status: 201, body: { orderId: 'taker' }, replayed: true });
  });

  it('a late first owner failing with a 5xx cannot delete the claim of the request that took over', async () => {
    const key = `idem-${uniqueOrderId()}`;
    const slow = deferred();
    const first = call(key, { a: 4 }, slow.handler);
    for (let i = 0; i < 200 && slow.calls() === 0; i += 1) await new Promise((r) => setTimeout(r, 10));
    await age(key);
    const taker = deferred();
    const second = call(key, { a: 4 }, taker.handler);
    for (let i = 0; i < 200 && taker.calls() === 0; i += 1) await new Promise((r) => setTimeout(r, 10));
    expect(taker.calls()).toBe(1);
    slow.fail(new PayError('CHANNEL_ERROR', 'late failure'));
    expect((await first.answer).status).toBe(502);
    expect((await row(key))?.state).toBe('running'); // still the taker's claim
    const meanwhile = await call(key, { a: 4 }, now({ orderId: 'third' })).answer;
    expect(meanwhile).toEqual({ status: 409, body: { code: 'IDEMPOTENCY_KEY_IN_USE' }, replayed: false });
    taker.settle({ orderId: 'taker' });
    expect((await second.answer).body).toEqual({ orderId: 'taker' });
    expect(await row(key)).toEqual({ state: 'done', response_body: { orderId: 'taker' } });
  });

  it('lets exactly one of many concurrent requests take over a stale claim', async () => {
    const key = `idem-${uniqueOrderId()}`;
    const dead = deferred(); // never settles: a process that died mid-request
    const ghost = call(key, { a: 5 }, dead.handler).answer;
    for (let i = 0; i < 200 && dead.calls() === 0; i += 1) await new Promise((r) => setTimeout(r, 10));
    await age(key);
    const runs: ReturnType<typeof deferred>[] = Array.from({ length: 8 }, () => deferred());
    const answers = runs.map((r) => call(key, { a: 5 }, r.handler));
    for (let i = 0; i < 300 && runs.reduce((n, r) => n + r.calls(), 0) === 0; i += 1) {
      await new Promise((r) => setTimeout(r, 10));
    }
    for (const r of runs) r.settle({ orderId: 'winner' });
    const settled = await Promise.all(answers.map((a) => a.answer));
    expect(runs.reduce((n, r) => n + r.calls(), 0)).toBe(1);
    expect(settled.filter((s) => s.status === 201 && !s.replayed)).toHaveLength(1);
    for (const s of settled) expect([201, 409]).toContain(s.status);
    dead.settle({ orderId: 'ghost' });
    await ghost; // finishing late, it leaves the winner's row alone
    expect(await row(key)).toEqual({ state: 'done', response_body: { orderId: 'winner' } });
  });
});
