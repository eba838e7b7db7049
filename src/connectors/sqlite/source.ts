import { DatabaseSync, type StatementSync } from 'node:sqlite';
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
import {
  bindable,
  columnList,
  keysetAfter,
  keysetAtMost,
  quoteIdent,
  type SqliteRange,
  type SqlValue,
} from './sql.ts';
import { decoderOf } from './values.ts';

export type SqliteSourceOptions = {
  table: string;
  columns?: string[] | undefined;
  where?: string | undefined;
};

/** Cursors are core/keyset's `KeysetCursor`: `{ key }` in key order, `{ k }` in (cursor, key) order. */
export class SqliteSource implements Source {
  /** node:sqlite reads on the main thread: a page read ahead would only be held, not overlapped. */
  readonly readsSynchronously = true;
  private readonly db: DatabaseSync;
  private readonly path: string;
  private readonly shape: SyncShape;
  private readonly options: SqliteSourceOptions;
  private readonly selectList: string;
  private readonly statements = new Map<string, Statement>();
  /** The table's declared column types, by name. */
  private readonly declared: ReadonlyMap<string, string>;

  constructor(path: string, options: SqliteSourceOptions, shape: SyncShape) {
    this.db = new DatabaseSync(path, { readOnly: true, timeout: 10_000 });
    this.path = path;
    this.shape = shape;
    this.options = options;
    this.selectList = options.columns
      ? columnList([
          ...new Set([...shape.key, ...(shape.cursorField ? [shape.cursorField] : []), ...options.columns]),
        ])
      : '*';
    this.declared = this.assertTable();
  }

  private assertTable(): Map<string, string> {
    const declared = new Map(
      this.db
        .prepare(`SELECT name, type FROM pragma_table_info(?)`)
        .all(this.options.table)
        .map((r) => [String(r.name), String(r.type)] as const),
    );
    const columns = [...declared.keys()];
    if (columns.length === 0) {
      throw new ConnectorError('SOURCE_TABLE_MISSING', `source table "${this.options.table}" does not exist`);
    }
    for (const field of [...this.shape.key, ...(this.shape.cursorField ? [this.shape.cursorField] : [])]) {
      if (!columns.includes(field)) {
        throw new ConnectorError(
          'SOURCE_COLUMN_MISSING',
          `source table "${this.options.table}" has no column "${field}"`,
        );
      }
    }
    return declared;
  }

  /**
   * Prepared once per SQL text. Rows come back as arrays and are turned into objects here: node:sqlite's
   * own row objects are dictionary-mode (no shared shape), slower to build and read and several times
   * larger, which costs throughput and memory on every record of a backfill.
   */
  private statement(sql: string): Statement {
    let entry = this.statements.get(sql);
    if (!entry) {
      const stmt = this.db.prepare(sql);
      stmt.setReturnArrays(true);
      const names = stmt.columns().map((c) => c.name);
      const decoders = names.flatMap((name, i) => {
        const decode = decoderOf(this.declared.get(name) ?? '');
        return decode ? [[i, decode] as [number, (value: unknown) => unknown]] : [];
      });
      entry = { stmt, names, bigints: false, decoders };
      this.statements.set(sql, entry);
    }
    return entry;
  }

  /**
   * Every row of `sql`, its values in the value model (`./values.ts`: NaN, booleans, JSON and arrays
   * by the columns' declared types). An integer beyond 2^53 fails a plain read ("too large to be
   * represented"): from then on that statement reads integers as bigints, and keeps as numbers
   * those a double holds.
   */
  private rows(sql: string, values: readonly SqlValue[]): { rows: unknown[][]; names: string[] } {
    const entry = this.statement(sql);
    let rows: unknown[][] | null = null;
    if (!entry.bigints) {
      try {
        rows = entry.stmt.all(...values) as unknown as unknown[][];
      } catch (err) {
        if (!/too large to be represented/i.test((err as Error).message)) throw err;
      }
      // node:sqlite reads -2^63 (INT64_MIN) as the double -2^63 without the error it gives every
      // other integer beyond 2^53: a double of that value may be it, so the rows are read again.
      if (rows?.some((row) => row.includes(INT64_MIN_AS_DOUBLE))) rows = null;
      if (rows === null) {
        entry.stmt.setReadBigInts(true);
        entry.bigints = true;
      }
    }
    if (rows === null) {
      rows = entry.stmt.all(...values) as unknown as unknown[][];
      for (const row of rows) for (let i = 0; i < row.length; i++) row[i] = safeNumber(row[i]);
    }
    if (entry.decoders.length > 0)
      for (const row of rows) for (const [i, decode] of entry.decoders) row[i] = decode(row[i]);
    return { rows, names: entry.names };
  }

  private fields(phase: Phase): string[] {
    return orderFields(this.shape.key, this.shape.cursorField, phase === 'incremental');
  }

  /** The WHERE clause and its values for reading `phase` after `cursor`, bounded by the high-water mark. */
  private predicate(
    phase: Phase,
    cursor: KeysetCursor | null,
    hwm: KeysetCursor | null,
    until: KeysetCursor | null = null,
  ): { sql: string; values: SqlValue[] } {
    const parts: string[] = [];
    const values: SqlValue[] = [];
    if (this.options.where) parts.push(`(${this.options.where})`);
    const fields = this.fields(phase);
    const position = this.positionIn(phase, cursor);
    if (position && position.length > 0) {
      parts.push(keysetAfter(fields, position.length));
      values.push(...position.map(bindable));
    }
    const bound = boundOf({ phase, highWaterMark: hwm, until }, this.incremental(phase));
    if (bound && bound.length > 0) {
      parts.push(keysetAtMost(fields.slice(0, bound.length)));
      values.push(...bound.map(bindable));
    }
    return { sql: parts.length ? `WHERE ${parts.join(' AND ')}` : '', values };
  }

  private positionIn(phase: Phase, cursor: KeysetCursor | null): unknown[] | null {
    return positionIn(cursor, this.incremental(phase));
  }

  async read(req: ReadRequest): Promise<Page<Row>> {
    req.signal.throwIfAborted();
    const query = this.pageQuery(req, this.selectList);
    const { rows, names } = this.rows(query.sql, query.values);
    const records = toRecords(rows, names);
    const last = records.at(-1);
    return {
      records,
      ...this.pageEnd(req, records.length, last ? positionOf(last, this.fields(req.phase)) : null),
    };
  }

  /** The page `read` would return, reading only its keys: for a target that copies the rows itself. */
  async bounds(req: ReadRequest): Promise<PageBounds> {
    req.signal.throwIfAborted();
    const fields = this.fields(req.phase);
    const query = this.pageQuery(req, columnList(fields));
    const keys = this.rows(query.sql, query.values).rows;
    const last = keys.at(-1) ?? null;
    const end = this.pageEnd(req, keys.length, last);
    const after = this.positionIn(req.phase, req.cursor as KeysetCursor | null);
    const range: SqliteRange = { fields, after: after && after.length > 0 ? after : null, upTo: last };
    return { count: keys.length, ...end, range: range as Json };
  }

  location(): NativeLocation {
    const columns = this.selectList === '*' ? null : (this.options.columns ?? null);
    return {
      system: 'sqlite',
      path: this.path,
      table: this.options.table,
      columns,
      where: this.options.where ?? null,
    };
  }

  async splitKeys(parts: number, highWaterMark: Cursor | null): Promise<Cursor[]> {
    const { sql, values } = this.predicate('backfill', null, highWaterMark as KeysetCursor | null);
    const table = quoteIdent(this.options.table);
    const count = Number(this.rows(`SELECT count(*) FROM ${table} ${sql}`, values).rows[0]?.[0] ?? 0);
    const keys = columnList(this.fields('backfill'));
    const at = `SELECT ${keys} FROM ${table} ${sql} ORDER BY ${keys} LIMIT 1 OFFSET ?`;
    const ends: Cursor[] = [];
    // The key at each `i/parts` of the rows, in the table's own order (its collation decides).
    for (let i = 1; i < parts; i++) {
      const offset = Math.floor((i * count) / parts) - 1;
      const key = offset < 0 ? undefined : this.rows(at, [...values, offset]).rows[0];
      const previous = (ends.at(-1) as KeysetCursor | undefined)?.key;
      if (key && !(previous && samePosition(previous, key))) ends.push({ key } as Cursor);
    }
    return ends;
  }

  /** The query for one page of `req`, selecting `select`, and its values. */
  private pageQuery(req: ReadRequest, select: string): { sql: string; values: SqlValue[] } {
    const { sql, values } = this.predicate(
      req.phase,
      req.cursor as KeysetCursor | null,
      req.highWaterMark as KeysetCursor | null,
      (req.until ?? null) as KeysetCursor | null,
    );
    const order = columnList(this.fields(req.phase));
    return {
      sql: `SELECT ${select} FROM ${quoteIdent(this.options.table)} ${sql} ORDER BY ${order} LIMIT ?`,
      values: [...values, req.limit],
    };
  }

  /** Where a page of `count` rows ending at `last` leaves the read, and whether the phase is done. */
  private pageEnd(req: ReadRequest, count: number, last: unknown[] | null): { next: Cursor; done: boolean } {
    const end = keysetPageEnd(req, count, last, this.incremental(req.phase));
    return { next: end.next as Cursor, done: end.done };
  }

  private incremental(phase: Phase): boolean {
    return phase === 'incremental' && this.shape.cursorField !== null;
  }

  /** The columns `read` selects, as the table declares them. */
  async schema(): Promise<SourceSchema> {
    const selected =
      this.selectList === '*'
        ? null
        : new Set(this.statement(`SELECT ${this.selectList} FROM ${quoteIdent(this.options.table)}`).names);
    const columns = this.db
      .prepare('SELECT name, type FROM pragma_table_info(?) ORDER BY cid')
      .all(this.options.table)
      .map((r) => ({ name: String(r.name), type: String(r.type) }))
      .filter((c) => !selected || selected.has(c.name));
    return { dialect: 'sqlite', columns };
  }

  /**
   * The last key (the backfill's bound) and the last `(cursor, key)` position (where incremental
   * reading goes on, strictly after it), both in the database's own order.
   */
  async highWaterMark(): Promise<Cursor> {
    const key = this.last(this.shape.key, null);
    const field = this.shape.cursorField;
    if (!field) return { key } as Cursor;
    const k = this.last([field, ...this.shape.key], `${quoteIdent(field)} IS NOT NULL`);
    return { key, k: k ?? [] } as Cursor;
  }

  /** The greatest position over `fields`, or null for an empty table. */
  private last(fields: readonly string[], condition: string | null): unknown[] | null {
    const conditions = [this.options.where ? `(${this.options.where})` : null, condition].filter(Boolean);
    const where = conditions.length ? `WHERE ${conditions.join(' AND ')}` : '';
    const desc = fields.map((k) => `${quoteIdent(k)} DESC`).join(', ');
    const sql = `SELECT ${columnList(fields)} FROM ${quoteIdent(this.options.table)} ${where} ORDER BY ${desc} LIMIT 1`;
    return this.rows(sql, []).rows[0] ?? null;
  }

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
    const [row] = this.rows(
      `SELECT count(*) AS n FROM ${quoteIdent(this.options.table)} ${sql}`,
      values,
    ).rows;
    return { records: Number(row?.[0] ?? 0), exact: true };
  }

  rewind(cursor: Cursor, lookbackMs: number): Cursor {
    const k = (cursor as KeysetCursor).k;
    if (!this.shape.cursorField || !k || k.length === 0) return cursor;
    const rewound = rewindPosition(k, lookbackMs);
    return rewound ? ({ k: rewound } as Cursor) : cursor;
  }

  timeOf(cursor: Cursor): number | null {
    const k = (cursor as KeysetCursor | null)?.k;
    return k && k.length > 0 ? timeOfValue(k[0]) : null;
  }

  async readByKeys(keys: readonly (readonly Json[])[], req: { signal: AbortSignal }): Promise<Row[]> {
    req.signal.throwIfAborted();
    const records: Row[] = [];
    const tuple = `(${this.shape.key.map(() => '?').join(', ')})`;
    const filter = this.options.where ? ` AND (${this.options.where})` : '';
    // SQLite binds at most 32,766 values per statement.
    const per = Math.max(1, Math.floor(30_000 / this.shape.key.length));
    for (let i = 0; i < keys.length; i += per) {
      const chunk = keys.slice(i, i + per);
      const sql = `SELECT ${this.selectList} FROM ${quoteIdent(this.options.table)} WHERE (${columnList(this.shape.key)}) IN (VALUES ${chunk.map(() => tuple).join(', ')})${filter}`;
      const { rows, names } = this.rows(sql, chunk.flat().map(bindable));
      records.push(...toRecords(rows, names));
    }
    return records;
  }

  /** Prepares the read (its columns and `where`) without running it: SQLite names what it refuses. */
  async check(): Promise<CheckFinding[]> {
    const where = this.options.where ? ` WHERE (${this.options.where})` : '';
    const table = `table "${this.options.table}" in ${this.path}`;
    try {
      this.db.prepare(`SELECT ${this.selectList} FROM ${quoteIdent(this.options.table)}${where} LIMIT 0`);
    } catch (err) {
      return [{ level: 'problem', message: `${table}: the read is refused: ${(err as Error).message}` }];
    }
    const fields = [...this.shape.key, ...(this.shape.cursorField ? [this.shape.cursorField] : [])];
    return [
      {
        level: 'ok',
        message: `${table} has ${fields.join(', ')}${where ? '; the where clause is valid' : ''}`,
      },
    ];
  }

  async close(): Promise<void> {
    if (this.db.isOpen) this.db.close();
  }
}

type Statement = {
  stmt: StatementSync;
  names: string[];
  bigints: boolean;
  decoders: [number, (value: unknown) => unknown][];
};

/** A bigint a double holds exactly becomes a number again: integers are numbers unless they cannot be. */
function safeNumber(value: unknown): unknown {
  return typeof value === 'bigint' && value >= MIN_SAFE && value <= MAX_SAFE ? Number(value) : value;
}
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const INT64_MIN_AS_DOUBLE = -(2 ** 63);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Array rows to records. Assigning the columns in one order gives every record the same hidden class;
 * a column named `__proto__` is defined rather than assigned, so it stays a field.
 */
function toRecords(rows: readonly unknown[][], names: readonly string[]): Row[] {
  const records: Row[] = new Array(rows.length);
  const width = names.length;
  const define = names.includes('__proto__');
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    const record: Row = {};
    for (let j = 0; j < width; j++) {
      const name = names[j]!;
      if (define && name === '__proto__')
        Object.defineProperty(record, name, {
          value: row[j],
          enumerable: true,
          writable: true,
          configurable: true,
        });
      else record[name] = row[j];
    }
    records[i] = record;
  }
  return records;
}
