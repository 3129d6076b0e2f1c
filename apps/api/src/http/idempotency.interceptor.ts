import { createHash, randomUUID } from 'node:crypto';
import { type CallHandler, type ExecutionContext, Inject, Injectable, type NestInterceptor } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { FastifyReply as Response, FastifyRequest as Request } from 'fastify';
import { type Observable, from, lastValueFrom } from 'rxjs';
import type { DataSource } from 'typeorm';
import { type ErrorCode, PayError } from '#common';
import { APP_CONFIG, type AppConfig } from '#config';
import { principalOf } from './auth.guard.js';

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** Canonical JSON (sorted keys) so that the same body with keys in another order hashes the same. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/**
 * `Idempotency-Key` on creating POSTs (Stripe's contract): the first FINAL answer (2xx, or a 4xx that a
 * retry would get again) is kept for IDEMPOTENCY_TTL_HOURS (≥ 24) and replayed for the same key and
 * body; the same key with another body is 422 IDEMPOTENCY_KEY_REUSED; a key whose first request is still
 * running is 409 (a claim older than two minutes belongs to a process that died, and is taken over).
 * A retryable answer (5xx, 429, a payment "being created") is not kept: the key is released so a retry
 * runs again. Each claim carries a random token and every later write or delete of the row is a
 * compare-and-set on it, so a request whose claim was taken over never touches the new owner's row.
 * Keys are scoped to the API key that sent them.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  constructor(
    @InjectDataSource() private readonly ds: DataSource,
    @Inject(APP_CONFIG) private readonly cfg: AppConfig,
  ) {}

  intercept(ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    const req = ctx.switchToHttp().getRequest<Request>();
    const given = req.headers['idempotency-key'];
    const key = Array.isArray(given) ? given.join(', ') : given;
    if (key === undefined || req.method !== 'POST') return next.handle();
    return from(this.run(req, ctx.switchToHttp().getResponse<Response>(), key, next));
  }

  private async run(req: Request, res: Response, key: string, next: CallHandler): Promise<unknown> {
    if (!KEY_PATTERN.test(key))
      throw new PayError('INVALID_PARAMS', 'Idempotency-Key must be 1 to 255 printable ASCII characters');
    const principal = principalOf(req)?.label ?? 'anonymous';
    const hash = createHash('sha256')
      .update(`${req.method} ${req.url.split('?')[0] ?? ''}\n${canonical(req.body ?? null)}`)
      .digest('hex');
    const ttlHours = this.cfg.idempotencyTtlHours;
    const token = randomUUID();
    const claimed = await this.ds.query<unknown[]>(
      `INSERT INTO idempotency_keys (principal, idem_key, request_hash, state, expires_at, claim_token)
       VALUES ($1, $2, $3, 'running', now() + make_interval(hours => $4), $5)
       ON CONFLICT (principal, idem_key) DO UPDATE
         SET request_hash = EXCLUDED.request_hash, state = 'running', response_status = NULL,
             response_body = NULL, created_at = now(), expires_at = EXCLUDED.expires_at,
             claim_token = EXCLUDED.claim_token
         WHERE idempotency_keys.expires_at < now()
            OR (idempotency_keys.state = 'running' AND idempotency_keys.created_at < now() - interval '2 minutes')
       RETURNING idem_key`,
      [principal, key, hash, ttlHours, token],
    );
    if (claimed.length === 0) {
      const rows = await this.ds.query<
        { request_hash: string; state: string; response_status: number | null; response_body: unknown }[]
      >(
        `SELECT request_hash, state, response_status, response_body FROM idempotency_keys WHERE principal = $1 AND idem_key = $2`,
        [principal, key],
      );
      const row = rows[0];
      if (!row) throw new PayError('IDEMPOTENCY_KEY_IN_USE', 'this Idempotency-Key is being processed; retry shortly');
      if (row.request_hash !== hash) {
        throw new PayError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used with another request');
      }
      if (row.state !== 'done' || row.response_status === null) {
        throw new PayError('IDEMPOTENCY_KEY_IN_USE', 'a request with this Idempotency-Key is still in progress');
      }
      void res.header('Idempotent-Replayed', 'true');
      if (row.response_status >= 400) {
        const stored = row.response_body as { code: ErrorCode; message: string };
        throw new PayError(stored.code, stored.message);
      }
      void res.code(row.response_status);
      return row.response_body;
    }
    let result: unknown;
    try {
      result = await lastValueFrom(next.handle(), { defaultValue: undefined });
    } catch (err) {
      if (err instanceof PayError && !err.retryable) {
        await this.finish(principal, key, token, err.status, { code: err.code, message: err.message });
      } else {
        await this.release(principal, key, token);
      }
      throw err;
    }
    // Outside the try: if storing the answer fails, the key stays claimed (409 for a retry, taken over
    // after two minutes) rather than released for a second run of a request that succeeded.
    await this.finish(principal, key, token, res.statusCode, result);
    return result;
  }

  /** Stores the final answer, only while this request still owns the claim. */
  private async finish(principal: string, key: string, token: string, status: number, body: unknown): Promise<void> {
    await this.ds.query(
      `UPDATE idempotency_keys SET state = 'done', response_status = $4, response_body = $5
        WHERE principal = $1 AND idem_key = $2 AND claim_token = $3 AND state = 'running'`,
      [principal, key, token, status, JSON.stringify(body ?? null)],
    );
  }

  /** Lets a retry with the key run again, only while this request still owns the claim. */
  private async release(principal: string, key: string, token: string): Promise<void> {
    await this.ds.query(
      `DELETE FROM idempotency_keys WHERE principal = $1 AND idem_key = $2 AND claim_token = $3 AND state = 'running'`,
      [principal, key, token],
    );
  }
}
