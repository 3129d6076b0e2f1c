import { createHash } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { PayError } from '#common';
import { ChannelRegistry, type ChannelType, type NotifyReply, type RawNotify, type VerifiedNotify } from '#channels';
import { OrderStore } from '../order-store.js';
import { PaymentTransitions } from '../payment-transitions.js';
import { RefundService } from '../refunds/refund.service.js';
import { PaymentMetrics } from '../metrics/payment-metrics.js';

/** What became of a notify; kept in the inbox beside the raw request (and listed in the OpenAPI document). */
export const NOTIFY_VERDICTS = [
  'applied', // moved the attempt/order
  'duplicate', // already applied before: acknowledged again
  'second_payment', // a payment of an order already paid through another attempt: recorded
  'late_payment', // a payment of an order that was closed or had timed out: recorded
  'refund_applied', // refund news that settled a pending refund
  'refund_known', // refund news we already had (or `pending` news)
  'refund_unknown', // refund news of a refund PayBridge did not make (a merchant-console refund): kept, acknowledged
  'no_change', // valid, nothing to move (pending, or closed/failed news already known)
  'unknown_instance',
  'refused', // the channel's verification failed: signature, addressee, result code, unreadable fields (detail says which)
  'unknown_order',
  'amount_mismatch',
  'error',
] as const;

export type NotifyVerdict = (typeof NOTIFY_VERDICTS)[number];

const ACCEPTED: ReadonlySet<NotifyVerdict> = new Set([
  'applied',
  'duplicate',
  'second_payment',
  'late_payment',
  'refund_applied',
  'refund_known',
  'refund_unknown',
  'no_change',
]);

/** Verdicts anyone can cause without a channel's key: they count toward the per-source limit. */
export const REFUSED_UNSIGNED: ReadonlySet<NotifyVerdict> = new Set(['unknown_instance', 'refused']);

/** The reply to send and what became of the notify. */
export interface NotifyOutcome extends NotifyReply {
  readonly verdict: NotifyVerdict;
}

export interface NotifyHandleOptions {
  /**
   * false: a refused notify (unknown instance, failed verification) leaves no inbox row at all; the
   * caller uses it for a source over its refused-notify limit. Default true.
   */
  readonly recordRefused?: boolean;
}

/** How much of a refused notify's body the inbox keeps (the housekeeping job drops them after 30 days). */
const REFUSED_BODY_KEPT_BYTES = 4096;

/** Headers worth keeping with the raw body (the rest is transport noise). */
const KEPT_HEADERS = ['content-type', 'client-id', 'request-time', 'signature', 'user-agent', 'x-forwarded-for'];

/**
 * The notify pipeline every channel shares (STYLE.md, after hyperswitch): keep the raw request, verify
 * its signature through its channel instance, check the business fields, apply the transition and
 * record the verdict in ONE transaction, and answer the provider's acceptance bytes only after commit.
 */
@Injectable()
export class NotifyService {
  private readonly logger = new Logger('Notify');

  constructor(
    private readonly registry: ChannelRegistry,
    private readonly store: OrderStore,
    private readonly transitions: PaymentTransitions,
    private readonly refunds: RefundService,
    private readonly metrics: PaymentMetrics,
  ) {}

  async handle(type: ChannelType, raw: RawNotify, opts: NotifyHandleOptions = {}): Promise<NotifyOutcome> {
    const outcome = await this.handleOnce(type, raw, opts);
    this.metrics.notifyVerdicts.inc({ channel_type: type, verdict: outcome.verdict });
    return outcome;
  }

  private async handleOnce(type: ChannelType, raw: RawNotify, opts: NotifyHandleOptions): Promise<NotifyOutcome> {
    const recordRefused = opts.recordRefused ?? true;
    const provider = this.registry.provider(type);
    if (!provider) throw new PayError('CHANNEL_NOT_FOUND', `no ${type} channel`);
    const channel = this.registry.findForNotify(type, raw);
    if (!channel) {
      // Unreadable or not addressed to us: nothing was verified, so only its hash and a counter are kept.
      if (recordRefused) {
        await this.record(type, undefined, raw, 'unknown_instance', 'no configured instance matches the notify');
      }
      return { ...provider.rejectReply(), verdict: 'unknown_instance' };
    }
    let verified: VerifiedNotify;
    try {
      verified = await channel.verifyNotify(raw);
    } catch (err) {
      const why = err instanceof PayError ? err.message : 'verification failed';
      if (recordRefused) {
        this.logger.warn(`rejected ${channel.fullName} notify: ${why}`);
        await this.record(type, channel.fullName, raw, 'refused', why);
      }
      return { ...channel.notifyReply('rejected'), verdict: 'refused' };
    }
    try {
      const verdict = await this.store.transaction(async (em) => {
        const v = await this.apply(channel.fullName, verified, em);
        await this.record(type, channel.fullName, raw, v.verdict, v.detail, em, v.orderId, verified.outTradeNo);
        return v.verdict;
      });
      return { ...channel.notifyReply(ACCEPTED.has(verdict) ? 'accepted' : 'rejected'), verdict };
    } catch (err) {
      // Nothing was committed: the provider will retry. Keep the request with an error verdict.
      this.logger.error(`notify of ${channel.fullName} for ${verified.outTradeNo} failed: ${(err as Error).message}`);
      await this.record(type, channel.fullName, raw, 'error', 'processing failed').catch(() => undefined);
      return { ...channel.notifyReply('rejected'), verdict: 'error' };
    }
  }

  private async apply(
    channel: string,
    n: VerifiedNotify,
    em: EntityManager,
  ): Promise<{ verdict: NotifyVerdict; detail?: string; orderId?: string }> {
    if (n.kind === 'refund') {
      // Refund news is never read as a payment.
      if (!n.refund) return { verdict: 'refused', detail: 'refund news without a refund' };
      const settled = await this.refunds.applyNews(channel, n.refund, em);
      if (!settled) return { verdict: 'refund_unknown', detail: n.refund.refundId.slice(0, 64) };
      const orderId = settled.refund.orderId;
      switch (settled.kind) {
        case 'succeeded':
        case 'failed':
          return { verdict: 'refund_applied', detail: `${settled.refund.refundId} ${settled.kind}`, orderId };
        case 'pending':
        case 'unchanged':
          return { verdict: 'refund_known', detail: settled.refund.refundId, orderId };
        case 'amount_mismatch':
          return { verdict: 'amount_mismatch', detail: `refund ${settled.reported}`, orderId };
      }
    }
    // The amount and currency are checked where every report of a payment is: PaymentTransitions.
    const applied = await this.transitions.applyByOutTradeNo(channel, n.outTradeNo, n, em);
    if (!applied) return { verdict: 'unknown_order', detail: 'no attempt with that out_trade_no' };
    const { attempt, outcome } = applied;
    switch (outcome.kind) {
      case 'paid':
      case 'attempt_closed':
      case 'attempt_failed':
        return { verdict: 'applied', detail: outcome.kind, orderId: attempt.orderId };
      case 'already_paid':
        return { verdict: 'duplicate', orderId: attempt.orderId };
      case 'second_payment':
      case 'late_payment':
        return { verdict: outcome.kind, orderId: attempt.orderId };
      case 'amount_mismatch':
        return { verdict: 'amount_mismatch', detail: outcome.reported, orderId: attempt.orderId };
      case 'no_change':
        return { verdict: 'no_change', detail: n.raw, orderId: attempt.orderId };
    }
  }

  /**
   * One inbox row per distinct payload; a repeat bumps its count and keeps the latest verdict. A notify
   * refused before any signature was checked (no instance matches: unreadable or not ours) is kept as
   * its SHA-256 and a counter only: a few hundred bytes whatever was sent.
   */
  private async record(
    type: ChannelType,
    channel: string | undefined,
    raw: RawNotify,
    verdict: NotifyVerdict,
    detail: string | undefined,
    em?: EntityManager,
    orderId?: string,
    outTradeNo?: string,
  ): Promise<void> {
    const unsigned = verdict === 'unknown_instance';
    const headers: Record<string, string> = {};
    for (const h of KEPT_HEADERS) {
      const v = raw.headers[h];
      if (v !== undefined) headers[h] = v.slice(0, unsigned ? 128 : 2048);
    }
    const hash = createHash('sha256')
      .update(raw.body)
      .update('\n')
      .update((raw.headers['signature'] ?? '').slice(0, 2048))
      .digest('hex');
    const m = em ?? this.store.ds.manager;
    await m.query(
      `INSERT INTO notify_inbox (channel_type, channel, payload_sha256, headers, body, verdict, verdict_detail, order_id, out_trade_no)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (channel_type, payload_sha256) DO UPDATE
         SET receive_count = notify_inbox.receive_count + 1, last_received_at = now(),
             verdict = EXCLUDED.verdict, verdict_detail = EXCLUDED.verdict_detail`,
      [
        type,
        channel ?? null,
        hash,
        JSON.stringify(headers),
        // Refused requests come from anyone: keep enough to investigate, not whatever they sent.
        unsigned
          ? ''
          : (ACCEPTED.has(verdict) || verdict === 'error' ? raw.body : raw.body.subarray(0, REFUSED_BODY_KEPT_BYTES))
              .toString('utf8')
              .replaceAll('\u0000', ''),
        verdict,
        detail?.slice(0, 256) ?? null,
        orderId ?? null,
        outTradeNo?.slice(0, 64) ?? null,
      ],
    );
  }
}
