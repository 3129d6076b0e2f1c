import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';

export type LogFormat = 'json' | 'pretty';

/**
 * Field names that hold secrets anywhere in a logged object: API keys, private keys, the WeChat API
 * secret, Alipay+ access tokens, signatures, cookies. Objects that hold a `Secret` (secret.ts) already
 * print `[secret]`; these names are the net under that. Matched without regard to letter case, at any
 * depth the scrub walks (four levels), in the arguments of a log call and in a child logger's bindings.
 */
export const SECRET_FIELDS: ReadonlySet<string> = new Set(
  [
    'authorization',
    'cookie',
    'set-cookie',
    'x-api-key',
    'apiKey',
    'apiSecret',
    'secret',
    'secrets',
    'privateKey',
    'private_key',
    'pfx',
    'pfxPassword',
    'password',
    'token',
    'accessToken',
    'access_token',
    'refreshToken',
    'refresh_token',
    'authCode',
    'auth_code',
    'sign',
    'signature',
    'paySign',
  ].map((f) => f.toLowerCase()),
);

const CENSOR = '[redacted]';

const TEXT_RULES: ReadonlyArray<[RegExp, string]> = [
  // PEM blocks (private keys, certificates) and long base64 runs (bare DER keys, RSA signatures).
  [/-----BEGIN [A-Z0-9 ]+-----[\s\S]*?(-----END [A-Z0-9 ]+-----|$)/g, '[redacted pem]'],
  [/[A-Za-z0-9+/_-]{120,}={0,2}/g, '[redacted base64]'],
  // Bearer keys, and signature fields in query strings, headers, XML and JSON.
  [/(Bearer\s+)\S+/gi, '$1[redacted]'],
  [/(\b(?:sign|signature|paySign|access_token|accessToken|token)\s*[=:]\s*"?)[^"&,;\s<]+/gi, '$1[redacted]'],
  [/(<(sign|paySign)>)(?:<!\[CDATA\[)?[^<\]]*(?:\]\]>)?(<\/\2>)/gi, '$1[redacted]$3'],
];

const MAYBE_SECRET = /bearer|sign|token|-----BEGIN/i;

/** Masks what looks like a key, a signature or a bearer token in free text (log messages, error texts). */
export function scrubText(text: string): string {
  // Every rule needs one of these words or a run of 120 characters: most texts (routes, ids, messages)
  // have neither and skip the five replacements.
  if (text.length < 120 && !MAYBE_SECRET.test(text)) return text;
  let out = text;
  for (const [re, to] of TEXT_RULES) out = out.replace(re, to);
  return out;
}

/**
 * One walk over what is logged (issue 14: pino's `redact` with a wildcard path per field and depth
 * cloned the object once per path, ~10% of the api's CPU per request): secret fields censored, texts
 * scrubbed, four levels deep. Errors keep their type with scrubbed message and stack; objects with
 * `toJSON` are walked as what they serialise to.
 */
function scrubValue(v: unknown, depth: number): unknown {
  if (typeof v === 'string') return scrubText(v);
  if (depth > 3 || v === null || typeof v !== 'object') return v;
  if (v instanceof Error) {
    const copy = new Error(scrubText(v.message));
    copy.name = v.name;
    copy.stack = v.stack === undefined ? undefined : scrubText(v.stack);
    return copy;
  }
  if (Array.isArray(v)) return v.map((x) => scrubValue(x, depth + 1));
  const toJSON = (v as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') {
    let json: unknown;
    try {
      json = toJSON.call(v);
    } catch {
      return '[unserialisable]'; // a log line never fails the work it reports on
    }
    if (json !== v) return scrubValue(json, depth);
  }
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) {
    out[k] = SECRET_FIELDS.has(k.toLowerCase()) ? CENSOR : scrubValue((v as Record<string, unknown>)[k], depth + 1);
  }
  return out;
}

export interface LogSettings {
  readonly level: string;
  readonly format: LogFormat;
  /** Where lines go (tests pass a stream); stdout by default. */
  readonly destination?: DestinationStream;
  /** `app` field on every line: `api` or `worker`. */
  readonly app: string;
}

/** pino options shared by the api and the worker: JSON lines, ISO time, redaction, scrubbed texts. */
export function pinoOptions(s: Pick<LogSettings, 'level' | 'app'>): LoggerOptions {
  return {
    level: s.level,
    base: { app: s.app, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    messageKey: 'msg',
    formatters: { level: (label) => ({ level: label }) },
    hooks: {
      logMethod(args, method) {
        method.apply(this, args.map((a) => scrubValue(a, 0)) as Parameters<typeof method>);
      },
    },
  };
}

/** The stream lines go to: the given one, stdout, or a human formatter when LOG_FORMAT=pretty. */
export function logDestination(s: LogSettings): DestinationStream {
  if (s.destination) return s.format === 'pretty' ? prettyStream(s.destination) : s.destination;
  // Asynchronous writes (issue 14: a write(2) per line was ~9% of the api's CPU under load): lines that
  // come while a write is in flight go out together in the next one; at a low rate each line still
  // leaves at once. pino writes what is buffered synchronously when the process exits.
  const out = pino.destination({ fd: 1, sync: false });
  return s.format === 'pretty' ? prettyStream(out) : out;
}

export function createPinoLogger(s: LogSettings): Logger {
  const logger = pino(pinoOptions(s), logDestination(s));
  // A child's bindings are walked as a log call's arguments are (pino applies no formatter to them).
  // Children are made with Object.create(parent), so every descendant finds this `child` first.
  const child = Object.getPrototypeOf(logger) as Pick<Logger, 'child'>;
  logger.child = function (this: Logger, bindings: Record<string, unknown>, options?: object) {
    return child.child.call(this, scrubValue(bindings, 0) as Record<string, unknown>, options);
  } as Logger['child'];
  return logger;
}

/**
 * pino-pretty when it is installed (a dev dependency: development machines), else a small built-in
 * formatter: `time LEVEL [context] message {fields}`. Neither changes what is redacted.
 */
function prettyStream(to: DestinationStream): DestinationStream {
  try {
    const require = createRequire(import.meta.url);
    const pretty = require('pino-pretty') as (o: Record<string, unknown>) => DestinationStream;
    return pretty({ destination: to, colorize: false, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,app' });
  } catch {
    return new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString('utf8').split('\n')) {
          if (line) to.write(`${formatLine(line)}\n`);
        }
        done();
      },
    });
  }
}

export function formatLine(line: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { time, level, msg, context, app: _app, pid: _pid, ...rest } = o;
  const text = (v: unknown): string => (typeof v === 'string' ? v : v === undefined ? '' : JSON.stringify(v));
  const head = `${text(time).slice(11, 23)} ${text(level).toUpperCase().padEnd(5)}`;
  const ctx = context ? ` [${text(context)}]` : '';
  const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
  return `${head}${ctx} ${text(msg)}${extra}`;
}
