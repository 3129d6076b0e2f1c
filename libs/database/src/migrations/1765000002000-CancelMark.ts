import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A cancel that has started marks its order: from then on no attempt is created, reused or handed out
 * for it (issue 9, "a cancel holds"). The pay path checks the mark in the same statement that writes
 * the attempt, under a share lock of the order row.
 */
export class CancelMark1765000002000 implements MigrationInterface {
  name = 'CancelMark1765000002000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE orders ADD COLUMN cancel_requested_at timestamptz`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE orders DROP COLUMN cancel_requested_at`);
  }
}
