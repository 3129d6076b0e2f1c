import { OrderEntity } from './order.entity.js';
import { PaymentAttemptEntity } from './payment-attempt.entity.js';

export * from './order.entity.js';
export * from './payment-attempt.entity.js';
export * from './bigint.transformer.js';

/** Entities listed explicitly (no globs). The inbox, idempotency and outbox tables are used via SQL. */
export const ENTITIES = [OrderEntity, PaymentAttemptEntity];
