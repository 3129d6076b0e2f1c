import { PayError } from '#common';

/** Seconds a client is asked to wait (Retry-After) when the database is unreachable or saturated. */
export const DB_RETRY_AFTER_SECONDS = 2;

/** Socket-level failures reaching PostgreSQL (node's errno codes). */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * SQLSTATEs that mean "the server is going away or not there yet", not "your statement is wrong":
 * 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now, 53300 too_many_connections,
 * and class 08 (connection exception).
 */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300']);

/** Messages of node-postgres, pg-pool and PGlite that carry no code. */
const UNAVAILABLE_MESSAGES = [
  /connection terminated/i, // "Connection terminated unexpectedly", "... due to connection timeout"
  /timeout exceeded when trying to connect/i, // pg-pool: no client within connectionTimeoutMillis
  /client has encountered a connection error and is not queryable/i,
  /client was closed and is not queryable/i,
  /connection (?:is )?not open/i,
  /PGlite is closed/i,
];

/**
 * True when `err` (or what it wraps: TypeORM's QueryFailedError.driverError, an Error's cause) says
 * the database could not be reached, not that a statement failed. The one place that decides it: the
 * HTTP error filter answers 503 SERVICE_UNAVAILABLE for these, and notifies answer the channel's
 * failure reply so the provider retries.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const seen = new Set<unknown>();
  let current: unknown = err;
  for (let depth = 0; depth < 6 && current !== null && typeof current === 'object' && !seen.has(current); depth++) {
    seen.add(current);
    if (current instanceof PayError) return current.code === 'SERVICE_UNAVAILABLE';
    const e = current as {
      code?: unknown;
      message?: unknown;
      driverError?: unknown;
      cause?: unknown;
      errors?: unknown;
    };
    // AggregateError: every address of the host refused (IPv4 and IPv6 of localhost).
    if (Array.isArray(e.errors) && e.errors.some((inner) => isDatabaseUnavailable(inner))) return true;
    if (typeof e.code === 'string') {
      if (NETWORK_CODES.has(e.code) || UNAVAILABLE_SQLSTATES.has(e.code) || /^08[0-9A-Z]{3}$/.test(e.code)) return true;
    }
    if (typeof e.message === 'string' && UNAVAILABLE_MESSAGES.some((re) => re.test(e.message as string))) return true;
    current = e.driverError ?? e.cause;
  }
  return false;
}

/** The error a caller sees when the database cannot serve it now. */
export function databaseUnavailable(message = 'the database is unavailable; retry shortly'): PayError {
  return new PayError('SERVICE_UNAVAILABLE', message);
}
