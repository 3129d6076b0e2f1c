import { createHmac } from 'node:crypto';

/**
 * `PayBridge-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]` (API.md §10): HMAC-SHA256 with each
 * secret of WEBHOOK_SECRETS over `<t>.<raw body>`, so a receiver holding either secret of a rotation
 * verifies. `t` is the time of this try (receivers refuse one older than 300 s); the body never changes.
 */
export function signatureHeader(body: string, secrets: readonly string[], unixSeconds: number): string {
  if (!Number.isSafeInteger(unixSeconds) || unixSeconds < 0) throw new Error('signature time must be unix seconds');
  const signed = `${unixSeconds}.${body}`;
  const v1 = secrets.map((s) => `v1=${createHmac('sha256', s).update(signed, 'utf8').digest('hex')}`);
  return [`t=${unixSeconds}`, ...v1].join(',');
}
