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
  /**
   * Who the key is in the audit log: the name given in API_KEYS (`name=role:secret`), else the label.
   */
  readonly name: string;
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
  /** Endpoints that receive every merchant event (API.md §10), besides each order's notifyUrl. */
  readonly webhookUrls: readonly string[];
  /** HMAC secrets of PayBridge-Signature, one `v1=` each (rotation). */
  readonly webhookSecrets: readonly string[];
  /** Allows http and private, loopback and link-local webhook addresses (development; the sandbox). */
  readonly webhookAllowPrivate: boolean;
  /** Signs the admin console's session cookies; random per process when unset (sign in again after a restart). */
  readonly adminSessionSecret: string | undefined;
  /** How long an admin console session lasts. */
  readonly adminSessionMinutes: number;
  /** Events whose deliveries are all finished are removed after this many days. */
  readonly eventRetentionDays: number;
  /** Delays between delivery tries, in ms; the last repeats (WEBHOOK_RETRY_SCHEDULE, e.g. `5s,30s,2m`). */
  readonly webhookRetryScheduleMs: readonly number[];
  /** How long a delivery is retried before it is `failed` (WEBHOOK_RETRY_FOR, default 3d). */
  readonly webhookRetryForMs: number;
  /** How long a publisher's claim on a delivery lasts (longer than the 10 s request timeout). */
  readonly webhookLeaseSeconds: number;
  /** Runs the webhook publisher in this process (api and worker; default true). */
  readonly webhookPublisherEnabled: boolean;
  /** pino level: fatal, error, warn, info, debug, trace or silent (LOG_LEVEL, default info). */
  readonly logLevel: LogLevelName;
  /** `json` (one JSON object per line, the default) or `pretty` (coloured lines for a terminal). */
  readonly logFormat: 'json' | 'pretty';
  /** How long /health/ready waits for the database before it answers 503 (READY_DB_TIMEOUT_MS). */
  readonly readyDbTimeoutMs: number;
  /** At shutdown, how long /health/ready answers 503 before the listener closes (SHUTDOWN_GRACE_MS). */
  readonly shutdownGraceMs: number;
  /** Serves GET /openapi.json and Swagger UI at /docs (DOCS_ENABLED, default true). */
  readonly docsEnabled: boolean;
}

export type LogLevelName = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export const LOG_LEVELS: readonly LogLevelName[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

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
    webhookUrls: list(env, 'WEBHOOK_URLS').map((v, i) => webhookUrl(v, i)),
    webhookSecrets: webhookSecrets(env),
    webhookAllowPrivate: bool(env, 'WEBHOOK_ALLOW_PRIVATE', false),
    adminSessionSecret: sessionSecret(env),
    adminSessionMinutes: int(env, 'ADMIN_SESSION_MINUTES', 480, 5, 7 * 24 * 60),
    eventRetentionDays: int(env, 'EVENT_RETENTION_DAYS', 30, 1, 3650),
    webhookRetryScheduleMs: durations(env, 'WEBHOOK_RETRY_SCHEDULE', '5s,30s,2m,10m,30m,1h,3h'),
    webhookRetryForMs: durations(env, 'WEBHOOK_RETRY_FOR', '3d')[0] ?? 3 * 86_400_000,
    webhookLeaseSeconds: int(env, 'WEBHOOK_LEASE_SECONDS', 60, 15, 3600),
    webhookPublisherEnabled: bool(env, 'WEBHOOK_PUBLISHER_ENABLED', true),
    logLevel: oneOf(env, 'LOG_LEVEL', 'info', LOG_LEVELS),
    logFormat: oneOf(env, 'LOG_FORMAT', 'json', ['json', 'pretty'] as const),
    readyDbTimeoutMs: int(env, 'READY_DB_TIMEOUT_MS', 2000, 100, 60_000),
    shutdownGraceMs: int(env, 'SHUTDOWN_GRACE_MS', 0, 0, 120_000),
    docsEnabled: bool(env, 'DOCS_ENABLED', true),
  };
}

export function apiKey(role: Role, secret: string, name?: string): ApiKey {
  const label = `${role}:${createHash('sha256').update(secret).digest('hex').slice(0, 12)}`;
  return { role, secret, label, name: name ?? label };
}

/** A key's optional name in API_KEYS: letters, digits and `._@-`, up to 64. */
export const API_KEY_NAME = /^[A-Za-z0-9._@-]{1,64}$/;

/**
 * `API_KEYS`: comma-separated `role:secret` pairs (API.md §8), each optionally named for the audit log
 * as `name=role:secret` (e.g. `alice=operator:s3cr3t...`). Errors never echo a secret.
 */
export function parseApiKeys(raw: string | undefined): ApiKey[] | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const keys: ApiKey[] = [];
  raw.split(',').forEach((entry, index) => {
    let pair = entry;
    let name: string | undefined;
    const colonAt = entry.indexOf(':');
    const eq = entry.indexOf('=');
    // `name=` before the role (a role never holds `=`); a `=` inside the secret is left alone.
    if (eq >= 0 && (colonAt < 0 || eq < colonAt)) {
      name = entry.slice(0, eq).trim();
      pair = entry.slice(eq + 1);
      if (!API_KEY_NAME.test(name)) {
        throw new ConfigError(`API_KEYS entry #${index + 1}: a name must be 1 to 64 of letters, digits and ._@-`);
      }
    }
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
    if (name !== undefined && keys.some((k) => k.name === name)) {
      throw new ConfigError(`API_KEYS entry #${index + 1} (${role}): the name ${name} is given twice`);
    }
    keys.push(apiKey(role as Role, secret, name));
  });
  return keys;
}

function sessionSecret(env: Env): string | undefined {
  const v = nonEmpty(env['ADMIN_SESSION_SECRET']);
  if (v !== undefined && v.length < 32) throw new ConfigError('ADMIN_SESSION_SECRET must be at least 32 characters');
  return v;
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

function oneOf<T extends string>(env: Env, name: string, dflt: T, allowed: readonly T[]): T {
  const v = nonEmpty(env[name])?.trim().toLowerCase() ?? dflt;
  if (!(allowed as readonly string[]).includes(v))
    throw new ConfigError(`${name} must be one of ${allowed.join(', ')}`);
  return v as T;
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

function list(env: Env, name: string): string[] {
  return (nonEmpty(env[name]) ?? '')
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '');
}

/** Syntax only here; the scheme and address rules are the webhook URL guard's, checked at start-up. */
function webhookUrl(v: string, index: number): string {
  try {
    const u = new URL(v);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
    if (u.username || u.password) throw new Error('credentials');
  } catch {
    throw new ConfigError(`WEBHOOK_URLS entry #${index + 1} must be an http(s) URL without credentials`);
  }
  return v;
}

/** `WEBHOOK_SECRETS`: comma-separated, each at least 16 characters. Errors never echo a secret. */
function webhookSecrets(env: Env): string[] {
  const secrets = list(env, 'WEBHOOK_SECRETS');
  secrets.forEach((s, i) => {
    if (s.length < 16) throw new ConfigError(`WEBHOOK_SECRETS entry #${i + 1} must be at least 16 characters`);
  });
  return secrets;
}

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Comma-separated durations with a unit (`100ms`, `5s`, `2m`, `1h`, `3d`), each above zero. */
function durations(env: Env, name: string, dflt: string): number[] {
  const raw = nonEmpty(env[name]) ?? dflt;
  return raw.split(',').map((part) => {
    const m = /^\s*(\d{1,9})(ms|s|m|h|d)\s*$/.exec(part);
    const ms = m ? Number(m[1]) * (UNIT_MS[m[2] ?? ''] ?? 0) : 0;
    if (!(ms > 0)) throw new ConfigError(`${name} must be comma-separated durations such as 5s,30s,2m,1h,3d`);
    return ms;
  });
}
