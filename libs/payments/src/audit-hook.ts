import type { EntityManager } from 'typeorm';

/**
 * Runs inside the transaction of an action's effect (the admin console's audit entry), with what the
 * action made. If it throws, the effect rolls back with it.
 */
export type AuditHook<T> = (em: EntityManager, after: T) => Promise<void>;
