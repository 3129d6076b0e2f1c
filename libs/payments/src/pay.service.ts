import { Inject, Injectable, Logger } from '@nestjs/common';
import { ORDER_ID_PATTERN, PayError, generateOrderId, isSupportedCurrency, newId, parseAmount, Clock } from '#common';
import { APP_CONFIG, type AppConfig } from '#config';
import {
  type ChannelPayInfo,
  ChannelRegistry,
  type ClientNextStep,
  type JsapiParams,
  type PaymentChannel,
  clientResultNextStep,
} from '#channels';
import { type AttemptRecord, type OrderRecord, OrderStore, refOf } from './order-store.js';

export { refOf } from './order-store.js';
import { RefundStore, toPayment } from './refunds/refund-store.js';
import { type ApplyOutcome, PaymentTransitions } from './payment-transitions.js';
import { PublicUrl } from './public-url.js';
import { qrPngDataUrl } from './qr-png.js';
import { type OrderView, toOrderView } from './order-view.js';

// The Order view lives in order-view.ts (payment-transitions and the webhooks need it without a cycle).
export { type OrderView, type PaymentView, toOrderView } from './order-view.js';
import { EventWriter } from './webhooks/event-writer.js';
import { checkNotifyUrl } from './webhooks/notify-url.js';
import { PaymentMetrics } from './metrics/payment-metrics.js';
import type { AuditHook } from './audit-hook.js';

export interface CreateOrderInput {
  readonly subject: string;
  readonly amount: unknown;
  readonly orderId?: string;
  readonly currency?: string;
  readonly timeoutMinutes?: number;
  readonly expireTime?: string;
  readonly notifyUrl?: string;
  readonly metadata?: Record<string, unknown>;
}

export interface PayInput {
  readonly channel: string;
  readonly payType: string;
  readonly openid?: string;
  readonly clientIp?: string;
  readonly returnUrl?: string;
  readonly authCode?: string;
  readonly customerId?: string;
}

export interface PayInfoView {
  orderId: string;
  channel: string;
  payType: string;
  payUrl: string | null;
  qrCode: string | null;
  form: string | null;
  jsapiParams: JsapiParams | null;
  expireTime: string;
}

const MAX_METADATA_BYTES = 4096;
const MAX_TIMEOUT_MINUTES = 15 * 24 * 60;

/** Codes a channel raises for a request it refused before any trade existed. */
const CLIENT_ERRORS: ReadonlySet<string> = new Set(['INVALID_PARAMS', 'UNKNOWN_PAY_TYPE', 'INVALID_AMOUNT']);

function busy(channel: string): PayError {
  return new PayError(
    'ORDER_STATUS_ERROR',
    `a ${channel} payment of this order is being created; retry in a moment`,
    undefined,
    { retryable: true },
  );
}

/** PaySvc of the seeds: create, getPayUrl, query, check, cancel, generateOrderId. */
@Injectable()
export class PayService {
  private readonly logger = new Logger('PaySvc');

  constructor(
    private readonly store: OrderStore,
    private readonly registry: ChannelRegistry,
    private readonly transitions: PaymentTransitions,
    private readonly publicUrl: PublicUrl,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly cfg: AppConfig,
    private readonly refunds: RefundStore,
    private readonly events: EventWriter,
    private readonly metrics: PaymentMetrics,
  ) {}

  /** The Order as clients see it, with its payments: one round trip (GET /orders/:orderId, polling). */
  async view(orderId: string): Promise<OrderView> {
    const found = await this.store.findOrderWithPayments(orderId);
    if (!found) throw new PayError('ORDER_NOT_EXIST_ERROR', `order ${orderId.slice(0, 32)} does not exist`);
    return toOrderView(found.order, found.payments.map(toPayment));
  }

  /** The Order view of a record just read or written, with its payments. */
  async viewOf(order: OrderRecord): Promise<OrderView> {
    return toOrderView(order, await this.refunds.paymentsOf(order.id));
  }

  generateOrderId(): string {
    return generateOrderId(this.clock.now());
  }

  /** Creates an order; the same orderId with the same parameters answers the existing order. */
  async create(input: CreateOrderInput): Promise<{ order: OrderRecord; created: boolean }> {
    const currency = input.currency ?? 'CNY';
    if (!isSupportedCurrency(currency))
      throw new PayError('INVALID_PARAMS', `unsupported currency: ${currency.slice(0, 8)}`);
    const money = parseAmount(input.amount, currency);
    const subject = input.subject;
    if (typeof subject !== 'string' || subject.trim() === '' || subject.length > 256) {
      throw new PayError('INVALID_PARAMS', 'subject must be 1 to 256 characters');
    }
    if (input.orderId !== undefined && !ORDER_ID_PATTERN.test(input.orderId)) {
      throw new PayError('INVALID_PARAMS', 'orderId must be 6 to 32 characters of letters, digits, _ and -');
    }
    const now = this.clock.now();
    const expireTime = this.expiryOf(input, now);
    if (input.notifyUrl !== undefined) {
      if (this.cfg.webhookSecrets.length === 0) {
        throw new PayError('INVALID_PARAMS', 'notifyUrl needs signed webhooks: the server has no WEBHOOK_SECRETS');
      }
      await checkNotifyUrl(input.notifyUrl, this.cfg.webhookAllowPrivate);
    }
    const metadataJson = input.metadata === undefined ? undefined : JSON.stringify(input.metadata);
    // PostgreSQL text and jsonb cannot hold U+0000: refuse it instead of failing on insert.
    if (subject.includes('\u0000') || metadataJson?.includes('\\u0000')) {
      throw new PayError('INVALID_PARAMS', 'subject and metadata may not contain NUL characters');
    }
    if (metadataJson !== undefined && Buffer.byteLength(metadataJson) > MAX_METADATA_BYTES) {
      throw new PayError('INVALID_PARAMS', `metadata must be at most ${MAX_METADATA_BYTES} bytes of JSON`);
    }
    for (let tries = 0; tries < 5; tries++) {
      const orderId = input.orderId ?? this.generateOrderId();
      const inserted = await this.store.insertOrder({
        id: newId(),
        orderId,
        subject,
        amountMinor: money.minor,
        currency,
        expireTime,
        notifyUrl: input.notifyUrl ?? null,
        metadataJson: metadataJson ?? null,
      });
      if (inserted) {
        this.metrics.ordersCreated.inc({ currency });
        return { order: inserted, created: true };
      }
      if (input.orderId === undefined) continue; // a generated id collided: draw another
      const existing = await this.store.findOrder(orderId);
      if (!existing) throw new PayError('INTERNAL_ERROR', 'order conflict could not be resolved');
      if (existing.subject === subject && existing.amountMinor === money.minor && existing.currency === currency) {
        return { order: existing, created: false };
      }
      throw new PayError('ORDER_EXISTS', `order ${orderId} exists with other parameters`);
    }
    throw new PayError('INTERNAL_ERROR', 'could not allocate an order id');
  }

  private expiryOf(input: CreateOrderInput, now: Date): Date {
    if (input.expireTime !== undefined && input.timeoutMinutes !== undefined) {
      throw new PayError('INVALID_PARAMS', 'give timeoutMinutes or expireTime, not both');
    }
    if (input.expireTime !== undefined) {
      const t = Date.parse(input.expireTime);
      if (!Number.isFinite(t)) throw new PayError('INVALID_PARAMS', 'expireTime must be an ISO 8601 date-time');
      if (t <= now.getTime()) throw new PayError('INVALID_PARAMS', 'expireTime must be in the future');
      if (t > now.getTime() + MAX_TIMEOUT_MINUTES * 60_000)
        throw new PayError('INVALID_PARAMS', 'expireTime is more than 15 days ahead');
      return new Date(t);
    }
    const minutes = input.timeoutMinutes ?? this.cfg.orderTimeoutMinutes;
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > MAX_TIMEOUT_MINUTES) {
      throw new PayError('INVALID_PARAMS', `timeoutMinutes must be an integer from 1 to ${MAX_TIMEOUT_MINUTES}`);
    }
    return new Date(now.getTime() + minutes * 60_000);
  }

  async query(orderId: string): Promise<OrderRecord> {
    const order = await this.store.findOrder(orderId);
    if (!order) throw new PayError('ORDER_NOT_EXIST_ERROR', `order ${orderId.slice(0, 32)} does not exist`);
    return order;
  }

  /** Starts (or restarts) a payment of the order on a channel and answers what the payer needs. */
  async getPayUrl(orderId: string, input: PayInput): Promise<PayInfoView> {
    const channel = this.registry.resolve(input.channel);
    const payType = channel.resolvePayType(input.payType);
    if (!payType) {
      throw new PayError(
        'UNKNOWN_PAY_TYPE',
        `payType ${input.payType.slice(0, 32)} is not one of ${channel.payTypes.join(', ')}, pc, mobile`,
      );
    }
    const attemptId = newId();
    const outTradeNo = channel.outTradeNoFor(orderId, attemptId);
    // The attempt row is written before the channel call: if we crash after the channel created the
    // trade, the sweep still knows to close it. It is inserted only while the order is payable (wait, no
    // cancel started, not expired), checked in the same statement, which also reads the order. A fresh
    // row comes claimed for this call (creating_until); an existing open one is claimed here, so two pay
    // requests, or a pay request and the sweep, never work on one attempt at once.
    const first = await this.store.insertAttemptByOrderId({
      id: attemptId,
      orderId,
      channel: channel.fullName,
      channelType: channel.type,
      payType,
      outTradeNo,
    });
    const order = first.order;
    if (!order) throw new PayError('ORDER_NOT_EXIST_ERROR', `order ${orderId.slice(0, 32)} does not exist`);
    const refusal =
      order.status !== 'wait'
        ? `order is ${order.status}, not payable`
        : order.expireTime.getTime() <= this.clock.now().getTime()
          ? 'order has expired'
          : undefined;
    if (refusal) {
      // This process's clock may see the expiry a little before the database's did.
      if (first.attempt) await this.store.deleteFreshAttempt(first.attempt.id);
      throw new PayError('ORDER_STATUS_ERROR', refusal);
    }
    const found = first.attempt
      ? ({ kind: 'inserted', attempt: first.attempt } as const)
      : await this.store.upsertAttempt({
          id: attemptId,
          order,
          channel: channel.fullName,
          channelType: channel.type,
          payType,
          outTradeNo,
        });
    if (found.kind === 'not_payable') throw await this.notPayable(orderId);
    if (found.attempt.status !== 'open') {
      throw new PayError(
        'ORDER_STATUS_ERROR',
        `the ${channel.fullName} payment of this order is ${found.attempt.status}`,
      );
    }
    const fresh = found.kind === 'inserted';
    if (fresh) this.metrics.attemptsCreated.inc({ channel: channel.fullName, pay_type: payType });
    const attempt = fresh ? found.attempt : await this.store.claimForCreate(found.attempt.id);
    if (!attempt) {
      const now = await this.query(orderId);
      throw now.status === 'wait' && now.cancelRequestedAt === null
        ? busy(channel.fullName)
        : this.notPayableError(now);
    }
    let info: ChannelPayInfo;
    try {
      info = await this.createAtChannel(channel, order, attempt, payType, input);
    } catch (err) {
      // A request the channel refused before creating anything (bad input for this pay type, a refused
      // authorization) leaves no trade behind: drop the attempt this call created (it held the claim,
      // so nobody else used it), so no job chases it.
      if (fresh && err instanceof PayError && CLIENT_ERRORS.has(err.code))
        await this.store.deleteFreshAttempt(attempt.id);
      else await this.store.releaseCreateClaim(attempt.id);
      throw err;
    }
    // Handed out only if the order is still payable when the answer is written back (same statement,
    // share lock on the order): a cancel that started meanwhile either waits for this write and then
    // closes the trade itself, or came first and this request closes the trade and answers 409.
    const recorded = await this.store.recordPayUrl(
      attempt.id,
      payType,
      info.payUrl ?? null,
      info.channelTradeNo ?? null,
    );
    if (!recorded) {
      // If the trade cannot be closed now, the attempt stays open and the order sync closes it (or
      // records a late payment, which is refunded).
      await this.store.releaseCreateClaim(attempt.id);
      await this.closeAttempt(attempt).catch((err: unknown) =>
        this.logger.warn(`closing a trade created after ${orderId} ended failed: ${(err as Error).message}`),
      );
      throw await this.notPayable(orderId);
    }
    const qrCode = info.qrContent ? qrPngDataUrl(info.qrContent) : null;
    return {
      orderId: order.orderId,
      channel: channel.fullName,
      payType,
      payUrl: info.payUrl ?? null,
      qrCode,
      form: info.form ?? null,
      jsapiParams: info.jsapiParams ?? null,
      expireTime: order.expireTime.toISOString(),
    };
  }

  private async notPayable(orderId: string): Promise<PayError> {
    return this.notPayableError(await this.query(orderId));
  }

  private notPayableError(order: OrderRecord): PayError {
    if (order.status !== 'wait') return new PayError('ORDER_STATUS_ERROR', `order is ${order.status}, not payable`);
    if (order.cancelRequestedAt !== null) return new PayError('ORDER_STATUS_ERROR', 'order is being cancelled');
    return new PayError('ORDER_STATUS_ERROR', 'order has expired');
  }

  private createAtChannel(
    channel: PaymentChannel,
    order: OrderRecord,
    attempt: AttemptRecord,
    payType: string,
    input: PayInput,
  ): Promise<ChannelPayInfo> {
    return channel.createPayment({
      orderId: order.orderId,
      attemptId: attempt.id,
      outTradeNo: attempt.outTradeNo,
      subject: order.subject,
      amount: { minor: order.amountMinor, currency: order.currency },
      payType,
      expireTime: order.expireTime,
      notifyUrl: this.publicUrl.notifyUrl(channel.type),
      returnUrl: input.returnUrl,
      clientIp: input.clientIp,
      openid: input.openid,
      authCode: input.authCode,
      customerId: input.customerId,
    });
  }

  /** Asks the channel(s) for the truth about the order's open attempts and applies it. */
  async check(orderId: string, channelName?: string): Promise<OrderRecord> {
    const order = await this.query(orderId);
    const only = channelName === undefined ? undefined : this.registry.resolve(channelName).fullName;
    const attempts = (await this.store.attemptsOf(order.id)).filter(
      (a) => (only === undefined || a.channel === only) && a.status !== 'paid',
    );
    let firstError: PayError | undefined;
    for (const attempt of attempts) {
      try {
        await this.syncAttempt(attempt);
      } catch (err) {
        if (!(err instanceof PayError)) throw err;
        this.logger.warn(
          `check of ${attempt.channel} for ${orderId} failed: ${err.code} ${JSON.stringify(err.detail ?? {})}`,
        );
        firstError ??= err;
      }
    }
    const after = await this.query(orderId);
    if (firstError && after.status === 'wait') throw firstError;
    return after;
  }

  /** Queries one attempt's channel and applies the answer (used by check and the sync job). */
  async syncAttempt(attempt: AttemptRecord): Promise<ApplyOutcome> {
    const channel = this.registry.resolve(attempt.channel);
    const snap = await channel.queryPayment(refOf(attempt));
    return this.store.transaction((em) => this.transitions.apply(attempt, snap, em));
  }

  /**
   * Closes the order. First it is marked as being cancelled (from then on no trade is created, reused or
   * handed out for it), then every open attempt is closed at its channel, then the order moves
   * wait → close. A trade that a pay request is creating right now is closed by that request when it
   * finds the mark. A channel that cannot close yet (WeChat's first five minutes) keeps its attempt open
   * for the order sync; a payment that lands after the order closed is a late payment, refunded.
   * `audit` runs in the transaction that closes the order (not when there was nothing to close).
   */
  async cancel(orderId: string, audit?: AuditHook<OrderRecord>): Promise<OrderRecord> {
    const order = await this.query(orderId);
    if (order.status === 'close' || order.status === 'timeout') return order;
    if (order.status === 'success') throw new PayError('ORDER_STATUS_ERROR', 'order is paid and cannot be cancelled');
    if (!(await this.store.requestCancel(order.id))) return this.afterLostCancel(orderId);
    const attempts = (await this.store.attemptsOf(order.id)).filter((a) => a.status === 'open' && !a.creating);
    for (const attempt of attempts) {
      const outcome = await this.closeAttempt(attempt);
      if (outcome === 'paid') break;
    }
    const closed = await this.store.transaction(async (em) => {
      const done = await this.store.finishUnpaid(order.id, 'close', 'cancelled', em);
      if (done) {
        await this.events.write(em, {
          type: 'order.closed',
          order: done,
          data: { order: toOrderView(done, await this.refunds.paymentsOf(done.id, em)) },
        });
        if (audit) await audit(em, done);
      }
      return done;
    });
    return closed ?? this.afterLostCancel(orderId);
  }

  private async afterLostCancel(orderId: string): Promise<OrderRecord> {
    const now = await this.query(orderId);
    if (now.status === 'success') throw new PayError('ORDER_STATUS_ERROR', 'order was paid and cannot be cancelled');
    return now;
  }

  /**
   * Closes one attempt at its channel and records the result. Returns 'paid' when the channel says it
   * was paid (the payment is then applied), 'closed', or 'pending' when the channel asks us to wait.
   */
  async closeAttempt(attempt: AttemptRecord): Promise<'closed' | 'paid' | 'pending'> {
    const channel = this.registry.resolve(attempt.channel);
    const outcome = await channel.closePayment(refOf(attempt));
    switch (outcome) {
      case 'closed':
        await this.store.moveAttempt(attempt.id, 'closed', {});
        return 'closed';
      case 'not_found':
        // Nothing to close yet, but the trade may still appear (a QR scanned later): look once more
        // after the channel-side expiry, so a payment whose notify is lost is still found.
        if (await this.store.moveAttempt(attempt.id, 'closed', {})) await this.store.scheduleFinalCheck(attempt.id);
        return 'closed';
      case 'already_paid': {
        const snap = await channel.queryPayment(refOf(attempt));
        const applied = await this.store.transaction((em) => this.transitions.apply(attempt, snap, em));
        if (applied.kind === 'amount_mismatch') {
          // Paid, but not what the order says: neither close the order nor record it; an operator looks.
          throw new PayError('CHANNEL_ERROR', 'the channel reports a payment that does not match the order', {
            orderId: attempt.orderId,
            channel: attempt.channel,
          });
        }
        return applied.kind === 'paid' ||
          applied.kind === 'already_paid' ||
          applied.kind === 'second_payment' ||
          applied.kind === 'late_payment'
          ? 'paid'
          : 'pending';
      }
      case 'too_early':
        return 'pending';
    }
  }

  /**
   * What the client should do after `my.tradePay` or the PaymentService SPI reported `code`
   * (docs/client-results.md). The client's word never marks an order paid: codes that may mean a
   * payment make us ask the channel first, and only the channel's answer can make the order `success`.
   */
  async clientResult(
    orderId: string,
    code: string,
  ): Promise<{ order: OrderRecord; next: ClientNextStep; meaning: string }> {
    const step = clientResultNextStep(code);
    if (!step) throw new PayError('INVALID_PARAMS', `unknown resultCode ${code.slice(0, 8)}`);
    let order = await this.query(orderId);
    if (order.status === 'wait' && step.checkFirst) {
      try {
        order = await this.check(orderId);
      } catch (err) {
        if (!(err instanceof PayError) || (err.code !== 'CHANNEL_ERROR' && err.code !== 'CHANNEL_TIMEOUT')) throw err;
        // The wallet could not be asked: the client polls, and the notify or the sync job settles it.
        return { order, next: 'poll', meaning: `${step.meaning} (the wallet did not answer: poll)` };
      }
    }
    if (order.status === 'success') return { order, next: 'done', meaning: 'the channel confirms the order is paid' };
    if (order.status !== 'wait')
      return { order, next: 'done', meaning: `the order is ${order.status}: nothing to pay` };
    return { order, next: step.next, meaning: step.meaning };
  }
}
