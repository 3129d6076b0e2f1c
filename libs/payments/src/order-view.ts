import { formatMinor } from '#common';
import type { OrderRecord } from './order-store.js';

/** The Order of API.md §4, as answered to clients. */
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
  metadata: Record<string, unknown> | null;
}

export function toOrderView(o: OrderRecord): OrderView {
  return {
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
    metadata: o.metadata,
  };
}
