/**
 * JSON text to values and back without changing a number on the way. `JSON.parse` rounds every
 * number to a double, so `9007199254740993` would come back as `…992` and a key could silently
 * become another record's key. Here:
 *
 * - an integer beyond ±(2^53 − 1) becomes a `bigint`, exact;
 * - any other number a double cannot write back as it was written (`0.10000000000000000001`,
 *   `1e400`) keeps its text, as a `JSON.rawJSON` value that `JSON.stringify` writes verbatim;
 * - everything else is what `JSON.parse` gives.
 *
 * `stringifyJson` writes a `bigint` as its digits (a JSON number), so the two round-trip.
 */

type RawJson = (text: string) => unknown;
const rawJSON = (JSON as unknown as { rawJSON: RawJson }).rawJSON;

export function parseJson(text: string): unknown {
  // The reviver costs several times a plain parse; most documents hold only numbers that round-trip.
  if (numbersRoundTrip(text)) return JSON.parse(text);
  return JSON.parse(text, exactNumber);
}

function exactNumber(_key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value !== 'number' || context?.source === undefined) return value;
  const source = context.source;
  // Every integer beyond ±(2^53 − 1) is a bigint, even one a double happens to hold (2^53 itself),
  // so one column's large values all have one type.
  if (/^-?\d+$/.test(source)) return Number.isSafeInteger(value) ? value : BigInt(source);
  // `1.0` or `2.50e1` is the number the double holds, written otherwise: a number. `0.1000…01` is not.
  return sameDecimal(String(value), source) ? value : rawJSON(source);
}

/** `1.50` as sign, significant digits and exponent (`{ negative: false, digits: '15', exponent: -1 }`). */
export type Decimal = { negative: boolean; digits: string; exponent: number };

/**
 * A decimal literal (optional sign, digits, fraction, exponent; surrounding spaces allowed) in
 * one form, so equal values written differently (`1.50`, `15e-1`, `+1.5`) compare equal. Null for
 * anything else (`NaN`, `Infinity`, `0x10`). Zero is `{ digits: '', exponent: 0 }`, unsigned.
 */
export function decimalOf(literal: string): Decimal | null {
  const m = /^\s*([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?\s*$/.exec(literal);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return null;
  const fraction = m[3] ?? '';
  const all = `${m[2]}${fraction}`.replace(/^0+/, '');
  const digits = all.replace(/0+$/, '');
  if (digits === '') return { negative: false, digits: '', exponent: 0 };
  const exponent = Number(m[4] ?? 0) - fraction.length + (all.length - digits.length);
  return { negative: m[1] === '-', digits, exponent };
}

/** Whether two decimal literals hold the same value (`1.50` and `1.5`); false where either is none. */
export function sameDecimal(a: string, b: string): boolean {
  const x = decimalOf(a);
  const y = decimalOf(b);
  return (
    x !== null &&
    y !== null &&
    x.negative === y.negative &&
    x.digits === y.digits &&
    x.exponent === y.exponent
  );
}

type Replacer = (key: string, value: unknown) => unknown;

/**
 * `JSON.stringify` that writes a bigint as a JSON number. `replacer` runs first (after `toJSON`);
 * like `JSON.stringify`, it answers undefined for undefined.
 */
export function stringifyJson(value: unknown, options: { space?: number; replacer?: Replacer } = {}): string {
  const { replacer, space } = options;
  const write: Replacer = replacer
    ? function (this: unknown, key, v) {
        return bigintAsNumber(key, replacer.call(this, key, v));
      }
    : bigintAsNumber;
  return JSON.stringify(value, write, space);
}

function bigintAsNumber(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? rawJSON(value.toString()) : value;
}

/**
 * True when every number in the JSON `text` is one that `String(JSON.parse(n))` writes back exactly:
 * an integer or decimal of at most 15 digits, no exponent, no leading zero, no trailing fraction
 * zero, not `-0`, not below 1e-6. Strings are skipped. False sends the text to the exact reviver.
 */
export function numbersRoundTrip(text: string): boolean {
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      // A string: skip to its closing quote, stepping over escapes.
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 92) i++;
        else if (d === 34) break;
      }
    } else if (c === 45 || (c >= 48 && c <= 57)) {
      const start = c === 45 ? i + 1 : i;
      let j = start;
      while (j < n && isDigit(text.charCodeAt(j))) j++;
      const intDigits = j - start;
      const zeroInt = text.charCodeAt(start) === 48;
      if (zeroInt && intDigits > 1) return false;
      let digits = intDigits;
      if (text.charCodeAt(j) === 46) {
        const fraction = ++j;
        while (j < n && isDigit(text.charCodeAt(j))) j++;
        digits += j - fraction;
        if (text.charCodeAt(j - 1) === 48) return false;
        if (zeroInt && text.startsWith('000000', fraction)) return false;
      } else if (zeroInt && c === 45) return false;
      const e = text.charCodeAt(j);
      if (e === 101 || e === 69 || digits > 15) return false;
      i = j - 1;
    }
  }
  return true;
}

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
