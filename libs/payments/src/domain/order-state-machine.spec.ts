import {
  ATTEMPT_STATUSES,
  ORDER_STATUSES,
  attemptSourcesFor,
  canTransitionAttempt,
  canTransitionOrder,
  orderSourcesFor,
} from './order-state-machine.js';

describe('order state machine', () => {
  const allowed = new Set(['wait>success', 'wait>close', 'wait>timeout']);

  for (const from of ORDER_STATUSES) {
    for (const to of ORDER_STATUSES) {
      const key = `${from}>${to}`;
      it(`${key} is ${allowed.has(key) ? 'allowed' : 'refused'}`, () => {
        expect(canTransitionOrder(from, to)).toBe(allowed.has(key));
      });
    }
  }

  it('never leaves a final status (a late payment does not reopen close or timeout) and never goes back to wait', () => {
    for (const final of ['success', 'close', 'timeout'] as const)
      for (const to of ORDER_STATUSES) expect(canTransitionOrder(final, to)).toBe(false);
    for (const from of ORDER_STATUSES) expect(canTransitionOrder(from, 'wait')).toBe(false);
  });

  it('derives the compare-and-set sources from the table', () => {
    expect(orderSourcesFor('success')).toEqual(['wait']);
    expect(orderSourcesFor('timeout')).toEqual(['wait']);
    expect(orderSourcesFor('wait')).toEqual([]);
  });
});

describe('attempt state machine', () => {
  const allowed = new Set(['open>paid', 'open>closed', 'open>failed', 'closed>paid', 'failed>paid']);
  for (const from of ATTEMPT_STATUSES) {
    for (const to of ATTEMPT_STATUSES) {
      const key = `${from}>${to}`;
      it(`${key} is ${allowed.has(key) ? 'allowed' : 'refused'}`, () => {
        expect(canTransitionAttempt(from, to)).toBe(allowed.has(key));
      });
    }
  }
  it('derives sources', () => {
    expect(attemptSourcesFor('paid').sort()).toEqual(['closed', 'failed', 'open']);
    expect(attemptSourcesFor('closed')).toEqual(['open']);
  });
});
