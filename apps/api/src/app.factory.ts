import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { AsyncLocalStorage } from 'node:async_hooks';
import type { DestinationStream, Logger } from 'pino';
import { PinoNestLogger, createPinoLogger } from '#common';
import { PaymentMetrics } from '#payments';
import { ApiModule, type ApiModuleOptions } from './api.module.js';
import { genRequestId } from './http/request-id.js';
import { registerBodyParsers } from './http/json-body.js';
import { type RawRequestContext, accessLogger } from './ops/access-log.js';
import { httpMetricsObserver } from './ops/http-metrics.js';
import { mountOpenApi } from './ops/openapi.js';
import { securityHeaders } from './ops/security-headers.js';

export interface MountedListener {
  /** e.g. `/sandbox/alipay` */
  readonly path: string;
  readonly listener: (req: IncomingMessage, res: ServerResponse) => void;
}

export interface ApiAppOptions extends ApiModuleOptions {
  /** The process's pino logger (made from LOG_LEVEL and LOG_FORMAT otherwise). */
  readonly pinoLogger?: Logger;
  /** Plain Node listeners mounted before any body parser (the sandbox simulators read their own bodies). */
  readonly mounts?: readonly MountedListener[];
  /** Overrides LOG_LEVEL: false = silent, else the most verbose level listed. */
  readonly logger?: false | LogLevel[];
  /** Where log lines go (tests capture them); stdout by default. */
  readonly logDestination?: DestinationStream;
}

/** Routes whose bodies must stay raw bytes: providers sign them (NotifyController's routes). */
export const RAW_BODY_ROUTES = [
  '/api/v1/notify/alipay',
  '/api/v1/notify/wechatpay',
  '/api/v1/notify/wechatpay/refund',
  '/api/v1/notify/alipayplus',
  '/api/:app/pays/services/PaySvc/wechatNotify',
];

const NEST_TO_PINO: Record<LogLevel, string> = {
  fatal: 'fatal',
  error: 'error',
  warn: 'warn',
  log: 'info',
  debug: 'debug',
  verbose: 'trace',
};
const ORDER = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

function levelOf(opts: ApiAppOptions): string {
  if (opts.logger === false) return 'silent';
  if (!opts.logger) return opts.config.logLevel;
  const levels = opts.logger.map((l) => NEST_TO_PINO[l]);
  return ORDER.filter((l) => levels.includes(l)).at(-1) ?? 'silent';
}

/** Builds the api app; main.ts and the e2e tests both use it, so tests run the real wiring. */
export async function createApiApp(opts: ApiAppOptions): Promise<NestFastifyApplication> {
  const pinoLogger =
    opts.pinoLogger ??
    createPinoLogger({
      level: levelOf(opts),
      format: opts.config.logFormat,
      destination: opts.logDestination,
      app: 'api',
    });
  // Fastify (issue 14: about half of Express's per-request CPU here, docs/benchmarks.md). Its request
  // id is the caller's sane X-Request-Id or a UUID; TRUST_PROXY_HOPS proxies are believed for req.ip
  // and req.protocol (docs/operations.md); its own logger is off (access-log.ts and Nest's logger log).
  const adapter = new FastifyAdapter({
    genReqId: genRequestId,
    // A hop count, as Express's `trust proxy` number (Fastify accepts it as a function of the hop).
    trustProxy:
      opts.config.trustProxyHops > 0 ? (_addr: string, hop: number) => hop < opts.config.trustProxyHops : false,
    logger: false,
    // Requests arriving while the app closes are served (HttpDrain stops the listener first), as with Express.
    return503OnClosing: false,
    // Express's routing and server defaults that clients may rely on: `/orders/` is `/orders`, no length
    // limit on a path parameter short of the validators' (Fastify's 100 would turn a long orderId's 400
    // into a 404), Node's 5 s keep-alive. Paths are case-sensitive (Express matched any letter case):
    // Fastify's case folding would lowercase the route templates that metrics, logs and the raw-body
    // routes are keyed by.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 2048 },
    keepAliveTimeout: 5000,
  });
  const fastify = adapter.getInstance();
  const mounts = opts.mounts ?? [];
  const accessLog = accessLogger(pinoLogger);
  // The request's logger (with its request id) for every Nest log made while the request runs.
  const requestLogs = new AsyncLocalStorage<Logger>();
  const security = securityHeaders();
  // The HTTP metrics observer, once the app's metrics registry exists (before the first request).
  const metrics: { observe?: (req: IncomingMessage, res: ServerResponse) => void } = {};
  // The first hook of every request, before routing's body parsing, guards and handlers, and for
  // unmatched paths too: the request id header, the access line and the request's logger (bound for
  // the rest of the request: Fastify keeps the async context through body parsing), the metrics timer,
  // the security headers (set on the Node response, so that every answer has them, the sandbox's
  // included), then the plain listeners mounted under their path, which read their own bodies and
  // answer on the Node response (reply.hijack()).
  fastify.addHook('onRequest', (req, reply, done) => {
    const raw = req.raw as IncomingMessage & RawRequestContext & { id?: string };
    raw.id = req.id;
    raw.fastifyRequest = req;
    reply.raw.setHeader('X-Request-Id', req.id);
    const url = raw.url ?? '/';
    const mount = mounts.find((m) => url === m.path || url.startsWith(`${m.path}/`) || url.startsWith(`${m.path}?`));
    if (mount) raw.mountPath = mount.path;
    const log = accessLog(raw, reply.raw);
    metrics.observe?.(raw, reply.raw);
    security(raw, reply.raw);
    if (!mount) {
      requestLogs.run(log, done);
      return;
    }
    // As Express's app.use(path, listener): the listener sees the URL below its mount path, and the
    // full one in `originalUrl` (the Alipay+ simulator signs its answers over the full path).
    reply.hijack();
    (raw as IncomingMessage & { originalUrl?: string }).originalUrl = url;
    const rest = url.slice(mount.path.length);
    raw.url = rest.startsWith('/') ? rest : `/${rest}`;
    mount.listener(raw, reply.raw);
  });
  // Notify routes take no bearer key: their own small limit (real notifies are a few KiB); the admin
  // console's forms; JSON with money fields read from their literal text (API.md §3; json-body.ts).
  registerBodyParsers(fastify, {
    limit: opts.config.bodyLimitBytes,
    notifyLimit: opts.config.notifyBodyLimitBytes,
    rawRoutes: RAW_BODY_ROUTES,
    formPrefix: '/admin',
  });
  const app = await NestFactory.create<NestFastifyApplication>(ApiModule.forRoot(opts), adapter, {
    bodyParser: false,
    bufferLogs: true,
  });
  app.useLogger(new PinoNestLogger(pinoLogger, () => requestLogs.getStore()));
  app.flushLogs();
  metrics.observe = httpMetricsObserver(app.get(PaymentMetrics).registry);
  if (opts.config.docsEnabled) mountOpenApi(app);
  app.enableShutdownHooks();
  return app;
}
