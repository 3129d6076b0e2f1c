import { request as httpsRequest, type Agent } from 'node:https';
import { ConfigError, PayError } from '#common';

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
}

/** Default time a channel call may take before it is answered with CHANNEL_TIMEOUT. */
export const CHANNEL_HTTP_TIMEOUT_MS = 10_000;

/**
 * An instance's optional `timeoutMs` (how long one channel call may take, 100 to 60000 ms; default
 * CHANNEL_HTTP_TIMEOUT_MS). A call that times out is CHANNEL_TIMEOUT, and what it did at the channel is
 * unknown: payments and refunds are then settled by query, with the same ids.
 */
export function timeoutMsOf(cfg: Readonly<Record<string, unknown>>, where: string): number {
  const v = cfg['timeoutMs'];
  if (v === undefined || v === null || v === '') return CHANNEL_HTTP_TIMEOUT_MS;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 100 || n > 60_000) {
    throw new ConfigError(`${where}: field "timeoutMs" must be an integer from 100 to 60000`);
  }
  return n;
}

/**
 * POSTs to a provider and returns the raw answer text (signatures are over raw bytes, so nothing is
 * parsed here). A network failure becomes CHANNEL_ERROR, a timeout CHANNEL_TIMEOUT; the URL's host is
 * logged by the caller, the body never.
 */
export async function channelPost(
  url: string,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number = CHANNEL_HTTP_TIMEOUT_MS,
): Promise<HttpAnswer> {
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', body, headers, signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    // Read the name without instanceof: fetch's errors may come from another realm (Jest vm modules).
    const name = (err as { name?: unknown } | null)?.name;
    if (name === 'TimeoutError' || name === 'AbortError') {
      throw new PayError('CHANNEL_TIMEOUT', 'the payment channel did not answer in time', { url: hostOf(url) });
    }
    throw new PayError('CHANNEL_ERROR', 'the payment channel could not be reached', {
      url: hostOf(url),
      cause: String((err as { message?: unknown } | null)?.message ?? err),
    });
  }
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    // The body can fail or time out after the headers came: same outcome as no answer.
    const name = (err as { name?: unknown } | null)?.name;
    const code = name === 'TimeoutError' || name === 'AbortError' ? 'CHANNEL_TIMEOUT' : 'CHANNEL_ERROR';
    throw new PayError(code, 'the payment channel did not finish its answer', { url: hostOf(url) });
  }
  return { status: res.status, headers: res.headers, body: text };
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'invalid-url';
  }
}

/**
 * channelPost over node:https with a given Agent: for calls that need a client certificate (WeChat
 * secapi, mutual TLS). Same outcomes as channelPost: CHANNEL_TIMEOUT when no full answer comes in time,
 * CHANNEL_ERROR when the host cannot be reached or the TLS handshake fails (e.g. the certificate is
 * refused). Only https URLs: a client certificate never goes over plain HTTP.
 */
export function channelPostTls(
  url: string,
  body: string,
  headers: Record<string, string>,
  agent: Agent,
  timeoutMs: number = CHANNEL_HTTP_TIMEOUT_MS,
): Promise<HttpAnswer> {
  const target = new URL(url);
  if (target.protocol !== 'https:') {
    return Promise.reject(
      new PayError('CHANNEL_ERROR', 'a client-certificate call needs an https URL', { url: hostOf(url) }),
    );
  }
  return new Promise<HttpAnswer>((resolve, reject) => {
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const req = httpsRequest(
      target,
      { method: 'POST', agent, headers: { ...headers, 'content-length': String(Buffer.byteLength(body, 'utf8')) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', () =>
          finish(() =>
            reject(
              new PayError('CHANNEL_ERROR', 'the payment channel did not finish its answer', { url: hostOf(url) }),
            ),
          ),
        );
        res.on('end', () => {
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h.set(k, v);
          finish(() =>
            resolve({ status: res.statusCode ?? 0, headers: h, body: Buffer.concat(chunks).toString('utf8') }),
          );
        });
      },
    );
    const timer = setTimeout(() => {
      finish(() =>
        reject(new PayError('CHANNEL_TIMEOUT', 'the payment channel did not answer in time', { url: hostOf(url) })),
      );
      req.destroy();
    }, timeoutMs);
    req.on('error', (err: Error & { code?: unknown }) =>
      finish(() =>
        reject(
          new PayError('CHANNEL_ERROR', 'the payment channel could not be reached', {
            url: hostOf(url),
            cause: typeof err.code === 'string' ? err.code : err.message,
          }),
        ),
      ),
    );
    req.end(body);
  });
}
