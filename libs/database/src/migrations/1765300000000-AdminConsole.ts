import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The admin console (issue 12).
 *
 * `audit_log`: one row per action taken through the admin API or page, written in the transaction of the
 * action's effect. A trigger refuses UPDATE, DELETE and TRUNCATE, so no route (and no bug) can rewrite it.
 *
 * Indexes for the order search (newest first, keyset on (created_at, id)), one per filter that narrows
 * a million orders: status, channel, orderId prefix, channel trade numbers (of the order and of every
 * attempt), and, where the server has pg_trgm (PostgreSQL with contrib; not the embedded database), a
 * trigram index for subject substrings. docs/benchmarks.md ("Admin console") has the plans.
 */
export class AdminConsole1765300000000 implements MigrationInterface {
  name = 'AdminConsole1765300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE audit_log (
        id          bigserial    PRIMARY KEY,
        -- The API key's name (API_KEYS name=role:secret) or its label; never the key.
        actor       varchar(64)  NOT NULL,
        role        varchar(16)  NOT NULL,
        action      varchar(32)  NOT NULL,
        order_id    varchar(32),
        -- What the action was about besides the order: a refundId, an event id.
        target      varchar(64),
        -- 'ok' (the action changed something), 'noop' (nothing to change), 'refused' (an error answer).
        outcome     varchar(16)  NOT NULL CHECK (outcome IN ('ok', 'noop', 'refused')),
        before      jsonb,
        after       jsonb,
        request_id  varchar(64)  NOT NULL,
        created_at  timestamptz  NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX ix_audit_actor ON audit_log (actor, id)`);
    await q.query(`CREATE INDEX ix_audit_order ON audit_log (order_id, id)`);
    await q.query(`
      CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
      END $$`);
    await q.query(`
      CREATE TRIGGER tr_audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()`);
    await q.query(`
      CREATE TRIGGER tr_audit_log_no_truncate BEFORE TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()`);

    // Newest first with a unique tie-breaker (ix_orders_created_at has no id): backward index scans.
    // ix_orders_created_at stays (other code may lean on it); the lead may drop it once nothing does.
    await q.query(`CREATE INDEX ix_orders_created_id ON orders (created_at, id)`);
    await q.query(`CREATE INDEX ix_orders_status_created ON orders (status, created_at, id)`);
    await q.query(`CREATE INDEX ix_orders_channel_created ON orders (channel, created_at, id)`);
    // LIKE 'prefix%' under any collation.
    await q.query(`CREATE INDEX ix_orders_order_id_prefix ON orders (order_id varchar_pattern_ops)`);
    await q.query(
      `CREATE INDEX ix_orders_channel_trade_no ON orders (channel_trade_no) WHERE channel_trade_no IS NOT NULL`,
    );
    await q.query(
      `CREATE INDEX ix_attempts_channel_trade_no ON payment_attempts (channel_trade_no) WHERE channel_trade_no IS NOT NULL`,
    );
    // pg_trgm is a trusted extension (PostgreSQL 13+): a database owner may create it. Where it is missing
    // (the embedded database), subject search scans, which is fine at embedded sizes.
    await q.query(`
      DO $$
      BEGIN
        BEGIN
          CREATE EXTENSION IF NOT EXISTS pg_trgm;
        EXCEPTION WHEN OTHERS THEN
          RAISE NOTICE 'pg_trgm unavailable: subject search without an index';
        END;
        IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
          EXECUTE 'CREATE INDEX ix_orders_subject_trgm ON orders USING gin (subject gin_trgm_ops)';
        END IF;
      END $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS ix_orders_subject_trgm`);
    await q.query(`DROP INDEX ix_attempts_channel_trade_no`);
    await q.query(`DROP INDEX ix_orders_channel_trade_no`);
    await q.query(`DROP INDEX ix_orders_order_id_prefix`);
    await q.query(`DROP INDEX ix_orders_channel_created`);
    await q.query(`DROP INDEX ix_orders_status_created`);
    await q.query(`DROP INDEX ix_orders_created_id`);
    await q.query(`DROP TABLE audit_log`);
    await q.query(`DROP FUNCTION audit_log_append_only()`);
  }
}
