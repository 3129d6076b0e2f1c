import { Injectable, Logger } from '@nestjs/common';
import { PayError } from '#common';
import { OrderStore, type AttemptRecord, type OrderRecord } from '../order-store.js';
import { PayService } from '../pay.service.js';
import { toOrderView } from '../order-view.js';
import { EventWriter } from '../webhooks/event-writer.js';
import { JobStats } from './job-stats.js';
import { SWEEP_RETRY_MS, backoffMs } from './backoff.js';

export interface SweepResult {
  claimed: number;
  timedOut: number;
  latePaid: number;
  stuck: number;
}

export interface SweepOptions {
  readonly batchSize?: number;
  /** How long a claim keeps other processes off an order (a crashed sweeper's orders come back after it). */
  readonly leaseSeconds?: number;
  /** Delays before retrying an order whose channel failed (tests shorten them). */
  readonly retryScheduleMs?: readonly number[];
  /** Orders processed at once within a batch. */
  readonly concurrency?: number;
  /** Stops between batches (shutdown): claimed orders are finished, no new ones are claimed. */
  readonly signal?: AbortSignal;
}

/**
 * Closes expired orders on both sides (issue 5). An expired `wait` order is claimed with
 * FOR UPDATE SKIP LOCKED plus a committed lease (`sweep_after`), so any number of processes can sweep
 * one database without two of them working on one order, and no transaction stays open across a
 * channel call. For each open attempt the channel is asked first (a late payment is found, not lost),
 * then closed; only when every attempt is confirmed closed does the order become `timeout`. A channel
 * that fails leaves the order `wait`, retried with backoff and counted as stuck.
 */
@Injectable()
export class TimeoutCloserJob {
  private readonly logger = new Logger('TimeoutCloser');

  constructor(
    private readonly store: OrderStore,
    private readonly pay: PayService,
    private readonly stats: JobStats,
    private readonly events: EventWriter,
  ) {}

  async sweepOnce(opts: SweepOptions = {}): Promise<SweepResult> {
    const batchSize = opts.batchSize ?? 100;
    const result: SweepResult = { claimed: 0, timedOut: 0, latePaid: 0, stuck: 0 };
    this.stats.inc('sweep_runs');
    const passStart = await this.store.dbNow();
    for (;;) {
      if (opts.signal?.aborted) break;
      // Claim no more than are worked on at once: a claimed order waits for no other order's channel
      // calls, so its lease (120 s) outlives the work on it even when channels time out.
      const orders = await this.store.claimExpiredOrders(
        Math.min(batchSize, opts.concurrency ?? 8),
        opts.leaseSeconds ?? 120,
        passStart,
      );
      if (orders.length === 0) break;
      result.claimed += orders.length;
      this.stats.inc('sweep_orders_claimed', orders.length);
      const queue = [...orders];
      const workers = Array.from({ length: Math.min(opts.concurrency ?? 8, queue.length) }, async () => {
        for (let o = queue.shift(); o; o = queue.shift()) {
          const outcome = await this.finishOrder(o, opts.retryScheduleMs ?? SWEEP_RETRY_MS);
          if (outcome === 'timeout') result.timedOut++;
          else if (outcome === 'paid') result.latePaid++;
          else if (outcome === 'stuck') result.stuck++;
        }
      });
      await Promise.all(workers);
      if (orders.length < Math.min(batchSize, opts.concurrency ?? 8)) break;
    }
    if (result.claimed) {
      this.logger.log(
        `sweep: ${result.claimed} expired, ${result.timedOut} timed out, ${result.latePaid} paid late, ${result.stuck} stuck`,
      );
    }
    return result;
  }

  private async finishOrder(
    order: OrderRecord,
    retry: readonly number[],
  ): Promise<'timeout' | 'paid' | 'stuck' | 'other'> {
    try {
      const attempts = (await this.store.attemptsOf(order.id)).filter((a) => a.status === 'open');
      if (attempts.some((a) => a.creating)) {
        return await this.postpone(order, retry, 'a pay request is creating a trade for it');
      }
      for (const attempt of attempts) {
        const outcome = await this.settleAttempt(attempt);
        if (outcome === 'paid') {
          this.stats.inc('sweep_late_payments');
          this.logger.warn(`order ${order.orderId} expired but was paid on ${attempt.channel}: recorded as success`);
          return 'paid';
        }
        if (outcome === 'pending') return this.postpone(order, retry, 'channel cannot close yet');
      }
      const done = await this.store.transaction(async (em) => {
        const moved = await this.store.finishUnpaid(order.id, 'timeout', 'expired', em);
        if (moved)
          await this.events.write(em, {
            type: 'order.timeout',
            order: moved,
            data: { order: toOrderView(moved) },
          });
        return moved;
      });
      if (done) {
        this.stats.inc('sweep_orders_timed_out');
        return 'timeout';
      }
      return 'other'; // paid (or cancelled) meanwhile: whoever moved it was right
    } catch (err) {
      this.stats.inc('sweep_channel_failures');
      const why = err instanceof PayError ? `${err.code} ${JSON.stringify(err.detail ?? {})}` : (err as Error).message;
      return this.postpone(order, retry, why);
    }
  }

  /** Query first, then close: 'paid' (applied), 'closed', or 'pending' (cannot close yet). */
  private async settleAttempt(attempt: AttemptRecord): Promise<'paid' | 'closed' | 'pending'> {
    const applied = await this.pay.syncAttempt(attempt);
    switch (applied.kind) {
      case 'paid':
      case 'already_paid':
      case 'second_payment':
      case 'late_payment':
        return 'paid';
      case 'amount_mismatch':
        throw new Error(`amount mismatch on ${attempt.channel} for ${attempt.orderId}: ${applied.reported}`);
      case 'attempt_closed':
      case 'attempt_failed':
        return 'closed';
      case 'no_change':
        return this.pay.closeAttempt(attempt);
    }
  }

  private async postpone(order: OrderRecord, retry: readonly number[], why: string): Promise<'stuck'> {
    const delay = backoffMs(order.sweepAttempts - 1, retry);
    await this.store.postponeSweep(order.id, delay);
    this.stats.inc('sweep_orders_stuck');
    this.logger.warn(
      `order ${order.orderId} stays wait (sweep try ${order.sweepAttempts}): ${why}; next try in ${Math.round(delay / 1000)} s`,
    );
    return 'stuck';
  }
}
