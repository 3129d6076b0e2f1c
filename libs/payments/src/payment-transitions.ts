import { Injectable, Logger } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { ChannelTradeSnapshot } from '#channels';
import { formatMinor } from '#common';
import { type AttemptRecord, type OrderRecord, OrderStore, type PaidAttempt } from './order-store.js';
import { PaidSignal } from './paid-signal.js';
import { RefundService } from './refunds/refund.service.js';
import { type PaymentRecord, RefundStore } from './refunds/refund-store.js';
import { toOrderView } from './order-view.js';
import { canTransitionAttempt } from './domain/order-state-machine.js';
import { EventWriter } from './webhooks/event-writer.js';
import { PaymentMetrics } from './metrics/payment-metrics.js';

export type ApplyOutcome =
  | { readonly kind: 'paid'; readonly order: OrderRecord } // this call moved the order to success
  | { readonly kind: 'already_paid'; readonly order: OrderRecord | undefined } // recorded before: a repeat
  | { readonly kind: 'second_payment'; readonly order: OrderRecord } // paid by another attempt too
  | { readonly kind: 'late_payment'; readonly order: OrderRecord } // paid after the order was closed or timed out
  | { readonly kind: 'amount_mismatch'; readonly reported: string } // what the channel said was paid
  | { readonly kind: 'attempt_closed' }
  | { readonly kind: 'attempt_failed' }
  | { readonly kind: 'no_change' };

/**
 * The one place where what a channel says (by notify, by query, by the sweep) changes our state.
 * Callers run it inside a transaction; every move is a compare-and-set, so concurrent callers with the
 * same news produce exactly one transition and one event (webhooks/event-writer.ts).
 */
@Injectable()
export class PaymentTransitions {
  private readonly logger = new Logger(PaymentTransitions.name);

  constructor(
    private readonly store: OrderStore,
    private readonly paid: PaidSignal,
    private readonly refunds: RefundService,
    private readonly refundStore: RefundStore,
    private readonly events: EventWriter,
    private readonly metrics: PaymentMetrics,
  ) {}

  async apply(attempt: AttemptRecord, snap: ChannelTradeSnapshot, em: EntityManager): Promise<ApplyOutcome> {
    switch (snap.status) {
      case 'paid':
        return this.applyPaid(attempt, snap, em);
      case 'closed': {
        const moved = await this.store.moveAttempt(attempt.id, 'closed', { channelTradeNo: snap.channelTradeNo }, em);
        return moved ? { kind: 'attempt_closed' } : { kind: 'no_change' };
      }
      case 'failed': {
        const moved = await this.store.moveAttempt(attempt.id, 'failed', { channelTradeNo: snap.channelTradeNo }, em);
        return moved ? { kind: 'attempt_failed' } : { kind: 'no_change' };
      }
      case 'pending':
      case 'not_found':
        return { kind: 'no_change' };
    }
  }

  /**
   * What a channel says about the attempt it names by out_trade_no (a notify): undefined when no attempt
   * has it. A payment whose amount equals the attempt's is checked and applied by one statement
   * (OrderStore.payByOutTradeNo); anything else (other news, another amount, an attempt already paid)
   * takes apply's path with the attempt that statement read, exactly as if it had been read first.
   */
  async applyByOutTradeNo(
    channel: string,
    outTradeNo: string,
    snap: ChannelTradeSnapshot,
    em: EntityManager,
  ): Promise<{ attempt: AttemptRecord; outcome: ApplyOutcome } | undefined> {
    if (snap.status !== 'paid' || !snap.amount) {
      const attempt = await this.store.findAttemptByOutTradeNo(channel, outTradeNo, em);
      return attempt && { attempt, outcome: await this.apply(attempt, snap, em) };
    }
    const paidAt = snap.paidAt ?? new Date();
    const found = await this.store.payByOutTradeNo(
      channel,
      outTradeNo,
      snap.amount,
      { channelTradeNo: snap.channelTradeNo, paidAt },
      em,
    );
    if (!found) return undefined;
    const { attempt, paid } = found;
    return {
      attempt,
      outcome: paid ? await this.afterPaid(paid, paidAt, em) : await this.applyPaid(attempt, snap, em),
    };
  }

  private async applyPaid(
    attempt: AttemptRecord,
    snap: ChannelTradeSnapshot,
    em: EntityManager,
  ): Promise<ApplyOutcome> {
    // A payment is recorded only with an amount equal to the attempt's, whoever reports it (notify,
    // query, sweep): a report without an amount is not evidence of this payment.
    if (!snap.amount || snap.amount.minor !== attempt.amountMinor || snap.amount.currency !== attempt.currency) {
      const reported = snap.amount ? `${snap.amount.minor} ${snap.amount.currency}` : 'no amount';
      this.logger.error(
        `amount mismatch on ${attempt.channel} attempt ${attempt.id} of order ${attempt.orderId}: ` +
          `channel says ${reported}, order is ${attempt.amountMinor} ${attempt.currency}`,
      );
      return { kind: 'amount_mismatch', reported };
    }
    const paidAt = snap.paidAt ?? new Date();
    // An attempt read as paid stays paid (the state machine has no way out): a repeat, no compare-and-set to try.
    const paid = canTransitionAttempt(attempt.status, 'paid')
      ? await this.store.payAttempt(attempt.id, { channelTradeNo: snap.channelTradeNo, paidAt }, em)
      : undefined;
    if (!paid) {
      return { kind: 'already_paid', order: await this.store.findOrderByPk(attempt.orderPk, em) };
    }
    return this.afterPaid(paid, paidAt, em);
  }

  /** After the attempt moved to `paid`: the event of the order's success, or a second or late payment. */
  private async afterPaid({ attempt, won }: PaidAttempt, paidAt: Date, em: EntityManager): Promise<ApplyOutcome> {
    if (won) {
      const { order } = won;
      // The order's other open attempts, made due by that statement, are closed at their channels as
      // soon as this commits (PaidSignal → OrderSyncJob.closeOthersNow).
      if (won.othersDue > 0) this.store.afterCommit(em, () => this.paid.emit(order.id));
      // Its one payment is this attempt (an order that was `wait` had no other): no query for the view.
      await this.events.write(em, {
        type: 'order.succeeded',
        order,
        data: { order: toOrderView(order, [paymentOf(attempt)]) },
      });
      this.store.afterCommit(em, () => this.metrics.ordersPaid.inc({ channel: attempt.channel }));
      return { kind: 'paid', order };
    }
    // The order was not `wait` any more: paid through another attempt (a second payment) or ended
    // (closed or timed out: a late payment). Record it on the attempt (the money is real), refund it by
    // itself (AUTO_REFUND, default on; sent after the commit) and leave an event; the order keeps what
    // the merchant was told.
    const current = await this.store.findOrderByPk(attempt.orderPk, em);
    if (!current) throw new Error(`attempt ${attempt.id} has no order`);
    const kind = current.status === 'success' ? 'second_payment' : 'late_payment';
    this.logger.warn(
      `${kind === 'second_payment' ? 'second' : 'late'} payment of order ${attempt.orderId} ` +
        `(${current.status}) through ${attempt.channel} (attempt ${attempt.id})`,
    );
    await this.refunds.autoRefund(attempt, kind === 'second_payment' ? 'auto_second_payment' : 'auto_late_payment', em);
    await this.events.write(em, {
      type: kind === 'second_payment' ? 'payment.second' : 'payment.late',
      order: current,
      data: {
        order: toOrderView(current, await this.refundStore.paymentsOf(current.id, em)),
        payment: {
          channel: attempt.channel,
          payType: attempt.payType,
          amount: formatMinor(attempt.amountMinor, attempt.currency),
          currency: attempt.currency,
          channelTradeNo: attempt.channelTradeNo,
          paidAt: paidAt.toISOString(),
        },
      },
    });
    this.store.afterCommit(em, () =>
      this.metrics.extraPayments.inc({ channel: attempt.channel, kind: kind === 'second_payment' ? 'second' : 'late' }),
    );
    return { kind, order: current };
  }
}

/** A paid attempt as a payment of its order, as it is right after it was paid (nothing refunded). */
function paymentOf(a: AttemptRecord): PaymentRecord {
  return {
    attemptId: a.id,
    channel: a.channel,
    payType: a.payType,
    amountMinor: a.amountMinor,
    currency: a.currency,
    channelTradeNo: a.channelTradeNo,
    paidAt: a.paidAt,
    refundHeldMinor: 0,
    refundedMinor: 0,
  };
}
