import { type DynamicModule, Logger, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '#config';
import { type EmbeddedDatabase, type WaitingPool, boundPoolQueue } from './embedded-database.js';
import { prepareDataSource } from './data-source.options.js';
import { runMigrations } from './advisory-lock.js';

interface FactoryOptions {
  readonly prepared: Awaited<ReturnType<typeof prepareDataSource>>;
  readonly dbMigrate: boolean;
  readonly embeddedQueueMax: number;
}

/**
 * The DataSource for PostgreSQL or the embedded database, migrated at start unless DB_MIGRATE=false.
 * The embedded database is closed right after the DataSource, whoever destroys it.
 */
@Module({})
export class DatabaseModule {
  static forRoot(): DynamicModule {
    return {
      module: DatabaseModule,
      imports: [
        TypeOrmModule.forRootAsync({
          inject: [APP_CONFIG],
          useFactory: async (cfg: AppConfig) => {
            const prepared = await prepareDataSource({
              databaseUrl: cfg.databaseUrl,
              dataDir: cfg.dataDir,
              embeddedQueueTimeoutMs: cfg.embeddedQueueTimeoutMs,
            });
            // Nest hands this object to dataSourceFactory unchanged; the real options are inside.
            const factory: FactoryOptions = {
              prepared,
              dbMigrate: cfg.dbMigrate,
              embeddedQueueMax: cfg.embeddedQueueMax,
            };
            return { ...prepared.options, factory } as never;
          },
          dataSourceFactory: async (options) => {
            const { factory } = options as unknown as { factory: FactoryOptions };
            const { prepared, dbMigrate, embeddedQueueMax } = factory;
            const embedded: EmbeddedDatabase | undefined = prepared.embedded;
            const ds = new DataSource(prepared.options);
            try {
              await ds.initialize();
              if (embedded) boundPoolQueue((ds.driver as unknown as { master: WaitingPool }).master, embeddedQueueMax);
              if (dbMigrate) {
                const applied = await runMigrations(ds, embedded !== undefined);
                if (applied.length) new Logger('Database').log(`applied migrations: ${applied.join(', ')}`);
              }
            } catch (err) {
              if (ds.isInitialized) await ds.destroy();
              await embedded?.close();
              throw err;
            }
            const destroy = ds.destroy.bind(ds);
            ds.destroy = async () => {
              try {
                await destroy();
              } finally {
                await embedded?.close();
              }
            };
            return ds;
          },
        }),
      ],
    };
  }
}
