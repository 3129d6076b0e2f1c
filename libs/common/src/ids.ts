import { randomInt, randomUUID } from 'node:crypto';

/** Characters every channel accepts in an out_trade_no (WeChat is the strictest: [0-9A-Za-z_-|*]). */
export const ORDER_ID_PATTERN = /^[A-Za-z0-9_-]{6,32}$/;

/** Formats a Date as yyyyMMddHHmmss in GMT+8, the zone the seeds' order ids (and both CN providers) use. */
export function gmt8Compact(date: Date): string {
  const d = new Date(date.getTime() + 8 * 3600_000);
  const p = (n: number, w = 2): string => n.toString().padStart(w, '0');
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}

/** `yyyy-MM-dd HH:mm:ss` in GMT+8 (Alipay's timestamp format). */
export function gmt8Dashed(date: Date): string {
  const c = gmt8Compact(date);
  return `${c.slice(0, 4)}-${c.slice(4, 6)}-${c.slice(6, 8)} ${c.slice(8, 10)}:${c.slice(10, 12)}:${c.slice(12, 14)}`;
}

/** The seeds' order id: `D` + yyyyMMddHHmmss + 6 random digits. Uniqueness is enforced by the database. */
export function generateOrderId(now: Date = new Date()): string {
  return `D${gmt8Compact(now)}${randomInt(0, 1_000_000).toString().padStart(6, '0')}`;
}

export function newId(): string {
  return randomUUID();
}
