/**
 * The fidelity matrix's data: a PostgreSQL table with every type family, each hard value in a row
 * of its own (a record a target refuses is refused whole, so one value must not hide another's
 * fate), and a SQLite table with every storage class and the declared types Sluice reads by.
 */

/** Types the PostgreSQL table needs; created in each test database. */
export const PG_TYPES = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive AS numeric(12,3) CHECK (VALUE > 0);`;

/** Column name → type: one column per type family (the matrix's rows). */
export const PG_COLUMNS: [string, string][] = [
  ['i2', 'smallint'],
  ['i4', 'integer'],
  ['i8', 'bigint'],
  ['num', 'numeric'],
  ['num_scaled', 'numeric(38,10)'],
  ['f4', 'real'],
  ['f8', 'double precision'],
  ['flag', 'boolean'],
  ['txt', 'text'],
  ['vc', 'varchar(40)'],
  ['ch', 'char(6)'],
  ['nm', 'name'],
  ['bin', 'bytea'],
  ['uid', 'uuid'],
  ['d', 'date'],
  ['t', 'time'],
  ['ttz', 'timetz'],
  ['ts', 'timestamp'],
  ['tstz', 'timestamptz'],
  ['iv', 'interval'],
  ['js', 'json'],
  ['jb', 'jsonb'],
  ['ints', 'int[]'],
  ['txts', 'text[]'],
  ['grid', 'bigint[]'],
  ['nums', 'numeric[]'],
  ['jbs', 'jsonb[]'],
  ['pt', 'point'],
  ['bx', 'box'],
  ['circ', 'circle'],
  ['addr', 'inet'],
  ['net', 'cidr'],
  ['mac', 'macaddr'],
  ['cash', 'money'],
  ['bits', 'bit(4)'],
  ['vbits', 'varbit(8)'],
  ['tsv', 'tsvector'],
  ['rng', 'int4range'],
  ['doc', 'xml'],
  ['feel', 'mood'],
  ['pos', 'positive'],
];

export const pgTableDdl = (table: string): string =>
  `CREATE TABLE ${table} (id int PRIMARY KEY, ${PG_COLUMNS.map(([n, t]) => `${n} ${t}`).join(', ')})`;

/** Every escape text can hold: tab, newline, CR, backslash, COPY's own markers, quotes, control characters, emoji. */
const ESCAPES = `E'tab\\there\\nnew line\\r\\nCRLF \\\\ back\\\\slash \\\\N \\\\. "double" ''single'' \\x01\\x1f\\x7f ü 🙂 {a,b}'`;

/** Row id → label and the values it sets (SQL literals); columns it does not name are NULL. */
export const PG_ROWS: { id: number; label: string; values: Record<string, string> }[] = [
  {
    id: 1,
    label: 'typical',
    values: {
      i2: '12',
      i4: '-123456',
      i8: '1234567890123',
      num: '12345678901234567890.123456789',
      num_scaled: '-1.5000000000',
      f4: '1.1',
      f8: '0.1',
      flag: 'true',
      txt: `'plain text'`,
      vc: `'with trailing space '`,
      ch: `'ab'`,
      nm: `'a_name'`,
      bin: `'\\x00ff10'`,
      uid: `'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'`,
      d: `'2024-02-29'`,
      t: `'10:00:00.123456'`,
      ttz: `'10:00:00.5+02:30'`,
      ts: `'2024-05-01 10:00:00.654321'`,
      tstz: `'2024-05-01 10:00:00.123456+00'`,
      iv: `'1 year 2 mons 3 days 04:05:06.789'`,
      js: `'{"a":[1,2.5,null],"b":"ü"}'`,
      jb: `'{"a": [1, 2.5, null], "b": {"c": "ü \\" \\\\ \\t"}, "big": 12345678901234567890}'`,
      ints: `'{1,NULL,-3}'`,
      txts: `ARRAY['a,b', 'c "d"', NULL, '', 'e\\f', E'tab\\tnew\\nline', '{}', 'NULL']`,
      grid: `'{{9223372036854775807,NULL},{-9223372036854775808,0}}'`,
      nums: `'{0.10,NULL,12345678901234567890.5,NaN}'`,
      jbs: `ARRAY['{"a": 1}'::jsonb, NULL, '"s"', '2.5']`,
      pt: `'(1.5,-2)'`,
      bx: `'((1,1),(0,0))'`,
      circ: `'<(0,0),2.5>'`,
      addr: `'192.168.0.1/24'`,
      net: `'10.0.0.0/8'`,
      mac: `'08:00:2b:01:02:03'`,
      cash: `'1234.56'`,
      bits: `B'1010'`,
      vbits: `B'101'`,
      tsv: `'a fat cat'`,
      rng: `'[1,5)'`,
      doc: `'<a b="1">x</a>'`,
      feel: `'happy'`,
      pos: `1.5`,
    },
  },
  { id: 2, label: 'nulls', values: {} },
  {
    id: 3,
    label: 'lows',
    values: {
      i2: '-32768',
      i4: '-2147483648',
      i8: '-9223372036854775808',
      num: `'-0.000000000000000000001'`,
      num_scaled: '-9999999999999999999999999999.9999999999',
      f4: '-3.4028235e38',
      f8: '-1.7976931348623157e308',
      flag: 'false',
      txt: ESCAPES,
      vc: `''`,
      ch: `'      '`,
      bin: `'\\x'`,
      uid: `'00000000-0000-0000-0000-000000000000'`,
      d: `'0044-03-15 BC'`,
      t: `'00:00:00'`,
      ts: `'-infinity'`,
      tstz: `'-infinity'`,
      iv: `'-1 days -00:00:00.000001'`,
      js: `'[]'`,
      jb: `'{}'`,
      ints: `'{}'`,
      txts: `'{}'`,
      grid: `'{}'`,
      nums: `'{}'`,
      jbs: `'{}'`,
      pt: `'(-1e-300,1e300)'`,
      addr: `'::1'`,
      cash: `'-0.01'`,
      bits: `B'0000'`,
      vbits: `B''`,
      feel: `'sad'`,
      pos: `0.001`,
    },
  },
  {
    id: 4,
    label: 'highs',
    values: {
      i2: '32767',
      i4: '2147483647',
      i8: '9223372036854775807',
      num: `'NaN'`,
      num_scaled: '9999999999999999999999999999.9999999999',
      f4: '1.4e-45',
      f8: '5e-324',
      txt: `'${'x'.repeat(10_000)}'`,
      d: `'294276-12-31'`,
      t: `'24:00:00'`,
      ts: `'infinity'`,
      tstz: `'infinity'`,
      iv: `'178000000 years'`,
      js: `'"just a string"'`,
      jb: `'12345678901234567890.12345678901234567890'`,
      feel: `'ok'`,
    },
  },
  { id: 5, label: 'NaN', values: { f8: `'NaN'` } },
  { id: 6, label: 'Infinity', values: { f8: `'Infinity'` } },
  { id: 7, label: '-0', values: { f8: `'-0'` } },
  { id: 8, label: 'JSON null', values: { js: `'null'` } },
  { id: 9, label: 'json as written', values: { js: `'{"b":1,  "a":2, "a": 3, "2": 0}'` } },
  { id: 10, label: 'JSON null in an array', values: { jbs: `ARRAY['null'::jsonb, NULL]` } },
  { id: 11, label: 'numeric ±Infinity', values: { num: `'Infinity'`, nums: `'{-Infinity}'` } },
  { id: 12, label: 'JSON null', values: { jb: `'null'` } },
  { id: 13, label: 'jsonb 1.50', values: { jb: `'{"n": 1.50, "m": [1.0, 2e2]}'` } },
  { id: 14, label: 'NaN', values: { f4: `'NaN'` } },
  { id: 15, label: '-Infinity', values: { f4: `'-Infinity'` } },
  { id: 16, label: 'array documents', values: { jbs: `ARRAY['[1, 2]'::jsonb, '[3, 4]']` } },
  { id: 17, label: 'jsonb 2.50', values: { jbs: `ARRAY['2.50'::jsonb]` } },
];

export const PG_LABELS = new Map(PG_ROWS.map((r) => [r.id, r.label]));

export const pgRowsSql = (table: string): string =>
  PG_ROWS.map(
    (row) =>
      `INSERT INTO ${table} (id${Object.keys(row.values)
        .map((c) => `, ${c}`)
        .join('')}) VALUES (${row.id}${Object.values(row.values)
        .map((v) => `, ${v}`)
        .join('')})`,
  ).join(';\n');

/** The SQLite table: every storage class, in columns with the declared types Sluice reads by. */
export const LITE_DDL = `CREATE TABLE lite (
  id INTEGER PRIMARY KEY, i INTEGER, r REAL, t TEXT, b BLOB, n NUMERIC, j JSON, flag BOOLEAN, tags TEXT[], u
)`;

/**
 * Rows as SQL literals (so each value has the storage class SQLite gives it) with the text
 * PostgreSQL must hold for it (`::text` of the created column), or the field it is refused for.
 */
export const LITE_ROWS: {
  id: number;
  label: string;
  values: Record<string, string>;
  pg: Record<string, string | null> | { refused: string };
}[] = [
  {
    id: 1,
    label: 'typical',
    values: {
      i: '42',
      r: '0.1',
      t: `'plain'`,
      b: `x'00ff'`,
      n: '1.5',
      j: `'{"b": 1, "a": [1, 2.5, null]}'`,
      flag: '1',
      tags: `'["a","b,c",null,""]'`,
      u: '42',
    },
    pg: {
      i: '42',
      r: '0.1',
      t: 'plain',
      b: '\\x00ff',
      n: '1.5',
      j: '{"a": [1, 2.5, null], "b": 1}',
      flag: 'true',
      tags: '{a,"b,c",NULL,""}',
      u: '42',
    },
  },
  { id: 2, label: 'nulls', values: {}, pg: {} },
  {
    id: 3,
    label: 'highs',
    values: {
      i: '9223372036854775807',
      r: '1.7976931348623157e308',
      t: `'tab	and
newline \\ and "quotes" ''single'' 🙂'`,
      b: `x''`,
      n: '123456789012345678',
      j: `'null'`,
      flag: '0',
      tags: `'[]'`,
      u: '0.5',
    },
    pg: {
      i: '9223372036854775807',
      r: '1.7976931348623157e+308',
      t: `tab	and\nnewline \\ and "quotes" 'single' 🙂`,
      b: '\\x',
      n: '123456789012345678',
      j: 'null',
      flag: 'false',
      tags: '{}',
      u: '0.5',
    },
  },
  {
    id: 4,
    label: 'lows',
    values: { i: '-9223372036854775808', r: `'NaN'`, t: `''`, b: `x'deadbeef'`, j: `'[1, 2]'`, u: `'text'` },
    pg: { i: '-9223372036854775808', r: 'NaN', t: '', b: '\\xdeadbeef', j: '[1, 2]', u: 'text' },
  },
  {
    id: 5,
    label: 'beyond 2^53',
    values: { i: '9007199254740993', r: '9e999', j: `'"str"'`, tags: `'[["x"],["y"]]'`, u: '-1' },
    pg: { i: '9007199254740993', r: 'Infinity', j: '"str"', tags: '{{x},{y}}', u: '-1' },
  },
  { id: 6, label: '-Infinity', values: { r: '-9e999' }, pg: { r: '-Infinity' } },
  { id: 7, label: 'NUL in text', values: { t: `'a' || char(0) || 'b'` }, pg: { refused: 't' } },
  { id: 8, label: 'blob in an untyped column', values: { u: `x'01'` }, pg: { refused: 'u' } },
  { id: 9, label: 'text in NUMERIC', values: { n: `'abc'` }, pg: { refused: 'n' } },
];

export const LITE_COLUMNS = ['i', 'r', 't', 'b', 'n', 'j', 'flag', 'tags', 'u'];

export const liteRowsSql = (): string =>
  LITE_ROWS.map(
    (row) =>
      `INSERT INTO lite (id${Object.keys(row.values)
        .map((c) => `, ${c}`)
        .join('')}) VALUES (${row.id}${Object.values(row.values)
        .map((v) => `, ${v}`)
        .join('')})`,
  ).join(';\n');
