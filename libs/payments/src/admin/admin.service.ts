import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { PayError, formatMinor, isSupportedCurrency, parseAmount } from '#common';
import { ChannelRegistry } from '#channels';
import type { AttemptRecord, OrderRecord } from '../order-store.js';
import { OrderStore } from '../order-store.js';
import { type OrderView, toOrderView } from '../order-view.js';
import { PayService } from '../pay.service.js';
import { type CreateRefundInput, RefundService, type RefundView, toRefundView } from '../refunds/refund.service.js';
import { type RefundRecord, RefundStore } from '../refunds/refund-store.js';
import { type DeliveryView, EventsService, type EventView, toDeliveryView } from '../webhooks/events.service.js';
import { DeliveryStore } from '../webhooks/delivery-store.js';
import { AdminStore, type NotifyRecord, type OrderKey } from './admin-store.js';
import { type AuditEntry, type AuditOutcome, AuditStore } from './audit-store.js';

/** Who acts: the API key's name (or label) and role, and the request it came with. */
export interface Actor {
  readonly name: string;
  readonly role: string;
  readonly requestId: string;
}

export interface OrderSearchQuery {
  status?: string;
  channel?: string;
  q?: string;
  from?: string;
  to?: string;
  currency?: string;
  minAmount?: string;
  maxAmount?: string;
  limit?: number;
  cursor?: string;
}

export interface AttemptView {
  channel: string;
  payType: string;
  outTradeNo: string;
  status: string;
  amount: string;
  currency: string;
  channelTradeNo: string | null;
  createdAt: string;
  paidAt: string | null;
  closedAt: string | null;
}

export interface NotifyView {
  channelType: string;
  channel: string | null;
  verdict: string;
  verdictDetail: string | null;
  outTradeNo: string | null;
  receiveCount: number;
  firstReceivedAt: string;
  lastReceivedAt: string;
  /** The body as received with signatures blanked out; headers are never shown. */
  body: string;
}

export interface AuditView {
  id: string;
  actor: string;
  role: string;
  action: string;
  orderId: string | null;
  target: string | null;
  outcome: AuditOutcome;
  before: unknown;
  after: unknown;
  requestId: string;
  createdAt: string;
}

export interface TimelineItem {
  at: string;
  kind: 'order' | 'attempt' | 'refund' | 'notify' | 'event' | 'delivery' | 'audit';
  title: string;
  detail: string | null;
}

export interface AdminOrderDetail extends OrderView {
  /** What is left to refund of the kept payment (in flight refunds already held), decimal string. */
  refundableAmount: string;
  closedReason: string | null;
  notifyUrl: string | null;
  attempts: AttemptView[];
  refunds: RefundView[];
  notifies: NotifyView[];
  events: EventView[];
  audit: AuditView[];
  timeline: TimelineItem[];
}

export interface StatsView {
  bucket: 'day' | 'hour';
  from: string;
  to: string;
  timeZone: string;
  items: Array<{
    bucket: string;
    channel: string;
    currency: string;
    created: number;
    paid: number;
    closed: number;
    timedOut: number;
    paidAmount: string;
    refundedAmount: string;
    /** paid / created of the bucket's orders, as a decimal string with 4 places ("0.4231"). */
    conversionRate: string;
  }>;
}

const STATUSES = new Set(['wait', 'success', 'close', 'timeout']);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const PG_TIMESTAMP = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?[+-]\d\d(:\d\d){0,2}$/;
const MAX_BUCKETS = { day: 400, hour: 24 * 31 } as const;

export function toAttemptView(a: AttemptRecord): AttemptView {
  return {
    channel: a.channel,
    payType: a.payType,
    outTradeNo: a.outTradeNo,
    status: a.status,
    amount: formatMinor(a.amountMinor, a.currency),
    currency: a.currency,
    channelTradeNo: a.channelTradeNo,
    createdAt: a.createdAt.toISOString(),
    paidAt: a.paidAt?.toISOString() ?? null,
    closedAt: a.closedAt?.toISOString() ?? null,
  };
}

export function toAuditView(e: AuditEntry): AuditView {
  return {
    id: e.id,
    actor: e.actor,
    role: e.role,
    action: e.action,
    orderId: e.orderId,
    target: e.target,
    outcome: e.outcome,
    before: e.before,
    after: e.after,
    requestId: e.requestId,
    createdAt: e.createdAt.toISOString(),
  };
}

const NOTIFY_BODY_MAX = 8192;

/** A notify body fit to show: signature fields blanked (Alipay `sign`, WeChat `sign`/`paySign`). */
export function redactNotifyBody(channelType: string, body: string): string {
  let out = body;
  if (channelType === 'pays.WechatPayType' || body.trimStart().startsWith('<')) {
    out = body.replace(/<(sign|paySign)>[\s\S]*?<\/\1>/gi, '<$1>[redacted]</$1>');
  } else if (channelType === 'pays.AliPayType' && body.includes('=')) {
    const params = new URLSearchParams(body);
    const lines: string[] = [];
    for (const [k, v] of params) lines.push(`${k}=${/^sign$/i.test(k) ? '[redacted]' : v}`);
    out = lines.join('\n');
  }
  return out.length > NOTIFY_BODY_MAX ? `${out.slice(0, NOTIFY_BODY_MAX)}…` : out;
}

/** A delivery endpoint without credentials or query string (they may hold a token). */
export function safeEndpoint(endpoint: string): string {
  try {
    const u = new URL(endpoint);
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    return '(unparsable URL)';
  }
}

function toNotifyView(n: NotifyRecord): NotifyView {
  return {
    channelType: n.channelType,
    channel: n.channel,
    verdict: n.verdict,
    verdictDetail: n.verdictDetail,
    outTradeNo: n.outTradeNo,
    receiveCount: n.receiveCount,
    firstReceivedAt: n.firstReceivedAt.toISOString(),
    lastReceivedAt: n.lastReceivedAt.toISOString(),
    body: redactNotifyBody(n.channelType, n.body),
  };
}

function encodeCursor(key: OrderKey): string {
  return Buffer.from(JSON.stringify([key.createdAt, key.id]), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): OrderKey {
  const bad = new PayError('INVALID_PARAMS', 'cursor is not one this API gave');
  if (cursor.length > 200) throw bad;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw bad;
  }
  if (!Array.isArray(parsed) || parsed.length !== 2) throw bad;
  const [createdAt, id] = parsed as unknown[];
  if (typeof createdAt !== 'string' || !PG_TIMESTAMP.test(createdAt) || typeof id !== 'string' || !UUID.test(id))
    throw bad;
  return { createdAt, id };
}

function parseTime(v: string | undefined, name: string): Date | undefined {
  if (v === undefined || v === '') return undefined;
  // A bare date is the start of that day in UTC; anything else must be an ISO 8601 date-time.
  if (!/^\d{4}-\d\d-\d\d([T ][\d:.]+(Z|[+-]\d\d:?\d\d)?)?$/.test(v)) {
    throw new PayError('INVALID_PARAMS', `${name} must be an ISO 8601 date or date-time`);
  }
  const t = Date.parse(v.length === 10 ? `${v}T00:00:00Z` : v);
  if (!Number.isFinite(t)) throw new PayError('INVALID_PARAMS', `${name} must be an ISO 8601 date or date-time`);
  return new Date(t);
}

/** paid / created as "0.xxxx" from integers (no float on the way). */
export function ratio(paid: number, created: number): string {
  if (created === 0) return '0.0000';
  const tenThousandths = Math.floor((paid * 10_000 * 2 + created) / (created * 2)); // rounded half up
  return `${Math.floor(tenThousandths / 10_000)}.${String(tenThousandths % 10_000).padStart(4, '0')}`;
}

function isTimeZone(tz: string): boolean {
  if (!/^[A-Za-z_+\-/0-9]{1,64}$/.test(tz)) return false;
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/**
 * The admin console (API.md §11): order search, an order's whole story, stats, and the operator
 * actions, each written to the audit log in the transaction of its effect.
 */
@Injectable()
export class AdminService {
  constructor(
    private readonly store: AdminStore,
    private readonly audit: AuditStore,
    private readonly orders: OrderStore,
    private readonly pay: PayService,
    private readonly refunds: RefundService,
    private readonly refundStore: RefundStore,
    private readonly events: EventsService,
    private readonly deliveries: DeliveryStore,
    private readonly registry: ChannelRegistry,
  ) {}

  channels(): string[] {
    return this.registry.list().map((c) => c.fullName);
  }

  async searchOrders(q: OrderSearchQuery): Promise<{ items: OrderView[]; nextCursor: string | null }> {
    const limit = q.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 200) {
      throw new PayError('INVALID_PARAMS', 'limit must be an integer from 1 to 200');
    }
    if (q.status !== undefined && q.status !== '' && !STATUSES.has(q.status)) {
      throw new PayError('INVALID_PARAMS', 'status must be one of wait, success, close, timeout');
    }
    const currency = q.currency === undefined || q.currency === '' ? undefined : q.currency.toUpperCase();
    if (currency !== undefined && !isSupportedCurrency(currency)) {
      throw new PayError('INVALID_PARAMS', 'currency is not supported');
    }
    const amount = (v: string | undefined, name: string): number | undefined => {
      if (v === undefined || v === '') return undefined;
      try {
        return parseAmount(v, currency ?? 'CNY').minor;
      } catch {
        throw new PayError('INVALID_AMOUNT', `${name} must be a decimal amount such as 99.99`);
      }
    };
    const text = q.q?.trim();
    if (text !== undefined && text.length > 64) throw new PayError('INVALID_PARAMS', 'q must be at most 64 characters');
    if (q.channel !== undefined && q.channel.length > 64) throw new PayError('INVALID_PARAMS', 'unknown channel');
    const rows = await this.store.searchOrders({
      status: q.status || undefined,
      channel: q.channel || undefined,
      q: text || undefined,
      from: parseTime(q.from, 'from'),
      to: parseTime(q.to, 'to'),
      currency,
      minMinor: amount(q.minAmount, 'minAmount'),
      maxMinor: amount(q.maxAmount, 'maxAmount'),
      after: q.cursor ? decodeCursor(q.cursor) : undefined,
      limit: limit + 1,
    });
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map((r) => toOrderView(r.order)),
      nextCursor: rows.length > limit && last ? encodeCursor(last.key) : null,
    };
  }

  async order(orderId: string): Promise<AdminOrderDetail> {
    const order = orderId.length <= 32 ? await this.orders.findOrder(orderId) : undefined;
    if (!order) throw new PayError('ORDER_NOT_EXIST_ERROR', `order ${orderId.slice(0, 32)} does not exist`);
    const [attempts, payments, refunds, notifies, events, audit] = await Promise.all([
      this.store.attemptsOf(order.id),
      this.refundStore.paymentsOf(order.id),
      this.refundStore.refundsOf(order.id),
      this.store.notifiesOf(order.orderId),
      this.eventsOf(order.orderId),
      this.audit.ofOrder(order.orderId),
    ]);
    const kept = payments.find((p) => p.attemptId === order.paidAttemptId);
    const refundable = order.status === 'success' && kept ? kept.amountMinor - kept.refundHeldMinor : 0;
    const detail: AdminOrderDetail = {
      ...toOrderView(order, payments),
      refundableAmount: formatMinor(Math.max(0, refundable), order.currency),
      closedReason: order.closedReason,
      notifyUrl: order.notifyUrl === null ? null : safeEndpoint(order.notifyUrl),
      attempts: attempts.map(toAttemptView),
      refunds: refunds.map(toRefundView),
      notifies: notifies.map(toNotifyView),
      events,
      audit: audit.map(toAuditView),
      timeline: [],
    };
    detail.timeline = timelineOf(order, attempts, refunds, detail);
    return detail;
  }

  private async eventsOf(orderId: string): Promise<EventView[]> {
    const { items } = await this.events.list({ orderId, limit: 100 });
    const deliveries = await this.deliveries.deliveriesOf(items.map((e) => e.id));
    return items.reverse().map((e) => ({
      ...e,
      deliveries: deliveries
        .filter((d) => d.eventId === e.id)
        .map((d) => ({ ...toDeliveryView(d), endpoint: safeEndpoint(d.endpoint) })),
    }));
  }

  async stats(q: { from?: string; to?: string; bucket?: string; tz?: string }): Promise<StatsView> {
    const bucket = q.bucket ?? 'day';
    if (bucket !== 'day' && bucket !== 'hour') throw new PayError('INVALID_PARAMS', 'bucket must be day or hour');
    const timeZone = q.tz ?? 'UTC';
    if (!isTimeZone(timeZone))
      throw new PayError('INVALID_PARAMS', 'tz must be an IANA time zone such as Asia/Shanghai');
    const to = parseTime(q.to, 'to') ?? new Date();
    const span = bucket === 'day' ? 86_400_000 : 3_600_000;
    const from = parseTime(q.from, 'from') ?? new Date(to.getTime() - (bucket === 'day' ? 14 : 24) * span);
    if (from.getTime() >= to.getTime()) throw new PayError('INVALID_PARAMS', 'from must be before to');
    if ((to.getTime() - from.getTime()) / span > MAX_BUCKETS[bucket]) {
      throw new PayError('INVALID_PARAMS', `at most ${MAX_BUCKETS[bucket]} ${bucket}s at once`);
    }
    const rows = await this.store.stats(bucket, from, to, timeZone);
    return {
      bucket,
      from: from.toISOString(),
      to: to.toISOString(),
      timeZone,
      items: rows.map((r) => ({
        bucket: r.bucket.toISOString(),
        channel: r.channel,
        currency: r.currency,
        created: r.created,
        paid: r.paid,
        closed: r.closed,
        timedOut: r.timedOut,
        paidAmount: formatMinor(r.paidMinor, r.currency),
        refundedAmount: formatMinor(r.refundedMinor, r.currency),
        conversionRate: ratio(r.paid, r.created),
      })),
    };
  }

  async auditLog(q: { actor?: string; orderId?: string; limit?: number; cursor?: string }): Promise<{
    items: AuditView[];
    nextCursor: string | null;
  }> {
    const limit = q.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 200) {
      throw new PayError('INVALID_PARAMS', 'limit must be an integer from 1 to 200');
    }
    let beforeId: string | undefined;
    if (q.cursor) {
      beforeId = Buffer.from(q.cursor, 'base64url').toString('utf8');
      if (!/^\d{1,19}$/.test(beforeId)) throw new PayError('INVALID_PARAMS', 'cursor is not one this API gave');
    }
    const rows = await this.audit.list({
      actor: q.actor || undefined,
      orderId: q.orderId || undefined,
      beforeId,
      limit: limit + 1,
    });
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map(toAuditView),
      nextCursor: rows.length > limit && last ? Buffer.from(last.id, 'utf8').toString('base64url') : null,
    };
  }

  // ---- actions: each one's audit entry commits with its effect ----

  /** Asks the channels now. Its effects commit in their own transactions; the entry follows with the result. */
  async check(actor: Actor, orderId: string, channel?: string): Promise<OrderView> {
    const before = await this.pay.view(orderId);
    let after: OrderRecord;
    try {
      after = await this.pay.check(orderId, channel);
    } catch (err) {
      await this.refused(actor, 'order.check', orderId, null, before, err);
      throw err;
    }
    const view = await this.pay.viewOf(after);
    const changed = view.status !== before.status || view.channelTradeNo !== before.channelTradeNo;
    await this.orders.transaction((em) =>
      this.write(em, actor, 'order.check', orderId, channel ?? null, changed ? 'ok' : 'noop', before, view),
    );
    return view;
  }

  async cancel(actor: Actor, orderId: string): Promise<OrderView> {
    const before = await this.pay.view(orderId);
    let audited = false;
    let after: OrderRecord;
    try {
      after = await this.pay.cancel(orderId, async (em, done) => {
        audited = true;
        const view = toOrderView(done, await this.refundStore.paymentsOf(done.id, em));
        await this.write(em, actor, 'order.cancel', orderId, null, 'ok', before, view);
      });
    } catch (err) {
      await this.refused(actor, 'order.cancel', orderId, null, before, err);
      throw err;
    }
    const view = await this.pay.viewOf(after);
    if (!audited) {
      await this.orders.transaction((em) => this.write(em, actor, 'order.cancel', orderId, null, 'noop', before, view));
    }
    return view;
  }

  async refund(
    actor: Actor,
    orderId: string,
    input: CreateRefundInput,
  ): Promise<{ refund: RefundView; created: boolean }> {
    const before = await this.pay.view(orderId);
    let audited = false;
    let result: { refund: RefundRecord; created: boolean };
    try {
      result = await this.refunds.create(orderId, input, 'admin', async (em, refund) => {
        audited = true;
        await this.write(em, actor, 'refund.create', orderId, refund.refundId, 'ok', before, {
          refund: toRefundView(refund),
        });
      });
    } catch (err) {
      await this.refused(actor, 'refund.create', orderId, input.refundId ?? null, before, err);
      throw err;
    }
    const view = toRefundView(result.refund);
    if (!audited) {
      await this.orders.transaction((em) =>
        this.write(em, actor, 'refund.create', orderId, view.refundId, 'noop', before, { refund: view }),
      );
    }
    return { refund: view, created: result.created };
  }

  async resend(actor: Actor, eventId: string): Promise<EventView> {
    const before = await this.events.get(eventId);
    const snapshot = (deliveries: DeliveryView[] | undefined) =>
      (deliveries ?? []).map((d) => ({ ...d, endpoint: safeEndpoint(d.endpoint) }));
    const view = await this.events.resend(eventId, async (em) => {
      const rows: Array<Record<string, unknown>> = await em.query(
        `SELECT endpoint, status, attempts, next_attempt_at FROM event_deliveries WHERE event_id = $1 ORDER BY id`,
        [eventId],
      );
      await this.write(
        em,
        actor,
        'event.resend',
        before.orderId,
        eventId,
        'ok',
        { deliveries: snapshot(before.deliveries) },
        {
          deliveries: rows.map((r) => ({
            endpoint: safeEndpoint(String(r['endpoint'])),
            status: r['status'],
            attempts: Number(r['attempts']),
          })),
        },
      );
    });
    return { ...view, deliveries: snapshot(view.deliveries) };
  }

  private write(
    em: EntityManager,
    actor: Actor,
    action: string,
    orderId: string | null,
    target: string | null,
    outcome: AuditOutcome,
    before: unknown,
    after: unknown,
  ): Promise<void> {
    return this.audit.write(em, {
      actor: actor.name,
      role: actor.role,
      action,
      orderId,
      target,
      outcome,
      before,
      after,
      requestId: actor.requestId,
    });
  }

  /** A refused action is recorded too (what was tried and why it was refused), on its own. */
  private async refused(
    actor: Actor,
    action: string,
    orderId: string,
    target: string | null,
    before: unknown,
    err: unknown,
  ): Promise<void> {
    if (!(err instanceof PayError)) return; // an internal failure: the log has it, nothing was decided
    await this.orders.transaction((em) =>
      this.write(em, actor, action, orderId, target, 'refused', before, {
        error: { code: err.code, message: err.message },
      }),
    );
  }
}

function timelineOf(
  order: OrderRecord,
  attempts: AttemptRecord[],
  refunds: RefundRecord[],
  d: AdminOrderDetail,
): TimelineItem[] {
  const items: TimelineItem[] = [];
  const add = (at: Date | string | null, kind: TimelineItem['kind'], title: string, detail: string | null = null) => {
    if (at === null) return;
    items.push({ at: typeof at === 'string' ? at : at.toISOString(), kind, title, detail });
  };
  const money = (minor: number, currency: string) => `${formatMinor(minor, currency)} ${currency}`;
  add(order.createdAt, 'order', `order created: ${money(order.amountMinor, order.currency)}`, order.subject);
  for (const a of attempts) {
    add(a.createdAt, 'attempt', `payment started on ${a.channel} (${a.payType})`, a.outTradeNo);
    if (a.paidAt) add(a.paidAt, 'attempt', `paid on ${a.channel}`, a.channelTradeNo);
    if (a.closedAt && a.status !== 'paid') add(a.closedAt, 'attempt', `${a.channel} payment ${a.status}`);
  }
  if (order.status === 'close' || order.status === 'timeout') {
    add(order.updatedAt, 'order', order.status === 'close' ? 'order closed' : 'order timed out', order.closedReason);
  }
  for (const r of refunds) {
    add(
      r.createdAt,
      'refund',
      `refund ${r.refundId} of ${money(r.amountMinor, r.currency)} requested (${r.source})`,
      r.reason,
    );
    if (r.finishedAt) {
      add(
        r.finishedAt,
        'refund',
        `refund ${r.refundId} ${r.status === 'success' ? 'succeeded' : r.status}`,
        r.failureCode,
      );
    }
  }
  for (const n of d.notifies) {
    add(
      n.firstReceivedAt,
      'notify',
      `notify from ${n.channel ?? n.channelType}: ${n.verdict}`,
      n.receiveCount > 1 ? `received ${n.receiveCount} times` : n.verdictDetail,
    );
  }
  for (const e of d.events) {
    add(e.createdAt, 'event', `event ${e.type}`, e.id);
    for (const dl of e.deliveries ?? []) {
      if (dl.deliveredAt) add(dl.deliveredAt, 'delivery', `${e.type} delivered`, dl.endpoint);
      else if (dl.lastAttemptAt) {
        add(dl.lastAttemptAt, 'delivery', `${e.type} delivery ${dl.status} after ${dl.attempts} tries`, dl.endpoint);
      }
    }
  }
  for (const a of d.audit) add(a.createdAt, 'audit', `${a.actor}: ${a.action} (${a.outcome})`, a.target);
  return items.sort((x, y) => (x.at < y.at ? -1 : x.at > y.at ? 1 : 0));
}
