import { Injectable, type OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource, EntityManager, EntitySubscriberInterface, TransactionCommitEvent } from 'typeorm';

/**
 * Wakes this process's publisher when a transaction that wrote an event commits, so a new event leaves
 * at once instead of at the next poll. Other processes find it by their poll (at most a second later):
 * on the embedded database LISTEN/NOTIFY has no second process to reach, and on PostgreSQL a poll of an
 * indexed due-time costs less than a dedicated LISTEN connection per process.
 */
@Injectable()
export class WebhookWake implements OnModuleInit {
  private readonly pending = new WeakSet<object>();
  private readonly listeners = new Set<() => void>();

  constructor(@InjectDataSource() private readonly ds: DataSource) {}

  onModuleInit(): void {
    const subscriber: EntitySubscriberInterface = {
      afterTransactionCommit: (ev: TransactionCommitEvent) => {
        // Fired for savepoint releases too: only the outermost commit makes the event visible.
        if (ev.queryRunner.isTransactionActive || !this.pending.has(ev.queryRunner)) return;
        this.pending.delete(ev.queryRunner);
        this.fire();
      },
      afterTransactionRollback: (ev) => {
        if (!ev.queryRunner.isTransactionActive) this.pending.delete(ev.queryRunner);
      },
    };
    this.ds.subscribers.push(subscriber);
  }

  /** Called by the writer: wake once `em`'s transaction commits (at once when there is none). */
  afterCommit(em: EntityManager): void {
    const qr = em.queryRunner;
    if (qr?.isTransactionActive) this.pending.add(qr);
    else this.fire();
  }

  onWake(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  fire(): void {
    for (const fn of this.listeners) fn();
  }
}
