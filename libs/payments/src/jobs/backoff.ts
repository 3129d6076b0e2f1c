/** Delay before the n-th retry (0-based) of a step that failed, capped at the last value. */
export function backoffMs(attempt: number, scheduleMs: readonly number[]): number {
  if (scheduleMs.length === 0) throw new Error('empty backoff schedule');
  const i = Math.max(0, Math.min(attempt, scheduleMs.length - 1));
  return scheduleMs[i] as number;
}

/** Sweep retries of a channel that did not answer: 30 s, 1, 2, 5, 10 min, then every 10 min. */
export const SWEEP_RETRY_MS = [30_000, 60_000, 120_000, 300_000, 600_000];

/**
 * Stuck-attempt queries, as offsets from the attempt's creation: 1, 2, 5, 10, 30 min, then every 30 min
 * (60, 90, ...): a lost notify costs minutes.
 */
export const SYNC_SCHEDULE_MS = [60_000, 120_000, 300_000, 600_000, 1_800_000];

/**
 * When the n-th query (0-based) of an attempt is due, counted from its creation: the schedule's offsets,
 * then its last offset again and again (the last step repeats as a period).
 */
export function syncOffsetMs(n: number, scheduleMs: readonly number[]): number {
  if (scheduleMs.length === 0) throw new Error('empty sync schedule');
  const last = scheduleMs.length - 1;
  if (n <= last) return scheduleMs[Math.max(0, n)] as number;
  return (scheduleMs[last] as number) * (1 + n - last);
}
