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
  'EVENT_NOT_EXIST',
  'NOT_FOUND',
  'ORDER_EXISTS',
  'ORDER_STATUS_ERROR',
  'REFUND_AMOUNT_EXCEEDED',
  'IDEMPOTENCY_KEY_IN_USE',
  'PAYLOAD_TOO_LARGE',
  'IDEMPOTENCY_KEY_REUSED',
  'RATE_LIMITED',
  'CHANNEL_ERROR',
  'CHANNEL_TIMEOUT',
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
    case 'EVENT_NOT_EXIST':
    case 'NOT_FOUND':
      return 404;
    case 'ORDER_EXISTS':
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
    case 'CHANNEL_TIMEOUT':
      return 504;
    case 'INTERNAL_ERROR':
      return 500;
  }
}

/** An error whose message is safe to show a client: never put a secret or a raw channel message in it. */
export class PayError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Logged, never returned (raw channel sub_codes and the like). */
    readonly detail?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'PayError';
  }

  get status(): number {
    return httpStatusOf(this.code);
  }
}

/** Raised at startup for bad configuration; the message names the place and field, never the value. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
