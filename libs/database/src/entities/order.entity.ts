import { Column, Entity, PrimaryColumn } from 'typeorm';
import { bigintNumber } from './bigint.transformer.js';

export type OrderStatus = 'wait' | 'success' | 'close' | 'timeout';

@Entity({ name: 'orders' })
export class OrderEntity {
  @PrimaryColumn('uuid') id: string;
  @Column({ name: 'order_id', type: 'varchar' }) orderId: string;
  @Column({ type: 'varchar' }) subject: string;
  @Column({ name: 'amount_minor', type: 'bigint', transformer: bigintNumber }) amountMinor: number;
  @Column({ type: 'char' }) currency: string;
  @Column({ type: 'varchar' }) status: OrderStatus;
  @Column({ type: 'varchar', nullable: true }) channel: string | null;
  @Column({ name: 'pay_type', type: 'varchar', nullable: true }) payType: string | null;
  @Column({ name: 'channel_trade_no', type: 'varchar', nullable: true }) channelTradeNo: string | null;
  @Column({ name: 'paid_attempt_id', type: 'uuid', nullable: true }) paidAttemptId: string | null;
  @Column({ name: 'pay_time', type: 'timestamptz', nullable: true }) payTime: Date | null;
  @Column({ name: 'expire_time', type: 'timestamptz' }) expireTime: Date;
  @Column({ name: 'notify_url', type: 'varchar', nullable: true }) notifyUrl: string | null;
  @Column({ type: 'jsonb', nullable: true }) metadata: Record<string, unknown> | null;
  @Column({ name: 'refunded_minor', type: 'bigint', transformer: bigintNumber }) refundedMinor: number;
  @Column({ type: 'integer' }) version: number;
  @Column({ name: 'closed_reason', type: 'varchar', nullable: true }) closedReason: string | null;
  @Column({ name: 'cancel_requested_at', type: 'timestamptz', nullable: true }) cancelRequestedAt: Date | null;
  @Column({ name: 'sweep_after', type: 'timestamptz', nullable: true }) sweepAfter: Date | null;
  @Column({ name: 'sweep_attempts', type: 'integer' }) sweepAttempts: number;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @Column({ name: 'updated_at', type: 'timestamptz' }) updatedAt: Date;
}
