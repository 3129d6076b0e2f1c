/** Reading raw SQL answers (the stores use `query` with hand-written SQL, not entities). */
export type Row = Record<string, unknown>;

/** TypeORM answers UPDATE/DELETE with [rows, count] and INSERT/SELECT with rows: normalise to rows. */
export function rowsOf(result: unknown): Row[] {
  if (Array.isArray(result) && result.length === 2 && Array.isArray(result[0]) && typeof result[1] === 'number') {
    return result[0] as Row[];
  }
  return result as Row[];
}

/** The row count of an UPDATE/DELETE as TypeORM answers it ([rows, count]). */
export function affectedOf(result: unknown): number {
  return Array.isArray(result) && typeof result[1] === 'number' ? result[1] : 0;
}

/** A bigint amount column as a number of minor units; refuses what a double cannot hold exactly. */
export const num = (v: unknown): number => {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error('amount column out of the safe integer range');
  return n;
};

export const date = (v: unknown): Date | null => (v === null || v === undefined ? null : new Date(v as string | Date));

/** A text column (a json one is answered as its JSON text). */
export const str = (v: unknown): string | null =>
  typeof v === 'string' ? v : v === null || v === undefined ? null : JSON.stringify(v);
