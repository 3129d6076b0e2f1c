import { Injectable, Logger } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { ChannelTradeSnapshot } from '#channels';
import { formatMinor } from '#common';
import { type AttemptRecord, type OrderRecord, OrderStore } from './order-store.js';
import { toOrderView } from './order-view.js';
import { EventWriter } from './webhooks/event-writer.js';

export type ApplyOutcome =
  | { readonly kind: 'paid'; readonly order: OrderRecord } // this call moved the order to success
  | { readonly kind: 'already_paid'; readonly order: OrderRecord | undefined } // recorded before: a repeat
  | { readonly kind: 'second_payment'; readonly order: OrderRecord | undefined } // paid by another attempt too
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
    private readonly events: EventWriter,
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
    const moved = await this.store.moveAttempt(attempt.id, 'paid', { channelTradeNo: snap.channelTradeNo, paidAt }, em);
    if (!moved) {
      return { kind: 'already_paid', order: await this.store.findOrderByPk(attempt.orderPk, em) };
    }
    const order = await this.store.markOrderPaid(
      attempt.orderPk,
      {
        channel: attempt.channel,
        payType: attempt.payType,
        channelTradeNo: moved.channelTradeNo,
        payTime: paidAt,
        attemptId: attempt.id,
      },
      em,
    );
    if (order) {
      await this.events.write(em, {
        type: 'order.succeeded',
        orderId: order.orderId,
        data: { order: toOrderView(order) },
      });
      return { kind: 'paid', order };
    }
    // The order was already paid through another attempt: a second payment of one order. Record it
    // (the money is real) and leave an event for the refund of the surplus.
    this.logger.warn(`second payment of order ${attempt.orderId} through ${attempt.channel} (attempt ${attempt.id})`);
    const current = await this.store.findOrderByPk(attempt.orderPk, em);
    if (current) {
      await this.events.write(em, {
        type: 'payment.second',
        orderId: current.orderId,
        data: {
          order: toOrderView(current),
          payment: {
            channel: attempt.channel,
            payType: attempt.payType,
            amount: formatMinor(attempt.amountMinor, attempt.currency),
            currency: attempt.currency,
            channelTradeNo: moved.channelTradeNo,
            paidAt: paidAt.toISOString(),
          },
        },
      });
    }
    return { kind: 'second_payment', order: current };
  }
}
