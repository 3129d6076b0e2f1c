import { SYNC_SCHEDULE_MS, backoffMs, syncOffsetMs } from './backoff.js';

describe('order sync schedule', () => {
  it('queries 1, 2, 5, 10, 30 min after creation and then every 30 min, as offsets from creation', () => {
    const minutes = Array.from({ length: 9 }, (_, n) => syncOffsetMs(n, SYNC_SCHEDULE_MS) / 60_000);
    expect(minutes).toEqual([1, 2, 5, 10, 30, 60, 90, 120, 150]);
  });

  it('is strictly increasing, so a late run never schedules into the past of the schedule', () => {
    for (let n = 1; n < 50; n++) {
      expect(syncOffsetMs(n, SYNC_SCHEDULE_MS)).toBeGreaterThan(syncOffsetMs(n - 1, SYNC_SCHEDULE_MS));
    }
  });

  it('refuses an empty schedule', () => {
    expect(() => syncOffsetMs(0, [])).toThrow(/empty/);
  });
});

describe('retry backoff', () => {
  it('caps at the last step', () => {
    expect([0, 1, 2, 9].map((n) => backoffMs(n, [10, 20, 30]))).toEqual([10, 20, 30, 30]);
  });
});
