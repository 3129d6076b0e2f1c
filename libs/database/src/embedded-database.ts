import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { createPgConfig } from '@electric-sql/pglite/node-postgres';
import { databaseUnavailable } from './db-unavailable.js';
import { DirectoryLock } from './embedded-lock.js';

/**
 * The embedded PostgreSQL (PGlite) used when DATABASE_URL is unset, on the path STACK.md measured:
 * PGlite's own node-postgres adapter under TypeORM's normal postgres driver, one connection, an
 * exclusive lock on the data directory (two processes on one directory corrupt it; see embedded-lock.ts),
 * and a clean close.
 */
export class EmbeddedDatabase {
  private constructor(
    readonly pglite: PGlite,
    readonly connection: unknown,
    private readonly lock: DirectoryLock,
  ) {}

  static async open(dataDir: string): Promise<EmbeddedDatabase> {
    const dir = resolve(dataDir);
    mkdirSync(dir, { recursive: true }); // PGlite makes only the leaf directory
    const lock = await DirectoryLock.acquire(join(dir, 'paybridge.lock'));
    try {
      const pglite = new PGlite(join(dir, 'pgdata'));
      await pglite.waitReady;
      const cfg = createPgConfig(pglite);
      return new EmbeddedDatabase(pglite, cfg.connection, lock);
    } catch (err) {
      lock.release();
      throw err;
    }
  }

  async close(): Promise<void> {
    try {
      if (!this.pglite.closed) await this.pglite.close();
    } finally {
      this.lock.release();
    }
  }
}

/** The part of pg-pool's Pool the queue bound needs. */
export interface WaitingPool {
  readonly waitingCount: number;
  connect: (...args: never[]) => unknown;
}

/**
 * Bounds the queue in front of the embedded database's single connection: beyond `max` waiting
 * requests, a request fails at once with SERVICE_UNAVAILABLE (503, Retry-After) instead of joining
 * an unbounded queue whose tail would time out anyway. The wait itself is bounded by the pool's
 * connectionTimeoutMillis (EMBEDDED_QUEUE_WAIT_MS), whose error is classified the same way.
 */
export function boundPoolQueue(pool: WaitingPool, max: number): void {
  const connect = pool.connect.bind(pool) as (cb?: (err: Error | undefined, ...rest: unknown[]) => void) => unknown;
  pool.connect = (cb?: (err: Error | undefined, ...rest: unknown[]) => void) => {
    if (pool.waitingCount >= max) {
      const err = databaseUnavailable('the embedded database is busy; retry shortly');
      if (cb) {
        process.nextTick(() => cb(err));
        return undefined;
      }
      return Promise.reject(err);
    }
    return connect(cb);
  };
}
