import { randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { Clock } from '#common';
import type { OrderRecord } from '../order-store.js';
import { DeliveryStore } from './delivery-store.js';
import { type EventType, WEBHOOK_SETTINGS, type WebhookSettings } from './webhook-settings.js';
import { WebhookWake } from './webhook-wake.js';

export interface NewEvent {
  readonly type: EventType;
  /**
   * The order the event is about, as the caller's transaction has it: its orderId, and its notifyUrl
   * (set at create, never changed) as the first endpoint. No read of the order is needed here.
   */
  readonly order: Pick<OrderRecord, 'orderId' | 'notifyUrl'>;
  /** `{ order: OrderView }`, plus `refund` for refund events: nothing secret (API.md §10). */
  readonly data: Record<string, unknown>;
}

export const newEventId = (): string => `evt_${randomBytes(16).toString('hex')}`;

/**
 * Writes an event and its deliveries (the order's notifyUrl and each WEBHOOK_URLS entry) in the
 * caller's transaction, in one statement, so the event exists exactly when the change it reports does.
 * The body is serialised once here and delivered as these bytes on every try and every resend.
 */
@Injectable()
export class EventWriter {
  constructor(
    private readonly store: DeliveryStore,
    private readonly clock: Clock,
    private readonly wake: WebhookWake,
    @Inject(WEBHOOK_SETTINGS) private readonly settings: WebhookSettings,
  ) {}

  async write(em: EntityManager, e: NewEvent): Promise<string> {
    const id = newEventId();
    const createdAt = this.clock.now();
    const body = JSON.stringify({ id, type: e.type, createdAt: createdAt.toISOString(), data: e.data });
    const endpoints = this.endpointsOf(e.order.notifyUrl);
    await this.store.insertEvent(
      { id, type: e.type, orderId: e.order.orderId, body, createdAt },
      endpoints,
      this.settings.retryForMs,
      em,
    );
    if (endpoints.length) this.wake.afterCommit(em);
    return id;
  }

  /** Where an event of an order goes now: its notifyUrl, then every configured endpoint, each once. */
  endpointsOf(notifyUrl: string | null): string[] {
    return [...new Set([...(notifyUrl ? [notifyUrl] : []), ...this.settings.endpoints])];
  }
}
