import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

/**
 * Alipay+ (Antom-style) message signing, shared/design/PROTOCOLS.md §3.8:
 *
 *   content   = `<METHOD> <URI-with-query>\n<Client-Id>.<Request-Time>.<body>`
 *   signature = base64(SHA256withRSA(content)), URL-encoded, carried as
 *   `Signature: algorithm=RSA256,keyVersion=1,signature=<url-encoded base64>`
 *
 * Requests are signed with the merchant key; responses and notifyPayment are verified with the wallet's
 * public key. Keys are parsed once into KeyObjects (STACK.md: a PEM per call is 3x slower). Nothing in
 * this file logs, and no key or signing string ever goes into an error message.
 */

/** Raised for a key that does not parse. The message names what was expected, never the key. */
export class AlipayPlusKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AlipayPlusKeyError';
  }
}

const PEM = /-----BEGIN [A-Z0-9 ]+-----/;

function bareDer(text: string): Buffer | undefined {
  const compact = text.replace(/\s+/g, '');
  if (compact === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) return undefined;
  return Buffer.from(compact, 'base64');
}

/** The merchant private key: PEM (PKCS#1 or PKCS#8) or bare base64 DER (PKCS#8, as A+ consoles issue, or PKCS#1). */
export function loadAlipayPlusPrivateKey(key: string | KeyObject, what = 'private key'): KeyObject {
  if (typeof key !== 'string') {
    if (key.type !== 'private') throw new AlipayPlusKeyError(`${what} is not a private key`);
    return key;
  }
  try {
    if (PEM.test(key)) return createPrivateKey(key);
  } catch {
    throw new AlipayPlusKeyError(`${what} is not a valid PEM private key`);
  }
  const der = bareDer(key);
  if (der) {
    for (const type of ['pkcs8', 'pkcs1'] as const) {
      try {
        const k = createPrivateKey({ key: der, format: 'der', type });
        if (k.asymmetricKeyType === 'rsa') return k;
      } catch {
        // try the next wrapping
      }
    }
  }
  throw new AlipayPlusKeyError(`${what} is neither PEM nor base64 PKCS#8/PKCS#1 RSA`);
}

/** The wallet public key: PEM (SPKI or PKCS#1) or bare base64 DER (SPKI, as A+ consoles issue, or PKCS#1). */
export function loadAlipayPlusPublicKey(key: string | KeyObject, what = 'public key'): KeyObject {
  if (typeof key !== 'string') {
    if (key.type === 'private') return createPublicKey(key);
    if (key.type !== 'public') throw new AlipayPlusKeyError(`${what} is not a public key`);
    return key;
  }
  try {
    if (PEM.test(key)) return createPublicKey(key);
  } catch {
    throw new AlipayPlusKeyError(`${what} is not a valid PEM public key`);
  }
  const der = bareDer(key);
  if (der) {
    for (const type of ['spki', 'pkcs1'] as const) {
      try {
        const k = createPublicKey({ key: der, format: 'der', type });
        if (k.asymmetricKeyType === 'rsa') return k;
      } catch {
        // try the next wrapping
      }
    }
  }
  throw new AlipayPlusKeyError(`${what} is neither PEM nor base64 SPKI/PKCS#1 RSA`);
}

/** The exact bytes that are signed: `METHOD URI\nClient-Id.Time.body` (body as the raw bytes sent). */
export function alipayPlusSignContent(
  method: string,
  uri: string,
  clientId: string,
  time: string,
  body: string | Buffer,
): Buffer {
  const head = Buffer.from(`${method.toUpperCase()} ${uri}\n${clientId}.${time}.`, 'utf8');
  return Buffer.concat([head, typeof body === 'string' ? Buffer.from(body, 'utf8') : body]);
}

/** SHA256withRSA (PKCS#1 v1.5), standard base64 (not yet URL-encoded). */
export function alipayPlusSign(content: Buffer | string, key: KeyObject): string {
  return sign('sha256', typeof content === 'string' ? Buffer.from(content, 'utf8') : content, key).toString('base64');
}

/** Verifies a standard-base64 signature; false (never a throw) for anything malformed. */
export function alipayPlusVerify(content: Buffer | string, signatureB64: string, key: KeyObject): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(signatureB64)) return false;
  try {
    return verify(
      'sha256',
      typeof content === 'string' ? Buffer.from(content, 'utf8') : content,
      key,
      Buffer.from(signatureB64, 'base64'),
    );
  } catch {
    return false;
  }
}

/** `algorithm=RSA256,keyVersion=N,signature=<url-encoded base64>`, without spaces, as the Java SDK writes it. */
export function formatSignatureHeader(signatureB64: string, keyVersion: string = '1'): string {
  return `algorithm=RSA256,keyVersion=${keyVersion},signature=${encodeURIComponent(signatureB64)}`;
}

export interface ParsedSignatureHeader {
  /** As written (e.g. `RSA256`); undefined when the header names none. */
  readonly algorithm?: string;
  /** `1` when the header names none (§3.8). */
  readonly keyVersion: string;
  /** Standard base64, URL-decoded if it was encoded. */
  readonly signature: string;
}

/**
 * Parses a Signature header tolerantly (§3.8): spaces around `,` and `=`, any order, keys in any case,
 * missing keyVersion (defaults to 1), the signature URL-encoded or not. Undefined when there is no
 * usable signature. A `+` is kept as `+` (a URL-encoded signature never has one; a raw base64 one does).
 */
export function parseSignatureHeader(header: string | undefined | null): ParsedSignatureHeader | undefined {
  if (typeof header !== 'string') return undefined;
  let algorithm: string | undefined;
  let keyVersion: string | undefined;
  let signature: string | undefined;
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim().toLowerCase();
    const value = part
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1');
    if (key === 'algorithm') algorithm = value;
    else if (key === 'keyversion') keyVersion = value;
    else if (key === 'signature') signature = value;
  }
  if (signature === undefined || signature === '') return undefined;
  if (signature.includes('%')) {
    try {
      signature = decodeURIComponent(signature);
    } catch {
      return undefined;
    }
  }
  signature = signature.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(signature)) return undefined;
  return { ...(algorithm !== undefined ? { algorithm } : {}), keyVersion: keyVersion || '1', signature };
}

export interface AlipayPlusSignerKeys {
  readonly clientId: string;
  /** The merchant's private key (signs requests). */
  readonly privateKey: string | KeyObject;
  /** The wallet's public key (verifies responses and notifies). */
  readonly walletPublicKey: string | KeyObject;
  readonly keyVersion?: string;
}

/** The three headers that authenticate one message. */
export interface SignedHeaders {
  readonly 'Client-Id': string;
  readonly 'Request-Time': string;
  readonly Signature: string;
}

/** One instance's keys, parsed once. */
export class AlipayPlusSigner {
  readonly clientId: string;
  readonly keyVersion: string;
  readonly #privateKey: KeyObject;
  readonly #walletPublicKey: KeyObject;

  constructor(keys: AlipayPlusSignerKeys) {
    this.clientId = keys.clientId;
    this.keyVersion = keys.keyVersion ?? '1';
    this.#privateKey = loadAlipayPlusPrivateKey(keys.privateKey, 'privateKey');
    this.#walletPublicKey = loadAlipayPlusPublicKey(keys.walletPublicKey, 'walletPublicKey');
  }

  /** Headers for a request to `uri` (path + query, no host) with this exact body. */
  signRequest(method: string, uri: string, requestTime: string, body: string | Buffer): SignedHeaders {
    const content = alipayPlusSignContent(method, uri, this.clientId, requestTime, body);
    return {
      'Client-Id': this.clientId,
      'Request-Time': requestTime,
      Signature: formatSignatureHeader(alipayPlusSign(content, this.#privateKey), this.keyVersion),
    };
  }

  /**
   * Verifies a message from the wallet (a response: time = Response-Time, uri = the request's; a notify:
   * time = Request-Time, uri = our notify path). Refuses an algorithm other than RSA256 when one is named.
   */
  verifyFromWallet(
    method: string,
    uri: string,
    time: string,
    body: string | Buffer,
    signatureHeader: string | undefined | null,
  ): boolean {
    const parsed = parseSignatureHeader(signatureHeader);
    if (!parsed) return false;
    if (parsed.algorithm !== undefined && parsed.algorithm.toUpperCase() !== 'RSA256') return false;
    const content = alipayPlusSignContent(method, uri, this.clientId, time, body);
    return alipayPlusVerify(content, parsed.signature, this.#walletPublicKey);
  }
}
