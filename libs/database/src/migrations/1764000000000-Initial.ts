import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The first schema: orders, their channel attempts, the notify inbox, idempotency keys and the outbox
 * (written in the same transaction as each state change; its publisher comes later). Plain SQL that
 * PostgreSQL 15 accepts (PGlite is 18; nothing newer than 15 is used).
 */
export class Initial1764000000000 implements MigrationInterface {
  name = 'Initial1764000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE orders (
        id              uuid PRIMARY KEY,
        order_id        varchar(32)  NOT NULL,
        subject         varchar(256) NOT NULL,
        amount_minor    bigint       NOT NULL CHECK (amount_minor > 0),
        currency        char(3)      NOT NULL,
        status          varchar(16)  NOT NULL CHECK (status IN ('wait', 'success', 'close', 'timeout')),
        channel         varchar(64),
        pay_type        varchar(32),
        channel_trade_no varchar(64),
        paid_attempt_id uuid,
        pay_time        timestamptz,
        expire_time     timestamptz  NOT NULL,
        notify_url      varchar(1024),
        metadata        jsonb,
        refunded_minor  bigint       NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0 AND refunded_minor <= amount_minor),
        version         integer      NOT NULL DEFAULT 1,
        closed_reason   varchar(32),
        -- The expiry sweep's claim: a lease while one process works on the order, then its backoff.
        sweep_after     timestamptz,
        sweep_attempts  integer      NOT NULL DEFAULT 0,
        created_at      timestamptz  NOT NULL DEFAULT now(),
        updated_at      timestamptz  NOT NULL DEFAULT now(),
        CONSTRAINT uq_orders_order_id UNIQUE (order_id)
      )`);
    // The expiry sweep reads only open orders whose time has come: a partial index keeps it off paid rows.
    await q.query(`CREATE INDEX ix_orders_wait_expire ON orders (expire_time) WHERE status = 'wait'`);
    await q.query(`CREATE INDEX ix_orders_created_at ON orders (created_at)`);

    await q.query(`
      CREATE TABLE payment_attempts (
        id              uuid PRIMARY KEY,
        order_pk        uuid         NOT NULL REFERENCES orders (id),
        order_id        varchar(32)  NOT NULL,
        channel         varchar(64)  NOT NULL,
        channel_type    varchar(32)  NOT NULL,
        pay_type        varchar(32)  NOT NULL,
        out_trade_no    varchar(64)  NOT NULL,
        amount_minor    bigint       NOT NULL CHECK (amount_minor > 0),
        currency        char(3)      NOT NULL,
        status          varchar(16)  NOT NULL CHECK (status IN ('open', 'paid', 'closed', 'failed')),
        channel_trade_no varchar(64),
        pay_url         text,
        paid_at         timestamptz,
        closed_at       timestamptz,
        -- When the order sync next asks the channel (open attempts; closed ones whose trade did not
        -- exist yet get one last look after the channel-side expiry).
        next_sync_at    timestamptz,
        -- Set while a request is creating this attempt's trade at the channel: nobody else may reuse
        -- or close the attempt until it is written back (or the claim runs out).
        creating_until  timestamptz,
        sync_count      integer      NOT NULL DEFAULT 0,
        created_at      timestamptz  NOT NULL DEFAULT now(),
        updated_at      timestamptz  NOT NULL DEFAULT now(),
        CONSTRAINT uq_attempts_channel_out_trade_no UNIQUE (channel, out_trade_no)
      )`);
    // One live attempt per order and channel; a failed or closed one may be followed by a new one
    // (Alipay+ gives each attempt its own paymentRequestId; Alipay and WeChat reuse the orderId, so
    // uq_attempts_channel_out_trade_no stops a second one there).
    await q.query(
      `CREATE UNIQUE INDEX uq_attempts_order_channel_open ON payment_attempts (order_pk, channel) WHERE status = 'open'`,
    );
    await q.query(`CREATE INDEX ix_attempts_order ON payment_attempts (order_pk)`);
    await q.query(`CREATE INDEX ix_attempts_sync ON payment_attempts (next_sync_at) WHERE next_sync_at IS NOT NULL`);

    await q.query(`
      CREATE TABLE notify_inbox (
        id              bigserial PRIMARY KEY,
        channel_type    varchar(32)  NOT NULL,
        channel         varchar(64),
        payload_sha256  char(64)     NOT NULL,
        headers         jsonb        NOT NULL,
        body            text         NOT NULL,
        verdict         varchar(32)  NOT NULL,
        verdict_detail  varchar(256),
        order_id        varchar(32),
        out_trade_no    varchar(64),
        receive_count   integer      NOT NULL DEFAULT 1,
        first_received_at timestamptz NOT NULL DEFAULT now(),
        last_received_at  timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT uq_inbox_payload UNIQUE (channel_type, payload_sha256)
      )`);
    await q.query(`CREATE INDEX ix_inbox_order ON notify_inbox (order_id)`);

    await q.query(`
      CREATE TABLE idempotency_keys (
        principal       varchar(64)  NOT NULL,
        idem_key        varchar(255) NOT NULL,
        request_hash    char(64)     NOT NULL,
        state           varchar(16)  NOT NULL CHECK (state IN ('running', 'done')),
        response_status integer,
        response_body   jsonb,
        created_at      timestamptz  NOT NULL DEFAULT now(),
        expires_at      timestamptz  NOT NULL,
        PRIMARY KEY (principal, idem_key)
      )`);
    await q.query(`CREATE INDEX ix_idem_expires ON idempotency_keys (expires_at)`);

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
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE outbox_events`);
    await q.query(`DROP TABLE idempotency_keys`);
    await q.query(`DROP TABLE notify_inbox`);
    await q.query(`DROP TABLE payment_attempts`);
    await q.query(`DROP TABLE orders`);
  }
}
