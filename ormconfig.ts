import { DataSource } from 'typeorm';
import { loadAppConfig } from '#config';
import { prepareDataSource } from '#database';

/** The DataSource for the TypeORM CLI; the app builds the same options through the same function. */
const cfg = loadAppConfig();
const prepared = await prepareDataSource({ databaseUrl: cfg.databaseUrl, dataDir: cfg.dataDir });
export default new DataSource(prepared.options);
