import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { Clock } from '#common';
import { JobStats } from '../jobs/job-stats.js';
import { type ClaimedDelivery, DeliveryStore } from './delivery-store.js';
import { type SendResult, sendWebhook } from './webhook-sender.js';
import { signatureHeader } from './webhook-signer.js';
import { WEBHOOK_SETTINGS, type WebhookSettings, retryDelayMs } from './webhook-settings.js';
import { WebhookWake } from './webhook-wake.js';

/** Only the scheme, host and port of an endpoint reach a log line (a query may hold a merchant's token). */
export function endpointOrigin(endpoint: string): string {
  try {
    return new URL(endpoint).origin;
  } catch {
    return '(invalid URL)';
  }
}

/**
 * Delivers events (API.md §10) in the api and the worker. Each pass claims due deliveries with
 * FOR UPDATE SKIP LOCKED and a lease, at most `perEndpoint` per endpoint held by this process and
 * `maxInFlight` in all, and sends each one on its own: a slow or dead endpoint holds its own slots only.
 * A new pass starts when a send ends, when this process commits an event, and every `pollMs`.
 */
@Injectable()
export class WebhookPublisher implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Webhooks');
  private readonly held = new Map<string, number>();
  private readonly sending = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private pumping = false;
  private again = false;
  private stopped = true;

  constructor(
    private readonly store: DeliveryStore,
    private readonly wake: WebhookWake,
    private readonly stats: JobStats,
    private readonly clock: Clock,
    @Inject(WEBHOOK_SETTINGS) private readonly settings: WebhookSettings,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.settings.publisherEnabled) return;
    if (this.settings.secrets.length === 0) {
      // A receiver could not tell our events from anyone's: never send them unsigned. Deliveries wait
      // for a process that has the secrets (orders refuse a notifyUrl where none is set).
      this.logger.error('WEBHOOK_SECRETS is not set: this process does not deliver webhooks (they would be unsigned)');
      return;
    }
    this.start();
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.unsubscribe = this.wake.onWake(() => this.pump());
    this.timer = setInterval(() => this.pump(), this.settings.pollMs);
    this.pump();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.stop();
  }

  /** Stops claiming; sends under way finish (each is bounded by the request timeout). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.unsubscribe?.();
    while (this.pumping || this.sending.size) {
      await Promise.allSettled([...this.sending]);
      if (this.pumping) await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Claims and starts what is due now (a pass already running takes another turn instead). */
  pump(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    void this.claimLoop().finally(() => {
      this.pumping = false;
    });
  }

  private async claimLoop(): Promise<void> {
    do {
      this.again = false;
      const free = this.settings.maxInFlight - this.sending.size;
      if (free <= 0 || this.stopped) return;
      let claimed: ClaimedDelivery[];
      try {
        claimed = await this.store.claimDue(free, this.settings.perEndpoint, this.held, this.settings.leaseSeconds);
      } catch (err) {
        this.logger.error(`claiming deliveries failed: ${(err as Error).message}`);
        return;
      }
      for (const d of claimed) this.begin(d);
      if (claimed.length === free) this.again = true;
    } while (this.again && !this.stopped);
  }

  private begin(d: ClaimedDelivery): void {
    this.held.set(d.endpoint, (this.held.get(d.endpoint) ?? 0) + 1);
    const p: Promise<void> = this.deliver(d)
      .then(() => undefined)
      .catch((err: unknown) => this.logger.error(`delivery ${d.id} failed: ${(err as Error).message}`))
      .finally(() => {
        const left = (this.held.get(d.endpoint) ?? 1) - 1;
        if (left > 0) this.held.set(d.endpoint, left);
        else this.held.delete(d.endpoint);
        this.sending.delete(p);
        this.pump();
      });
    this.sending.add(p);
  }

  /** One try of one delivery, and its outcome written against the claim. */
  async deliver(d: ClaimedDelivery): Promise<SendResult> {
    const t = Math.floor(this.clock.now().getTime() / 1000);
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      'User-Agent': 'PayBridge-Webhooks/1',
      'PayBridge-Event-Id': d.eventId,
    };
    if (this.settings.secrets.length)
      headers['PayBridge-Signature'] = signatureHeader(d.body, this.settings.secrets, t);
    const result = await sendWebhook(d.endpoint, d.body, headers, {
      allowPrivate: this.settings.allowPrivate,
      timeoutMs: this.settings.timeoutMs,
    });
    if (result.ok) {
      if (await this.store.markDelivered(d, result.status ?? 200)) this.stats.inc('webhook_deliveries_delivered');
      else this.stats.inc('webhook_deliveries_claim_lost');
      return result;
    }
    const delayMs = retryDelayMs(d.backoffStep, this.settings.retryScheduleMs);
    const status = await this.store.markFailedTry(d, result.status, result.error ?? 'failed', delayMs);
    const where = `event ${d.eventId} to ${endpointOrigin(d.endpoint)}`;
    if (status === undefined) this.stats.inc('webhook_deliveries_claim_lost');
    else if (status === 'failed') {
      this.stats.inc('webhook_deliveries_failed');
      this.logger.warn(`${where} failed for good after ${d.attempts} tries: ${result.error}`);
    } else {
      this.stats.inc('webhook_deliveries_retried');
      this.logger.warn(`${where} try ${d.attempts}: ${result.error}; next in ${Math.round(delayMs / 1000)} s`);
    }
    return result;
  }
}
