export * from './payments.module.js';
export * from './pay.service.js';
export * from './order-store.js';
export * from './payment-transitions.js';
export * from './public-url.js';
export * from './notify/notify.service.js';
export * from './domain/order-state-machine.js';
export * from './jobs/index.js';
