import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { numbersRoundTrip, parseJsonExact, parseTextArray } from '../../../src/connectors/postgres/client.ts';
import { copyText } from '../../../src/connectors/postgres/copy.ts';

/** The reviver alone, the reference the fast path must agree with. */
const viaReviver = (text: string): unknown =>
  JSON.parse(text, (_key, value, context?: { source?: string }) =>
    typeof value === 'number' && context?.source !== undefined && String(value) !== context.source
      ? (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON(context.source)
      : value,
  );

describe('PostgreSQL value parsing fast paths', () => {
  it('takes the plain JSON.parse only where every number reads back exactly', () => {
    const numbers = [
      '0',
      '-0',
      '1',
      '-12',
      '0.5',
      '-0.5',
      '0.50',
      '1.0',
      '1e5',
      '1E5',
      '0.000001',
      '0.0000001',
      '123456789012345',
      '1234567890123456',
      '9007199254740993',
      '0.1',
      '3.14159265358979',
      '3.141592653589793',
    ];
    for (const n of numbers) {
      for (const other of ['"1.0 in a string"', '"esc\\"1e5"', 'true', 'null']) {
        const text = `{"a": ${n}, "s": ${other}, "list": [${n}]}`;
        const exact = JSON.stringify(viaReviver(text));
        expect(JSON.stringify(parseJsonExact(text)), text).toBe(exact);
        if (numbersRoundTrip(text)) expect(JSON.stringify(JSON.parse(text)), text).toBe(exact);
      }
    }
    for (let i = 0; i < 20_000; i++) {
      const x = (Math.random() - 0.5) * 10 ** Math.floor(Math.random() * 30 - 10);
      const text = `[${i % 2 ? String(x) : x.toFixed(i % 12)}]`;
      expect(JSON.stringify(parseJsonExact(text))).toBe(JSON.stringify(viaReviver(text)));
    }
  });

  it('splits simple text arrays itself and agrees with the full parser on every literal', () => {
    const full = pg.types.getTypeParser(1009 as Parameters<typeof pg.types.getTypeParser>[0]) as (
      t: string,
    ) => unknown;
    for (const literal of [
      '{}',
      '{a}',
      '{a,b,NULL}',
      '{"a b",c}',
      '{"",x}',
      '{"NULL",NULL}',
      '{{a,b},{c,d}}',
      '[0:1]={a,b}',
      '{"a\\\\b","q\\"x"}',
      '{t3,vip}',
    ]) {
      expect(parseTextArray(literal), literal).toEqual(full(literal));
    }
  });

  it('encodes COPY text with escapes, NULLs, arrays and JSON', () => {
    const columns = [
      { name: 'id', type: 'int8', category: 'N', element: null },
      { name: 'name', type: 'text', category: 'S', element: null },
      { name: 'tags', type: '_text', category: 'A', element: 'text' },
      { name: 'doc', type: 'jsonb', category: 'U', element: null },
    ];
    const text = copyText(
      [
        { id: '1', name: 'tab\there\\', tags: ['a"b', null, 'c\\d'], doc: { q: 'line\nbreak' } },
        { id: 2, name: null, tags: [], doc: null },
      ],
      columns,
    );
    expect(text).toBe(
      '1\ttab\\there\\\\\t{"a\\\\"b",NULL,"c\\\\\\\\d"}\t{"q":"line\\\\nbreak"}\n2\t\\N\t{}\t\\N\n',
    );
  });
});
