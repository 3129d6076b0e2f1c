import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { FastifyReply as Response, FastifyRequest as Request } from 'fastify';
import { APP_CONFIG, type ApiKey, type AppConfig, type Role } from '#config';
import { API_KEYS } from '../http/auth.guard.js';

export const SESSION_COOKIE = 'pb_admin';
const CONSOLE_ROLES: ReadonlySet<Role> = new Set(['viewer', 'operator', 'admin']);

export interface AdminSession {
  readonly key: ApiKey;
  /** The synchronizer token every state-changing form sends back (`_csrf`). */
  readonly csrf: string;
  readonly expiresAt: number;
}

const sha = (s: string): Buffer => createHash('sha256').update(s).digest();

/**
 * The console's sessions: a signed cookie (HMAC-SHA256) holding which key signed in (a digest, never
 * the key), when it ends, and the session's CSRF token. HttpOnly, SameSite=Strict, Path=/admin, Secure
 * over https. The key is looked up on every request, so a key removed from API_KEYS stops working at
 * the next restart, and a key's role is always the current one.
 */
@Injectable()
export class AdminSessions {
  private readonly secret: Buffer;
  private readonly ttlMs: number;
  private readonly keys: { digest: Buffer; id: string; key: ApiKey }[];

  constructor(@Inject(APP_CONFIG) cfg: AppConfig, @Inject(API_KEYS) keys: readonly ApiKey[]) {
    this.secret = cfg.adminSessionSecret ? sha(`admin-session:${cfg.adminSessionSecret}`) : randomBytes(32);
    this.ttlMs = cfg.adminSessionMinutes * 60_000;
    this.keys = keys.map((key) => ({
      digest: sha(key.secret),
      id: createHmac('sha256', this.secret).update(key.secret).digest('base64url').slice(0, 22),
      key,
    }));
  }

  /** The console key matching `given` (constant time over all keys), or undefined. */
  findKey(given: string): ApiKey | undefined {
    const d = sha(given);
    let found: ApiKey | undefined;
    for (const k of this.keys) if (timingSafeEqual(k.digest, d)) found = k.key;
    return found && CONSOLE_ROLES.has(found.role) ? found : undefined;
  }

  start(res: Response, req: Request, key: ApiKey): void {
    const entry = this.keys.find((k) => k.key === key);
    if (!entry) throw new Error('unknown key');
    const payload = Buffer.from(
      JSON.stringify({ k: entry.id, e: Date.now() + this.ttlMs, c: randomBytes(18).toString('base64url') }),
    ).toString('base64url');
    this.setCookie(res, req, `${payload}.${this.sign(payload)}`, Math.floor(this.ttlMs / 1000));
  }

  end(res: Response, req: Request): void {
    this.setCookie(res, req, '', 0);
  }

  read(req: Request): AdminSession | undefined {
    const raw = cookieOf(req, SESSION_COOKIE);
    if (!raw) return undefined;
    const dot = raw.indexOf('.');
    if (dot < 1) return undefined;
    const payload = raw.slice(0, dot);
    const mac = Buffer.from(raw.slice(dot + 1), 'base64url');
    const expected = Buffer.from(this.sign(payload), 'base64url');
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) return undefined;
    let p: { k?: unknown; e?: unknown; c?: unknown };
    try {
      p = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as typeof p;
    } catch {
      return undefined;
    }
    if (typeof p.k !== 'string' || typeof p.e !== 'number' || typeof p.c !== 'string') return undefined;
    if (p.e <= Date.now()) return undefined;
    const key = this.keys.find((k) => k.id === p.k)?.key;
    if (!key || !CONSOLE_ROLES.has(key.role)) return undefined;
    return { key, csrf: p.c, expiresAt: p.e };
  }

  /** The form's token equals the session's (constant time). */
  csrfOk(session: AdminSession, given: unknown): boolean {
    if (typeof given !== 'string' || given.length === 0) return false;
    return timingSafeEqual(sha(given), sha(session.csrf));
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.secret).update(payload).digest('base64url');
  }

  private setCookie(res: Response, req: Request, value: string, maxAgeSeconds: number): void {
    const parts = [
      `${SESSION_COOKIE}=${value}`,
      'Path=/admin',
      'HttpOnly',
      'SameSite=Strict',
      `Max-Age=${maxAgeSeconds}`,
    ];
    if (req.protocol === 'https') parts.push('Secure');
    void res.header('Set-Cookie', parts.join('; '));
  }
}

export function cookieOf(req: Request, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * A state-changing request must come from our own pages: an Origin (or, without one, a Referer) that
 * is this server's. Browsers send Origin on every cross-site POST, so a forged form is refused here even
 * before its missing session and token are.
 */
export function sameOrigin(req: Request, publicBaseUrl: string | undefined): boolean {
  const own = new Set([`${req.protocol}://${req.headers.host ?? ''}`]);
  if (publicBaseUrl) own.add(new URL(publicBaseUrl).origin);
  const origin = req.headers.origin;
  if (origin !== undefined) return own.has(origin);
  const referer = req.headers.referer;
  if (referer === undefined) return true; // not a browser form post; the CSRF token still has to match
  try {
    return own.has(new URL(referer).origin);
  } catch {
    return false;
  }
}
