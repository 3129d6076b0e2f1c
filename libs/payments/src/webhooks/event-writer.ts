import { randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { Clock } from '#common';
import { DeliveryStore } from './delivery-store.js';
import { type EventType, WEBHOOK_SETTINGS, type WebhookSettings } from './webhook-settings.js';
import { WebhookWake } from './webhook-wake.js';

export interface NewEvent {
  readonly type: EventType;
  readonly orderId: string;
  /** `{ order: OrderView }`, plus `refund` for refund events: nothing secret (API.md §10). */
  readonly data: Record<string, unknown>;
}

export const newEventId = (): string => `evt_${randomBytes(16).toString('hex')}`;

/**
 * Writes an event and its deliveries (the order's notifyUrl and each WEBHOOK_URLS entry) in the
 * caller's transaction, so the event exists exactly when the change it reports does. The body is
 * serialised once here and delivered as these bytes on every try and every resend.
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
    await this.store.insertEvent({ id, type: e.type, orderId: e.orderId, body, createdAt }, em);
    const endpoints = await this.endpointsOf(e.orderId, em);
    await this.store.insertDeliveries(id, endpoints, this.settings.retryForMs, em);
    if (endpoints.length) this.wake.afterCommit(em);
    return id;
  }

  /** Where an event of this order goes now: its notifyUrl, then every configured endpoint. */
  async endpointsOf(orderId: string, em: EntityManager): Promise<string[]> {
    const notifyUrl = await this.store.notifyUrlOf(orderId, em);
    return [...new Set([...(notifyUrl ? [notifyUrl] : []), ...this.settings.endpoints])];
  }
}
