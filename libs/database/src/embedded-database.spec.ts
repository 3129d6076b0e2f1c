import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedDatabase } from './embedded-database.js';

describe('EmbeddedDatabase', () => {
  it('locks its directory: a second open is refused until the first closes', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'pb-embedded-')), 'nested', 'data'); // parents are created
    const first = await EmbeddedDatabase.open(dir);
    try {
      expect(readFileSync(join(dir, 'paybridge.lock'), 'utf8')).toBe(String(process.pid));
      await expect(EmbeddedDatabase.open(dir)).rejects.toThrow(/in use by process/);
      const rows = await first.pglite.query<{ one: number }>('SELECT 1 AS one');
      expect(rows.rows[0]?.one).toBe(1);
    } finally {
      await first.close();
    }
    expect(existsSync(join(dir, 'paybridge.lock'))).toBe(false);
    const again = await EmbeddedDatabase.open(dir);
    await again.close();
  });

  it('takes over the lock of a process that died (kill -9)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pb-embedded-'));
    writeFileSync(join(dir, 'paybridge.lock'), '999999999'); // no such pid
    const db = await EmbeddedDatabase.open(dir);
    expect(readFileSync(join(dir, 'paybridge.lock'), 'utf8')).toBe(String(process.pid));
    await db.close();
  });
});
