import { ERROR_CODES } from '#common';

type Schema = Record<string, unknown>;

const str = (description?: string): Schema => ({ type: 'string', ...(description ? { description } : {}) });
const nullable = (s: Schema): Schema => ({ ...s, nullable: true });
const money = (description: string): Schema => ({
  type: 'string',
  pattern: '^\\d+(\\.\\d+)?$',
  description: `${description}: a decimal string with the currency's exact decimals (API.md §3)`,
  example: '99.99',
});
const dateTime = (description?: string): Schema => ({ ...str(description), format: 'date-time' });
const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });

/**
 * The answer bodies (API.md §4, §7, §10). They are TypeScript interfaces in #payments (no run-time
 * metadata), so they are written here; openapi.e2e-spec.ts checks real answers against them.
 */
export const RESPONSE_SCHEMAS: Record<string, Schema> = {
  Error: {
    type: 'object',
    required: ['code', 'message', 'requestId'],
    properties: {
      code: { type: 'string', enum: [...ERROR_CODES] },
      message: str('For people; a channel raw message is never in it'),
      requestId: str('The X-Request-Id of the request, also in the logs'),
    },
  },
  Payment: {
    type: 'object',
    required: [
      'channel',
      'payType',
      'amount',
      'currency',
      'channelTradeNo',
      'paidAt',
      'refundedAmount',
      'second',
      'late',
    ],
    properties: {
      channel: str(),
      payType: str(),
      amount: money('Amount paid'),
      currency: str(),
      channelTradeNo: nullable(str()),
      paidAt: nullable(dateTime()),
      refundedAmount: money('Refunded so far'),
      second: { type: 'boolean', description: 'A second payment of a paid order' },
      late: { type: 'boolean', description: 'Paid after the order was closed or timed out' },
    },
  },
  Order: {
    type: 'object',
    required: [
      'orderId',
      'subject',
      'amount',
      'currency',
      'status',
      'channel',
      'payType',
      'channelTradeNo',
      'payTime',
      'expireTime',
      'createdAt',
      'refundedAmount',
      'refundStatus',
      'metadata',
    ],
    properties: {
      orderId: str(),
      subject: str(),
      amount: money('Order amount'),
      currency: str('ISO 4217'),
      status: { type: 'string', enum: ['wait', 'success', 'close', 'timeout'] },
      channel: nullable(str('fullName of the channel instance that was paid')),
      payType: nullable(str()),
      channelTradeNo: nullable(str()),
      payTime: nullable(dateTime()),
      expireTime: dateTime(),
      createdAt: dateTime(),
      refundedAmount: money('Sum of successful refunds'),
      refundStatus: { type: 'string', enum: ['none', 'partial', 'full'] },
      metadata: { type: 'object', nullable: true, additionalProperties: true },
      payments: { type: 'array', items: ref('Payment') },
    },
  },
  ClientResult: {
    allOf: [
      ref('Order'),
      {
        type: 'object',
        required: ['next', 'meaning'],
        properties: { next: { type: 'string', enum: ['done', 'poll', 'retry', 'choose_again'] }, meaning: str() },
      },
    ],
  },
  JsapiParams: {
    type: 'object',
    required: ['appId', 'timeStamp', 'nonceStr', 'package', 'signType', 'paySign'],
    properties: {
      appId: str(),
      timeStamp: str(),
      nonceStr: str(),
      package: str(),
      signType: str(),
      paySign: str('For WeixinJSBridge: the payer device needs it'),
    },
  },
  PayInfo: {
    type: 'object',
    required: ['orderId', 'channel', 'payType', 'payUrl', 'qrCode', 'form', 'jsapiParams', 'expireTime'],
    properties: {
      orderId: str(),
      channel: str(),
      payType: str(),
      payUrl: nullable(str('QR content or redirect URL')),
      qrCode: nullable(str('PNG data URL for QR pay types')),
      form: nullable(str('Auto-submitting HTML form (WAP_PAY, PAGE_PAY)')),
      jsapiParams: { allOf: [ref('JsapiParams')], nullable: true },
      expireTime: dateTime(),
    },
  },
  Refund: {
    type: 'object',
    required: [
      'refundId',
      'orderId',
      'amount',
      'currency',
      'status',
      'reason',
      'source',
      'channel',
      'channelRefundNo',
      'failureCode',
      'createdAt',
      'finishedAt',
    ],
    properties: {
      refundId: str(),
      orderId: str(),
      amount: money('Refund amount'),
      currency: str(),
      status: { type: 'string', enum: ['pending', 'success', 'failed'] },
      reason: nullable(str()),
      source: { type: 'string', enum: ['api', 'admin', 'auto_second_payment', 'auto_late_payment'] },
      channel: str(),
      channelRefundNo: nullable(str()),
      failureCode: nullable(str()),
      createdAt: dateTime(),
      finishedAt: nullable(dateTime()),
    },
  },
  Delivery: {
    type: 'object',
    required: ['endpoint', 'status', 'attempts'],
    properties: {
      endpoint: str(),
      status: { type: 'string', enum: ['pending', 'delivered', 'failed'] },
      attempts: { type: 'integer' },
      lastStatusCode: { type: 'integer', nullable: true },
      lastError: nullable(str()),
      lastAttemptAt: nullable(dateTime()),
      nextAttemptAt: nullable(dateTime()),
      deliveredAt: nullable(dateTime()),
    },
  },
  Event: {
    type: 'object',
    required: ['id', 'type', 'orderId', 'createdAt', 'data'],
    properties: {
      id: str('evt_...: the same on every retry and resend'),
      type: {
        type: 'string',
        enum: [
          'order.succeeded',
          'order.closed',
          'order.timeout',
          'payment.second',
          'payment.late',
          'refund.succeeded',
          'refund.failed',
        ],
      },
      orderId: str(),
      createdAt: dateTime(),
      data: {
        type: 'object',
        properties: { order: ref('Order'), refund: ref('Refund') },
        additionalProperties: true,
      },
      deliveries: { type: 'array', items: ref('Delivery') },
    },
  },
  EventList: {
    type: 'object',
    required: ['items', 'nextCursor'],
    properties: { items: { type: 'array', items: ref('Event') }, nextCursor: nullable(str()) },
  },
};
