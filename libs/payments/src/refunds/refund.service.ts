import { Inject, Injectable, Logger } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { PayError, formatMinor, newId, parseAmount } from '#common';
import { APP_CONFIG, type AppConfig } from '#config';
import {
  type ChannelRefundSnapshot,
  ChannelRegistry,
  type PaymentChannel,
  type RefundInput,
  type RefundNews,
} from '#channels';
import { type AttemptRecord, type OrderRecord, OrderStore, refOf } from '../order-store.js';
import { PublicUrl } from '../public-url.js';
import { toOrderView } from '../order-view.js';
import { EventWriter } from '../webhooks/event-writer.js';
import { SYNC_SCHEDULE_MS, syncOffsetMs } from '../jobs/backoff.js';
import type { AuditHook } from '../audit-hook.js';
import { type RefundRecord, type RefundSource, RefundConflict, RefundStore } from './refund-store.js';
import { PaymentMetrics } from '../metrics/payment-metrics.js';

/** The Refund of API.md §4, as answered to clients. */
export interface RefundView {
  refundId: string;
  orderId: string;
  amount: string;
  currency: string;
  status: string;
  reason: string | null;
  source: RefundSource;
  channel: string;
  channelRefundNo: string | null;
  failureCode: string | null;
  createdAt: string;
  finishedAt: string | null;
}

export function toRefundView(r: RefundRecord): RefundView {
  return {
    refundId: r.refundId,
    orderId: r.orderId,
    amount: formatMinor(r.amountMinor, r.currency),
    currency: r.currency,
    status: r.status,
    reason: r.reason,
    source: r.source,
    channel: r.channel,
    channelRefundNo: r.channelRefundNo,
    failureCode: r.failureCode,
    createdAt: r.createdAt.toISOString(),
    finishedAt: r.finishedAt?.toISOString() ?? null,
  };
}

export interface CreateRefundInput {
  readonly amount?: unknown;
  readonly reason?: string;
  readonly refundId?: string;
}

export const REFUND_ID_PATTERN = /^[A-Za-z0-9_]{6,32}$/;

/**
 * How long the request that created a refund has to send it before the refund sync may take it over
 * (channel calls time out after 10 s; the channel's idempotency on refundId makes a second send safe).
 */
const SUBMIT_WINDOW_SECONDS = 60;
const LEASE_SECONDS = 120;
/** The least time between two tries of one refund. */
const MIN_RETRY_MS = 30_000;

/** What became of refund news or a refund's settlement. */
export type RefundOutcome =
  | { readonly kind: 'succeeded' | 'failed'; readonly refund: RefundRecord }
  | { readonly kind: 'pending' | 'unchanged'; readonly refund: RefundRecord }
  | { readonly kind: 'amount_mismatch'; readonly refund: RefundRecord; readonly reported: string };

/**
 * Refunds (issue 10): created against one payment (a paid attempt), held on it so that refunds never
 * exceed what was paid, sent to the channel with the refundId as the channel's idempotency key, and
 * settled by the channel's answer, a refund notify, a check, or the refund sync job.
 */
@Injectable()
export class RefundService {
  private readonly logger = new Logger('Refunds');

  constructor(
    private readonly refunds: RefundStore,
    private readonly orders: OrderStore,
    private readonly registry: ChannelRegistry,
    private readonly publicUrl: PublicUrl,
    @Inject(APP_CONFIG) private readonly cfg: AppConfig,
    private readonly events: EventWriter,
    private readonly metrics: PaymentMetrics,
  ) {}

  /**
   * Refunds part or all of what is left of an order's payment. The same refundId with the same amount
   * answers the existing refund (created: false); with another amount or order, 409 REFUND_EXISTS.
   * `audit` runs in the transaction that holds the amount and inserts the refund (only when it does).
   */
  async create(
    orderId: string,
    input: CreateRefundInput,
    source: 'api' | 'admin',
    audit?: AuditHook<RefundRecord>,
  ): Promise<{ refund: RefundRecord; created: boolean }> {
    if (input.refundId !== undefined && !REFUND_ID_PATTERN.test(input.refundId)) {
      throw new PayError('INVALID_PARAMS', 'refundId must be 6 to 32 characters of letters, digits and _');
    }
    const reason = input.reason;
    if (reason !== undefined && (typeof reason !== 'string' || reason.length > 256 || reason.includes('\u0000'))) {
      throw new PayError('INVALID_PARAMS', 'reason must be at most 256 characters');
    }
    const order = await this.orders.findOrder(orderId);
    if (!order) throw new PayError('ORDER_NOT_EXIST_ERROR', `order ${orderId.slice(0, 32)} does not exist`);
    const amountMinor =
      input.amount === undefined || input.amount === null ? undefined : parseAmount(input.amount, order.currency).minor;
    const refundId = input.refundId ?? generateRefundId();
    const existing = await this.refunds.findByRefundId(refundId);
    if (existing) return { refund: this.sameOrConflict(existing, order, amountMinor), created: false };
    if (order.status !== 'success' || !order.paidAttemptId) {
      throw new PayError('ORDER_STATUS_ERROR', `order is ${order.status}: only a paid order can be refunded`);
    }
    const payment = await this.orders.findAttemptById(order.paidAttemptId);
    if (!payment) throw new PayError('INTERNAL_ERROR', 'the paid attempt of the order is missing');
    let held;
    try {
      held = await this.orders.transaction(async (em) => {
        // No amount: what is left (read only then; the hold's compare-and-set decides either way).
        const amount = amountMinor ?? (await this.refunds.leftOf(payment.id, em));
        if (amount <= 0) return { kind: 'exceeded' as const, leftMinor: 0 };
        const r = await this.refunds.hold(
          {
            id: newId(),
            refundId,
            orderPk: order.id,
            orderId: order.orderId,
            attemptId: payment.id,
            channel: payment.channel,
            amountMinor: amount,
            currency: order.currency,
            reason: reason ?? null,
            source,
          },
          SUBMIT_WINDOW_SECONDS,
          em,
        );
        if (r.kind === 'held' && audit) await audit(em, r.refund);
        return r;
      });
    } catch (err) {
      if (!(err instanceof RefundConflict)) throw err;
      held = { kind: 'exists' as const };
    }
    switch (held.kind) {
      case 'exists': {
        const now = await this.refunds.findByRefundId(refundId);
        if (!now) throw new PayError('INTERNAL_ERROR', 'refund conflict could not be resolved');
        return { refund: this.sameOrConflict(now, order, amountMinor), created: false };
      }
      case 'exceeded':
        throw new PayError(
          'REFUND_AMOUNT_EXCEEDED',
          `the refund exceeds what is left to refund (${formatMinor(held.leftMinor, order.currency)} ${order.currency})`,
        );
      case 'held':
        this.metrics.refunds.inc({ channel: held.refund.channel, outcome: 'created' });
        return { refund: await this.send(held.refund), created: true };
    }
  }

  private sameOrConflict(existing: RefundRecord, order: OrderRecord, amountMinor: number | undefined): RefundRecord {
    if (existing.orderPk === order.id && (amountMinor === undefined || amountMinor === existing.amountMinor)) {
      return existing;
    }
    throw new PayError('REFUND_EXISTS', `refund ${existing.refundId} exists with other parameters`);
  }

  /**
   * In the transaction that recorded a second or late payment: a refund of all of it (unless
   * AUTO_REFUND=false), sent right after the commit. Undefined when auto refunds are off or the payment
   * already has one.
   */
  async autoRefund(
    attempt: AttemptRecord,
    source: 'auto_second_payment' | 'auto_late_payment',
    em: EntityManager,
  ): Promise<RefundRecord | undefined> {
    if (!this.cfg.autoRefund) return undefined;
    const exists: unknown[] = await em.query(
      `SELECT 1 FROM refunds WHERE attempt_id = $1 AND source IN ('auto_second_payment', 'auto_late_payment')`,
      [attempt.id],
    );
    if (exists.length > 0) return undefined;
    const held = await this.refunds.hold(
      {
        id: newId(),
        refundId: generateRefundId('AR'),
        orderPk: attempt.orderPk,
        orderId: attempt.orderId,
        attemptId: attempt.id,
        channel: attempt.channel,
        amountMinor: attempt.amountMinor,
        currency: attempt.currency,
        reason: source === 'auto_second_payment' ? 'second payment of the order' : 'paid after the order ended',
        source,
      },
      SUBMIT_WINDOW_SECONDS,
      em,
    );
    if (held.kind !== 'held') return undefined;
    const refund = held.refund;
    this.orders.afterCommit(em, () => {
      this.metrics.refunds.inc({ channel: refund.channel, outcome: 'created' });
      this.send(refund).catch((err: unknown) =>
        this.logger.warn(`sending auto refund ${refund.refundId} failed: ${(err as Error).message}`),
      );
    });
    return refund;
  }

  async get(refundId: string): Promise<RefundRecord> {
    const refund = REFUND_ID_PATTERN.test(refundId) ? await this.refunds.findByRefundId(refundId) : undefined;
    if (!refund) throw new PayError('REFUND_NOT_EXIST', `refund ${refundId.slice(0, 32)} does not exist`);
    return refund;
  }

  async listOf(orderId: string): Promise<RefundRecord[]> {
    const order = await this.orders.findOrder(orderId);
    if (!order) throw new PayError('ORDER_NOT_EXIST_ERROR', `order ${orderId.slice(0, 32)} does not exist`);
    return this.refunds.refundsOf(order.id);
  }

  /** Asks the channel about a pending refund now (claimed, so no other process works on it at once). */
  async check(refundId: string): Promise<RefundRecord> {
    const refund = await this.get(refundId);
    if (refund.status !== 'pending') return refund;
    await this.refunds.makeDue(refund.id);
    const [claimed] = await this.refunds.claimDue(1, LEASE_SECONDS, undefined, refund.id);
    if (!claimed) return (await this.refunds.findByRefundId(refundId)) ?? refund;
    return this.send(claimed);
  }

  /**
   * Sends a pending refund to its channel (or asks about one it has) and settles what the channel says.
   * A channel error leaves it pending for the refund sync, with the same refundId.
   */
  async send(refund: RefundRecord): Promise<RefundRecord> {
    const channel = this.registry.resolve(refund.channel);
    const input = await this.inputOf(refund, channel);
    let snap: ChannelRefundSnapshot;
    try {
      snap = refund.submittedAt === null ? await channel.refund(input) : await channel.queryRefund(input);
      // The channel never got it (a send that timed out before arriving): send it again, same refundId.
      if (snap.status === 'not_found') snap = await channel.refund(input);
    } catch (err) {
      if (!(err instanceof PayError) || (err.code !== 'CHANNEL_ERROR' && err.code !== 'CHANNEL_TIMEOUT')) throw err;
      this.logger.warn(
        `refund ${refund.refundId} on ${refund.channel}: ${err.code} ${JSON.stringify(err.detail ?? {})}; retried later`,
      );
      await this.refunds.reschedule(refund.id, this.nextOffsetMs(refund), MIN_RETRY_MS);
      return (await this.refunds.findByRefundId(refund.refundId)) ?? refund;
    }
    const outcome = await this.orders.transaction((em) =>
      this.settle(refund, { ...snap, status: snap.status === 'not_found' ? 'pending' : snap.status }, em),
    );
    if (outcome.kind === 'pending' || outcome.kind === 'amount_mismatch') {
      await this.refunds.markSubmitted(
        refund.id,
        snap.channelRefundNo ?? null,
        this.nextOffsetMs(refund),
        MIN_RETRY_MS,
      );
    }
    return (await this.refunds.findByRefundId(refund.refundId)) ?? outcome.refund;
  }

  /** Refund news from a notify, in the notify's transaction. */
  async applyNews(channel: string, news: RefundNews, em: EntityManager): Promise<RefundOutcome | undefined> {
    const refund = await this.refunds.findByRefundId(news.refundId, em);
    if (!refund || refund.channel !== channel) return undefined;
    return this.settle(refund, news, em);
  }

  /** Moves a pending refund to what the channel reports, with its event, in the caller's transaction. */
  private async settle(
    refund: RefundRecord,
    news: Omit<ChannelRefundSnapshot, 'status'> & { status: 'pending' | 'success' | 'failed' },
    em: EntityManager,
  ): Promise<RefundOutcome> {
    switch (news.status) {
      case 'pending':
        return { kind: refund.status === 'pending' ? 'pending' : 'unchanged', refund };
      case 'success': {
        if (news.amount && (news.amount.minor !== refund.amountMinor || news.amount.currency !== refund.currency)) {
          const reported = `${news.amount.minor} ${news.amount.currency}`;
          this.logger.error(
            `refund ${refund.refundId}: the channel reports ${reported}, the refund is ${refund.amountMinor} ${refund.currency}`,
          );
          return { kind: 'amount_mismatch', refund, reported };
        }
        const done = await this.refunds.markSucceeded(
          refund.id,
          { channelRefundNo: news.channelRefundNo ?? null, finishedAt: news.finishedAt ?? null },
          em,
        );
        if (!done) return { kind: 'unchanged', refund };
        await this.event('refund.succeeded', done, em);
        this.orders.afterCommit(em, () => this.metrics.refunds.inc({ channel: done.channel, outcome: 'succeeded' }));
        return { kind: 'succeeded', refund: done };
      }
      case 'failed': {
        const done = await this.refunds.markFailed(
          refund.id,
          { failureCode: news.failureCode ?? 'REFUND_FAILED', channelRefundNo: news.channelRefundNo ?? null },
          em,
        );
        if (!done) return { kind: 'unchanged', refund };
        this.logger.warn(`refund ${refund.refundId} on ${refund.channel} failed: ${done.failureCode ?? ''}`);
        await this.event('refund.failed', done, em);
        this.orders.afterCommit(em, () => this.metrics.refunds.inc({ channel: done.channel, outcome: 'failed' }));
        return { kind: 'failed', refund: done };
      }
    }
  }

  /** The refund's event with the Order and the Refund as they are after the change (same transaction). */
  private async event(type: 'refund.succeeded' | 'refund.failed', refund: RefundRecord, em: EntityManager) {
    const order = await this.orders.findOrderByPk(refund.orderPk, em);
    if (!order) throw new Error(`refund ${refund.refundId} has no order`);
    await this.events.write(em, {
      type,
      order,
      data: { order: toOrderView(order, await this.refunds.paymentsOf(order.id, em)), refund: toRefundView(refund) },
    });
  }

  private async inputOf(refund: RefundRecord, channel: PaymentChannel): Promise<RefundInput> {
    const attempt = await this.orders.findAttemptById(refund.attemptId);
    if (!attempt) throw new Error(`refund ${refund.refundId} has no payment`);
    return {
      refundId: refund.refundId,
      orderId: refund.orderId,
      payment: refOf(attempt),
      amount: { minor: refund.amountMinor, currency: refund.currency },
      ...(refund.reason ? { reason: refund.reason } : {}),
      notifyUrl: this.publicUrl.refundNotifyUrl(channel.type),
    };
  }

  /** The refund sync's schedule, as offsets from the refund's creation (1, 2, 5, 10, 30 min, then every 30). */
  private nextOffsetMs(refund: RefundRecord): number {
    return syncOffsetMs(refund.syncCount, SYNC_SCHEDULE_MS);
  }
}

/** A refund number when the merchant gives none: `RF` (or `AR` for automatic ones) and 24 random hex digits. */
export function generateRefundId(prefix = 'RF'): string {
  return `${prefix}${newId().replaceAll('-', '').slice(0, 24)}`;
}
