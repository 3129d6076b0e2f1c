import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, until } from '../utils/test-app.js';
import { type Spawned, spawnApi } from '../utils/processes.js';

/**
 * The compiled api's start decision (API.md §9): a mistyped PAYS_DIR or deployment settings without
 * channels stop the start; a bare start still gives the sandbox.
 */
describe('api start: the sandbox only where it belongs', () => {
  const started: Spawned[] = [];
  afterEach(async () => {
    for (const s of started.splice(0)) {
      if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGTERM');
      await s.exited;
    }
  });

  async function env(extra: Record<string, string>): Promise<Record<string, string>> {
    return {
      ...(process.env['DATABASE_URL'] ? { DATABASE_URL: process.env['DATABASE_URL'] } : {}),
      DATA_DIR: mkdtempSync(join(tmpdir(), 'paybridge-start-')),
      PORT: String(await freePort()),
      JOBS_ENABLED: 'false',
      ...extra,
    };
  }

  it('a PAYS_DIR that does not exist stops the start with a message naming it', async () => {
    const missing = join(tmpdir(), `paybridge-no-such-pays-${process.pid}`);
    const s = spawnApi(
      await env({
        PAYS_DIR: missing,
        API_KEYS: 'service:startup-test-service-key',
        PUBLIC_BASE_URL: 'https://pay.example.com',
      }),
    );
    started.push(s);
    const { code } = await s.exited;
    expect(code).not.toBe(0);
    expect(s.output()).toContain('PayBridge cannot start');
    expect(s.output()).toContain(missing);
    expect(s.output()).not.toContain('sandbox mode');
    expect(s.output()).not.toContain('startup-test-service-key');
  });

  it('API_KEYS with no channel configured stops the start unless PAY_SANDBOX=true', async () => {
    const s = spawnApi(await env({ API_KEYS: 'service:startup-test-service-key' }));
    started.push(s);
    const { code } = await s.exited;
    expect(code).not.toBe(0);
    expect(s.output()).toMatch(/API_KEYS is set.*PAY_SANDBOX=true/);
  });

  it('a bare start runs the sandbox', async () => {
    const s = spawnApi(await env({}));
    started.push(s);
    await until(() => Promise.resolve(s.output().includes('PayBridge listening') ? true : undefined), 30_000);
    expect(s.output()).toContain('sandbox mode');
    expect(s.output()).toContain('Sandbox API keys');
  });

  (process.env['DATABASE_URL'] ? it.skip : it)(
    'embedded: after kill -9 a restart on the same DATA_DIR takes over the lock',
    async () => {
      const base = await env({});
      const first = spawnApi(base);
      started.push(first);
      await until(() => Promise.resolve(first.output().includes('PayBridge listening') ? true : undefined), 30_000);
      first.child.kill('SIGKILL');
      await first.exited;
      const second = spawnApi({ ...base, PORT: String(await freePort()) });
      started.push(second);
      await until(() => Promise.resolve(second.output().includes('PayBridge listening') ? true : undefined), 30_000);
      // And the live second process keeps a third one out.
      const third = spawnApi({ ...base, PORT: String(await freePort()) });
      started.push(third);
      const { code } = await third.exited;
      expect(code).not.toBe(0);
      expect(third.output()).toContain(`in use by process ${second.child.pid}`);
    },
  );
});
