import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource, EntityManager } from 'typeorm';
import type { AttemptRef } from '#channels';
import type { AttemptStatus, OrderStatus } from '#database';
import { attemptSourcesFor, orderSourcesFor } from './domain/order-state-machine.js';
import { type Row, date, num, rowsOf, str } from './sql-rows.js';

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
  /** Set when a cancel started: from then on no new trade is created or handed out for the order. */
  readonly cancelRequestedAt: Date | null;
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
  /**
   * Whether that claim still holds, judged on the database's clock (the clock that set it). Only
   * attemptsOf computes it; attempts read elsewhere say false.
   */
  readonly creating: boolean;
  readonly syncCount: number;
  readonly createdAt: Date;
}

/** Callbacks waiting for the commit of a transaction started by OrderStore.transaction. */
const AFTER_COMMIT = new WeakMap<EntityManager, Array<() => void>>();

/**
 * The SQL condition under which an order may get a new trade or hand one out: still `wait`, no cancel
 * started, not expired by the database's clock. Used with FOR SHARE on the order row, so a cancel's
 * mark (an UPDATE of that row) waits for the statement's transaction and the statement sees the mark of
 * a cancel that came first.
 */
const PAYABLE = `o.status = 'wait' AND o.cancel_requested_at IS NULL AND o.expire_time > now()`;

/** An instant on the database's clock, as PostgreSQL's text (full microsecond precision). */
export type DbInstant = string;

/** How long one create call at a channel may hold its attempt (channel calls time out after 10 s). */
export const CREATE_CLAIM_SECONDS = 30;

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
    cancelRequestedAt: date(r['cancel_requested_at']),
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
    creating: r['creating'] === true,
    syncCount: Number(r['sync_count']),
    createdAt: date(r['created_at']) as Date,
  };
}

/** How a channel names an attempt (AttemptRef of the channel seam). */
export function refOf(a: AttemptRecord): AttemptRef {
  return {
    orderId: a.orderId,
    attemptId: a.id,
    outTradeNo: a.outTradeNo,
    payType: a.payType,
    amount: { minor: a.amountMinor, currency: a.currency },
    createdAt: a.createdAt,
    channelTradeNo: a.channelTradeNo,
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

/** What a channel reports about a payment, written on the attempt (and from there on its order). */
export interface PaidNews {
  /** Kept from the attempt when absent. */
  readonly channelTradeNo?: string | null;
  readonly paidAt: Date;
}

/** An attempt moved to `paid`, and its order if that moved to `success` in the same statement. */
export interface PaidAttempt {
  readonly attempt: AttemptRecord;
  readonly won: { readonly order: OrderRecord; readonly othersDue: number } | undefined;
}

/**
 * The statement of payAttempt and payByOutTradeNo. `key` names the attempt (as `a`, parameters from $5
 * on), `only` adds conditions to its move; with `readBack`, the attempt as this statement read it is
 * answered when it did not move. One row (none when nothing moved and nothing was read back): the
 * attempt's columns, `moved`, the order moved to `success` as JSON (null when it lost) and the count of
 * its other attempts made due.
 */
function paySql(key: string, opts: { only?: string; readBack?: boolean } = {}): string {
  const readBack = opts.readBack
    ? `UNION ALL
       SELECT a.*, false FROM payment_attempts a WHERE ${key} AND NOT EXISTS (SELECT 1 FROM paid_attempt)`
    : '';
  return `WITH paid_attempt AS (
            UPDATE payment_attempts a
               SET status = 'paid', channel_trade_no = COALESCE($1::varchar, a.channel_trade_no), paid_at = $2,
                   next_sync_at = NULL, updated_at = now()
             WHERE ${key} ${opts.only ? `AND ${opts.only}` : ''} AND a.status = ANY($3::varchar[])
             RETURNING a.*),
          paid_order AS (
            UPDATE orders o
               SET status = 'success', channel = m.channel, pay_type = m.pay_type, channel_trade_no = m.channel_trade_no,
                   pay_time = m.paid_at, paid_attempt_id = m.id, version = o.version + 1, updated_at = now()
              FROM paid_attempt m
             WHERE o.id = m.order_pk AND o.status = ANY($4::varchar[])
             RETURNING o.*),
          due AS (
            UPDATE payment_attempts d SET next_sync_at = now()
              FROM paid_order p
             WHERE d.order_pk = p.id AND d.id <> p.paid_attempt_id AND d.status = 'open'
             RETURNING d.id)
          SELECT r.*, (SELECT to_jsonb(p) FROM paid_order p) AS paid_order, (SELECT count(*) FROM due)::int AS others_due
            FROM (SELECT *, true AS moved FROM paid_attempt ${readBack}) r`;
}

function payParams(news: PaidNews): unknown[] {
  return [news.channelTradeNo ?? null, news.paidAt, attemptSourcesFor('paid'), orderSourcesFor('success')];
}

function paidOf(row: Row): PaidAttempt {
  const order = row['paid_order'];
  return {
    attempt: toAttempt(row),
    won: order
      ? {
          // A JSON column: node-postgres parses it, the embedded driver may answer its text.
          order: toOrder((typeof order === 'string' ? JSON.parse(order) : order) as Row),
          othersDue: Number(row['others_due']),
        }
      : undefined,
  };
}

/**
 * All SQL of orders and attempts. Every status change is a compare-and-set whose WHERE lists the
 * statuses the state machine allows as sources, and whose affected row count the caller checks.
 */
@Injectable()
export class OrderStore {
  constructor(@InjectDataSource() readonly ds: DataSource) {}

  /**
   * One transaction (PostgreSQL's default READ COMMITTED: no isolation statement is sent). Work that must
   * only start once the transaction's effects are visible to others is registered with afterCommit.
   */
  async transaction<T>(fn: (em: EntityManager) => Promise<T>): Promise<T> {
    const after: Array<() => void> = [];
    const result = await this.ds.transaction((em) => {
      AFTER_COMMIT.set(em, after);
      return fn(em);
    });
    for (const run of after) run();
    return result;
  }

  /** Runs `fn` once the transaction of `em` has committed (never if it rolls back; at once outside one). */
  afterCommit(em: EntityManager | undefined, fn: () => void): void {
    const list = em ? AFTER_COMMIT.get(em) : undefined;
    if (list) list.push(fn);
    else fn();
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

  /**
   * The order and its payments (paid attempts) in one round trip: what GET /orders/:orderId answers.
   */
  async findOrderWithPayments(
    orderId: string,
  ): Promise<{ order: OrderRecord; payments: Array<Record<string, unknown>> } | undefined> {
    const rows = rowsOf(
      await this.ds.query(
        `SELECT o.*, COALESCE((
                  SELECT json_agg(json_build_object(
                           'id', a.id, 'channel', a.channel, 'pay_type', a.pay_type, 'amount_minor', a.amount_minor,
                           'currency', a.currency, 'channel_trade_no', a.channel_trade_no, 'paid_at', a.paid_at,
                           'refund_held_minor', a.refund_held_minor, 'refunded_minor', a.refunded_minor)
                         ORDER BY a.paid_at, a.id)
                    FROM payment_attempts a WHERE a.order_pk = o.id AND a.status = 'paid'), '[]'::json) AS payments
           FROM orders o WHERE o.order_id = $1`,
        [orderId],
      ),
    );
    const row = rows[0];
    if (!row) return undefined;
    const payments = (typeof row['payments'] === 'string' ? JSON.parse(row['payments']) : row['payments']) as Array<
      Record<string, unknown>
    >;
    return { order: toOrder(row), payments };
  }

  async findOrderByPk(id: string, em?: EntityManager): Promise<OrderRecord | undefined> {
    const rows = rowsOf(await this.m(em).query(`SELECT * FROM orders WHERE id = $1`, [id]));
    return rows[0] ? toOrder(rows[0]) : undefined;
  }

  /**
   * The compare-and-set of a payment, in one statement: the attempt moves to `paid` from any status the
   * state machine allows, and then its order to `success` (also from any allowed status), taking the
   * attempt's channel, payType, channel trade no and paid time. In the same statement the order's
   * other open attempts become due for the order sync (`othersDue` counts them), so they are closed at
   * their channels right after the commit and cannot take a second payment for long.
   *
   * Answers undefined when the attempt did not move (another writer got there first); `won` is
   * undefined when the attempt moved but its order was no longer `wait` (a second or late payment).
   */
  async payAttempt(attemptId: string, news: PaidNews, em: EntityManager): Promise<PaidAttempt | undefined> {
    const rows = rowsOf(await em.query(paySql(`a.id = $5`), [...payParams(news), attemptId]));
    return rows[0] ? paidOf(rows[0]) : undefined;
  }

  /**
   * A payment reported for (channel, outTradeNo) with its amount: payAttempt's statement, applied only
   * when the attempt's own amount and currency equal the reported ones, that also answers the attempt
   * as it was read when nothing moved. One round trip for a notify's common case; undefined when no
   * attempt has that out_trade_no.
   */
  async payByOutTradeNo(
    channel: string,
    outTradeNo: string,
    amount: { readonly minor: number; readonly currency: string },
    news: PaidNews,
    em: EntityManager,
  ): Promise<{ attempt: AttemptRecord; paid: PaidAttempt | undefined } | undefined> {
    const rows = rowsOf(
      await em.query(
        paySql(`a.channel = $5 AND a.out_trade_no = $6`, {
          only: `a.amount_minor = $7 AND a.currency = $8`,
          readBack: true,
        }),
        [...payParams(news), channel, outTradeNo, amount.minor, amount.currency],
      ),
    );
    const row = rows[0];
    if (!row) return undefined;
    if (row['moved'] !== true) return { attempt: toAttempt(row), paid: undefined };
    const paid = paidOf(row);
    return { attempt: paid.attempt, paid };
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
   * A pay request's first statement (issue 14: one round trip instead of a read and an insert): the order
   * by its orderId, read under a share lock, and a fresh attempt of it inserted in the same statement when
   * the order is payable and the channel has no attempt yet (as upsertAttempt's insert). `order` is
   * undefined when there is no such order; `attempt` when nothing was inserted (not payable, or an attempt
   * exists: upsertAttempt then says which).
   */
  async insertAttemptByOrderId(a: {
    id: string;
    orderId: string;
    channel: string;
    channelType: string;
    payType: string;
    outTradeNo: string;
  }): Promise<{ order: OrderRecord | undefined; attempt: AttemptRecord | undefined }> {
    const rows = rowsOf(
      await this.ds.query(
        `WITH o AS (SELECT * FROM orders WHERE order_id = $2 FOR SHARE),
         inserted AS (
           INSERT INTO payment_attempts (id, order_pk, order_id, channel, channel_type, pay_type, out_trade_no,
                                         amount_minor, currency, status, next_sync_at, creating_until)
           SELECT $1, o.id, o.order_id, $3, $4, $5, $6, o.amount_minor, o.currency, 'open',
                  now() + interval '1 minute', now() + make_interval(secs => ${CREATE_CLAIM_SECONDS})
             FROM o
            WHERE ${PAYABLE}
           ON CONFLICT DO NOTHING
           RETURNING *)
         SELECT o.*, (SELECT to_jsonb(i) FROM inserted i) AS inserted_attempt FROM o`,
        [a.id, a.orderId, a.channel, a.channelType, a.payType, a.outTradeNo],
      ),
    );
    const row = rows[0];
    if (!row) return { order: undefined, attempt: undefined };
    const inserted = row['inserted_attempt'];
    return {
      order: toOrder(row),
      // A JSON column: node-postgres parses it, the embedded driver may answer its text.
      attempt: inserted
        ? toAttempt((typeof inserted === 'string' ? JSON.parse(inserted) : inserted) as Row)
        : undefined,
    };
  }

  /**
   * Creates an attempt of (order, channel) while the order is payable (checked in the same statement,
   * under a share lock of the order row), or returns the live one. When a new attempt cannot be made (its
   * out_trade_no is taken by a closed or failed attempt: Alipay and WeChat reuse the orderId), the latest
   * attempt is returned and the caller refuses; when the order is not payable, 'not_payable'.
   */
  async upsertAttempt(
    a: { id: string; order: OrderRecord; channel: string; channelType: string; payType: string; outTradeNo: string },
    em?: EntityManager,
  ): Promise<{ kind: 'inserted' | 'existing'; attempt: AttemptRecord } | { kind: 'not_payable' }> {
    const inserted = rowsOf(
      await this.m(em).query(
        `INSERT INTO payment_attempts (id, order_pk, order_id, channel, channel_type, pay_type, out_trade_no,
                                       amount_minor, currency, status, next_sync_at, creating_until)
         SELECT $1, o.id, o.order_id, $3, $4, $5, $6, o.amount_minor, o.currency, 'open',
                now() + interval '1 minute', now() + make_interval(secs => ${CREATE_CLAIM_SECONDS})
           FROM orders o
          WHERE o.id = $2 AND ${PAYABLE}
          FOR SHARE
         ON CONFLICT DO NOTHING
         RETURNING *`,
        [a.id, a.order.id, a.channel, a.channelType, a.payType, a.outTradeNo],
      ),
    );
    if (inserted[0]) return { kind: 'inserted', attempt: toAttempt(inserted[0]) };
    const rows = rowsOf(
      await this.m(em).query(
        `SELECT a.*, (${PAYABLE}) AS payable
           FROM orders o LEFT JOIN LATERAL (
             SELECT * FROM payment_attempts WHERE order_pk = o.id AND channel = $2
              ORDER BY (status = 'open') DESC, created_at DESC, id LIMIT 1) a ON true
          WHERE o.id = $1`,
        [a.order.id, a.channel],
      ),
    );
    const row = rows[0];
    if (!row || row['payable'] !== true) return { kind: 'not_payable' };
    if (row['id'] === null || row['id'] === undefined) throw new Error('attempt vanished after a conflicting insert');
    return { kind: 'existing', attempt: toAttempt(row) };
  }

  /**
   * Writes back what the channel answered and releases the creating claim; false when the attempt is
   * no longer open or its order no longer payable (cancel started, expired): it must then not be handed
   * to a payer.
   */
  async recordPayUrl(
    attemptId: string,
    payType: string,
    payUrl: string | null,
    channelTradeNo: string | null,
  ): Promise<boolean> {
    const rows = rowsOf(
      await this.ds.query(
        `UPDATE payment_attempts a
            SET pay_type = $2, pay_url = $3, channel_trade_no = COALESCE($4::varchar, channel_trade_no),
                creating_until = NULL, updated_at = now()
          WHERE a.id = $1 AND a.status = 'open'
            AND EXISTS (SELECT 1 FROM orders o WHERE o.id = a.order_pk AND ${PAYABLE} FOR SHARE)
          RETURNING a.id`,
        [attemptId, payType, payUrl, channelTradeNo],
      ),
    );
    return rows.length === 1;
  }

  /**
   * Claims an existing open attempt for one create call at its channel: while the claim holds, no other
   * pay request reuses it and neither cancel nor the sweep closes it. Undefined if someone else holds it
   * or the order is no longer payable.
   */
  async claimForCreate(attemptId: string): Promise<AttemptRecord | undefined> {
    const rows = rowsOf(
      await this.ds.query(
        `UPDATE payment_attempts a SET creating_until = now() + make_interval(secs => ${CREATE_CLAIM_SECONDS})
          WHERE a.id = $1 AND a.status = 'open' AND (a.creating_until IS NULL OR a.creating_until < now())
            AND EXISTS (SELECT 1 FROM orders o WHERE o.id = a.order_pk AND ${PAYABLE} FOR SHARE)
          RETURNING a.*`,
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
      await this.m(em).query(
        `SELECT *, (creating_until IS NOT NULL AND creating_until > now()) AS creating
           FROM payment_attempts WHERE order_pk = $1 ORDER BY created_at, id`,
        [orderPk],
      ),
    );
    return rows.map(toAttempt);
  }

  async findAttemptById(id: string, em?: EntityManager): Promise<AttemptRecord | undefined> {
    const rows = rowsOf(await this.m(em).query(`SELECT * FROM payment_attempts WHERE id = $1`, [id]));
    return rows[0] ? toAttempt(rows[0]) : undefined;
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

  /**
   * Compare-and-set of an attempt to `closed` or `failed` (a payment goes through payAttempt, with its
   * order); undefined when another writer got there first.
   */
  async moveAttempt(
    attemptId: string,
    to: 'closed' | 'failed',
    facts: { channelTradeNo?: string | null },
    em?: EntityManager,
  ): Promise<AttemptRecord | undefined> {
    const rows = rowsOf(
      await this.m(em).query(
        `UPDATE payment_attempts
            SET status = $2::varchar,
                channel_trade_no = COALESCE($3::varchar, channel_trade_no),
                closed_at = now(),
                next_sync_at = NULL,
                updated_at = now()
          WHERE id = $1 AND status = ANY($4::varchar[])
          RETURNING *`,
        [attemptId, to, facts.channelTradeNo ?? null, attemptSourcesFor(to)],
      ),
    );
    return rows[0] ? toAttempt(rows[0]) : undefined;
  }

  /**
   * Marks that a cancel has started (wait orders only; idempotent). From the commit on, no attempt is
   * created, reused or handed out for the order (see PAYABLE). Undefined when the order is not `wait`.
   */
  async requestCancel(orderPk: string): Promise<OrderRecord | undefined> {
    const rows = rowsOf(
      await this.ds.query(
        `UPDATE orders SET cancel_requested_at = COALESCE(cancel_requested_at, now()), updated_at = now()
          WHERE id = $1 AND status = 'wait'
          RETURNING *`,
        [orderPk],
      ),
    );
    return rows[0] ? toOrder(rows[0]) : undefined;
  }

  /**
   * The expiry sweep's claim: up to `limit` expired `wait` orders, row-locked only for this statement
   * (SKIP LOCKED) and then held by a committed lease in `sweep_after`. Every time here is the database's
   * clock, so processes whose clocks differ never cut each other's leases short.
   */
  async claimExpiredOrders(limit: number, leaseSeconds: number, passStart: DbInstant): Promise<OrderRecord[]> {
    const rows = rowsOf(
      await this.ds.query(
        `UPDATE orders o
            SET sweep_after = now() + make_interval(secs => $2), sweep_attempts = o.sweep_attempts + 1
          WHERE o.id IN (
            SELECT id FROM orders
             WHERE status = 'wait' AND expire_time <= now() AND (sweep_after IS NULL OR sweep_after <= $3::timestamptz)
             ORDER BY expire_time
             LIMIT $1
             FOR UPDATE SKIP LOCKED)
          RETURNING o.*`,
        [limit, leaseSeconds, passStart],
      ),
    );
    return rows.map(toOrder);
  }

  /**
   * The database's clock now: a job pass starts with it, and claims only work that was due by then, so
   * one pass never takes the same row twice (an order postponed by 0 s comes back in the next pass).
   */
  async dbNow(): Promise<DbInstant> {
    // As text: a JS Date would cut the microseconds, and a claim could then miss what just became due.
    const rows = rowsOf(await this.ds.query(`SELECT now()::text AS now`));
    return String(rows[0]?.['now']);
  }

  /** Sets when the sweep may take a still-waiting order again (its backoff, from the database's clock). */
  async postponeSweep(orderPk: string, delayMs: number): Promise<void> {
    await this.ds.query(
      `UPDATE orders SET sweep_after = now() + make_interval(secs => $2) WHERE id = $1 AND status = 'wait'`,
      [orderPk, delayMs / 1000],
    );
  }

  /**
   * The order sync's claim: attempts due for a query and not being created, leased via next_sync_at.
   * `orderPk` limits it to one order's attempts (the close of an order's other attempts right after it
   * was paid).
   */
  async claimDueAttempts(
    limit: number,
    leaseSeconds: number,
    passStart: DbInstant,
    orderPk?: string,
  ): Promise<AttemptRecord[]> {
    const rows = rowsOf(
      await this.ds.query(
        `UPDATE payment_attempts a
            SET next_sync_at = now() + make_interval(secs => $2), sync_count = a.sync_count + 1
          WHERE a.id IN (
            SELECT id FROM payment_attempts
             WHERE next_sync_at <= $4::timestamptz AND (creating_until IS NULL OR creating_until < now())
               AND ($3::uuid IS NULL OR order_pk = $3::uuid)
             ORDER BY next_sync_at
             LIMIT $1
             FOR UPDATE SKIP LOCKED)
          RETURNING a.*`,
        [limit, leaseSeconds, orderPk ?? null, passStart],
      ),
    );
    return rows.map(toAttempt);
  }

  /** No more syncs of the attempt. */
  async stopSync(attemptId: string): Promise<void> {
    await this.ds.query(`UPDATE payment_attempts SET next_sync_at = NULL WHERE id = $1`, [attemptId]);
  }

  /**
   * The open attempt's next query: `offsetMs` after its creation, but never sooner than `minDelayMs`
   * from now (both on the database's clock).
   */
  async scheduleSync(attemptId: string, offsetMs: number, minDelayMs: number): Promise<void> {
    await this.ds.query(
      `UPDATE payment_attempts
          SET next_sync_at = GREATEST(created_at + make_interval(secs => $2), now() + make_interval(secs => $3))
        WHERE id = $1 AND status = 'open'`,
      [attemptId, offsetMs / 1000, minDelayMs / 1000],
    );
  }
}
