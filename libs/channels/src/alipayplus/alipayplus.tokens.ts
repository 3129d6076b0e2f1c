import { Secret } from '#common';

/**
 * A customer's authorization held by an Alipay+ channel instance (PROTOCOLS.md §3.1 step 3: tokens stay
 * server-side). Tokens are wrapped in Secret so that logging or serialising an entry leaks nothing.
 */
export interface AlipayPlusAuthorization {
  readonly customerId: string;
  readonly accessToken: Secret;
  /** Undefined when the wallet did not say; treated as valid until the wallet refuses it. */
  readonly accessTokenExpiresAt?: Date;
  readonly refreshToken?: Secret;
  readonly refreshTokenExpiresAt?: Date;
}

/** How long before its expiry a token is already treated as expired (clock skew, request time). */
export const TOKEN_EXPIRY_MARGIN_MS = 60_000;

/**
 * Where an Alipay+ channel instance keeps its customers' authorizations, by (instance, customerId).
 * Channels never touch the database: the app provides a PostgreSQL-backed store through the
 * ALIPAYPLUS_TOKEN_STORE token (libs/payments) so that a customerId works on every api process and
 * after a restart; the in-memory store below serves unit specs and a registry built without one.
 */
export interface AlipayPlusTokenStore {
  get(instance: string, customerId: string): Promise<AlipayPlusAuthorization | undefined>;
  /** Stores (or replaces) a customer's authorization. */
  put(instance: string, auth: AlipayPlusAuthorization): Promise<void>;
  delete(instance: string, customerId: string): Promise<void>;
}

export function accessTokenUsable(auth: AlipayPlusAuthorization, now: Date): boolean {
  return (
    auth.accessTokenExpiresAt === undefined ||
    auth.accessTokenExpiresAt.getTime() - TOKEN_EXPIRY_MARGIN_MS > now.getTime()
  );
}

export function refreshTokenUsable(auth: AlipayPlusAuthorization, now: Date): boolean {
  if (!auth.refreshToken) return false;
  return (
    auth.refreshTokenExpiresAt === undefined ||
    auth.refreshTokenExpiresAt.getTime() - TOKEN_EXPIRY_MARGIN_MS > now.getTime()
  );
}

/** One process's memory; the oldest entry goes when it is full. */
export class InMemoryAlipayPlusTokenStore implements AlipayPlusTokenStore {
  readonly #entries = new Map<string, AlipayPlusAuthorization>();

  constructor(private readonly maxEntries = 100_000) {}

  get size(): number {
    return this.#entries.size;
  }

  get(instance: string, customerId: string): Promise<AlipayPlusAuthorization | undefined> {
    return Promise.resolve(this.#entries.get(key(instance, customerId)));
  }

  put(instance: string, auth: AlipayPlusAuthorization): Promise<void> {
    const k = key(instance, auth.customerId);
    this.#entries.delete(k);
    this.#entries.set(k, auth);
    while (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#entries.delete(oldest.value);
    }
    return Promise.resolve();
  }

  delete(instance: string, customerId: string): Promise<void> {
    this.#entries.delete(key(instance, customerId));
    return Promise.resolve();
  }

  /** Never prints a token. */
  toJSON(): { size: number } {
    return { size: this.#entries.size };
  }
}

const key = (instance: string, customerId: string): string => `${instance}\u0000${customerId}`;
