import { createHash, generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';

/**
 * What the process benchmarks (http, flow, startup) share: options, statistics, /proc readings, the
 * compiled api process and throw-away databases. Nothing here asserts a speed.
 */

export const API_MAIN = resolve('dist/apps/api/src/main.js');
export const EXIT_PRELOAD = resolve('dist/bench/exit-on-signal.preload.js');
const CLOCK_TICKS_PER_S = 100; // getconf CLK_TCK on Linux

export function option(name: string, argv = process.argv.slice(2), env = process.env): string | undefined {
  const flag = `--${name.toLowerCase().replace(/_/g, '-')}=`;
  return argv.find((a) => a.startsWith(flag))?.slice(flag.length) ?? env[name];
}

export function positiveInt(name: string, dflt: number): number {
  const raw = option(name);
  if (raw === undefined || raw.trim() === '') return dflt;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < 1) throw new Error(`${name} must be a positive integer, got ${raw}`);
  return Number(raw);
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Nearest-rank percentile of an unsorted list. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}

/** user + system CPU of a process, in ms (/proc/<pid>/stat); undefined when it is gone. */
export function cpuMsOf(pid: number): number | undefined {
  try {
    // Fields after the command name: state is the 1st, utime the 12th, stime the 13th (proc(5)).
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks * (1000 / CLOCK_TICKS_PER_S) : undefined;
  } catch {
    return undefined;
  }
}

/** A field of /proc/<pid>/status in MiB (VmHWM = peak RSS, VmRSS = current RSS). */
export function statusMiB(pid: number, field: 'VmHWM' | 'VmRSS'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * CPU of the PostgreSQL backends serving one database (the pids pg_stat_activity lists for it, read from
 * /proc, so only when the server runs on this machine). `stop()` answers the CPU spent since `start`;
 * backends that appeared meanwhile count in full, those that ended meanwhile are lost (reported).
 */
export async function pgBackendMeter(
  admin: pg.Client,
  dbName: string,
): Promise<{ stop(): Promise<{ ms: number; backends: number; lost: number }> }> {
  const pids = async (): Promise<number[]> =>
    (
      await admin.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
        [dbName],
      )
    ).rows.map((r) => r.pid);
  const before = new Map<number, number>();
  for (const pid of await pids()) {
    const ms = cpuMsOf(pid);
    if (ms !== undefined) before.set(pid, ms);
  }
  return {
    async stop() {
      const now = await pids();
      let ms = 0;
      for (const pid of now) ms += (cpuMsOf(pid) ?? 0) - (before.get(pid) ?? 0);
      const lost = [...before.keys()].filter((p) => !now.includes(p)).length;
      return { ms, backends: now.length, lost };
    },
  };
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => res(port));
    });
  });
}

export interface Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  output(): string;
  /** Resolves when a line of output matches (or rejects when the process exits first or after timeoutMs). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function spawnNode(script: string, env: Record<string, string>, nodeArgs: string[] = []): Proc {
  const child = spawn(process.execPath, [...nodeArgs, script], {
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let out = '';
  const waiters: { re: RegExp; done: () => void }[] = [];
  const onData = (d: Buffer): void => {
    out += d.toString();
    for (const w of [...waiters]) {
      if (w.re.test(out)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.done();
      }
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    child,
    pid: child.pid ?? -1,
    output: () => out,
    waitFor(re, timeoutMs = 60_000) {
      if (re.test(out)) return Promise.resolve();
      return new Promise((res, rej) => {
        const timer = setTimeout(() => rej(new Error(`${script}: no ${re} within ${timeoutMs} ms\n${out}`)), timeoutMs);
        const w = {
          re,
          done: () => {
            clearTimeout(timer);
            res();
          },
        };
        waiters.push(w);
        void exited.then((code) => {
          clearTimeout(timer);
          if (waiters.includes(w)) rej(new Error(`${script} exited (${code}) before ${re}\n${out}`));
        });
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}

export const SERVICE_KEY = 'pb_service_bench_0123456789abcdef';

export interface ApiProcessOptions {
  readonly port: number;
  readonly databaseUrl?: string;
  readonly dataDir?: string;
  readonly paysDir?: string;
  readonly sandbox: boolean;
  readonly publicBaseUrl?: string;
  /** e.g. a directory for `--cpu-prof` */
  readonly profileDir?: string;
  readonly extraEnv?: Record<string, string>;
}

function emptyPaysDir(): string {
  const dir = join(tmpdir(), 'paybridge-bench-no-pays');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** The compiled api (`npm run build` first), jobs off, with one service key. */
export function spawnApi(o: ApiProcessOptions): Proc {
  const env: Record<string, string> = {
    NODE_ENV: 'development',
    HOST: '127.0.0.1',
    PORT: String(o.port),
    JOBS_ENABLED: 'false',
    PAY_SANDBOX: String(o.sandbox),
    API_KEYS: `service:${SERVICE_KEY}`,
    // The per-key limiter on, with a limit a load test never reaches (its default of 1,200 a minute would
    // refuse it): what it costs is counted (positions claimed in blocks, rate-limit.ts).
    RATE_LIMIT_PER_MINUTE: '1000000',
    // An empty pays directory: a PAYS_DIR that does not exist is refused at start (sandbox-mode.ts).
    PAYS_DIR: o.paysDir ?? emptyPaysDir(),
    ...(o.databaseUrl ? { DATABASE_URL: o.databaseUrl } : {}),
    ...(o.dataDir ? { DATA_DIR: o.dataDir } : {}),
    ...(o.publicBaseUrl ? { PUBLIC_BASE_URL: o.publicBaseUrl } : {}),
    ...o.extraEnv,
  };
  const nodeArgs = [
    // APP_NODE_ARGS: V8/Node flags for the api process (e.g. `--max-semi-space-size=8`), space-separated.
    ...(option('APP_NODE_ARGS') ?? '').split(' ').filter(Boolean),
    ...(o.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${o.profileDir}`, '--import', EXIT_PRELOAD] : []),
  ];
  // APP_MAIN: another entry point for the api (e.g. an experiment built next to the app).
  return spawnNode(resolve(option('APP_MAIN') ?? API_MAIN), env, nodeArgs);
}

export const READY_LINE = /PayBridge listening on/;

/** Instance configs in the seeds' pays/ format (as test/utils/processes.ts writes them). */
export function writePaysDir(
  instances: readonly { fullName: string; type: string; title: string; isDefault: boolean; config: unknown }[],
): string {
  const dir = mkdtempSync(join(tmpdir(), 'paybridge-bench-pays-'));
  for (const inst of instances) {
    const folder = inst.fullName.replace(/^pays\./, '');
    mkdirSync(join(dir, folder));
    writeFileSync(
      join(dir, folder, 'e.json'),
      JSON.stringify({ type: inst.type, title: inst.title, default: inst.isDefault }),
    );
    writeFileSync(join(dir, folder, `${folder}.json`), JSON.stringify({ config: inst.config }));
  }
  return dir;
}

/** A database of this run next to DATABASE_URL's: `<name>_<tag>_<pid>`; drop() removes it. */
export async function benchDatabase(
  adminUrl: string,
  tag: string,
): Promise<{ url: string; name: string; admin: pg.Client; serverVersion: string; drop(): Promise<void> }> {
  const base = new URL(adminUrl);
  const name = `${decodeURIComponent(base.pathname.slice(1)) || 'postgres'}_${tag}_${process.pid}`.replace(
    /[^a-z0-9_]/gi,
    '_',
  );
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  const serverVersion = (await admin.query<{ server_version: string }>('SHOW server_version')).rows[0]
    ?.server_version as string;
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    admin,
    serverVersion,
    async drop() {
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end();
    },
  };
}

export function machine(): string {
  const tryRun = (cmd: string, args: string[]): string => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8' }).trim();
    } catch {
      return '(unavailable)';
    }
  };
  return (
    `nproc ${tryRun('nproc', [])} (availableParallelism ${availableParallelism()}), memory ` +
    `${(totalmem() / 2 ** 30).toFixed(1)} GiB, node ${process.version}, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`
  );
}

/**
 * The machine's speed at the time of a run: the median CPU ms of 3 passes of a fixed task of this
 * process (100 RSA-2048 signatures, 100 SHA-256 and JSON.parse of a 160 KB order list: what a pay flow
 * does besides I/O). A shared VM's speed moves by up to 2x between hours; runs made at different times
 * compare through this figure, runs of one invocation need not.
 */
export function yardstickMs(): number {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const data = JSON.stringify(
    Array.from({ length: 2000 }, (_, i) => ({ i, orderId: `O${i}`, amount: '10.00', currency: 'CNY' })),
  );
  const passes: number[] = [];
  for (let p = 0; p < 3; p++) {
    const t0 = process.cpuUsage();
    for (let i = 0; i < 100; i++) {
      cryptoSign('sha256', Buffer.from(`${data.slice(0, 300)}${i}`), privateKey);
      createHash('sha256').update(data).digest();
      JSON.parse(data);
    }
    const u = process.cpuUsage(t0);
    passes.push((u.user + u.system) / 1000);
  }
  return median(passes);
}

export const fmt = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : '—');
