export * from './errors.js';
export * from './money.js';
export * from './ids.js';
export * from './clock.js';
export * from './secret.js';
export * from './logging.js';
export * from './nest-logger.js';
