import { randomUUID } from 'node:crypto';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { channelProviders } from '#channels';
import { loadAppConfig } from '#config';
import { startSandbox } from '#sandbox';
import { ApiModule } from '../apps/api/src/api.module.js';

/**
 * EXPERIMENT, not the app (docs/benchmarks.md, "Fastify"): the same ApiModule (controllers, guard,
 * pipe, filter, interceptor, database, channels) served by @nestjs/platform-fastify instead of Express,
 * for `bench/http.bench.ts APP_MAIN=dist/bench/fastify-api.main.js`. Only what create/get order need is
 * adapted: Express's `req.header()` (used by the guard and the Idempotency-Key interceptor) is given to
 * Fastify's request, and the request id is set in an onRequest hook. Not done: raw-body notify routes,
 * the sandbox simulators mounted on the server, the Express-typed error filter and health answer.
 */
const config = loadAppConfig();
const listenUrl = `http://${config.host}:${config.port}`;
const sandbox = await startSandbox({ baseUrl: listenUrl });
const apiKeys = config.apiKeys;
if (!apiKeys) throw new Error('API_KEYS is required');
const adapter = new FastifyAdapter({ bodyLimit: config.bodyLimitBytes });
const fastify = adapter.getInstance();
fastify.decorateRequest('header', function (this: { headers: Record<string, unknown> }, name: string) {
  return this.headers[name.toLowerCase()];
});
const SAFE_ID = /^[A-Za-z0-9._:-]{1,64}$/;
fastify.addHook('onRequest', (req, reply, done) => {
  const given = req.headers['x-request-id'];
  const id = typeof given === 'string' && SAFE_ID.test(given) ? given : randomUUID();
  (req as unknown as { requestId: string }).requestId = id;
  void reply.header('X-Request-Id', id);
  done();
});
const app = await NestFactory.create<NestFastifyApplication>(
  ApiModule.forRoot({ config, apiKeys, channelProviders: channelProviders(), instances: sandbox.instances }),
  adapter,
  { logger: ['error', 'warn', 'log'] },
);
await app.listen(config.port, config.host);
console.log(`PayBridge listening on ${listenUrl} (Fastify experiment)`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
