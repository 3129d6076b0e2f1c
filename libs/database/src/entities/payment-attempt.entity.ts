import { Column, Entity, PrimaryColumn } from 'typeorm';
import { bigintNumber } from './bigint.transformer.js';

/** `open`: the channel has, or may have, this trade (the row is written before the call). */
export type AttemptStatus = 'open' | 'paid' | 'closed' | 'failed';

@Entity({ name: 'payment_attempts' })
export class PaymentAttemptEntity {
  @PrimaryColumn('uuid') id: string;
  @Column({ name: 'order_pk', type: 'uuid' }) orderPk: string;
  @Column({ name: 'order_id', type: 'varchar' }) orderId: string;
  @Column({ type: 'varchar' }) channel: string;
  @Column({ name: 'channel_type', type: 'varchar' }) channelType: string;
  @Column({ name: 'pay_type', type: 'varchar' }) payType: string;
  @Column({ name: 'out_trade_no', type: 'varchar' }) outTradeNo: string;
  @Column({ name: 'amount_minor', type: 'bigint', transformer: bigintNumber }) amountMinor: number;
  @Column({ type: 'char' }) currency: string;
  @Column({ type: 'varchar' }) status: AttemptStatus;
  @Column({ name: 'channel_trade_no', type: 'varchar', nullable: true }) channelTradeNo: string | null;
  @Column({ name: 'pay_url', type: 'text', nullable: true }) payUrl: string | null;
  @Column({ name: 'paid_at', type: 'timestamptz', nullable: true }) paidAt: Date | null;
  @Column({ name: 'closed_at', type: 'timestamptz', nullable: true }) closedAt: Date | null;
  @Column({ name: 'next_sync_at', type: 'timestamptz', nullable: true }) nextSyncAt: Date | null;
  @Column({ name: 'creating_until', type: 'timestamptz', nullable: true }) creatingUntil: Date | null;
  @Column({ name: 'sync_count', type: 'integer' }) syncCount: number;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @Column({ name: 'updated_at', type: 'timestamptz' }) updatedAt: Date;
}
