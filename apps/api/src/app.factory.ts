import type { IncomingMessage, ServerResponse } from 'node:http';
import type { INestApplication, LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import express from 'express';
import { ApiModule, type ApiModuleOptions } from './api.module.js';
import { requestIdMiddleware } from './http/request-id.js';
import { bodyParserErrorHandler } from './http/error.filter.js';
import { jsonBodyParser } from './http/json-body.js';

export interface MountedListener {
  /** e.g. `/sandbox/alipay` */
  readonly path: string;
  readonly listener: (req: IncomingMessage, res: ServerResponse) => void;
}

export interface ApiAppOptions extends ApiModuleOptions {
  /** Plain Node listeners mounted before any body parser (the sandbox simulators read their own bodies). */
  readonly mounts?: readonly MountedListener[];
  readonly logger?: false | LogLevel[];
}

/** Paths whose bodies must stay raw bytes: providers sign them. */
export const RAW_BODY_PATHS = ['/api/v1/notify', '/api/:app/pays/services/PaySvc/wechatNotify'];

/** Builds the api app; main.ts and the e2e tests both use it, so tests run the real wiring. */
export async function createApiApp(opts: ApiAppOptions): Promise<INestApplication> {
  const app = await NestFactory.create<NestExpressApplication>(ApiModule.forRoot(opts), {
    bodyParser: false,
    logger: opts.logger ?? ['error', 'warn', 'log'],
  });
  const limit = opts.config.bodyLimitBytes;
  app.disable('x-powered-by');
  // The source IP of rate limits: the socket's, or the one TRUST_PROXY_HOPS proxies in front vouch for.
  app.set('trust proxy', opts.config.trustProxyHops);
  app.use(requestIdMiddleware);
  for (const m of opts.mounts ?? []) app.use(m.path, m.listener);
  // Notify routes take no bearer key: their own small limit (real notifies are a few KiB).
  app.use(RAW_BODY_PATHS, express.raw({ type: () => true, limit: opts.config.notifyBodyLimitBytes }));
  // The admin console's forms (urlencoded, small).
  app.use('/admin', express.urlencoded({ extended: false, limit: 16 * 1024, parameterLimit: 50 }));
  // JSON with money fields read from their literal text (API.md §3; json-body.ts).
  app.use(jsonBodyParser(limit));
  app.use(bodyParserErrorHandler);
  app.enableShutdownHooks();
  return app;
}
