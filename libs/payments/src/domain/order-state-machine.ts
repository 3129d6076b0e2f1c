import type { AttemptStatus, OrderStatus } from '#database';

export const ORDER_STATUSES: readonly OrderStatus[] = ['wait', 'success', 'close', 'timeout'];
export const ATTEMPT_STATUSES: readonly AttemptStatus[] = ['open', 'paid', 'closed', 'failed'];

/**
 * Order transitions (the seeds' PayStatusEnum). `close`, `timeout` and `success` are final: money that a
 * channel took after we ended the order is a late payment, recorded on its attempt (which becomes
 * `paid`) and refunded, while the order keeps saying what the merchant was told (docs/payments.md).
 */
const ORDER_TRANSITIONS: Readonly<Record<OrderStatus, readonly OrderStatus[]>> = {
  wait: ['success', 'close', 'timeout'],
  close: [],
  timeout: [],
  success: [],
};

/** Attempt transitions: a paid attempt never moves again; closed/failed may still learn of a payment. */
const ATTEMPT_TRANSITIONS: Readonly<Record<AttemptStatus, readonly AttemptStatus[]>> = {
  open: ['paid', 'closed', 'failed'],
  closed: ['paid'],
  failed: ['paid'],
  paid: [],
};

export function canTransitionOrder(from: OrderStatus, to: OrderStatus): boolean {
  return ORDER_TRANSITIONS[from].includes(to);
}

export function canTransitionAttempt(from: AttemptStatus, to: AttemptStatus): boolean {
  return ATTEMPT_TRANSITIONS[from].includes(to);
}

/** The statuses an order may be in for a move to `to` (the WHERE of the compare-and-set). */
export function orderSourcesFor(to: OrderStatus): OrderStatus[] {
  return ORDER_STATUSES.filter((from) => canTransitionOrder(from, to));
}

export function attemptSourcesFor(to: AttemptStatus): AttemptStatus[] {
  return ATTEMPT_STATUSES.filter((from) => canTransitionAttempt(from, to));
}
