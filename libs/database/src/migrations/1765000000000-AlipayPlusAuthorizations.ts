import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Alipay+ customers' authorizations (access and refresh tokens), kept per channel instance and
 * customer so that a pay request with a customerId works on every api process and after a restart.
 */
export class AlipayPlusAuthorizations1765000000000 implements MigrationInterface {
  name = 'AlipayPlusAuthorizations1765000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE alipayplus_authorizations (
        instance                 varchar(64)  NOT NULL,
        customer_id              varchar(128) NOT NULL,
        access_token             text         NOT NULL,
        access_token_expires_at  timestamptz,
        refresh_token            text,
        refresh_token_expires_at timestamptz,
        created_at               timestamptz  NOT NULL DEFAULT now(),
        updated_at               timestamptz  NOT NULL DEFAULT now(),
        PRIMARY KEY (instance, customer_id)
      )`);
    await q.query(
      `CREATE INDEX alipayplus_authorizations_expiry ON alipayplus_authorizations
         (COALESCE(refresh_token_expires_at, access_token_expires_at))`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE alipayplus_authorizations`);
  }
}
