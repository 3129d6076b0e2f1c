import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource, EntityManager } from 'typeorm';

export type AuditOutcome = 'ok' | 'noop' | 'refused';

/** One audit entry to write: who did what to which order, before and after, under which request. */
export interface NewAuditEntry {
  readonly actor: string;
  readonly role: string;
  readonly action: string;
  readonly orderId: string | null;
  readonly target: string | null;
  readonly outcome: AuditOutcome;
  readonly before: unknown;
  readonly after: unknown;
  readonly requestId: string;
}

export interface AuditEntry extends NewAuditEntry {
  readonly id: string;
  readonly createdAt: Date;
}

type Row = Record<string, unknown>;

function rowsOf(result: unknown): Row[] {
  if (Array.isArray(result) && result.length === 2 && Array.isArray(result[0]) && typeof result[1] === 'number') {
    return result[0] as Row[];
  }
  return result as Row[];
}

const json = (v: unknown): unknown => (typeof v === 'string' ? (JSON.parse(v) as unknown) : (v ?? null));

export function toAuditEntry(r: Row): AuditEntry {
  return {
    id: String(r['id']),
    actor: String(r['actor']),
    role: String(r['role']),
    action: String(r['action']),
    orderId: typeof r['order_id'] === 'string' ? r['order_id'] : null,
    target: typeof r['target'] === 'string' ? r['target'] : null,
    outcome: r['outcome'] as AuditOutcome,
    before: json(r['before']),
    after: json(r['after']),
    requestId: String(r['request_id']),
    createdAt: new Date(r['created_at'] as string | Date),
  };
}

/**
 * The append-only audit log (a trigger refuses UPDATE, DELETE and TRUNCATE). Entries are written with
 * the EntityManager of the action's own transaction, so an entry exists exactly when its effect does.
 */
@Injectable()
export class AuditStore {
  constructor(@InjectDataSource() readonly ds: DataSource) {}

  async write(em: EntityManager, e: NewAuditEntry): Promise<void> {
    await em.query(
      `INSERT INTO audit_log (actor, role, action, order_id, target, outcome, before, after, request_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9)`,
      [
        e.actor.slice(0, 64),
        e.role,
        e.action,
        e.orderId,
        e.target,
        e.outcome,
        JSON.stringify(e.before ?? null),
        JSON.stringify(e.after ?? null),
        e.requestId.slice(0, 64),
      ],
    );
  }

  /** Newest first, keyset on id. */
  async list(f: { actor?: string; orderId?: string; beforeId?: string; limit: number }): Promise<AuditEntry[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (f.actor !== undefined) where.push(`actor = $${args.push(f.actor)}`);
    if (f.orderId !== undefined) where.push(`order_id = $${args.push(f.orderId)}`);
    if (f.beforeId !== undefined) where.push(`id < $${args.push(f.beforeId)}::bigint`);
    const sql = `SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
                  ORDER BY id DESC LIMIT $${args.push(f.limit)}`;
    return rowsOf(await this.ds.query(sql, args)).map(toAuditEntry);
  }

  async ofOrder(orderId: string): Promise<AuditEntry[]> {
    return rowsOf(await this.ds.query(`SELECT * FROM audit_log WHERE order_id = $1 ORDER BY id`, [orderId])).map(
      toAuditEntry,
    );
  }
}
