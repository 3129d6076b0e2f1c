import fc from 'fast-check';
import { PayError } from './errors.js';
import { currencyExponent, formatMinor, parseAmount, parseChannelDecimal, parseMinorString } from './money.js';

describe('parseAmount', () => {
  it.each([
    [99.99, 'CNY', 9999],
    ['99.99', 'CNY', 9999],
    [100, 'CNY', 10000],
    ['0.01', 'CNY', 1],
    ['100000000', 'CNY', 10_000_000_000],
    ['100000000.00', 'CNY', 10_000_000_000],
    ['5', 'JPY', 5],
    ['1.234', 'IQD', 1234],
  ])('parses %p %s as %d minor units', (input, currency, minor) => {
    expect(parseAmount(input, currency)).toEqual({ minor, currency });
  });

  it.each([
    0,
    -1,
    0.001,
    '1e3',
    'abc',
    100000000.01,
    '100000000.01',
    '',
    ' 1',
    '1.',
    '.5',
    NaN,
    Infinity,
    1e21,
    null,
    true,
    {},
    '0',
    '-0.01',
    '1.5' /* JPY below */,
  ])('refuses %p with INVALID_AMOUNT', (input) => {
    const currency = input === '1.5' ? 'JPY' : 'CNY';
    let caught: unknown;
    try {
      parseAmount(input, currency);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(PayError);
    expect((caught as PayError).code).toBe('INVALID_AMOUNT');
  });

  it('round-trips every cent amount through format and parse (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000_000_000 }), (minor) => {
        const text = formatMinor(minor, 'CNY');
        expect(parseAmount(text, 'CNY').minor).toBe(minor);
        expect(parseChannelDecimal(text, 'CNY')).toBe(minor);
      }),
    );
  });

  it('parses a JSON number exactly as its shortest decimal text (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 999_999_999 }), (minor) => {
        const asNumber = Number(formatMinor(minor, 'CNY'));
        expect(parseAmount(asNumber, 'CNY').minor).toBe(minor);
      }),
    );
  });
});

describe('parseAmount on the literal text of a JSON number (issue 9 item 5)', () => {
  const CURRENCIES = ['CNY', 'JPY', 'KWD'] as const;
  const code = (input: unknown, currency: string): string | undefined => {
    try {
      parseAmount(input, currency);
      return undefined;
    } catch (e) {
      return (e as PayError).code;
    }
  };

  it.each(['1e2', '1E2', '1e+2', '99.999999999999999', '-0', '0.0', '1.000', '100.100', '1.5e1'])(
    'refuses the literal %p for CNY',
    (text) => {
      expect(code(text, 'CNY')).toBe('INVALID_AMOUNT');
    },
  );

  it('refuses more fraction digits than the currency has, even when the float rounds to a valid amount (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...CURRENCIES),
        fc.bigInt({ min: 0n, max: 99_999_999n }),
        fc.integer({ min: 1, max: 20 }),
        fc.stringMatching(/^[0-9]{0,20}[1-9]$/),
        (currency, whole, extra, tail) => {
          const digits = currencyExponent(currency) + extra;
          const frac = tail.padStart(digits, '0').slice(-digits);
          if (!/[1-9]/.test(frac.slice(currencyExponent(currency)))) return; // nothing beyond the exponent
          expect(code(`${whole}.${frac}`, currency)).toBe('INVALID_AMOUNT');
        },
      ),
    );
  });

  it('refuses every exponent notation (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...CURRENCIES),
        fc.stringMatching(/^-?(0|[1-9][0-9]{0,5})(\.[0-9]{1,3})?[eE][+-]?[0-9]{1,3}$/),
        (currency, text) => {
          expect(code(text, currency)).toBe('INVALID_AMOUNT');
        },
      ),
    );
  });

  it('reads an accepted literal exactly: minor units equal the decimal arithmetic (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...CURRENCIES),
        fc.bigInt({ min: 0n, max: 100_000_000n }),
        fc.stringMatching(/^[0-9]{0,3}$/),
        (currency, whole, rawFrac) => {
          const e = currencyExponent(currency);
          const frac = rawFrac.slice(0, e);
          const text = frac ? `${whole}.${frac}` : `${whole}`;
          const minor = whole * 10n ** BigInt(e) + BigInt(frac.padEnd(e, '0') || '0');
          if (minor <= 0n || minor > 100_000_000n * 10n ** BigInt(e)) {
            expect(code(text, currency)).toBe('INVALID_AMOUNT');
          } else {
            expect(parseAmount(text, currency)).toEqual({ minor: Number(minor), currency });
          }
        },
      ),
    );
  });
});

describe('formatMinor', () => {
  it.each([
    [9999, 'CNY', '99.99'],
    [10000, 'CNY', '100.00'],
    [1, 'CNY', '0.01'],
    [5, 'JPY', '5'],
    [1, 'IQD', '0.001'],
  ])('formats %d %s as %s', (minor, currency, text) => {
    expect(formatMinor(minor, currency)).toBe(text);
  });

  it('refuses a non-integer', () => {
    expect(() => formatMinor(1.5, 'CNY')).toThrow('not an integer');
  });
});

describe('parseMinorString', () => {
  it('accepts plain integers only', () => {
    expect(parseMinorString('100')).toBe(100);
    expect(parseMinorString('0')).toBe(0);
    expect(parseMinorString('01')).toBeUndefined();
    expect(parseMinorString('1.0')).toBeUndefined();
    expect(parseMinorString('1e2')).toBeUndefined();
    expect(parseMinorString('-1')).toBeUndefined();
  });
});
