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

/** Positions of a window's count this process took and has not used yet. */
interface Lease {
  /** The next position to hand out, and the last one taken (inclusive). */
  next: number;
  last: number;
  /** Local ms when the window the positions belong to ends. */
  endsAt: number;
  /** How many positions the next claim takes, and when the last claim was made (local ms). */
  block: number;
  claimedAt: number;
  /** A claim in flight: hits that find the lease empty wait for it instead of claiming again. */
  pending?: Promise<void>;
}

/** A claim is doubled when the previous one was used up within this time, and halved after a quiet second. */
const FAST_MS = 250;
const QUIET_MS = 1000;

/**
 * Fixed one-minute windows counted in PostgreSQL, so every api instance shares them, the window taken
 * from the database's clock. Each process takes positions of a window's count in blocks: one
 * `INSERT … ON CONFLICT DO UPDATE SET n = n + k RETURNING n` hands it positions n-k+1 … n, which it
 * gives to its next k requests; a request whose position is over the limit is refused. Positions are
 * unique across processes, so no more than the limit are ever let through in a window. The block
 * starts at 1 (one statement per request, exact at low rates) and doubles while blocks run out within
 * 250 ms, up to a twentieth of the limit (issue 14: a flood at 1,000 requests a second costs a few
 * statements a second instead of one per request on one hot row); positions a process took and did not
 * use when the window ends are lost, so a window may let through up to that many fewer (at most 5% of
 * the limit per process, only when traffic moves between processes or stops).
 * A subject found over its limit is remembered in this process until its window ends, so a flood costs
 * no statement at all after the first refusal. Each process sweeps ended windows once a minute (a
 * bounded DELETE). If the database cannot count, the request is let through (fail open): the limiter
 * protects the service, it must not become the reason it fails.
 */
@Injectable()
export class RateLimiter {
  private readonly logger = new Logger('RateLimit');
  private readonly blocked = new Map<string, number>(); // `${scope}\n${subject}` -> local ms when it ends
  private readonly leases = new Map<string, Lease>();
  private lastSweepMinute = 0;
  /** Counting statements sent (a test reads it). */
  claims = 0;

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

  /**
   * Counts one hit: its position in the window's count, all processes together. Over `limit`, the
   * subject is remembered as blocked until the window ends. Undefined when the database cannot count.
   */
  async hit(scope: RateScope, subject: string, limit: number): Promise<RateCount | undefined> {
    this.sweepOncePerMinute();
    const key = `${scope}\n${subject.slice(0, 64)}`;
    for (let tries = 0; tries < 3; tries++) {
      const lease = this.leases.get(key);
      const now = Date.now();
      if (lease && lease.next <= lease.last && now < lease.endsAt) {
        const n = lease.next++;
        const count = { n, retryAfterSeconds: Math.max(1, Math.ceil((lease.endsAt - now) / 1000)) };
        if (n > limit) this.block(key, lease.endsAt);
        return count;
      }
      if (lease?.pending) {
        await lease.pending;
        continue;
      }
      if (!(await this.claim(key, scope, subject, limit, lease, now))) return undefined;
    }
    // Other hits took every position claimed for this one three times over: count it on its own.
    return this.claimOne(key, scope, subject, limit);
  }

  private async claim(
    key: string,
    scope: RateScope,
    subject: string,
    limit: number,
    prev: Lease | undefined,
    now: number,
  ): Promise<boolean> {
    const max = Math.max(1, Math.floor(limit / 20));
    let block = prev?.block ?? 1;
    if (prev && now < prev.endsAt && now - prev.claimedAt < FAST_MS) block = Math.min(max, block * 2);
    else if (!prev || now - prev.claimedAt > QUIET_MS) block = Math.max(1, Math.floor(block / 2));
    const lease: Lease = { next: 1, last: 0, endsAt: 0, block: Math.min(block, max), claimedAt: now };
    let ok = true;
    lease.pending = (async () => {
      const row = await this.count(scope, subject, lease.block);
      if (!row) {
        ok = false;
        return;
      }
      lease.last = row.n;
      lease.next = row.n - lease.block + 1;
      lease.endsAt = Date.now() + row.msLeft;
    })();
    this.leases.set(key, lease);
    if (this.leases.size > 100_000) this.leases.clear(); // bound memory under a flood of subjects
    await lease.pending;
    lease.pending = undefined;
    if (!ok) this.leases.delete(key);
    return ok;
  }

  private async claimOne(
    key: string,
    scope: RateScope,
    subject: string,
    limit: number,
  ): Promise<RateCount | undefined> {
    const row = await this.count(scope, subject, 1);
    if (!row) return undefined;
    const endsAt = Date.now() + row.msLeft;
    if (row.n > limit) this.block(key, endsAt);
    return { n: row.n, retryAfterSeconds: Math.max(1, Math.ceil(row.msLeft / 1000)) };
  }

  private block(key: string, endsAt: number): void {
    if (this.blocked.size > 100_000) this.blocked.clear(); // bound memory under a flood of sources
    this.blocked.set(key, endsAt);
  }

  /** Adds `k` to the window's count; the count after it and the ms left in the window. */
  private async count(
    scope: RateScope,
    subject: string,
    k: number,
  ): Promise<{ n: number; msLeft: number } | undefined> {
    this.claims++;
    try {
      const rows = await this.ds.query<{ n: number; ms_left: number }[]>(
        `INSERT INTO rate_limit_counters (scope, subject, window_start, n)
         VALUES ($1, $2, date_trunc('minute', now()), $3)
         ON CONFLICT (scope, subject, window_start) DO UPDATE SET n = rate_limit_counters.n + EXCLUDED.n
         RETURNING n, greatest(1, ceil(extract(epoch FROM window_start + interval '1 minute' - now()) * 1000))::int AS ms_left`,
        [scope, subject.slice(0, 64), k],
      );
      const row = rows[0];
      return row ? { n: Number(row.n), msLeft: Number(row.ms_left) } : undefined;
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
