import { ConfigError } from '#common';
import type { AppConfig } from '#config';
import { checkWebhookUrl } from './url-guard.js';

export const WEBHOOK_SETTINGS = Symbol('WEBHOOK_SETTINGS');

/** The webhook side's settings, from AppConfig (main.ts adds the sandbox's inbox and secret). */
export interface WebhookSettings {
  /** WEBHOOK_URLS: every event goes to each of these, besides the order's notifyUrl. */
  readonly endpoints: readonly string[];
  readonly secrets: readonly string[];
  readonly allowPrivate: boolean;
  readonly retryScheduleMs: readonly number[];
  /** A delivery is retried at least this long after it started, then `failed`. */
  readonly retryForMs: number;
  readonly leaseSeconds: number;
  readonly publisherEnabled: boolean;
  /** The publisher looks for due deliveries at least this often (new events of this process wake it at once). */
  readonly pollMs: number;
  /** Deliveries one process sends to one endpoint at once: a slow endpoint holds only its own slots. */
  readonly perEndpoint: number;
  /** Deliveries one process sends at once in all. */
  readonly maxInFlight: number;
  readonly timeoutMs: number;
  readonly retentionDays: number;
}

export const EVENT_TYPES = [
  'order.succeeded',
  'order.closed',
  'order.timeout',
  'payment.second',
  'payment.late',
  'refund.succeeded',
  'refund.failed',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];
export const isEventType = (t: string): t is EventType => (EVENT_TYPES as readonly string[]).includes(t);

/** Settings from the configuration; a WEBHOOK_URLS entry that breaks the URL rules stops the start. */
export function webhookSettingsFrom(cfg: AppConfig): WebhookSettings {
  cfg.webhookUrls.forEach((u, i) => {
    try {
      checkWebhookUrl(u, cfg.webhookAllowPrivate);
    } catch (err) {
      throw new ConfigError(
        `WEBHOOK_URLS entry #${i + 1} ${(err as Error).message}` +
          (cfg.webhookAllowPrivate ? '' : ' (WEBHOOK_ALLOW_PRIVATE=true allows http and private addresses)'),
      );
    }
  });
  return {
    endpoints: [...new Set(cfg.webhookUrls)],
    secrets: cfg.webhookSecrets,
    allowPrivate: cfg.webhookAllowPrivate,
    retryScheduleMs: cfg.webhookRetryScheduleMs,
    retryForMs: cfg.webhookRetryForMs,
    leaseSeconds: cfg.webhookLeaseSeconds,
    publisherEnabled: cfg.webhookPublisherEnabled,
    pollMs: 1000,
    perEndpoint: 4,
    maxInFlight: 32,
    timeoutMs: 10_000,
    retentionDays: cfg.eventRetentionDays,
  };
}

/** Delay before the try after `step` failed ones: the schedule (last value repeating) with ±20 % jitter. */
export function retryDelayMs(step: number, scheduleMs: readonly number[], random: () => number = Math.random): number {
  if (scheduleMs.length === 0) throw new Error('empty retry schedule');
  const base = scheduleMs[Math.max(0, Math.min(step, scheduleMs.length - 1))] as number;
  return Math.max(1, Math.round(base * (0.8 + 0.4 * random())));
}
