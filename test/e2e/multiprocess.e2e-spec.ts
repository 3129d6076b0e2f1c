import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { DataSource } from 'typeorm';
import { type PaymentChannel, AlipayProvider } from '#channels';
import { prepareDataSource, runMigrations } from '#database';
import { type AlipaySimulator, createAlipaySandbox } from '#sandbox';
import { freePort, until } from '../utils/test-app.js';
import { type Spawned, listen, spawnApi, spawnWorker, writePaysDir } from '../utils/processes.js';

/**
 * Issue 5 with real processes: compiled workers on one PostgreSQL database and one Alipay simulator.
 * The embedded database belongs to one process, so this suite needs DATABASE_URL (CI sets it).
 */
const databaseUrl = process.env['DATABASE_URL'];
const describePg = databaseUrl ? describe : describe.skip;
if (!databaseUrl) console.warn('multiprocess suite skipped: it needs DATABASE_URL (PostgreSQL)');

describePg('several worker processes on one database', () => {
  let db: DataSource;
  let sim: AlipaySimulator;
  let server: Server;
  let channel: PaymentChannel;
  let paysDir: string;
  const workers: Spawned[] = [];

  beforeAll(async () => {
    const port = await freePort();
    const sandbox = createAlipaySandbox({ baseUrl: `http://127.0.0.1:${port}` });
    sim = sandbox.simulator;
    ({ server } = await listen(sim.listener, port));
    channel = new AlipayProvider().createInstance(sandbox.instance);
    paysDir = writePaysDir([sandbox.instance]);
    const prepared = await prepareDataSource({ databaseUrl, dataDir: '', poolSize: 4 });
    db = new DataSource(prepared.options);
    await db.initialize();
    await runMigrations(db, false);
  });

  afterAll(async () => {
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    sim.close();
    await new Promise((r) => server.close(r));
    await db.destroy();
  });

  const workerEnv = (extra: Record<string, string> = {}): Record<string, string> => ({
    DATABASE_URL: databaseUrl ?? '',
    PAYS_DIR: paysDir,
    SWEEP_INTERVAL_SECONDS: '1',
    SWEEP_BATCH_SIZE: '50',
    ...extra,
  });

  /** Inserts expired orders with one Alipay attempt each, as the api would have left them. */
  async function seedExpired(n: number, tag: string): Promise<string[]> {
    const ids = Array.from({ length: n }, (_, i) => `${tag}${Date.now().toString(36)}${i.toString().padStart(5, '0')}`);
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const pks = chunk.map(() => randomUUID());
      await db.query(
        `INSERT INTO orders (id, order_id, subject, amount_minor, currency, status, expire_time)
         SELECT pk, oid, 'multi-process', 100, 'CNY', 'wait', now() - interval '1 second'
           FROM unnest($1::uuid[], $2::varchar[]) AS t(pk, oid)`,
        [pks, chunk],
      );
      await db.query(
        `INSERT INTO payment_attempts (id, order_pk, order_id, channel, channel_type, pay_type, out_trade_no, amount_minor, currency, status)
         SELECT gen_random_uuid(), pk, oid, 'pays.aliPayment', 'pays.AliPayType', 'PRE_PAY', oid, 100, 'CNY', 'open'
           FROM unnest($1::uuid[], $2::varchar[]) AS t(pk, oid)`,
        [pks, chunk],
      );
    }
    return ids;
  }

  /** Makes the trades exist at the simulator (precreated and scanned), as a payer's scan would. */
  async function openAtChannel(ids: string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += 25) {
      await Promise.all(
        ids.slice(i, i + 25).map((id) =>
          channel.createPayment({
            orderId: id,
            attemptId: id,
            outTradeNo: id,
            subject: 'multi-process',
            amount: { minor: 100, currency: 'CNY' },
            payType: 'PRE_PAY',
            expireTime: new Date(Date.now() + 3_600_000),
            notifyUrl: 'http://127.0.0.1:9/unused',
          }),
        ),
      );
    }
    for (const id of ids) sim.scan(id);
  }

  async function statuses(ids: string[]): Promise<Map<string, string>> {
    const rows = await db.query<{ order_id: string; status: string }[]>(
      `SELECT order_id, status FROM orders WHERE order_id = ANY($1)`,
      [ids],
    );
    return new Map(rows.map((r) => [r.order_id, r.status]));
  }

  async function waiting(ids: string[]): Promise<number> {
    const rows = await db.query<{ n: number }[]>(
      `SELECT count(*)::int AS n FROM orders WHERE order_id = ANY($1) AND status = 'wait'`,
      [ids],
    );
    return rows[0]?.n ?? -1;
  }

  it('two workers and an api process sweep 2,000 expired orders: one final state each, no trade closed twice, no crash', async () => {
    const ids = await seedExpired(2000, 'MP');
    const atChannel = ids.filter((_, i) => i % 10 === 0); // 200 trades exist at Alipay
    await openAtChannel(atChannel);
    sim.setDropNotifies(true); // paid at Alipay, notify lost: the sweep must find these
    const paid = atChannel.filter((_, i) => i % 4 === 0);
    for (const id of paid) await sim.pay(id);
    sim.setDropNotifies(false);

    const apiPort = await freePort();
    workers.push(spawnWorker(workerEnv()), spawnWorker(workerEnv()));
    workers.push(
      spawnApi(
        workerEnv({
          PORT: String(apiPort),
          PUBLIC_BASE_URL: `http://127.0.0.1:${apiPort}`,
          API_KEYS: 'service:multi-process-service-key',
          PAY_SANDBOX: 'false',
        }),
      ),
    );
    await until(async () => ((await waiting(ids)) === 0 ? true : undefined), 120_000, 250);
    // The api process served HTTP all along (its sweeps ran beside its requests).
    const health = await fetch(`http://127.0.0.1:${apiPort}/health`);
    expect(health.status).toBe(200);
    const sweepers = workers.filter((w) => /sweep: \d+ expired/.test(w.output()));
    expect(sweepers.length).toBeGreaterThanOrEqual(2); // the work was shared, not done by one process
    for (const w of workers)
      expect({ exitCode: w.child.exitCode, signal: w.child.signalCode }).toEqual({ exitCode: null, signal: null });

    const st = await statuses(ids);
    expect(st.size).toBe(2000);
    const paidSet = new Set(paid);
    for (const id of ids) expect([id, st.get(id)]).toEqual([id, paidSet.has(id) ? 'success' : 'timeout']);
    const closes = new Map<string, number>();
    const idSet = new Set(ids);
    for (const c of sim.callLog) {
      // Only this test's orders: earlier suites on the same database may leave expired orders that
      // these workers rightly sweep too.
      if (c.method === 'alipay.trade.close' && c.outTradeNo && idSet.has(c.outTradeNo))
        closes.set(c.outTradeNo, (closes.get(c.outTradeNo) ?? 0) + 1);
    }
    expect([...closes.values()].filter((n) => n > 1)).toEqual([]);
    expect(closes.size).toBe(2000 - paid.length); // every unpaid attempt closed once; paid ones never
    const attempts = await db.query<{ status: string; n: number }[]>(
      `SELECT status, count(*)::int AS n FROM payment_attempts WHERE order_id = ANY($1) GROUP BY status ORDER BY status`,
      [ids],
    );
    expect(attempts).toEqual([
      { status: 'closed', n: 2000 - paid.length },
      { status: 'paid', n: paid.length },
    ]);
    // Each worker did part of the work.
    const exits = await Promise.all(
      workers.splice(0).map(async (w) => {
        w.child.kill('SIGTERM');
        return { ...(await w.exited), out: w.output() };
      }),
    );
    for (const e of exits) {
      expect(e.out).not.toMatch(/failed to start|Unhandled|TypeError|ReferenceError/);
      expect(e.code === 0 || e.signal === 'SIGTERM').toBe(true);
    }
  });

  it('a worker killed with SIGKILL mid-sweep and restarted leaves no order half-closed', async () => {
    const ids = await seedExpired(300, 'KL');
    await openAtChannel(ids);
    sim.setLatencyMs(40);
    try {
      const env = workerEnv({ SWEEP_LEASE_SECONDS: '2', SWEEP_BATCH_SIZE: '20' });
      const first = spawnWorker(env);
      workers.push(first);
      await until(async () => ((await waiting(ids)) < 270 ? true : undefined), 60_000, 50);
      first.child.kill('SIGKILL');
      await first.exited;
      const left = await waiting(ids);
      expect(left).toBeGreaterThan(0); // killed mid-way, not after the end

      // Nothing is half-closed: no order is final while one of its attempts is open.
      const half = await db.query<{ n: number }[]>(
        `SELECT count(*)::int AS n FROM orders o JOIN payment_attempts a ON a.order_pk = o.id
          WHERE o.order_id = ANY($1) AND o.status <> 'wait' AND a.status = 'open'`,
        [ids],
      );
      expect(half[0]?.n).toBe(0);

      const second = spawnWorker(env);
      workers.push(second);
      await until(async () => ((await waiting(ids)) === 0 ? true : undefined), 120_000, 250);
      const st = await statuses(ids);
      for (const id of ids) {
        expect([id, st.get(id)]).toEqual([id, 'timeout']);
        expect([id, sim.trade(id)?.status]).toEqual([id, 'TRADE_CLOSED']);
      }
      const open = await db.query<{ n: number }[]>(
        `SELECT count(*)::int AS n FROM payment_attempts WHERE order_id = ANY($1) AND status <> 'closed'`,
        [ids],
      );
      expect(open[0]?.n).toBe(0);
    } finally {
      sim.setLatencyMs(0);
    }
  });
});
