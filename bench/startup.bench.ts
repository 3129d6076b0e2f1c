import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  READY_LINE,
  benchDatabase,
  fmt,
  freePort,
  machine,
  median,
  option,
  positiveInt,
  spawnApi,
} from './bench-kit.js';

/**
 * Start-to-ready of the compiled api (docs/benchmarks.md, issue 14): from spawning `node
 * dist/apps/api/src/main.js` to its "PayBridge listening" line (after migrations, module wiring and
 * listen), sandbox on, jobs off. Cases: PostgreSQL on an empty database (migrations run), PostgreSQL
 * already migrated, the embedded database on a fresh data directory, and on an existing one.
 *
 *   npm run build && DATABASE_URL=postgres://postgres@127.0.0.1:5432/pb_bench node dist/bench/startup.bench.js
 *
 * Options: RUNS (3). Without DATABASE_URL only the embedded cases run.
 */
const RUNS = positiveInt('RUNS', 3);

async function timeStart(opts: { databaseUrl?: string; dataDir?: string }): Promise<number> {
  const port = await freePort();
  const t0 = performance.now();
  const app = spawnApi({ port, sandbox: true, ...opts });
  try {
    await app.waitFor(READY_LINE, 120_000);
    return performance.now() - t0;
  } finally {
    await app.stop();
  }
}

async function main(): Promise<void> {
  const adminUrl = option('DATABASE_URL');
  console.log(`# startup benchmark\n${machine()}\nruns ${RUNS}`);
  const rows: [string, number[]][] = [];
  if (adminUrl) {
    const fresh: number[] = [];
    const migrated: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const db = await benchDatabase(adminUrl, `start${i}`);
      try {
        fresh.push(await timeStart({ databaseUrl: db.url }));
        migrated.push(await timeStart({ databaseUrl: db.url }));
      } finally {
        await db.drop();
      }
    }
    rows.push(['PostgreSQL, empty database (migrations run)', fresh], ['PostgreSQL, migrated', migrated]);
  }
  const freshDir: number[] = [];
  const existingDir: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const dir = mkdtempSync(join(tmpdir(), 'paybridge-start-'));
    try {
      freshDir.push(await timeStart({ dataDir: join(dir, 'data') }));
      existingDir.push(await timeStart({ dataDir: join(dir, 'data') }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  rows.push(['embedded, fresh data directory', freshDir], ['embedded, existing data directory', existingDir]);
  console.log('\n| case | runs | median | min | max |\n|---|---:|---:|---:|---:|');
  for (const [label, ms] of rows) {
    console.log(
      `| ${label} | ${ms.length} | ${fmt(median(ms), 0)} ms | ${fmt(Math.min(...ms), 0)} ms | ${fmt(Math.max(...ms), 0)} ms |`,
    );
  }
  console.log(`\nbench:startup ${rows.map(([l, ms]) => `${l}: ${fmt(median(ms) / 1000)} s`).join('; ')}`);
}

main().catch((err: unknown) => {
  console.error('startup.bench failed:', err);
  process.exit(1);
});
