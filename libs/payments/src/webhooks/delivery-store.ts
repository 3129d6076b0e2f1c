import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource, EntityManager } from 'typeorm';
import { type Row, affectedOf, date, rowsOf } from '../sql-rows.js';

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface EventRecord {
  readonly id: string;
  readonly seq: string;
  readonly type: string;
  readonly orderId: string;
  readonly body: string;
  readonly createdAt: Date;
}

export interface DeliveryRecord {
  readonly id: string;
  readonly eventId: string;
  readonly endpoint: string;
  readonly status: DeliveryStatus;
  readonly attempts: number;
  readonly nextAttemptAt: Date | null;
  readonly lastStatusCode: number | null;
  readonly lastError: string | null;
  readonly lastAttemptAt: Date | null;
  readonly deliveredAt: Date | null;
}

/** A delivery held by one publisher: `attempts` is the fencing token its outcome is written with. */
export interface ClaimedDelivery {
  readonly id: string;
  readonly eventId: string;
  readonly endpoint: string;
  readonly body: string;
  readonly attempts: number;
  readonly backoffStep: number;
}

function toEvent(r: Row): EventRecord {
  return {
    id: String(r['id']),
    seq: String(r['seq']),
    type: String(r['type']),
    orderId: String(r['order_id']),
    body: String(r['body']),
    createdAt: date(r['created_at']) as Date,
  };
}

function toDelivery(r: Row): DeliveryRecord {
  const status = r['status'] as DeliveryStatus;
  return {
    id: String(r['id']),
    eventId: String(r['event_id']),
    endpoint: String(r['endpoint']),
    status,
    attempts: Number(r['attempts']),
    nextAttemptAt: status === 'pending' ? date(r['next_attempt_at']) : null,
    lastStatusCode: r['last_status_code'] === null ? null : Number(r['last_status_code']),
    lastError: (r['last_error'] as string | null) ?? null,
    lastAttemptAt: date(r['last_attempt_at']),
    deliveredAt: date(r['delivered_at']),
  };
}

export interface EventFilter {
  readonly orderId?: string;
  readonly type?: string;
  /** Events older (lower seq) than this one: the keyset cursor. */
  readonly beforeSeq?: string;
  readonly limit: number;
}

/**
 * All SQL of events and their deliveries. A delivery is claimed with FOR UPDATE SKIP LOCKED plus a
 * committed lease (`lease_until`), and its outcome is a compare-and-set on the claim's `attempts`, so a
 * publisher whose lease ran out can never overwrite what the next holder recorded.
 */
@Injectable()
export class DeliveryStore {
  constructor(@InjectDataSource() readonly ds: DataSource) {}

  /**
   * The event and one pending delivery, due now, per endpoint (in the order given; an endpoint listed
   * twice gets one), in one statement: one round trip, and the deliveries exist exactly when the event does.
   */
  async insertEvent(
    e: { id: string; type: string; orderId: string; body: string; createdAt: Date },
    endpoints: readonly string[],
    retryForMs: number,
    em: EntityManager,
  ): Promise<void> {
    await em.query(
      `WITH event AS (
         INSERT INTO events (id, type, order_id, body, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id)
       INSERT INTO event_deliveries (event_id, endpoint, status, give_up_at)
       SELECT event.id, t.e, 'pending', now() + make_interval(secs => $7::float8 / 1000)
         FROM event CROSS JOIN unnest($6::varchar[]) WITH ORDINALITY AS t(e, n)
        ORDER BY t.n
       ON CONFLICT (event_id, endpoint) DO NOTHING`,
      [e.id, e.type, e.orderId, e.body, e.createdAt, [...endpoints], retryForMs],
    );
  }

  /** One pending delivery per endpoint, due now; an endpoint listed twice gets one. */
  async insertDeliveries(
    eventId: string,
    endpoints: readonly string[],
    retryForMs: number,
    em: EntityManager,
  ): Promise<void> {
    if (endpoints.length === 0) return;
    await em.query(
      `INSERT INTO event_deliveries (event_id, endpoint, status, give_up_at)
       SELECT $1, e, 'pending', now() + make_interval(secs => $3::float8 / 1000) FROM unnest($2::varchar[]) AS t(e)
       ON CONFLICT (event_id, endpoint) DO NOTHING`,
      [eventId, [...endpoints], retryForMs],
    );
  }

  /** The order's notify_url (a resend's first endpoint; the event writer gets it from its caller). */
  async notifyUrlOf(orderId: string): Promise<string | null> {
    const rows = rowsOf(await this.ds.query(`SELECT notify_url FROM orders WHERE order_id = $1`, [orderId]));
    return (rows[0]?.['notify_url'] as string | null | undefined) ?? null;
  }

  /**
   * Claims up to `limit` due deliveries, at most `perEndpoint` per endpoint minus what this process
   * already holds of that endpoint (`held`), oldest first. Rows another claimer holds are skipped.
   */
  async claimDue(
    limit: number,
    perEndpoint: number,
    held: ReadonlyMap<string, number>,
    leaseSeconds: number,
  ): Promise<ClaimedDelivery[]> {
    const heldEndpoints = [...held.keys()];
    const heldCounts = heldEndpoints.map((e) => held.get(e) ?? 0);
    const rows = rowsOf(
      await this.ds.query(
        `WITH endpoints AS MATERIALIZED (
           SELECT DISTINCT endpoint FROM event_deliveries
            WHERE status = 'pending' AND next_attempt_at <= now() AND (lease_until IS NULL OR lease_until <= now())
         ), room AS MATERIALIZED (
           SELECT e.endpoint, $2 - COALESCE(h.n, 0) AS n
             FROM endpoints e LEFT JOIN unnest($3::varchar[], $4::int[]) AS h(endpoint, n) ON h.endpoint = e.endpoint
            WHERE $2 - COALESCE(h.n, 0) > 0
         ), candidates AS MATERIALIZED (
           -- Twice the room of each endpoint, so that rows another publisher is claiming right now
           -- (skipped below) do not leave this one empty-handed.
           SELECT c.id FROM room r
            CROSS JOIN LATERAL (
              SELECT id FROM event_deliveries d
               WHERE d.endpoint = r.endpoint AND d.status = 'pending' AND d.next_attempt_at <= now()
                 AND (d.lease_until IS NULL OR d.lease_until <= now())
               ORDER BY d.next_attempt_at, d.id
               LIMIT r.n * 2) c
         ), locked AS MATERIALIZED (
           SELECT d.id, d.endpoint, d.next_attempt_at FROM event_deliveries d
            WHERE d.id IN (SELECT id FROM candidates)
              AND d.status = 'pending' AND (d.lease_until IS NULL OR d.lease_until <= now())
            FOR UPDATE SKIP LOCKED
         ), picked AS (
           SELECT l.id FROM (
             SELECT id, endpoint, next_attempt_at,
                    row_number() OVER (PARTITION BY endpoint ORDER BY next_attempt_at, id) AS rn FROM locked) l
             JOIN room r ON r.endpoint = l.endpoint
            WHERE l.rn <= r.n
            ORDER BY l.next_attempt_at, l.id
            LIMIT $1
         )
         UPDATE event_deliveries d
            SET lease_until = now() + make_interval(secs => $5), attempts = d.attempts + 1, last_attempt_at = now()
           FROM picked, events e
          WHERE d.id = picked.id AND e.id = d.event_id
          RETURNING d.id, d.event_id, d.endpoint, d.attempts, d.backoff_step, e.body`,
        [limit, perEndpoint, heldEndpoints, heldCounts, leaseSeconds],
      ),
    );
    return rows.map((r) => ({
      id: String(r['id']),
      eventId: String(r['event_id']),
      endpoint: String(r['endpoint']),
      body: String(r['body']),
      attempts: Number(r['attempts']),
      backoffStep: Number(r['backoff_step']),
    }));
  }

  /** A 2xx: delivered. False when the claim was lost (another publisher holds the delivery now). */
  async markDelivered(d: ClaimedDelivery, status: number): Promise<boolean> {
    const n = affectedOf(
      await this.ds.query(
        `UPDATE event_deliveries
            SET status = 'delivered', delivered_at = now(), lease_until = NULL, last_status_code = $3, last_error = NULL
          WHERE id = $1 AND attempts = $2 AND status = 'pending'`,
        [d.id, d.attempts, status],
      ),
    );
    return n === 1;
  }

  /**
   * A failed try: retried `delayMs` from now, or `failed` once its retry window is over. Answers the new
   * status, or undefined when the claim was lost.
   */
  async markFailedTry(
    d: ClaimedDelivery,
    status: number | null,
    error: string,
    delayMs: number,
  ): Promise<DeliveryStatus | undefined> {
    const rows = rowsOf(
      await this.ds.query(
        `UPDATE event_deliveries
            SET status = CASE WHEN now() >= give_up_at THEN 'failed' ELSE 'pending' END,
                next_attempt_at = now() + make_interval(secs => $5::float8 / 1000),
                backoff_step = backoff_step + 1, lease_until = NULL, last_status_code = $3, last_error = $4
          WHERE id = $1 AND attempts = $2 AND status = 'pending'
          RETURNING status`,
        [d.id, d.attempts, status, error.slice(0, 256), delayMs],
      ),
    );
    return rows[0]?.['status'] as DeliveryStatus | undefined;
  }

  async findEvent(id: string): Promise<EventRecord | undefined> {
    const rows = rowsOf(await this.ds.query(`SELECT * FROM events WHERE id = $1`, [id]));
    return rows[0] ? toEvent(rows[0]) : undefined;
  }

  async deliveriesOf(eventIds: readonly string[]): Promise<DeliveryRecord[]> {
    if (eventIds.length === 0) return [];
    const rows = rowsOf(
      await this.ds.query(`SELECT * FROM event_deliveries WHERE event_id = ANY($1::varchar[]) ORDER BY id`, [
        [...eventIds],
      ]),
    );
    return rows.map(toDelivery);
  }

  /** Newest first, keyset-paginated on seq. */
  async listEvents(f: EventFilter): Promise<EventRecord[]> {
    const rows = rowsOf(
      await this.ds.query(
        `SELECT * FROM events
          WHERE ($1::varchar IS NULL OR order_id = $1)
            AND ($2::varchar IS NULL OR type = $2)
            AND ($3::bigint IS NULL OR seq < $3::bigint)
          ORDER BY seq DESC
          LIMIT $4`,
        [f.orderId ?? null, f.type ?? null, f.beforeSeq ?? null, f.limit],
      ),
    );
    return rows.map(toEvent);
  }

  /**
   * Delivers the event again now to `endpoints` (its existing deliveries and any new ones), with a fresh
   * retry window. A delivery being sent right now keeps its claim; it is due again as soon as it ends.
   */
  async resend(
    eventId: string,
    endpoints: readonly string[],
    retryForMs: number,
    audit?: (em: EntityManager) => Promise<void>,
  ): Promise<void> {
    await this.ds.transaction('READ COMMITTED', async (em) => {
      await em.query(
        `UPDATE event_deliveries
            SET status = 'pending', next_attempt_at = now(), backoff_step = 0,
                give_up_at = now() + make_interval(secs => $2::float8 / 1000)
          WHERE event_id = $1`,
        [eventId, retryForMs],
      );
      await this.insertDeliveries(eventId, endpoints, retryForMs, em);
      if (audit) await audit(em);
    });
  }

  /** Gauges: pending deliveries and the age in seconds of the oldest event still pending somewhere. */
  async backlog(): Promise<{ pending: number; oldestPendingSeconds: number }> {
    const rows = rowsOf(
      await this.ds.query(
        `SELECT count(*)::int AS pending,
                COALESCE(EXTRACT(EPOCH FROM now() - min(e.created_at)), 0)::float8 AS oldest
           FROM event_deliveries d JOIN events e ON e.id = d.event_id
          WHERE d.status = 'pending'`,
      ),
    );
    return { pending: Number(rows[0]?.['pending'] ?? 0), oldestPendingSeconds: Number(rows[0]?.['oldest'] ?? 0) };
  }
}
