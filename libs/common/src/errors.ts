/**
 * The closed set of error codes of the HTTP contract (../shared/design/API.md §7), plus the two this
 * project added (docs/errors.md). Every error leaving the API is a PayError carrying one of them; the
 * HTTP status comes from one exhaustive switch.
 */
export const ERROR_CODES = [
  'INVALID_PARAMS',
  'INVALID_AMOUNT',
  'UNKNOWN_PAY_TYPE',
  'CHANNEL_NOT_FOUND',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'ORDER_NOT_EXIST_ERROR',
  'REFUND_NOT_EXIST',
  'EVENT_NOT_EXIST',
  'NOT_FOUND',
  'ORDER_EXISTS',
  'REFUND_EXISTS',
  'ORDER_STATUS_ERROR',
  'REFUND_AMOUNT_EXCEEDED',
  'IDEMPOTENCY_KEY_IN_USE',
  'PAYLOAD_TOO_LARGE',
  'IDEMPOTENCY_KEY_REUSED',
  'RATE_LIMITED',
  'CHANNEL_ERROR',
  'CHANNEL_TIMEOUT',
  'SERVICE_UNAVAILABLE',
  'INTERNAL_ERROR',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export function httpStatusOf(code: ErrorCode): number {
  switch (code) {
    case 'INVALID_PARAMS':
    case 'INVALID_AMOUNT':
    case 'UNKNOWN_PAY_TYPE':
    case 'CHANNEL_NOT_FOUND':
      return 400;
    case 'UNAUTHORIZED':
      return 401;
    case 'FORBIDDEN':
      return 403;
    case 'ORDER_NOT_EXIST_ERROR':
    case 'REFUND_NOT_EXIST':
    case 'EVENT_NOT_EXIST':
    case 'NOT_FOUND':
      return 404;
    case 'ORDER_EXISTS':
    case 'REFUND_EXISTS':
    case 'ORDER_STATUS_ERROR':
    case 'REFUND_AMOUNT_EXCEEDED':
    case 'IDEMPOTENCY_KEY_IN_USE':
      return 409;
    case 'PAYLOAD_TOO_LARGE':
      return 413;
    case 'IDEMPOTENCY_KEY_REUSED':
      return 422;
    case 'RATE_LIMITED':
      return 429;
    case 'CHANNEL_ERROR':
      return 502;
    case 'SERVICE_UNAVAILABLE':
      return 503;
    case 'CHANNEL_TIMEOUT':
      return 504;
    case 'INTERNAL_ERROR':
      return 500;
  }
}

/** How a client should treat an error beyond its code. */
export interface PayErrorHints {
  /** The same request may succeed shortly (a payment being created, a busy resource): never cached as final. */
  readonly retryable?: boolean;
  /** Seconds to wait, sent as `Retry-After` (RATE_LIMITED). */
  readonly retryAfterSeconds?: number;
}

/** An error whose message is safe to show a client: never put a secret or a raw channel message in it. */
export class PayError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Logged, never returned (raw channel sub_codes and the like). */
    readonly detail?: Record<string, unknown>,
    readonly hints: PayErrorHints = {},
  ) {
    super(message);
    this.name = 'PayError';
  }

  get status(): number {
    return httpStatusOf(this.code);
  }

  /**
   * Whether a retry of the same request may get another answer: 5xx, 429, a key in use, or an error
   * raised as retryable. Such answers are never stored as an Idempotency-Key's final answer.
   */
  get retryable(): boolean {
    return (
      this.status >= 500 ||
      this.status === 429 ||
      this.code === 'IDEMPOTENCY_KEY_IN_USE' ||
      this.hints.retryable === true
    );
  }
}

/** Raised at startup for bad configuration; the message names the place and field, never the value. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
