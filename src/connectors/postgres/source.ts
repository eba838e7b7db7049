import type pg from 'pg';
import { ConnectorError } from '../../core/errors.ts';
import {
  boundOf,
  type KeysetCursor,
  keysetPageEnd,
  orderFields,
  positionIn,
  positionOf,
  rewindPosition,
  samePosition,
  timeOfValue,
} from '../../core/keyset.ts';
import type {
  CheckFinding,
  Estimate,
  NativeLocation,
  PageBounds,
  ReadRequest,
  Source,
  SourceSchema,
  SyncShape,
} from '../../core/ports.ts';
import type { Cursor, Json, Page, Phase, Row } from '../../core/types.ts';
import { type Column, createPool, describeTable, withClient } from './client.ts';
import { describePgError, pgError } from './errors.ts';
import { columnList, keysetAfter, keysetAtMost, type PostgresRange, qualified, quoteIdent } from './sql.ts';
import { asText, type Decode, decodeRows, decoderOf } from './values.ts';

export type PostgresSourceOptions = {
  table: string;
  schema?: string | undefined;
  columns?: string[] | undefined;
  /** An SQL condition rows must meet, e.g. `deleted_at IS NULL`. */
  where?: string | undefined;
};

const TIME_TYPES = new Set(['timestamptz', 'timestamp', 'date']);
// Planned rows up to this many are counted exactly for progress; the count gives up after the timeout.
const EXACT_COUNT_UP_TO = 20_000_000;
const COUNT_TIMEOUT_MS = 3000;
const INTEGER_TYPES = new Set(['int2', 'int4', 'int8']);

/**
 * Reads a table in keyset order, one `LIMIT`ed query per batch: memory holds one batch, and each
 * query starts at an index position rather than skipping rows like OFFSET.
 */
/** Cursors are core/keyset's `KeysetCursor`: `{ key }` in key order, `{ k }` in (cursor, key) order. */
export class PostgresSource implements Source {
  private readonly pool: pg.Pool;
  private readonly shape: SyncShape;
  private readonly options: PostgresSourceOptions;
  private readonly table: string;
  private readonly selectList: string;
  private readonly types: ReadonlyMap<string, string>;
  private readonly url: string;
  /** The columns `read` selects, in table order. */
  private readonly columns: Column[];
  /** Each selected column's decoder from the server's text to the value model, where it has one. */
  private readonly decoders: [string, Decode][];
  private readonly decoderByName: ReadonlyMap<string, Decode>;

  private constructor(
    pool: pg.Pool,
    url: string,
    options: PostgresSourceOptions,
    shape: SyncShape,
    columns: Column[],
  ) {
    this.pool = pool;
    this.url = url;
    this.options = options;
    this.shape = shape;
    this.table = qualified(options.schema ?? 'public', options.table);
    this.types = new Map(columns.map((c) => [c.name, c.type]));
    this.selectList = options.columns
      ? columnList([
          ...new Set([...shape.key, ...(shape.cursorField ? [shape.cursorField] : []), ...options.columns]),
        ])
      : '*';
    const wanted = options.columns
      ? new Set([...shape.key, ...(shape.cursorField ? [shape.cursorField] : []), ...options.columns])
      : null;
    this.columns = columns.filter((c) => !wanted || wanted.has(c.name));
    this.decoders = this.columns.flatMap((c) => {
      const decode = decoderOf(c);
      return decode ? [[c.name, decode] as [string, Decode]] : [];
    });
    this.decoderByName = new Map(this.decoders);
  }

  static async open(url: string, options: PostgresSourceOptions, shape: SyncShape): Promise<PostgresSource> {
    const pool = createPool(url, 2);
    try {
      const schema = options.schema ?? 'public';
      const columns = await withClient(pool, 'opening the source', (c) =>
        describeTable(c, schema, options.table),
      );
      const names = new Set(columns.map((c) => c.name));
      const needed = [
        ...shape.key,
        ...(shape.cursorField ? [shape.cursorField] : []),
        ...(options.columns ?? []),
      ];
      for (const field of needed) {
        if (!names.has(field)) {
          throw new ConnectorError(
            'SOURCE_COLUMN_MISSING',
            `source table ${schema}.${options.table} has no column "${field}"`,
          );
        }
      }
      return new PostgresSource(pool, url, options, shape, columns);
    } catch (err) {
      await pool.end();
      throw err instanceof ConnectorError ? err : pgError('opening the source', err);
    }
  }

  private fields(phase: Phase): string[] {
    return orderFields(this.shape.key, this.shape.cursorField, phase === 'incremental');
  }

  private positionIn(phase: Phase, cursor: KeysetCursor | null): unknown[] | null {
    return positionIn(cursor, this.incremental(phase));
  }

  /** The WHERE clause and its values for reading `phase` after `cursor`, bounded by the high-water mark. */
  private predicate(
    phase: Phase,
    cursor: KeysetCursor | null,
    hwm: KeysetCursor | null,
    until: KeysetCursor | null = null,
  ): { sql: string; values: unknown[] } {
    const parts: string[] = [];
    const values: unknown[] = [];
    if (this.options.where) parts.push(`(${this.options.where})`);
    const fields = this.fields(phase);
    const position = this.positionIn(phase, cursor);
    if (position && position.length > 0) {
      parts.push(keysetAfter(fields, position.length, values.length + 1));
      values.push(...position);
    }
    const bound = boundOf({ phase, highWaterMark: hwm, until }, this.incremental(phase));
    if (bound && bound.length > 0) {
      parts.push(keysetAtMost(fields.slice(0, bound.length), values.length + 1));
      values.push(...bound);
    }
    return { sql: parts.length ? `WHERE ${parts.join(' AND ')}` : '', values };
  }

  /**
   * Runs a statement. `rows: 'records'` or `'positions'` reads rows as the server's text and decodes
   * each column into the value model (positions: arrays of the values of `fields`, then any more).
   */
  private query<T extends pg.QueryResultRow>(
    doing: string,
    sql: string,
    values: unknown[],
    rows: 'records' | { positions: readonly string[] } | null = null,
  ): Promise<pg.QueryResult<T>> {
    return withClient(this.pool, doing, async (client) => {
      let result: pg.QueryResult<T>;
      try {
        result =
          rows === null
            ? await client.query<T>(sql, values)
            : await client.query<T>({
                text: sql,
                values,
                types: asText,
                ...(rows === 'records' ? {} : { rowMode: 'array' }),
              } as pg.QueryConfig);
      } catch (err) {
        throw pgError(`${doing} ${this.table}`, err);
      }
      if (rows === 'records') decodeRows(result.rows, this.decoders);
      else if (rows !== null)
        for (const row of result.rows) this.decodePosition(row as unknown as unknown[], rows.positions);
      return result;
    });
  }

  private decodePosition(values: unknown[], fields: readonly string[]): void {
    for (let i = 0; i < fields.length; i++) {
      const decode = this.decoderByName.get(fields[i]!);
      const text = values[i];
      if (decode && typeof text === 'string') values[i] = decode(text);
    }
  }

  async read(req: ReadRequest): Promise<Page<Row>> {
    req.signal.throwIfAborted();
    const { text, values } = this.pageQuery(req, this.selectList);
    const { rows } = await this.query<Row>('reading', text, values, 'records');
    const last = rows.at(-1);
    return {
      records: rows,
      ...this.pageEnd(req, rows.length, last ? positionOf(last, this.fields(req.phase)) : null),
    };
  }

  /**
   * The page `read` would return, reading only its keys (its order fields): for a target in the
   * same system that copies the rows itself. `range` bounds the page as the target's query needs it.
   */
  async bounds(req: ReadRequest): Promise<PageBounds> {
    req.signal.throwIfAborted();
    const fields = this.fields(req.phase);
    const { text, values } = this.pageQuery(req, columnList(fields));
    // The page's keys stay on the server: one row comes back, its last position and its count.
    const desc = fields.map((f) => `${quoteIdent(f)} DESC`).join(', ');
    const { rows } = await this.query<unknown[]>(
      'reading the keys of',
      `WITH page AS (${text}) SELECT l.*, c.n FROM (SELECT count(*)::int AS n FROM page) c LEFT JOIN LATERAL (SELECT * FROM page ORDER BY ${desc} LIMIT 1) l ON true`,
      values,
      { positions: fields },
    );
    const row = rows[0] ?? [];
    const count = Number(row.at(-1) ?? 0);
    const last = count > 0 ? row.slice(0, -1) : null;
    const after = this.positionIn(req.phase, req.cursor as KeysetCursor | null);
    const range: PostgresRange = {
      phase: req.phase,
      fields,
      after: after && after.length > 0 ? after : null,
      upTo: last,
    };
    return { count, ...this.pageEnd(req, count, last), range: range as unknown as Json };
  }

  /**
   * Plans the read (`EXPLAIN`, which runs nothing) under the connection's user: a `where` the server
   * refuses or a table this user may not read is named here, before a run meets it.
   */
  async check(): Promise<CheckFinding[]> {
    const where = this.options.where ? ` WHERE (${this.options.where})` : '';
    const table = `table ${this.options.schema ?? 'public'}.${this.options.table}`;
    try {
      const who = await withClient(this.pool, 'checking the source', async (client) => {
        await client.query(`EXPLAIN SELECT ${this.selectList} FROM ${this.table}${where}`);
        const { rows } = await client.query<{ who: string }>(
          "SELECT current_user || '@' || current_database() AS who",
        );
        return rows[0]?.who ?? '';
      });
      return [
        {
          level: 'ok',
          message: `${table} is readable as ${who}${where ? '; the where clause is valid' : ''}`,
        },
      ];
    } catch (err) {
      return [{ level: 'problem', message: `${table}: the read is refused: ${describePgError(err)}` }];
    }
  }

  /** What a PostgreSQL target needs to reach these rows itself. The URL may hold a password: never log it. */
  location(): NativeLocation {
    return {
      system: 'postgres',
      url: this.url,
      schema: this.options.schema ?? 'public',
      table: this.options.table,
      columns: this.columns.map((c) => c.name),
      where: this.options.where ?? null,
    };
  }

  /** One page of `req` in keyset order, selecting `select`: the query and its values. */
  private pageQuery(req: ReadRequest, select: string): { text: string; values: unknown[] } {
    const { sql, values } = this.predicate(
      req.phase,
      req.cursor as KeysetCursor | null,
      req.highWaterMark as KeysetCursor | null,
      (req.until ?? null) as KeysetCursor | null,
    );
    const order = columnList(this.fields(req.phase));
    return {
      text: `SELECT ${select} FROM ${this.table} ${sql} ORDER BY ${order} LIMIT $${values.length + 1}`,
      values: [...values, req.limit],
    };
  }

  /** Where a page of `count` rows ending at position `last` leaves the read, and whether the phase is done. */
  private pageEnd(req: ReadRequest, count: number, last: unknown[] | null): { next: Cursor; done: boolean } {
    const end = keysetPageEnd(req, count, last, this.incremental(req.phase));
    return { next: end.next as Cursor, done: end.done };
  }

  private incremental(phase: Phase): boolean {
    return phase === 'incremental' && this.shape.cursorField !== null;
  }

  /**
   * The last key (the backfill's bound) and the last `(cursor, key)` position (where incremental
   * reading goes on, strictly after it), both in the database's own order.
   */
  async highWaterMark(): Promise<Cursor> {
    const key = await this.last(this.shape.key, null);
    const field = this.shape.cursorField;
    if (!field) return { key } as Cursor;
    const k = await this.last([field, ...this.shape.key], `${quoteIdent(field)} IS NOT NULL`);
    return { key, k: k ?? [] } as unknown as Cursor;
  }

  async splitKeys(parts: number, highWaterMark: Cursor | null): Promise<Cursor[]> {
    const { sql, values } = this.predicate('backfill', null, highWaterMark as KeysetCursor | null);
    const counted = await this.query<{ n: string }>(
      'counting the keys of',
      `SELECT count(*) AS n FROM ${this.table} ${sql}`,
      values,
    );
    const count = Number(counted.rows[0]?.n ?? 0);
    const fields = this.fields('backfill');
    const keys = columnList(fields);
    const at = `SELECT ${keys} FROM ${this.table} ${sql} ORDER BY ${keys} LIMIT 1 OFFSET $${values.length + 1}`;
    const ends: Cursor[] = [];
    // The key at each `i/parts` of the rows, in the table's own order (its collation decides).
    for (let i = 1; i < parts; i++) {
      const offset = Math.floor((i * count) / parts) - 1;
      if (offset < 0) continue;
      const found = await this.query('splitting the keys of', at, [...values, offset], { positions: fields });
      const key = found.rows[0] as unknown as unknown[] | undefined;
      const previous = (ends.at(-1) as KeysetCursor | undefined)?.key;
      if (key && !(previous && samePosition(previous, key))) ends.push({ key } as unknown as Cursor);
    }
    return ends;
  }

  /** The greatest position over `fields`, or null for an empty table. */
  private async last(fields: readonly string[], condition: string | null): Promise<unknown[] | null> {
    const conditions = [this.options.where ? `(${this.options.where})` : null, condition].filter(Boolean);
    const where = conditions.length ? `WHERE ${conditions.join(' AND ')}` : '';
    const desc = fields.map((k) => `${quoteIdent(k)} DESC NULLS LAST`).join(', ');
    const top = await this.query<Row>(
      'taking the high-water mark of',
      `SELECT ${columnList(fields)} FROM ${this.table} ${where} ORDER BY ${desc} LIMIT 1`,
      [],
      'records',
    );
    return top.rows[0] ? positionOf(top.rows[0], fields) : null;
  }

  /**
   * What is left of the backfill: counted where the planner expects few enough rows to count in a
   * moment, else the planner's estimate, marked a guess (on a table never analysed it can be off by
   * far; the engine asks again at each run and never lets it fall below what is done).
   */
  async estimate(req: {
    phase: Phase;
    cursor: Cursor | null;
    highWaterMark: Cursor | null;
  }): Promise<Estimate | null> {
    if (req.phase !== 'backfill') return null;
    const { sql, values } = this.predicate(
      'backfill',
      req.cursor as KeysetCursor | null,
      req.highWaterMark as KeysetCursor | null,
    );
    const { rows } = await this.query<{ 'QUERY PLAN': [{ Plan: { 'Plan Rows': number } }] }>(
      'estimating',
      `EXPLAIN (FORMAT JSON) SELECT 1 FROM ${this.table} ${sql}`,
      values,
    );
    const planned = rows[0]?.['QUERY PLAN'][0]?.Plan['Plan Rows'];
    const guess = typeof planned === 'number' ? { records: Math.round(planned), exact: false } : null;
    if (guess && guess.records > EXACT_COUNT_UP_TO) return guess;
    return (await this.count(sql, values)) ?? guess;
  }

  /** count(*) under a statement timeout; null when it would take longer. */
  private async count(where: string, values: unknown[]): Promise<Estimate | null> {
    return withClient(this.pool, 'counting', async (client) => {
      try {
        await client.query('BEGIN');
        await client.query(`SET LOCAL statement_timeout = ${COUNT_TIMEOUT_MS}`);
        const { rows } = await client.query<{ n: string }>(
          `SELECT count(*) AS n FROM ${this.table} ${where}`,
          values,
        );
        await client.query('COMMIT');
        return { records: Number(rows[0]?.n ?? 0), exact: true };
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        // 57014: the timeout cancelled the count; the planner's guess stands.
        if ((err as { code?: unknown }).code === '57014') return null;
        throw pgError(`counting ${this.table}`, err);
      }
    });
  }

  timeOf(cursor: Cursor): number | null {
    const k = (cursor as KeysetCursor | null)?.k;
    return k && k.length > 0 ? timeOfValue(k[0]) : null;
  }

  async readByKeys(keys: readonly (readonly Json[])[], req: { signal: AbortSignal }): Promise<Row[]> {
    req.signal.throwIfAborted();
    const records: Row[] = [];
    const width = this.shape.key.length;
    const filter = this.options.where ? ` AND (${this.options.where})` : '';
    // PostgreSQL binds at most 65,535 parameters per statement.
    const per = Math.max(1, Math.floor(60_000 / width));
    for (let i = 0; i < keys.length; i += per) {
      const chunk = keys.slice(i, i + per);
      const tuples = chunk.map(
        (_, r) => `(${this.shape.key.map((_k, c) => `$${r * width + c + 1}`).join(', ')})`,
      );
      const { rows } = await this.query<Row>(
        'reading by key',
        `SELECT ${this.selectList} FROM ${this.table} WHERE (${columnList(this.shape.key)}) IN (${tuples.join(', ')})${filter}`,
        chunk.flat(),
        'records',
      );
      records.push(...rows);
    }
    return records;
  }

  rewind(cursor: Cursor, lookbackMs: number): Cursor {
    const k = (cursor as KeysetCursor).k;
    const field = this.shape.cursorField;
    if (!field || !k || k.length === 0) return cursor;
    const type = this.types.get(field) ?? '';
    let rewound: unknown[] | null = null;
    if (TIME_TYPES.has(type)) rewound = rewindPosition(k, lookbackMs);
    else if (INTEGER_TYPES.has(type) && Number.isSafeInteger(Number(k[0]))) {
      // Epoch seconds or milliseconds in an integer column; a bigint stays one.
      const back = rewindPosition([Number(k[0])], lookbackMs);
      const at = back ? Math.floor(Number(back[0])) : null;
      rewound = at === null ? null : [typeof k[0] === 'bigint' ? BigInt(at) : at];
    }
    return rewound ? ({ k: rewound } as Cursor) : cursor;
  }

  /** The selected columns with their full types (modifiers included), for a target that creates its table. */
  async schema(): Promise<SourceSchema> {
    return { dialect: 'postgres', columns: this.columns.map((c) => ({ name: c.name, type: c.fullType })) };
  }

  async close(): Promise<void> {
    if (!this.pool.ended) await this.pool.end();
  }
}
