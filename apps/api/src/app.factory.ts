import type { IncomingMessage, ServerResponse } from 'node:http';
import type { INestApplication, LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import express from 'express';
import { Logger } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import { createPinoLogger } from '#common';
import { PaymentMetrics } from '#payments';
import { ApiModule, type ApiModuleOptions } from './api.module.js';
import { requestIdMiddleware } from './http/request-id.js';
import { bodyParserErrorHandler } from './http/error.filter.js';
import { jsonBodyParser } from './http/json-body.js';
import { accessLogMiddleware } from './ops/access-log.js';
import { httpMetricsMiddleware } from './ops/http-metrics.js';
import { mountOpenApi } from './ops/openapi.js';
import { securityHeaders } from './ops/security-headers.js';

export interface MountedListener {
  /** e.g. `/sandbox/alipay` */
  readonly path: string;
  readonly listener: (req: IncomingMessage, res: ServerResponse) => void;
}

export interface ApiAppOptions extends ApiModuleOptions {
  /** Plain Node listeners mounted before any body parser (the sandbox simulators read their own bodies). */
  readonly mounts?: readonly MountedListener[];
  /** Overrides LOG_LEVEL: false = silent, else the most verbose level listed. */
  readonly logger?: false | LogLevel[];
  /** Where log lines go (tests capture them); stdout by default. */
  readonly logDestination?: DestinationStream;
}

/** Paths whose bodies must stay raw bytes: providers sign them. */
export const RAW_BODY_PATHS = ['/api/v1/notify', '/api/:app/pays/services/PaySvc/wechatNotify'];

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
export async function createApiApp(opts: ApiAppOptions): Promise<INestApplication> {
  const pinoLogger =
    opts.pinoLogger ??
    createPinoLogger({
      level: levelOf(opts),
      format: opts.config.logFormat,
      destination: opts.logDestination,
      app: 'api',
    });
  const app = await NestFactory.create<NestExpressApplication>(ApiModule.forRoot({ ...opts, pinoLogger }), {
    bodyParser: false,
    bufferLogs: true,
  });
  app.useLogger(app.get(Logger));
  app.flushLogs();
  const limit = opts.config.bodyLimitBytes;
  app.disable('x-powered-by');
  // The source IP of rate limits and logs: the socket's, or the one TRUST_PROXY_HOPS proxies in front
  // vouch for (docs/operations.md).
  app.set('trust proxy', opts.config.trustProxyHops);
  // No ETag: it hashed every JSON answer, and no client of this API revalidates with If-None-Match.
  app.set('etag', false);
  app.use(requestIdMiddleware);
  app.use(accessLogMiddleware(pinoLogger));
  app.use(httpMetricsMiddleware(app.get(PaymentMetrics).registry));
  app.use(securityHeaders());
  for (const m of opts.mounts ?? []) app.use(m.path, m.listener);
  // Notify routes take no bearer key: their own small limit (real notifies are a few KiB).
  app.use(RAW_BODY_PATHS, express.raw({ type: () => true, limit: opts.config.notifyBodyLimitBytes }));
  // The admin console's forms (urlencoded, small).
  app.use('/admin', express.urlencoded({ extended: false, limit: 16 * 1024, parameterLimit: 50 }));
  // JSON with money fields read from their literal text (API.md §3; json-body.ts).
  app.use(jsonBodyParser(limit));
  app.use(bodyParserErrorHandler);
  if (opts.config.docsEnabled) mountOpenApi(app);
  app.enableShutdownHooks();
  return app;
}
