import { Injectable, Logger } from '@nestjs/common';
import { Clock, PayError } from '#common';
import { OrderStore, type AttemptRecord } from '../order-store.js';
import { PayService } from '../pay.service.js';
import { JobStats } from './job-stats.js';
import { PaidSignal } from '../paid-signal.js';
import { SYNC_SCHEDULE_MS, syncOffsetMs } from './backoff.js';

export interface SyncResult {
  claimed: number;
  paid: number;
  closed: number;
  failures: number;
}

export interface SyncOptions {
  readonly batchSize?: number;
  readonly leaseSeconds?: number;
  /** Attempts queried at once. */
  readonly concurrency?: number;
  /** Stops between batches (shutdown). */
  readonly signal?: AbortSignal;
  /** Query times after an attempt's creation (tests shorten them). */
  readonly scheduleMs?: readonly number[];
}

/**
 * Stuck-attempt sync (issue 5): an open attempt whose notify has not come is queried on a backoff
 * schedule after its creation (1, 2, 5, 10, 30 min, then every 30 min) until it is final or its order
 * has expired (the timeout closer takes it from there). An open attempt of an order that is no longer
 * `wait` (paid through another channel, cancelled, timed out) is closed at its channel; a payment found
 * there is recorded, never lost.
 */
@Injectable()
export class OrderSyncJob {
  private readonly logger = new Logger('OrderSync');

  constructor(
    private readonly store: OrderStore,
    private readonly pay: PayService,
    private readonly clock: Clock,
    private readonly stats: JobStats,
    paid: PaidSignal,
  ) {
    paid.on((orderPk) => this.closeOthersNow(orderPk));
  }

  async syncOnce(opts: SyncOptions = {}): Promise<SyncResult> {
    const result: SyncResult = { claimed: 0, paid: 0, closed: 0, failures: 0 };
    this.stats.inc('sync_runs');
    const schedule = opts.scheduleMs ?? SYNC_SCHEDULE_MS;
    // Claim only what is worked on at once, so no lease outlives the work on its attempt.
    const take = Math.min(opts.batchSize ?? 100, opts.concurrency ?? 8);
    const passStart = await this.store.dbNow();
    for (;;) {
      if (opts.signal?.aborted) break;
      const attempts = await this.store.claimDueAttempts(take, opts.leaseSeconds ?? 120, passStart);
      if (attempts.length === 0) break;
      await this.work(attempts, schedule, result);
      if (attempts.length < take) break;
    }
    return result;
  }

  /**
   * Right after an order was paid (called after the commit, in the process that recorded the payment):
   * claims the order's other attempts, which that transaction made due, and closes them at their
   * channels now. If this process dies first, any process's next syncOnce finds them due.
   */
  async closeOthersNow(orderPk: string, opts: { leaseSeconds?: number } = {}): Promise<SyncResult> {
    const result: SyncResult = { claimed: 0, paid: 0, closed: 0, failures: 0 };
    const attempts = await this.store.claimDueAttempts(32, opts.leaseSeconds ?? 120, await this.store.dbNow(), orderPk);
    if (attempts.length > 0) await this.work(attempts, SYNC_SCHEDULE_MS, result);
    return result;
  }

  private async work(attempts: AttemptRecord[], schedule: readonly number[], result: SyncResult): Promise<void> {
    result.claimed += attempts.length;
    this.stats.inc('sync_attempts_claimed', attempts.length);
    await Promise.all(
      attempts.map(async (attempt) => {
        try {
          const outcome = await this.syncOne(attempt, schedule);
          if (outcome === 'paid') result.paid++;
          if (outcome === 'closed') result.closed++;
        } catch (err) {
          result.failures++;
          this.stats.inc('sync_channel_failures');
          const why =
            err instanceof PayError ? `${err.code} ${JSON.stringify(err.detail ?? {})}` : (err as Error).message;
          this.logger.warn(`sync of ${attempt.channel} attempt for ${attempt.orderId} failed: ${why}`);
          await this.reschedule(attempt, schedule);
        }
      }),
    );
  }

  private async syncOne(attempt: AttemptRecord, schedule: readonly number[]): Promise<'paid' | 'closed' | 'pending'> {
    const order = await this.store.findOrderByPk(attempt.orderPk);
    if (!order) throw new Error(`attempt ${attempt.id} has no order`);
    if (attempt.status !== 'open') {
      // The last look at a trade that did not exist when it was closed (see PayService.closeAttempt).
      const applied = await this.pay.syncAttempt(attempt);
      await this.store.stopSync(attempt.id);
      if (applied.kind === 'paid' || applied.kind === 'second_payment' || applied.kind === 'late_payment') {
        this.stats.inc('sync_payments_found');
        this.logger.warn(
          `order ${attempt.orderId}: a trade closed before it existed was paid later on ${attempt.channel}`,
        );
        return 'paid';
      }
      return 'closed';
    }
    if (order.status !== 'wait') {
      const outcome = await this.pay.closeAttempt(attempt);
      if (outcome === 'pending') await this.reschedule(attempt, schedule);
      if (outcome === 'paid') this.stats.inc('sync_payments_found');
      if (outcome === 'closed') this.stats.inc('sync_attempts_closed');
      return outcome;
    }
    const applied = await this.pay.syncAttempt(attempt);
    if (applied.kind === 'paid' || applied.kind === 'second_payment' || applied.kind === 'late_payment') {
      this.stats.inc('sync_payments_found');
      this.logger.warn(
        `order ${attempt.orderId}: payment found by query on ${attempt.channel} (its notify was lost or late)`,
      );
      return 'paid';
    }
    if (applied.kind === 'attempt_closed' || applied.kind === 'attempt_failed' || applied.kind === 'already_paid')
      return 'closed';
    if (order.expireTime.getTime() > this.clock.now().getTime()) await this.reschedule(attempt, schedule);
    else await this.store.stopSync(attempt.id); // expired: the timeout closer takes it from here
    return 'pending';
  }

  /**
   * The next query: the schedule's next offset from the attempt's creation (its sync_count-th, as the
   * claim counted this one), but not sooner than half the first step from now, so a late run does not
   * query back to back.
   */
  private async reschedule(attempt: AttemptRecord, schedule: readonly number[]): Promise<void> {
    await this.store.scheduleSync(
      attempt.id,
      syncOffsetMs(attempt.syncCount, schedule),
      (schedule[0] ?? SYNC_SCHEDULE_MS[0] ?? 60_000) / 2,
    );
  }
}
