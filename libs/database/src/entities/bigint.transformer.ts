import type { ValueTransformer } from 'typeorm';

/** bigint columns come back from pg as strings; amounts are safe integers (≤ 10^16), so map to number. */
export const bigintNumber: ValueTransformer = {
  to: (v: number | null | undefined) => v,
  from: (v: string | null) => {
    if (v === null) return null;
    const n = Number(v);
    if (!Number.isSafeInteger(n)) throw new Error('bigint column out of the safe integer range');
    return n;
  },
};
