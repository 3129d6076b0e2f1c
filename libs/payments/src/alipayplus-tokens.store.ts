import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { Secret } from '#common';
import type { AlipayPlusAuthorization, AlipayPlusTokenStore } from '#channels';

interface Row {
  customer_id: string;
  access_token: string;
  access_token_expires_at: Date | null;
  refresh_token: string | null;
  refresh_token_expires_at: Date | null;
}

/** How often one process drops authorizations whose tokens have all expired. */
const PURGE_EVERY_MS = 3600_000;

/**
 * Alipay+ authorizations in PostgreSQL (or the embedded database), shared by every api process and
 * kept across restarts. Tokens leave this class only inside Secret. Stored as text: see
 * docs/payments.md ("Alipay+ authorizations") for why they are not encrypted at rest.
 */
@Injectable()
export class PgAlipayPlusTokenStore implements AlipayPlusTokenStore {
  private lastPurge = 0;

  constructor(@InjectDataSource() private readonly ds: DataSource) {}

  async get(instance: string, customerId: string): Promise<AlipayPlusAuthorization | undefined> {
    const rows = await this.ds.query<Row[]>(
      `SELECT customer_id, access_token, access_token_expires_at, refresh_token, refresh_token_expires_at
         FROM alipayplus_authorizations WHERE instance = $1 AND customer_id = $2`,
      [instance, customerId],
    );
    const row = rows[0];
    if (!row) return undefined;
    return {
      customerId: row.customer_id,
      accessToken: new Secret(row.access_token),
      ...(row.access_token_expires_at ? { accessTokenExpiresAt: new Date(row.access_token_expires_at) } : {}),
      ...(row.refresh_token !== null ? { refreshToken: new Secret(row.refresh_token) } : {}),
      ...(row.refresh_token_expires_at ? { refreshTokenExpiresAt: new Date(row.refresh_token_expires_at) } : {}),
    };
  }

  async put(instance: string, auth: AlipayPlusAuthorization): Promise<void> {
    await this.ds.query(
      `INSERT INTO alipayplus_authorizations
         (instance, customer_id, access_token, access_token_expires_at, refresh_token, refresh_token_expires_at)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (instance, customer_id) DO UPDATE
         SET access_token = EXCLUDED.access_token, access_token_expires_at = EXCLUDED.access_token_expires_at,
             refresh_token = EXCLUDED.refresh_token, refresh_token_expires_at = EXCLUDED.refresh_token_expires_at,
             updated_at = now()`,
      [
        instance,
        auth.customerId,
        auth.accessToken.reveal(),
        auth.accessTokenExpiresAt ?? null,
        auth.refreshToken?.reveal() ?? null,
        auth.refreshTokenExpiresAt ?? null,
      ],
    );
    await this.purgeExpired();
  }

  async delete(instance: string, customerId: string): Promise<void> {
    await this.ds.query(`DELETE FROM alipayplus_authorizations WHERE instance = $1 AND customer_id = $2`, [
      instance,
      customerId,
    ]);
  }

  /** Authorizations that can no longer be used or refreshed (a day past expiry) are dropped. */
  private async purgeExpired(): Promise<void> {
    const now = Date.now();
    if (now - this.lastPurge < PURGE_EVERY_MS) return;
    this.lastPurge = now;
    await this.ds.query(
      `DELETE FROM alipayplus_authorizations
        WHERE COALESCE(refresh_token_expires_at, access_token_expires_at) < now() - interval '1 day'
          AND (refresh_token IS NULL OR refresh_token_expires_at IS NOT NULL)`,
    );
  }
}
