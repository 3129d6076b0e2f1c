import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { type AttemptRecord, type OrderRecord, toAttempt, toOrder } from '../order-store.js';

type Row = Record<string, unknown>;

function rowsOf(result: unknown): Row[] {
  if (Array.isArray(result) && result.length === 2 && Array.isArray(result[0]) && typeof result[1] === 'number') {
    return result[0] as Row[];
  }
  return result as Row[];
}

const int = (v: unknown): number => {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error('count or amount out of the safe integer range');
  return n;
};
const date = (v: unknown): Date | null => (v === null || v === undefined ? null : new Date(v as string | Date));
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** Where a search page starts: the (created_at, id) of the last order of the page before, exactly. */
export interface OrderKey {
  /** created_at as PostgreSQL prints it (microseconds kept; a JS Date would drop them). */
  readonly createdAt: string;
  readonly id: string;
}

export interface OrderSearch {
  readonly status?: string;
  readonly channel?: string;
  /** orderId prefix, subject substring, or a channel trade number (of the order or of any attempt). */
  readonly q?: string;
  readonly from?: Date;
  readonly to?: Date;
  readonly currency?: string;
  readonly minMinor?: number;
  readonly maxMinor?: number;
  readonly after?: OrderKey;
  readonly limit: number;
}

export interface NotifyRecord {
  readonly id: string;
  readonly channelType: string;
  readonly channel: string | null;
  readonly verdict: string;
  readonly verdictDetail: string | null;
  readonly outTradeNo: string | null;
  readonly receiveCount: number;
  readonly firstReceivedAt: Date;
  readonly lastReceivedAt: Date;
  /** The raw body as received (empty for refused unsigned ones); headers are never read here. */
  readonly body: string;
}

export interface StatsRow {
  readonly bucket: Date;
  /** The channel that was paid, else the channel of the last attempt, else '' (never tried). */
  readonly channel: string;
  readonly currency: string;
  readonly created: number;
  readonly paid: number;
  readonly closed: number;
  readonly timedOut: number;
  readonly paidMinor: number;
  readonly refundedMinor: number;
}

/** LIKE metacharacters taken literally (the default escape character is the backslash). */
export function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * The console's reads: order search (keyset, newest first), an order's parts, and stats. Every query is
 * built from the filters given, so each one can use its index (docs/benchmarks.md, "Admin console").
 */
@Injectable()
export class AdminStore {
  constructor(@InjectDataSource() readonly ds: DataSource) {}

  async searchOrders(s: OrderSearch): Promise<Array<{ order: OrderRecord; key: OrderKey }>> {
    const where: string[] = [];
    const args: unknown[] = [];
    const arg = (v: unknown): string => `$${args.push(v)}`;
    if (s.status !== undefined) where.push(`o.status = ${arg(s.status)}`);
    if (s.channel !== undefined) where.push(`o.channel = ${arg(s.channel)}`);
    if (s.from !== undefined) where.push(`o.created_at >= ${arg(s.from)}`);
    if (s.to !== undefined) where.push(`o.created_at < ${arg(s.to)}`);
    if (s.currency !== undefined) where.push(`o.currency = ${arg(s.currency)}`);
    if (s.minMinor !== undefined) where.push(`o.amount_minor >= ${arg(s.minMinor)}`);
    if (s.maxMinor !== undefined) where.push(`o.amount_minor <= ${arg(s.maxMinor)}`);
    if (s.q !== undefined) {
      const q = arg(s.q);
      where.push(`(o.order_id LIKE ${arg(`${escapeLike(s.q)}%`)}
                   OR o.subject ILIKE ${arg(`%${escapeLike(s.q)}%`)}
                   OR o.channel_trade_no = ${q}
                   OR o.id = ANY(ARRAY(SELECT a.order_pk FROM payment_attempts a WHERE a.channel_trade_no = ${q})))`);
    }
    if (s.after !== undefined) {
      where.push(`(o.created_at, o.id) < (${arg(s.after.createdAt)}::timestamptz, ${arg(s.after.id)}::uuid)`);
    }
    const sql = `SELECT o.*, o.created_at::text AS created_key FROM orders o
                  ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
                  ORDER BY o.created_at DESC, o.id DESC
                  LIMIT ${arg(s.limit)}`;
    return rowsOf(await this.ds.query(sql, args)).map((r) => ({
      order: toOrder(r),
      key: { createdAt: String(r['created_key']), id: String(r['id']) },
    }));
  }

  async attemptsOf(orderPk: string): Promise<AttemptRecord[]> {
    return rowsOf(
      await this.ds.query(`SELECT * FROM payment_attempts WHERE order_pk = $1 ORDER BY created_at, id`, [orderPk]),
    ).map(toAttempt);
  }

  async notifiesOf(orderId: string): Promise<NotifyRecord[]> {
    const rows = rowsOf(
      await this.ds.query(
        `SELECT id, channel_type, channel, verdict, verdict_detail, out_trade_no, receive_count,
                first_received_at, last_received_at, body
           FROM notify_inbox WHERE order_id = $1 ORDER BY first_received_at, id LIMIT 200`,
        [orderId],
      ),
    );
    return rows.map((r) => ({
      id: String(r['id']),
      channelType: String(r['channel_type']),
      channel: str(r['channel']),
      verdict: String(r['verdict']),
      verdictDetail: str(r['verdict_detail']),
      outTradeNo: str(r['out_trade_no']),
      receiveCount: int(r['receive_count']),
      firstReceivedAt: date(r['first_received_at']) as Date,
      lastReceivedAt: date(r['last_received_at']) as Date,
      body: typeof r['body'] === 'string' ? r['body'] : '',
    }));
  }

  /** Event ids of an order, oldest first. */
  async eventIdsOf(orderId: string): Promise<string[]> {
    return rowsOf(
      await this.ds.query(`SELECT id FROM events WHERE order_id = $1 ORDER BY seq LIMIT 200`, [orderId]),
    ).map((r) => String(r['id']));
  }

  /**
   * Orders created in [from, to), per bucket (in `timeZone`), channel and currency. Every figure is of
   * the orders created in the bucket (a cohort), so the conversion rate is paid / created of the same
   * orders; amounts are integer minor units.
   */
  async stats(bucket: 'day' | 'hour', from: Date, to: Date, timeZone: string): Promise<StatsRow[]> {
    const rows = rowsOf(
      await this.ds.query(
        `SELECT date_trunc($1, o.created_at, $2) AS bucket,
                COALESCE(o.channel, la.channel, '') AS channel,
                o.currency,
                count(*) AS created,
                count(*) FILTER (WHERE o.status = 'success') AS paid,
                count(*) FILTER (WHERE o.status = 'close') AS closed,
                count(*) FILTER (WHERE o.status = 'timeout') AS timed_out,
                COALESCE(sum(o.amount_minor) FILTER (WHERE o.status = 'success'), 0) AS paid_minor,
                COALESCE(sum(o.refunded_minor), 0) AS refunded_minor
           FROM orders o
           LEFT JOIN LATERAL (
                SELECT a.channel FROM payment_attempts a
                 WHERE o.channel IS NULL AND a.order_pk = o.id
                 ORDER BY a.created_at DESC LIMIT 1) la ON true
          WHERE o.created_at >= $3 AND o.created_at < $4
          GROUP BY 1, 2, 3
          ORDER BY 1, 2, 3`,
        [bucket, timeZone, from, to],
      ),
    );
    return rows.map((r) => ({
      bucket: date(r['bucket']) as Date,
      channel: String(r['channel']),
      currency: String(r['currency']),
      created: int(r['created']),
      paid: int(r['paid']),
      closed: int(r['closed']),
      timedOut: int(r['timed_out']),
      paidMinor: int(r['paid_minor']),
      refundedMinor: int(r['refunded_minor']),
    }));
  }
}
