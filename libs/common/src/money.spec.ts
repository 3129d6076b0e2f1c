import fc from 'fast-check';
import { PayError } from './errors.js';
import { formatMinor, parseAmount, parseChannelDecimal, parseMinorString } from './money.js';

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
