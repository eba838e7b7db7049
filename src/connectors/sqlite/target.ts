import { realpathSync } from 'node:fs';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { pathToFileURL } from 'node:url';
import { SQLITE_BUSY_WAIT_MS, whileBusy } from '../../core/busy.ts';
import { ConnectorError } from '../../core/errors.ts';
import type { NativeLocation, SyncShape, Target } from '../../core/ports.ts';
import type { Json, Rejected, Row, WriteResult } from '../../core/types.ts';
import { fieldReason } from '../../core/values.ts';
import {
  bindable,
  columnList,
  hasUniqueKey,
  keysetAfter,
  keysetAtMost,
  quoteIdent,
  type SqliteRange,
  type SqlValue,
} from './sql.ts';
import { declaredTypes, type Encode, encoderOf, Refusal } from './values.ts';

const SOURCE_ALIAS = 'sluice_source';
// A target locked this long by another process fails the batch (transient: the run is tried again).
const BUSY_GIVE_UP_MS = 30_000;

export type SqliteTargetOptions = {
  table: string;
  /** `upsert` (default) inserts or updates by key; `insert` leaves existing keys untouched. */
  mode: 'upsert' | 'insert';
  /** PRAGMA synchronous for the target file; FULL makes each confirmed batch survive power loss. */
  synchronous: 'FULL' | 'NORMAL';
  /** Create a missing table on the first write (default); false refuses with TABLE_MISSING. */
  create?: boolean | undefined;
};

// SQLite allows 32,766 bound values per statement; rows per statement also stop paying off past a few hundred.
const MAX_VALUES = 32_766;
const MAX_ROWS_PER_STATEMENT = 500;

/**
 * Writes a batch in one transaction with multi-row upserts. A statement that fails is rolled back
 * to its savepoint and its rows retried one by one, so a row the table refuses (NOT NULL, CHECK,
 * type) is rejected with SQLite's message while the rest of the batch is written.
 */
export class SqliteTarget implements Target {
  private readonly db: DatabaseSync;
  private readonly options: SqliteTargetOptions;
  private readonly key: readonly string[];
  private columns: string[] = [];
  /** How values are stored in each column, by its declared type (see `./values.ts`). */
  private encoders = new Map<string, Encode>();
  /** Each column's declared type. */
  private declared = new Map<string, string>();
  private readonly cursorField: string | null;
  /** The source file attached for copies, if any. */
  private attached: string | null = null;
  private readonly path: string;
  private readonly declaredTypes: ReadonlyMap<string, string>;
  private readonly statements = new Map<string, StatementSync>();

  constructor(path: string, options: SqliteTargetOptions, shape: SyncShape) {
    this.db = new DatabaseSync(path, { timeout: SQLITE_BUSY_WAIT_MS });
    this.path = path;
    this.db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = ${options.synchronous}`);
    this.options = options;
    this.key = shape.key;
    this.cursorField = shape.cursorField;
    this.declaredTypes = declaredTypes(shape.sourceSchema);
    this.readColumns();
    if (this.columns.length > 0) this.assertUniqueKey();
    else if (options.create === false) {
      this.db.close();
      throw new ConnectorError(
        'TABLE_MISSING',
        `target table "${options.table}" does not exist (create: false): create it, or let the target create it`,
      );
    }
  }

  /** The table's columns and, for each, how its declared type stores values. */
  private readColumns(): void {
    const columns = this.db
      .prepare('SELECT name, type FROM pragma_table_info(?) ORDER BY cid')
      .all(this.options.table)
      .map((r) => ({ name: String(r.name), type: String(r.type) }));
    this.columns = columns.map((c) => c.name);
    this.declared = new Map(columns.map((c) => [c.name, c.type]));
    this.encoders = new Map(columns.map((c) => [c.name, encoderOf(c.type)]));
  }

  private assertUniqueKey(): void {
    if (hasUniqueKey(this.db, this.options.table, this.key)) return;
    throw new ConnectorError(
      'TARGET_KEY_NOT_UNIQUE',
      `target table "${this.options.table}" has no PRIMARY KEY or UNIQUE index on (${this.key.join(', ')}); writes by key need one`,
    );
  }

  /**
   * Creates the table on first write, and adds columns for fields it has not seen. Columns declare
   * the types the source declares for them (a SQLite source's own; another system's chosen to keep
   * its values, see `declaredTypes`); others are left untyped (SQLite stores any value).
   */
  private ensureColumns(fields: readonly string[], types = this.declaredTypes): void {
    const table = quoteIdent(this.options.table);
    if (this.columns.length === 0) {
      this.db.exec(createTableSql(table, fields, this.key, types));
      this.readColumns();
      return;
    }
    for (const field of fields) {
      if (this.columns.includes(field)) continue;
      this.db.exec(`ALTER TABLE ${table} ADD COLUMN ${quoteIdent(field)}`);
      this.columns.push(field);
      this.declared.set(field, '');
      this.encoders.set(field, encoderOf(''));
    }
  }

  private statement(fields: readonly string[], rows: number): StatementSync {
    const id = `${rows}:${fields.join('\u0000')}`;
    let stmt = this.statements.get(id);
    if (stmt) return stmt;
    const tuple = `(${fields.map(() => '?').join(', ')})`;
    const values = Array.from({ length: rows }, () => tuple).join(', ');
    const sql = `INSERT INTO main.${quoteIdent(this.options.table)} (${columnList(fields)}) VALUES ${values} ${this.onConflict(fields)}`;
    stmt = this.db.prepare(sql);
    this.statements.set(id, stmt);
    return stmt;
  }

  /** Upsert by key, or leave existing keys alone in `insert` mode. */
  private onConflict(fields: readonly string[]): string {
    const updates = fields.filter((f) => !this.key.includes(f));
    const action =
      this.options.mode === 'insert' || updates.length === 0
        ? 'DO NOTHING'
        : `DO UPDATE SET ${updates.map((f) => `${quoteIdent(f)} = excluded.${quoteIdent(f)}`).join(', ')}`;
    return `ON CONFLICT (${columnList(this.key)}) ${action}`;
  }

  /**
   * Copies a page from a SQLite source inside SQLite (`INSERT … SELECT` from the attached source
   * file), upserting by key as `write` does, in one transaction. A row the table refuses fails the
   * statement: the copy answers null and the engine sends the batch the ordinary way, row by row.
   */
  async copyFrom(
    location: NativeLocation,
    range: Json,
    req: { signal: AbortSignal },
  ): Promise<WriteResult<Row> | null> {
    req.signal.throwIfAborted();
    if (
      location.system !== 'sqlite' ||
      typeof location.path !== 'string' ||
      typeof location.table !== 'string'
    )
      return null;
    const { fields, after, upTo } = range as SqliteRange;
    if (!upTo) return { written: 0, rejected: [] };
    const from = this.attach(location.path);
    const source = this.copiedColumns(from, location.table, location.columns);
    const columns = source.map((c) => c.name);
    // A table created by a copy declares the copied table's types, whatever the sync's source said.
    this.ensureColumns(columns, declaredTypes({ dialect: 'sqlite', columns: source }));
    // A column declared otherwise here keeps values otherwise (NaN as 'NaN' in REAL, JSON as text):
    // the ordinary path stores each value as this table's type keeps it, or refuses it.
    if (source.some((c) => !sameType(c.type, this.declared.get(c.name) ?? ''))) return null;
    const where = [
      ...(typeof location.where === 'string' ? [`(${location.where})`] : []),
      ...(after ? [keysetAfter(fields, after.length)] : []),
      keysetAtMost(fields),
    ];
    const sql = `INSERT INTO main.${quoteIdent(this.options.table)} (${columnList(columns)}) SELECT ${columnList(columns)} FROM ${from}.${quoteIdent(location.table)} WHERE ${where.join(' AND ')} ORDER BY ${columnList(fields)} ${this.onConflict(columns)}`;
    const values = [...(after ?? []), ...upTo].map(bindable);
    try {
      const written = await this.inTransaction(req.signal, () =>
        Number(this.copyStatement(sql).run(...values).changes),
      );
      return { written, rejected: [] };
    } catch (err) {
      if (isRecordError(err)) return null;
      throw err;
    }
  }

  /**
   * Runs `body` in a write transaction, committed, or rolled back when it throws. The file's lock is
   * waited for between short tries, so the event loop goes on while another process holds it.
   */
  private inTransaction<T>(signal: AbortSignal, body: () => T): Promise<T> {
    return whileBusy(
      () => this.db.exec('BEGIN IMMEDIATE'),
      () => {
        try {
          const result = body();
          this.db.exec('COMMIT');
          return result;
        } catch (err) {
          if (this.db.isTransaction) this.db.exec('ROLLBACK');
          throw err;
        }
      },
      {
        giveUpMs: BUSY_GIVE_UP_MS,
        signal,
        giveUp: (err) =>
          new ConnectorError(
            'TARGET_BUSY',
            `${this.path} stayed locked by another process for ${BUSY_GIVE_UP_MS / 1000} s`,
            { cause: err, transient: true },
          ),
      },
    );
  }

  private copyStatement(sql: string): StatementSync {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  /**
   * Makes the source file readable from this connection and answers the schema name it has there:
   * `main` when the source is this very file (a second attachment of it would lock against itself).
   */
  private attach(path: string): string {
    if (sameFile(path, this.path)) return 'main';
    if (this.attached !== path) {
      if (this.attached !== null) this.db.exec(`DETACH DATABASE ${SOURCE_ALIAS}`);
      // Read-only: a write transaction here must not lock the source file against its own writers.
      this.db.prepare(`ATTACH DATABASE ? AS ${SOURCE_ALIAS}`).run(`${pathToFileURL(path).href}?mode=ro`);
      this.attached = path;
    }
    return SOURCE_ALIAS;
  }

  /** The source's columns a copy takes: all of its table's, or the ones its `columns` option names. */
  private copiedColumns(
    schema: string,
    table: string,
    only: Json | undefined,
  ): { name: string; type: string }[] {
    const all = this.db
      .prepare(`SELECT name, type FROM ${schema}.pragma_table_info(?) ORDER BY cid`)
      .all(table)
      .map((r) => ({ name: String(r.name), type: String(r.type) }));
    if (!Array.isArray(only)) return all;
    const wanted = new Set([
      ...this.key,
      ...(this.cursorField ? [this.cursorField] : []),
      ...only.map(String),
    ]);
    return all.filter((c) => wanted.has(c.name));
  }

  async write(records: Row[], req: { signal: AbortSignal }): Promise<WriteResult<Row>> {
    req.signal.throwIfAborted();
    const rejected: Rejected<Row>[] = [];
    const keyed: Row[] = [];
    for (const record of records) {
      const missing = this.missingKey(record);
      if (missing === undefined) keyed.push(record);
      else rejected.push({ record, reason: `key field "${missing}" is missing` });
    }
    if (keyed.length === 0) return { written: 0, rejected };
    const fields = fieldsOf(keyed);
    this.ensureColumns(fields);
    const { writable, rows } = this.encode(keyed, fields, rejected);
    if (writable.length === 0) return { written: 0, rejected };
    const perStatement = Math.max(
      1,
      Math.min(MAX_ROWS_PER_STATEMENT, Math.floor(MAX_VALUES / fields.length)),
    );
    let written = 0;
    await this.inTransaction(req.signal, () => {
      for (let i = 0; i < writable.length; i += perStatement) {
        written += this.writeChunk(
          writable,
          rows,
          i,
          Math.min(writable.length, i + perStatement),
          fields,
          rejected,
        );
      }
    });
    return { written, rejected };
  }

  /**
   * Each record's values as SQLite stores them, in `fields` order; a record with a value its column
   * cannot keep is rejected, the reason naming the field.
   */
  private encode(
    records: readonly Row[],
    fields: readonly string[],
    rejected: Rejected<Row>[],
  ): { writable: Row[]; rows: SqlValue[][] } {
    const encoders = fields.map((f) => this.encoders.get(f)!);
    const writable: Row[] = [];
    const rows: SqlValue[][] = [];
    next: for (const record of records) {
      const row: SqlValue[] = new Array(fields.length);
      for (let j = 0; j < fields.length; j++) {
        const value = record[fields[j]!];
        const stored = encoders[j]!(value);
        if (stored instanceof Refusal) {
          rejected.push({ record, reason: fieldReason(fields[j]!, stored.reason) });
          continue next;
        }
        row[j] = stored;
      }
      writable.push(record);
      rows.push(row);
    }
    return { writable, rows };
  }

  private missingKey(record: Row): string | undefined {
    for (const k of this.key) if (record[k] === null || record[k] === undefined) return k;
    return undefined;
  }

  /** Writes `records[start, end)` (stored as `rows`) in one statement; on a failure, each of them alone. */
  private writeChunk(
    records: readonly Row[],
    rows: readonly SqlValue[][],
    start: number,
    end: number,
    fields: readonly string[],
    rejected: Rejected<Row>[],
  ): number {
    const width = fields.length;
    const values: SqlValue[] = new Array((end - start) * width);
    let n = 0;
    for (let i = start; i < end; i++) {
      const row = rows[i]!;
      for (let j = 0; j < width; j++) values[n++] = row[j]!;
    }
    this.db.exec('SAVEPOINT chunk');
    try {
      this.statement(fields, end - start).run(...values);
      this.db.exec('RELEASE chunk');
      return end - start;
    } catch (err) {
      this.db.exec('ROLLBACK TO chunk');
      this.db.exec('RELEASE chunk');
      if (end - start === 1) {
        if (!isRecordError(err)) throw err;
        rejected.push({ record: records[start]!, reason: (err as Error).message });
        return 0;
      }
      let written = 0;
      for (let i = start; i < end; i++) written += this.writeChunk(records, rows, i, i + 1, fields, rejected);
      return written;
    }
  }

  async close(): Promise<void> {
    if (this.db.isOpen) this.db.close();
  }
}

/** Fields present in any record of the batch, in first-seen order; absent ones are written as NULL. */
function fieldsOf(records: readonly Row[]): string[] {
  const seen = new Set<string>();
  for (const record of records)
    for (const field of Object.keys(record)) if (!seen.has(field)) seen.add(field);
  return [...seen];
}

/** Errors caused by one row's values, as opposed to the database being unusable (full, locked, I/O). */
function isRecordError(err: unknown): boolean {
  const code = (err as { errcode?: number }).errcode;
  // SQLITE_CONSTRAINT (19), SQLITE_MISMATCH (20), SQLITE_TOOBIG (18), SQLITE_RANGE (25)
  return code !== undefined && [18, 19, 20, 25].includes(code & 0xff);
}

/**
 * The table a first batch creates. A single integer key becomes the rowid (`INTEGER PRIMARY KEY`),
 * as in most SQLite schemas: no separate key index to maintain, and the fastest table to fill.
 */
function createTableSql(
  table: string,
  fields: readonly string[],
  key: readonly string[],
  types: ReadonlyMap<string, string>,
): string {
  const rowidKey = key.length === 1 && /^INTEGER$/i.test(types.get(key[0]!) ?? '');
  const defs = fields.map((f) => {
    const type = types.get(f);
    const decl = type ? `${quoteIdent(f)} ${type}` : quoteIdent(f);
    return rowidKey && f === key[0] ? `${decl} PRIMARY KEY` : decl;
  });
  const pk = rowidKey ? '' : `, PRIMARY KEY (${columnList(key)})`;
  return `CREATE TABLE IF NOT EXISTS ${table} (${defs.join(', ')}${pk})`;
}

const sameType = (a: string, b: string): boolean => a.trim().toUpperCase() === b.trim().toUpperCase();

function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}
