import { Injectable } from '@nestjs/common';
import { PaymentMetrics } from '../metrics/payment-metrics.js';

const COUNTERS = [
  'sweep_runs',
  'sweep_orders_claimed',
  'sweep_orders_timed_out',
  'sweep_late_payments',
  'sweep_channel_failures',
  'sweep_orders_stuck',
  'sync_runs',
  'sync_attempts_claimed',
  'sync_payments_found',
  'sync_attempts_closed',
  'sync_channel_failures',
  'refund_sync_runs',
  'refunds_settled',
  'webhook_deliveries_delivered',
  'webhook_deliveries_retried',
  'webhook_deliveries_failed',
  'webhook_deliveries_claim_lost',
] as const;

export type JobCounter = (typeof COUNTERS)[number];

/**
 * Counters of the jobs. Each `inc` goes to Prometheus (PaymentMetrics: `paybridge_job_runs_total{job}`
 * for the `*_runs`, `paybridge_webhook_deliveries_total{outcome}` for the deliveries,
 * `paybridge_job_events_total{event}` for the rest) and to `counters`, this process's totals that logs,
 * the admin API and tests read synchronously.
 */
@Injectable()
export class JobStats {
  readonly counters: Record<JobCounter, number> = Object.fromEntries(COUNTERS.map((c) => [c, 0])) as Record<
    JobCounter,
    number
  >;

  constructor(private readonly metrics: PaymentMetrics) {}

  inc(name: JobCounter, by = 1): void {
    this.counters[name] += by;
    if (name.endsWith('_runs')) this.metrics.jobRuns.inc({ job: name.slice(0, -'_runs'.length) }, by);
    else if (name.startsWith('webhook_deliveries_')) {
      this.metrics.webhookDeliveries.inc({ outcome: name.slice('webhook_deliveries_'.length) }, by);
    } else this.metrics.jobEvents.inc({ event: name }, by);
  }
}
