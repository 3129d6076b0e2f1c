import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { DataSource } from 'typeorm';

/** An order still `wait` this long after its expiry is stuck: the sweep runs every 30 s by default. */
export const STUCK_AFTER_SECONDS = 300;

interface DbSnapshot {
  readonly ordersExpiredWait: number;
  readonly ordersStuck: number;
  readonly attemptsSyncOverdue: number;
  readonly refundsPending: number;
  readonly refundsPendingOldestSeconds: number;
  readonly deliveriesPending: number;
  readonly oldestPendingEventSeconds: number;
}

/**
 * The Prometheus registry of one app (api or worker) and the business series (issue 13). One registry
 * per app instance, not prom-client's global one, so that several apps in one process (the tests) do
 * not collide. Counters count in this process; the gauges read the database at scrape time, so every
 * replica reports the same database-wide values (aggregate them with max, not sum).
 */
@Injectable()
export class PaymentMetrics {
  private readonly logger = new Logger('Metrics');
  readonly registry = new Registry();

  readonly ordersCreated = new Counter({
    name: 'paybridge_orders_created_total',
    help: 'Orders created (a repeat of the same orderId is not counted)',
    labelNames: ['currency'] as const,
    registers: [this.registry],
  });
  readonly attemptsCreated = new Counter({
    name: 'paybridge_payment_attempts_created_total',
    help: 'Payment attempts created at a channel (an order chooses its channel when it is paid)',
    labelNames: ['channel', 'pay_type'] as const,
    registers: [this.registry],
  });
  readonly ordersPaid = new Counter({
    name: 'paybridge_orders_paid_total',
    help: 'Orders moved to success, by the channel instance that was paid',
    labelNames: ['channel'] as const,
    registers: [this.registry],
  });
  readonly extraPayments = new Counter({
    name: 'paybridge_extra_payments_total',
    help: 'Second payments of a paid order and late payments of an ended order (refunded automatically when AUTO_REFUND)',
    labelNames: ['channel', 'kind'] as const,
    registers: [this.registry],
  });
  readonly notifyVerdicts = new Counter({
    name: 'paybridge_notify_verdicts_total',
    help: 'Provider notifies by channel type and verdict (refused, unknown_instance = not signed by a configured instance)',
    labelNames: ['channel_type', 'verdict'] as const,
    registers: [this.registry],
  });
  readonly refunds = new Counter({
    name: 'paybridge_refunds_total',
    help: 'Refunds by outcome: created, succeeded, failed',
    labelNames: ['channel', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly webhookDeliveries = new Counter({
    name: 'paybridge_webhook_deliveries_total',
    help: 'Webhook delivery tries by outcome: delivered, retried, failed (gave up), claim_lost',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly jobRuns = new Counter({
    name: 'paybridge_job_runs_total',
    help: 'Passes of the scheduled jobs',
    labelNames: ['job'] as const,
    registers: [this.registry],
  });
  readonly jobEvents = new Counter({
    name: 'paybridge_job_events_total',
    help: 'What the jobs did (the JobStats counters: sweep_orders_claimed, sync_payments_found, ...)',
    labelNames: ['event'] as const,
    registers: [this.registry],
  });
  readonly databaseUp = new Gauge({
    name: 'paybridge_metrics_database_up',
    help: '1 when the database answered the last scrape; the database gauges keep their previous values otherwise',
    registers: [this.registry],
  });

  private readonly gauges: Array<{ gauge: Gauge; pick: (s: DbSnapshot) => number }> = [];

  constructor(@InjectDataSource() private readonly ds: DataSource) {
    collectDefaultMetrics({ register: this.registry });
    this.dbGauge(
      'paybridge_orders_expired_wait',
      'Orders still wait after their expiry (the sweep closes them within SWEEP_INTERVAL_SECONDS)',
      (s) => s.ordersExpiredWait,
    );
    this.dbGauge(
      'paybridge_orders_stuck',
      `Orders still wait more than ${STUCK_AFTER_SECONDS} s after they expired`,
      (s) => s.ordersStuck,
    );
    this.dbGauge(
      'paybridge_attempts_sync_overdue',
      'Open payment attempts whose scheduled query is more than 5 minutes late',
      (s) => s.attemptsSyncOverdue,
    );
    this.dbGauge('paybridge_refunds_pending', 'Refunds not yet success or failed', (s) => s.refundsPending);
    this.dbGauge(
      'paybridge_refunds_pending_oldest_seconds',
      'Age of the oldest pending refund',
      (s) => s.refundsPendingOldestSeconds,
    );
    this.dbGauge(
      'paybridge_webhook_deliveries_pending',
      'Webhook deliveries not yet delivered or failed',
      (s) => s.deliveriesPending,
    );
    this.dbGauge(
      'paybridge_webhook_oldest_pending_event_seconds',
      'Age of the oldest event with a pending delivery',
      (s) => s.oldestPendingEventSeconds,
    );
  }

  private dbGauge(name: string, help: string, pick: (s: DbSnapshot) => number): void {
    this.gauges.push({ gauge: new Gauge({ name, help, registers: [this.registry] }), pick });
  }

  /**
   * The exposition: the database gauges read in one query (they keep their last values, and
   * paybridge_metrics_database_up says 0, when the database does not answer), then every series.
   */
  async scrape(): Promise<string> {
    const s = await this.readDb();
    if (s) for (const { gauge, pick } of this.gauges) gauge.set(pick(s));
    return this.registry.metrics();
  }

  private async readDb(): Promise<DbSnapshot | undefined> {
    try {
      const rows = await this.ds.query<Array<Record<string, unknown>>>(
        `SELECT (SELECT count(*)::int FROM orders WHERE status = 'wait' AND expire_time <= now()) AS orders_expired,
                (SELECT count(*)::int FROM orders
                  WHERE status = 'wait' AND expire_time <= now() - make_interval(secs => $1)) AS orders_stuck,
                (SELECT count(*)::int FROM payment_attempts
                  WHERE status = 'open' AND next_sync_at <= now() - interval '5 minutes') AS attempts_overdue,
                (SELECT count(*)::int FROM refunds WHERE status = 'pending') AS refunds_pending,
                (SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8
                   FROM refunds WHERE status = 'pending') AS refunds_oldest,
                (SELECT count(*)::int FROM event_deliveries WHERE status = 'pending') AS deliveries_pending,
                (SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(e.created_at)), 0)::float8
                   FROM event_deliveries d JOIN events e ON e.id = d.event_id
                  WHERE d.status = 'pending') AS oldest_event`,
        [STUCK_AFTER_SECONDS],
      );
      const r = rows[0] ?? {};
      this.databaseUp.set(1);
      return {
        ordersExpiredWait: Number(r['orders_expired'] ?? 0),
        ordersStuck: Number(r['orders_stuck'] ?? 0),
        attemptsSyncOverdue: Number(r['attempts_overdue'] ?? 0),
        refundsPending: Number(r['refunds_pending'] ?? 0),
        refundsPendingOldestSeconds: Math.round(Number(r['refunds_oldest'] ?? 0)),
        deliveriesPending: Number(r['deliveries_pending'] ?? 0),
        oldestPendingEventSeconds: Math.round(Number(r['oldest_event'] ?? 0)),
      };
    } catch (err) {
      this.databaseUp.set(0);
      this.logger.warn(`metrics: the database did not answer: ${(err as Error).message}`);
      return undefined;
    }
  }
}
