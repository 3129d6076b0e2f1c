import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Issue 9, items 6 and 7: a claim token on Idempotency-Keys (every write and delete of a key's row is a
 * compare-and-set on it, so a request whose stale claim was taken over cannot touch the new owner's row),
 * and fixed-window rate-limit counters shared by every instance.
 */
export class ClaimTokensAndRateLimits1765000001000 implements MigrationInterface {
  name = 'ClaimTokensAndRateLimits1765000001000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE idempotency_keys ADD COLUMN claim_token uuid`);
    // UNLOGGED: a counter lost in a crash only forgives one minute of requests; no WAL per API call.
    await q.query(`
      CREATE UNLOGGED TABLE rate_limit_counters (
        scope        varchar(16)  NOT NULL,
        subject      varchar(64)  NOT NULL,
        window_start timestamptz  NOT NULL,
        n            integer      NOT NULL,
        PRIMARY KEY (scope, subject, window_start)
      )`);
    await q.query(`CREATE INDEX ix_rate_limit_window ON rate_limit_counters (window_start)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE rate_limit_counters`);
    await q.query(`ALTER TABLE idempotency_keys DROP COLUMN claim_token`);
  }
}
