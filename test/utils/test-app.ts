import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplication, LogLevel } from '@nestjs/common';
import type { DestinationStream } from 'pino';
import type { Clock } from '#common';
import { type ApiKey, type AppConfig, apiKey, loadAppConfig } from '#config';
import { type ChannelInstanceConfig, channelProviders } from '#channels';
import { PublicUrl } from '#payments';
import type { Sandbox } from '#sandbox';
import { createApiApp } from '../../apps/api/src/app.factory.js';

export const KEYS = {
  service: 'test-service-key-0123456789',
  viewer: 'test-viewer-key-0123456789',
  operator: 'test-operator-key-0123456789',
  admin: 'test-admin-key-0123456789',
} as const;

export const API_KEYS: ApiKey[] = Object.entries(KEYS).map(([role, secret]) => apiKey(role as ApiKey['role'], secret));

export const auth = (role: keyof typeof KEYS = 'service'): Record<string, string> => ({
  Authorization: `Bearer ${KEYS[role]}`,
});

export interface TestApp {
  readonly app: INestApplication;
  readonly baseUrl: string;
  readonly config: AppConfig;
  readonly sandbox: Sandbox | undefined;
  close(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface BootOptions {
  /** Mount the three simulators and configure their instances (sandbox mode). Default true. */
  readonly sandbox?: boolean;
  readonly env?: Record<string, string>;
  readonly instances?: ChannelInstanceConfig[];
  readonly dataDir?: string;
  readonly notifyRetryDelaysMs?: number[];
  readonly wechatMinCloseAgeMs?: number;
  readonly clock?: Clock;
  /** Merged into every sandbox instance's config (e.g. a short `timeoutMs`). */
  readonly sandboxInstanceConfig?: Record<string, unknown>;
  /** Log levels of the app (default: errors only) and where its lines go (default: stdout). */
  readonly logger?: false | LogLevel[];
  readonly logDestination?: DestinationStream;
  /** Keys instead of API_KEYS (e.g. named ones for the audit log). */
  readonly apiKeys?: ApiKey[];
}

/**
 * Boots the real api app on a random loopback port: PostgreSQL when DATABASE_URL is set (CI), the
 * embedded database in a fresh temporary directory otherwise.
 */
export async function bootApp(opts: BootOptions = {}): Promise<TestApp> {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const config = loadAppConfig({
    DATABASE_URL: process.env['DATABASE_URL'],
    DATA_DIR: opts.dataDir ?? mkdtempSync(join(tmpdir(), 'paybridge-e2e-')),
    PORT: String(port),
    PUBLIC_BASE_URL: baseUrl,
    JOBS_ENABLED: 'false',
    // The per-key limit counts in the database, so on PostgreSQL every app of the suite shares the
    // service key's window: a fast server sends more than the default 1,200 a minute over all test
    // files. Off unless a test sets it (limits.e2e-spec.ts does).
    RATE_LIMIT_PER_MINUTE: '0',
    ...opts.env,
  });
  const sandbox =
    opts.sandbox === false
      ? undefined
      : await (
          await import('#sandbox')
        ).startSandbox({
          baseUrl,
          notifyRetryDelaysMs: opts.notifyRetryDelaysMs ?? [100, 200, 400, 800, 1600],
          ...(opts.wechatMinCloseAgeMs === undefined ? {} : { wechatMinCloseAgeMs: opts.wechatMinCloseAgeMs }),
        });
  const app = await createApiApp({
    config,
    apiKeys: opts.apiKeys ?? API_KEYS,
    channelProviders: channelProviders(),
    instances: [
      ...(opts.instances ?? []),
      ...(sandbox?.instances ?? []).map((i) =>
        opts.sandboxInstanceConfig ? { ...i, config: { ...i.config, ...opts.sandboxInstanceConfig } } : i,
      ),
    ],
    mounts: sandbox?.mounts,
    clock: opts.clock,
    logger: opts.logger ?? ['error'],
    logDestination: opts.logDestination,
  });
  await app.listen(port, '127.0.0.1');
  app.get(PublicUrl).setListeningUrl(baseUrl);
  return {
    app,
    baseUrl,
    config,
    sandbox,
    async close() {
      sandbox?.close();
      await app.close();
    },
  };
}

let seq = 0;
/** A unique orderId per call (tests share one PostgreSQL database in CI). */
export function uniqueOrderId(prefix = 'T'): string {
  seq += 1;
  return `${prefix}${Date.now().toString(36)}${process.pid.toString(36)}${seq.toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`.slice(
    0,
    32,
  );
}

export async function until<T>(fn: () => Promise<T | undefined>, timeoutMs = 10_000, stepMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
