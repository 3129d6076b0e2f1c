import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type BeforeApplicationShutdown,
} from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { APP_CONFIG, type AppConfig } from '#config';
import { HousekeepingJob } from './housekeeping.job.js';
import { OrderSyncJob } from './order-sync.job.js';
import { type SweepOptions, TimeoutCloserJob } from './timeout-closer.job.js';
import { RefundSyncJob } from '../refunds/refund-sync.job.js';

/**
 * Schedules the sweeps when JOBS_ENABLED (the api by default, the worker always). Each process runs at
 * most one pass of a job at a time; the database claims keep processes off each other's rows.
 */
const HOUSEKEEPING_EVERY_MS = 3_600_000;

@Injectable()
export class JobsRunner implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Jobs');
  private readonly running = new Set<string>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private stopped = false;
  private readonly stopping = new AbortController();

  constructor(
    private readonly scheduler: SchedulerRegistry,
    private readonly closer: TimeoutCloserJob,
    private readonly sync: OrderSyncJob,
    private readonly housekeepingJob: HousekeepingJob,
    private readonly refundSync: RefundSyncJob,
    @Inject(APP_CONFIG) private readonly cfg: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.cfg.jobsEnabled) return;
    const everyMs = this.cfg.sweepIntervalSeconds * 1000;
    this.scheduler.addInterval(
      'timeout-closer',
      setInterval(() => this.tick('timeout-closer', () => this.closer.sweepOnce(this.sweepOptions())), everyMs),
    );
    this.scheduler.addInterval(
      'order-sync',
      setInterval(() => this.tick('order-sync', () => this.sync.syncOnce(this.sweepOptions())), everyMs),
    );
    this.scheduler.addInterval(
      'refund-sync',
      setInterval(() => this.tick('refund-sync', () => this.refundSync.syncOnce(this.sweepOptions())), everyMs),
    );
    this.scheduler.addInterval(
      'housekeeping',
      setInterval(() => this.tick('housekeeping', () => this.housekeeping()), HOUSEKEEPING_EVERY_MS),
    );
    this.logger.log(`jobs on: timeout closer, order sync and refund sync every ${this.cfg.sweepIntervalSeconds} s`);
  }

  private sweepOptions(): SweepOptions {
    return {
      batchSize: this.cfg.sweepBatchSize,
      leaseSeconds: this.cfg.sweepLeaseSeconds,
      concurrency: this.cfg.sweepConcurrency,
      signal: this.stopping.signal,
    };
  }

  /** Drops Idempotency-Key answers past their TTL, refused notifies older than 30 days, and old finished events. */
  async housekeeping(): Promise<number> {
    const keys = await this.housekeepingJob.deleteExpiredIdempotencyKeys();
    const notifies = await this.housekeepingJob.deleteOldRefusedNotifies();
    const events = await this.housekeepingJob.deleteOldEvents();
    if (keys || notifies || events)
      this.logger.log(
        `housekeeping: removed ${keys} expired idempotency keys, ${notifies} old refused notifies, ${events} old events`,
      );
    return keys + notifies + events;
  }

  private tick(name: string, fn: () => Promise<unknown>): void {
    if (this.stopped || this.running.has(name)) return;
    this.running.add(name);
    const p = fn()
      .catch((err: unknown) => this.logger.error(`${name} failed: ${(err as Error).message}`))
      .finally(() => {
        this.running.delete(name);
        this.inFlight.delete(p);
      });
    this.inFlight.add(p);
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    for (const name of ['timeout-closer', 'order-sync', 'refund-sync', 'housekeeping']) {
      if (this.scheduler.doesExist('interval', name)) this.scheduler.deleteInterval(name);
    }
    await Promise.allSettled([...this.inFlight]);
  }
}
