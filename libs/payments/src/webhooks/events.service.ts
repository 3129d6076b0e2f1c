import { Inject, Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { PayError } from '#common';
import { type DeliveryRecord, DeliveryStore, type EventRecord } from './delivery-store.js';
import { EventWriter } from './event-writer.js';
import { WEBHOOK_SETTINGS, type WebhookSettings } from './webhook-settings.js';
import { WebhookWake } from './webhook-wake.js';

/** An event as the API answers it (API.md §10): the delivered body's fields and, on demand, deliveries. */
export interface EventView {
  id: string;
  type: string;
  orderId: string;
  createdAt: string;
  data: unknown;
  deliveries?: DeliveryView[];
}

export interface DeliveryView {
  endpoint: string;
  status: string;
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  lastAttemptAt: string | null;
  nextAttemptAt: string | null;
  deliveredAt: string | null;
}

export function toDeliveryView(d: DeliveryRecord): DeliveryView {
  return {
    endpoint: d.endpoint,
    status: d.status,
    attempts: d.attempts,
    lastStatusCode: d.lastStatusCode,
    lastError: d.lastError,
    lastAttemptAt: d.lastAttemptAt?.toISOString() ?? null,
    nextAttemptAt: d.nextAttemptAt?.toISOString() ?? null,
    deliveredAt: d.deliveredAt?.toISOString() ?? null,
  };
}

function toEventView(e: EventRecord, deliveries?: DeliveryRecord[]): EventView {
  const body = JSON.parse(e.body) as { createdAt?: string; data?: unknown };
  return {
    id: e.id,
    type: e.type,
    orderId: e.orderId,
    createdAt: body.createdAt ?? e.createdAt.toISOString(),
    data: body.data ?? null,
    ...(deliveries ? { deliveries: deliveries.map(toDeliveryView) } : {}),
  };
}

const CURSOR_PATTERN = /^\d{1,19}$/;

/** Reading events and resending them (the HTTP side of API.md §10, for the service API and the console). */
@Injectable()
export class EventsService {
  constructor(
    private readonly store: DeliveryStore,
    private readonly writer: EventWriter,
    private readonly wake: WebhookWake,
    @Inject(WEBHOOK_SETTINGS) private readonly settings: WebhookSettings,
  ) {}

  /** Newest first; `nextCursor` (opaque) asks for the page after this one, null on the last page. */
  async list(q: { orderId?: string; type?: string; limit?: number; cursor?: string }): Promise<{
    items: EventView[];
    nextCursor: string | null;
  }> {
    const limit = q.limit ?? 20;
    let beforeSeq: string | undefined;
    if (q.cursor !== undefined) {
      beforeSeq = Buffer.from(q.cursor, 'base64url').toString('utf8');
      if (!CURSOR_PATTERN.test(beforeSeq)) throw new PayError('INVALID_PARAMS', 'cursor is not one this API gave');
    }
    const rows = await this.store.listEvents({ orderId: q.orderId, type: q.type, beforeSeq, limit: limit + 1 });
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map((e) => toEventView(e)),
      nextCursor: rows.length > limit && last ? Buffer.from(last.seq, 'utf8').toString('base64url') : null,
    };
  }

  async get(id: string): Promise<EventView> {
    const event = await this.find(id);
    return toEventView(event, await this.store.deliveriesOf([event.id]));
  }

  /**
   * Delivers the event again now, with the same id and bytes, to its endpoints and any endpoint
   * configured since; each delivery gets a fresh retry window. `audit` runs in the transaction that
   * restarts the deliveries.
   */
  async resend(id: string, audit?: (em: EntityManager) => Promise<void>): Promise<EventView> {
    const event = await this.find(id);
    const endpoints = this.writer.endpointsOf(await this.store.notifyUrlOf(event.orderId));
    await this.store.resend(event.id, endpoints, this.settings.retryForMs, audit);
    this.wake.fire();
    return toEventView(event, await this.store.deliveriesOf([event.id]));
  }

  private async find(id: string): Promise<EventRecord> {
    const event = id.length <= 40 ? await this.store.findEvent(id) : undefined;
    if (!event) throw new PayError('EVENT_NOT_EXIST', `event ${id.slice(0, 40)} does not exist`);
    return event;
  }
}
