import { describe, expect, it } from 'vitest';
import { jsonNull } from '../../src/core/values.ts';
import { fingerprintOf } from '../../src/engine/records.ts';

describe('record fingerprints', () => {
  it('tell apart the values JSON writes alike: NaN, ±Infinity, -0, a JSON-null document, SQL NULL', () => {
    const values = [
      null,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      -0,
      0,
      jsonNull,
      'null',
    ];
    const prints = values.map((x) => fingerprintOf({ id: 1, x }));
    expect(new Set(prints).size).toBe(values.length);
    // And stay the same for the same record, bytes and big integers included.
    const record = () => ({ id: 2n ** 70n, b: new Uint8Array([1, 2]), n: Number.NaN });
    expect(fingerprintOf(record())).toBe(fingerprintOf(record()));
  });
});
