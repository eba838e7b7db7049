import type pg from 'pg';
import { ConnectorError } from '../../core/errors.ts';
import type { SourceSchema, SyncShape } from '../../core/ports.ts';
import { familyOf, type ValueFamily } from '../../core/values.ts';
import { type Column, describeTable } from './client.ts';
import { columnList, qualified, quoteIdent } from './sql.ts';

/** The PostgreSQL type that holds every value of a family, for a column another system declared. */
const TYPE_OF: Record<ValueFamily, string> = {
  integer: 'bigint',
  real: 'double precision',
  numeric: 'numeric',
  boolean: 'boolean',
  text: 'text',
  bytes: 'bytea',
  json: 'jsonb',
  any: 'text',
};

/**
 * `CREATE TABLE` for a target table from the source's declared columns, the key its primary key.
 * A PostgreSQL source's types are kept whole, modifiers included (`numeric(38,10)`, a domain, an
 * enum: types the target database must have); another system's are mapped by family (a SQLite
 * `INTEGER` is `bigint`, `REAL` is `double precision`, a declared `JSON` is `jsonb`, `TEXT[]` is
 * `text[]`, an undeclared column `text`); a CSV source's columns are `text`.
 */
export function createTableSql(
  schema: string,
  table: string,
  source: SourceSchema | undefined,
  key: readonly string[],
): string {
  const where = `target table ${schema}.${table}`;
  if (!source || source.columns.length === 0) {
    throw new ConnectorError(
      'TABLE_MISSING',
      `${where} does not exist, and the source declares no columns to create it from: create it`,
    );
  }
  const names = new Set(source.columns.map((c) => c.name));
  const missing = key.find((k) => !names.has(k));
  if (missing) {
    throw new ConnectorError(
      'TABLE_MISSING',
      `${where} does not exist, and the source declares no key column "${missing}" to create it with: create it`,
    );
  }
  const columns = source.columns.map((c) => `${quoteIdent(c.name)} ${typeOf(source.dialect, c.type)}`);
  return `CREATE TABLE IF NOT EXISTS ${qualified(schema, table)} (${columns.join(', ')}, PRIMARY KEY (${columnList(key)}))`;
}

const WORD = '(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+")';
/** What `format_type` writes: `numeric(38,10)`, `timestamp(3) with time zone`, `public.mood`, `"My Type"[]`. */
const TYPE_NAME = new RegExp(
  `^${WORD}(?:\\.${WORD})?(?: ${WORD})*(?:\\(\\d+(?:,\\d+)?\\))?(?: ${WORD})*(?:\\[\\])*$`,
);

function typeOf(dialect: string, type: string): string {
  if (dialect === 'postgres') {
    // format_type's own text, identifiers quoted by the server where they need it; nothing else is pasted.
    if (!TYPE_NAME.test(type))
      throw new ConnectorError('TABLE_MISSING', `cannot create a column of type ${JSON.stringify(type)}`);
    return type;
  }
  const { family, array } = familyOf(dialect, type);
  return `${TYPE_OF[family]}${array ? '[]' : ''}`;
}

/**
 * The table's columns; a missing table is created from the source's declared columns and key,
 * unless `create: false` (then, or where the source declares none, TABLE_MISSING says so).
 */
export async function describeOrCreate(
  client: pg.ClientBase,
  schema: string,
  options: { table: string; create?: boolean | undefined },
  shape: SyncShape,
): Promise<Column[]> {
  try {
    return await describeTable(client, schema, options.table);
  } catch (err) {
    if (!(err instanceof ConnectorError) || err.code !== 'TABLE_MISSING') throw err;
    if (options.create === false)
      throw new ConnectorError(
        'TABLE_MISSING',
        `target table ${schema}.${options.table} does not exist (create: false): create it, or let the target create it`,
      );
  }
  await client.query(createTableSql(schema, options.table, shape.sourceSchema, shape.key));
  return describeTable(client, schema, options.table);
}
