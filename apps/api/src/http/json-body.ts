import type { NextFunction, Request, RequestHandler, Response } from 'express';
import express from 'express';

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

/**
 * The JSON body parser of the API (express.json's contract: UTF-8 only, strict, `{}` for an empty
 * body, the same error types for the error handler) with money fields read from their text.
 */
export function jsonBodyParser(limit: number): RequestHandler {
  const text = express.text({ type: JSON_TYPES, limit, defaultCharset: 'utf-8' });
  return (req: Request, res: Response, next: NextFunction): void => {
    const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(req.headers['content-type'] ?? '')?.[1];
    if (charset !== undefined && !charset.toLowerCase().startsWith('utf-') && req.is(JSON_TYPES)) {
      next(parseError(`unsupported charset "${charset.toUpperCase()}"`, 415, 'charset.unsupported'));
      return;
    }
    text(req, res, (err?: unknown) => {
      if (err !== undefined) {
        next(err);
        return;
      }
      const body: unknown = req.body;
      if (typeof body !== 'string') {
        next();
        return;
      }
      const src = body.startsWith('\uFEFF') ? body.slice(1) : body;
      if (src.length === 0) {
        req.body = {};
        next();
        return;
      }
      let at = 0;
      while (at < src.length && isWs(src.charCodeAt(at))) at += 1;
      const first = src[at];
      if (first !== '{' && first !== '[') {
        next(parseError('request body is not a JSON object or array'));
        return;
      }
      try {
        req.body = JSON.parse(first === '{' ? quoteMoneyLiterals(src) : src) as unknown;
      } catch {
        next(parseError('request body is not valid JSON'));
        return;
      }
      next();
    });
  };
}
