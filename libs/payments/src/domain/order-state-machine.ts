import type { AttemptStatus, OrderStatus } from '#database';

export const ORDER_STATUSES: readonly OrderStatus[] = ['wait', 'success', 'close', 'timeout'];
export const ATTEMPT_STATUSES: readonly AttemptStatus[] = ['open', 'paid', 'closed', 'failed'];

/**
 * Order transitions (the seeds' PayStatusEnum). `close`/`timeout` → `success` exists because money that
 * a channel took after we closed our side is real: the order records it rather than losing it (a late
 * payment; refunding such a second or late payment is separate work). Nothing ever leaves `success`.
 */
const ORDER_TRANSITIONS: Readonly<Record<OrderStatus, readonly OrderStatus[]>> = {
  wait: ['success', 'close', 'timeout'],
  close: ['success'],
  timeout: ['success'],
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
