import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import autocannon from 'autocannon';
import {
  type Proc,
  READY_LINE,
  SERVICE_KEY,
  benchDatabase,
  cpuMsOf,
  fmt,
  freePort,
  machine,
  median,
  option,
  pgBackendMeter,
  positiveInt,
  spawnApi,
  spawnNode,
  statusMiB,
  yardstickMs,
} from './bench-kit.js';

/**
 * HTTP benchmark (docs/benchmarks.md, issue 14): create order and get order on the compiled api (its own
 * process, PostgreSQL, jobs off, sandbox on) against a bare `node:http` + `pg` server doing the same
 * INSERT/SELECT on the same table (bench/baseline-server.process.ts, also its own process), loaded by
 * autocannon from this process at a fixed connection count. Rounds alternate which server goes first;
 * the report gives medians over rounds and the app/baseline ratios.
 *
 *   npm run build && DATABASE_URL=postgres://postgres@127.0.0.1:5432/pb_bench node dist/bench/http.bench.js
 *
 * Options (argv `--name=value` or env): ROUNDS (3), DURATION_S (6, per measurement), CONNECTIONS (32),
 * WARMUP_S (3), SEED_ORDERS (2000, the orders the get case reads), PROFILE_DIR (write a --cpu-prof
 * profile of the app there), CASES (create,get).
 *
 * A database `<name>_http_<pid>` is created next to DATABASE_URL's and dropped at the end. Exit code 1
 * when any request failed (non-2xx, socket error, timeout) or a created order is missing from the table.
 */

const ROUNDS = positiveInt('ROUNDS', 3);
const DURATION_S = positiveInt('DURATION_S', 6);
const CONNECTIONS = positiveInt('CONNECTIONS', 32);
const WARMUP_S = positiveInt('WARMUP_S', 3);
const SEED_ORDERS = positiveInt('SEED_ORDERS', 2000);
const PROFILE_DIR = option('PROFILE_DIR');
const CASES = (option('CASES') ?? 'create,get').split(',') as ('create' | 'get')[];

type Target = 'app' | 'baseline';
interface Server {
  readonly name: Target;
  readonly url: string;
  readonly proc: Proc;
}
interface Measurement {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly ok: number;
  readonly failed: number;
  readonly serverCpuMsPerReq: number;
  readonly pgCpuMsPerReq: number;
}

const auth = { authorization: `Bearer ${SERVICE_KEY}`, 'content-type': 'application/json' };
let seq = 0;
const runTag = (): string => `H${process.pid.toString(36)}${(seq++).toString(36)}`.slice(0, 12);

async function load(
  server: Server,
  kind: 'create' | 'get',
  seconds: number,
  ids: readonly string[],
  tag: string,
): Promise<autocannon.Result> {
  let n = 0;
  const requests: autocannon.Request[] =
    kind === 'create'
      ? [
          {
            method: 'POST',
            path: '/api/v1/orders',
            setupRequest: (req) => ({
              ...req,
              body: JSON.stringify({ subject: 'http bench', amount: '12.34', orderId: `${tag}${(n++).toString(36)}` }),
            }),
          },
        ]
      : [
          {
            method: 'GET',
            setupRequest: (req) => ({ ...req, path: `/api/v1/orders/${ids[n++ % ids.length] as string}` }),
          },
        ];
  return autocannon({ url: server.url, connections: CONNECTIONS, duration: seconds, headers: auth, requests });
}

async function main(): Promise<void> {
  const adminUrl = option('DATABASE_URL');
  if (!adminUrl) {
    console.error(
      'http.bench needs DATABASE_URL (PostgreSQL), e.g.\n' +
        '  DATABASE_URL=postgres://postgres@127.0.0.1:5432/pb_bench node dist/bench/http.bench.js',
    );
    process.exit(2);
  }
  const db = await benchDatabase(adminUrl, 'http');
  console.log(
    `# http benchmark\n${machine()}\nPostgreSQL ${db.serverVersion}, database ${db.name} (dropped at the end)`,
  );
  const yardstickStart = yardstickMs();
  console.log(`yardstick ${fmt(yardstickStart, 0)} ms of CPU (bench-kit.ts yardstickMs: the machine's speed now)`);
  console.log(
    `options: rounds ${ROUNDS}, ${DURATION_S} s per measurement, ${CONNECTIONS} connections, warm-up ${WARMUP_S} s, ` +
      `${SEED_ORDERS} seeded orders${PROFILE_DIR ? `, profile to ${PROFILE_DIR}` : ''}`,
  );
  const procs: Proc[] = [];
  const pg = await import('pg');
  const benchClient = new pg.default.Client({ connectionString: db.url });
  let failures = 0;
  const results: Record<string, Record<Target, Measurement[]>> = {};
  let peakRssMiB: number | undefined;
  try {
    if (PROFILE_DIR) mkdirSync(PROFILE_DIR, { recursive: true });
    const appPort = await freePort();
    const app = spawnApi({
      port: appPort,
      databaseUrl: db.url,
      sandbox: true,
      ...(PROFILE_DIR ? { profileDir: resolve(PROFILE_DIR) } : {}),
    });
    procs.push(app);
    await app.waitFor(READY_LINE);
    const basePort = await freePort();
    const base = spawnNode(resolve('dist/bench/baseline-server.process.js'), {
      DATABASE_URL: db.url,
      PORT: String(basePort),
      POOL_SIZE: '10',
    });
    procs.push(base);
    await base.waitFor(/baseline listening/);
    await benchClient.connect();
    const servers: Record<Target, Server> = {
      app: { name: 'app', url: `http://127.0.0.1:${appPort}`, proc: app },
      baseline: { name: 'baseline', url: `http://127.0.0.1:${basePort}`, proc: base },
    };

    // Orders for the get case, created through the app.
    const ids = Array.from({ length: SEED_ORDERS }, (_, i) => `HSEED${process.pid.toString(36)}${i}`);
    for (let i = 0; i < ids.length; i += 50) {
      await Promise.all(
        ids.slice(i, i + 50).map(async (orderId) => {
          const res = await fetch(`${servers.app.url}/api/v1/orders`, {
            method: 'POST',
            headers: auth,
            body: JSON.stringify({ subject: 'http bench', amount: '12.34', orderId }),
          });
          if (res.status !== 201) throw new Error(`seeding ${orderId}: HTTP ${res.status} ${await res.text()}`);
        }),
      );
    }
    // The same answer from both servers (same JSON shape), apart from nothing.
    const [a, b] = await Promise.all(
      [servers.app, servers.baseline].map(async (s) =>
        (await fetch(`${s.url}/api/v1/orders/${ids[0] as string}`, { headers: auth })).text(),
      ),
    );
    if (a !== b) throw new Error(`the servers answer differently:\napp      ${a}\nbaseline ${b}`);

    for (const kind of CASES) for (const s of Object.values(servers)) await load(s, kind, WARMUP_S, ids, runTag());

    for (const kind of CASES) results[kind] = { app: [], baseline: [] };
    for (let round = 1; round <= ROUNDS; round++) {
      const order: Target[] = round % 2 ? ['app', 'baseline'] : ['baseline', 'app'];
      for (const kind of CASES) {
        for (const t of order) {
          const tag = runTag();
          const server = servers[t];
          const cpu0 = cpuMsOf(server.proc.pid) ?? 0;
          const pgMeter = await pgBackendMeter(db.admin, db.name);
          const r = await load(server, kind, DURATION_S, ids, tag);
          const cpu = (cpuMsOf(server.proc.pid) ?? 0) - cpu0;
          const pgCpu = await pgMeter.stop();
          const ok = r['2xx'];
          let failed = r.non2xx + r.errors + r.timeouts;
          if (kind === 'create') {
            const rows = await benchClient.query<{ n: number }>(
              `SELECT count(*)::int AS n FROM orders WHERE order_id LIKE $1`,
              [`${tag}%`],
            );
            // Requests still in flight when autocannon's clock stops are stored but not counted: at most
            // one per connection.
            const stored = rows.rows[0]?.n ?? 0;
            if (stored < ok || stored > ok + CONNECTIONS) {
              console.error(`${t} create: ${ok} answered 201 but ${stored} orders are stored`);
              failed += Math.max(1, ok - stored);
            }
          }
          failures += failed;
          const m: Measurement = {
            rps: ok / DURATION_S,
            p50: r.latency.p50,
            p99: r.latency.p99,
            ok,
            failed,
            serverCpuMsPerReq: ok ? cpu / ok : NaN,
            pgCpuMsPerReq: ok ? pgCpu.ms / ok : NaN,
          };
          results[kind]?.[t].push(m);
          console.log(
            `round ${round} ${kind.padEnd(6)} ${t.padEnd(8)} ${fmt(m.rps, 0).padStart(6)} req/s  p50 ${m.p50} ms  p99 ${m.p99} ms  ` +
              `server CPU ${fmt(m.serverCpuMsPerReq, 3)} ms/req  PostgreSQL CPU ${fmt(m.pgCpuMsPerReq, 3)} ms/req  failed ${failed}`,
          );
        }
      }
    }
    peakRssMiB = statusMiB(app.pid, 'VmHWM');
  } finally {
    await benchClient.end().catch(() => undefined);
    // The app is procs[0]; with PROFILE_DIR it leaves through process.exit so its profile is written.
    for (const [i, p] of procs.entries()) await p.stop(PROFILE_DIR && i === 0 ? 'SIGUSR2' : 'SIGTERM');
    await db.drop();
  }

  const lines = [
    '| case | server | rounds | req/s (median) | min | max | p50 ms | p99 ms | server CPU ms/req | PostgreSQL CPU ms/req | app / baseline |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const summary: string[] = [];
  for (const [kind, byTarget] of Object.entries(results)) {
    const ratio = median(byTarget.app.map((m) => m.rps)) / median(byTarget.baseline.map((m) => m.rps));
    for (const t of ['app', 'baseline'] as const) {
      const ms = byTarget[t];
      const rps = ms.map((m) => m.rps);
      lines.push(
        `| ${kind} | ${t} | ${ms.length} | ${fmt(median(rps), 0)} | ${fmt(Math.min(...rps), 0)} | ${fmt(Math.max(...rps), 0)} | ` +
          `${fmt(median(ms.map((m) => m.p50)), 1)} | ${fmt(median(ms.map((m) => m.p99)), 1)} | ` +
          `${fmt(median(ms.map((m) => m.serverCpuMsPerReq)), 3)} | ${fmt(median(ms.map((m) => m.pgCpuMsPerReq)), 3)} | ` +
          `${t === 'app' ? fmt(ratio) : ''} |`,
      );
    }
    const cpuRatio =
      median(byTarget.app.map((m) => m.serverCpuMsPerReq)) / median(byTarget.baseline.map((m) => m.serverCpuMsPerReq));
    summary.push(
      `${kind} ${fmt(ratio)} of baseline (app ${fmt(median(byTarget.app.map((m) => m.rps)), 0)}/s vs ` +
        `${fmt(median(byTarget.baseline.map((m) => m.rps)), 0)}/s; app CPU ${fmt(cpuRatio, 1)}x baseline's per request)`,
    );
  }
  const yardstickEnd = yardstickMs();
  console.log(`\n${lines.join('\n')}\n`);
  console.log(
    `bench:http ${summary.join('; ')}; app peak RSS ${fmt(peakRssMiB ?? NaN, 0)} MiB; ` +
      `${CONNECTIONS} connections, ${ROUNDS} rounds of ${DURATION_S} s; failed requests ${failures}; yardstick ${fmt(yardstickStart, 0)} / ${fmt(yardstickEnd, 0)} ms`,
  );
  process.exit(failures ? 1 : 0);
}

main().catch((err: unknown) => {
  console.error('http.bench failed:', err);
  process.exit(1);
});
