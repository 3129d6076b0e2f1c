import { closeSync, existsSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { createPgConfig } from '@electric-sql/pglite/node-postgres';

/**
 * The embedded PostgreSQL (PGlite) used when DATABASE_URL is unset, on the path STACK.md measured:
 * PGlite's own node-postgres adapter under TypeORM's normal postgres driver, one connection, an
 * exclusive lock on the data directory (two processes on one directory corrupt it), and a clean close.
 */
export class EmbeddedDatabase {
  private constructor(
    readonly pglite: PGlite,
    readonly connection: unknown,
    private readonly lockPath: string,
  ) {}

  static async open(dataDir: string): Promise<EmbeddedDatabase> {
    const dir = resolve(dataDir);
    mkdirSync(dir, { recursive: true }); // PGlite makes only the leaf directory
    const lockPath = join(dir, 'paybridge.lock');
    takeLock(lockPath);
    try {
      const pglite = new PGlite(join(dir, 'pgdata'));
      await pglite.waitReady;
      const cfg = createPgConfig(pglite);
      return new EmbeddedDatabase(pglite, cfg.connection, lockPath);
    } catch (err) {
      releaseLock(lockPath);
      throw err;
    }
  }

  async close(): Promise<void> {
    try {
      if (!this.pglite.closed) await this.pglite.close();
    } finally {
      releaseLock(this.lockPath);
    }
  }
}

function takeLock(lockPath: string): void {
  for (let tries = 0; tries < 2; tries++) {
    try {
      const fd = openSync(lockPath, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(readFileSync(lockPath, 'utf8').trim());
      if (Number.isInteger(holder) && holder > 0 && (holder === process.pid || isAlive(holder))) {
        throw new Error(
          `the embedded database in ${resolve(lockPath, '..')} is in use by process ${holder}; ` +
            'stop it, use another DATA_DIR, or set DATABASE_URL to share a PostgreSQL server',
          { cause: err },
        );
      }
      unlinkSync(lockPath); // stale lock of a process that died (kill -9): take it over
    }
  }
  throw new Error('could not lock the embedded database directory (a stale lock came back)');
}

function releaseLock(lockPath: string): void {
  try {
    if (existsSync(lockPath) && readFileSync(lockPath, 'utf8').trim() === String(process.pid)) unlinkSync(lockPath);
  } catch {
    /* best effort */
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
