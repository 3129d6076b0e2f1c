import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { type DynamicModule, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DataSource } from 'typeorm';
import pg from 'pg';
import { type ChannelInstanceConfig, channelProviders } from '#channels';
import { ConfigModule, loadAppConfig } from '#config';
import { DatabaseModule, prepareDataSource, runMigrations } from '#database';
import { PaymentsModule, TimeoutCloserJob } from '#payments';
import type { SimulatorSummary } from './alipay-simulator.thread.js';

/**
 * Sweep benchmark (docs/benchmarks.md): how long TimeoutCloserJob takes to close ORDERS expired `wait`
 * orders, each with one open Alipay attempt, against a loopback Alipay simulator answering after
 * 0 ms and after 100 ms; and what a sweep costs when nothing is expired.
 *
 *   npm run build && DATABASE_URL=postgres://postgres@127.0.0.1:5432/pb_bench node dist/bench/sweep.bench.js
 *
 * Options (argv `--name=value` or env): ORDERS (100000), RUNS (3), SLOW_RUNS (runs for a latency > 0;
 * default RUNS), LATENCIES_MS ("0,100"), CONCURRENCY (64; the zero-latency case is also run at the
 * default SWEEP_CONCURRENCY of 8 unless WITH_DEFAULT_CONCURRENCY=false), BATCH_SIZE (500).
 *
 * Each invocation creates a database of its own next to DATABASE_URL's (`<name>_sweep_<pid>`), migrates
 * it, truncates it before every run, and drops it at the end. Every run is checked before it counts:
 * each order ended `timeout`, each attempt `closed`, and the simulator saw one query and exactly one
 * close per attempt. Times are wall-clock medians; nothing here asserts a speed.
 */

interface Options {
  readonly orders: number;
  readonly runs: number;
  readonly slowRuns: number;
  readonly latencies: number[];
  readonly concurrency: number;
  /** Also run the zero-latency case at the default SWEEP_CONCURRENCY (8). */
  readonly withDefaultConcurrency: boolean;
  readonly batchSize: number;
}

const DEFAULT_SWEEP_CONCURRENCY = 8;
const ROUND_TRIPS_PER_ORDER = 2; // alipay.trade.query, then alipay.trade.close

function option(argv: readonly string[], env: NodeJS.ProcessEnv, name: string): string | undefined {
  const flag = `--${name.toLowerCase().replace(/_/g, '-')}=`;
  const fromArgv = argv.find((a) => a.startsWith(flag))?.slice(flag.length);
  return fromArgv ?? env[name];
}

function positiveInt(raw: string | undefined, name: string, dflt: number): number {
  if (raw === undefined || raw.trim() === '') return dflt;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < 1) throw new Error(`${name} must be a positive integer, got ${raw}`);
  return Number(raw);
}

function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv): Options {
  const runs = positiveInt(option(argv, env, 'RUNS'), 'RUNS', 3);
  const latencyText = option(argv, env, 'LATENCIES_MS') ?? '0,100';
  const latencies = latencyText.split(',').map((s) => {
    if (!/^\d+$/.test(s.trim())) throw new Error(`LATENCIES_MS must be comma-separated integers, got ${latencyText}`);
    return Number(s);
  });
  return {
    orders: positiveInt(option(argv, env, 'ORDERS'), 'ORDERS', 100_000),
    runs,
    slowRuns: positiveInt(option(argv, env, 'SLOW_RUNS'), 'SLOW_RUNS', runs),
    latencies,
    concurrency: positiveInt(option(argv, env, 'CONCURRENCY'), 'CONCURRENCY', 64),
    withDefaultConcurrency: (option(argv, env, 'WITH_DEFAULT_CONCURRENCY') ?? 'true') !== 'false',
    batchSize: positiveInt(option(argv, env, 'BATCH_SIZE'), 'BATCH_SIZE', 500),
  };
}

// ------------------------------------------------------------------ database

/** The inner SELECT of TimeoutCloserJob.claim (libs/payments/src/jobs/timeout-closer.job.ts), verbatim. */
const CLAIM_SELECT = `SELECT id FROM orders
           WHERE status = 'wait' AND expire_time <= $2 AND (sweep_after IS NULL OR sweep_after <= $2)
           ORDER BY expire_time
           LIMIT $1
           FOR UPDATE SKIP LOCKED`;

async function withAdmin<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function openDataSource(url: string): Promise<DataSource> {
  const prepared = await prepareDataSource({ databaseUrl: url, dataDir: '', poolSize: 2 });
  const ds = new DataSource(prepared.options);
  await ds.initialize();
  return ds;
}

async function reset(ds: DataSource): Promise<void> {
  await ds.query(`TRUNCATE orders, payment_attempts, notify_inbox, idempotency_keys, outbox_events`);
}

/** n expired `wait` orders (distinct expiry times, oldest first), each with one open Alipay attempt. */
async function seedExpired(ds: DataSource, n: number): Promise<void> {
  await ds.query(
    `INSERT INTO orders (id, order_id, subject, amount_minor, currency, status, expire_time)
     SELECT gen_random_uuid(), 'SWB' || lpad(g::text, 9, '0'), 'sweep bench', 100, 'CNY', 'wait',
            now() - interval '1 minute' - (($1 - g) * interval '1 millisecond')
       FROM generate_series(1, $1::int) AS g`,
    [n],
  );
  await seedAttempts(ds, 'wait');
  await ds.query(`VACUUM (ANALYZE) orders`);
  await ds.query(`VACUUM (ANALYZE) payment_attempts`);
}

/** Nothing to sweep: n `wait` orders expiring in an hour and n `success` orders whose expiry is past. */
async function seedNothingExpired(ds: DataSource, n: number): Promise<void> {
  await ds.query(
    `INSERT INTO orders (id, order_id, subject, amount_minor, currency, status, expire_time)
     SELECT gen_random_uuid(), 'SWW' || lpad(g::text, 9, '0'), 'sweep bench', 100, 'CNY', 'wait',
            now() + interval '1 hour' + g * interval '1 millisecond'
       FROM generate_series(1, $1::int) AS g`,
    [n],
  );
  await ds.query(
    `INSERT INTO orders (id, order_id, subject, amount_minor, currency, status, expire_time, pay_time)
     SELECT gen_random_uuid(), 'SWS' || lpad(g::text, 9, '0'), 'sweep bench', 100, 'CNY', 'success',
            now() - interval '1 minute' - g * interval '1 millisecond', now() - interval '2 minutes'
       FROM generate_series(1, $1::int) AS g`,
    [n],
  );
  await seedAttempts(ds, 'wait');
  await ds.query(`VACUUM (ANALYZE) orders`);
  await ds.query(`VACUUM (ANALYZE) payment_attempts`);
}

async function seedAttempts(ds: DataSource, orderStatus: 'wait'): Promise<void> {
  await ds.query(
    `INSERT INTO payment_attempts (id, order_pk, order_id, channel, channel_type, pay_type, out_trade_no,
                                   amount_minor, currency, status)
     SELECT gen_random_uuid(), o.id, o.order_id, 'pays.aliPayment', 'pays.AliPayType', 'PRE_PAY', o.order_id,
            o.amount_minor, o.currency, 'open'
       FROM orders o
      WHERE o.status = $1`,
    [orderStatus],
  );
}

/** EXPLAIN (ANALYZE, BUFFERS) of the claim's SELECT, in a transaction rolled back (it takes row locks). */
async function explainClaim(ds: DataSource, batchSize: number): Promise<string> {
  const qr = ds.createQueryRunner();
  try {
    await qr.startTransaction();
    const rows = (await qr.query(`EXPLAIN (ANALYZE, BUFFERS) ${CLAIM_SELECT}`, [batchSize, new Date()])) as {
      'QUERY PLAN': string;
    }[];
    return rows.map((r) => r['QUERY PLAN']).join('\n');
  } finally {
    if (qr.isTransactionActive) await qr.rollbackTransaction();
    await qr.release();
  }
}

async function countBy(ds: DataSource, table: 'orders' | 'payment_attempts'): Promise<Record<string, number>> {
  const rows = await ds.query<{ status: string; n: number }[]>(
    `SELECT status, count(*)::int AS n FROM ${table} GROUP BY status`,
  );
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

async function expiredWaiting(ds: DataSource): Promise<number> {
  const rows = await ds.query<{ n: number }[]>(
    `SELECT count(*)::int AS n FROM orders WHERE status = 'wait' AND expire_time <= now()`,
  );
  return rows[0]?.n ?? -1;
}

/**
 * CPU time (user + system, ms) of this database's PostgreSQL backends that started at or after `since`:
 * the app's pool during a run. Read from /proc, so only when the server runs on this machine.
 */
async function backendCpuMs(ds: DataSource, since: Date): Promise<number | undefined> {
  const rows = await ds.query<{ pid: number }[]>(
    `SELECT pid FROM pg_stat_activity
      WHERE datname = current_database() AND backend_start >= $1 AND pid <> pg_backend_pid()`,
    [since],
  );
  let ticks = 0;
  try {
    for (const { pid } of rows) {
      // Fields after the command name: state is the 1st, utime the 12th, stime the 13th (proc(5)).
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      ticks += Number(fields[11]) + Number(fields[12]);
    }
  } catch {
    return undefined;
  }
  return Number.isFinite(ticks) ? ticks * (1000 / CLOCK_TICKS_PER_S) : undefined;
}

const CLOCK_TICKS_PER_S = 100; // getconf CLK_TCK on Linux

// ------------------------------------------------------------------ simulator + app

interface Simulator {
  readonly instance: ChannelInstanceConfig;
  summary(): Promise<SimulatorSummary>;
  stop(): Promise<void>;
}

async function startSimulator(latencyMs: number): Promise<Simulator> {
  const worker = new Worker(new URL('./alipay-simulator.thread.js', import.meta.url), { workerData: { latencyMs } });
  const instance = await new Promise<ChannelInstanceConfig>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (m: { kind: 'ready'; instance: ChannelInstanceConfig }) => resolve(m.instance));
  });
  return {
    instance,
    summary: () =>
      new Promise((resolve) => {
        worker.once('message', (m: SimulatorSummary) => resolve(m));
        worker.postMessage({ kind: 'summary' });
      }),
    stop: async () => {
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      worker.postMessage({ kind: 'stop' });
      await exited;
    },
  };
}

@Module({})
class SweepBenchModule {
  static forRoot(databaseUrl: string, instance: ChannelInstanceConfig): DynamicModule {
    // The configuration a worker process would load, on the bench's database; migrations ran already.
    const config = loadAppConfig({ DATABASE_URL: databaseUrl, DB_MIGRATE: 'false' });
    return {
      module: SweepBenchModule,
      imports: [
        ConfigModule.forRoot({ ...config, jobsEnabled: false }),
        DatabaseModule.forRoot(),
        PaymentsModule.forRoot({ channelProviders: channelProviders(), instances: [instance] }),
      ],
    };
  }
}

interface Measured {
  readonly ms: number;
  /** CPU of this process (the sweep and the simulator thread), per order, in ms. */
  readonly cpuMsPerOrder: number;
  /** CPU of the app's PostgreSQL backends per order, in ms (undefined when the server is not local). */
  readonly pgCpuMsPerOrder: number | undefined;
  readonly sweepCalls: number;
}

/**
 * Builds the app context against a fresh simulator and times sweepOnce until no expired `wait` order is
 * left; then checks what the sweep did (a benchmark of a broken sweep is worthless).
 */
async function timedSweep(
  ds: DataSource,
  url: string,
  latencyMs: number,
  concurrency: number,
  batchSize: number,
  expected: number,
): Promise<Measured> {
  const sim = await startSimulator(latencyMs);
  const since = new Date(Date.now() - 1000);
  const app = await NestFactory.createApplicationContext(SweepBenchModule.forRoot(url, sim.instance), {
    logger: ['error', 'warn'],
  });
  try {
    const job = app.get(TimeoutCloserJob);
    let sweepCalls = 0;
    let claimed = 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    do {
      const r = await job.sweepOnce({ concurrency, batchSize });
      sweepCalls++;
      claimed += r.claimed;
      if (r.stuck || r.latePaid) throw new Error(`sweep left ${r.stuck} stuck and ${r.latePaid} paid late orders`);
      if (r.claimed === 0) break;
      if (sweepCalls > 10) throw new Error('the sweep did not finish in 10 passes');
    } while ((await expiredWaiting(ds)) > 0);
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const pgCpu = await backendCpuMs(ds, since);

    if (claimed !== expected) throw new Error(`sweep claimed ${claimed} orders, expected ${expected}`);
    const sum = await sim.summary();
    const closes = sum.calls['alipay.trade.close'] ?? 0;
    const queries = sum.calls['alipay.trade.query'] ?? 0;
    const totalCalls = Object.values(sum.calls).reduce((a, b) => a + b, 0);
    if (closes !== expected || sum.closedTrades !== expected || sum.closedTwice !== 0 || queries !== expected) {
      throw new Error(`simulator saw ${JSON.stringify(sum)}; expected ${expected} queries and closes, one per trade`);
    }
    if (totalCalls !== expected * ROUND_TRIPS_PER_ORDER) throw new Error(`unexpected calls ${JSON.stringify(sum)}`);
    return {
      ms,
      cpuMsPerOrder: expected ? (cpu.user + cpu.system) / 1000 / expected : 0,
      pgCpuMsPerOrder: expected && pgCpu !== undefined ? pgCpu / expected : undefined,
      sweepCalls,
    };
  } finally {
    await app.close();
    await sim.stop();
  }
}

async function verifyAllTimedOut(ds: DataSource, n: number): Promise<void> {
  const orders = await countBy(ds, 'orders');
  const attempts = await countBy(ds, 'payment_attempts');
  if (
    JSON.stringify(orders) !== JSON.stringify({ timeout: n }) ||
    JSON.stringify(attempts) !== JSON.stringify({ closed: n })
  ) {
    throw new Error(`after the sweep: orders ${JSON.stringify(orders)}, attempts ${JSON.stringify(attempts)}`);
  }
}

// ------------------------------------------------------------------ report

interface Row {
  readonly label: string;
  readonly latencyMs: number;
  readonly concurrency: number;
  readonly times: number[];
  readonly cpuMsPerOrder: number[];
  readonly pgCpuMsPerOrder: number[];
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Seconds with a unit, or milliseconds below one second. */
const dur = (ms: number): string =>
  ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`;

function table(rows: readonly Row[], n: number): string {
  const out = [
    '| case | channel latency | concurrency | runs | median | min | max | orders/s | ms/order | node CPU ms/order | PostgreSQL CPU ms/order | lower bound | median / bound |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const med = median(r.times);
    const idle = r.cpuMsPerOrder.length === 0;
    // Each order needs ROUND_TRIPS_PER_ORDER sequential channel calls; `concurrency` orders at a time.
    const boundMs = idle ? 0 : (n * ROUND_TRIPS_PER_ORDER * r.latencyMs) / r.concurrency;
    const cells = [
      r.label,
      `${r.latencyMs} ms`,
      String(r.concurrency),
      String(r.times.length),
      dur(med),
      dur(Math.min(...r.times)),
      dur(Math.max(...r.times)),
      idle ? '—' : Math.round(n / (med / 1000)).toLocaleString('en-US'),
      idle ? '—' : (med / n).toFixed(3),
      idle ? '—' : median(r.cpuMsPerOrder).toFixed(3),
      r.pgCpuMsPerOrder.length ? median(r.pgCpuMsPerOrder).toFixed(3) : '—',
      boundMs ? dur(boundMs) : '—',
      boundMs ? `${(med / boundMs).toFixed(2)}×` : '—',
    ];
    out.push(`| ${cells.join(' | ')} |`);
  }
  return out.join('\n');
}

function machine(): string {
  const tryRun = (cmd: string, args: string[]): string => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8' }).trim();
    } catch {
      return '(unavailable)';
    }
  };
  return [
    `nproc: ${tryRun('nproc', [])} (availableParallelism ${availableParallelism()}), memory ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `node ${process.version}`,
  ].join('\n');
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  const env = process.env;
  const adminUrl = env['DATABASE_URL'];
  if (!adminUrl) {
    console.error(
      'sweep.bench needs DATABASE_URL (PostgreSQL), e.g.\n' +
        '  DATABASE_URL=postgres://postgres@127.0.0.1:5432/pb_bench node dist/bench/sweep.bench.js\n' +
        'It creates a database <name>_sweep_<pid> on that server for the run and drops it afterwards.',
    );
    process.exit(2);
  }
  const opts = parseOptions(process.argv.slice(2), env);
  const base = new URL(adminUrl);
  const dbName = `${decodeURIComponent(base.pathname.slice(1)) || 'postgres'}_sweep_${process.pid}`.replace(
    /[^a-z0-9_]/gi,
    '_',
  );
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  const benchUrl = url.toString();

  const serverVersion = await withAdmin(adminUrl, async (c) => {
    await c.query(`CREATE DATABASE "${dbName}"`);
    return ((await c.query('SHOW server_version')).rows[0] as { server_version: string }).server_version;
  });
  console.log(`# sweep benchmark\n\n${machine()}\nPostgreSQL ${serverVersion}\noptions ${JSON.stringify(opts)}`);
  console.log(`database ${dbName} (dropped at the end; if interrupted: DROP DATABASE "${dbName}")\n`);

  let ds: DataSource | undefined;
  const rows: Row[] = [];
  const explains: { title: string; plan: string }[] = [];
  try {
    ds = await openDataSource(benchUrl);
    await runMigrations(ds, false);

    const cases: { latencyMs: number; concurrency: number }[] = [];
    for (const latencyMs of opts.latencies) {
      cases.push({ latencyMs, concurrency: opts.concurrency });
      if (latencyMs === 0 && opts.withDefaultConcurrency && opts.concurrency !== DEFAULT_SWEEP_CONCURRENCY)
        cases.push({ latencyMs, concurrency: DEFAULT_SWEEP_CONCURRENCY });
    }
    for (const c of cases) {
      const row: Row = {
        label: `${opts.orders.toLocaleString('en-US')} expired`,
        latencyMs: c.latencyMs,
        concurrency: c.concurrency,
        times: [],
        cpuMsPerOrder: [],
        pgCpuMsPerOrder: [],
      };
      const runs = c.latencyMs > 0 ? opts.slowRuns : opts.runs;
      for (let run = 1; run <= runs; run++) {
        await reset(ds);
        await seedExpired(ds, opts.orders);
        if (explains.length === 0) {
          explains.push({
            title: `${opts.orders} expired wait orders (before the sweep)`,
            plan: await explainClaim(ds, opts.batchSize),
          });
        }
        const m = await timedSweep(ds, benchUrl, c.latencyMs, c.concurrency, opts.batchSize, opts.orders);
        await verifyAllTimedOut(ds, opts.orders);
        row.times.push(m.ms);
        row.cpuMsPerOrder.push(m.cpuMsPerOrder);
        if (m.pgCpuMsPerOrder !== undefined) row.pgCpuMsPerOrder.push(m.pgCpuMsPerOrder);
        console.log(
          `latency ${c.latencyMs} ms, concurrency ${c.concurrency}, run ${run}/${runs}: ${dur(m.ms)} ` +
            `(${Math.round(opts.orders / (m.ms / 1000))} orders/s, node CPU ${m.cpuMsPerOrder.toFixed(2)} ms/order, ` +
            `PostgreSQL CPU ${m.pgCpuMsPerOrder?.toFixed(2) ?? '?'} ms/order, ${m.sweepCalls} sweepOnce call(s), all verified)`,
        );
      }
      rows.push(row);
    }

    // Nothing expired: the sweep must claim, read and write no order.
    await reset(ds);
    await seedNothingExpired(ds, opts.orders);
    explains.push({
      title: `nothing expired: ${opts.orders} wait orders expiring in an hour + ${opts.orders} success orders past their expiry`,
      plan: await explainClaim(ds, opts.batchSize),
    });
    const idle: Row = {
      label: `nothing expired (${opts.orders.toLocaleString('en-US')} wait + ${opts.orders.toLocaleString('en-US')} success)`,
      latencyMs: 0,
      concurrency: opts.concurrency,
      times: [],
      cpuMsPerOrder: [],
      pgCpuMsPerOrder: [],
    };
    for (let run = 1; run <= opts.runs; run++) {
      const m = await timedSweep(ds, benchUrl, 0, opts.concurrency, opts.batchSize, 0);
      const touched = await ds.query<{ n: number }[]>(
        `SELECT count(*)::int AS n FROM orders WHERE sweep_attempts > 0 OR sweep_after IS NOT NULL OR status NOT IN ('wait', 'success')`,
      );
      if (touched[0]?.n !== 0) throw new Error(`the sweep touched ${touched[0]?.n} orders with nothing expired`);
      idle.times.push(m.ms);
      console.log(`nothing expired, run ${run}/${opts.runs}: ${dur(m.ms)}, no order touched`);
    }
    rows.push(idle);
  } finally {
    await ds?.destroy();
    await withAdmin(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`));
  }

  console.log(`\n${table(rows, opts.orders)}\n`);
  console.log(
    `nothing-expired sweep times (ms): ${rows
      .at(-1)
      ?.times.map((t) => t.toFixed(1))
      .join(', ')}\n`,
  );
  for (const e of explains) console.log(`EXPLAIN (ANALYZE, BUFFERS) of the claim's SELECT, ${e.title}:\n\n${e.plan}\n`);
}

main().catch((err: unknown) => {
  console.error('sweep.bench failed:', err);
  process.exit(1);
});
