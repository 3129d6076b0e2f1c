import { Controller, Get, Header } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { DeliveryStore, JobStats } from '#payments';
import { Roles } from './auth.guard.js';

/**
 * Prometheus text exposition of the jobs' counters of this process, plus database-wide gauges of what
 * is stuck: expired orders still `wait` (a channel that did not answer) and open attempts overdue for sync.
 */
@Controller('metrics')
@Roles('viewer', 'operator', 'admin')
export class MetricsController {
  constructor(
    private readonly stats: JobStats,
    private readonly deliveries: DeliveryStore,
    @InjectDataSource() private readonly ds: DataSource,
  ) {}

  @Get()
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  async metrics(): Promise<string> {
    const lines: string[] = [];
    for (const [name, value] of Object.entries(this.stats.counters)) {
      lines.push(`# TYPE paybridge_${name}_total counter`, `paybridge_${name}_total ${value}`);
    }
    const rows = await this.ds.query<{ expired_wait: number; overdue_sync: number }[]>(
      `SELECT (SELECT count(*)::int FROM orders WHERE status = 'wait' AND expire_time <= now()) AS expired_wait,
              (SELECT count(*)::int FROM payment_attempts WHERE status = 'open' AND next_sync_at <= now() - interval '5 minutes') AS overdue_sync`,
    );
    const r = rows[0];
    lines.push('# TYPE paybridge_orders_expired_wait gauge', `paybridge_orders_expired_wait ${r?.expired_wait ?? 0}`);
    lines.push(
      '# TYPE paybridge_attempts_sync_overdue gauge',
      `paybridge_attempts_sync_overdue ${r?.overdue_sync ?? 0}`,
    );
    const backlog = await this.deliveries.backlog();
    lines.push(
      '# TYPE paybridge_webhook_deliveries_pending gauge',
      `paybridge_webhook_deliveries_pending ${backlog.pending}`,
    );
    lines.push(
      '# TYPE paybridge_webhook_oldest_undelivered_seconds gauge',
      `paybridge_webhook_oldest_undelivered_seconds ${Math.round(backlog.oldestPendingSeconds)}`,
    );
    return `${lines.join('\n')}\n`;
  }
}
