import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedDatabase } from './embedded-database.js';
import {
  DirectoryLock,
  LEASE_MS,
  type LockHolder,
  type ProcessProbe,
  SELF,
  holderState,
  parseLock,
  processStartTicks,
} from './embedded-lock.js';

const lockOf = (dir: string): LockHolder | undefined => parseLock(readFileSync(join(dir, 'paybridge.lock'), 'utf8'));

describe('EmbeddedDatabase', () => {
  it('locks its directory: a second open is refused until the first closes', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'pb-embedded-')), 'nested', 'data'); // parents are created
    const first = await EmbeddedDatabase.open(dir);
    try {
      expect(lockOf(dir)).toMatchObject({ pid: process.pid, boot: SELF.boot });
      await expect(EmbeddedDatabase.open(dir)).rejects.toThrow(/already open in this process/);
      const rows = await first.pglite.query<{ one: number }>('SELECT 1 AS one');
      expect(rows.rows[0]?.one).toBe(1);
    } finally {
      await first.close();
    }
    expect(existsSync(join(dir, 'paybridge.lock'))).toBe(false);
    const again = await EmbeddedDatabase.open(dir);
    await again.close();
  });

  it('takes over the lock of a process that died (kill -9), in the old bare-pid format too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pb-embedded-'));
    writeFileSync(join(dir, 'paybridge.lock'), '999999999'); // no such pid
    const db = await EmbeddedDatabase.open(dir);
    expect(lockOf(dir)).toMatchObject({ pid: process.pid, boot: SELF.boot });
    await db.close();
  });

  it('takes over a lock with this very pid but another boot id (a restarted container is pid 1 again)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pb-embedded-'));
    const dead: LockHolder = { ...SELF, boot: 'a-previous-process-with-the-same-pid' };
    writeFileSync(join(dir, 'paybridge.lock'), JSON.stringify(dead));
    const db = await EmbeddedDatabase.open(dir);
    expect(lockOf(dir)?.boot).toBe(SELF.boot);
    await db.close();
    // The old format written by a process that had our pid: the same.
    writeFileSync(join(dir, 'paybridge.lock'), String(process.pid));
    const again = await EmbeddedDatabase.open(dir);
    await again.close();
  });

  describe('with another live process', () => {
    let child: ReturnType<typeof spawn>;
    beforeAll(async () => {
      child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
      await new Promise((r) => child.once('spawn', r));
    });
    afterAll(async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    });

    it("refuses that process's lock", async () => {
      const dir = mkdtempSync(join(tmpdir(), 'pb-embedded-'));
      const pid = child.pid ?? 0;
      const live: LockHolder = { ...SELF, pid, boot: 'the-other-process', start: processStartTicks(pid) };
      writeFileSync(join(dir, 'paybridge.lock'), JSON.stringify(live));
      await expect(EmbeddedDatabase.open(dir)).rejects.toThrow(new RegExp(`in use by process ${pid}`));
      expect(lockOf(dir)?.boot).toBe('the-other-process'); // left alone
    });

    it('takes over when that pid now belongs to another process (start time differs: the pid was reused)', async () => {
      if (processStartTicks(process.pid) === undefined) return; // no /proc: the start time cannot be checked
      const dir = mkdtempSync(join(tmpdir(), 'pb-embedded-'));
      const reused: LockHolder = { ...SELF, pid: child.pid ?? 0, boot: 'long-gone', start: '1' };
      writeFileSync(join(dir, 'paybridge.lock'), JSON.stringify(reused));
      const db = await EmbeddedDatabase.open(dir);
      expect(lockOf(dir)?.boot).toBe(SELF.boot);
      await db.close();
    });
  });
});

describe('holderState', () => {
  const self: LockHolder = { pid: 100, boot: 'me', start: '5000', kernel: 'k1', host: 'h1' };
  const probe = (over: Partial<ProcessProbe> = {}): ProcessProbe => ({
    isAlive: () => true,
    startTicks: () => '4000',
    lockAgeMs: () => 0,
    ...over,
  });

  it('judges each case', () => {
    const other: LockHolder = { pid: 42, boot: 'x', start: '4000', kernel: 'k1', host: 'h1' };
    expect(holderState({ ...self }, self, probe())).toBe('self');
    expect(holderState({ ...self, boot: 'older' }, self, probe())).toBe('dead');
    expect(holderState(other, self, probe())).toBe('alive');
    expect(holderState(other, self, probe({ isAlive: () => false }))).toBe('dead');
    expect(holderState(other, self, probe({ startTicks: () => '4999' }))).toBe('dead'); // pid reused
    expect(holderState(other, self, probe({ startTicks: () => undefined }))).toBe('alive'); // cannot tell: keep out
    expect(holderState({ ...other, kernel: 'k0' }, self, probe())).toBe('dead'); // the machine rebooted
    // Another host: only the lease tells.
    expect(holderState({ ...other, host: 'h2' }, self, probe({ lockAgeMs: () => 1000 }))).toBe('alive');
    expect(holderState({ ...other, host: 'h2' }, self, probe({ lockAgeMs: () => LEASE_MS + 1 }))).toBe('dead');
  });

  it('refuses a same-process double acquire and releases only its own file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pb-lock-'));
    const path = join(dir, 'x.lock');
    const lock = await DirectoryLock.acquire(path);
    await expect(DirectoryLock.acquire(path)).rejects.toThrow(/already open in this process/);
    writeFileSync(path, JSON.stringify({ ...SELF, boot: 'someone-else' }));
    lock.release(); // not ours any more: left in place
    expect(parseLock(readFileSync(path, 'utf8'))?.boot).toBe('someone-else');
  });
});
