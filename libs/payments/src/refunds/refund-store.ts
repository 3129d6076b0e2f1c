import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource, EntityManager } from 'typeorm';
import { type Row, affectedOf, date, num, rowsOf, str } from '../sql-rows.js';

export type RefundStatus = 'pending' | 'success' | 'failed';
export type RefundSource = 'api' | 'admin' | 'auto_second_payment' | 'auto_late_payment';

export interface RefundRecord {
  readonly id: string;
  readonly refundId: string;
  readonly orderPk: string;
  readonly orderId: string;
  readonly attemptId: string;
  readonly channel: string;
  readonly amountMinor: number;
  readonly currency: string;
  readonly reason: string | null;
  readonly source: RefundSource;
  readonly status: RefundStatus;
  readonly channelRefundNo: string | null;
  readonly failureCode: string | null;
  readonly submittedAt: Date | null;
  readonly syncCount: number;
  readonly createdAt: Date;
  readonly finishedAt: Date | null;
}

/** A paid attempt as a refundable payment (API.md §4 `payments`). */
export interface PaymentRecord {
  readonly attemptId: string;
  readonly channel: string;
  readonly payType: string;
  readonly amountMinor: number;
  readonly currency: string;
  readonly channelTradeNo: string | null;
  readonly paidAt: Date | null;
  readonly refundHeldMinor: number;
  readonly refundedMinor: number;
}

export function toRefund(r: Row): RefundRecord {
  return {
    id: String(r['id']),
    refundId: String(r['refund_id']),
    orderPk: String(r['order_pk']),
    orderId: String(r['order_id']),
    attemptId: String(r['attempt_id']),
    channel: String(r['channel']),
    amountMinor: num(r['amount_minor']),
    currency: String(r['currency']),
    reason: str(r['reason']),
    source: r['source'] as RefundSource,
    status: r['status'] as RefundStatus,
    channelRefundNo: str(r['channel_refund_no']),
    failureCode: str(r['failure_code']),
    submittedAt: date(r['submitted_at']),
    syncCount: Number(r['sync_count'] ?? 0),
    createdAt: date(r['created_at']) as Date,
    finishedAt: date(r['finished_at']),
  };
}

export function toPayment(r: Row): PaymentRecord {
  return {
    attemptId: String(r['id']),
    channel: String(r['channel']),
    payType: String(r['pay_type']),
    amountMinor: num(r['amount_minor']),
    currency: String(r['currency']),
    channelTradeNo: str(r['channel_trade_no']),
    paidAt: date(r['paid_at']),
    refundHeldMinor: num(r['refund_held_minor'] ?? 0),
    refundedMinor: num(r['refunded_minor'] ?? 0),
  };
}

export interface NewRefund {
  readonly id: string;
  readonly refundId: string;
  readonly orderPk: string;
  readonly orderId: string;
  readonly attemptId: string;
  readonly channel: string;
  readonly amountMinor: number;
  readonly currency: string;
  readonly reason: string | null;
  readonly source: RefundSource;
}

/**
 * All SQL of refunds. A refund's amount is held on its payment (the paid attempt) by a compare-and-set
 * in the transaction that inserts it, so refunds in flight plus refunds done never exceed what was paid
 * (the table's CHECK says so too); `success` and `failed` are compare-and-sets from `pending` that move
 * the payment's (and the order's) totals in the same transaction.
 */
@Injectable()
export class RefundStore {
  constructor(@InjectDataSource() readonly ds: DataSource) {}

  private m(em?: EntityManager): EntityManager {
    return em ?? this.ds.manager;
  }

  async findByRefundId(refundId: string, em?: EntityManager): Promise<RefundRecord | undefined> {
    const rows = rowsOf(await this.m(em).query(`SELECT * FROM refunds WHERE refund_id = $1`, [refundId]));
    return rows[0] ? toRefund(rows[0]) : undefined;
  }

  async refundsOf(orderPk: string, em?: EntityManager): Promise<RefundRecord[]> {
    const rows = rowsOf(
      await this.m(em).query(`SELECT * FROM refunds WHERE order_pk = $1 ORDER BY created_at, id`, [orderPk]),
    );
    return rows.map(toRefund);
  }

  async paymentsOf(orderPk: string, em?: EntityManager): Promise<PaymentRecord[]> {
    const rows = rowsOf(
      await this.m(em).query(
        `SELECT id, channel, pay_type, amount_minor, currency, channel_trade_no, paid_at, refund_held_minor, refunded_minor
           FROM payment_attempts WHERE order_pk = $1 AND status = 'paid' ORDER BY paid_at, id`,
        [orderPk],
      ),
    );
    return rows.map(toPayment);
  }

  /** What is left to refund of a payment: what was paid less what refunds pending or done hold. */
  async leftOf(attemptId: string, em?: EntityManager): Promise<number> {
    const rows = rowsOf(
      await this.m(em).query(`SELECT amount_minor - refund_held_minor AS left FROM payment_attempts WHERE id = $1`, [
        attemptId,
      ]),
    );
    return rows[0] ? num(rows[0]['left']) : 0;
  }

  /**
   * Holds `amountMinor` of a payment for a new refund and inserts the refund, in the caller's
   * transaction. 'exceeded' when the payment has less than that left. A refundId that is taken (the
   * caller looked it up first; this catches a concurrent insert) throws RefundConflict, so the caller's
   * transaction rolls the hold back. The new refund is due for the refund sync at once (`next_sync_at`),
   * after `submitDelaySeconds`: the request that creates it sends it itself and has that long.
   */
  async hold(
    r: NewRefund,
    submitDelaySeconds: number,
    em: EntityManager,
  ): Promise<{ kind: 'held'; refund: RefundRecord } | { kind: 'exceeded'; leftMinor: number }> {
    const held = rowsOf(
      await em.query(
        `UPDATE payment_attempts SET refund_held_minor = refund_held_minor + $2, updated_at = now()
          WHERE id = $1 AND status = 'paid' AND refund_held_minor + $2 <= amount_minor
          RETURNING refund_held_minor`,
        [r.attemptId, r.amountMinor],
      ),
    );
    if (held.length === 0) return { kind: 'exceeded', leftMinor: await this.leftOf(r.attemptId, em) };
    const rows = rowsOf(
      await em.query(
        `INSERT INTO refunds (id, refund_id, order_pk, order_id, attempt_id, channel, amount_minor, currency, reason,
                              source, status, next_sync_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', now() + make_interval(secs => $11))
         ON CONFLICT DO NOTHING
         RETURNING *`,
        [
          r.id,
          r.refundId,
          r.orderPk,
          r.orderId,
          r.attemptId,
          r.channel,
          r.amountMinor,
          r.currency,
          r.reason,
          r.source,
          submitDelaySeconds,
        ],
      ),
    );
    // A concurrent insert of the same refundId (or a second auto refund of one payment) won: undo the
    // hold by rolling back the caller's transaction.
    if (!rows[0]) throw new RefundConflict();
    return { kind: 'held', refund: toRefund(rows[0]) };
  }

  /** pending → success: the payment's and (for the order's kept payment) the order's refunded totals move with it. */
  async markSucceeded(
    refundPk: string,
    facts: { channelRefundNo?: string | null; finishedAt?: Date | null },
    em: EntityManager,
  ): Promise<RefundRecord | undefined> {
    const rows = rowsOf(
      await em.query(
        `UPDATE refunds SET status = 'success', channel_refund_no = COALESCE($2::varchar, channel_refund_no),
                finished_at = COALESCE($3::timestamptz, now()), next_sync_at = NULL, updated_at = now()
          WHERE id = $1 AND status = 'pending'
          RETURNING *`,
        [refundPk, facts.channelRefundNo ?? null, facts.finishedAt ?? null],
      ),
    );
    if (!rows[0]) return undefined;
    const refund = toRefund(rows[0]);
    await em.query(
      `UPDATE payment_attempts SET refunded_minor = refunded_minor + $2, updated_at = now() WHERE id = $1`,
      [refund.attemptId, refund.amountMinor],
    );
    await em.query(
      `UPDATE orders SET refunded_minor = refunded_minor + $2, version = version + 1, updated_at = now()
        WHERE id = $1 AND paid_attempt_id = $3`,
      [refund.orderPk, refund.amountMinor, refund.attemptId],
    );
    return refund;
  }

  /** pending → failed: the hold on the payment is released. */
  async markFailed(
    refundPk: string,
    facts: { failureCode: string; channelRefundNo?: string | null },
    em: EntityManager,
  ): Promise<RefundRecord | undefined> {
    const rows = rowsOf(
      await em.query(
        `UPDATE refunds SET status = 'failed', failure_code = $2, channel_refund_no = COALESCE($3::varchar, channel_refund_no),
                finished_at = now(), next_sync_at = NULL, updated_at = now()
          WHERE id = $1 AND status = 'pending'
          RETURNING *`,
        [refundPk, facts.failureCode.slice(0, 64), facts.channelRefundNo ?? null],
      ),
    );
    if (!rows[0]) return undefined;
    const refund = toRefund(rows[0]);
    await em.query(
      `UPDATE payment_attempts SET refund_held_minor = refund_held_minor - $2, updated_at = now() WHERE id = $1`,
      [refund.attemptId, refund.amountMinor],
    );
    return refund;
  }

  /**
   * The channel has the refund (pending there): remember that and its number, and when to ask again
   * (see reschedule).
   */
  async markSubmitted(refundPk: string, channelRefundNo: string | null, offsetMs: number, minDelayMs: number) {
    await this.ds.query(
      `UPDATE refunds SET submitted_at = COALESCE(submitted_at, now()),
              channel_refund_no = COALESCE($2::varchar, channel_refund_no),
              next_sync_at = GREATEST(created_at + make_interval(secs => $3), now() + make_interval(secs => $4)),
              updated_at = now()
        WHERE id = $1 AND status = 'pending'`,
      [refundPk, channelRefundNo, offsetMs / 1000, minDelayMs / 1000],
    );
  }

  /**
   * A pending refund's next try (a channel error, or the channel still working on it): `offsetMs` after
   * its creation, not sooner than `minDelayMs` from now, on the database's clock.
   */
  async reschedule(refundPk: string, offsetMs: number, minDelayMs: number): Promise<void> {
    await this.ds.query(
      `UPDATE refunds
          SET next_sync_at = GREATEST(created_at + make_interval(secs => $2), now() + make_interval(secs => $3)),
              updated_at = now()
        WHERE id = $1 AND status = 'pending'`,
      [refundPk, offsetMs / 1000, minDelayMs / 1000],
    );
  }

  /** Makes a pending refund due now (a nudge after its creation or a manual check). */
  async makeDue(refundPk: string): Promise<number> {
    return affectedOf(
      await this.ds.query(`UPDATE refunds SET next_sync_at = now() WHERE id = $1 AND status = 'pending'`, [refundPk]),
    );
  }

  /**
   * The refund sync's claim: pending refunds whose time has come, row-locked for this statement only
   * (SKIP LOCKED) and then leased through next_sync_at (database clock). A pass gives its start
   * (`passStart`, OrderStore.dbNow) so it never takes a refund twice; `refundPk` claims just one.
   */
  async claimDue(limit: number, leaseSeconds: number, passStart?: string, refundPk?: string): Promise<RefundRecord[]> {
    const rows = rowsOf(
      await this.ds.query(
        `UPDATE refunds r
            SET next_sync_at = now() + make_interval(secs => $2), sync_count = r.sync_count + 1
          WHERE r.id IN (
            SELECT id FROM refunds
             WHERE status = 'pending' AND next_sync_at <= COALESCE($4::timestamptz, now())
               AND ($3::uuid IS NULL OR id = $3::uuid)
             ORDER BY next_sync_at
             LIMIT $1
             FOR UPDATE SKIP LOCKED)
          RETURNING r.*`,
        [limit, leaseSeconds, refundPk ?? null, passStart ?? null],
      ),
    );
    return rows.map(toRefund);
  }

  /** Pending refunds older than `minutes` (a gauge for operators). */
  async countStuck(minutes: number): Promise<number> {
    const rows = rowsOf(
      await this.ds.query(
        `SELECT count(*)::int AS n FROM refunds WHERE status = 'pending' AND created_at < now() - make_interval(mins => $1)`,
        [minutes],
      ),
    );
    return Number(rows[0]?.['n'] ?? 0);
  }
}

/** Thrown inside a transaction to roll back a hold whose refund could not be inserted. */
export class RefundConflict extends Error {
  constructor() {
    super('a refund with that refundId was created concurrently');
  }
}
