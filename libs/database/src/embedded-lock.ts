import { randomUUID } from 'node:crypto';
import { linkSync, readFileSync, renameSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';

/**
 * The embedded database's directory lock (two processes on one PGlite directory corrupt it).
 *
 * Node has no flock(), so the lock is a file created atomically (written beside, then link()ed: it
 * exists only with its full content) holding who took it:
 * - `pid`, and `boot`: a random id of the taking process. A lock with our own pid but another boot id
 *   was written by a dead process that had our pid (a container restarted: pid 1 again), so it is
 *   taken over; a pid file alone cannot tell those apart.
 * - `start`: the holder's start time in clock ticks since boot (Linux /proc/<pid>/stat), and `kernel`:
 *   the kernel's boot id. A live pid whose start time differs is a reused pid, not the holder; another
 *   kernel boot id means the machine restarted since.
 * - `host`: a lock written on another host (a shared volume) cannot be checked by pid; the holder
 *   refreshes the file's mtime every LEASE_REFRESH_MS, and such a lock is stale once that stops for
 *   LEASE_MS.
 * A stale lock is taken over by renaming it aside and checking that the renamed file is still the one
 * judged stale, so two processes starting at once over a stale lock cannot both win.
 */
export const LEASE_MS = 30_000;
export const LEASE_REFRESH_MS = 10_000;

/** This process's identity, fixed at load. */
export const SELF: LockHolder = {
  pid: process.pid,
  boot: randomUUID(),
  start: processStartTicks(process.pid),
  kernel: kernelBootId(),
  host: hostname(),
};

export interface LockHolder {
  readonly pid: number;
  readonly boot: string | undefined;
  readonly start: string | undefined;
  readonly kernel: string | undefined;
  readonly host: string | undefined;
}

export type HolderState = 'self' | 'alive' | 'dead';

/** What can be learned about other processes (injectable for specs). */
export interface ProcessProbe {
  isAlive(pid: number): boolean;
  startTicks(pid: number): string | undefined;
  /** ms since the lock file was last refreshed */
  lockAgeMs(): number;
}

export class EmbeddedLockError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EmbeddedLockError';
  }
}

/** Judges a lock's holder from the point of view of `self` (pure apart from the probe). */
export function holderState(holder: LockHolder, self: LockHolder, probe: ProcessProbe): HolderState {
  if (holder.host !== undefined && self.host !== undefined && holder.host !== self.host) {
    return probe.lockAgeMs() > LEASE_MS ? 'dead' : 'alive';
  }
  if (holder.kernel !== undefined && self.kernel !== undefined && holder.kernel !== self.kernel) return 'dead';
  if (holder.pid === self.pid) {
    // Our pid: either this very process (same boot id) or a dead one that had the same pid.
    return holder.boot === self.boot ? 'self' : 'dead';
  }
  if (!probe.isAlive(holder.pid)) return 'dead';
  if (holder.start !== undefined) {
    const now = probe.startTicks(holder.pid);
    if (now !== undefined && now !== holder.start) return 'dead'; // the pid was reused
  }
  return 'alive';
}

export function parseLock(text: string): LockHolder | undefined {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) {
    // The earlier format: a bare pid.
    return { pid: Number(trimmed), boot: undefined, start: undefined, kernel: undefined, host: undefined };
  }
  try {
    const v = JSON.parse(trimmed) as Record<string, unknown>;
    const str = (k: string): string | undefined => (typeof v[k] === 'string' ? v[k] : undefined);
    if (typeof v['pid'] !== 'number' || !Number.isInteger(v['pid']) || v['pid'] <= 0) return undefined;
    return { pid: v['pid'], boot: str('boot'), start: str('start'), kernel: str('kernel'), host: str('host') };
  } catch {
    return undefined;
  }
}

/** A held lock: refreshes its lease and is released by close(). */
export class DirectoryLock {
  private readonly timer: NodeJS.Timeout;

  private constructor(
    readonly path: string,
    private readonly content: string,
  ) {
    this.timer = setInterval(() => this.refresh(), LEASE_REFRESH_MS);
    this.timer.unref();
  }

  /**
   * Takes the lock at `path`, taking over a stale one; waits (up to LEASE_MS and a little) for a lock
   * of another host to expire; refuses a live holder.
   */
  static async acquire(
    path: string,
    self: LockHolder = SELF,
    probe?: (path: string) => ProcessProbe,
  ): Promise<DirectoryLock> {
    const content = JSON.stringify(self);
    const probeOf = probe ?? systemProbe;
    const deadline = Date.now() + LEASE_MS + 2 * LEASE_REFRESH_MS;
    for (let tries = 0; ; tries++) {
      if (createExclusive(path, content)) return new DirectoryLock(path, content);
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile: try again
        throw err;
      }
      const holder = parseLock(text);
      const state = holder ? holderState(holder, self, probeOf(path)) : 'dead'; // unreadable: a torn old-format write
      if (state === 'self') {
        throw new EmbeddedLockError(`the embedded database in ${dirname(path)} is already open in this process`);
      }
      if (state === 'alive') {
        const foreign = holder?.host !== undefined && self.host !== undefined && holder.host !== self.host;
        if (foreign && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 1000)); // wait for its lease to lapse (or be renewed)
          continue;
        }
        throw new EmbeddedLockError(
          `the embedded database in ${dirname(path)} is in use by process ${holder?.pid ?? '?'}` +
            (foreign ? ` on ${holder?.host ?? '?'}` : '') +
            '; stop it, use another DATA_DIR, or set DATABASE_URL to share a PostgreSQL server',
        );
      }
      if (tries > 20) throw new EmbeddedLockError(`could not take over the stale lock ${path}`);
      takeOverStale(path, text);
    }
  }

  /** Releases the lock if it is still ours. */
  release(): void {
    clearInterval(this.timer);
    try {
      if (readFileSync(this.path, 'utf8') === this.content) unlinkSync(this.path);
    } catch {
      /* gone already */
    }
  }

  private refresh(): void {
    try {
      if (readFileSync(this.path, 'utf8') !== this.content) return;
      const now = new Date();
      utimesSync(this.path, now, now);
    } catch {
      /* best effort: the lease only matters to other hosts */
    }
  }
}

/** Creates `path` holding `content`, atomically; false when it exists. */
function createExclusive(path: string, content: string): boolean {
  const tmp = `${path}.${process.pid}.${randomUUID()}.tmp`;
  writeFileSync(tmp, content, { mode: 0o600 });
  try {
    linkSync(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkSync(tmp);
  }
}

/**
 * Removes the stale lock whose content was `staleText`, unless someone replaced it meanwhile: rename
 * it aside (atomic), compare, and put back a lock that turned out to be a fresh one.
 */
function takeOverStale(path: string, staleText: string): void {
  const aside = `${path}.${process.pid}.${randomUUID()}.stale`;
  try {
    renameSync(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // another process took it over first
    throw err;
  }
  const moved = readFileSync(aside, 'utf8');
  if (moved !== staleText) {
    // A fresh lock taken between our read and our rename: give it back (link fails only if yet another
    // process has created one since, in which case that one stands and this one's owner will find out).
    try {
      linkSync(aside, path);
    } catch {
      /* see above */
    }
  }
  unlinkSync(aside);
}

function systemProbe(path: string): ProcessProbe {
  return {
    isAlive,
    startTicks: processStartTicks,
    lockAgeMs: () => {
      try {
        return Date.now() - statSync(path).mtimeMs;
      } catch {
        return Number.POSITIVE_INFINITY;
      }
    },
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); undefined off Linux. */
export function processStartTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

function kernelBootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
