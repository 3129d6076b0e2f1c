import { ConfigError } from '#common';
import { loadAppConfig } from '#config';
import { retryDelayMs, webhookSettingsFrom } from './webhook-settings.js';

describe('webhook settings', () => {
  it('default schedule: about 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, then every 3 h, for 3 days', () => {
    const sut = webhookSettingsFrom(loadAppConfig({}));
    expect(sut.retryScheduleMs).toEqual([5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 10_800_000]);
    expect(sut.retryForMs).toBe(3 * 86_400_000);
    expect(sut.timeoutMs).toBe(10_000);
    expect(sut.leaseSeconds).toBeGreaterThan(sut.timeoutMs / 1000);
  });

  it('jitters each delay by ±20 % and repeats the last one', () => {
    const schedule = [1000, 10_000];
    expect(retryDelayMs(0, schedule, () => 0)).toBe(800);
    expect(retryDelayMs(0, schedule, () => 1)).toBe(1200);
    expect(retryDelayMs(7, schedule, () => 0.5)).toBe(10_000);
  });

  it('parses WEBHOOK_RETRY_SCHEDULE with units and refuses nonsense', () => {
    expect(loadAppConfig({ WEBHOOK_RETRY_SCHEDULE: '100ms, 2s,1m' }).webhookRetryScheduleMs).toEqual([
      100, 2000, 60_000,
    ]);
    expect(() => loadAppConfig({ WEBHOOK_RETRY_SCHEDULE: '5 seconds' })).toThrow(ConfigError);
    expect(() => loadAppConfig({ WEBHOOK_RETRY_FOR: '0s' })).toThrow(ConfigError);
  });

  it('refuses a WEBHOOK_URLS entry that breaks the URL rules at start, unless private addresses are allowed', () => {
    expect(() => webhookSettingsFrom(loadAppConfig({ WEBHOOK_URLS: 'http://127.0.0.1:9/h' }))).toThrow(
      /#1 must be https/,
    );
    expect(() =>
      webhookSettingsFrom(loadAppConfig({ WEBHOOK_URLS: 'https://a.example.com/h,https://10.1.1.1/h' })),
    ).toThrow(/#2 points at a private/);
    const allowed = loadAppConfig({ WEBHOOK_URLS: 'http://127.0.0.1:9/h', WEBHOOK_ALLOW_PRIVATE: 'true' });
    expect(webhookSettingsFrom(allowed).endpoints).toEqual(['http://127.0.0.1:9/h']);
  });

  it('refuses short WEBHOOK_SECRETS without echoing them', () => {
    expect(() => loadAppConfig({ WEBHOOK_SECRETS: 'long-enough-secret-0123,short' })).toThrow(
      /WEBHOOK_SECRETS entry #2 must be at least 16 characters/,
    );
    const err = ((): Error | undefined => {
      try {
        loadAppConfig({ WEBHOOK_SECRETS: 'tiny-secret' });
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(err?.message).toMatch(/entry #1/);
    expect(err?.message).not.toContain('tiny-secret');
  });
});
