import { Logger } from '@nestjs/common';
import { PayError, Secret, SystemClock, type Clock } from '#common';
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
import { CHANNEL_HTTP_TIMEOUT_MS, channelPost } from '../http.js';
import {
  ALIPAYPLUS_PATHS,
  ALIPAYPLUS_PAY_TYPES,
  DEFAULT_PRODUCT_CODE,
  NotifyBodyError,
  alipayPlusNotifyReply,
  asObject,
  classifyPayAnswer,
  fromWireAmount,
  headerOf,
  invalidatesAuthorization,
  isGrantRefusal,
  isNotFoundCode,
  isPayClientFault,
  isRefundNotifyBody,
  isoWithOffset,
  mapInquiry,
  mapInquiryRefund,
  mapRefundAnswer,
  notifyDedupeKey,
  parseIsoTime,
  parsePaymentNotify,
  parseRefundNotify,
  readResult,
  resolveAlipayPlusPayType,
  str,
  toWireAmount,
  type AlipayPlusResult,
  type Json,
} from './alipayplus.mapper.js';
import { AlipayPlusSigner } from './alipayplus.signer.js';
import {
  type AlipayPlusAuthorization,
  type AlipayPlusTokenStore,
  InMemoryAlipayPlusTokenStore,
  accessTokenUsable,
  refreshTokenUsable,
} from './alipayplus.tokens.js';

/** A validated instance configuration (see AlipayPlusProvider for the checks). */
export interface AlipayPlusChannelConfig {
  readonly clientId: string;
  /** The merchant private key: PEM or bare base64 PKCS#8/PKCS#1. */
  readonly privateKey: string;
  /** The wallet's public key: PEM or bare base64 SPKI/PKCS#1. */
  readonly walletPublicKey: string;
  /** Base URL the API paths are appended to; may carry a path prefix (e.g. the sandbox mount). */
  readonly gatewayUrl: string;
  readonly keyVersion?: string;
  readonly customerBelongsTo?: string;
  readonly productCode?: string;
  /** The mini program's appId, sent with applyToken and pay when configured. */
  readonly appId?: string;
}

export interface AlipayPlusChannelOptions {
  readonly fullName: string;
  readonly title: string;
  readonly config: AlipayPlusChannelConfig;
  readonly clock?: Clock;
  readonly timeoutMs?: number;
  /** Where customers' authorizations are kept; in this instance's memory when not given. */
  readonly tokenStore?: AlipayPlusTokenStore;
}

type ApiName = keyof typeof ALIPAYPLUS_PATHS;

/**
 * One Alipay+ mini-program merchant (shared/design/PROTOCOLS.md §3). The payment request id is the
 * attempt id, so a retried createPayment of one attempt is idempotent at the wallet. Pure adapter: no
 * database. User authorizations (accessToken/refreshToken) live in the injected AlipayPlusTokenStore
 * (PostgreSQL in the app) and are never returned or logged.
 */
export class AlipayPlusChannel implements PaymentChannel {
  readonly type = 'pays.AlipayPlusType' as const;
  readonly payTypes: readonly string[] = ALIPAYPLUS_PAY_TYPES;
  readonly fullName: string;
  readonly title: string;
  readonly notifyKey: string;

  readonly #signer: AlipayPlusSigner;
  readonly #gateway: string;
  readonly #config: AlipayPlusChannelConfig;
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  readonly #tokens: AlipayPlusTokenStore;
  readonly #refreshing = new Map<string, Promise<AlipayPlusAuthorization>>();
  readonly #logger: Logger;

  constructor(options: AlipayPlusChannelOptions) {
    this.fullName = options.fullName;
    this.title = options.title;
    this.#config = options.config;
    this.notifyKey = options.config.clientId;
    this.#gateway = options.config.gatewayUrl.replace(/\/+$/, '');
    this.#clock = options.clock ?? new SystemClock();
    this.#timeoutMs = options.timeoutMs ?? CHANNEL_HTTP_TIMEOUT_MS;
    this.#tokens = options.tokenStore ?? new InMemoryAlipayPlusTokenStore();
    this.#signer = new AlipayPlusSigner({
      clientId: options.config.clientId,
      privateKey: options.config.privateKey,
      walletPublicKey: options.config.walletPublicKey,
      ...(options.config.keyVersion !== undefined ? { keyVersion: options.config.keyVersion } : {}),
    });
    this.#logger = new Logger(`AlipayPlusChannel ${options.fullName}`);
  }

  resolvePayType(payType: string): string | undefined {
    return resolveAlipayPlusPayType(payType);
  }

  /** paymentRequestId = the attempt id: the wallet's idempotency key is one attempt. */
  outTradeNoFor(_orderId: string, attemptId: string): string {
    return attemptId;
  }

  // -------------------------------------------------------------------------------------------------
  // createPayment

  async createPayment(input: AttemptInput): Promise<ChannelPayInfo> {
    if (this.resolvePayType(input.payType) === undefined) {
      throw new PayError('UNKNOWN_PAY_TYPE', `unknown payType for Alipay+: ${input.payType.slice(0, 32)}`);
    }
    let paymentAmount;
    try {
      paymentAmount = toWireAmount(input.amount);
    } catch (err) {
      if (err instanceof PayError) throw err;
      throw new PayError('INVALID_AMOUNT', 'amount must be a positive integer of minor units');
    }
    const customerId = await this.#authorize(input);

    const body: Record<string, unknown> = {
      ...(this.#config.appId !== undefined ? { appId: this.#config.appId } : {}),
      productCode: this.#config.productCode ?? DEFAULT_PRODUCT_CODE,
      paymentRequestId: input.outTradeNo,
      paymentAmount,
      order: {
        referenceOrderId: input.orderId,
        orderDescription: input.subject,
        orderAmount: paymentAmount,
        // Where a wallet wants the authorized customer in a cashier pay is UNVERIFIED (§3.4 lists
        // order.buyer{referenceBuyerId…}); the accessToken itself stays server-side.
        buyer: { referenceBuyerId: customerId },
      },
      paymentExpiryTime: isoWithOffset(input.expireTime),
      paymentNotifyUrl: input.notifyUrl,
      ...(input.returnUrl !== undefined ? { paymentRedirectUrl: input.returnUrl } : {}),
    };
    const answer = await this.#call('pay', body);
    this.#checkEcho(answer, input.outTradeNo, 'pay');
    const outcome = classifyPayAnswer(answer);
    switch (outcome.kind) {
      case 'cashier':
        return {
          payUrl: outcome.url,
          ...(outcome.paymentId !== undefined ? { channelTradeNo: outcome.paymentId } : {}),
        };
      case 'paid':
        // Agreement-style instant success: nothing to open; the notify/inquiry settles the order.
        return outcome.paymentId !== undefined ? { channelTradeNo: outcome.paymentId } : {};
      case 'failed': {
        const { resultCode } = outcome.result;
        if (invalidatesAuthorization(resultCode)) await this.#tokens.delete(this.fullName, customerId);
        if (resultCode === 'REPEAT_REQ_INCONSISTENT') {
          // The attempt's paymentRequestId was used with other parameters (another customer): a state
          // conflict of this order, not a wallet outage.
          throw new PayError(
            'ORDER_STATUS_ERROR',
            'a wallet payment of this order was started with other details; cancel the order or let it expire',
            this.#detail('pay', outcome.result),
          );
        }
        if (isPayClientFault(resultCode)) {
          throw new PayError('INVALID_PARAMS', 'the wallet refused this payment', this.#detail('pay', outcome.result));
        }
        throw new PayError(
          'CHANNEL_ERROR',
          'the wallet refused to create the payment',
          this.#detail('pay', outcome.result),
        );
      }
      case 'unknown':
        throw new PayError(
          'CHANNEL_ERROR',
          'the wallet did not confirm the payment; check it later',
          this.#detail('pay', outcome.result),
        );
    }
  }

  /** Returns the customerId this payment is for, after making sure we hold a live authorization for it. */
  async #authorize(input: AttemptInput): Promise<string> {
    if (input.authCode !== undefined && input.authCode !== '') {
      const auth = await this.#applyToken({ grantType: 'AUTHORIZATION_CODE', authCode: input.authCode });
      if (input.customerId !== undefined && input.customerId !== '' && input.customerId !== auth.customerId) {
        throw new PayError('INVALID_PARAMS', 'customerId does not match the authorization');
      }
      return auth.customerId;
    }
    if (input.customerId !== undefined && input.customerId !== '') {
      // A bare customerId comes from the client: it is accepted only when this server holds the
      // customer's authorization (obtained from an authCode), refreshed when it has expired.
      const auth = await this.#liveAuthorization(input.customerId);
      return auth.customerId;
    }
    throw new PayError('INVALID_PARAMS', 'Alipay+ payments need an authCode (my.getAuthCode) or a customerId');
  }

  async #liveAuthorization(customerId: string): Promise<AlipayPlusAuthorization> {
    const now = this.#clock.now();
    const auth = await this.#tokens.get(this.fullName, customerId);
    if (auth && accessTokenUsable(auth, now)) return auth;
    if (!auth || !refreshTokenUsable(auth, now) || !auth.refreshToken) {
      if (auth) await this.#tokens.delete(this.fullName, customerId);
      throw new PayError('INVALID_PARAMS', 'no valid authorization for this customer: send a new authCode');
    }
    const inFlight = this.#refreshing.get(customerId);
    if (inFlight) return inFlight;
    const refreshToken = auth.refreshToken;
    const p = this.#applyToken({ grantType: 'REFRESH_TOKEN', refreshToken: refreshToken.reveal() }, customerId)
      .catch(async (err: unknown) => {
        // Another api process may have refreshed first (the wallet then refuses the old refresh token):
        // its new authorization is in the shared store.
        const latest = await this.#tokens.get(this.fullName, customerId);
        if (latest && latest.refreshToken?.reveal() !== refreshToken.reveal() && accessTokenUsable(latest, now)) {
          return latest;
        }
        throw err;
      })
      .finally(() => this.#refreshing.delete(customerId));
    this.#refreshing.set(customerId, p);
    return p;
  }

  /** applyToken (§3.3); stores the authorization. `forCustomer` is set for a refresh. */
  async #applyToken(
    grant: { grantType: 'AUTHORIZATION_CODE'; authCode: string } | { grantType: 'REFRESH_TOKEN'; refreshToken: string },
    forCustomer?: string,
  ): Promise<AlipayPlusAuthorization> {
    const body = {
      ...(this.#config.appId !== undefined ? { appId: this.#config.appId } : {}),
      authClientId: this.#config.clientId,
      ...(this.#config.customerBelongsTo !== undefined ? { customerBelongsTo: this.#config.customerBelongsTo } : {}),
      ...grant,
    };
    const answer = await this.#call('applyToken', body);
    const result = readResult(answer['result']);
    if (!result || result.resultStatus !== 'S') {
      const refused = result?.resultStatus === 'F' && isGrantRefusal(result.resultCode);
      if (forCustomer !== undefined && refused && grant.grantType === 'REFRESH_TOKEN') {
        // Forget it only if it is still the authorization that was refused (not one another process stored since).
        const current = await this.#tokens.get(this.fullName, forCustomer);
        if (current?.refreshToken?.reveal() === grant.refreshToken)
          await this.#tokens.delete(this.fullName, forCustomer);
      }
      if (refused) {
        throw new PayError(
          'INVALID_PARAMS',
          forCustomer !== undefined
            ? 'the customer authorization has expired: send a new authCode'
            : 'the wallet refused the authCode',
          this.#detail('applyToken', result),
        );
      }
      throw new PayError(
        'CHANNEL_ERROR',
        'the wallet could not authorize the customer',
        this.#detail('applyToken', result),
      );
    }
    const accessToken = str(answer, 'accessToken');
    const customerId = str(answer, 'customerId');
    if (!accessToken || !customerId || (forCustomer !== undefined && customerId !== forCustomer)) {
      throw new PayError('CHANNEL_ERROR', 'the wallet sent an incomplete authorization', { api: 'applyToken' });
    }
    const refreshToken = str(answer, 'refreshToken');
    const accessTokenExpiresAt = parseIsoTime(answer['accessTokenExpiryTime']);
    const refreshTokenExpiresAt = parseIsoTime(answer['refreshTokenExpiryTime']);
    const auth: AlipayPlusAuthorization = {
      customerId,
      accessToken: new Secret(accessToken),
      ...(accessTokenExpiresAt ? { accessTokenExpiresAt } : {}),
      ...(refreshToken ? { refreshToken: new Secret(refreshToken) } : {}),
      ...(refreshTokenExpiresAt ? { refreshTokenExpiresAt } : {}),
    };
    await this.#tokens.put(this.fullName, auth);
    return auth;
  }

  // -------------------------------------------------------------------------------------------------
  // queryPayment / closePayment

  async queryPayment(ref: AttemptRef): Promise<ChannelTradeSnapshot> {
    const answer = await this.#call('inquiryPayment', { paymentRequestId: ref.outTradeNo });
    const mapped = mapInquiry(answer);
    if (mapped.kind === 'error') {
      throw new PayError(
        'CHANNEL_ERROR',
        'the wallet could not answer the inquiry',
        this.#detail('inquiryPayment', mapped.result),
      );
    }
    if (mapped.kind === 'not_found') return { status: 'not_found', raw: 'ORDER_NOT_EXIST' };
    this.#checkEcho(answer, ref.outTradeNo, 'inquiryPayment');
    const paymentId = str(answer, 'paymentId');
    let amount;
    if (answer['paymentAmount'] !== undefined) {
      amount = fromWireAmount(answer['paymentAmount']);
      if (!amount) throw new PayError('CHANNEL_ERROR', 'the wallet sent a malformed amount', { api: 'inquiryPayment' });
    }
    const paidAt = mapped.status === 'paid' ? parseIsoTime(answer['paymentTime']) : undefined;
    return {
      status: mapped.status,
      raw: mapped.raw,
      ...(paymentId ? { channelTradeNo: paymentId } : {}),
      ...(amount ? { amount } : {}),
      ...(paidAt ? { paidAt } : {}),
    };
  }

  /**
   * cancel (§3.7): S = closed; F/ORDER_NOT_EXIST = not_found; any other F (e.g. already paid, whose code
   * is not documented) is settled by an inquiry; U or no result = error (retry the cancel).
   */
  async closePayment(ref: AttemptRef): Promise<CloseOutcome> {
    const answer = await this.#call('cancel', { paymentRequestId: ref.outTradeNo });
    const result = readResult(answer['result']);
    if (result?.resultStatus === 'S') return 'closed';
    if (result?.resultStatus === 'F') {
      if (isNotFoundCode(result.resultCode)) return 'not_found';
      const snapshot = await this.queryPayment(ref);
      switch (snapshot.status) {
        case 'paid':
          return 'already_paid';
        case 'not_found':
          return 'not_found';
        case 'closed':
        case 'failed':
          return 'closed';
        case 'pending':
          break;
      }
    }
    throw new PayError('CHANNEL_ERROR', 'the wallet could not cancel the payment', this.#detail('cancel', result));
  }

  // -------------------------------------------------------------------------------------------------
  // refund / inquiryRefund (PROTOCOLS-REFUNDS-BILLS.md §3.11, §3.12)

  /**
   * refund with refundRequestId = refundId (the wallet's idempotency key). S = success, F = failed with
   * the resultCode, U or unknown = pending (mapRefundAnswer); transport failures throw.
   */
  async refund(input: RefundInput): Promise<ChannelRefundSnapshot> {
    if (input.amount.currency !== input.payment.amount.currency) {
      throw new PayError('INVALID_PARAMS', 'the refund currency differs from the payment currency');
    }
    let refundAmount;
    try {
      refundAmount = toWireAmount(input.amount);
    } catch (err) {
      if (err instanceof PayError) throw err;
      throw new PayError('INVALID_AMOUNT', 'amount must be a positive integer of minor units');
    }
    const answer = await this.#call('refund', {
      refundRequestId: input.refundId,
      paymentRequestId: input.payment.outTradeNo,
      ...(input.payment.channelTradeNo ? { paymentId: input.payment.channelTradeNo } : {}),
      refundAmount,
      ...(input.reason ? { refundReason: input.reason.slice(0, 256) } : {}),
      // Antom's field (§3.11); a wallet without refund notifies ignores it.
      refundNotifyUrl: input.notifyUrl,
    });
    this.#checkRefundEcho(answer, input.refundId, 'refund');
    const mapped = mapRefundAnswer(answer);
    if (mapped.kind === 'error') {
      throw new PayError(
        'CHANNEL_ERROR',
        'the wallet refused the refund request',
        this.#detail('refund', mapped.result),
      );
    }
    return mapped.snapshot;
  }

  async queryRefund(input: RefundInput): Promise<ChannelRefundSnapshot> {
    const answer = await this.#call('inquiryRefund', { refundRequestId: input.refundId });
    const mapped = mapInquiryRefund(answer);
    if (mapped.kind === 'error') {
      throw new PayError(
        'CHANNEL_ERROR',
        'the wallet could not answer the refund inquiry',
        this.#detail('inquiryRefund', mapped.result),
      );
    }
    this.#checkRefundEcho(answer, input.refundId, 'inquiryRefund');
    return mapped.snapshot;
  }

  #checkRefundEcho(answer: Json, refundRequestId: string, api: ApiName): void {
    const echoed = str(answer, 'refundRequestId');
    if (echoed !== undefined && echoed !== refundRequestId) {
      throw new PayError('CHANNEL_ERROR', 'the wallet answered about another refund', { api });
    }
  }

  // -------------------------------------------------------------------------------------------------
  // notifyPayment / notifyRefund

  verifyNotify(raw: RawNotify): Promise<VerifiedNotify> {
    try {
      return Promise.resolve(this.#verifyNotify(raw));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Steps: the instance (Client-Id), the signature over the raw bytes, then the body. */
  #verifyNotify(raw: RawNotify): VerifiedNotify {
    const clientId = headerOf(raw.headers, 'client-id');
    const time = headerOf(raw.headers, 'request-time');
    const signature = headerOf(raw.headers, 'signature');
    if (clientId !== this.#config.clientId) {
      throw new PayError('INVALID_PARAMS', 'notification not meant for this channel instance');
    }
    if (!time || !signature) throw new PayError('INVALID_PARAMS', 'notification is not signed');
    if (!this.#signer.verifyFromWallet(raw.method, raw.path, time, raw.body, signature)) {
      throw new PayError('INVALID_PARAMS', 'notification signature is invalid');
    }
    let body: Json | undefined;
    try {
      body = asObject(JSON.parse(raw.body.toString('utf8')));
    } catch {
      body = undefined;
    }
    if (!body) throw new PayError('INVALID_PARAMS', 'notification body is not a JSON object');
    if (isRefundNotifyBody(body)) return this.#refundNews(body);
    let parsed;
    try {
      parsed = parsePaymentNotify(body);
    } catch (err) {
      if (err instanceof NotifyBodyError) {
        throw new PayError('INVALID_PARAMS', 'notification body is malformed', { reason: err.message });
      }
      throw err;
    }
    return {
      kind: 'payment',
      dedupeKey: notifyDedupeKey(parsed),
      outTradeNo: parsed.paymentRequestId,
      status: parsed.status,
      raw: `${parsed.resultStatus}/${parsed.resultCode}`,
      ...(parsed.paymentId !== undefined ? { channelTradeNo: parsed.paymentId } : {}),
      ...(parsed.amount ? { amount: parsed.amount } : {}),
      ...(parsed.paidAt ? { paidAt: parsed.paidAt } : {}),
    };
  }

  /** notifyRefund (§3.13), already signature-checked: refund news, never a payment. */
  #refundNews(body: Json): VerifiedNotify {
    let parsed;
    try {
      parsed = parseRefundNotify(body);
    } catch (err) {
      if (err instanceof NotifyBodyError) {
        throw new PayError('INVALID_PARAMS', 'refund notification body is malformed', { reason: err.message });
      }
      throw err;
    }
    return {
      kind: 'refund',
      refund: parsed.news,
      dedupeKey: parsed.dedupeKey,
      outTradeNo: parsed.paymentRequestId ?? '',
      status: 'paid',
      raw: parsed.raw,
      ...(parsed.paymentId !== undefined ? { channelTradeNo: parsed.paymentId } : {}),
    };
  }

  notifyReply(outcome: 'accepted' | 'rejected'): NotifyReply {
    return alipayPlusNotifyReply(outcome);
  }

  // -------------------------------------------------------------------------------------------------
  // Transport

  /** Signs, POSTs, and verifies the answer's signature before reading a byte of it. */
  async #call(api: ApiName, payload: Readonly<Record<string, unknown>>): Promise<Json> {
    const url = `${this.#gateway}${ALIPAYPLUS_PATHS[api]}`;
    const parsedUrl = new URL(url);
    const uri = `${parsedUrl.pathname}${parsedUrl.search}`;
    const body = JSON.stringify(payload);
    const signed = this.#signer.signRequest('POST', uri, isoWithOffset(this.#clock.now()), body);
    const answer = await channelPost(
      url,
      body,
      { 'Content-Type': 'application/json; charset=UTF-8', ...signed },
      this.#timeoutMs,
    );
    const signature = answer.headers.get('signature');
    const responseTime = answer.headers.get('response-time');
    const responder = answer.headers.get('client-id');
    if (!signature || !responseTime) {
      this.#logger.warn(`${api}: unsigned answer, HTTP ${answer.status} from ${parsedUrl.host}`);
      throw new PayError('CHANNEL_ERROR', 'the wallet sent an unsigned answer', { api, httpStatus: answer.status });
    }
    if (responder !== null && responder !== this.#config.clientId) {
      throw new PayError('CHANNEL_ERROR', 'the wallet answered for another client', { api });
    }
    if (!this.#signer.verifyFromWallet('POST', uri, responseTime, answer.body, signature)) {
      this.#logger.warn(`${api}: answer signature invalid, HTTP ${answer.status} from ${parsedUrl.host}`);
      throw new PayError('CHANNEL_ERROR', 'the wallet answer signature is invalid', { api, httpStatus: answer.status });
    }
    let parsed: Json | undefined;
    try {
      parsed = asObject(JSON.parse(answer.body));
    } catch {
      parsed = undefined;
    }
    if (!parsed)
      throw new PayError('CHANNEL_ERROR', 'the wallet answer is not JSON', { api, httpStatus: answer.status });
    const result = readResult(parsed['result']);
    if (result && result.resultStatus !== 'S' && result.resultStatus !== 'A') {
      this.#logger.warn(`${api}: ${result.resultStatus}/${result.resultCode}`);
    }
    return parsed;
  }

  #checkEcho(answer: Json, paymentRequestId: string, api: ApiName): void {
    const echoed = str(answer, 'paymentRequestId');
    if (echoed !== undefined && echoed !== paymentRequestId) {
      throw new PayError('CHANNEL_ERROR', 'the wallet answered about another payment', { api });
    }
  }

  #detail(api: ApiName, result: AlipayPlusResult | undefined): Record<string, unknown> {
    return {
      api,
      resultStatus: result?.resultStatus,
      resultCode: result?.resultCode,
      resultMessage: result?.resultMessage,
    };
  }
}
