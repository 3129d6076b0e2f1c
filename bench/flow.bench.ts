import { mkdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { resolve } from 'node:path';
import type { ChannelInstanceConfig } from '#channels';
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
  percentile,
  pgBackendMeter,
  positiveInt,
  spawnApi,
  spawnNode,
  statusMiB,
  writePaysDir,
  yardstickMs,
} from './bench-kit.js';
import type { SimulatorsReady } from './simulators.process.js';

/**
 * Pay-flow benchmark (docs/benchmarks.md, issue 14): the whole flow of each channel, as a merchant's
 * server and a buyer drive it, against the compiled api (its own process, PostgreSQL, jobs off, channels
 * from a pays/ folder) and the channel simulators (bench/simulators.process.ts, another process):
 *
 *   create order → POST …/pay (the app signs and calls the simulator; QR rendered for PRE_PAY/NATIVE) →
 *   the buyer pays at the simulator's cashier (POST <payUrl>/pay; the simulator sends its signed notify
 *   and waits for the app's answer) → GET the order until it is `success`.
 *
 * Alipay+ adds the wallet's auth code (my.getAuthCode, the simulator's /test/auth-code) before /pay.
 * Reported per channel: flows/s, p50/p99 of one flow, CPU ms per flow of the app, the simulators and the
 * app's PostgreSQL backends (/proc), and the app's peak RSS (VmHWM).
 *
 *   npm run build && DATABASE_URL=postgres://postgres@127.0.0.1:5432/pb_bench node dist/bench/flow.bench.js
 *
 * Options (argv `--name=value` or env): CHANNELS (alipay,wechatpay,alipayplus), ROUNDS (3), FLOWS (300 per
 * channel and round), CONCURRENCY (16 flows at once), WARMUP_FLOWS (200 per channel: with 60 the first round still ran ~1.5x dearer, before the JIT settled), PROFILE_DIR
 * (--cpu-prof of the app there). Exit code 1 when any flow failed.
 */

const CHANNEL_NAMES = (option('CHANNELS') ?? 'alipay,wechatpay,alipayplus').split(',');
const ROUNDS = positiveInt('ROUNDS', 3);
const FLOWS = positiveInt('FLOWS', 300);
const CONCURRENCY = positiveInt('CONCURRENCY', 16);
const WARMUP_FLOWS = positiveInt('WARMUP_FLOWS', 200);
const PROFILE_DIR = option('PROFILE_DIR');

interface ChannelCase {
  readonly name: string;
  readonly instance: string;
  readonly payType: string;
  /** Extra fields of the pay request, fetched per flow (the Alipay+ auth code). */
  readonly payerDetails?: () => Promise<Record<string, string>>;
}

const auth = { authorization: `Bearer ${SERVICE_KEY}`, 'content-type': 'application/json' };

async function call(url: string, init: RequestInit, expect: number): Promise<Record<string, unknown>> {
  const res = await fetch(url, init);
  const text = await res.text();
  if (res.status !== expect)
    throw new Error(`${init.method ?? 'GET'} ${url}: HTTP ${res.status} ${text.slice(0, 200)}`);
  return res.headers.get('content-type')?.includes('json') ? (JSON.parse(text) as Record<string, unknown>) : {};
}

let flowSeq = 0;

/** One whole flow; answers its wall time in ms. */
async function flow(appUrl: string, c: ChannelCase): Promise<number> {
  const t0 = performance.now();
  const orderId = `F${process.pid.toString(36)}${(flowSeq++).toString(36).padStart(6, '0')}`;
  await call(
    `${appUrl}/api/v1/orders`,
    { method: 'POST', headers: auth, body: JSON.stringify({ subject: 'flow bench', amount: '12.34', orderId }) },
    201,
  );
  const extra = c.payerDetails ? await c.payerDetails() : {};
  const pay = await call(
    `${appUrl}/api/v1/orders/${orderId}/pay`,
    { method: 'POST', headers: auth, body: JSON.stringify({ channel: c.instance, payType: c.payType, ...extra }) },
    200,
  );
  const payUrl = pay['payUrl'];
  if (typeof payUrl !== 'string' || !payUrl.startsWith('http'))
    throw new Error(`no cashier URL: ${JSON.stringify(pay)}`);
  // The buyer presses Pay on the cashier page (a form post); the simulator notifies the app first.
  await call(
    `${payUrl}/pay`,
    { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' },
    200,
  );
  for (let i = 0; ; i++) {
    const o = await call(`${appUrl}/api/v1/orders/${orderId}`, { headers: auth }, 200);
    if (o['status'] === 'success') {
      if (o['amount'] !== '12.34' || o['channel'] !== c.instance) throw new Error(`wrong order ${JSON.stringify(o)}`);
      break;
    }
    if (o['status'] !== 'wait' || i >= 200)
      throw new Error(`order ${orderId} is ${String(o['status'])} after ${i} reads`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return performance.now() - t0;
}

/** n flows, `concurrency` at a time; answers the latencies and how many failed (first error printed). */
async function flows(appUrl: string, c: ChannelCase, n: number): Promise<{ latencies: number[]; failed: number }> {
  const latencies: number[] = [];
  let failed = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(CONCURRENCY, n) }, async () => {
      while (next < n) {
        next++;
        try {
          latencies.push(await flow(appUrl, c));
        } catch (err) {
          if (failed++ === 0) console.error(`${c.name} flow failed: ${(err as Error).message}`);
        }
      }
    }),
  );
  return { latencies, failed };
}

interface Measured {
  readonly flowsPerS: number;
  readonly p50: number;
  readonly p99: number;
  readonly appCpu: number;
  readonly simCpu: number;
  readonly pgCpu: number;
  readonly failed: number;
}

async function main(): Promise<void> {
  const adminUrl = option('DATABASE_URL');
  if (!adminUrl) {
    console.error(
      'flow.bench needs DATABASE_URL (PostgreSQL), e.g.\n' +
        '  DATABASE_URL=postgres://postgres@127.0.0.1:5432/pb_bench node dist/bench/flow.bench.js',
    );
    process.exit(2);
  }
  const db = await benchDatabase(adminUrl, 'flow');
  console.log(
    `# flow benchmark\n${machine()}\nPostgreSQL ${db.serverVersion}, database ${db.name} (dropped at the end)`,
  );
  const yardstickStart = yardstickMs();
  console.log(`yardstick ${fmt(yardstickStart, 0)} ms of CPU (bench-kit.ts yardstickMs: the machine's speed now)`);
  console.log(
    `options: channels ${CHANNEL_NAMES.join(',')}, rounds ${ROUNDS}, ${FLOWS} flows per channel and round, ` +
      `concurrency ${CONCURRENCY}, warm-up ${WARMUP_FLOWS}${PROFILE_DIR ? `, profile to ${PROFILE_DIR}` : ''}`,
  );
  const procs: Proc[] = [];
  const results = new Map<string, Measured[]>();
  let failures = 0;
  let peakRssMiB: number | undefined;
  try {
    if (PROFILE_DIR) mkdirSync(PROFILE_DIR, { recursive: true });
    const sim = spawnNode(resolve('dist/bench/simulators.process.js'), { NODE_ENV: 'development' });
    const ready = await new Promise<SimulatorsReady>((res, rej) => {
      sim.child.once('message', (m) => res(m as SimulatorsReady));
      sim.child.once('exit', (code) => rej(new Error(`simulators exited (${code}): ${sim.output()}`)));
    });
    const byType = (type: string): ChannelInstanceConfig => {
      const i = ready.instances.find((x) => x.type === type);
      if (!i) throw new Error(`no ${type} simulator`);
      return i;
    };
    const appPort = await freePort();
    const appUrl = `http://127.0.0.1:${appPort}`;
    const app = spawnApi({
      port: appPort,
      databaseUrl: db.url,
      sandbox: false,
      paysDir: writePaysDir(ready.instances),
      publicBaseUrl: appUrl,
      ...(PROFILE_DIR ? { profileDir: resolve(PROFILE_DIR) } : {}),
    });
    procs.push(app, sim);
    await app.waitFor(READY_LINE);

    const walletGateway = String(byType('pays.AlipayPlusType').config['gatewayUrl']);
    const cases: Record<string, ChannelCase> = {
      alipay: { name: 'alipay', instance: byType('pays.AliPayType').fullName, payType: 'PRE_PAY' },
      wechatpay: { name: 'wechatpay', instance: byType('pays.WechatPayType').fullName, payType: 'NATIVE' },
      alipayplus: {
        name: 'alipayplus',
        instance: byType('pays.AlipayPlusType').fullName,
        payType: 'CASHIER',
        payerDetails: async () => {
          const r = await call(`${walletGateway}/test/auth-code`, { method: 'POST' }, 200);
          return { authCode: String(r['authCode']) };
        },
      },
    };
    const chosen = CHANNEL_NAMES.map((n) => {
      const c = cases[n];
      if (!c) throw new Error(`unknown channel ${n}: choose from ${Object.keys(cases).join(', ')}`);
      return c;
    });

    for (const c of chosen) {
      const w = await flows(appUrl, c, WARMUP_FLOWS);
      failures += w.failed;
    }
    for (let round = 1; round <= ROUNDS; round++) {
      for (const c of chosen) {
        const app0 = cpuMsOf(app.pid) ?? 0;
        const sim0 = cpuMsOf(sim.pid) ?? 0;
        const pgMeter = await pgBackendMeter(db.admin, db.name);
        const t0 = performance.now();
        const r = await flows(appUrl, c, FLOWS);
        const wall = performance.now() - t0;
        const ok = r.latencies.length;
        const m: Measured = {
          flowsPerS: ok / (wall / 1000),
          p50: percentile(r.latencies, 50),
          p99: percentile(r.latencies, 99),
          appCpu: ((cpuMsOf(app.pid) ?? 0) - app0) / ok,
          simCpu: ((cpuMsOf(sim.pid) ?? 0) - sim0) / ok,
          pgCpu: (await pgMeter.stop()).ms / ok,
          failed: r.failed,
        };
        failures += r.failed;
        results.set(c.name, [...(results.get(c.name) ?? []), m]);
        console.log(
          `round ${round} ${c.name.padEnd(10)} ${fmt(m.flowsPerS, 0).padStart(5)} flows/s  p50 ${fmt(m.p50, 1)} ms  ` +
            `p99 ${fmt(m.p99, 1)} ms  CPU ms/flow: app ${fmt(m.appCpu)}  simulator ${fmt(m.simCpu)}  ` +
            `PostgreSQL ${fmt(m.pgCpu)}  failed ${m.failed}`,
        );
      }
    }
    peakRssMiB = statusMiB(app.pid, 'VmHWM');
  } finally {
    for (const [i, p] of procs.entries()) await p.stop(PROFILE_DIR && i === 0 ? 'SIGUSR2' : 'SIGTERM');
    await db.drop();
  }

  const lines = [
    '| channel | rounds | flows/s (median) | min | max | p50 ms | p99 ms | app CPU ms/flow | simulator CPU ms/flow | PostgreSQL CPU ms/flow |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const summary: string[] = [];
  for (const [name, ms] of results) {
    const fps = ms.map((m) => m.flowsPerS);
    const med = (f: (m: Measured) => number): number => median(ms.map(f));
    lines.push(
      `| ${name} | ${ms.length} | ${fmt(median(fps), 0)} | ${fmt(Math.min(...fps), 0)} | ${fmt(Math.max(...fps), 0)} | ` +
        `${fmt(
          med((m) => m.p50),
          1,
        )} | ${fmt(
          med((m) => m.p99),
          1,
        )} | ${fmt(med((m) => m.appCpu))} | ` +
        `${fmt(med((m) => m.simCpu))} | ${fmt(med((m) => m.pgCpu))} |`,
    );
    summary.push(
      `${name} ${fmt(median(fps), 0)} flows/s p50 ${fmt(
        med((m) => m.p50),
        0,
      )} ms p99 ${fmt(
        med((m) => m.p99),
        0,
      )} ms ` + `app ${fmt(med((m) => m.appCpu))} ms/flow`,
    );
  }
  const yardstickEnd = yardstickMs();
  console.log(`\n${lines.join('\n')}\n`);
  console.log(
    `bench:flow ${summary.join('; ')}; app peak RSS ${fmt(peakRssMiB ?? NaN, 0)} MiB; concurrency ${CONCURRENCY}, ` +
      `${ROUNDS} rounds of ${FLOWS}; failed flows ${failures}; yardstick ${fmt(yardstickStart, 0)} / ${fmt(yardstickEnd, 0)} ms`,
  );
  process.exit(failures ? 1 : 0);
}

main().catch((err: unknown) => {
  console.error('flow.bench failed:', err);
  process.exit(1);
});
