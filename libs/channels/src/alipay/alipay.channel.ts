import { gmt8Dashed, PayError } from '#common';
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
  VerifiedNotify,
} from '../channel.interface.js';
import { channelPost, CHANNEL_HTTP_TIMEOUT_MS } from '../http.js';
import {
  ALIPAY_METHODS,
  ALIPAY_PAY_TYPES,
  ALIPAY_URL_PARAMS,
  autoSubmitForm,
  fromYuan,
  isRefundNotify,
  isRefundRefusal,
  isRetryableFailure,
  mapTradeStatus,
  parseFormBody,
  parseGmt8,
  parseGmt8Millis,
  resolveAlipayPayType,
  str,
  timeExpire,
  timeExpireSeconds,
  timeoutExpress,
  toYuan,
} from './alipay.mapper.js';
import type { AlipaySigner } from './alipay.signer.js';

export const ALIPAY_PRODUCTION_GATEWAY = 'https://openapi.alipay.com/gateway.do';

export interface AlipayChannelOptions {
  readonly fullName: string;
  readonly title: string;
  readonly appId: string;
  readonly signer: AlipaySigner;
  readonly gatewayUrl: string;
  /** When set, a notify for another seller is refused (§1.9 business checks). */
  readonly sellerId?: string;
  /** Time source for `timestamp` and `timeout_express`. */
  readonly now?: () => Date;
  readonly timeoutMs?: number;
}

/** A gateway answer whose signature checked out. */
interface GatewayAnswer {
  readonly method: string;
  readonly node: Readonly<Record<string, unknown>>;
  readonly ok: boolean;
  readonly code: string | undefined;
  readonly subCode: string | undefined;
}

const TEXT_PLAIN = 'text/plain; charset=utf-8';

/**
 * One configured Alipay app (OpenAPI v2, RSA2). A pure adapter: it speaks the wire format of
 * PROTOCOLS.md §1 and never touches the database.
 */
export class AlipayChannel implements PaymentChannel {
  readonly type = 'pays.AliPayType' as const;
  readonly payTypes: readonly string[] = ALIPAY_PAY_TYPES;
  readonly fullName: string;
  readonly title: string;
  readonly notifyKey: string;

  readonly #appId: string;
  readonly #signer: AlipaySigner;
  readonly #gatewayUrl: string;
  readonly #sellerId: string | undefined;
  readonly #now: () => Date;
  readonly #timeoutMs: number;

  constructor(options: AlipayChannelOptions) {
    this.fullName = options.fullName;
    this.title = options.title;
    this.#appId = options.appId;
    this.notifyKey = options.appId;
    this.#signer = options.signer;
    this.#gatewayUrl = options.gatewayUrl;
    this.#sellerId = options.sellerId;
    this.#now = options.now ?? (() => new Date());
    this.#timeoutMs = options.timeoutMs ?? CHANNEL_HTTP_TIMEOUT_MS;
  }

  resolvePayType(payType: string): string | undefined {
    return resolveAlipayPayType(payType);
  }

  /** Alipay is given the orderId itself: one out_trade_no per order, whatever the attempt. */
  outTradeNoFor(orderId: string, _attemptId?: string): string {
    return orderId;
  }

  async createPayment(input: AttemptInput): Promise<ChannelPayInfo> {
    const totalAmount = toYuan(input.amount);
    const now = this.#now();
    switch (resolveAlipayPayType(input.payType)) {
      case 'PRE_PAY': {
        const answer = await this.#call(
          ALIPAY_METHODS.precreate,
          {
            out_trade_no: input.outTradeNo,
            total_amount: totalAmount,
            subject: input.subject,
            timeout_express: timeoutExpress(input.expireTime, now),
            // The absolute end, to the second: a QR shown to a payer cannot be paid after our order ended.
            time_expire: timeExpireSeconds(input.expireTime),
          },
          { notify_url: input.notifyUrl },
        );
        if (!answer.ok) throw this.#failure(answer);
        const qrCode = str(answer.node, 'qr_code');
        const echoed = str(answer.node, 'out_trade_no');
        if (!qrCode || (echoed !== undefined && echoed !== input.outTradeNo)) {
          throw new PayError('CHANNEL_ERROR', 'the payment channel answer lacks a QR code', {
            method: answer.method,
          });
        }
        return { payUrl: qrCode, qrContent: qrCode };
      }
      case 'WAP_PAY':
        return this.#pageRequest(
          ALIPAY_METHODS.wapPay,
          {
            out_trade_no: input.outTradeNo,
            product_code: 'QUICK_WAP_WAY',
            total_amount: totalAmount,
            subject: input.subject,
            time_expire: timeExpire(input.expireTime),
            ...(input.returnUrl ? { quit_url: input.returnUrl } : {}),
          },
          input,
        );
      case 'PAGE_PAY':
        return this.#pageRequest(
          ALIPAY_METHODS.pagePay,
          {
            out_trade_no: input.outTradeNo,
            product_code: 'FAST_INSTANT_TRADE_PAY',
            total_amount: totalAmount,
            subject: input.subject,
            timeout_express: timeoutExpress(input.expireTime, now),
            // timeout_express of a page pay counts from when the payer opens the form; the absolute
            // time_expire keeps a form opened late from being payable after our order has ended.
            time_expire: timeExpire(input.expireTime),
          },
          input,
        );
      case undefined:
        throw new PayError('UNKNOWN_PAY_TYPE', `unknown Alipay payType: ${input.payType.slice(0, 32)}`);
    }
  }

  async queryPayment(ref: AttemptRef): Promise<ChannelTradeSnapshot> {
    const answer = await this.#call(ALIPAY_METHODS.query, { out_trade_no: ref.outTradeNo });
    if (!answer.ok) {
      if (answer.subCode === 'ACQ.TRADE_NOT_EXIST') return { status: 'not_found', raw: answer.subCode };
      throw this.#failure(answer);
    }
    const tradeStatus = str(answer.node, 'trade_status');
    const status = mapTradeStatus(tradeStatus);
    if (status === undefined) {
      throw new PayError('CHANNEL_ERROR', 'the payment channel sent an unknown trade status', {
        method: answer.method,
        trade_status: tradeStatus?.slice(0, 64),
      });
    }
    const totalAmount = answer.node['total_amount'];
    const amount = fromYuan(totalAmount);
    if (totalAmount !== undefined && amount === undefined) {
      throw new PayError('CHANNEL_ERROR', 'the payment channel sent an unreadable amount', { method: answer.method });
    }
    const channelTradeNo = str(answer.node, 'trade_no');
    const paidAt = status === 'paid' ? parseGmt8(answer.node['send_pay_date']) : undefined;
    return {
      status,
      raw: tradeStatus,
      ...(channelTradeNo ? { channelTradeNo } : {}),
      ...(amount ? { amount } : {}),
      ...(paidAt ? { paidAt } : {}),
    };
  }

  /**
   * Closes an unpaid trade (§1.7 alipay.trade.close).
   *
   * - ACQ.TRADE_NOT_EXIST: an unscanned precreate, or a page/wap pay never opened: nothing to close.
   * - ACQ.TRADE_STATUS_ERROR: paid or already closed; a query tells which.
   * - A system error (20000 / ACQ.SYSTEM_ERROR): the trade's state is unknown, so it is queried first,
   *   and alipay.trade.cancel is used only while the query says WAIT_BUYER_PAY. Decision: cancel is
   *   never sent on a trade that is paid, or whose state could not be read (the query itself failed):
   *   cancel REFUNDS a paid trade, which would undo a payment the buyer made. In those cases the error
   *   is thrown (retryable) and the caller tries again later. If cancel still answers action=refund (the
   *   buyer paid between our query and the cancel), the money went back to the buyer and the trade is
   *   closed at Alipay, so the outcome is 'closed', not 'already_paid'.
   */
  async closePayment(ref: AttemptRef): Promise<CloseOutcome> {
    const answer = await this.#call(ALIPAY_METHODS.close, { out_trade_no: ref.outTradeNo });
    if (answer.ok) return 'closed';
    if (answer.subCode === 'ACQ.TRADE_NOT_EXIST') return 'not_found';
    // Closing is refused for a trade that is no longer waiting (TRADE_STATUS_ERROR), or its state is
    // unknown (a system error; the query may throw too, which leaves it unknown: no cancel then).
    const statusError = answer.subCode === 'ACQ.TRADE_STATUS_ERROR';
    if (!statusError && !isRetryableFailure(answer.code, answer.subCode)) throw this.#failure(answer);
    const snapshot = await this.queryPayment(ref);
    switch (snapshot.status) {
      case 'paid':
        return 'already_paid';
      case 'closed':
        return 'closed';
      case 'not_found':
        return 'not_found';
      case 'failed':
        throw this.#failure(answer);
      case 'pending':
        // Still waiting although close was refused for its status: something is off, try again later.
        if (statusError) throw this.#failure(answer);
        break;
    }
    const cancel = await this.#call(ALIPAY_METHODS.cancel, { out_trade_no: ref.outTradeNo });
    if (!cancel.ok) {
      if (cancel.subCode === 'ACQ.TRADE_NOT_EXIST') return 'not_found';
      throw this.#failure(cancel);
    }
    if (str(cancel.node, 'retry_flag') === 'Y') {
      throw new PayError('CHANNEL_ERROR', 'the payment channel asks to retry the cancel', {
        method: cancel.method,
        retryable: true,
        retry_flag: 'Y',
      });
    }
    return 'closed';
  }

  /**
   * alipay.trade.refund (§1.7, PROTOCOLS-REFUNDS-BILLS.md §1.12). out_request_no = refundId, the
   * idempotency key. code=10000 only means accepted: fund_change=Y is a refund that moved money now
   * ('success'); fund_change=N (or absent) is a repeat or a refund not finished, so the refund query
   * decides ('success' when it says REFUND_SUCCESS, else 'pending'; a failing query leaves it 'pending').
   * A definite refusal (isRefundRefusal) is 'failed' with the sub_code; anything else throws.
   */
  async refund(input: RefundInput): Promise<ChannelRefundSnapshot> {
    const refundAmount = toYuan(input.amount);
    this.#checkRefundCurrency(input);
    const answer = await this.#call(ALIPAY_METHODS.refund, {
      out_trade_no: input.payment.outTradeNo,
      refund_amount: refundAmount,
      out_request_no: input.refundId,
      ...(input.reason ? { refund_reason: input.reason.slice(0, 256) } : {}),
    });
    if (!answer.ok) {
      if (isRefundRefusal(answer.code, answer.subCode)) {
        return { status: 'failed', failureCode: answer.subCode as string, raw: answer.subCode };
      }
      throw this.#failure(answer);
    }
    this.#checkEchoedTrade(answer, input);
    const tradeNo = str(answer.node, 'trade_no');
    const refundedTotal = fromYuan(answer.node['refund_fee']);
    if (str(answer.node, 'fund_change') === 'Y') {
      const finishedAt = parseGmt8Millis(answer.node['gmt_refund_pay']) ?? this.#now();
      return {
        status: 'success',
        amount: input.amount,
        finishedAt,
        raw: 'fund_change=Y',
        ...(tradeNo ? { channelRefundNo: tradeNo } : {}),
        ...(refundedTotal ? { refundedTotal } : {}),
      };
    }
    let queried: ChannelRefundSnapshot | undefined;
    try {
      queried = await this.queryRefund(input);
    } catch {
      queried = undefined; // accepted; the sync job asks again later
    }
    if (queried?.status === 'success') return queried;
    return {
      status: 'pending',
      raw: 'fund_change=N',
      ...(tradeNo ? { channelRefundNo: tradeNo } : {}),
      ...(refundedTotal ? { refundedTotal } : {}),
    };
  }

  /**
   * alipay.trade.fastpay.refund.query: refund_status REFUND_SUCCESS = success; REFUND_PROCESSING (async
   * refund products) = pending; REFUND_FAIL = failed; no refund_status = not received (not_found), as the
   * doc says ("refund not received or failed"): sending the refund again with the same out_request_no is
   * safe. ACQ.TRADE_NOT_EXIST is not_found too.
   */
  async queryRefund(input: RefundInput): Promise<ChannelRefundSnapshot> {
    const answer = await this.#call(ALIPAY_METHODS.refundQuery, {
      out_trade_no: input.payment.outTradeNo,
      out_request_no: input.refundId,
      query_options: ['gmt_refund_pay'],
    });
    if (!answer.ok) {
      if (answer.subCode === 'ACQ.TRADE_NOT_EXIST') return { status: 'not_found', raw: answer.subCode };
      throw this.#failure(answer);
    }
    this.#checkEchoedTrade(answer, input);
    const echoedRequest = str(answer.node, 'out_request_no');
    if (echoedRequest !== undefined && echoedRequest !== '' && echoedRequest !== input.refundId) {
      throw new PayError('CHANNEL_ERROR', 'the payment channel answered about another refund', {
        method: answer.method,
      });
    }
    const refundStatus = str(answer.node, 'refund_status');
    const amount = fromYuan(answer.node['refund_amount']);
    const tradeNo = str(answer.node, 'trade_no');
    const common = { ...(tradeNo ? { channelRefundNo: tradeNo } : {}), ...(amount ? { amount } : {}) };
    switch (refundStatus) {
      case 'REFUND_SUCCESS': {
        const finishedAt = parseGmt8Millis(answer.node['gmt_refund_pay']);
        return { status: 'success', raw: refundStatus, ...common, ...(finishedAt ? { finishedAt } : {}) };
      }
      case 'REFUND_PROCESSING':
        return { status: 'pending', raw: refundStatus, ...common };
      case 'REFUND_FAIL':
        return { status: 'failed', failureCode: refundStatus, raw: refundStatus, ...common };
      case undefined:
      case '':
        return { status: 'not_found', raw: 'no refund_status' };
      default:
        throw new PayError('CHANNEL_ERROR', 'the payment channel sent an unknown refund status', {
          method: answer.method,
          refund_status: refundStatus.slice(0, 64),
        });
    }
  }

  #checkRefundCurrency(input: RefundInput): void {
    if (input.amount.currency !== input.payment.amount.currency) {
      throw new PayError('INVALID_PARAMS', 'the refund currency differs from the payment currency');
    }
  }

  #checkEchoedTrade(answer: GatewayAnswer, input: RefundInput): void {
    const echoed = str(answer.node, 'out_trade_no');
    if (echoed !== undefined && echoed !== '' && echoed !== input.payment.outTradeNo) {
      throw new PayError('CHANNEL_ERROR', 'the payment channel answered about another trade', {
        method: answer.method,
      });
    }
  }

  verifyNotify(raw: RawNotify): Promise<VerifiedNotify> {
    // The work is synchronous; a throw inside the executor becomes the rejection.
    return new Promise((resolve) => resolve(this.#verifyNotify(raw)));
  }

  #verifyNotify(raw: RawNotify): VerifiedNotify {
    const params = parseFormBody(raw.body);
    const sign = params['sign'];
    if (!sign) throw new PayError('INVALID_PARAMS', 'the notification is not signed');
    if (params['app_id'] !== this.#appId) {
      throw new PayError('INVALID_PARAMS', 'the notification is for another app');
    }
    const signType = params['sign_type'];
    if (signType !== undefined && signType !== 'RSA2') {
      throw new PayError('INVALID_PARAMS', 'the notification uses an unsupported sign_type');
    }
    const charset = params['charset'];
    if (charset !== undefined && charset.toLowerCase() !== 'utf-8') {
      throw new PayError('INVALID_PARAMS', 'the notification is not UTF-8');
    }
    if (!this.#signer.verifyNotify(params)) {
      throw new PayError('INVALID_PARAMS', 'the notification has a bad signature');
    }
    if (this.#sellerId !== undefined && params['seller_id'] !== this.#sellerId) {
      throw new PayError('INVALID_PARAMS', 'the notification is for another seller');
    }
    const outTradeNo = params['out_trade_no'];
    if (!outTradeNo) throw new PayError('INVALID_PARAMS', 'the notification has no out_trade_no');
    if (isRefundNotify(params)) return this.#refundNews(params, outTradeNo);
    const tradeStatus = params['trade_status'];
    const status = mapTradeStatus(tradeStatus);
    if (status === undefined) {
      throw new PayError('INVALID_PARAMS', 'the notification has an unknown trade_status', {
        trade_status: tradeStatus?.slice(0, 64),
      });
    }
    const totalAmount = params['total_amount'];
    const amount = fromYuan(totalAmount);
    if (totalAmount !== undefined && amount === undefined) {
      throw new PayError('INVALID_PARAMS', 'the notification has an unreadable total_amount');
    }
    const channelTradeNo = params['trade_no'];
    const notifyId = params['notify_id'];
    const paidAt = status === 'paid' ? parseGmt8(params['gmt_payment']) : undefined;
    return {
      kind: 'payment',
      dedupeKey: notifyId || `${channelTradeNo ?? outTradeNo}:${tradeStatus as string}`,
      outTradeNo,
      status,
      raw: tradeStatus,
      ...(channelTradeNo ? { channelTradeNo } : {}),
      ...(amount ? { amount } : {}),
      ...(paidAt ? { paidAt } : {}),
    };
  }

  /**
   * A refund-triggered trade_status_sync (§1.12): the refund named by out_biz_no (= out_request_no; when
   * absent, out_trade_no, the default request number of §1.7) succeeded. refund_fee is the running total
   * refunded on the trade, not this refund's amount, so it is reported as refundedTotal. trade_status
   * stays what the trade is (TRADE_SUCCESS after a partial refund, TRADE_CLOSED after a full one).
   */
  #refundNews(params: Readonly<Record<string, string>>, outTradeNo: string): VerifiedNotify {
    const refundId = params['out_biz_no'] || outTradeNo;
    const refundFee = params['refund_fee'];
    const refundedTotal = fromYuan(refundFee);
    if (refundFee !== undefined && refundedTotal === undefined) {
      throw new PayError('INVALID_PARAMS', 'the notification has an unreadable refund_fee');
    }
    const gmtRefund = params['gmt_refund'];
    const finishedAt = parseGmt8Millis(gmtRefund);
    if (gmtRefund !== undefined && finishedAt === undefined) {
      throw new PayError('INVALID_PARAMS', 'the notification has an unreadable gmt_refund');
    }
    const tradeStatus = params['trade_status'];
    const tradeState = mapTradeStatus(tradeStatus);
    if (tradeState !== 'paid' && tradeState !== 'closed') {
      throw new PayError('INVALID_PARAMS', 'the refund notification has an unexpected trade_status', {
        trade_status: tradeStatus?.slice(0, 64),
      });
    }
    const channelTradeNo = params['trade_no'];
    const amount = fromYuan(params['total_amount']);
    return {
      kind: 'refund',
      dedupeKey: params['notify_id'] || `refund:${refundId}:${refundFee ?? ''}`,
      outTradeNo,
      status: tradeState,
      raw: `${tradeStatus as string} refund`,
      ...(channelTradeNo ? { channelTradeNo } : {}),
      ...(amount ? { amount } : {}),
      refund: {
        refundId,
        status: 'success',
        ...(refundedTotal ? { refundedTotal } : {}),
        ...(channelTradeNo ? { channelRefundNo: channelTradeNo } : {}),
        ...(finishedAt ? { finishedAt } : {}),
      },
    };
  }

  notifyReply(outcome: 'accepted' | 'rejected'): NotifyReply {
    return { status: 200, contentType: TEXT_PLAIN, body: outcome === 'accepted' ? 'success' : 'fail' };
  }

  /** Common parameters plus biz_content, signed (§1.2, §1.3). */
  #signedParams(
    method: string,
    biz: Readonly<Record<string, unknown>>,
    extra: Readonly<Record<string, string | undefined>>,
  ): Record<string, string> {
    const params: Record<string, string> = {
      app_id: this.#appId,
      method,
      format: 'JSON',
      charset: 'utf-8',
      sign_type: 'RSA2',
      timestamp: gmt8Dashed(this.#now()),
      version: '1.0',
      biz_content: JSON.stringify(biz),
    };
    // Empty values are never sent: the Node SDK would sign them while the gateway skips them (§1.3).
    for (const [k, v] of Object.entries(extra)) if (v) params[k] = v;
    params['sign'] = this.#signer.sign(params);
    return params;
  }

  /** Splits signed params like the SDK: common ones into the gateway URL's query, the rest into the body. */
  #split(params: Readonly<Record<string, string>>): { url: URL; body: Record<string, string> } {
    const url = new URL(this.#gatewayUrl);
    const body: Record<string, string> = {};
    for (const [k, v] of Object.entries(params)) {
      if (ALIPAY_URL_PARAMS.has(k)) url.searchParams.set(k, v);
      else body[k] = v;
    }
    return { url, body };
  }

  async #call(
    method: string,
    biz: Readonly<Record<string, unknown>>,
    extra: Readonly<Record<string, string | undefined>> = {},
  ): Promise<GatewayAnswer> {
    const { url, body } = this.#split(this.#signedParams(method, biz, extra));
    const answer = await channelPost(
      url.toString(),
      new URLSearchParams(body).toString(),
      { 'content-type': 'application/x-www-form-urlencoded;charset=utf-8', accept: 'application/json' },
      this.#timeoutMs,
    );
    if (answer.status !== 200) {
      throw new PayError('CHANNEL_ERROR', 'the payment channel answered with an HTTP error', {
        method,
        httpStatus: answer.status,
        retryable: answer.status >= 500,
      });
    }
    const verified = this.#signer.verifyResponse(answer.body, method);
    const code = str(verified.node, 'code');
    return { method, node: verified.node, ok: code === '10000', code, subCode: str(verified.node, 'sub_code') };
  }

  #failure(answer: GatewayAnswer): PayError {
    return new PayError('CHANNEL_ERROR', `the payment channel refused ${answer.method}`, {
      method: answer.method,
      code: answer.code,
      sub_code: answer.subCode,
      sub_msg: str(answer.node, 'sub_msg')?.slice(0, 512),
      retryable: isRetryableFailure(answer.code, answer.subCode),
    });
  }

  /** page.pay / wap.pay: no server call; a signed auto-submitting form and the same request as a GET URL. */
  #pageRequest(method: string, biz: Readonly<Record<string, string>>, input: AttemptInput): ChannelPayInfo {
    const params = this.#signedParams(method, biz, { notify_url: input.notifyUrl, return_url: input.returnUrl });
    const { url, body } = this.#split(params);
    const form = autoSubmitForm(url.toString(), body);
    const getUrl = new URL(url);
    for (const [k, v] of Object.entries(body)) getUrl.searchParams.set(k, v);
    return { payUrl: getUrl.toString(), form };
  }
}
