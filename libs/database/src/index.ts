export * from './entities/index.js';
export * from './data-source.options.js';
export * from './embedded-database.js';
export * from './advisory-lock.js';
export * from './database.module.js';
export * from './db-unavailable.js';
export * from './embedded-lock.js';
