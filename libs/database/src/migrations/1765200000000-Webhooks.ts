import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Merchant webhooks (issue 11): `events` (one row per change a merchant acts on, with the exact body
 * delivered every time) and `event_deliveries` (one per event and endpoint, claimed by publishers with
 * FOR UPDATE SKIP LOCKED and a lease).
 *
 * The old `outbox_events` rows were written but never delivered to anyone. They are kept as history in
 * `events` (their old payload under `data.outbox`, `payment.duplicate` renamed `payment.second`) with
 * no delivery, so the upgrade sends nothing weeks late; the old table is dropped.
 */
export class Webhooks1765200000000 implements MigrationInterface {
  name = 'Webhooks1765200000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE events (
        id          varchar(40)  PRIMARY KEY,
        -- Insertion order, for keyset pagination (ids are random).
        seq         bigserial    NOT NULL,
        type        varchar(32)  NOT NULL,
        order_id    varchar(32)  NOT NULL,
        -- The JSON body exactly as delivered on every try and every resend.
        body        text         NOT NULL,
        created_at  timestamptz  NOT NULL DEFAULT now(),
        CONSTRAINT uq_events_seq UNIQUE (seq)
      )`);
    await q.query(`CREATE INDEX ix_events_order ON events (order_id, seq)`);
    await q.query(`CREATE INDEX ix_events_created ON events (created_at)`);

    await q.query(`
      CREATE TABLE event_deliveries (
        id              bigserial    PRIMARY KEY,
        event_id        varchar(40)  NOT NULL REFERENCES events (id) ON DELETE CASCADE,
        endpoint        varchar(1024) NOT NULL,
        status          varchar(16)  NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
        -- Every try counted (also one a crashed publisher started); the claim's fencing token.
        attempts        integer      NOT NULL DEFAULT 0,
        -- Tries since the delivery was (re)started: the index into the retry schedule.
        backoff_step    integer      NOT NULL DEFAULT 0,
        next_attempt_at timestamptz  NOT NULL DEFAULT now(),
        -- Set while a publisher holds the delivery; a crashed publisher's claim comes back after it.
        lease_until     timestamptz,
        give_up_at      timestamptz  NOT NULL,
        last_status_code integer,
        last_error      varchar(256),
        last_attempt_at timestamptz,
        delivered_at    timestamptz,
        created_at      timestamptz  NOT NULL DEFAULT now(),
        CONSTRAINT uq_deliveries_event_endpoint UNIQUE (event_id, endpoint)
      )`);
    await q.query(`CREATE INDEX ix_deliveries_due ON event_deliveries (next_attempt_at) WHERE status = 'pending'`);
    // The claim takes the oldest due deliveries of each endpoint (per-endpoint slots).
    await q.query(
      `CREATE INDEX ix_deliveries_endpoint_due ON event_deliveries (endpoint, next_attempt_at, id) WHERE status = 'pending'`,
    );

    await q.query(`
      INSERT INTO events (id, type, order_id, body, created_at)
      SELECT 'evt_outbox_' || o.id,
             CASE o.topic WHEN 'payment.duplicate' THEN 'payment.second' ELSE o.topic END,
             o.order_id,
             json_build_object(
               'id', 'evt_outbox_' || o.id,
               'type', CASE o.topic WHEN 'payment.duplicate' THEN 'payment.second' ELSE o.topic END,
               'createdAt', to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
               'data', json_build_object('outbox', o.payload))::text,
             o.created_at
        FROM outbox_events o
       ORDER BY o.id`);
    await q.query(`DROP TABLE outbox_events`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE outbox_events (
        id              bigserial PRIMARY KEY,
        topic           varchar(64)  NOT NULL,
        order_id        varchar(32)  NOT NULL,
        payload         jsonb        NOT NULL,
        created_at      timestamptz  NOT NULL DEFAULT now(),
        published_at    timestamptz,
        attempts        integer      NOT NULL DEFAULT 0
      )`);
    await q.query(`CREATE INDEX ix_outbox_unpublished ON outbox_events (id) WHERE published_at IS NULL`);
    await q.query(`
      INSERT INTO outbox_events (topic, order_id, payload, created_at, published_at)
      SELECT CASE type WHEN 'payment.second' THEN 'payment.duplicate' ELSE type END, order_id,
             COALESCE((body::jsonb) -> 'data' -> 'outbox', (body::jsonb) -> 'data'), created_at, created_at
        FROM events ORDER BY seq`);
    await q.query(`DROP TABLE event_deliveries`);
    await q.query(`DROP TABLE events`);
  }
}
