export * from './job-stats.js';
export * from './backoff.js';
export * from './timeout-closer.job.js';
export * from './order-sync.job.js';
export * from './jobs.runner.js';
export * from './housekeeping.job.js';
