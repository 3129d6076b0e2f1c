import { DataSource } from 'typeorm';
import { loadAppConfig } from '#config';
import { prepareDataSource } from '../data-source.options.js';
import { runMigrations } from '../advisory-lock.js';

/** `npm run migration:run`: applies pending migrations to DATABASE_URL (or the embedded database). */
const cfg = loadAppConfig();
const prepared = await prepareDataSource({ databaseUrl: cfg.databaseUrl, dataDir: cfg.dataDir, poolSize: 2 });
const ds = new DataSource(prepared.options);
await ds.initialize();
try {
  const applied = await runMigrations(ds, prepared.embedded !== undefined);
  process.stdout.write(`${applied.length ? `applied: ${applied.join(', ')}` : 'no pending migrations'}\n`);
} finally {
  await ds.destroy();
  await prepared.embedded?.close();
}
