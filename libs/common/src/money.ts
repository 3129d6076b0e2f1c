import { PayError } from './errors.js';

/**
 * Money inside PayBridge is an integer count of minor units with an ISO 4217 currency. Decimal strings
 * exist only at the edges (HTTP input/output, channel wire formats). No float ever holds an amount.
 */
export interface Money {
  readonly minor: number;
  readonly currency: string;
}

/** ISO 4217 minor-unit exponents. Currencies not listed here are refused rather than guessed. */
const EXPONENTS: Readonly<Record<string, number>> = {
  CNY: 2,
  USD: 2,
  EUR: 2,
  GBP: 2,
  HKD: 2,
  SGD: 2,
  AUD: 2,
  CAD: 2,
  CHF: 2,
  NZD: 2,
  MYR: 2,
  THB: 2,
  PHP: 2,
  IDR: 2,
  INR: 2,
  TWD: 2,
  MOP: 2,
  BRL: 2,
  MXN: 2,
  SEK: 2,
  NOK: 2,
  DKK: 2,
  PKR: 2,
  BDT: 2,
  LKR: 2,
  MNT: 2,
  KZT: 2,
  AED: 2,
  SAR: 2,
  QAR: 2,
  ZAR: 2,
  RUB: 2,
  TRY: 2,
  PLN: 2,
  CZK: 2,
  HUF: 2,
  JPY: 0,
  KRW: 0,
  VND: 0,
  CLP: 0,
  ISK: 0,
  UGX: 0,
  XAF: 0,
  XOF: 0,
  PYG: 0,
  IQD: 3,
  KWD: 3,
  BHD: 3,
  OMR: 3,
  JOD: 3,
  TND: 3,
  LYD: 3,
};

/** Largest amount accepted for one order, in major units (API.md §3). */
const MAX_MAJOR = 100_000_000n;

export function isSupportedCurrency(currency: string): boolean {
  return Object.hasOwn(EXPONENTS, currency);
}

export function currencyExponent(currency: string): number {
  const e = EXPONENTS[currency];
  if (e === undefined) throw new PayError('INVALID_PARAMS', `unsupported currency: ${currency}`);
  return e;
}

const DECIMAL = /^(\d{1,12})(?:\.(\d+))?$/;

/**
 * Parses a client's amount (a JSON number or a decimal string in major units) into minor units.
 * Refuses zero, negatives, exponents, NaN, more decimals than the currency has, and anything above
 * 100,000,000 major units.
 */
export function parseAmount(input: unknown, currency: string): Money {
  const exponent = currencyExponent(currency);
  let text: string;
  if (typeof input === 'number') {
    if (!Number.isFinite(input)) throw invalid('amount must be a finite number');
    // String(n) is the shortest text that round-trips to n: 99.99 -> "99.99", 1e21 -> "1e+21" (refused below).
    text = String(input);
  } else if (typeof input === 'string') {
    text = input.trim() === input ? input : '\u0000';
  } else {
    throw invalid('amount must be a number or a decimal string');
  }
  const m = DECIMAL.exec(text);
  if (!m) throw invalid('amount must be a plain positive decimal such as "99.99"');
  const whole = m[1] ?? '0';
  const frac = m[2] ?? '';
  if (frac.length > exponent) {
    throw invalid(`amount has more than ${exponent} decimal places for ${currency}`);
  }
  const minorBig = BigInt(whole) * 10n ** BigInt(exponent) + BigInt(frac.padEnd(exponent, '0') || '0');
  if (minorBig <= 0n) throw invalid('amount must be greater than zero');
  if (minorBig > MAX_MAJOR * 10n ** BigInt(exponent)) throw invalid('amount must not exceed 100000000');
  return { minor: Number(minorBig), currency };
}

/** Formats minor units as the currency's exact decimal string: 9999 CNY -> "99.99", 5 JPY -> "5". */
export function formatMinor(minor: number, currency: string): string {
  if (!Number.isSafeInteger(minor)) throw new Error(`not an integer amount: ${minor}`);
  const exponent = currencyExponent(currency);
  const negative = minor < 0;
  const digits = Math.abs(minor)
    .toString()
    .padStart(exponent + 1, '0');
  const body =
    exponent === 0 ? digits : `${digits.slice(0, digits.length - exponent)}.${digits.slice(digits.length - exponent)}`;
  return negative ? `-${body}` : body;
}

/**
 * Parses a decimal string from a channel (e.g. Alipay's "88.88") into minor units, strictly: returns
 * undefined for anything that is not exactly representable, so a caller compares and refuses.
 */
export function parseChannelDecimal(text: string, currency: string): number | undefined {
  const exponent = currencyExponent(currency);
  const m = DECIMAL.exec(text);
  if (!m) return undefined;
  const frac = m[2] ?? '';
  if (frac.length > exponent) return undefined;
  const v = BigInt(m[1] ?? '0') * 10n ** BigInt(exponent) + BigInt(frac.padEnd(exponent, '0') || '0');
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : undefined;
}

/** Parses an integer count of minor units from a wire string (WeChat total_fee, Alipay+ value). */
export function parseMinorString(text: string): number | undefined {
  if (!/^(0|[1-9]\d{0,15})$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

function invalid(message: string): PayError {
  return new PayError('INVALID_AMOUNT', message);
}
