import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource, EntityManager } from 'typeorm';
import type { AttemptStatus, OrderStatus } from '#database';
import { attemptSourcesFor, orderSourcesFor } from './domain/order-state-machine.js';

export interface OrderRecord {
  readonly id: string;
  readonly orderId: string;
  readonly subject: string;
  readonly amountMinor: number;
  readonly currency: string;
  readonly status: OrderStatus;
  readonly channel: string | null;
  readonly payType: string | null;
  readonly channelTradeNo: string | null;
  readonly paidAttemptId: string | null;
  readonly payTime: Date | null;
  readonly expireTime: Date;
  readonly notifyUrl: string | null;
  readonly metadata: Record<string, unknown> | null;
  readonly refundedMinor: number;
  readonly version: number;
  readonly closedReason: string | null;
  readonly sweepAttempts: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface AttemptRecord {
  readonly id: string;
  readonly orderPk: string;
  readonly orderId: string;
  readonly channel: string;
  readonly channelType: string;
  readonly payType: string;
  readonly outTradeNo: string;
  readonly amountMinor: number;
  readonly currency: string;
  readonly status: AttemptStatus;
  readonly channelTradeNo: string | null;
  readonly payUrl: string | null;
  readonly paidAt: Date | null;
  readonly closedAt: Date | null;
  readonly nextSyncAt: Date | null;
  /** Set while a request is creating this attempt's trade at its channel (see claimForCreate). */
  readonly creatingUntil: Date | null;
  readonly syncCount: number;
  readonly createdAt: Date;
}

type Row = Record<string, unknown>;

/** How long one create call at a channel may hold its attempt (channel calls time out after 10 s). */
export const CREATE_CLAIM_SECONDS = 30;

/** TypeORM answers UPDATE/DELETE with [rows, count] and INSERT/SELECT with rows: normalise to rows. */
function rowsOf(result: unknown): Row[] {
  if (Array.isArray(result) && result.length === 2 && Array.isArray(result[0]) && typeof result[1] === 'number') {
    return result[0] as Row[];
  }
  return result as Row[];
}

/** The row count of an UPDATE/DELETE as TypeORM answers it ([rows, count]). */
export function affectedOf(result: unknown): number {
  return Array.isArray(result) && typeof result[1] === 'number' ? result[1] : 0;
}

const num = (v: unknown): number => {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error('amount column out of the safe integer range');
  return n;
};
const date = (v: unknown): Date | null => (v === null || v === undefined ? null : new Date(v as string | Date));
const str = (v: unknown): string | null =>
  typeof v === 'string' ? v : v === null || v === undefined ? null : JSON.stringify(v);

export function toOrder(r: Row): OrderRecord {
  return {
    id: String(r['id']),
    orderId: String(r['order_id']),
    subject: String(r['subject']),
    amountMinor: num(r['amount_minor']),
    currency: String(r['currency']),
    status: r['status'] as OrderStatus,
    channel: str(r['channel']),
    payType: str(r['pay_type']),
    channelTradeNo: str(r['channel_trade_no']),
    paidAttemptId: str(r['paid_attempt_id']),
    payTime: date(r['pay_time']),
    expireTime: date(r['expire_time']) as Date,
    notifyUrl: str(r['notify_url']),
    metadata: (r['metadata'] as Record<string, unknown> | null) ?? null,
    refundedMinor: num(r['refunded_minor']),
    version: Number(r['version']),
    closedReason: str(r['closed_reason']),
    sweepAttempts: Number(r['sweep_attempts'] ?? 0),
    createdAt: date(r['created_at']) as Date,
    updatedAt: date(r['updated_at']) as Date,
  };
}

export function toAttempt(r: Row): AttemptRecord {
  return {
    id: String(r['id']),
    orderPk: String(r['order_pk']),
    orderId: String(r['order_id']),
    channel: String(r['channel']),
    channelType: String(r['channel_type']),
    payType: String(r['pay_type']),
    outTradeNo: String(r['out_trade_no']),
    amountMinor: num(r['amount_minor']),
    currency: String(r['currency']),
    status: r['status'] as AttemptStatus,
    channelTradeNo: str(r['channel_trade_no']),
    payUrl: str(r['pay_url']),
    paidAt: date(r['paid_at']),
    closedAt: date(r['closed_at']),
    nextSyncAt: date(r['next_sync_at']),
    creatingUntil: date(r['creating_until']),
    syncCount: Number(r['sync_count']),
    createdAt: date(r['created_at']) as Date,
  };
}

export interface NewOrder {
  readonly id: string;
  readonly orderId: string;
  readonly subject: string;
  readonly amountMinor: number;
  readonly currency: string;
  readonly expireTime: Date;
  readonly notifyUrl: string | null;
  /** The metadata as JSON text (the caller has serialised it once to check it). */
  readonly metadataJson: string | null;
}

export interface PaidFacts {
  readonly channel: string;
  readonly payType: string;
  readonly channelTradeNo: string | null;
  readonly payTime: Date;
  readonly attemptId: string;
}

/**
 * All SQL of orders and attempts. Every status change is a compare-and-set whose WHERE lists the
 * statuses the state machine allows as sources, and whose affected row count the caller checks.
 */
@Injectable()
export class OrderStore {
  constructor(@InjectDataSource() readonly ds: DataSource) {}

  transaction<T>(fn: (em: EntityManager) => Promise<T>): Promise<T> {
    return this.ds.transaction('READ COMMITTED', fn);
  }

  private m(em?: EntityManager): EntityManager {
    return em ?? this.ds.manager;
  }

  /** INSERT ... ON CONFLICT DO NOTHING: undefined when the orderId already exists. */
  async insertOrder(o: NewOrder, em?: EntityManager): Promise<OrderRecord | undefined> {
    const rows = rowsOf(
      await this.m(em).query(
        `INSERT INTO orders (id, order_id, subject, amount_minor, currency, status, expire_time, notify_url, metadata)
         VALUES ($1, $2, $3, $4, $5, 'wait', $6, $7, $8)
         ON CONFLICT (order_id) DO NOTHING
         RETURNING *`,
        [o.id, o.orderId, o.subject, o.amountMinor, o.currency, o.expireTime, o.notifyUrl, o.metadataJson],
      ),
    );
    return rows[0] ? toOrder(rows[0]) : undefined;
  }

  async findOrder(orderId: string, em?: EntityManager): Promise<OrderRecord | undefined> {
    const rows = rowsOf(await this.m(em).query(`SELECT * FROM orders WHERE order_id = $1`, [orderId]));
    return rows[0] ? toOrder(rows[0]) : undefined;
  }

  async findOrderByPk(id: string, em?: EntityManager): Promise<OrderRecord | undefined> {
    const rows = rowsOf(await this.m(em).query(`SELECT * FROM orders WHERE id = $1`, [id]));
    return rows[0] ? toOrder(rows[0]) : undefined;
  }

  /** Moves an order to `success` from any status the state machine allows; undefined if it lost. */
  async markOrderPaid(orderPk: string, facts: PaidFacts, em: EntityManager): Promise<OrderRecord | undefined> {
    const rows = rowsOf(
      await em.query(
        `UPDATE orders SET status = 'success', channel = $2, pay_type = $3, channel_trade_no = $4, pay_time = $5,
                paid_attempt_id = $6, version = version + 1, updated_at = now()
          WHERE id = $1 AND status = ANY($7::varchar[])
          RETURNING *`,
        [
          orderPk,
          facts.channel,
          facts.payType,
          facts.channelTradeNo,
          facts.payTime,
          facts.attemptId,
          orderSourcesFor('success'),
        ],
      ),
    );
    return rows[0] ? toOrder(rows[0]) : undefined;
  }

  /** wait → close | timeout; undefined if the order was no longer `wait`. */
  async finishUnpaid(
    orderPk: string,
    to: 'close' | 'timeout',
    reason: string,
    em?: EntityManager,
  ): Promise<OrderRecord | undefined> {
    const rows = rowsOf(
      await this.m(em).query(
        `UPDATE orders SET status = $2, closed_reason = $3, version = version + 1, updated_at = now()
          WHERE id = $1 AND status = ANY($4::varchar[])
          RETURNING *`,
        [orderPk, to, reason, orderSourcesFor(to)],
      ),
    );
    return rows[0] ? toOrder(rows[0]) : undefined;
  }

  /**
   * Creates an attempt of (order, channel), or returns the live one. When a new attempt cannot be made
   * (its out_trade_no is taken by a closed or failed attempt: Alipay and WeChat reuse the orderId), the
   * latest attempt is returned and the caller refuses.
   */
  async upsertAttempt(
    a: { id: string; order: OrderRecord; channel: string; channelType: string; payType: string; outTradeNo: string },
    em?: EntityManager,
  ): Promise<AttemptRecord> {
    const inserted = rowsOf(
      await this.m(em).query(
        `INSERT INTO payment_attempts (id, order_pk, order_id, channel, channel_type, pay_type, out_trade_no,
                                       amount_minor, currency, status, next_sync_at, creating_until)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open', now() + interval '1 minute',
                 now() + make_interval(secs => ${CREATE_CLAIM_SECONDS}))
         ON CONFLICT DO NOTHING
         RETURNING *`,
        [
          a.id,
          a.order.id,
          a.order.orderId,
          a.channel,
          a.channelType,
          a.payType,
          a.outTradeNo,
          a.order.amountMinor,
          a.order.currency,
        ],
      ),
    );
    if (inserted[0]) return toAttempt(inserted[0]);
    const rows = rowsOf(
      await this.m(em).query(
        `SELECT * FROM payment_attempts WHERE order_pk = $1 AND channel = $2
          ORDER BY (status = 'open') DESC, created_at DESC, id LIMIT 1`,
        [a.order.id, a.channel],
      ),
    );
    if (!rows[0]) throw new Error('attempt vanished after a conflicting insert');
    return toAttempt(rows[0]);
  }

  /**
   * Writes back what the channel answered and releases the creating claim. Answers the order's status
   * as this statement sees it (one round trip instead of a re-read), or undefined when the attempt is
   * no longer open; either way other than `wait`, the trade must not be handed to a payer.
   */
  async recordPayUrl(
    attemptId: string,
    payType: string,
    payUrl: string | null,
    channelTradeNo: string | null,
  ): Promise<OrderStatus | undefined> {
    const rows = rowsOf(
      await this.ds.query(
        `UPDATE payment_attempts a SET pay_type = $2, pay_url = $3, channel_trade_no = COALESCE($4::varchar, a.channel_trade_no),
                creating_until = NULL, updated_at = now()
          WHERE a.id = $1 AND a.status = 'open'
          RETURNING (SELECT o.status FROM orders o WHERE o.id = a.order_pk) AS order_status`,
        [attemptId, payType, payUrl, channelTradeNo],
      ),
    );
    return rows[0] ? (rows[0]['order_status'] as OrderStatus) : undefined;
  }

  /**
   * Claims an existing open attempt for one create call at its channel: while the claim holds, no other
   * pay request reuses it and neither cancel nor the sweep closes it. Undefined if someone else holds it.
   */
  async claimForCreate(attemptId: string): Promise<AttemptRecord | undefined> {
    const rows = rowsOf(
      await this.ds.query(
        `UPDATE payment_attempts SET creating_until = now() + make_interval(secs => ${CREATE_CLAIM_SECONDS})
          WHERE id = $1 AND status = 'open' AND (creating_until IS NULL OR creating_until < now())
          RETURNING *`,
        [attemptId],
      ),
    );
    return rows[0] ? toAttempt(rows[0]) : undefined;
  }

  async releaseCreateClaim(attemptId: string): Promise<void> {
    await this.ds.query(`UPDATE payment_attempts SET creating_until = NULL WHERE id = $1`, [attemptId]);
  }

  /**
   * After a close that found no trade at the channel (an unscanned QR, an unopened pay form), the trade
   * may still appear until the channel-side expiry: the order sync takes one more look after it.
   */
  async scheduleFinalCheck(attemptId: string): Promise<void> {
    await this.ds.query(
      `UPDATE payment_attempts a SET next_sync_at = o.expire_time + interval '5 minutes'
         FROM orders o
        WHERE a.id = $1 AND a.status = 'closed' AND o.id = a.order_pk`,
      [attemptId],
    );
  }

  /** Removes an attempt that never reached a channel (the request was refused before any trade). */
  async deleteFreshAttempt(attemptId: string): Promise<void> {
    await this.ds.query(`DELETE FROM payment_attempts WHERE id = $1 AND status = 'open' AND channel_trade_no IS NULL`, [
      attemptId,
    ]);
  }

  async attemptsOf(orderPk: string, em?: EntityManager): Promise<AttemptRecord[]> {
    const rows = rowsOf(
      await this.m(em).query(`SELECT * FROM payment_attempts WHERE order_pk = $1 ORDER BY created_at, id`, [orderPk]),
    );
    return rows.map(toAttempt);
  }

  async findAttemptByOutTradeNo(
    channel: string,
    outTradeNo: string,
    em?: EntityManager,
  ): Promise<AttemptRecord | undefined> {
    const rows = rowsOf(
      await this.m(em).query(`SELECT * FROM payment_attempts WHERE channel = $1 AND out_trade_no = $2`, [
        channel,
        outTradeNo,
      ]),
    );
    return rows[0] ? toAttempt(rows[0]) : undefined;
  }

  /** Compare-and-set of an attempt's status; undefined when another writer got there first. */
  async moveAttempt(
    attemptId: string,
    to: AttemptStatus,
    facts: { channelTradeNo?: string | null; paidAt?: Date | null },
    em?: EntityManager,
  ): Promise<AttemptRecord | undefined> {
    const rows = rowsOf(
      await this.m(em).query(
        `UPDATE payment_attempts
            SET status = $2::varchar,
                channel_trade_no = COALESCE($3::varchar, channel_trade_no),
                paid_at = CASE WHEN $2::varchar = 'paid' THEN COALESCE($4::timestamptz, now()) ELSE paid_at END,
                closed_at = CASE WHEN $2::varchar IN ('closed', 'failed') THEN now() ELSE closed_at END,
                next_sync_at = NULL,
                updated_at = now()
          WHERE id = $1 AND status = ANY($5::varchar[])
          RETURNING *`,
        [attemptId, to, facts.channelTradeNo ?? null, facts.paidAt ?? null, attemptSourcesFor(to)],
      ),
    );
    return rows[0] ? toAttempt(rows[0]) : undefined;
  }

  /**
   * The expiry sweep's claim: up to `limit` expired `wait` orders, row-locked only for this statement
   * (SKIP LOCKED) and then held by a committed lease in `sweep_after`.
   */
  async claimExpiredOrders(limit: number, now: Date, leaseSeconds: number): Promise<OrderRecord[]> {
    const rows = rowsOf(
      await this.ds.query(
        `UPDATE orders o
            SET sweep_after = $2::timestamptz + make_interval(secs => $3), sweep_attempts = o.sweep_attempts + 1
          WHERE o.id IN (
            SELECT id FROM orders
             WHERE status = 'wait' AND expire_time <= $2 AND (sweep_after IS NULL OR sweep_after <= $2)
             ORDER BY expire_time
             LIMIT $1
             FOR UPDATE SKIP LOCKED)
          RETURNING o.*`,
        [limit, now, leaseSeconds],
      ),
    );
    return rows.map(toOrder);
  }

  /** Sets when the sweep may take a still-waiting order again (its backoff). */
  async postponeSweep(orderPk: string, at: Date): Promise<void> {
    await this.ds.query(`UPDATE orders SET sweep_after = $2 WHERE id = $1 AND status = 'wait'`, [orderPk, at]);
  }

  /** The order sync's claim: attempts due for a query and not being created, leased via next_sync_at. */
  async claimDueAttempts(limit: number, now: Date, leaseSeconds: number): Promise<AttemptRecord[]> {
    const rows = rowsOf(
      await this.ds.query(
        `UPDATE payment_attempts a
            SET next_sync_at = $2::timestamptz + make_interval(secs => $3), sync_count = a.sync_count + 1
          WHERE a.id IN (
            SELECT id FROM payment_attempts
             WHERE next_sync_at <= $2 AND (creating_until IS NULL OR creating_until < $2)
             ORDER BY next_sync_at
             LIMIT $1
             FOR UPDATE SKIP LOCKED)
          RETURNING a.*`,
        [limit, now, leaseSeconds],
      ),
    );
    return rows.map(toAttempt);
  }

  /** The attempt's next sync time (only while it is open), or null: no more syncs. */
  async setNextSync(attemptId: string, at: Date | null): Promise<void> {
    await this.ds.query(
      `UPDATE payment_attempts SET next_sync_at = $2::timestamptz WHERE id = $1 AND ($2::timestamptz IS NULL OR status = 'open')`,
      [attemptId, at],
    );
  }

  async addOutboxEvent(
    topic: string,
    orderId: string,
    payload: Record<string, unknown>,
    em: EntityManager,
  ): Promise<void> {
    await em.query(`INSERT INTO outbox_events (topic, order_id, payload) VALUES ($1, $2, $3)`, [
      topic,
      orderId,
      JSON.stringify(payload),
    ]);
  }
}
