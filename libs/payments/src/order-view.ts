import { formatMinor } from '#common';
import type { OrderRecord } from './order-store.js';
import type { PaymentRecord } from './refunds/refund-store.js';

/** The Order of API.md §4, as answered to clients and carried by events. */
export interface OrderView {
  orderId: string;
  subject: string;
  amount: string;
  currency: string;
  status: string;
  channel: string | null;
  payType: string | null;
  channelTradeNo: string | null;
  payTime: string | null;
  expireTime: string;
  createdAt: string;
  refundedAmount: string;
  /** `none`, `partial` or `full`: how much of the kept payment has been refunded. */
  refundStatus: 'none' | 'partial' | 'full';
  metadata: Record<string, unknown> | null;
  /** Every payment the order received (a second or late one too), when the caller loaded them. */
  payments?: PaymentView[];
}

/** One payment of an order (a paid attempt), API.md §4. */
export interface PaymentView {
  channel: string;
  payType: string;
  amount: string;
  currency: string;
  channelTradeNo: string | null;
  paidAt: string | null;
  refundedAmount: string;
  /** A payment the order did not keep: a second payment of a paid order. */
  second: boolean;
  /** A payment that landed after the order was closed or timed out. */
  late: boolean;
}

export function toOrderView(o: OrderRecord, payments?: readonly PaymentRecord[]): OrderView {
  const view: OrderView = {
    orderId: o.orderId,
    subject: o.subject,
    amount: formatMinor(o.amountMinor, o.currency),
    currency: o.currency,
    status: o.status,
    channel: o.channel,
    payType: o.payType,
    channelTradeNo: o.channelTradeNo,
    payTime: o.payTime?.toISOString() ?? null,
    expireTime: o.expireTime.toISOString(),
    createdAt: o.createdAt.toISOString(),
    refundedAmount: formatMinor(o.refundedMinor, o.currency),
    refundStatus: o.refundedMinor === 0 ? 'none' : o.refundedMinor >= o.amountMinor ? 'full' : 'partial',
    metadata: o.metadata,
  };
  if (payments) view.payments = payments.map((p) => toPaymentView(o, p));
  return view;
}

export function toPaymentView(o: OrderRecord, p: PaymentRecord): PaymentView {
  return {
    channel: p.channel,
    payType: p.payType,
    amount: formatMinor(p.amountMinor, p.currency),
    currency: p.currency,
    channelTradeNo: p.channelTradeNo,
    paidAt: p.paidAt?.toISOString() ?? null,
    refundedAmount: formatMinor(p.refundedMinor, p.currency),
    second: o.status === 'success' && p.attemptId !== o.paidAttemptId,
    late: o.status === 'close' || o.status === 'timeout',
  };
}
