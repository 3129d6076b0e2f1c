import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '#config';
import { OrderStore } from '../order-store.js';
import { affectedOf } from '../sql-rows.js';

const BATCH = 1000;

/**
 * Hourly cleanup of rows whose time is over: Idempotency-Key answers past their TTL, and refused
 * notifies (anyone can send those) after 30 days. Accepted notifies are kept: they are the evidence.
 */
@Injectable()
export class HousekeepingJob {
  constructor(
    private readonly store: OrderStore,
    @Inject(APP_CONFIG) private readonly cfg: AppConfig,
  ) {}

  /**
   * Deletes events older than EVENT_RETENTION_DAYS with no delivery still pending (delivered, or failed
   * and visible for the whole retention), with their deliveries; answers how many events went.
   */
  deleteOldEvents(): Promise<number> {
    const days = Math.trunc(this.cfg.eventRetentionDays);
    return this.deleteInBatches(
      `DELETE FROM events WHERE id IN (
         SELECT e.id FROM events e
          WHERE e.created_at < now() - interval '${days} days'
            AND NOT EXISTS (SELECT 1 FROM event_deliveries d WHERE d.event_id = e.id AND d.status = 'pending')
          ORDER BY e.created_at
          LIMIT ${BATCH})`,
    );
  }

  /** Deletes idempotency keys past their expiry; answers how many went. */
  deleteExpiredIdempotencyKeys(): Promise<number> {
    return this.deleteInBatches(
      `DELETE FROM idempotency_keys WHERE ctid IN (
         SELECT ctid FROM idempotency_keys WHERE expires_at < now() LIMIT ${BATCH})`,
    );
  }

  /** Deletes refused notify_inbox rows older than 30 days; answers how many went. */
  deleteOldRefusedNotifies(): Promise<number> {
    return this.deleteInBatches(
      `DELETE FROM notify_inbox WHERE id IN (
         SELECT id FROM notify_inbox
          WHERE verdict IN ('refused', 'unknown_instance', 'unknown_order', 'amount_mismatch')
            AND last_received_at < now() - interval '30 days'
          LIMIT ${BATCH})`,
    );
  }

  /** Runs a bounded DELETE until it deletes less than a batch, so no statement locks a large range. */
  private async deleteInBatches(sql: string): Promise<number> {
    let total = 0;
    for (;;) {
      const n = affectedOf(await this.store.ds.query<unknown>(sql));
      total += n;
      if (n < BATCH) return total;
    }
  }
}
