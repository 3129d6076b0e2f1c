import { Injectable } from '@nestjs/common';

/** Counters of the jobs, for logs, the admin API and tests (a metrics exporter reads the same). */
@Injectable()
export class JobStats {
  readonly counters: Record<string, number> = {
    sweep_runs: 0,
    sweep_orders_claimed: 0,
    sweep_orders_timed_out: 0,
    sweep_late_payments: 0,
    sweep_channel_failures: 0,
    sweep_orders_stuck: 0,
    sync_runs: 0,
    sync_attempts_claimed: 0,
    sync_payments_found: 0,
    sync_attempts_closed: 0,
    sync_channel_failures: 0,
    webhook_deliveries_delivered: 0,
    webhook_deliveries_retried: 0,
    webhook_deliveries_failed: 0,
    webhook_deliveries_claim_lost: 0,
  };

  inc(name: keyof JobStats['counters'], by = 1): void {
    this.counters[name] = (this.counters[name] ?? 0) + by;
  }
}
