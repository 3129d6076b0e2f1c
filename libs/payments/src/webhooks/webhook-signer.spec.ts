import { createHmac, timingSafeEqual } from 'node:crypto';
import { signatureHeader } from './webhook-signer.js';

/** A receiver's check written from the contract alone (API.md §10), not from the signer. */
function receiverAccepts(header: string, body: string, secret: string, now: number): boolean {
  const parts = header.split(',').map((p) => p.split('='));
  const t = Number(parts.find(([k]) => k === 't')?.[1]);
  if (!Number.isInteger(t) || Math.abs(now - t) > 300) return false;
  const want = createHmac('sha256', secret).update(`${t}.${body}`).digest();
  return parts
    .filter(([k]) => k === 'v1')
    .some(([, v]) => v !== undefined && v.length === 64 && timingSafeEqual(Buffer.from(v, 'hex'), want));
}

describe('signatureHeader', () => {
  const body = '{"id":"evt_1","type":"order.succeeded","createdAt":"2025-01-01T00:00:00.000Z","data":{}}';

  it('matches a hand-computed HMAC-SHA256 of "t.body"', () => {
    const sut = signatureHeader(body, ['whsec_0123456789abcdef'], 1_700_000_000);
    const hex = createHmac('sha256', 'whsec_0123456789abcdef').update(`1700000000.${body}`).digest('hex');
    expect(sut).toBe(`t=1700000000,v1=${hex}`);
  });

  it('carries one v1 per secret, in order, so either side of a rotation verifies', () => {
    const sut = signatureHeader(body, ['old-secret-0123456789', 'new-secret-0123456789'], 1_700_000_000);
    expect(sut.split(',').filter((p) => p.startsWith('v1=')).length).toBe(2);
    expect(receiverAccepts(sut, body, 'old-secret-0123456789', 1_700_000_100)).toBe(true);
    expect(receiverAccepts(sut, body, 'new-secret-0123456789', 1_700_000_100)).toBe(true);
    expect(receiverAccepts(sut, body, 'other-secret-012345678', 1_700_000_100)).toBe(false);
  });

  it('does not verify a changed body or an old timestamp', () => {
    const sut = signatureHeader(body, ['whsec_0123456789abcdef'], 1_700_000_000);
    expect(receiverAccepts(sut, body.replace('evt_1', 'evt_2'), 'whsec_0123456789abcdef', 1_700_000_000)).toBe(false);
    expect(receiverAccepts(sut, body, 'whsec_0123456789abcdef', 1_700_000_301)).toBe(false);
  });

  it('refuses a time that is not unix seconds', () => {
    expect(() => signatureHeader(body, ['whsec_0123456789abcdef'], 1.5)).toThrow(/unix seconds/);
  });
});
