import fc from 'fast-check';
import { quoteMoneyLiterals } from './json-body.js';

/** What the API's body parser makes of a JSON text (the object path). */
const read = (text: string): unknown => JSON.parse(quoteMoneyLiterals(text));

/** RFC 8259 number literals, including the ones a float cannot hold. */
const numberLiteral = fc
  .tuple(
    fc.boolean(),
    fc.oneof(fc.constant('0'), fc.stringMatching(/^[1-9][0-9]{0,20}$/)),
    fc.option(fc.stringMatching(/^[0-9]{1,20}$/), { nil: undefined }),
    fc.option(fc.tuple(fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), fc.stringMatching(/^[0-9]{1,3}$/)), {
      nil: undefined,
    }),
  )
  .map(([neg, int, frac, exp]) => `${neg ? '-' : ''}${int}${frac ? `.${frac}` : ''}${exp ? exp.join('') : ''}`);

describe('quoteMoneyLiterals (issue 9 item 5)', () => {
  it.each(['1e2', '1E2', '99.999999999999999', '-0', '100', '99.99', '0.1', '1.5e-3'])(
    'hands the top-level amount %p on as its exact text',
    (literal) => {
      expect(read(`{"subject":"x","amount":${literal}}`)).toEqual({ subject: 'x', amount: literal });
      expect(read(`{ "amount" :\n\t${literal} , "n": 1}`)).toEqual({ amount: literal, n: 1 });
    },
  );

  it('finds the field however its name is escaped, and only at the top level', () => {
    expect(read('{"\\u0061mount": 1e2}')).toEqual({ amount: '1e2' });
    expect(read('{"metadata": {"amount": 1.5}, "list": [{"amount": 2}], "amount": 3}')).toEqual({
      metadata: { amount: 1.5 },
      list: [{ amount: 2 }],
      amount: '3',
    });
    expect(read('{"note": "\\"amount\\": 1e2", "x": 1e2}')).toEqual({ note: '"amount": 1e2', x: 100 });
    expect(read('{"amountX": 1.0, "timeoutMinutes": 30}')).toEqual({ amountX: 1, timeoutMinutes: 30 });
    expect(read('[{"amount": 1e2}]')).toEqual([{ amount: 100 }]);
  });

  it('keeps the exact literal of any number in the amount field (property)', () => {
    fc.assert(
      fc.property(numberLiteral, fc.string(), (literal, subject) => {
        const body = `{"subject":${JSON.stringify(subject)},"amount":${literal}}`;
        expect(read(body)).toEqual({ subject, amount: literal });
      }),
    );
  });

  it('changes nothing else: any JSON object reads as JSON.parse reads it, but a numeric top-level amount (property)', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.constantFrom(undefined, 2, '\t'), (obj, space) => {
        const text = JSON.stringify(obj, null, space);
        const expected: Record<string, unknown> = JSON.parse(text) as Record<string, unknown>;
        const amount = expected['amount'];
        if (typeof amount === 'number') expected['amount'] = JSON.stringify(amount);
        expect(read(text)).toEqual(expected);
      }),
    );
  });

  it('never makes invalid JSON valid (property)', () => {
    const jsonish = fc.stringMatching(/^[{}[\]":,\s\-+.eE0-9a-z\\]{0,40}$/);
    fc.assert(
      fc.property(
        fc.oneof(
          jsonish,
          jsonish.map((s) => `{"amount":${s}`),
        ),
        (text) => {
          let valid = true;
          try {
            JSON.parse(text);
          } catch {
            valid = false;
          }
          if (valid) return;
          expect(() => JSON.parse(quoteMoneyLiterals(text))).toThrow(SyntaxError);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
