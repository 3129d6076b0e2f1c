import type { IncomingMessage } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import type { FastifyInstance, FastifyRequest } from 'fastify';

/** Media types read as JSON (as express.json did). */
export const JSON_TYPES = ['application/json', 'application/*+json'];

/**
 * Top-level body fields that carry money. Their JSON number literals are handed on as the exact
 * decimal TEXT the client sent (a string), so `parseAmount` judges `99.999999999999999`, `1e2` and `-0`
 * as written instead of the float JSON.parse would make of them (API.md §3). Nested values
 * (`metadata.amount`, ...) are the client's own data and stay untouched.
 */
export const MONEY_FIELDS: ReadonlySet<string> = new Set(['amount']);

/** RFC 8259 number grammar: anything else is left as is, so JSON.parse refuses it as before. */
const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

/**
 * Rewrites the number literals of `fields` in a top-level JSON object into strings holding the literal
 * text, in one linear pass; everything else is copied byte for byte and then parsed by the native
 * JSON.parse. Only valid JSON is given a meaning: on invalid input the output stays invalid (a number
 * literal that breaks the grammar is not quoted), so JSON.parse still refuses it.
 *
 * Why not a library (lossless-json, json-bigint): they parse the whole document in JavaScript and hand
 * back wrapper objects for every number, which class-validator, the idempotency hash and metadata
 * storage would all have to learn; this pass touches one field and keeps the native parser (measured:
 * docs/payments.md, "Exact amounts").
 */
export function quoteMoneyLiterals(text: string, fields: ReadonlySet<string> = MONEY_FIELDS): string {
  let depth = 0; // containers open at the cursor
  let topIsObject = false;
  let out = '';
  let copied = 0;
  let i = 0;
  let pendingKey: string | undefined; // a key at depth 1 whose value comes next
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const start = i;
      i = endOfString(text, i);
      if (depth === 1 && topIsObject) {
        let j = i;
        while (j < n && isWs(text.charCodeAt(j))) j += 1;
        if (text.charCodeAt(j) === COLON) {
          try {
            // The decoded name, so "\u0061mount" is "amount" as it will be for JSON.parse.
            pendingKey = JSON.parse(text.slice(start, i)) as string;
          } catch {
            pendingKey = undefined;
          }
          i = j + 1;
          continue;
        }
      }
      pendingKey = undefined;
      continue;
    }
    if (c === MINUS || (c >= ZERO && c <= NINE)) {
      const start = i;
      while (i < n && isNumberChar(text.charCodeAt(i))) i += 1;
      if (pendingKey !== undefined && fields.has(pendingKey)) {
        const literal = text.slice(start, i);
        if (JSON_NUMBER.test(literal)) {
          out += `${text.slice(copied, start)}"${literal}"`;
          copied = i;
        }
      }
      pendingKey = undefined;
      continue;
    }
    if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (depth === 0) topIsObject = c === OPEN_BRACE;
      depth += 1;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth -= 1;
    }
    if (!isWs(c)) pendingKey = undefined;
    i += 1;
  }
  return copied === 0 ? text : out + text.slice(copied);
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function isNumberChar(c: number): boolean {
  return (c >= ZERO && c <= NINE) || c === MINUS || c === 0x2b || c === 0x2e || c === 0x45 || c === 0x65;
}

/** Index just past the string starting at `start` (a quote); the text's end on an unterminated one. */
function endOfString(text: string, start: number): number {
  let i = start + 1;
  for (;;) {
    const q = text.indexOf('"', i);
    if (q < 0) return text.length;
    let backslashes = 0;
    while (text.charCodeAt(q - 1 - backslashes) === BACKSLASH) backslashes += 1;
    if (backslashes % 2 === 0) return q + 1;
    i = q + 1;
  }
}

function parseError(message: string, status = 400, type = 'entity.parse.failed'): Error {
  return Object.assign(new Error(message), { status, statusCode: status, type, expose: true });
}

export interface BodyParserOptions {
  /** BODY_LIMIT_BYTES: JSON bodies. */
  readonly limit: number;
  /** NOTIFY_BODY_LIMIT_BYTES: the raw bodies of notify routes. */
  readonly notifyLimit: number;
  /** Route templates whose bodies stay raw bytes (providers sign them), whatever their content type. */
  readonly rawRoutes: readonly string[];
  /** Route prefix whose urlencoded forms are parsed (the admin console). */
  readonly formPrefix: string;
}

const FORM_LIMIT = 16 * 1024;
const FORM_PARAMETER_LIMIT = 50;

/** The media type of a Content-Type header, lower case, without parameters. */
function mediaTypeOf(header: string | undefined): string {
  return (header ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

function isJsonType(type: string): boolean {
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

/**
 * Reads a whole body up to `limit` bytes: a declared Content-Length over it is refused before reading,
 * as is a stream that grows past it (413 PAYLOAD_TOO_LARGE, the error filter's `entity.too.large`).
 */
function readBody(req: IncomingMessage, limit: number, done: (err: Error | null, body?: Buffer) => void): void {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    done(parseError('request body is too large', 413, 'entity.too.large'));
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let finished = false;
  const finish = (err: Error | null, body?: Buffer): void => {
    if (finished) return;
    finished = true;
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('error', onError);
    done(err, body);
  };
  const onData = (chunk: Buffer): void => {
    size += chunk.length;
    if (size > limit) {
      req.resume();
      finish(parseError('request body is too large', 413, 'entity.too.large'));
      return;
    }
    chunks.push(chunk);
  };
  const onEnd = (): void => finish(null, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
  const onError = (err: Error): void =>
    finish(parseError(`request body could not be read: ${err.message}`, 400, 'request.aborted'));
  req.on('data', onData);
  req.on('end', onEnd);
  req.on('error', onError);
}

/** JSON with money fields kept as their literal text (express.json's contract: strict, `{}` when empty). */
export function parseJsonBody(text: string): unknown {
  const src = text.startsWith('\uFEFF') ? text.slice(1) : text;
  if (src.length === 0) return {};
  let at = 0;
  while (at < src.length && isWs(src.charCodeAt(at))) at += 1;
  const first = src[at];
  if (first !== '{' && first !== '[') throw parseError('request body is not a JSON object or array');
  try {
    return JSON.parse(first === '{' ? quoteMoneyLiterals(src) : src) as unknown;
  } catch {
    throw parseError('request body is not valid JSON');
  }
}

/**
 * The API's only body parser, for every content type (Fastify's own JSON and text parsers are removed):
 * - notify routes (`rawRoutes`): the raw bytes, whatever the type, up to `notifyLimit`, because
 *   providers sign bytes;
 * - JSON (`application/json`, `application/*+json`), UTF-8 only (another charset is a 415, answered
 *   400 INVALID_PARAMS like a parse failure), up to `limit`, money fields read from their text;
 * - urlencoded forms under `formPrefix` (the admin console), 16 KiB, at most 50 fields;
 * - anything else is read (up to `limit`) and left unparsed, as Express left it.
 */
export function registerBodyParsers(fastify: FastifyInstance, opts: BodyParserOptions): void {
  const raw = new Set(opts.rawRoutes);
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', (req: FastifyRequest, payload: IncomingMessage, done) => {
    const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
    if (encoding !== 'identity') {
      // Compressed bodies are not inflated (Express did): refused, and nothing is read.
      payload.resume();
      done(parseError(`unsupported content encoding "${encoding.slice(0, 32)}"`, 415, 'encoding.unsupported'));
      return;
    }
    const route = req.routeOptions.url;
    if (route !== undefined && raw.has(route)) {
      readBody(payload, opts.notifyLimit, done);
      return;
    }
    const type = mediaTypeOf(req.headers['content-type']);
    if (isJsonType(type)) {
      const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(req.headers['content-type'] ?? '')?.[1];
      if (charset !== undefined && !charset.toLowerCase().startsWith('utf-')) {
        req.raw.resume();
        done(parseError(`unsupported charset "${charset.toUpperCase()}"`, 415, 'charset.unsupported'));
        return;
      }
      readBody(payload, opts.limit, (err, body) => {
        if (err || !body) {
          done(err);
          return;
        }
        try {
          done(null, parseJsonBody(body.toString('utf8')));
        } catch (e) {
          done(e as Error);
        }
      });
      return;
    }
    const path = req.url.split('?')[0] ?? '';
    if (
      type === 'application/x-www-form-urlencoded' &&
      (path === opts.formPrefix || path.startsWith(`${opts.formPrefix}/`))
    ) {
      readBody(payload, FORM_LIMIT, (err, body) => {
        if (err || !body) {
          done(err);
          return;
        }
        const text = body.toString('utf8');
        if (text.split('&').length > FORM_PARAMETER_LIMIT) {
          done(parseError('too many parameters', 413, 'parameters.too.many'));
          return;
        }
        done(null, { ...parseQuery(text, '&', '=', { maxKeys: FORM_PARAMETER_LIMIT }) });
      });
      return;
    }
    readBody(payload, opts.limit, (err) => done(err, undefined));
  });
}
