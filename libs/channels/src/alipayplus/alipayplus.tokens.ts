import { Secret } from '#common';

/**
 * The user authorizations one Alipay+ channel instance holds (PROTOCOLS.md §3.1 step 3: tokens stay
 * server-side). In memory only: after a restart a customer authorizes again (my.getAuthCode is silent
 * for `auth_base`). Tokens are wrapped in Secret so that logging or serialising an entry leaks nothing.
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

export class AlipayPlusTokenStore {
  readonly #entries = new Map<string, AlipayPlusAuthorization>();

  constructor(private readonly maxEntries = 100_000) {}

  get size(): number {
    return this.#entries.size;
  }

  get(customerId: string): AlipayPlusAuthorization | undefined {
    return this.#entries.get(customerId);
  }

  /** Stores (or replaces) a customer's authorization; the oldest entry goes when the store is full. */
  put(auth: AlipayPlusAuthorization): void {
    this.#entries.delete(auth.customerId);
    this.#entries.set(auth.customerId, auth);
    while (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#entries.delete(oldest.value);
    }
  }

  delete(customerId: string): void {
    this.#entries.delete(customerId);
  }

  static accessTokenUsable(auth: AlipayPlusAuthorization, now: Date): boolean {
    return (
      auth.accessTokenExpiresAt === undefined ||
      auth.accessTokenExpiresAt.getTime() - TOKEN_EXPIRY_MARGIN_MS > now.getTime()
    );
  }

  static refreshTokenUsable(auth: AlipayPlusAuthorization, now: Date): boolean {
    if (!auth.refreshToken) return false;
    return (
      auth.refreshTokenExpiresAt === undefined ||
      auth.refreshTokenExpiresAt.getTime() - TOKEN_EXPIRY_MARGIN_MS > now.getTime()
    );
  }

  /** Never prints a token. */
  toJSON(): { size: number } {
    return { size: this.#entries.size };
  }
}
