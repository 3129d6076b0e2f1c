import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Refunds (issue 10). A refund is of one paid attempt (a payment). Each payment holds what is claimed
 * by refunds in flight or done (`refund_held_minor`) and what has been refunded (`refunded_minor`); the
 * CHECKs make over-refunding impossible whatever the code does, and the hold is taken by a
 * compare-and-set in the transaction that inserts the refund.
 */
export class Refunds1765100000000 implements MigrationInterface {
  name = 'Refunds1765100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE payment_attempts
        ADD COLUMN refund_held_minor bigint NOT NULL DEFAULT 0,
        ADD COLUMN refunded_minor    bigint NOT NULL DEFAULT 0,
        ADD CONSTRAINT ck_attempts_refunds CHECK (
          refunded_minor >= 0 AND refunded_minor <= refund_held_minor AND refund_held_minor <= amount_minor
          AND (refund_held_minor = 0 OR status = 'paid'))`);
    await q.query(`
      CREATE TABLE refunds (
        id                uuid PRIMARY KEY,
        refund_id         varchar(32)  NOT NULL,
        order_pk          uuid         NOT NULL REFERENCES orders (id),
        order_id          varchar(32)  NOT NULL,
        attempt_id        uuid         NOT NULL REFERENCES payment_attempts (id),
        channel           varchar(64)  NOT NULL,
        amount_minor      bigint       NOT NULL CHECK (amount_minor > 0),
        currency          char(3)      NOT NULL,
        reason            varchar(256),
        source            varchar(32)  NOT NULL
                          CHECK (source IN ('api', 'admin', 'auto_second_payment', 'auto_late_payment')),
        status            varchar(16)  NOT NULL CHECK (status IN ('pending', 'success', 'failed')),
        channel_refund_no varchar(64),
        failure_code      varchar(64),
        -- When the refund was first sent to its channel (null: not yet, the sync job sends it).
        submitted_at      timestamptz,
        -- The refund sync's schedule and lease (pending refunds only).
        next_sync_at      timestamptz,
        sync_count        integer      NOT NULL DEFAULT 0,
        created_at        timestamptz  NOT NULL DEFAULT now(),
        updated_at        timestamptz  NOT NULL DEFAULT now(),
        finished_at       timestamptz,
        CONSTRAINT uq_refunds_refund_id UNIQUE (refund_id)
      )`);
    await q.query(`CREATE INDEX ix_refunds_order ON refunds (order_pk, created_at)`);
    await q.query(`CREATE INDEX ix_refunds_sync ON refunds (next_sync_at) WHERE status = 'pending'`);
    // A second or late payment is refunded automatically once, whoever notices it first.
    await q.query(
      `CREATE UNIQUE INDEX uq_refunds_auto ON refunds (attempt_id)
        WHERE source IN ('auto_second_payment', 'auto_late_payment')`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE refunds`);
    await q.query(`ALTER TABLE payment_attempts DROP CONSTRAINT ck_attempts_refunds`);
    await q.query(`ALTER TABLE payment_attempts DROP COLUMN refunded_minor, DROP COLUMN refund_held_minor`);
  }
}
