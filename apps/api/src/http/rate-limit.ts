import { type CanActivate, type ExecutionContext, Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { FastifyRequest as Request } from 'fastify';
import type { DataSource } from 'typeorm';
import { PayError } from '#common';
import { APP_CONFIG, type AppConfig } from '#config';
import { principalOf } from './auth.guard.js';

export type RateScope = 'api_key' | 'notify_ip';

export interface RateCount {
  /** Hits of this subject in the current window, every instance together (this one included). */
  readonly n: number;
  /** Seconds until the window ends (≥ 1). */
  readonly retryAfterSeconds: number;
}

/** Rows older than this are swept (two windows: the current one and the one just ended). */
const SWEEP_SQL = `DELETE FROM rate_limit_counters WHERE ctid IN (
  SELECT ctid FROM rate_limit_counters WHERE window_start < now() - interval '2 minutes' LIMIT 10000)`;

/**
 * Fixed one-minute windows counted in PostgreSQL, so every api instance shares them: one
 * `INSERT … ON CONFLICT DO UPDATE SET n = n + 1 RETURNING n` per counted request, the window taken from
 * the database's clock. A subject found over its limit is remembered in this process until its window
 * ends, so a flood costs no statement at all after the first refusal. Each process sweeps ended
 * windows once a minute (a bounded DELETE), so the table holds about two minutes of subjects.
 * If the database cannot count, the request is let through (fail open): the limiter protects the
 * service, it must not become the reason it fails.
 */
@Injectable()
export class RateLimiter {
  private readonly logger = new Logger('RateLimit');
  private readonly blocked = new Map<string, number>(); // `${scope}\n${subject}` -> local ms when it ends
  private lastSweepMinute = 0;

  constructor(@InjectDataSource() private readonly ds: DataSource) {}

  /** Seconds left while `subject` is known (here) to be over its limit; undefined when it is not. */
  blockedFor(scope: RateScope, subject: string): number | undefined {
    const key = `${scope}\n${subject}`;
    const until = this.blocked.get(key);
    if (until === undefined) return undefined;
    const left = until - Date.now();
    if (left > 0) return Math.ceil(left / 1000);
    this.blocked.delete(key);
    return undefined;
  }

  /** Counts one hit; over `limit`, remembers the subject as blocked until the window ends. */
  async hit(scope: RateScope, subject: string, limit: number): Promise<RateCount | undefined> {
    this.sweepOncePerMinute();
    try {
      const rows = await this.ds.query<{ n: number; retry_after: number }[]>(
        `INSERT INTO rate_limit_counters (scope, subject, window_start, n)
         VALUES ($1, $2, date_trunc('minute', now()), 1)
         ON CONFLICT (scope, subject, window_start) DO UPDATE SET n = rate_limit_counters.n + 1
         RETURNING n, greatest(1, ceil(extract(epoch FROM window_start + interval '1 minute' - now())))::int AS retry_after`,
        [scope, subject.slice(0, 64)],
      );
      const row = rows[0];
      if (!row) return undefined;
      const count = { n: Number(row.n), retryAfterSeconds: Number(row.retry_after) };
      if (count.n > limit) {
        if (this.blocked.size > 100_000) this.blocked.clear(); // bound memory under a flood of sources
        this.blocked.set(`${scope}\n${subject}`, Date.now() + count.retryAfterSeconds * 1000);
      }
      return count;
    } catch (err) {
      this.logger.warn(`could not count ${scope}: ${(err as Error).message}`);
      return undefined;
    }
  }

  private sweepOncePerMinute(): void {
    const minute = Math.floor(Date.now() / 60_000);
    if (minute === this.lastSweepMinute) return;
    this.lastSweepMinute = minute;
    this.ds.query(SWEEP_SQL).catch((err: unknown) => {
      this.logger.warn(`could not sweep rate-limit windows: ${(err as Error).message}`);
    });
  }
}

/**
 * RATE_LIMIT_PER_MINUTE per API key on the service API and the seed facade: 429 RATE_LIMITED with
 * Retry-After (the seconds left in the window). Runs after the AuthGuard, so it counts known keys only.
 */
@Injectable()
export class ApiKeyRateLimitGuard implements CanActivate {
  constructor(
    private readonly limiter: RateLimiter,
    @Inject(APP_CONFIG) private readonly cfg: AppConfig,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const limit = this.cfg.rateLimitPerMinute;
    const principal = principalOf(ctx.switchToHttp().getRequest<Request>());
    if (limit === 0 || !principal) return true;
    const left = this.limiter.blockedFor('api_key', principal.label);
    if (left !== undefined) throw limited(limit, left);
    const count = await this.limiter.hit('api_key', principal.label, limit);
    if (count && count.n > limit) throw limited(limit, count.retryAfterSeconds);
    return true;
  }
}

function limited(limit: number, retryAfterSeconds: number): PayError {
  return new PayError('RATE_LIMITED', `more than ${limit} requests a minute with this API key`, undefined, {
    retryAfterSeconds,
  });
}
