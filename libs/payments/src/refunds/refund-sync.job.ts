import { Injectable, Logger } from '@nestjs/common';
import { JobStats } from '../jobs/job-stats.js';
import { RefundService } from './refund.service.js';
import { RefundStore } from './refund-store.js';
import { OrderStore } from '../order-store.js';

export interface RefundSyncOptions {
  readonly batchSize?: number;
  readonly leaseSeconds?: number;
  /** Refunds worked on at once. */
  readonly concurrency?: number;
  /** Stops between batches (shutdown). */
  readonly signal?: AbortSignal;
}

export interface RefundSyncResult {
  claimed: number;
  succeeded: number;
  failed: number;
  pending: number;
  errors: number;
}

/**
 * Settles pending refunds (issue 10): a refund nobody has sent yet (its process died) is sent, one the
 * channel is still working on is asked about on a backoff (1, 2, 5, 10, 30 min after its creation, then
 * every 30 min) until it is `success` or `failed`. Claims use FOR UPDATE SKIP LOCKED and a committed
 * lease, like the order sync, so any number of processes share the work and a crashed one's claims
 * come back. It never fails a refund by itself: only the channel's definite answer does.
 */
@Injectable()
export class RefundSyncJob {
  private readonly logger = new Logger('RefundSync');

  constructor(
    private readonly store: RefundStore,
    private readonly orders: OrderStore,
    private readonly refunds: RefundService,
    private readonly stats: JobStats,
  ) {}

  async syncOnce(opts: RefundSyncOptions = {}): Promise<RefundSyncResult> {
    const result: RefundSyncResult = { claimed: 0, succeeded: 0, failed: 0, pending: 0, errors: 0 };
    this.stats.inc('refund_sync_runs');
    const take = Math.min(opts.batchSize ?? 100, opts.concurrency ?? 8);
    const passStart = await this.orders.dbNow();
    for (;;) {
      if (opts.signal?.aborted) break;
      const due = await this.store.claimDue(take, opts.leaseSeconds ?? 120, passStart);
      if (due.length === 0) break;
      result.claimed += due.length;
      await Promise.all(
        due.map(async (refund) => {
          try {
            const after = await this.refunds.send(refund);
            if (after.status === 'success') result.succeeded++;
            else if (after.status === 'failed') result.failed++;
            else result.pending++;
          } catch (err) {
            result.errors++;
            this.logger.warn(`refund ${refund.refundId}: ${(err as Error).message}`);
          }
        }),
      );
      if (due.length < take) break;
    }
    this.stats.inc('refunds_settled', result.succeeded + result.failed);
    return result;
  }
}
