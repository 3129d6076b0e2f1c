import type { Money } from '#common';

import type { AlipayPlusTokenStore } from './alipayplus/alipayplus.tokens.js';

/** What the app lends channel instances (channels never touch the database themselves). */
export interface ChannelContext {
  /** Where Alipay+ instances keep customers' authorizations; in memory when absent. */
  readonly alipayPlusTokens?: AlipayPlusTokenStore;
}

/** The three channel types of API.md §1. */
export const CHANNEL_TYPES = ['pays.AliPayType', 'pays.WechatPayType', 'pays.AlipayPlusType'] as const;
export type ChannelType = (typeof CHANNEL_TYPES)[number];

/**
 * One configured merchant account of a type, as read from `pays/<folder>/` (API.md §2). `config` holds
 * the instance's fields with `${ENV}` and `file:` already resolved; the provider validates them.
 */
export interface ChannelInstanceConfig {
  readonly fullName: string; // `pays.<folder>`
  readonly type: ChannelType;
  readonly title: string;
  readonly isDefault: boolean;
  readonly config: Readonly<Record<string, unknown>>;
  /** A sandbox simulator's instance: never a type's default beside a real instance (API.md §9). */
  readonly sandbox?: boolean;
}

/** What a channel needs to start a payment: one attempt of one order. */
export interface AttemptInput {
  readonly orderId: string;
  readonly attemptId: string;
  /** The id the channel sees (out_trade_no / paymentRequestId); see PaymentChannel.outTradeNoFor. */
  readonly outTradeNo: string;
  readonly subject: string;
  readonly amount: Money;
  /** The channel's own payType (already resolved from `pc`/`mobile`). */
  readonly payType: string;
  readonly expireTime: Date;
  readonly notifyUrl: string;
  readonly returnUrl?: string;
  readonly clientIp?: string;
  readonly openid?: string;
  readonly authCode?: string;
  readonly customerId?: string;
}

/** What identifies an attempt at the channel. */
export interface AttemptRef {
  readonly orderId: string;
  readonly attemptId: string;
  readonly outTradeNo: string;
  readonly payType: string;
  readonly amount: Money;
  readonly createdAt: Date;
  readonly channelTradeNo?: string | null;
}

export interface JsapiParams {
  readonly appId: string;
  readonly timeStamp: string;
  readonly nonceStr: string;
  readonly package: string;
  readonly signType: string;
  readonly paySign: string;
}

/** The channel's answer to createPayment; the service adds orderId, channel and expireTime. */
export interface ChannelPayInfo {
  readonly payUrl?: string;
  /** Set by the channel for QR pay types; the service renders it as a PNG data URL. */
  readonly qrContent?: string;
  readonly form?: string;
  readonly jsapiParams?: JsapiParams;
  readonly channelTradeNo?: string;
}

/** Normalised channel-side status of one attempt (a small closed set, as medusa does). */
export type ChannelPaymentStatus =
  | 'pending' // exists, not paid yet (WAIT_BUYER_PAY, NOTPAY, USERPAYING, ACCEPT, A+ U)
  | 'not_found' // the channel has no such trade (e.g. an unscanned Alipay precreate)
  | 'paid' // TRADE_SUCCESS/TRADE_FINISHED, SUCCESS, REFUND, A+ S
  | 'closed' // TRADE_CLOSED (unpaid), CLOSED, REVOKED
  | 'failed'; // PAYERROR, A+ F

export interface ChannelTradeSnapshot {
  readonly status: ChannelPaymentStatus;
  readonly channelTradeNo?: string;
  /** The amount the channel reports, when it reports one. */
  readonly amount?: Money;
  readonly paidAt?: Date;
  /** The channel's own status word, for logs. */
  readonly raw?: string;
}

export type CloseOutcome = 'closed' | 'not_found' | 'already_paid' | 'too_early';

/** A notify as it reached us, byte for byte. */
export interface RawNotify {
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  readonly method: string;
  /** The request path (Alipay+ signs it). */
  readonly path: string;
}

/** A notify whose signature checked out, normalised. */
export interface VerifiedNotify {
  /**
   * What the notify reports: a payment's status, or news of a refund. A refund notify is NEVER a payment
   * (an Alipay partial-refund notify carries trade_status=TRADE_SUCCESS, PROTOCOLS-REFUNDS-BILLS.md §1.12).
   */
  readonly kind: 'payment' | 'refund';
  /** Present iff kind === 'refund'. */
  readonly refund?: RefundNews;
  /** Deduplication key within the channel type (notify_id, transaction_id+status, notifyId…). */
  readonly dedupeKey: string;
  /**
   * The payment's out_trade_no / paymentRequestId. For refund news: the refunded payment's, when the
   * notify names it ('' when it does not, e.g. an Alipay+ notifyRefund without paymentRequestId).
   */
  readonly outTradeNo: string;
  readonly channelTradeNo?: string;
  readonly status: ChannelPaymentStatus;
  readonly amount?: Money;
  readonly paidAt?: Date;
  readonly raw?: string;
}

/** What a channel needs to refund (part of) one paid attempt. */
export interface RefundInput {
  /**
   * The merchant refund number, also the channel's idempotency key (Alipay out_request_no, WeChat
   * out_refund_no, Alipay+ refundRequestId): a retry with the same refundId and amount never refunds twice.
   */
  readonly refundId: string;
  readonly orderId: string;
  /** The paid attempt being refunded (outTradeNo, channelTradeNo, amount = what was paid). */
  readonly payment: AttemptRef;
  /** This refund's amount (same currency as the payment). */
  readonly amount: Money;
  readonly reason?: string;
  /**
   * Where refund news goes: WeChat `${PUBLIC_BASE_URL}/api/v1/notify/wechatpay/refund`, Alipay+
   * refundNotifyUrl. Alipay ignores it (refund notifies go to the payment's notify_url).
   */
  readonly notifyUrl: string;
}

/** `not_found` only from queryRefund: the channel never got this refund (safe to send it again, same refundId). */
export type ChannelRefundStatus = 'pending' | 'success' | 'failed' | 'not_found';

export interface ChannelRefundSnapshot {
  readonly status: ChannelRefundStatus;
  /** The channel's refund id (WeChat refund_id, Alipay+ refundId; Alipay has none: its trade_no). */
  readonly channelRefundNo?: string;
  /** This refund's amount as the channel reports it. */
  readonly amount?: Money;
  /** The total refunded on the payment so far, when the channel reports it (Alipay refund_fee). */
  readonly refundedTotal?: Money;
  readonly finishedAt?: Date;
  /** The channel's code for a definite refusal (status 'failed'). */
  readonly failureCode?: string;
  /** The channel's own status word, for logs. */
  readonly raw?: string;
}

/** Refund news carried by a notify (VerifiedNotify.kind === 'refund'). */
export interface RefundNews {
  readonly refundId: string;
  readonly status: 'pending' | 'success' | 'failed';
  /** This refund's amount, when the notify says it (Alipay's does not: see refundedTotal). */
  readonly amount?: Money;
  /** Cumulative refunded on the payment (Alipay refund_fee is a running total, §1.12). */
  readonly refundedTotal?: Money;
  readonly channelRefundNo?: string;
  readonly finishedAt?: Date;
  readonly failureCode?: string;
}

export interface NotifyReply {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

/**
 * One configured channel instance. Pure adapter: it never touches the database (STYLE.md).
 * Errors: throw PayError('CHANNEL_ERROR' | 'CHANNEL_TIMEOUT', safe message, {raw detail for logs}).
 */
export interface PaymentChannel {
  readonly type: ChannelType;
  readonly fullName: string;
  readonly title: string;
  /** The channel's own payTypes, e.g. ['PRE_PAY', 'WAP_PAY', 'PAGE_PAY']. */
  readonly payTypes: readonly string[];
  /** Maps the seed's generic `pc`/`mobile` or a channel payType to a channel payType; undefined if unknown. */
  resolvePayType(payType: string): string | undefined;
  /** The id the channel is given for an attempt: the orderId (Alipay, WeChat) or the attemptId (Alipay+). */
  outTradeNoFor(orderId: string, attemptId: string): string;
  /** Key that a notify names to find this instance (Alipay app_id, WeChat appid|mch_id, A+ Client-Id). */
  readonly notifyKey: string;
  createPayment(input: AttemptInput): Promise<ChannelPayInfo>;
  queryPayment(ref: AttemptRef): Promise<ChannelTradeSnapshot>;
  closePayment(ref: AttemptRef): Promise<CloseOutcome>;
  /**
   * Refunds (part of) a paid attempt. A definite refusal (balance, window passed, amount over what is
   * refundable…) answers status 'failed' with failureCode; accepted but unfinished 'pending'; done
   * 'success'. A transport failure, timeout, system error or unknown result THROWS
   * PayError('CHANNEL_ERROR' | 'CHANNEL_TIMEOUT'): retry with the same refundId (idempotent at the channel).
   */
  refund(input: RefundInput): Promise<ChannelRefundSnapshot>;
  /** The refund's state at the channel; 'not_found' when the channel never got it. Throws like refund. */
  queryRefund(input: RefundInput): Promise<ChannelRefundSnapshot>;
  /**
   * Throws PayError('INVALID_PARAMS') on a bad signature or a payload not meant for this instance.
   * Recognises refund news (kind 'refund') as well as payment news.
   */
  verifyNotify(raw: RawNotify): Promise<VerifiedNotify>;
  notifyReply(outcome: 'accepted' | 'rejected'): NotifyReply;
}

/** One per channel type, provided through PAYMENT_CHANNELS; builds instances from config. */
export interface ChannelProvider {
  readonly type: ChannelType;
  /** Validates the config statically (throws ConfigError naming the field, never the value). */
  createInstance(instance: ChannelInstanceConfig, context?: ChannelContext): PaymentChannel;
  /** Reads the instance key out of a raw notify without trusting it (the signature is checked later). */
  notifyKeyOf(raw: RawNotify): string | undefined;
  /** The reply sent when no instance could even be found. */
  rejectReply(): NotifyReply;
}
