import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { type HttpLogger, pinoHttp } from 'pino-http';
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

function accessFields(req: IncomingMessage, res: ServerResponse, durationMs: number): Record<string, unknown> {
  const principal = ctxOf(req).fastifyRequest?.principal;
  const orderId = orderIdOf(req);
  return {
    context: 'HTTP',
    method: req.method,
    route: routeOf(req),
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

/**
 * One access line per request (pino-http on the Node request and response, started in the first
 * request hook so that body-parser refusals and the sandbox's listeners are logged too).
 * Request headers and bodies are never logged: only the fields above. `req.log` carries the request
 * id, and nestjs-pino (useExisting) hands it to every Nest log made while the request runs.
 */
export function accessLogMiddleware(logger: Logger): HttpLogger<IncomingMessage, ServerResponse> {
  return pinoHttp<IncomingMessage, ServerResponse>({
    logger,
    genReqId: (req) => requestIdOf(req),
    customAttributeKeys: { reqId: 'requestId', responseTime: 'durationMs' },
    quietReqLogger: true,
    quietResLogger: true,
    customLogLevel: (req, res, err) => {
      // The sandbox's simulated providers answer 5xx on purpose (outages): their lines are detail.
      if (routeOf(req).startsWith('/sandbox/')) return 'debug';
      if (err || res.statusCode >= 500) return 'error';
      if (QUIET_ROUTES.has(routeOf(req)) && res.statusCode < 400) return 'debug';
      return 'info';
    },
    customSuccessMessage: (req, res) => `${req.method} ${routeOf(req)} ${res.statusCode}`,
    customErrorMessage: (req, res) => `${req.method} ${routeOf(req)} ${res.statusCode}`,
    customSuccessObject: (req, res, val) =>
      accessFields(req, res, Number((val as { durationMs?: unknown }).durationMs ?? 0)),
    customErrorObject: (req, res, _err, val) =>
      accessFields(req, res, Number((val as { durationMs?: unknown }).durationMs ?? 0)),
  });
}
