import { PayError } from '#common';
import { UnsafeUrlError, checkWebhookUrl, resolveWebhookHost } from './url-guard.js';

/** How long order creation waits for the notifyUrl's host to resolve. */
const RESOLVE_TIMEOUT_MS = 2000;

/**
 * An order's notifyUrl at create time (API.md §10): the URL rules, then its host's addresses. A host
 * that does not resolve in time is accepted (a DNS hiccup must not refuse a payment; every delivery
 * checks again); one that resolves to a private address is refused with 400 INVALID_PARAMS.
 */
export async function checkNotifyUrl(notifyUrl: string, allowPrivate: boolean): Promise<void> {
  try {
    const u = checkWebhookUrl(notifyUrl, allowPrivate);
    if (allowPrivate) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, RESOLVE_TIMEOUT_MS)));
    await Promise.race([resolveWebhookHost(u.hostname, false), timeout]).finally(() => clearTimeout(timer));
  } catch (err) {
    if (!(err instanceof UnsafeUrlError)) throw err;
    if (/does not resolve/.test(err.message)) return;
    throw new PayError('INVALID_PARAMS', `notifyUrl ${err.message}`);
  }
}
