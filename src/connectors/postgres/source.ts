import type pg from 'pg';
import { ConnectorError } from '../../core/errors.ts';
import {
  compareValues,
  type KeysetCursor,
  keysetPageEnd,
  orderFields,
  positionIn,
  positionOf,
  rewindPosition,
} from '../../core/keyset.ts';
import type { NativeLocation, PageBounds, ReadRequest, Source, SyncShape } from '../../core/ports.ts';
import type { Cursor, Json, Page, Phase, Row } from '../../core/types.ts';
import { type Column, createPool, describeTable, withClient } from './client.ts';
import { pgError } from './errors.ts';
import { columnList, keysetAfter, keysetAtMost, type PostgresRange, qualified, quoteIdent } from './sql.ts';

export type PostgresSourceOptions = {
  table: string;
  schema?: string | undefined;
  columns?: string[] | undefined;
  /** An SQL condition rows must meet, e.g. `deleted_at IS NULL`. */
  where?: string | undefined;
};

const TIME_TYPES = new Set(['timestamptz', 'timestamp', 'date']);
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
  private readonly columns: string[];

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
    this.columns = columns.map((c) => c.name).filter((c) => !wanted || wanted.has(c));
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
  ): { sql: string; values: unknown[] } {
    const parts: string[] = [];
    const values: unknown[] = [];
    if (this.options.where) parts.push(`(${this.options.where})`);
    const position = this.positionIn(phase, cursor);
    if (position && position.length > 0) {
      parts.push(keysetAfter(this.fields(phase), position.length, values.length + 1));
      values.push(...position);
    }
    if (phase === 'backfill' && hwm?.key) {
      parts.push(keysetAtMost(this.shape.key, values.length + 1));
      values.push(...hwm.key);
    }
    return { sql: parts.length ? `WHERE ${parts.join(' AND ')}` : '', values };
  }

  private query<T extends pg.QueryResultRow>(
    doing: string,
    sql: string,
    values: unknown[],
    arrays = false,
  ): Promise<pg.QueryResult<T>> {
    return withClient(this.pool, doing, async (client) => {
      try {
        return arrays
          ? await client.query<T>({ text: sql, values, rowMode: 'array' } as pg.QueryConfig)
          : await client.query<T>(sql, values);
      } catch (err) {
        throw pgError(`${doing} ${this.table}`, err);
      }
    });
  }

  async read(req: ReadRequest): Promise<Page<Row>> {
    req.signal.throwIfAborted();
    const { text, values } = this.pageQuery(req, this.selectList);
    const { rows } = await this.query<Row>('reading', text, values);
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
      true,
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

  /** What a PostgreSQL target needs to reach these rows itself. The URL may hold a password: never log it. */
  location(): NativeLocation {
    return {
      system: 'postgres',
      url: this.url,
      schema: this.options.schema ?? 'public',
      table: this.options.table,
      columns: this.columns,
      where: this.options.where ?? null,
    };
  }

  /** One page of `req` in keyset order, selecting `select`: the query and its values. */
  private pageQuery(req: ReadRequest, select: string): { text: string; values: unknown[] } {
    const { sql, values } = this.predicate(
      req.phase,
      req.cursor as KeysetCursor | null,
      req.highWaterMark as KeysetCursor | null,
    );
    const order = columnList(this.fields(req.phase));
    return {
      text: `SELECT ${select} FROM ${this.table} ${sql} ORDER BY ${order} LIMIT $${values.length + 1}`,
      values: [...values, req.limit],
    };
  }

  /** Where a page of `count` rows ending at position `last` leaves the read, and whether the phase is done. */
  private pageEnd(req: ReadRequest, count: number, last: unknown[] | null): { next: Cursor; done: boolean } {
    const end = keysetPageEnd(req, count, last, this.incremental(req.phase), (a, b) =>
      this.comparePositions(this.shape.key, a, b),
    );
    return { next: end.next as Cursor, done: end.done };
  }

  private incremental(phase: Phase): boolean {
    return phase === 'incremental' && this.shape.cursorField !== null;
  }

  async highWaterMark(): Promise<Cursor> {
    const where = this.options.where ? `WHERE (${this.options.where})` : '';
    const desc = this.shape.key.map((k) => `${quoteIdent(k)} DESC`).join(', ');
    const top = await this.query<Row>(
      'taking the high-water mark of',
      `SELECT ${columnList(this.shape.key)} FROM ${this.table} ${where} ORDER BY ${desc} LIMIT 1`,
      [],
    );
    const key = top.rows[0] ? positionOf(top.rows[0], this.shape.key) : null;
    if (!this.shape.cursorField) return { key } as Cursor;
    const max = await this.query<{ m: unknown }>(
      'taking the high-water mark of',
      `SELECT max(${quoteIdent(this.shape.cursorField)}) AS m FROM ${this.table} ${where}`,
      [],
    );
    const value = max.rows[0]?.m ?? null;
    return { key, k: value === null ? [] : [value] } as unknown as Cursor;
  }

  /** The planner's row estimate: instant on any table size, unlike count(*), and good enough for an ETA. */
  async estimate(req: {
    phase: Phase;
    cursor: Cursor | null;
    highWaterMark: Cursor | null;
  }): Promise<number | null> {
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
    return typeof planned === 'number' ? Math.round(planned) : null;
  }

  rewind(cursor: Cursor, lookbackMs: number): Cursor {
    const k = (cursor as KeysetCursor).k;
    const field = this.shape.cursorField;
    if (!field || !k || k.length === 0) return cursor;
    const type = this.types.get(field) ?? '';
    let rewound: unknown[] | null = null;
    if (TIME_TYPES.has(type)) rewound = rewindPosition(k, lookbackMs);
    else if (INTEGER_TYPES.has(type) && Number.isSafeInteger(Number(k[0]))) {
      // Epoch seconds or milliseconds in an integer column; bigint travels as a string, and stays one.
      const back = rewindPosition([Number(k[0])], lookbackMs);
      rewound = back
        ? [typeof k[0] === 'string' ? String(Math.floor(Number(back[0]))) : Math.floor(Number(back[0]))]
        : null;
    }
    return rewound ? ({ ...(cursor as object), k: rewound } as Cursor) : cursor;
  }

  compare(a: Cursor, b: Cursor): number {
    const fields = this.shape.cursorField ? [this.shape.cursorField, ...this.shape.key] : [...this.shape.key];
    const pa = (a as KeysetCursor).k ?? (a as KeysetCursor).key ?? [];
    const pb = (b as KeysetCursor).k ?? (b as KeysetCursor).key ?? [];
    return this.comparePositions(fields, pa, pb);
  }

  /** Orders two positions over `fields`; a shorter one that is a prefix of the other sorts first. */
  private comparePositions(
    fields: readonly string[],
    pa: readonly unknown[],
    pb: readonly unknown[],
  ): number {
    const n = Math.min(pa.length, pb.length);
    for (let i = 0; i < n; i++) {
      const c = this.compareField(fields[i], pa[i], pb[i]);
      if (c !== 0) return c;
    }
    return pa.length - pb.length;
  }

  /** bigint and numeric travel as strings: compare them as numbers, not as text ('9' > '10'). */
  private compareField(field: string | undefined, a: unknown, b: unknown): number {
    const type = field ? this.types.get(field) : undefined;
    if ((type === 'int8' || type === 'numeric') && typeof a === 'string' && typeof b === 'string') {
      return compareDecimals(a, b);
    }
    return compareValues(a, b);
  }

  async close(): Promise<void> {
    if (!this.pool.ended) await this.pool.end();
  }
}

/** Orders two decimal strings (`-12.5`, `3`, `0.001`) exactly. NaN sorts last, as in PostgreSQL. */
export function compareDecimals(a: string, b: string): number {
  if (a === b) return 0;
  if (a === 'NaN' || b === 'NaN') return a === 'NaN' ? 1 : -1;
  const neg = (s: string) => s.startsWith('-');
  if (neg(a) !== neg(b)) return neg(a) ? -1 : 1;
  const sign = neg(a) ? -1 : 1;
  const [ai = '', af = ''] = a.replace(/^[-+]/, '').split('.');
  const [bi = '', bf = ''] = b.replace(/^[-+]/, '').split('.');
  const aInt = ai.replace(/^0+(?=\d)/, '');
  const bInt = bi.replace(/^0+(?=\d)/, '');
  if (aInt.length !== bInt.length) return sign * (aInt.length - bInt.length);
  const width = Math.max(af.length, bf.length);
  const x = aInt + af.padEnd(width, '0');
  const y = bInt + bf.padEnd(width, '0');
  return x === y ? 0 : sign * (x < y ? -1 : 1);
}
