import { formatMinor, gmt8Dashed, parseChannelDecimal, PayError, type Money } from '#common';
import type { ChannelPaymentStatus } from '../channel.interface.js';

/**
 * Wire mapping between PayBridge's types and Alipay OpenAPI v2 (PROTOCOLS.md §1). Pure functions only.
 */

export const ALIPAY_PAY_TYPES = ['PRE_PAY', 'WAP_PAY', 'PAGE_PAY'] as const;
export type AlipayPayType = (typeof ALIPAY_PAY_TYPES)[number];

/** `pc` → PRE_PAY (QR), `mobile` → WAP_PAY, or one of Alipay's own payTypes (API.md). */
export function resolveAlipayPayType(payType: string): AlipayPayType | undefined {
  if (payType === 'pc') return 'PRE_PAY';
  if (payType === 'mobile') return 'WAP_PAY';
  return (ALIPAY_PAY_TYPES as readonly string[]).includes(payType) ? (payType as AlipayPayType) : undefined;
}

export const ALIPAY_METHODS = {
  precreate: 'alipay.trade.precreate',
  wapPay: 'alipay.trade.wap.pay',
  pagePay: 'alipay.trade.page.pay',
  query: 'alipay.trade.query',
  close: 'alipay.trade.close',
  cancel: 'alipay.trade.cancel',
  refund: 'alipay.trade.refund',
  refundQuery: 'alipay.trade.fastpay.refund.query',
} as const;

/** Common parameters the SDKs put in the URL query string; everything else goes in the form body (§1.2). */
export const ALIPAY_URL_PARAMS: ReadonlySet<string> = new Set([
  'app_id',
  'method',
  'format',
  'charset',
  'sign_type',
  'sign',
  'timestamp',
  'version',
  'notify_url',
  'return_url',
  'auth_token',
  'app_auth_token',
  'app_cert_sn',
  'alipay_root_cert_sn',
  'ws_service_url',
]);

/** Alipay takes CNY only, as a yuan string with exactly 2 decimals (§1.6). */
export function toYuan(amount: Money): string {
  if (amount.currency !== 'CNY') {
    throw new PayError('INVALID_PARAMS', `Alipay takes CNY only, not ${amount.currency.slice(0, 8)}`);
  }
  return formatMinor(amount.minor, 'CNY');
}

/** A yuan string from Alipay ("0.10", "88.88") as Money, or undefined when it is not an exact amount. */
export function fromYuan(text: unknown): Money | undefined {
  if (typeof text !== 'string') return undefined;
  const minor = parseChannelDecimal(text, 'CNY');
  return minor === undefined ? undefined : { minor, currency: 'CNY' };
}

const MAX_TIMEOUT_MINUTES = 15 * 24 * 60; // 15d, the largest timeout_express (§1.7)

/**
 * `timeout_express` in whole minutes until expireTime, rounded down so that Alipay never takes a payment
 * after PayBridge has timed the order out; at least `1m`, at most `15d` worth of minutes.
 */
export function timeoutExpress(expireTime: Date, now: Date): string {
  const minutes = Math.floor((expireTime.getTime() - now.getTime()) / 60_000);
  return `${Math.min(MAX_TIMEOUT_MINUTES, Math.max(1, minutes))}m`;
}

/** `time_expire` for wap.pay: `yyyy-MM-dd HH:mm` in GMT+8, the seconds cut (so never later than expireTime). */
export function timeExpire(expireTime: Date): string {
  return gmt8Dashed(expireTime).slice(0, 16);
}

/** `time_expire` for precreate: `yyyy-MM-dd HH:mm:ss` in GMT+8, the milliseconds cut. */
export function timeExpireSeconds(expireTime: Date): string {
  return gmt8Dashed(expireTime);
}

const GMT8_DATETIME = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;

/** Parses Alipay's `yyyy-MM-dd HH:mm:ss` (GMT+8) into a Date; undefined if malformed. */
export function parseGmt8(text: unknown): Date | undefined {
  if (typeof text !== 'string') return undefined;
  const m = GMT8_DATETIME.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h - 8, mi, s);
  const back = new Date(ms);
  // Refuse dates that Date.UTC silently rolled over (2019-02-30 and the like).
  if (gmt8Dashed(back) !== text) return undefined;
  return back;
}

/** Alipay trade_status → PayBridge's closed set (§1.7); undefined for a value Alipay does not document. */
export function mapTradeStatus(status: unknown): ChannelPaymentStatus | undefined {
  switch (status) {
    case 'WAIT_BUYER_PAY':
      return 'pending';
    case 'TRADE_SUCCESS':
    case 'TRADE_FINISHED':
      return 'paid';
    case 'TRADE_CLOSED':
      return 'closed';
    default:
      return undefined;
  }
}

/** Gateway codes and sub_codes that mean "try again later" (§1.8, §1.10). */
export function isRetryableFailure(code: unknown, subCode: unknown): boolean {
  return (
    code === '20000' ||
    subCode === 'ACQ.SYSTEM_ERROR' ||
    subCode === 'AQC.SYSTEM_ERROR' ||
    subCode === 'isp.unknow-error' ||
    subCode === 'aop.unknow-error'
  );
}

/**
 * alipay.trade.refund sub_codes that are a definite refusal of THIS refund (PROTOCOLS.md §1.10): the
 * refund becomes 'failed' with the sub_code. Decisions:
 * - SELLER_BALANCE_NOT_ENOUGH: refused now; the merchant tops up and makes a new refund.
 * - TRADE_HAS_FINISHED / TRADE_HAS_CLOSE / TRADE_STATUS_ERROR / TRADE_NOT_EXIST / TRADE_NOT_ALLOW_REFUND /
 *   NOT_ALLOW_PARTIAL_REFUND / REASON_TRADE_BEEN_FREEZEN: the trade does not allow it.
 * - REFUND_AMT_NOT_EQUAL_TOTAL / REFUND_FEE_ERROR / REASON_TRADE_REFUND_FEE_ERR: the amount is over what
 *   is refundable, or invalid.
 * - DISCORDANT_REPEAT_REQUEST: this out_request_no was used with another amount; it can never succeed.
 * - INVALID_PARAMETER: the request itself can never succeed as sent.
 * Everything else (ACQ.SYSTEM_ERROR, 20000, isp/aop unknown errors, an undocumented sub_code, 4000x
 * configuration errors) is not a refusal of the refund: the caller keeps it pending and retries with the
 * same out_request_no, which Alipay answers idempotently.
 */
const REFUND_REFUSALS: ReadonlySet<string> = new Set([
  'ACQ.SELLER_BALANCE_NOT_ENOUGH',
  'ACQ.TRADE_HAS_FINISHED',
  'ACQ.TRADE_HAS_CLOSE',
  'ACQ.TRADE_STATUS_ERROR',
  'ACQ.TRADE_NOT_EXIST',
  'ACQ.TRADE_NOT_ALLOW_REFUND',
  'ACQ.NOT_ALLOW_PARTIAL_REFUND',
  'ACQ.REASON_TRADE_BEEN_FREEZEN',
  'ACQ.REFUND_AMT_NOT_EQUAL_TOTAL',
  'ACQ.REFUND_FEE_ERROR',
  'ACQ.REASON_TRADE_REFUND_FEE_ERR',
  'ACQ.DISCORDANT_REPEAT_REQUEST',
  'ACQ.INVALID_PARAMETER',
]);

/** Whether a refund answer's code/sub_code is a definite refusal (see REFUND_REFUSALS). */
export function isRefundRefusal(code: unknown, subCode: unknown): boolean {
  return code === '40004' && typeof subCode === 'string' && REFUND_REFUSALS.has(subCode);
}

const GMT8_DATETIME_MS = /^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?:\.(\d{1,3}))?$/;

/** Parses `yyyy-MM-dd HH:mm:ss[.S]` (GMT+8; gmt_refund carries milliseconds, §1.12); undefined if malformed. */
export function parseGmt8Millis(text: unknown): Date | undefined {
  if (typeof text !== 'string') return undefined;
  const m = GMT8_DATETIME_MS.exec(text);
  if (!m) return undefined;
  const base = parseGmt8(m[1]);
  if (!base) return undefined;
  const ms = m[2] === undefined ? 0 : Number(m[2].padEnd(3, '0'));
  return new Date(base.getTime() + ms);
}

/**
 * Whether notify params are refund news (§1.12 step 2): refund_fee, gmt_refund or out_biz_no present.
 * Such a notify is never a payment, whatever its trade_status (a partial refund keeps TRADE_SUCCESS; a
 * full refund brings TRADE_CLOSED with gmt_close).
 */
export function isRefundNotify(params: Readonly<Record<string, string>>): boolean {
  return Boolean(params['refund_fee'] || params['gmt_refund'] || params['out_biz_no']);
}

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

/**
 * The auto-submitting form the browser is handed for page/wap pay (the SDK's POST mode of pageExecute):
 * POST to `action` (the gateway with the common params in its query), one hidden input per remaining
 * parameter, every value HTML-escaped.
 */
export function autoSubmitForm(action: string, fields: Readonly<Record<string, string>>): string {
  const inputs = Object.entries(fields)
    .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}" />`)
    .join('');
  return (
    `<form action="${escapeHtml(action)}" method="post" name="alipaysubmit" id="alipaysubmit" accept-charset="utf-8">` +
    `${inputs}<input type="submit" value="Alipay" style="display:none" /></form>` +
    `<script>document.forms["alipaysubmit"].submit();</script>`
  );
}

/**
 * Parses an `application/x-www-form-urlencoded` UTF-8 body exactly once (§1.9 pitfall: a second
 * decodeURIComponent breaks values holding `%`). Refuses a repeated key, which no Alipay notify has.
 */
export function parseFormBody(body: Buffer | string): Record<string, string> {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  const seen = new Map<string, string>();
  for (const [k, v] of new URLSearchParams(text)) {
    if (seen.has(k)) {
      throw new PayError('INVALID_PARAMS', 'the notification repeats a parameter', { param: k.slice(0, 64) });
    }
    seen.set(k, v);
  }
  // fromEntries defines own properties, so even a `__proto__` key stays plain data.
  return Object.fromEntries(seen);
}

/** A string field of a response node, or undefined. */
export function str(node: Readonly<Record<string, unknown>>, key: string): string | undefined {
  const v = node[key];
  return typeof v === 'string' ? v : undefined;
}
