import type { DataSourceOptions } from 'typeorm';
import { ENTITIES } from './entities/index.js';
import { EmbeddedDatabase } from './embedded-database.js';
import { Initial1764000000000 } from './migrations/1764000000000-Initial.js';
import { AlipayPlusAuthorizations1765000000000 } from './migrations/1765000000000-AlipayPlusAuthorizations.js';
import { ClaimTokensAndRateLimits1765000001000 } from './migrations/1765000001000-ClaimTokensAndRateLimits.js';
import { CancelMark1765000002000 } from './migrations/1765000002000-CancelMark.js';
import { Refunds1765100000000 } from './migrations/1765100000000-Refunds.js';
import { Webhooks1765200000000 } from './migrations/1765200000000-Webhooks.js';
import { AdminConsole1765300000000 } from './migrations/1765300000000-AdminConsole.js';

/** Migrations listed explicitly, in order. Never edit one that has landed: add a new one. */
export const MIGRATIONS = [
  Initial1764000000000,
  AlipayPlusAuthorizations1765000000000,
  ClaimTokensAndRateLimits1765000001000,
  CancelMark1765000002000,
  Refunds1765100000000,
  Webhooks1765200000000,
  AdminConsole1765300000000,
];

export interface DatabaseSettings {
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly poolSize?: number;
  /** Embedded database: how long a query waits for the single connection (then 503). */
  readonly embeddedQueueTimeoutMs?: number;
}

export interface PreparedDataSource {
  readonly options: DataSourceOptions;
  /** Set on the embedded path: close it after the DataSource. */
  readonly embedded: EmbeddedDatabase | undefined;
}

/**
 * One function serves the Nest TypeORM module, the migration CLI and ormconfig.ts (twenty's habit):
 * PostgreSQL when DATABASE_URL is set, the embedded PGlite otherwise, with the same migrations.
 */
export async function prepareDataSource(settings: DatabaseSettings): Promise<PreparedDataSource> {
  const common = {
    type: 'postgres' as const,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsRun: false,
    synchronize: false,
    installExtensions: false,
    // Off: TypeORM's error log prints every parameter of a failed query (payer data, notify bodies).
    // Errors still propagate to the caller, which logs the message.
    logging: false,
  };
  if (settings.databaseUrl) {
    return {
      options: { ...common, url: settings.databaseUrl, poolSize: settings.poolSize ?? 10, connectTimeoutMS: 10_000 },
      embedded: undefined,
    };
  }
  const embedded = await EmbeddedDatabase.open(settings.dataDir);
  return {
    options: {
      ...common,
      poolSize: 1,
      // A second connection asked for inside a transaction fails fast instead of hanging (STACK.md);
      // a request queued behind the single connection longer than this answers 503.
      connectTimeoutMS: settings.embeddedQueueTimeoutMs ?? 5_000,
      extra: { connection: embedded.connection, max: 1 },
    },
    embedded,
  };
}
