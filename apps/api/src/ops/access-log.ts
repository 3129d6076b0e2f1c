import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyRequest } from 'fastify';
import type { Level, Logger } from 'pino';
import { requestIdOf } from '../http/request-id.js';

const ORDER_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** What app.factory.ts's first request hook puts on the Node request for the access log and metrics. */
export interface RawRequestContext {
  /** The Fastify request (route template, params, body, principal). */
  fastifyRequest?: FastifyRequest & { principal?: { label: string } };
  /** The mount path of a plain listener that answered it (the sandbox). */
  mountPath?: string;
}

const ctxOf = (req: IncomingMessage): RawRequestContext => req as IncomingMessage & RawRequestContext;

/**
 * The route template of a request (`/api/v1/orders/:orderId`), never its raw path: a bounded label for
 * metrics and logs, with no ids in it. Mounted listeners (the sandbox) answer with their mount path.
 */
export function routeOf(req: IncomingMessage): string {
  const c = ctxOf(req);
  if (c.mountPath) return `${c.mountPath}/*`;
  const path = c.fastifyRequest?.routeOptions.url;
  if (typeof path === 'string') return path;
  return '(unmatched)';
}

/** The order a request is about: its `:orderId`, or the `orderId` of a JSON body (create, facade). */
export function orderIdOf(req: IncomingMessage): string | undefined {
  const r = ctxOf(req).fastifyRequest;
  const fromParams = (r?.params as Record<string, unknown> | undefined)?.['orderId'];
  const fromBody = Buffer.isBuffer(r?.body) ? undefined : (r?.body as Record<string, unknown> | undefined)?.['orderId'];
  for (const v of [fromParams, fromBody]) if (typeof v === 'string' && ORDER_ID.test(v)) return v;
  return undefined;
}

function accessFields(
  req: IncomingMessage,
  res: ServerResponse,
  route: string,
  durationMs: number,
): Record<string, unknown> {
  const principal = ctxOf(req).fastifyRequest?.principal;
  const orderId = orderIdOf(req);
  return {
    context: 'HTTP',
    method: req.method,
    route,
    // The path without its query string: queries may hold anything, and ids are in `orderId`.
    path: (req.url ?? '').split('?')[0]?.slice(0, 256),
    status: res.statusCode,
    durationMs,
    ...(orderId ? { orderId } : {}),
    ...(principal ? { key: principal.label } : {}),
  };
}

/** Probes and scrapes log at debug: a 10 s readiness probe would otherwise be most of the log. */
const QUIET_ROUTES = new Set(['/health', '/health/live', '/health/ready', '/metrics']);

function levelOf(route: string, res: ServerResponse, aborted: boolean): Level | 'debug' {
  // The sandbox's simulated providers answer 5xx on purpose (outages): their lines are detail.
  if (route.startsWith('/sandbox/')) return 'debug';
  if (res.statusCode >= 500) return 'error';
  if (aborted) return 'warn';
  if (QUIET_ROUTES.has(route) && res.statusCode < 400) return 'debug';
  return 'info';
}

/**
 * One access line per request, started in the first request hook so that body-parser refusals and the
 * sandbox's listeners are logged too, written when the response closes (`aborted: true` when the client
 * went away before the whole answer was sent). Request headers and bodies are never logged: only the
 * fields above. It returns the request's logger (a child with the request id), which app.factory.ts
 * hands to every Nest log made while the request runs.
 *
 * Written here rather than with pino-http (issue 14): pino-http also binds the whole request to a second
 * child logger per request, which serialises the request and its headers whether a line is written or
 * not (with the redaction of those headers, the largest single cost of a request in the profile).
 */
export function accessLogger(logger: Logger): (req: IncomingMessage, res: ServerResponse) => Logger {
  return (req, res) => {
    const start = performance.now();
    const log = logger.child({ requestId: requestIdOf(req as IncomingMessage & { id?: unknown }) });
    res.once('close', () => {
      const aborted = !res.writableFinished;
      const route = routeOf(req);
      const level = levelOf(route, res, aborted);
      if (!log.isLevelEnabled(level)) return;
      const durationMs = Math.round((performance.now() - start) * 10) / 10;
      log[level](
        { ...accessFields(req, res, route, durationMs), ...(aborted ? { aborted: true } : {}) },
        `${req.method} ${route} ${res.statusCode}`,
      );
    });
    return log;
  };
}
