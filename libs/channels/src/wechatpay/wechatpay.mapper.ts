import { PayError, isSupportedCurrency, parseMinorString, type Money } from '#common';
import type { ChannelPaymentStatus, ChannelRefundStatus } from '../channel.interface.js';

/**
 * Wire mapping for WeChat Pay API v2 (PROTOCOLS.md §2.3–§2.9): pure functions from provider words to our
 * normalised types and back. No I/O here.
 */

export const WECHAT_PAY_TYPES = ['NATIVE', 'MWEB', 'JSAPI'] as const;
export type WechatPayType = (typeof WECHAT_PAY_TYPES)[number];

/** The seed's generic pay types: `pc` shows a QR code, `mobile` opens the H5 cashier. */
export function resolveWechatPayType(payType: string): WechatPayType | undefined {
  if (payType === 'pc') return 'NATIVE';
  if (payType === 'mobile') return 'MWEB';
  return (WECHAT_PAY_TYPES as readonly string[]).includes(payType) ? (payType as WechatPayType) : undefined;
}

/** orderquery `trade_state` (§2.6) to our closed set; undefined for a word we do not know (never guessed). */
export function mapTradeState(tradeState: string): ChannelPaymentStatus | undefined {
  switch (tradeState) {
    case 'SUCCESS':
    case 'REFUND': // a refund was started: the trade was paid
      return 'paid';
    case 'NOTPAY':
    case 'USERPAYING':
    case 'ACCEPT':
      return 'pending';
    case 'CLOSED':
    case 'REVOKED':
      return 'closed';
    case 'PAYERROR':
      return 'failed';
    case 'ORDERNOTEXIST': // err_code of orderquery, mapped here too so one table covers the query
      return 'not_found';
    default:
      return undefined;
  }
}

/** Parses `yyyyMMddHHmmss` in GMT+8 (time_end, time_expire); undefined unless it is a real instant. */
export function parseGmt8Compact(text: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h - 8, mi, s));
  // Round-trip check refuses 20240231 and 25:00:00 instead of rolling them over.
  const back = new Date(date.getTime() + 8 * 3600_000);
  if (
    back.getUTCFullYear() !== y ||
    back.getUTCMonth() !== mo - 1 ||
    back.getUTCDate() !== d ||
    back.getUTCHours() !== h ||
    back.getUTCMinutes() !== mi ||
    back.getUTCSeconds() !== s
  ) {
    return undefined;
  }
  return date;
}

/** `total_fee` (fen) + `fee_type` (default CNY) to Money; undefined when either is not exact. */
export function moneyOfFee(totalFee: string | undefined, feeType: string | undefined): Money | undefined {
  if (totalFee === undefined) return undefined;
  const minor = parseMinorString(totalFee);
  const currency = feeType === undefined || feeType === '' ? 'CNY' : feeType;
  if (minor === undefined || !isSupportedCurrency(currency)) return undefined;
  return { minor, currency };
}

/** Cuts to at most `max` Unicode code points, never splitting a surrogate pair. */
export function cutCodePoints(text: string, max: number): string {
  const chars = Array.from(text);
  return chars.length <= max ? text : chars.slice(0, max).join('');
}

/** Client-safe messages per business err_code (§2.3, §2.6, §2.7); the raw code goes to PayError.detail. */
const ERR_MESSAGES: Readonly<Record<string, string>> = {
  ORDERPAID: 'the order is already paid at WeChat Pay',
  ORDERCLOSED: 'the order is already closed at WeChat Pay',
  OUT_TRADE_NO_USED: 'the order was already submitted to WeChat Pay with different parameters',
  INVALID_REQUEST: 'WeChat Pay refused the request as invalid',
  SYSTEMERROR: 'WeChat Pay is temporarily unavailable; retry later',
  NOTENOUGH: 'the payer has insufficient balance',
  NOAUTH: 'the merchant account is not authorised for this payment method',
  APPID_NOT_EXIST: 'the WeChat Pay merchant configuration is invalid',
  MCHID_NOT_EXIST: 'the WeChat Pay merchant configuration is invalid',
  APPID_MCHID_NOT_MATCH: 'the WeChat Pay merchant configuration is invalid',
  SIGNERROR: 'the WeChat Pay merchant configuration is invalid',
  LACK_PARAMS: 'WeChat Pay refused the request: parameters missing',
  XML_FORMAT_ERROR: 'WeChat Pay could not read the request',
  ORDERNOTEXIST: 'WeChat Pay has no such order',
};

/** The PayError for a business failure (`result_code=FAIL`) of `api`. Never carries err_code_des in the message. */
export function businessError(api: string, fields: Readonly<Record<string, string>>): PayError {
  const errCode = fields['err_code'] ?? 'UNKNOWN';
  const message =
    (Object.hasOwn(ERR_MESSAGES, errCode) ? ERR_MESSAGES[errCode] : undefined) ?? 'WeChat Pay refused the request';
  return new PayError('CHANNEL_ERROR', message, {
    channel: 'wechatpay',
    api,
    errCode,
    errCodeDes: fields['err_code_des'],
  });
}

/**
 * secapi/pay/refund err_codes that are a definite refusal of THIS refund (§2.8): 'failed' with the code.
 * NOTENOUGH (merchant balance), TRADE_OVERDUE (over a year old), USER_ACCOUNT_ABNORMAL, ORDERNOTEXIST,
 * INVALID_TRANSACTIONID, PARAM_ERROR, INVALID_REQUEST (e.g. the same out_refund_no with another amount)
 * and ERROR (WeChat's "refund business error", e.g. more than is left to refund). Everything else —
 * SYSTEMERROR, BIZERR_NEED_RETRY, FREQUENCY_LIMITED, INVALID_REQ_TOO_MUCH, configuration codes
 * (SIGNERROR, NOAUTH, APPID_NOT_EXIST…) and unknown codes — throws, and the refund is retried with the
 * same out_refund_no ("同一退款单号多次请求只退一笔").
 */
const REFUND_REFUSALS: ReadonlySet<string> = new Set([
  'NOTENOUGH',
  'TRADE_OVERDUE',
  'USER_ACCOUNT_ABNORMAL',
  'ORDERNOTEXIST',
  'INVALID_TRANSACTIONID',
  'PARAM_ERROR',
  'INVALID_REQUEST',
  'ERROR',
]);

export function isRefundRefusal(errCode: string | undefined): boolean {
  return errCode !== undefined && REFUND_REFUSALS.has(errCode);
}

/**
 * refund_status of refundquery and the refund notify (PROTOCOLS-REFUNDS-BILLS.md §2.12, §2.13) to our set:
 * SUCCESS = success; REFUNDCLOSE = failed; PROCESSING = pending; CHANGE (退款异常: the bank refused the
 * card; the merchant finishes it by hand in the merchant platform, after which it is SUCCESS) = pending,
 * never failed, so that no second refund is made while the first can still land; anything unknown =
 * pending (never guessed final).
 */
export function mapRefundStatus(refundStatus: string | undefined): Exclude<ChannelRefundStatus, 'not_found'> {
  switch (refundStatus ?? '') {
    case 'SUCCESS':
      return 'success';
    case 'REFUNDCLOSE':
      return 'failed';
    default:
      return 'pending';
  }
}
