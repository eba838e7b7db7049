import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { Column } from '../../../src/connectors/postgres/client.ts';
import { copyText } from '../../../src/connectors/postgres/copy.ts';
import { checkOf, decoderOf, parseTextArray } from '../../../src/connectors/postgres/values.ts';
import { numbersRoundTrip, stringifyJson } from '../../../src/core/json.ts';
import { jsonNull, jsonTextOf } from '../../../src/core/values.ts';

const column = (name: string, type: string, more: Partial<Column> = {}): Column => ({
  name,
  fullType: type,
  type,
  typmod: -1,
  category: 'S',
  element: null,
  delimiter: ',',
  ...more,
});
const array = (name: string, element: string, more: Partial<Column> = {}): Column =>
  column(name, `_${element}`, { fullType: `${element}[]`, category: 'A', element, ...more });

describe('PostgreSQL values', () => {
  it('reads every number in JSON with a plain parse only where it writes back as it was written', () => {
    for (const n of [
      '0',
      '-0',
      '1',
      '-12',
      '0.5',
      '0.50',
      '1.0',
      '1e5',
      '0.000001',
      '0.0000001',
      '123456789012345',
      '1234567890123456',
      '9007199254740993',
      '0.1',
      '3.14159265358979',
      '3.141592653589793',
    ]) {
      for (const other of ['"1.0 in a string"', '"esc\\"1e5"', 'true', 'null']) {
        const text = `{"a": ${n}, "s": ${other}, "list": [${n}]}`;
        if (numbersRoundTrip(text)) expect(String(Number(n)), text).toBe(n);
      }
    }
    for (let i = 0; i < 20_000; i++) {
      const x = (Math.random() - 0.5) * 10 ** Math.floor(Math.random() * 30 - 10);
      const n = i % 2 ? String(x) : x.toFixed(i % 12);
      if (numbersRoundTrip(`[${n}]`)) expect(String(Number(n))).toBe(n);
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
      '{"a\\\\b","q\\"x"}',
      '{t3,vip}',
    ]) {
      expect(parseTextArray(literal), literal).toEqual(full(literal));
    }
  });

  it('decodes the server text of each type into the value model', () => {
    const decode = (c: Column, text: string) => decoderOf(c)?.(text) ?? text;
    expect(decode(column('a', 'int8'), '-9223372036854775808')).toBe(-9223372036854775808n);
    expect(decode(column('a', 'int4'), '-2147483648')).toBe(-2147483648);
    expect(decode(column('a', 'float8'), 'NaN')).toBeNaN();
    expect(decode(column('a', 'float8'), '-Infinity')).toBe(Number.NEGATIVE_INFINITY);
    expect(Object.is(decode(column('a', 'float8'), '-0'), -0)).toBe(true);
    expect(decode(column('a', 'numeric'), '12345678901234567890.123456789')).toBe(
      '12345678901234567890.123456789',
    );
    expect(decode(column('a', 'bool'), 'f')).toBe(false);
    expect(decode(column('a', 'bytea'), '\\x00ff')).toEqual(Buffer.from([0, 255]));
    expect(decode(column('a', 'timestamptz'), '2024-05-01 10:00:00.123456+00')).toBe(
      '2024-05-01T10:00:00.123456Z',
    );
    expect(decode(column('a', 'point'), '(1.5,-2)')).toBe('(1.5,-2)');
    expect(decode(column('a', 'jsonb'), 'null')).toBe(jsonNull);
    expect(decode(column('a', 'jsonb'), '{"a": 1}')).toEqual({ a: 1 });
    // json keeps its text while its value is unchanged; a changed value is written as JSON writes it.
    const doc = decode(column('a', 'json'), '{"b":1,  "a":2, "a": 3}') as Record<string, unknown>;
    expect(jsonTextOf(doc)).toBe('{"b":1,  "a":2, "a": 3}');
    doc.c = 4;
    expect(jsonTextOf(doc)).toBe('{"b":1,"a":3,"c":4}');
    expect(stringifyJson(decode(column('a', 'json'), '1.50'))).toBe('1.50');
    expect(decode(array('a', 'int8'), '{{1,NULL},{3,4}}')).toEqual([
      [1n, null],
      [3n, 4n],
    ]);
    expect(decode(array('a', 'float8'), '{NaN,Infinity}')).toEqual([Number.NaN, Number.POSITIVE_INFINITY]);
    expect(decode(array('a', 'jsonb'), '{null,"{\\"a\\": 1}",NULL}')).toEqual([jsonNull, { a: 1 }, null]);
    // Arrays whose text a JS array would not keep stay text: explicit bounds, box's ';' delimiter.
    expect(decode(array('a', 'int4'), '[0:1]={1,2}')).toBe('[0:1]={1,2}');
    expect(decode(array('a', 'box', { delimiter: ';' }), '{(1,1),(0,0);(2,2),(1,1)}')).toBe(
      '{(1,1),(0,0);(2,2),(1,1)}',
    );
  });

  it('refuses, naming the field, what a column would store changed or refuse without naming it', () => {
    const check = (c: Column, value: unknown) => checkOf(c, false)(value);
    expect(check(column('t', 'text'), jsonNull)).toMatch(
      /^field "t": JSON null cannot be stored in a text column/,
    );
    expect(check(column('j', 'jsonb'), jsonNull)).toBeNull();
    expect(check(column('j', 'jsonb'), { a: Number.NaN })).toMatch(/^field "j": NaN is not a JSON number/);
    expect(check(column('t', 'text'), 'a\u0000b')).toMatch(/NUL character/);
    expect(check(column('t', 'text'), Buffer.from([1]))).toMatch(/bytes cannot be stored/);
    const numeric = column('n', 'numeric', { fullType: 'numeric(10,2)', typmod: ((10 << 16) | 2) + 4 });
    expect(check(numeric, '1.1234567890')).toMatch(/more decimal places than numeric\(10,2\)/);
    expect(check(numeric, '1.10')).toBeNull();
    const stamp = column('s', 'timestamptz', { fullType: 'timestamp(3) with time zone', typmod: 3 });
    expect(check(stamp, '2024-05-01T10:00:00.123456Z')).toMatch(/fractional digits/);
    expect(check(stamp, '2024-05-01T10:00:00.123Z')).toBeNull();
    const varchar = column('v', 'varchar', { fullType: 'character varying(2)', typmod: 6 });
    expect(check(varchar, 'ab  ')).toMatch(/longer than varchar\(2\)/);
    expect(check(column('f', 'float4'), 0.1)).toBeNull();
    expect(check(column('f', 'float4'), 0.123456789)).toMatch(/float4/);
    expect(check(column('f', 'float8'), '0.1000000000000000055511151231257827')).toMatch(/float8/);
    expect(check(array('a', 'text'), ['a', jsonNull])).toMatch(/JSON null/);
  });

  it('encodes COPY text with escapes, NULLs, arrays, JSON documents and float signs', () => {
    const columns = [
      column('id', 'int8'),
      column('name', 'text'),
      array('tags', 'text'),
      column('doc', 'jsonb'),
      column('ratio', 'float8'),
      array('docs', 'json'),
    ];
    const text = copyText(
      [
        {
          id: 1n,
          name: 'tab\there\\',
          tags: ['a"b', null, 'c\\d'],
          doc: { q: 'line\nbreak' },
          ratio: -0,
          docs: [jsonNull, 'text', null],
        },
        { id: 2, name: null, tags: [], doc: jsonNull, ratio: Number.NaN, docs: null },
      ],
      columns,
    );
    expect(text).toBe(
      '1\ttab\\there\\\\\t{"a\\\\"b",NULL,"c\\\\\\\\d"}\t{"q":"line\\\\nbreak"}\t-0\t{"null","\\\\"text\\\\"",NULL}\n' +
        '2\t\\N\t{}\tnull\tNaN\t\\N\n',
    );
    // A CSV source's strings are the column's input text: into json, the document itself.
    expect(copyText([{ doc: '{"a": 1}' }], [column('doc', 'jsonb')], { textInput: true })).toBe('{"a": 1}\n');
    expect(copyText([{ doc: '{"a": 1}' }], [column('doc', 'jsonb')])).toBe('"{\\\\"a\\\\": 1}"\n');
  });
});
