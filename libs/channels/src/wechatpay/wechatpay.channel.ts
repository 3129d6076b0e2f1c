import { randomBytes } from 'node:crypto';
import { Agent } from 'node:https';
import { Clock, PayError, Secret, SystemClock, gmt8Compact } from '#common';
import type {
  AttemptInput,
  AttemptRef,
  ChannelPayInfo,
  ChannelRefundSnapshot,
  ChannelTradeSnapshot,
  CloseOutcome,
  NotifyReply,
  PaymentChannel,
  RawNotify,
  RefundInput,
  RefundNews,
  VerifiedNotify,
} from '../channel.interface.js';
import { CHANNEL_AGENT_OPTIONS, channelPost, channelPostTls } from '../http.js';
import {
  WECHAT_PAY_TYPES,
  businessError,
  cutCodePoints,
  isRefundRefusal,
  mapRefundStatus,
  mapTradeState,
  moneyOfFee,
  parseGmt8Compact,
  resolveWechatPayType,
  type WechatPayType,
} from './wechatpay.mapper.js';
import {
  decryptRefundReqInfo,
  jsapiPaySign,
  signTypeOfSign,
  verifyWechatSign,
  wechatSign,
  type WechatSignType,
} from './wechatpay.signer.js';
import { buildWechatXml, parseWechatXml } from './wechatpay.xml.js';

/** Validated configuration of one WeChat Pay (API v2) instance; built by WechatPayProvider. */
export interface WechatPaySettings {
  /** How long one call may take (CHANNEL_HTTP_TIMEOUT_MS unless the instance says `timeoutMs`). */
  readonly timeoutMs?: number;
  readonly fullName: string;
  readonly title: string;
  readonly appId: string;
  readonly mchId: string;
  readonly apiKey: Secret;
  readonly signType: WechatSignType;
  /** Without a trailing slash, e.g. `https://api.mch.weixin.qq.com`. */
  readonly baseUrl: string;
  /** closeorder is refused this long after an order is created (WECHAT_MIN_CLOSE_AGE_MS at WeChat). */
  readonly minCloseAgeMs: number;
  /** Where /secapi/ (mutual TLS) calls go; https. Default: baseUrl. */
  readonly secapiBaseUrl: string;
  /** The merchant client certificate for secapi/pay/refund (§2.8), already checked to open. */
  readonly clientCert?: {
    readonly pfx: Buffer;
    readonly passphrase: Secret;
    /** PEM of a CA trusted for the API host instead of the system CAs (sandbox). */
    readonly caCert?: string;
  };
}

/**
 * WeChat's rule (§2.7): "订单生成后不能马上调用关单接口，最短调用时间间隔为5分钟". An attempt younger than
 * this is not sent to closeorder at all; closePayment answers 'too_early'.
 */
export const WECHAT_MIN_CLOSE_AGE_MS = 5 * 60_000;

/** spbill_create_ip for NATIVE/JSAPI when the caller has none (WeChat wants the server's IP there). */
const DEFAULT_SERVER_IP = '127.0.0.1';
const BODY_MAX_CHARS = 127;

const NOTIFY_CONTENT_TYPE = 'text/xml';
const ACCEPT_XML = '<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>';
const REJECT_XML = '<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[FAIL]]></return_msg></xml>';

/** The notify reply of §2.9: exact XML bytes, HTTP 200 (WeChat reads the body, not the status). */
export function wechatNotifyReply(outcome: 'accepted' | 'rejected'): NotifyReply {
  return { status: 200, contentType: NOTIFY_CONTENT_TYPE, body: outcome === 'accepted' ? ACCEPT_XML : REJECT_XML };
}

function nonce(): string {
  return randomBytes(16).toString('hex'); // 32 characters, the maximum nonce_str length
}

function invalid(message: string, detail?: Record<string, unknown>): PayError {
  return new PayError('INVALID_PARAMS', message, detail);
}

/**
 * One WeChat Pay API v2 merchant account (PROTOCOLS.md §2). A pure adapter: builds signed XML requests,
 * verifies signed answers and notifications, and maps them to our types. Immutable after construction.
 */
export class WechatPayChannel implements PaymentChannel {
  readonly type = 'pays.WechatPayType' as const;
  readonly payTypes: readonly string[] = WECHAT_PAY_TYPES;
  readonly fullName: string;
  readonly title: string;
  readonly notifyKey: string;
  /** One mutual-TLS keep-alive pool per instance, built once from the client certificate (undefined without one). */
  private readonly secapiAgent: Agent | undefined;

  constructor(
    private readonly settings: WechatPaySettings,
    private readonly clock: Clock = new SystemClock(),
  ) {
    this.fullName = settings.fullName;
    this.title = settings.title;
    this.notifyKey = `${settings.appId}|${settings.mchId}`;
    const cert = settings.clientCert;
    this.secapiAgent = cert
      ? new Agent({
          ...CHANNEL_AGENT_OPTIONS,
          pfx: cert.pfx,
          passphrase: cert.passphrase.reveal(),
          ...(cert.caCert !== undefined ? { ca: cert.caCert } : {}),
        })
      : undefined;
  }

  /** Whether this instance can refund (it has a client certificate). */
  get canRefund(): boolean {
    return this.secapiAgent !== undefined;
  }

  resolvePayType(payType: string): string | undefined {
    return resolveWechatPayType(payType);
  }

  /** WeChat is given the orderId itself (as the seeds do). */
  outTradeNoFor(orderId: string, _attemptId: string): string {
    return orderId;
  }

  async createPayment(input: AttemptInput): Promise<ChannelPayInfo> {
    const tradeType = resolveWechatPayType(input.payType);
    if (tradeType === undefined) {
      throw new PayError('UNKNOWN_PAY_TYPE', 'unknown WeChat Pay pay type', { payType: input.payType });
    }
    if (input.amount.currency !== 'CNY') throw invalid('WeChat Pay accepts CNY only');
    if (!Number.isSafeInteger(input.amount.minor) || input.amount.minor <= 0) {
      throw invalid('the amount must be a positive number of fen');
    }
    const now = this.clock.now();
    if (input.expireTime.getTime() <= now.getTime()) throw invalid('the order has already expired');

    const fields: Record<string, string | undefined> = {
      appid: this.settings.appId,
      mch_id: this.settings.mchId,
      body: cutCodePoints(input.subject, BODY_MAX_CHARS),
      out_trade_no: input.outTradeNo,
      fee_type: 'CNY',
      total_fee: String(input.amount.minor),
      spbill_create_ip: this.clientIpFor(tradeType, input.clientIp),
      time_expire: gmt8Compact(input.expireTime),
      notify_url: input.notifyUrl,
      trade_type: tradeType,
    };
    switch (tradeType) {
      case 'NATIVE':
        fields['product_id'] = input.outTradeNo;
        break;
      case 'JSAPI':
        if (!input.openid) throw invalid('openid is required for JSAPI payments');
        fields['openid'] = input.openid;
        break;
      case 'MWEB':
        fields['scene_info'] = this.sceneInfo(input);
        break;
    }

    const res = await this.call('/pay/unifiedorder', fields);
    if (res['result_code'] !== 'SUCCESS') throw businessError('unifiedorder', res);
    const prepayId = res['prepay_id'];
    if (!prepayId) throw this.badAnswer('unifiedorder', 'prepay_id missing');

    switch (tradeType) {
      case 'NATIVE': {
        const codeUrl = res['code_url'];
        if (!codeUrl) throw this.badAnswer('unifiedorder', 'code_url missing');
        return { payUrl: codeUrl, qrContent: codeUrl };
      }
      case 'MWEB': {
        const mwebUrl = res['mweb_url'];
        if (!mwebUrl) throw this.badAnswer('unifiedorder', 'mweb_url missing');
        if (!input.returnUrl) return { payUrl: mwebUrl };
        // §2.5: append redirect_url to come back after the H5 cashier (mweb_url always has a query string at WeChat).
        const sep = mwebUrl.includes('?') ? '&' : '?';
        return { payUrl: `${mwebUrl}${sep}redirect_url=${encodeURIComponent(input.returnUrl)}` };
      }
      case 'JSAPI': {
        const signType = this.settings.signType;
        const params = {
          appId: this.settings.appId,
          timeStamp: Math.floor(now.getTime() / 1000).toString(),
          nonceStr: nonce(),
          package: `prepay_id=${prepayId}`,
          signType,
        };
        return { jsapiParams: { ...params, paySign: jsapiPaySign(params, this.settings.apiKey.reveal()) } };
      }
    }
  }

  async queryPayment(ref: AttemptRef): Promise<ChannelTradeSnapshot> {
    // transaction_id is preferred by WeChat when known (§2.6).
    const res = await this.call(
      '/pay/orderquery',
      ref.channelTradeNo
        ? { appid: this.settings.appId, mch_id: this.settings.mchId, transaction_id: ref.channelTradeNo }
        : { appid: this.settings.appId, mch_id: this.settings.mchId, out_trade_no: ref.outTradeNo },
    );
    if (res['result_code'] !== 'SUCCESS') {
      if (res['err_code'] === 'ORDERNOTEXIST') return { status: 'not_found', raw: 'ORDERNOTEXIST' };
      throw businessError('orderquery', res);
    }
    const tradeState = res['trade_state'] ?? '';
    const status = mapTradeState(tradeState);
    if (status === undefined || status === 'not_found') {
      throw this.badAnswer('orderquery', 'unknown trade_state', { tradeState });
    }
    const outTradeNo = res['out_trade_no'];
    if (outTradeNo !== undefined && outTradeNo !== ref.outTradeNo) {
      throw this.badAnswer('orderquery', 'out_trade_no differs from the request');
    }
    const amount = moneyOfFee(res['total_fee'], res['fee_type']);
    if (res['total_fee'] !== undefined && amount === undefined) throw this.badAnswer('orderquery', 'bad total_fee');
    const timeEnd = res['time_end'];
    const paidAt = timeEnd ? parseGmt8Compact(timeEnd) : undefined;
    if (timeEnd && paidAt === undefined) throw this.badAnswer('orderquery', 'bad time_end');
    const transactionId = res['transaction_id'];
    return {
      status,
      raw: tradeState,
      ...(transactionId ? { channelTradeNo: transactionId } : {}),
      ...(amount ? { amount } : {}),
      ...(status === 'paid' && paidAt ? { paidAt } : {}),
    };
  }

  /**
   * Closes the trade at WeChat (§2.7).
   *
   * The 5-minute rule: WeChat refuses closeorder within 5 minutes of creating the order, so an attempt
   * younger than WECHAT_MIN_CLOSE_AGE_MS (by `ref.createdAt`) is answered 'too_early' WITHOUT calling.
   * The caller keeps the order and retries after the window. For a cancel this means: the order service
   * refuses nothing; it keeps the attempt open (still closable) and the timeout/sync sweep closes it at
   * WeChat later, once the attempt is old enough. A payment that lands in between is still honoured by the
   * notify or the next query, exactly as for any open attempt.
   * (Clock skew against WeChat right at the 5-minute boundary would surface as a CHANNEL_ERROR, which the
   * sweep retries as well.)
   */
  async closePayment(ref: AttemptRef): Promise<CloseOutcome> {
    if (this.clock.now().getTime() - ref.createdAt.getTime() < this.settings.minCloseAgeMs) return 'too_early';
    const res = await this.call('/pay/closeorder', {
      appid: this.settings.appId,
      mch_id: this.settings.mchId,
      out_trade_no: ref.outTradeNo,
    });
    if (res['result_code'] === 'SUCCESS') return 'closed';
    switch (res['err_code'] ?? '') {
      case 'ORDERPAID':
        return 'already_paid';
      case 'ORDERCLOSED':
        return 'closed';
      case 'ORDERNOTEXIST':
        return 'not_found';
      default: // SYSTEMERROR and anything else: the caller retries later
        throw businessError('closeorder', res);
    }
  }

  /**
   * secapi/pay/refund over mutual TLS (§2.8), out_refund_no = refundId. result_code=SUCCESS only means
   * accepted: one refundquery follows at once ('success' if it already says so, else 'pending'; a failing
   * query leaves it 'pending'). A definite refusal (isRefundRefusal) is 'failed' with the err_code;
   * anything else throws and is retried with the same out_refund_no.
   */
  async refund(input: RefundInput): Promise<ChannelRefundSnapshot> {
    if (!this.secapiAgent) {
      throw new PayError('CHANNEL_ERROR', 'WeChat Pay refunds need the client certificate (config pfx or pfxPath)', {
        channel: 'wechatpay',
        api: 'refund',
        instance: this.fullName,
      });
    }
    if (input.amount.currency !== 'CNY' || input.payment.amount.currency !== 'CNY') {
      throw invalid('WeChat Pay refunds CNY only');
    }
    if (!Number.isSafeInteger(input.amount.minor) || input.amount.minor <= 0) {
      throw invalid('the refund amount must be a positive number of fen');
    }
    const res = await this.call(
      '/secapi/pay/refund',
      {
        appid: this.settings.appId,
        mch_id: this.settings.mchId,
        ...(input.payment.channelTradeNo
          ? { transaction_id: input.payment.channelTradeNo }
          : { out_trade_no: input.payment.outTradeNo }),
        out_refund_no: input.refundId,
        total_fee: String(input.payment.amount.minor),
        refund_fee: String(input.amount.minor),
        refund_fee_type: 'CNY',
        refund_desc: input.reason ? cutCodePoints(input.reason, 80) : undefined,
        notify_url: input.notifyUrl,
      },
      this.secapiAgent,
    );
    if (res['result_code'] !== 'SUCCESS') {
      const errCode = res['err_code'];
      if (isRefundRefusal(errCode)) return { status: 'failed', failureCode: errCode as string, raw: errCode };
      throw businessError('refund', res);
    }
    if ((res['out_refund_no'] ?? input.refundId) !== input.refundId) {
      throw this.badAnswer('refund', 'out_refund_no differs from the request');
    }
    const refundId = res['refund_id'];
    let queried: ChannelRefundSnapshot | undefined;
    try {
      queried = await this.queryRefund(input);
    } catch {
      queried = undefined;
    }
    if (queried && queried.status !== 'not_found') return queried;
    return { status: 'pending', raw: 'accepted', ...(refundId ? { channelRefundNo: refundId } : {}) };
  }

  /**
   * pay/refundquery by out_refund_no (§2.12, no certificate): our refund is the index N whose
   * out_refund_no_N is our refundId; refund_status_N through mapRefundStatus. REFUNDNOTEXIST = not_found.
   */
  async queryRefund(input: RefundInput): Promise<ChannelRefundSnapshot> {
    const res = await this.call('/pay/refundquery', {
      appid: this.settings.appId,
      mch_id: this.settings.mchId,
      out_refund_no: input.refundId,
    });
    if (res['result_code'] !== 'SUCCESS') {
      if (res['err_code'] === 'REFUNDNOTEXIST') return { status: 'not_found', raw: 'REFUNDNOTEXIST' };
      throw businessError('refundquery', res);
    }
    const count = Number(res['refund_count'] ?? '0');
    for (let n = 0; Number.isSafeInteger(count) && n < Math.min(count, 50); n += 1) {
      if (res[`out_refund_no_${n}`] !== input.refundId) continue;
      const raw = res[`refund_status_${n}`] ?? '';
      const status = mapRefundStatus(raw);
      const amount = moneyOfFee(res[`refund_fee_${n}`], 'CNY');
      const refundNo = res[`refund_id_${n}`];
      const successTime = res[`refund_success_time_${n}`];
      const finishedAt = status === 'success' && successTime ? parseDashedGmt8(successTime) : undefined;
      return {
        status,
        raw,
        ...(refundNo ? { channelRefundNo: refundNo } : {}),
        ...(amount ? { amount } : {}),
        ...(finishedAt ? { finishedAt } : {}),
        ...(status === 'failed' ? { failureCode: raw } : {}),
      };
    }
    return { status: 'not_found', raw: 'not in refundquery answer' };
  }

  verifyNotify(raw: RawNotify): Promise<VerifiedNotify> {
    try {
      return Promise.resolve(this.checkNotify(raw));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  notifyReply(outcome: 'accepted' | 'rejected'): NotifyReply {
    return wechatNotifyReply(outcome);
  }

  /** The steps of verifyNotify: safe parse, addressee, signature (algorithm pinned), then the payload. */
  private checkNotify(raw: RawNotify): VerifiedNotify {
    const f = parseWechatXml(raw.body); // throws INVALID_PARAMS on anything unsafe
    if (f['return_code'] !== 'SUCCESS') throw invalid('the notification does not report a payment');
    if (f['appid'] !== this.settings.appId || f['mch_id'] !== this.settings.mchId) {
      throw invalid('the notification is not meant for this channel instance');
    }
    if (f['req_info'] !== undefined) return this.refundNews(f['req_info']);
    const sign = f['sign'] ?? '';
    const detected = signTypeOfSign(sign);
    if (detected !== this.settings.signType) throw invalid('the notification signature is invalid');
    const declared = f['sign_type'];
    if (declared !== undefined && declared !== '' && declared !== detected) {
      throw invalid('the notification signature is invalid');
    }
    if (!verifyWechatSign(f, this.settings.apiKey.reveal(), this.settings.signType).ok) {
      throw invalid('the notification signature is invalid');
    }

    const outTradeNo = f['out_trade_no'];
    if (!outTradeNo) throw invalid('the notification has no out_trade_no');
    const resultCode = f['result_code'];
    if (resultCode !== 'SUCCESS' && resultCode !== 'FAIL') throw invalid('the notification has no valid result_code');
    // WeChat notifies successful payments. A result_code=FAIL notification is refused and changes nothing:
    // whether the payer can still pay is for orderquery to say, not for a notification.
    if (resultCode === 'FAIL') throw invalid('the notification reports result_code FAIL: not applied');
    const transactionId = f['transaction_id'] || undefined;
    const amount = moneyOfFee(f['total_fee'], f['fee_type']);
    if (f['total_fee'] !== undefined && amount === undefined) throw invalid('the notification amount is invalid');
    const timeEnd = f['time_end'];
    const paidAt = timeEnd ? parseGmt8Compact(timeEnd) : undefined;
    if (timeEnd && paidAt === undefined) throw invalid('the notification time_end is invalid');

    if (resultCode === 'SUCCESS') {
      // A paid notification must say what was paid; the service compares the amount with the order (§2.9).
      if (!transactionId) throw invalid('the notification has no transaction_id');
      if (!amount) throw invalid('the notification has no amount');
    }
    return {
      kind: 'payment',
      dedupeKey: transactionId ?? `${outTradeNo}|${resultCode}`,
      outTradeNo,
      status: resultCode === 'SUCCESS' ? 'paid' : 'failed',
      raw: resultCode,
      ...(transactionId ? { channelTradeNo: transactionId } : {}),
      ...(amount ? { amount } : {}),
      ...(resultCode === 'SUCCESS' && paidAt ? { paidAt } : {}),
    };
  }

  /**
   * A refund notify (§2.13): no sign; `req_info` decrypts (AES-256-ECB, key = hex MD5 of the API key)
   * to a `<root>` document, parsed as strictly as any WeChat XML. Only a message encrypted under our API
   * key decrypts to well-formed XML with the fields below, which is WeChat's own authentication of it.
   */
  private refundNews(reqInfo: string): VerifiedNotify {
    const text = decryptRefundReqInfo(reqInfo, this.settings.apiKey.reveal());
    if (text === undefined) throw invalid('the refund notification does not decrypt');
    const r = parseWechatXml(text, 'root');
    const refundId = r['out_refund_no'];
    const outTradeNo = r['out_trade_no'];
    const refundStatus = r['refund_status'];
    if (!refundId || !outTradeNo || !refundStatus) throw invalid('the refund notification lacks its refund fields');
    const status = mapRefundStatus(refundStatus);
    const amount = moneyOfFee(r['refund_fee'], 'CNY');
    if (r['refund_fee'] !== undefined && amount === undefined)
      throw invalid('the refund notification amount is invalid');
    const successTime = r['success_time'];
    const finishedAt = status === 'success' && successTime ? parseDashedGmt8(successTime) : undefined;
    if (status === 'success' && successTime && !finishedAt) throw invalid('the refund notification time is invalid');
    const refundNo = r['refund_id'];
    const transactionId = r['transaction_id'];
    const total = moneyOfFee(r['total_fee'], 'CNY');
    const news: RefundNews = {
      refundId,
      status,
      ...(amount ? { amount } : {}),
      ...(refundNo ? { channelRefundNo: refundNo } : {}),
      ...(finishedAt ? { finishedAt } : {}),
      ...(status === 'failed' ? { failureCode: refundStatus } : {}),
    };
    return {
      kind: 'refund',
      refund: news,
      dedupeKey: `refund:${refundNo ?? refundId}:${refundStatus}`,
      outTradeNo,
      status: 'paid',
      raw: `refund ${refundStatus}`,
      ...(transactionId ? { channelTradeNo: transactionId } : {}),
      ...(total ? { amount: total } : {}),
    };
  }

  private clientIpFor(tradeType: WechatPayType, clientIp: string | undefined): string {
    if (clientIp) return clientIp;
    // MWEB must carry the payer's real IP (§2.3); WeChat compares it with the device that pays.
    if (tradeType === 'MWEB') throw invalid('clientIp is required for MWEB payments');
    return DEFAULT_SERVER_IP;
  }

  /** scene_info of §2.5; wap_url is the returnUrl's origin, else the notify host (our public base URL). */
  private sceneInfo(input: AttemptInput): string {
    const origin = (url: string | undefined): string | undefined => {
      if (!url) return undefined;
      try {
        const u = new URL(url);
        return u.protocol === 'https:' || u.protocol === 'http:' ? u.origin : undefined;
      } catch {
        return undefined;
      }
    };
    const wapUrl = origin(input.returnUrl) ?? origin(input.notifyUrl) ?? 'https://example.invalid';
    const wapName = cutCodePoints(this.settings.title || 'PayBridge', 32);
    return JSON.stringify({ h5_info: { type: 'Wap', wap_url: wapUrl, wap_name: wapName } });
  }

  /** POSTs a signed request and returns the verified answer (return_code=SUCCESS, sign checked). */
  private async call(
    path: string,
    fields: Record<string, string | undefined>,
    tlsAgent?: Agent,
  ): Promise<Record<string, string>> {
    const api = path.slice(path.lastIndexOf('/') + 1);
    const signType = this.settings.signType;
    const request: Record<string, string | undefined> = {
      ...fields,
      nonce_str: nonce(),
      ...(signType === 'HMAC-SHA256' ? { sign_type: signType } : {}),
    };
    request['sign'] = wechatSign(request, this.settings.apiKey.reveal(), signType);
    const xml = buildWechatXml(request);
    const headers = { 'content-type': 'text/xml; charset=utf-8' };
    const answer = tlsAgent
      ? await channelPostTls(`${this.settings.secapiBaseUrl}${path}`, xml, headers, tlsAgent, this.settings.timeoutMs)
      : await channelPost(`${this.settings.baseUrl}${path}`, xml, headers, this.settings.timeoutMs);
    if (answer.status !== 200) {
      throw new PayError('CHANNEL_ERROR', 'WeChat Pay answered with an error', {
        channel: 'wechatpay',
        api,
        status: answer.status,
      });
    }
    let res: Record<string, string>;
    try {
      res = parseWechatXml(answer.body);
    } catch (err) {
      throw this.badAnswer(api, 'unreadable XML', {
        reason: err instanceof PayError ? err.detail?.['reason'] : undefined,
      });
    }
    if (res['return_code'] !== 'SUCCESS') {
      throw new PayError('CHANNEL_ERROR', 'WeChat Pay refused the request', {
        channel: 'wechatpay',
        api,
        returnCode: res['return_code'],
        returnMsg: res['return_msg'],
      });
    }
    // §2.3: the sign is present and checked only when return_code=SUCCESS; it uses the request's algorithm.
    if (!verifyWechatSign(res, this.settings.apiKey.reveal(), signType).ok) {
      throw this.badAnswer(api, 'answer signature invalid');
    }
    if (
      (res['appid'] ?? this.settings.appId) !== this.settings.appId ||
      (res['mch_id'] ?? this.settings.mchId) !== this.settings.mchId
    ) {
      throw this.badAnswer(api, 'answer names another merchant');
    }
    return res;
  }

  private badAnswer(api: string, reason: string, extra?: Record<string, unknown>): PayError {
    return new PayError('CHANNEL_ERROR', 'WeChat Pay sent an invalid answer', {
      channel: 'wechatpay',
      api,
      reason,
      ...extra,
    });
  }
}

/** `yyyy-MM-dd HH:mm:ss` in GMT+8 (refund success_time, §2.12/§2.13); undefined unless a real instant. */
function parseDashedGmt8(text: string): Date | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(text);
  return m ? parseGmt8Compact(m.slice(1).join('')) : undefined;
}
