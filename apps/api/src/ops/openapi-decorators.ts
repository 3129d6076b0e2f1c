import { applyDecorators } from '@nestjs/common';
import { ApiResponse } from '@nestjs/swagger';

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'INVALID_PARAMS, INVALID_AMOUNT, UNKNOWN_PAY_TYPE or CHANNEL_NOT_FOUND',
  401: 'UNAUTHORIZED: missing or unknown API key',
  403: 'FORBIDDEN: the key role may not call this',
  404: 'ORDER_NOT_EXIST_ERROR, REFUND_NOT_EXIST or EVENT_NOT_EXIST',
  409: 'ORDER_EXISTS, REFUND_EXISTS, ORDER_STATUS_ERROR or REFUND_AMOUNT_EXCEEDED',
  413: 'PAYLOAD_TOO_LARGE',
  422: 'IDEMPOTENCY_KEY_REUSED',
  429: 'RATE_LIMITED (with Retry-After)',
  500: 'INTERNAL_ERROR',
  502: 'CHANNEL_ERROR',
  503: 'SERVICE_UNAVAILABLE: the database is unreachable (with Retry-After)',
  504: 'CHANNEL_TIMEOUT',
};

/** Error answers `{code, message, requestId}` (API.md §7) for the given statuses, plus 500 and 503. */
export function ApiErrors(...statuses: number[]): MethodDecorator & ClassDecorator {
  const all = [...new Set([...statuses, 500, 503])].sort();
  return applyDecorators(
    ...all.map((status) =>
      ApiResponse({
        status,
        description: ERROR_DESCRIPTIONS[status] ?? 'error',
        schema: { $ref: '#/components/schemas/Error' },
      }),
    ),
  );
}

/** A success answer whose body is one of the schemas in openapi-schemas.ts. */
export function ApiAnswer(status: number, schema: string, description = 'OK', array = false): MethodDecorator {
  const $ref = `#/components/schemas/${schema}`;
  return ApiResponse({ status, description, schema: array ? { type: 'array', items: { $ref } } : { $ref } });
}
