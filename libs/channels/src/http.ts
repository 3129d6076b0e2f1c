import { Agent as HttpAgent, type IncomingHttpHeaders, type IncomingMessage, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { ConfigError, PayError } from '#common';

/** The answer's headers, read by name (case-insensitive; a repeated header joined with ", " as `Headers.get`). */
export interface AnswerHeaders {
  get(name: string): string | null;
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: AnswerHeaders;
  readonly body: string;
}

/** Default time a channel call may take before it is answered with CHANNEL_TIMEOUT. */
export const CHANNEL_HTTP_TIMEOUT_MS = 10_000;

/**
 * The connection pool of every channel agent: the two below and each WeChat instance's mutual-TLS agent.
 * - `maxSockets` per host (a call beyond it waits for a socket, within its own timeout);
 * - `maxFreeSockets`: idle connections kept per host after a burst, the rest closed;
 * - `timeout`: an idle pooled connection is closed after 4 s, before the 5 s keep-alive of a Node or
 *   Apache server closes it under us (Node's agent also honours a shorter `Keep-Alive: timeout=` hint,
 *   less one second). A pooled socket the server closed anyway is dropped as soon as its FIN is read;
 *   the race left (the FIN still on its way as we write) is what channelPost's one retry covers.
 * - `lifo`: the most recently used connection first, so the others go idle and close.
 */
export const CHANNEL_AGENT_OPTIONS = {
  keepAlive: true,
  maxSockets: 256,
  maxFreeSockets: 64,
  timeout: 4_000,
  scheduling: 'lifo',
} as const;

const plainAgent = new HttpAgent(CHANNEL_AGENT_OPTIONS);
const tlsAgent = new HttpsAgent(CHANNEL_AGENT_OPTIONS);

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
 * POSTs to a provider (http: or https:, over the module's keep-alive pools) and returns the raw answer
 * text (signatures are over raw bytes, so nothing is parsed here). A network failure becomes
 * CHANNEL_ERROR, no complete answer within `timeoutMs` CHANNEL_TIMEOUT; the error names the URL's host,
 * never the body.
 */
export function channelPost(
  url: string,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number = CHANNEL_HTTP_TIMEOUT_MS,
): Promise<HttpAnswer> {
  const target = parseUrl(url);
  if (target?.protocol === 'http:') return post(target, body, headers, plainAgent, timeoutMs);
  if (target?.protocol === 'https:') return post(target, body, headers, tlsAgent, timeoutMs);
  return Promise.reject(new PayError('CHANNEL_ERROR', 'the payment channel URL is not http(s)', { url: hostOf(url) }));
}

/**
 * channelPost over https with a given Agent: for calls that need a client certificate (WeChat secapi,
 * mutual TLS). Same outcomes; a refused certificate fails the TLS handshake, CHANNEL_ERROR. Only https
 * URLs: a client certificate never goes over plain HTTP.
 */
export function channelPostTls(
  url: string,
  body: string,
  headers: Record<string, string>,
  agent: HttpsAgent,
  timeoutMs: number = CHANNEL_HTTP_TIMEOUT_MS,
): Promise<HttpAnswer> {
  const target = parseUrl(url);
  if (target?.protocol !== 'https:') {
    return Promise.reject(
      new PayError('CHANNEL_ERROR', 'a client-certificate call needs an https URL', { url: hostOf(url) }),
    );
  }
  return post(target, body, headers, agent, timeoutMs);
}

/** Errors of a connection that was gone before our request got in (the peer reset or closed it). */
const STALE_SOCKET_CODES: ReadonlySet<unknown> = new Set(['ECONNRESET', 'EPIPE']);

/**
 * One exchange, with one deadline for all of it: waiting for a pooled socket, connecting, TLS, sending,
 * the head and the whole body. The answer is decoded from UTF-8 once, from all its bytes (a character
 * may be split across chunks), a leading BOM dropped as fetch's `text()` did.
 *
 * One retry, only for a keep-alive race: the request went out on a reused pooled socket, and that socket
 * failed with ECONNRESET/EPIPE before a single byte of an answer was read on it. That is what a server
 * closing an idle keep-alive connection while our request is on its way looks like (Node's http docs
 * recommend this retry); the server's HTTP layer discards such a request. It could also be a server that
 * took the request and died before answering a byte; the retry then resends the same signed bytes, with
 * the same merchant ids (out_trade_no, out_request_no, paymentRequestId, ...), which every provider
 * treats as the same operation, exactly as the app's own retry after a CHANNEL_ERROR does. A fresh
 * connection, any answer byte, a timeout or a second failure is never retried.
 */
function post(
  target: URL,
  body: string,
  headers: Record<string, string>,
  agent: HttpAgent,
  timeoutMs: number,
): Promise<HttpAnswer> {
  const payload = Buffer.from(body, 'utf8');
  const options = {
    method: 'POST',
    agent,
    headers: { ...headers, 'content-length': String(payload.length) },
  };
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  const host = target.host;
  return new Promise<HttpAnswer>((resolve, reject) => {
    let settled = false;
    let retried = false;
    let destroyCurrent: () => void = () => undefined;
    const fail = (code: 'CHANNEL_ERROR' | 'CHANNEL_TIMEOUT', message: string, cause?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new PayError(code, message, cause === undefined ? { url: host } : { url: host, cause }));
    };
    const attempt = (): void => {
      let socket: Socket | undefined;
      let readBefore = 0;
      let answered = false;
      const req = send(target, options, (res) => {
        answered = true;
        readAnswer(
          res,
          (answer) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            resolve(answer);
          },
          () => fail('CHANNEL_ERROR', 'the payment channel did not finish its answer'),
        );
      });
      destroyCurrent = () => req.destroy();
      req.on('socket', (s) => {
        socket = s;
        readBefore = s.bytesRead;
      });
      req.on('error', (err: Error & { code?: unknown }) => {
        if (settled) return;
        const staleRace =
          !retried &&
          req.reusedSocket &&
          !answered &&
          STALE_SOCKET_CODES.has(err.code) &&
          socket !== undefined &&
          socket.bytesRead === readBefore;
        if (staleRace) {
          retried = true;
          attempt();
          return;
        }
        fail(
          'CHANNEL_ERROR',
          answered ? 'the payment channel did not finish its answer' : 'the payment channel could not be reached',
          typeof err.code === 'string' ? err.code : err.message,
        );
      });
      req.end(payload);
    };
    const timer = setTimeout(() => {
      fail('CHANNEL_TIMEOUT', 'the payment channel did not answer in time');
      destroyCurrent();
    }, timeoutMs);
    attempt();
  });
}

/** Collects the body; `done` once it ended complete, `broken` when the connection broke before. */
function readAnswer(res: IncomingMessage, done: (answer: HttpAnswer) => void, broken: () => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  res.on('data', (c: Buffer) => {
    chunks.push(c);
    size += c.length;
  });
  res.on('end', () => {
    const all = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
    const bom = all.length >= 3 && all[0] === 0xef && all[1] === 0xbb && all[2] === 0xbf ? 3 : 0;
    done({ status: res.statusCode ?? 0, headers: new NodeAnswerHeaders(res.headers), body: all.toString('utf8', bom) });
  });
  res.on('error', broken);
  res.on('close', () => {
    if (!res.complete) broken();
  });
}

/** Node's parsed headers (names already lower-case) behind `Headers.get`'s contract. */
class NodeAnswerHeaders implements AnswerHeaders {
  constructor(private readonly raw: IncomingHttpHeaders) {}

  get(name: string): string | null {
    const v = this.raw[name.toLowerCase()];
    if (v === undefined) return null;
    return typeof v === 'string' ? v : v.join(', ');
  }
}

function parseUrl(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

function hostOf(url: string): string {
  return parseUrl(url)?.host ?? 'invalid-url';
}
