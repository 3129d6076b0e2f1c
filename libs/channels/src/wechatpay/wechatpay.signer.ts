import { createDecipheriv, createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * WeChat Pay API v2 signatures (PROTOCOLS.md §2.2): MD5 or HMAC-SHA256 over the sorted `k=v` string of
 * every field but `sign`, empty values skipped, unknown fields included, then `&key=<API key>`.
 * Pure functions; the API key is passed in revealed form and never logged or put into an error.
 */

export const WECHAT_SIGN_TYPES = ['MD5', 'HMAC-SHA256'] as const;
export type WechatSignType = (typeof WECHAT_SIGN_TYPES)[number];

export type WechatFields = Readonly<Record<string, string | undefined | null>>;

export function isWechatSignType(value: unknown): value is WechatSignType {
  return value === 'MD5' || value === 'HMAC-SHA256';
}

/**
 * `stringA` of §2.2: all fields except `sign`, skipping '' / null / undefined, keys sorted by code unit
 * (ASCII ascending for the ASCII keys WeChat uses), raw values, no URL-encoding. Keys are case-sensitive.
 */
export function wechatSigningString(fields: WechatFields): string {
  const keys = Object.keys(fields)
    .filter((k) => k !== 'sign')
    .filter((k) => {
      const v = fields[k];
      return v !== undefined && v !== null && v !== '';
    })
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return keys.map((k) => `${k}=${fields[k] as string}`).join('&');
}

/** The upper-case hex signature of `fields` (32 characters for MD5, 64 for HMAC-SHA256). */
export function wechatSign(fields: WechatFields, apiKey: string, signType: WechatSignType): string {
  const temp = `${wechatSigningString(fields)}&key=${apiKey}`;
  const digest =
    signType === 'MD5'
      ? createHash('md5').update(temp, 'utf8').digest('hex')
      : createHmac('sha256', apiKey).update(temp, 'utf8').digest('hex');
  return digest.toUpperCase();
}

/** The algorithm a received sign was made with, told by its length (§2.2 tip); undefined if neither. */
export function signTypeOfSign(sign: string): WechatSignType | undefined {
  if (/^[0-9A-Fa-f]{32}$/.test(sign)) return 'MD5';
  if (/^[0-9A-Fa-f]{64}$/.test(sign)) return 'HMAC-SHA256';
  return undefined;
}

/** Constant-time comparison of two strings (different lengths compare unequal without a timing hint on content). */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  if (x.length !== y.length) return false;
  return timingSafeEqual(x, y);
}

export interface WechatSignCheck {
  readonly ok: boolean;
  /** The algorithm detected from the sign's length, when it had a valid length. */
  readonly signType?: WechatSignType;
}

/**
 * Verifies `fields.sign` over the other fields. The algorithm is detected from the sign's length; when
 * `requiredType` is given, a sign made with another algorithm is refused (a downgrade to MD5 is not
 * accepted from a channel configured for HMAC, nor the reverse).
 */
export function verifyWechatSign(fields: WechatFields, apiKey: string, requiredType?: WechatSignType): WechatSignCheck {
  const sign = fields['sign'];
  if (typeof sign !== 'string') return { ok: false };
  const signType = signTypeOfSign(sign);
  if (signType === undefined) return { ok: false };
  if (requiredType !== undefined && signType !== requiredType) return { ok: false, signType };
  const expected = wechatSign(fields, apiKey, signType);
  return { ok: constantTimeEqual(expected, sign.toUpperCase()), signType };
}

/** The five fields the JSAPI front-end signature covers (§2.4), exactly these and no others. */
export interface JsapiSignFields {
  readonly appId: string;
  readonly nonceStr: string;
  readonly package: string;
  readonly signType: WechatSignType;
  readonly timeStamp: string;
}

/** `paySign` for `getBrandWCPayRequest` / `wx.requestPayment`: §2.2 over appId, nonceStr, package, signType, timeStamp. */
export function jsapiPaySign(params: JsapiSignFields, apiKey: string): string {
  return wechatSign(
    {
      appId: params.appId,
      nonceStr: params.nonceStr,
      package: params.package,
      signType: params.signType,
      timeStamp: params.timeStamp,
    },
    apiKey,
    params.signType,
  );
}

/**
 * Decrypts a refund notify's `req_info` (PROTOCOLS.md §2.8, PROTOCOLS-REFUNDS-BILLS.md §2.13): base64,
 * AES-256-ECB with PKCS#7 padding, key = the 32 ASCII bytes of lower-case hex MD5(API key). Returns the
 * `<root>` XML text; undefined when it does not decrypt (wrong key, bad padding, not base64). ECB has no
 * authentication of its own: the caller must parse the result strictly and check its fields.
 */
export function decryptRefundReqInfo(reqInfo: string, apiKey: string): string | undefined {
  const compact = reqInfo.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) return undefined;
  const data = Buffer.from(compact, 'base64');
  if (data.length === 0 || data.length % 16 !== 0) return undefined;
  const key = Buffer.from(createHash('md5').update(apiKey, 'utf8').digest('hex').toLowerCase(), 'ascii');
  try {
    const decipher = createDecipheriv('aes-256-ecb', key, null);
    return Buffer.concat([decipher.update(data), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}
