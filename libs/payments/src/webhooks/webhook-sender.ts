import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { UnsafeUrlError, checkWebhookUrl, guardedLookup } from './url-guard.js';

export interface SendOptions {
  readonly allowPrivate: boolean;
  /** The whole exchange, connect to last byte read (API.md §10: 10 s). */
  readonly timeoutMs: number;
  /** The answer's body is read up to this many bytes and then dropped (only the status counts). */
  readonly maxAnswerBytes?: number;
}

export interface SendResult {
  /** A 2xx answer: delivered. */
  readonly ok: boolean;
  /** The answer's status, or null when none came (refused URL, connection error, timeout). */
  readonly status: number | null;
  /** Why it was not delivered, for the delivery row and logs: never a header or body of ours. */
  readonly error: string | null;
}

const DEFAULT_MAX_ANSWER = 16 * 1024;

/**
 * One POST of one event to one endpoint. The URL is checked again, the host resolved and checked, and
 * the connection made to that checked address (guardedLookup); redirects are not followed (a 3xx is a
 * failed try); the answer body is capped; anything else than 2xx in time is a failure.
 */
export function sendWebhook(
  endpoint: string,
  body: string,
  headers: Record<string, string>,
  opts: SendOptions,
): Promise<SendResult> {
  let url: URL;
  try {
    url = checkWebhookUrl(endpoint, opts.allowPrivate);
  } catch (err) {
    return Promise.resolve({ ok: false, status: null, error: `refused: ${(err as Error).message}` });
  }
  const cap = opts.maxAnswerBytes ?? DEFAULT_MAX_ANSWER;
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<SendResult>((resolve) => {
    let settled = false;
    const done = (r: SendResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const req = request(
      url,
      {
        method: 'POST',
        agent: false,
        lookup: guardedLookup(opts.allowPrivate),
        headers: { ...headers, 'Content-Length': String(Buffer.byteLength(body)), Connection: 'close' },
      },
      (res) => {
        const status = res.statusCode ?? 0;
        const ok = status >= 200 && status < 300;
        let read = 0;
        const finish = (): void => {
          done({ ok, status, error: ok ? null : `answered ${status}` });
          res.destroy();
        };
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > cap) finish();
        });
        res.on('end', finish);
        res.on('error', finish);
        res.on('close', finish);
      },
    );
    const timer = setTimeout(() => {
      done({ ok: false, status: null, error: `no answer within ${Math.round(opts.timeoutMs / 1000)} s` });
      req.destroy();
    }, opts.timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => {
      const why = err instanceof UnsafeUrlError ? `refused: ${err.message}` : (err.code ?? err.message);
      done({ ok: false, status: null, error: why.slice(0, 200) });
    });
    req.end(body);
  });
}
