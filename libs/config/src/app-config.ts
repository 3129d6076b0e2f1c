import { createHash } from 'node:crypto';
import { ConfigError } from '#common';

export type Role = 'service' | 'viewer' | 'operator' | 'admin';
export const ROLES: readonly Role[] = ['service', 'viewer', 'operator', 'admin'];

export interface ApiKey {
  readonly role: Role;
  /**
   * A short, non-secret label for logs and for scoping Idempotency-Keys: the role and 12 hex digits of
   * the secret's SHA-256, so it stays the same when API_KEYS is reordered.
   */
  readonly label: string;
  readonly secret: string;
}

/** Typed configuration. `process.env` is read here and nowhere else (STYLE.md). */
export interface AppConfig {
  readonly nodeEnv: string;
  readonly port: number;
  readonly host: string;
  readonly appName: string;
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly dbMigrate: boolean;
  readonly paysDir: string;
  /** PAYS_DIR was given explicitly: a folder that does not exist then stops the start. */
  readonly paysDirSet: boolean;
  readonly publicBaseUrl: string | undefined;
  /** undefined: decide from the pays/ folder (sandbox when it holds no instance). */
  readonly paySandbox: boolean | undefined;
  readonly apiKeys: readonly ApiKey[] | undefined;
  readonly orderTimeoutMinutes: number;
  readonly sweepIntervalSeconds: number;
  /** How long a sweeper's claim on an order lasts; a crashed sweeper's orders come back after it. */
  readonly sweepLeaseSeconds: number;
  readonly sweepBatchSize: number;
  /** Orders one process settles at once (each is a channel round trip or two). */
  readonly sweepConcurrency: number;
  readonly jobsEnabled: boolean;
  readonly bodyLimitBytes: number;
  readonly idempotencyTtlHours: number;
  /** Refund a second payment, or a payment after the order ended, by itself (events only when false). */
  readonly autoRefund: boolean;
  /** Body limit of the unauthenticated notify routes (real notifies are a few KiB). */
  readonly notifyBodyLimitBytes: number;
  /** Service-API requests one API key may make per minute, counted across instances; 0 = no limit. */
  readonly rateLimitPerMinute: number;
  /** Refused notifies (unknown instance, bad signature) one source IP may send per minute; 0 = no limit. */
  readonly notifyRefusedPerMinute: number;
  /** Express `trust proxy` hop count: how many reverse proxies' X-Forwarded-For to believe for the source IP. */
  readonly trustProxyHops: number;
  /** Embedded database: requests that may wait for its single connection; more answer 503. */
  readonly embeddedQueueMax: number;
  /** Embedded database: how long a request waits for the connection before it answers 503. */
  readonly embeddedQueueTimeoutMs: number;
}

type Env = Readonly<Record<string, string | undefined>>;

export function loadAppConfig(env: Env = process.env): AppConfig {
  return {
    nodeEnv: env['NODE_ENV'] ?? 'development',
    port: int(env, 'PORT', 3000, 0, 65535),
    host: env['HOST'] ?? '127.0.0.1',
    appName: pattern(env, 'APP_NAME', 'paybridge', /^[A-Za-z0-9_-]{1,64}$/),
    databaseUrl: nonEmpty(env['DATABASE_URL']),
    dataDir: env['DATA_DIR'] ?? './.data',
    dbMigrate: bool(env, 'DB_MIGRATE', true),
    paysDir: nonEmpty(env['PAYS_DIR']) ?? './pays',
    paysDirSet: nonEmpty(env['PAYS_DIR']) !== undefined,
    publicBaseUrl: url(env, 'PUBLIC_BASE_URL'),
    paySandbox: env['PAY_SANDBOX'] === undefined ? undefined : bool(env, 'PAY_SANDBOX', false),
    apiKeys: parseApiKeys(env['API_KEYS']),
    orderTimeoutMinutes: int(env, 'ORDER_TIMEOUT_MINUTES', 30, 1, 60 * 24 * 15),
    sweepIntervalSeconds: int(env, 'SWEEP_INTERVAL_SECONDS', 30, 1, 86400),
    sweepLeaseSeconds: int(env, 'SWEEP_LEASE_SECONDS', 120, 1, 3600),
    sweepBatchSize: int(env, 'SWEEP_BATCH_SIZE', 100, 1, 10000),
    sweepConcurrency: int(env, 'SWEEP_CONCURRENCY', 8, 1, 512),
    jobsEnabled: bool(env, 'JOBS_ENABLED', true),
    bodyLimitBytes: int(env, 'BODY_LIMIT_BYTES', 64 * 1024, 1024, 10 * 1024 * 1024),
    idempotencyTtlHours: int(env, 'IDEMPOTENCY_TTL_HOURS', 24, 24, 24 * 30),
    autoRefund: bool(env, 'AUTO_REFUND', true),
    notifyBodyLimitBytes: int(env, 'NOTIFY_BODY_LIMIT_BYTES', 16 * 1024, 1024, 1024 * 1024),
    rateLimitPerMinute: int(env, 'RATE_LIMIT_PER_MINUTE', 1200, 0, 1_000_000),
    notifyRefusedPerMinute: int(env, 'NOTIFY_REFUSED_PER_MINUTE', 120, 0, 1_000_000),
    trustProxyHops: int(env, 'TRUST_PROXY_HOPS', 0, 0, 10),
    embeddedQueueMax: int(env, 'EMBEDDED_QUEUE_MAX', 100, 1, 100_000),
    embeddedQueueTimeoutMs: int(env, 'EMBEDDED_QUEUE_WAIT_MS', 5000, 100, 120_000),
  };
}

export function apiKey(role: Role, secret: string): ApiKey {
  return { role, secret, label: `${role}:${createHash('sha256').update(secret).digest('hex').slice(0, 12)}` };
}

/** `API_KEYS`: comma-separated `role:secret` pairs (API.md §8). Errors never echo a secret. */
export function parseApiKeys(raw: string | undefined): ApiKey[] | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const keys: ApiKey[] = [];
  raw.split(',').forEach((pair, index) => {
    const colon = pair.indexOf(':');
    const role = pair.slice(0, colon).trim();
    const secret = pair.slice(colon + 1).trim();
    if (colon < 0 || !(ROLES as readonly string[]).includes(role)) {
      throw new ConfigError(`API_KEYS entry #${index + 1}: role must be one of ${ROLES.join(', ')}`);
    }
    if (secret.length < 16) {
      throw new ConfigError(`API_KEYS entry #${index + 1} (${role}): the secret must be at least 16 characters`);
    }
    if (keys.some((k) => k.secret === secret)) {
      throw new ConfigError(`API_KEYS entry #${index + 1} (${role}): the same secret is given twice`);
    }
    keys.push(apiKey(role as Role, secret));
  });
  return keys;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v;
}

function int(env: Env, name: string, dflt: number, min: number, max: number): number {
  const v = nonEmpty(env[name]);
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new ConfigError(`${name} must be an integer between ${min} and ${max}`);
  }
  return Number(v);
}

function bool(env: Env, name: string, dflt: boolean): boolean {
  const v = nonEmpty(env[name])?.toLowerCase();
  if (v === undefined) return dflt;
  if (v === 'true' || v === '1' || v === 'yes') return true;
  if (v === 'false' || v === '0' || v === 'no') return false;
  throw new ConfigError(`${name} must be true or false`);
}

function pattern(env: Env, name: string, dflt: string, re: RegExp): string {
  const v = nonEmpty(env[name]) ?? dflt;
  if (!re.test(v)) throw new ConfigError(`${name} has characters that are not allowed`);
  return v;
}

function url(env: Env, name: string): string | undefined {
  const v = nonEmpty(env[name]);
  if (v === undefined) return undefined;
  try {
    const u = new URL(v);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
  } catch {
    throw new ConfigError(`${name} must be an http(s) URL`);
  }
  return v.replace(/\/+$/, '');
}
