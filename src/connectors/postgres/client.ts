import pg from 'pg';
import { ConnectorError } from '../../core/errors.ts';
import { pgError } from './errors.ts';
import { qualified, selectColumns, selectDatabaseIdentity, selectTypes } from './sql.ts';

/** A table's column as values for it are read and written. */
export type Column = {
  name: string;
  /** As the table declares it, modifiers included (`format_type`): `numeric(38,10)`, `integer[]`, `mood`. */
  fullType: string;
  /** `typname` of the type, through domains to their base: int8, numeric, timestamptz, jsonb, _text… */
  type: string;
  /** The modifier in force (the column's, else its domain's); -1 for none. For an array, its elements'. */
  typmod: number;
  /** `typcategory` of that type: A array, N numeric, D date/time, U user (json, jsonb, uuid)… */
  category: string;
  /** Element type of an array column (`typname`, through domains); null otherwise. */
  element: string | null;
  /** What separates an array's elements in its text form: `,`, or `;` for `box`. */
  delimiter: string;
};

type TypeRow = {
  oid: number;
  name: string;
  kind: string;
  category: string;
  base: number;
  typmod: number;
  element: number;
  delimiter: string;
};

/**
 * A small pool for one source or target. Sessions run in UTC with ISO dates and intervals, floats
 * written with every digit they need and bytea in hex, so values read and written as text (rows,
 * and COPY streamed from one database to another) mean the same whatever the servers' defaults.
 * Rows are read as text and decoded per column (`./values.ts`); pg's parsers serve catalog queries.
 */
export function createPool(url: string, max: number): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    options:
      '-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=postgres -c extra_float_digits=3 -c bytea_output=hex',
    application_name: 'sluice',
  });
  // An idle connection the server drops (pg_terminate_backend, restart) must not crash the process;
  // the pool discards it and the next query opens a new one.
  pool.on('error', () => undefined);
  // A checked-out client whose socket closes also emits 'error'; the query in flight already
  // rejects with it, so the event itself needs no handling beyond not crashing the process.
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

export async function databaseIdentity(client: pg.ClientBase): Promise<string> {
  const { rows } = await client.query<{ id: string }>(selectDatabaseIdentity);
  return rows[0]!.id;
}

export async function describeTable(client: pg.ClientBase, schema: string, table: string): Promise<Column[]> {
  const name = qualified(schema, table);
  const exists = await client.query<{ oid: string | null }>('SELECT to_regclass($1) AS oid', [name]);
  if (!exists.rows[0]?.oid) {
    throw new ConnectorError('TABLE_MISSING', `table ${schema}.${table} does not exist`);
  }
  const { rows } = await client.query<{ name: string; fullType: string; oid: number; typmod: number }>(
    selectColumns,
    [name],
  );
  const types = await typesOf(
    client,
    rows.map((r) => r.oid),
  );
  return rows.map((r) => {
    const base = baseOf(types, r.oid, r.typmod);
    const element = base.type.category === 'A' ? baseOf(types, base.type.element, -1).type : null;
    return {
      name: r.name,
      fullType: r.fullType,
      type: base.type.name,
      typmod: base.typmod,
      category: base.type.category,
      element: element?.name ?? null,
      delimiter: element?.delimiter ?? ',',
    };
  });
}

/** The catalog rows of `oids` and of every type they lead to (a domain's base, an array's element). */
async function typesOf(client: pg.ClientBase, oids: readonly number[]): Promise<Map<number, TypeRow>> {
  const types = new Map<number, TypeRow>();
  let wanted = [...new Set(oids)];
  while (wanted.length > 0) {
    const { rows } = await client.query<TypeRow>(selectTypes, [wanted]);
    for (const row of rows) types.set(row.oid, row);
    wanted = [...new Set(rows.flatMap((r) => [r.base, r.element]))].filter((o) => o !== 0 && !types.has(o));
  }
  return types;
}

/** A type followed through domains to its base, with the modifier in force. */
function baseOf(types: Map<number, TypeRow>, oid: number, typmod: number): { type: TypeRow; typmod: number } {
  let type = types.get(oid)!;
  let mod = typmod;
  while (type.kind === 'd') {
    if (mod === -1) mod = type.typmod;
    type = types.get(type.base)!;
  }
  return { type, typmod: mod };
}

/** Runs `fn` on a pooled client; a client whose connection broke is discarded, not reused. */
export async function withClient<T>(
  pool: pg.Pool,
  doing: string,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw pgError(`${doing}: cannot connect`, err);
  }
  let broken: Error | undefined;
  try {
    return await fn(client);
  } catch (err) {
    if (!(err instanceof ConnectorError) || (err as { kind?: string }).kind === 'retryable')
      broken = err as Error;
    throw err;
  } finally {
    client.release(broken);
  }
}

/** Runs a statement whose failure means Sluice's own SQL or the connection failed, not a row's values. */
export async function query(client: pg.ClientBase, sql: string): Promise<void> {
  try {
    await client.query(sql);
  } catch (err) {
    throw pgError(`running ${sql.split(' ')[0]}`, err);
  }
}
