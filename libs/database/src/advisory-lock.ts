import type { DataSource } from 'typeorm';

/** Stable 32-bit keys for pg advisory locks (the jobs use row claims instead, see payments/jobs). */
export const ADVISORY_LOCKS = {
  migrations: 7_300_001,
} as const;

/**
 * Runs `fn` while holding a session advisory lock on a dedicated connection, waiting for it.
 * Used around migrations so that several instances starting at once migrate exactly once.
 */
export async function withAdvisoryLock<T>(ds: DataSource, key: number, fn: () => Promise<T>): Promise<T> {
  const runner = ds.createQueryRunner();
  await runner.connect();
  try {
    await runner.query('SELECT pg_advisory_lock($1)', [key]);
    try {
      return await fn();
    } finally {
      await runner.query('SELECT pg_advisory_unlock($1)', [key]);
    }
  } finally {
    await runner.release();
  }
}

/** Applies pending migrations; on PostgreSQL under an advisory lock (the embedded db has one process). */
export async function runMigrations(ds: DataSource, embedded: boolean): Promise<string[]> {
  const run = async (): Promise<string[]> => (await ds.runMigrations({ transaction: 'each' })).map((m) => m.name);
  return embedded ? run() : withAdvisoryLock(ds, ADVISORY_LOCKS.migrations, run);
}
