import { createPrivateKey, createPublicKey, createSign, createVerify, type KeyObject } from 'node:crypto';
import { PayError } from '#common';

/**
 * Alipay OpenAPI v2 RSA2 signing (PROTOCOLS.md §1.3, §1.4, §1.5, §1.9).
 *
 * Keys are parsed once into KeyObjects (STACK.md: a PEM string per call cuts signing speed by 3).
 * Nothing in this file ever puts key text into an error message or a log line.
 */

/** Request or notify parameters; undefined/null/'' values are left out of every string to sign. */
export type AlipayParams = Readonly<Record<string, string | undefined | null>>;

/** A key that could not be read. The message says what was expected, never what was given. */
export class AlipayKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AlipayKeyError';
  }
}

const PEM = /^-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)\r?\n?-----END \1-----\s*$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

interface KeyText {
  /** The PEM label, or undefined for a bare base64 key. */
  readonly label: string | undefined;
  readonly der: Buffer;
}

function readKeyText(text: string, what: string): KeyText {
  const trimmed = text.trim();
  const pem = PEM.exec(trimmed);
  const body = (pem ? (pem[2] ?? '') : trimmed).replace(/\s+/g, '');
  if (body.length === 0 || !BASE64.test(body)) {
    throw new AlipayKeyError(`${what} is neither PEM nor bare base64`);
  }
  return { label: pem?.[1], der: Buffer.from(body, 'base64') };
}

function firstThatParses<T>(attempts: ReadonlyArray<() => T>): T | undefined {
  for (const attempt of attempts) {
    try {
      return attempt();
    } catch {
      // Node's parse errors carry no key bytes, but they are dropped anyway: the caller words the error.
    }
  }
  return undefined;
}

function requireRsa(key: KeyObject | undefined, what: string, expected: string): KeyObject {
  if (!key) throw new AlipayKeyError(`${what} is not ${expected}`);
  if (key.asymmetricKeyType !== 'rsa') throw new AlipayKeyError(`${what} is not an RSA key`);
  return key;
}

/**
 * Loads an app private key: PEM (`RSA PRIVATE KEY` = PKCS#1, `PRIVATE KEY` = PKCS#8) or the bare base64
 * that Alipay's key tool hands out (PKCS#1 `MIIEpAIBAAKCAQEA…` or PKCS#8 `MIIEvQIBADANBgkqhkiG9w0BAQEFAASC…`).
 * A bare key is tried as PKCS#8 first, then PKCS#1 (§1.5).
 */
export function loadAlipayPrivateKey(key: string | KeyObject, what = 'private key'): KeyObject {
  if (typeof key !== 'string') {
    if (key.type !== 'private') throw new AlipayKeyError(`${what} is not a private key`);
    return requireRsa(key, what, 'a private key');
  }
  const { label, der } = readKeyText(key, what);
  const expected = 'an RSA private key (PEM, or bare base64 PKCS#1/PKCS#8)';
  const pkcs8 = () => createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  const pkcs1 = () => createPrivateKey({ key: der, format: 'der', type: 'pkcs1' });
  switch (label) {
    case undefined:
      return requireRsa(firstThatParses([pkcs8, pkcs1]), what, expected);
    case 'PRIVATE KEY':
      return requireRsa(firstThatParses([pkcs8]), what, expected);
    case 'RSA PRIVATE KEY':
      return requireRsa(firstThatParses([pkcs1]), what, expected);
    default:
      throw new AlipayKeyError(`${what} is not ${expected}`);
  }
}

/**
 * Loads Alipay's public key: PEM `PUBLIC KEY` (SPKI) or `RSA PUBLIC KEY` (PKCS#1), or bare base64 SPKI
 * (`MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA…`, what the Alipay console shows).
 */
export function loadAlipayPublicKey(key: string | KeyObject, what = 'public key'): KeyObject {
  if (typeof key !== 'string') {
    if (key.type !== 'public') throw new AlipayKeyError(`${what} is not a public key`);
    return requireRsa(key, what, 'a public key');
  }
  const { label, der } = readKeyText(key, what);
  const expected = 'an RSA public key (PEM, or bare base64 SPKI)';
  // createPublicKey happily derives a public key from private key bytes: a private key pasted here
  // would then verify nothing, so say so at startup.
  const asPrivate = firstThatParses([
    () => createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }),
    () => createPrivateKey({ key: der, format: 'der', type: 'pkcs1' }),
  ]);
  if (asPrivate) throw new AlipayKeyError(`${what} holds a private key where a public key belongs`);
  const spki = () => createPublicKey({ key: der, format: 'der', type: 'spki' });
  const pkcs1 = () => createPublicKey({ key: der, format: 'der', type: 'pkcs1' });
  switch (label) {
    case undefined:
      return requireRsa(firstThatParses([spki, pkcs1]), what, expected);
    case 'PUBLIC KEY':
      return requireRsa(firstThatParses([spki]), what, expected);
    case 'RSA PUBLIC KEY':
      return requireRsa(firstThatParses([pkcs1]), what, expected);
    default:
      throw new AlipayKeyError(`${what} is not ${expected}`);
  }
}

function byAscii(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function joinSorted(params: AlipayParams, exclude: ReadonlySet<string>): string {
  return Object.keys(params)
    .filter((k) => !exclude.has(k))
    .filter((k) => {
      const v = params[k];
      return v !== undefined && v !== null && v !== '';
    })
    .sort(byAscii)
    .map((k) => `${k}=${params[k] as string}`)
    .join('&');
}

const REQUEST_EXCLUDED = new Set(['sign']);
const NOTIFY_EXCLUDED = new Set(['sign', 'sign_type']);

/**
 * The request string to sign (§1.3): every parameter but `sign` (`sign_type` stays), empty values
 * dropped, keys in ASCII order, raw (not URL-encoded) values joined as `k=v&…`.
 */
export function alipaySignContent(params: AlipayParams): string {
  return joinSorted(params, REQUEST_EXCLUDED);
}

/** The notify string to verify (§1.9, rsaCheckV1): `sign` AND `sign_type` removed, empties dropped. */
export function alipayNotifyContent(params: AlipayParams): string {
  return joinSorted(params, NOTIFY_EXCLUDED);
}

/** The response node's key for a method: `alipay.trade.query` → `alipay_trade_query_response`. */
export function responseKeyOf(method: string): string {
  return `${method.replace(/\./g, '_')}_response`;
}

/** One member of the top-level JSON object of a gateway answer, with its value's exact raw text. */
interface RawMember {
  readonly key: string;
  readonly raw: string;
}

/** Index just past the JSON string starting at `start` (which holds the opening quote). */
function skipString(text: string, start: number): number {
  let i = start + 1;
  while (i < text.length) {
    const c = text[i];
    if (c === '\\') i += 2;
    else if (c === '"') return i + 1;
    else i += 1;
  }
  throw new SyntaxError('unterminated string');
}

/** Index just past the JSON value starting at `start`; objects/arrays by bracket matching that skips strings. */
function skipValue(text: string, start: number): number {
  const first = text[start];
  if (first === '"') return skipString(text, start);
  if (first === '{' || first === '[') {
    let depth = 0;
    let i = start;
    while (i < text.length) {
      const c = text[i];
      if (c === '"') {
        i = skipString(text, i);
        continue;
      }
      if (c === '{' || c === '[') depth += 1;
      else if (c === '}' || c === ']') {
        depth -= 1;
        if (depth === 0) return i + 1;
      }
      i += 1;
    }
    throw new SyntaxError('unbalanced brackets');
  }
  let i = start;
  while (i < text.length && !/[\s,}\]]/.test(text[i] as string)) i += 1;
  if (i === start) throw new SyntaxError('missing value');
  return i;
}

function skipWs(text: string, i: number): number {
  while (i < text.length && /\s/.test(text[i] as string)) i += 1;
  return i;
}

/**
 * Splits the top-level JSON object into its members, keeping each value's raw text (the Java SDK's
 * `extractSignContent`, done for every member so that a key inside a string value is never mistaken for
 * the response node). Throws SyntaxError on anything that is not a JSON object.
 */
export function rawTopLevelMembers(body: string): RawMember[] {
  const members: RawMember[] = [];
  let i = skipWs(body, 0);
  if (body[i] !== '{') throw new SyntaxError('not a JSON object');
  i = skipWs(body, i + 1);
  if (body[i] === '}') return members;
  for (;;) {
    if (body[i] !== '"') throw new SyntaxError('expected a key');
    const keyEnd = skipString(body, i);
    const key = JSON.parse(body.slice(i, keyEnd)) as string;
    i = skipWs(body, keyEnd);
    if (body[i] !== ':') throw new SyntaxError('expected a colon');
    i = skipWs(body, i + 1);
    const end = skipValue(body, i);
    members.push({ key, raw: body.slice(i, end) });
    i = skipWs(body, end);
    if (body[i] === ',') {
      i = skipWs(body, i + 1);
      continue;
    }
    if (body[i] === '}') {
      if (skipWs(body, i + 1) !== body.length) throw new SyntaxError('text after the object');
      return members;
    }
    throw new SyntaxError('expected a comma or a closing brace');
  }
}

/** A verified gateway answer. */
export interface AlipayResponse {
  /** `<method>_response`, or `error_response`. */
  readonly responseKey: string;
  /** The node, parsed. Values are whatever JSON gave (strings for every documented field). */
  readonly node: Readonly<Record<string, unknown>>;
  /** The exact raw text of the node, as signed. */
  readonly rawNode: string;
  /** Whether a signature was present (and therefore verified). */
  readonly signed: boolean;
}

export interface AlipaySignerKeys {
  /** The app private key (PEM or bare base64 PKCS#1/PKCS#8, or a private KeyObject). */
  readonly privateKey: string | KeyObject;
  /** Alipay's public key (PEM or bare base64 SPKI, or a public KeyObject). */
  readonly alipayPublicKey: string | KeyObject;
}

/** RSA2 (SHA256withRSA, PKCS#1 v1.5) signer and verifier for one app. */
export class AlipaySigner {
  readonly #privateKey: KeyObject;
  readonly #alipayPublicKey: KeyObject;

  constructor(keys: AlipaySignerKeys) {
    this.#privateKey = loadAlipayPrivateKey(keys.privateKey, 'privateKey');
    this.#alipayPublicKey = loadAlipayPublicKey(keys.alipayPublicKey, 'publicKey');
  }

  /** The request string to sign (§1.3). */
  signContent(params: AlipayParams): string {
    return alipaySignContent(params);
  }

  /** Signs request parameters; returns the base64 `sign`. */
  sign(params: AlipayParams): string {
    return this.signText(alipaySignContent(params));
  }

  /** Signs an exact UTF-8 text with the app key; returns base64. */
  signText(text: string): string {
    return createSign('RSA-SHA256').update(text, 'utf8').sign(this.#privateKey, 'base64');
  }

  /** Verifies a base64 signature over an exact UTF-8 text with Alipay's public key. */
  verifyText(text: string, signature: string): boolean {
    if (!BASE64.test(signature)) return false;
    return createVerify('RSA-SHA256').update(text, 'utf8').verify(this.#alipayPublicKey, signature, 'base64');
  }

  /** The notify string to verify (§1.9). */
  notifyContent(params: AlipayParams): string {
    return alipayNotifyContent(params);
  }

  /** Verifies a notify's parameters (already form-decoded, once) against their `sign` (§1.9). */
  verifyNotify(params: AlipayParams): boolean {
    const signature = params['sign'];
    if (!signature) return false;
    return this.verifyText(alipayNotifyContent(params), signature);
  }

  /**
   * Finds the `<method>_response` (or `error_response`) node of a gateway answer, verifies `sign` over
   * the node's exact raw text (retrying with `\/` unescaped, as the Java SDK does), and parses it.
   * A success (`code` 10000) must be signed; an error may come unsigned (§1.4). Throws
   * PayError('CHANNEL_ERROR') on a malformed answer, a missing signature on a success, or a bad signature.
   */
  verifyResponse(rawBody: string, methodName: string): AlipayResponse {
    const expectedKey = responseKeyOf(methodName);
    let members: RawMember[];
    try {
      members = rawTopLevelMembers(rawBody);
    } catch {
      throw new PayError('CHANNEL_ERROR', 'the payment channel sent an unreadable answer', { method: methodName });
    }
    const member = members.find((m) => m.key === expectedKey) ?? members.find((m) => m.key === 'error_response');
    if (!member || !member.raw.startsWith('{')) {
      throw new PayError('CHANNEL_ERROR', 'the payment channel sent an answer without a response node', {
        method: methodName,
      });
    }
    const node = JSON.parse(member.raw) as Record<string, unknown>;
    const signMember = members.find((m) => m.key === 'sign');
    const signature = signMember ? (JSON.parse(signMember.raw) as unknown) : undefined;
    if (typeof signature !== 'string' || signature === '') {
      if (node['code'] === '10000' || signMember !== undefined) {
        throw new PayError('CHANNEL_ERROR', 'the payment channel answer is not signed', { method: methodName });
      }
      return { responseKey: member.key, node, rawNode: member.raw, signed: false };
    }
    const ok =
      this.verifyText(member.raw, signature) ||
      (member.raw.includes('\\/') && this.verifyText(member.raw.replaceAll('\\/', '/'), signature));
    if (!ok) {
      throw new PayError('CHANNEL_ERROR', 'the payment channel answer has a bad signature', { method: methodName });
    }
    return { responseKey: member.key, node, rawNode: member.raw, signed: true };
  }
}
