import { createHash, timingSafeEqual } from 'node:crypto';
import { type CanActivate, type ExecutionContext, Inject, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest as Request } from 'fastify';
import { PayError } from '#common';
import type { ApiKey, Role } from '#config';

export const API_KEYS = Symbol('API_KEYS');
const ROLES_KEY = 'paybridge:roles';

/** Which roles may call a handler. Routes without it are public (notify webhooks, health, sandbox). */
export const Roles = (...roles: Role[]): MethodDecorator & ClassDecorator => SetMetadata(ROLES_KEY, roles);

/** The service API (API.md §4): service keys and admins. */
export const SERVICE_ROLES: Role[] = ['service', 'admin'];

/** The admin API and console (API.md §11): the service role has no access. */
export const CONSOLE_READ_ROLES: Role[] = ['viewer', 'operator', 'admin'];
export const CONSOLE_ACT_ROLES: Role[] = ['operator', 'admin'];
export const CONSOLE_AUDIT_ROLES: Role[] = ['admin'];

export interface Principal {
  readonly role: Role;
  readonly label: string;
  /** The key's name for the audit log (its label when API_KEYS gives none). */
  readonly name: string;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Bearer API keys with roles (API.md §8), compared in constant time over fixed-length digests. */
@Injectable()
export class AuthGuard implements CanActivate {
  private readonly keys: { digest: Buffer; key: ApiKey }[];

  constructor(
    private readonly reflector: Reflector,
    @Inject(API_KEYS) keys: readonly ApiKey[],
  ) {
    this.keys = keys.map((key) => ({ digest: digest(key.secret), key }));
  }

  canActivate(ctx: ExecutionContext): boolean {
    const roles = this.reflector.getAllAndOverride<Role[] | undefined>(ROLES_KEY, [ctx.getHandler(), ctx.getClass()]);
    if (!roles) return true;
    const req = ctx.switchToHttp().getRequest<Request & { principal?: Principal }>();
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m?.[1]) throw new PayError('UNAUTHORIZED', 'missing API key: send Authorization: Bearer <key>');
    const given = digest(m[1]);
    let found: ApiKey | undefined;
    for (const k of this.keys) {
      if (timingSafeEqual(k.digest, given)) found = k.key; // no early exit: same work whichever key matches
    }
    if (!found) throw new PayError('UNAUTHORIZED', 'invalid API key');
    if (!roles.includes(found.role)) throw new PayError('FORBIDDEN', `role ${found.role} may not call this endpoint`);
    req.principal = { role: found.role, label: found.label, name: found.name };
    return true;
  }
}

export function principalOf(req: Request): Principal | undefined {
  return (req as Request & { principal?: Principal }).principal;
}
