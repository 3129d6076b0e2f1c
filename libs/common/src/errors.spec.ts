import { type ErrorCode, PayError } from './errors.js';

describe('PayError.retryable (issue 9 item 6: what an Idempotency-Key never stores)', () => {
  it.each<ErrorCode>(['CHANNEL_ERROR', 'CHANNEL_TIMEOUT', 'INTERNAL_ERROR', 'RATE_LIMITED', 'IDEMPOTENCY_KEY_IN_USE'])(
    '%s is retryable',
    (code) => {
      expect(new PayError(code, 'x').retryable).toBe(true);
    },
  );

  it.each<ErrorCode>(['INVALID_PARAMS', 'INVALID_AMOUNT', 'ORDER_EXISTS', 'ORDER_STATUS_ERROR', 'NOT_FOUND'])(
    '%s is final unless raised with the retryable hint',
    (code) => {
      expect(new PayError(code, 'x').retryable).toBe(false);
      expect(new PayError(code, 'x', undefined, { retryable: true }).retryable).toBe(true);
    },
  );
});
