import { currencyExponent, isSupportedCurrency, parseMinorString, type Money } from '#common';
import type { ChannelPaymentStatus, ChannelRefundSnapshot, NotifyReply, RefundNews } from '../channel.interface.js';

/**
 * Wire mapping of Alipay+ mini-program payment (shared/design/PROTOCOLS.md §3). Pure functions, no I/O.
 * Every scalar on the wire is a JSON string (§3.4, §3.8).
 */

export const ALIPAYPLUS_PAY_TYPES = ['CASHIER'] as const;
export type AlipayPlusPayType = (typeof ALIPAYPLUS_PAY_TYPES)[number];

/** `pc` and `mobile` both mean the cashier (API.md §4): the mini program opens it with my.tradePay. */
export function resolveAlipayPlusPayType(payType: string): AlipayPlusPayType | undefined {
  if (payType === 'pc' || payType === 'mobile' || payType === 'CASHIER') return 'CASHIER';
  return undefined;
}

/**
 * Paths below the gateway URL. applyToken and pay are the documented v2 mini-program paths; inquiry and
 * cancel are documented as v1 (§3.7). A wallet that serves other versions needs its own table here.
 */
export const ALIPAYPLUS_PATHS = {
  applyToken: '/v2/authorizations/applyToken',
  pay: '/v2/payments/pay',
  inquiryPayment: '/v1/payments/inquiryPayment',
  cancel: '/v1/payments/cancel',
  refund: '/v2/payments/refund',
  inquiryRefund: '/v2/payments/inquiryRefund',
} as const;

export const DEFAULT_PRODUCT_CODE = 'CASHIER_PAYMENT';

// ---------------------------------------------------------------------------------------------------
// Small readers

export type Json = Readonly<Record<string, unknown>>;

export function asObject(value: unknown): Json | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : undefined;
}

/** A string member; numbers are not coerced (the protocol sends every scalar as a string). */
export function str(node: Json | undefined, key: string): string | undefined {
  const v = node?.[key];
  return typeof v === 'string' ? v : undefined;
}

/** Case-insensitive header lookup in a plain record (RawNotify headers). */
export function headerOf(headers: Readonly<Record<string, string>>, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === wanted) return v;
  return undefined;
}

// ---------------------------------------------------------------------------------------------------
// Money and time

export interface WireAmount {
  readonly currency: string;
  readonly value: string;
}

/** Money -> `{currency, value}` with value the integer count of minor units as a string ("10000" = 100.00 USD). */
export function toWireAmount(amount: Money): WireAmount {
  currencyExponent(amount.currency); // refuses an unsupported currency (INVALID_PARAMS)
  if (!Number.isSafeInteger(amount.minor) || amount.minor <= 0) {
    throw new RangeError('amount must be a positive integer of minor units');
  }
  return { currency: amount.currency, value: amount.minor.toString() };
}

/** `{currency, value}` -> Money, strictly (plain integer string, known currency); undefined otherwise. */
export function fromWireAmount(node: unknown): Money | undefined {
  const o = asObject(node);
  const currency = str(o, 'currency');
  const value = str(o, 'value');
  if (currency === undefined || value === undefined || !isSupportedCurrency(currency)) return undefined;
  const minor = parseMinorString(value);
  return minor === undefined ? undefined : { minor, currency };
}

/** ISO 8601 with an explicit offset, whole seconds: `2020-06-08T12:12:12+08:00` (the docs' example form). */
export function isoWithOffset(date: Date, offsetMinutes = 480): string {
  const d = new Date(date.getTime() + offsetMinutes * 60_000);
  const p = (n: number): string => n.toString().padStart(2, '0');
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  return (
    `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}` +
    `T${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}` +
    `${sign}${p(Math.floor(abs / 60))}:${p(abs % 60)}`
  );
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$/;

/** Parses an ISO 8601 time that names its offset; undefined for anything else. */
export function parseIsoTime(text: unknown): Date | undefined {
  if (typeof text !== 'string' || !ISO.test(text)) return undefined;
  const t = Date.parse(text);
  return Number.isNaN(t) ? undefined : new Date(t);
}

// ---------------------------------------------------------------------------------------------------
// Results

export interface AlipayPlusResult {
  readonly resultStatus: string;
  readonly resultCode: string;
  readonly resultMessage?: string;
}

/** `result{resultStatus,resultCode,resultMessage}` of any answer; undefined when it is missing. */
export function readResult(node: unknown): AlipayPlusResult | undefined {
  const r = asObject(node);
  const resultStatus = str(r, 'resultStatus');
  if (resultStatus === undefined) return undefined;
  const resultMessage = str(r, 'resultMessage');
  return {
    resultStatus,
    resultCode: str(r, 'resultCode') ?? '',
    ...(resultMessage !== undefined ? { resultMessage } : {}),
  };
}

/**
 * The cashier URL of a pay answer: `redirectActionForm.redirectUrl` (the SDK's field name), falling back
 * to `redirectionUrl` (Rebell, Qi) and to `normalUrl`/`schemeUrl`/`applinkUrl` (Antom's top-level
 * variants). Only http(s) URLs count.
 */
export function readRedirectUrl(body: Json): string | undefined {
  const form = asObject(body['redirectActionForm']) ?? asObject(body['redirectionActionForm']);
  const candidates = [
    str(form, 'redirectUrl'),
    str(form, 'redirectionUrl'),
    str(body, 'normalUrl'),
    str(body, 'schemeUrl'),
    str(body, 'applinkUrl'),
  ];
  for (const c of candidates) if (c !== undefined && /^https?:\/\//i.test(c)) return c;
  return undefined;
}

export type PayAnswer =
  | { readonly kind: 'cashier'; readonly url: string; readonly paymentId?: string }
  | { readonly kind: 'paid'; readonly paymentId?: string }
  | { readonly kind: 'failed'; readonly result: AlipayPlusResult }
  | { readonly kind: 'unknown'; readonly result: AlipayPlusResult | undefined };

/**
 * §3.4: any non-F answer with a redirect URL means "go to the cashier" (whether the wallet says A/ACCEPT
 * or U/PAYMENT_IN_PROCESS: both variants are handled); S without a URL is already paid (agreement pay);
 * F is final; U or A without a URL is unknown (inquire).
 */
export function classifyPayAnswer(body: Json): PayAnswer {
  const result = readResult(body['result']);
  const paymentId = str(body, 'paymentId');
  const withId = paymentId !== undefined ? { paymentId } : {};
  if (!result) return { kind: 'unknown', result };
  if (result.resultStatus === 'F') return { kind: 'failed', result };
  const url = readRedirectUrl(body);
  if (url !== undefined) return { kind: 'cashier', url, ...withId };
  if (result.resultStatus === 'S') return { kind: 'paid', ...withId };
  return { kind: 'unknown', result };
}

/** F codes of pay that mean the request itself (customer, amount, currency) is at fault, not the channel. */
const PAY_CLIENT_FAULTS: ReadonlySet<string> = new Set([
  'USER_NOT_EXIST',
  'INVALID_ACCESS_TOKEN',
  'CURRENCY_NOT_SUPPORT',
  'PAYMENT_AMOUNT_EXCEED_LIMIT',
  'USER_STATUS_ABNORMAL',
]);

export function isPayClientFault(code: string): boolean {
  return PAY_CLIENT_FAULTS.has(code);
}

/**
 * applyToken F codes that refuse the grant itself (the user must authorize again), as opposed to a
 * channel or configuration fault (INVALID_SIGNATURE, INVALID_AUTH_CLIENT, ACCESS_DENIED, PARAM_ILLEGAL…).
 * §3.3 lists EXPIRED_CODE and USED_REFRESH_TOKEN; the others are the obvious siblings (UNVERIFIED).
 */
const GRANT_REFUSALS: ReadonlySet<string> = new Set([
  'EXPIRED_CODE',
  'INVALID_CODE',
  'USED_CODE',
  'USED_REFRESH_TOKEN',
  'EXPIRED_REFRESH_TOKEN',
  'INVALID_REFRESH_TOKEN',
  'USER_NOT_EXIST',
]);

export function isGrantRefusal(code: string): boolean {
  return GRANT_REFUSALS.has(code);
}

/** pay F codes after which the stored authorization is useless. */
export function invalidatesAuthorization(code: string): boolean {
  return code === 'INVALID_ACCESS_TOKEN' || code === 'USER_NOT_EXIST';
}

// ---------------------------------------------------------------------------------------------------
// inquiryPayment

export type InquiryAnswer =
  | {
      readonly kind: 'found';
      readonly status: Exclude<ChannelPaymentStatus, 'not_found'>;
      readonly raw: string;
    }
  | { readonly kind: 'not_found' }
  | { readonly kind: 'error'; readonly result: AlipayPlusResult | undefined };

/**
 * §3.7. `result` says whether the call worked: F/ORDER_NOT_EXIST is "not found", any other F or U is an
 * error (retry). The payment outcome is `paymentStatus` (SUCCESS | FAIL | PROCESSING | CANCELLED, Antom
 * adds PENDING) or, in the v2 mini-program variant, `paymentResult.resultStatus` (S | F | U | A).
 * Anything unrecognised is `pending`: an unknown word never marks an order paid or failed.
 */
export function mapInquiry(body: Json): InquiryAnswer {
  const result = readResult(body['result']);
  if (!result) return { kind: 'error', result };
  if (result.resultStatus === 'F' && isNotFoundCode(result.resultCode)) return { kind: 'not_found' };
  if (result.resultStatus !== 'S') return { kind: 'error', result };
  const paymentStatus = str(body, 'paymentStatus');
  if (paymentStatus !== undefined) {
    switch (paymentStatus) {
      case 'SUCCESS':
        return { kind: 'found', status: 'paid', raw: paymentStatus };
      case 'FAIL':
        return { kind: 'found', status: 'failed', raw: paymentStatus };
      case 'CANCELLED':
        return { kind: 'found', status: 'closed', raw: paymentStatus };
      default: // PROCESSING, PENDING, anything new
        return { kind: 'found', status: 'pending', raw: paymentStatus };
    }
  }
  const paymentResult = readResult(body['paymentResult']);
  if (paymentResult) {
    const raw = `${paymentResult.resultStatus}/${paymentResult.resultCode}`;
    if (paymentResult.resultStatus === 'S') return { kind: 'found', status: 'paid', raw };
    if (paymentResult.resultStatus === 'F') return { kind: 'found', status: 'failed', raw };
    return { kind: 'found', status: 'pending', raw };
  }
  return { kind: 'found', status: 'pending', raw: 'UNKNOWN' };
}

export function isNotFoundCode(code: string): boolean {
  return code === 'ORDER_NOT_EXIST' || code === 'ORDER_NOT_EXISTS' || code === 'PAYMENT_NOT_EXIST';
}

// ---------------------------------------------------------------------------------------------------
// notifyPayment

export interface ParsedPaymentNotify {
  readonly paymentRequestId: string;
  readonly paymentId?: string;
  /** `S` / `F` / other, from paymentResult (v2) or paymentStatus (v1/TNG variant). */
  readonly resultStatus: string;
  readonly resultCode: string;
  readonly status: ChannelPaymentStatus;
  readonly amount?: Money;
  readonly paidAt?: Date;
}

/** Why a notify body was refused (for logs; the wallet just gets the failure reply). */
export class NotifyBodyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotifyBodyError';
  }
}

/**
 * §3.6: `paymentResult{resultStatus}` S = paid, F = failed (the v1/TNG variant's `paymentStatus`
 * SUCCESS/FAIL is read when paymentResult is absent); anything else is pending. A paid notify must carry
 * a well-formed paymentAmount (the order's amount is checked against it) and its paymentTime is used
 * when it parses.
 */
export function parsePaymentNotify(body: Json): ParsedPaymentNotify {
  const paymentRequestId = str(body, 'paymentRequestId');
  if (paymentRequestId === undefined || paymentRequestId === '') throw new NotifyBodyError('no paymentRequestId');
  const paymentId = str(body, 'paymentId');
  let resultStatus: string;
  let resultCode: string;
  const pr = readResult(body['paymentResult']);
  if (pr) {
    resultStatus = pr.resultStatus;
    resultCode = pr.resultCode;
  } else {
    const ps = str(body, 'paymentStatus');
    if (ps === undefined) throw new NotifyBodyError('no paymentResult');
    resultStatus = ps === 'SUCCESS' ? 'S' : ps === 'FAIL' ? 'F' : 'U';
    resultCode = ps;
  }
  const status: ChannelPaymentStatus = resultStatus === 'S' ? 'paid' : resultStatus === 'F' ? 'failed' : 'pending';
  let amount: Money | undefined;
  if (body['paymentAmount'] !== undefined) {
    amount = fromWireAmount(body['paymentAmount']);
    if (!amount) throw new NotifyBodyError('malformed paymentAmount');
  } else if (status === 'paid') {
    throw new NotifyBodyError('a paid notify without paymentAmount');
  }
  const paidAt = status === 'paid' ? parseIsoTime(body['paymentTime']) : undefined;
  return {
    paymentRequestId,
    ...(paymentId !== undefined && paymentId !== '' ? { paymentId } : {}),
    resultStatus,
    resultCode,
    status,
    ...(amount ? { amount } : {}),
    ...(paidAt ? { paidAt } : {}),
  };
}

/** The dedupe key of a notify: the wallet's paymentId (or our paymentRequestId) plus the outcome. */
export function notifyDedupeKey(n: ParsedPaymentNotify): string {
  return `${n.paymentId !== undefined ? n.paymentId : `req:${n.paymentRequestId}`}:${n.resultStatus}`;
}

/**
 * §3.6 merchant reply. Accepted: `{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}`.
 * Rejected: resultStatus F with HTTP 500, so that a wallet retries whether it reads the HTTP status or
 * the JSON (anything but S is "not received" to the simulator). Unsigned, as the SDK's example replies
 * (whether a signed reply is ever required is UNVERIFIED, §3.6).
 */
export function alipayPlusNotifyReply(outcome: 'accepted' | 'rejected'): NotifyReply {
  const result =
    outcome === 'accepted'
      ? { resultCode: 'SUCCESS', resultStatus: 'S', resultMessage: 'success' }
      : { resultCode: 'PROCESS_FAIL', resultStatus: 'F', resultMessage: 'notification not accepted' };
  return {
    status: outcome === 'accepted' ? 200 : 500,
    contentType: 'application/json',
    body: JSON.stringify({ result }),
  };
}

// ---------------------------------------------------------------------------------------------------
// refund / inquiryRefund / notifyRefund (PROTOCOLS-REFUNDS-BILLS.md §3.11–§3.13)

/**
 * F result codes of refund that are not a refusal of the refund but a broken configuration (the
 * request was not even considered): they throw, so the refund stays pending until the setup is fixed.
 */
const REFUND_CONFIG_FAULTS: ReadonlySet<string> = new Set([
  'INVALID_SIGNATURE',
  'ACCESS_DENIED',
  'INVALID_CLIENT',
  'INVALID_CLIENT_STATUS',
  'KEY_NOT_FOUND',
  'INVALID_API',
]);

export type RefundAnswer =
  | { readonly kind: 'snapshot'; readonly snapshot: ChannelRefundSnapshot }
  | { readonly kind: 'error'; readonly result: AlipayPlusResult | undefined };

/**
 * §3.11: S = done (the merchant was debited; refundId, refundTime); F = failed with the resultCode (a
 * new refundRequestId is needed for a new attempt), except configuration faults, which are errors;
 * U, no result or anything else = pending, never failed (retry with the same refundRequestId, or inquire).
 */
export function mapRefundAnswer(body: Json): RefundAnswer {
  const result = readResult(body['result']);
  const refundId = str(body, 'refundId');
  const common = refundId !== undefined && refundId !== '' ? { channelRefundNo: refundId } : {};
  if (result?.resultStatus === 'S') {
    const finishedAt = parseIsoTime(body['refundTime']);
    const amount = fromWireAmount(body['refundAmount']);
    return {
      kind: 'snapshot',
      snapshot: {
        status: 'success',
        raw: `S/${result.resultCode}`,
        ...common,
        ...(amount ? { amount } : {}),
        ...(finishedAt ? { finishedAt } : {}),
      },
    };
  }
  if (result?.resultStatus === 'F') {
    if (REFUND_CONFIG_FAULTS.has(result.resultCode)) return { kind: 'error', result };
    const failureCode = result.resultCode || 'UNKNOWN';
    return { kind: 'snapshot', snapshot: { status: 'failed', failureCode, raw: `F/${failureCode}` } };
  }
  const raw = result ? `${result.resultStatus}/${result.resultCode}` : 'no result';
  return { kind: 'snapshot', snapshot: { status: 'pending', raw, ...common } };
}

/**
 * §3.12: `result` is the call; F/REFUND_NOT_EXIST = not_found (the refund never landed: sending it
 * again with the same refundRequestId is safe); any other F or U is an error. With S, `refundStatus`
 * SUCCESS = success, FAIL = failed (failureCode refundFailReason), anything else (PROCESSING, PENDING,
 * something new) = pending.
 */
export function mapInquiryRefund(body: Json): RefundAnswer {
  const result = readResult(body['result']);
  if (result?.resultStatus === 'F' && result.resultCode === 'REFUND_NOT_EXIST') {
    return { kind: 'snapshot', snapshot: { status: 'not_found', raw: 'REFUND_NOT_EXIST' } };
  }
  if (result?.resultStatus !== 'S') return { kind: 'error', result };
  const refundStatus = str(body, 'refundStatus') ?? 'UNKNOWN';
  const refundId = str(body, 'refundId');
  const amount = fromWireAmount(body['refundAmount']);
  const finishedAt = refundStatus === 'SUCCESS' ? parseIsoTime(body['refundTime']) : undefined;
  const common = {
    raw: refundStatus,
    ...(refundId !== undefined && refundId !== '' ? { channelRefundNo: refundId } : {}),
    ...(amount ? { amount } : {}),
  };
  switch (refundStatus) {
    case 'SUCCESS':
      return { kind: 'snapshot', snapshot: { status: 'success', ...common, ...(finishedAt ? { finishedAt } : {}) } };
    case 'FAIL':
      return {
        kind: 'snapshot',
        snapshot: { status: 'failed', failureCode: str(body, 'refundFailReason') || 'FAIL', ...common },
      };
    default:
      return { kind: 'snapshot', snapshot: { status: 'pending', ...common } };
  }
}

/** A notifyRefund body (Antom `notifyType=REFUND_RESULT`, or a body naming a refund and no payment result). */
export function isRefundNotifyBody(body: Json): boolean {
  if (body['notifyType'] === 'REFUND_RESULT') return true;
  return body['refundRequestId'] !== undefined && body['paymentResult'] === undefined;
}

export interface ParsedRefundNotify {
  readonly news: RefundNews;
  readonly paymentRequestId?: string;
  readonly paymentId?: string;
  readonly dedupeKey: string;
  readonly raw: string;
}

/**
 * §3.13: refundStatus SUCCESS = success, FAIL = failed (refundFailReason or result.resultCode as the
 * code), PROCESSING (one wallet sends it) = pending; refundAmount must be well formed when present.
 */
export function parseRefundNotify(body: Json): ParsedRefundNotify {
  const refundId = str(body, 'refundRequestId');
  if (refundId === undefined || refundId === '') throw new NotifyBodyError('no refundRequestId');
  const refundStatus = str(body, 'refundStatus') ?? '';
  let status: RefundNews['status'];
  switch (refundStatus) {
    case 'SUCCESS':
      status = 'success';
      break;
    case 'FAIL':
      status = 'failed';
      break;
    case 'PROCESSING':
      status = 'pending';
      break;
    default:
      throw new NotifyBodyError('unknown refundStatus');
  }
  let amount: Money | undefined;
  if (body['refundAmount'] !== undefined) {
    amount = fromWireAmount(body['refundAmount']);
    if (!amount) throw new NotifyBodyError('malformed refundAmount');
  }
  const channelRefundNo = str(body, 'refundId');
  const finishedAt = status === 'success' ? parseIsoTime(body['refundTime']) : undefined;
  const failureCode =
    status === 'failed' ? str(body, 'refundFailReason') || readResult(body['result'])?.resultCode || 'FAIL' : undefined;
  const paymentRequestId = str(body, 'paymentRequestId');
  const paymentId = str(body, 'paymentId');
  return {
    news: {
      refundId,
      status,
      ...(amount ? { amount } : {}),
      ...(channelRefundNo ? { channelRefundNo } : {}),
      ...(finishedAt ? { finishedAt } : {}),
      ...(failureCode ? { failureCode } : {}),
    },
    ...(paymentRequestId ? { paymentRequestId } : {}),
    ...(paymentId ? { paymentId } : {}),
    dedupeKey: `refund:${channelRefundNo || `req:${refundId}`}:${refundStatus}`,
    raw: `refund ${refundStatus}`,
  };
}

// ---------------------------------------------------------------------------------------------------
// Client-side results (my.tradePay resultCode, PaymentService SPI error codes)

export type ClientNextStep = 'done' | 'poll' | 'retry' | 'choose_again' | 'authorize_again';

export interface ClientResultStep {
  readonly next: ClientNextStep;
  /** Ask the wallet (inquiryPayment) before acting: the client's word alone never settles an order. */
  readonly checkFirst: boolean;
  readonly meaning: string;
}

const CLIENT_RESULTS: Readonly<Record<string, ClientResultStep>> = {
  // my.tradePay (§3.5)
  '9000': {
    next: 'poll',
    checkFirst: true,
    meaning: 'client says paid: check with the wallet now; done only if it confirms',
  },
  '8000': { next: 'poll', checkFirst: false, meaning: 'trade processing: wait for the notify or poll' },
  '4000': { next: 'choose_again', checkFirst: true, meaning: 'payment failed: check, then let the user choose again' },
  '6001': { next: 'retry', checkFirst: false, meaning: 'user cancelled: the order stays payable' },
  '6002': { next: 'poll', checkFirst: false, meaning: 'network exception: the result is unknown, poll' },
  '6004': { next: 'poll', checkFirst: false, meaning: 'unknown result, may be success: poll' },
  // IAPMiniProgram PaymentService SPI (§3.9)
  '1000': { next: 'choose_again', checkFirst: true, meaning: 'unknown error: check, then let the user choose again' },
  '1001': { next: 'retry', checkFirst: false, meaning: 'user cancelled: the order stays payable' },
  '1002': {
    next: 'choose_again',
    checkFirst: true,
    meaning: 'app service error: check, then let the user choose again',
  },
  '1003': { next: 'poll', checkFirst: false, meaning: 'timeout: the result is unknown, poll' },
  '1005': { next: 'choose_again', checkFirst: true, meaning: 'system error: check, then let the user choose again' },
  '2001': {
    next: 'authorize_again',
    checkFirst: false,
    meaning: 'authorization pending: authorize again (my.getAuthCode)',
  },
};

/**
 * What to do with a result the mini program reports (API.md `client-result`). A client's word never marks
 * an order paid: 9000 answers `poll` with checkFirst, and the caller turns it into `done` only when
 * inquiryPayment confirms. Undefined for an unknown code.
 */
export function clientResultNextStep(code: string): ClientResultStep | undefined {
  return Object.hasOwn(CLIENT_RESULTS, code) ? CLIENT_RESULTS[code] : undefined;
}
