import { existsSync } from 'node:fs';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ConfigError, PinoNestLogger, createPinoLogger } from '#common';
import { loadAppConfig, loadPaysDir } from '#config';
import { channelProviders } from '#channels';
import { WorkerModule } from './worker.module.js';

/**
 * `npm run start:worker`: the timeout closer and the order sync, no HTTP. Any number of workers and
 * api processes may run on one PostgreSQL database. Channels come from pays/ (the sandbox lives in an
 * api process, so a worker needs real or exported instance configs).
 */
async function main(): Promise<void> {
  const config = loadAppConfig();
  if (!config.databaseUrl) {
    throw new ConfigError('the worker needs DATABASE_URL: the embedded database belongs to one process (the api)');
  }
  if (config.paysDirSet && !existsSync(config.paysDir)) {
    throw new ConfigError(`PAYS_DIR is set to "${config.paysDir}", which does not exist`);
  }
  const instances = loadPaysDir(config.paysDir);
  const app = await NestFactory.createApplicationContext(
    WorkerModule.forRoot({ config, channelProviders: channelProviders(), instances }),
    { bufferLogs: true },
  );
  app.useLogger(
    new PinoNestLogger(createPinoLogger({ level: config.logLevel, format: config.logFormat, app: 'worker' })),
  );
  app.flushLogs();
  app.enableShutdownHooks();
  new Logger('Worker').log(
    `worker running with ${instances.length} channel instance(s), sweeping every ${config.sweepIntervalSeconds} s`,
  );
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) console.error(`PayBridge worker cannot start: ${err.message}`);
  else console.error('PayBridge worker failed to start:', err);
  process.exit(1);
});
