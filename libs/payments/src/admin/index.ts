export * from './admin-store.js';
export * from './audit-store.js';
export * from './admin.service.js';
