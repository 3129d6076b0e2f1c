/** Delay before the n-th retry (0-based) of a step that failed, capped at the last value. */
export function backoffMs(attempt: number, scheduleMs: readonly number[]): number {
  if (scheduleMs.length === 0) throw new Error('empty backoff schedule');
  const i = Math.max(0, Math.min(attempt, scheduleMs.length - 1));
  return scheduleMs[i] as number;
}

/** Sweep retries of a channel that did not answer: 30 s, 1, 2, 5, 10 min, then every 10 min. */
export const SWEEP_RETRY_MS = [30_000, 60_000, 120_000, 300_000, 600_000];

/** Stuck-attempt queries after creation: 1, 2, 5, 10, 30 min, then every 30 min (a lost notify costs minutes). */
export const SYNC_SCHEDULE_MS = [60_000, 120_000, 300_000, 600_000, 1_800_000];
