import { realpathSync } from 'node:fs';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { ConnectorError } from '../../core/errors.ts';
import type { NativeLocation, SourceSchema, SyncShape, Target } from '../../core/ports.ts';
import type { Json, Rejected, Row, WriteResult } from '../../core/types.ts';
import {
  columnList,
  keysetAfter,
  keysetAtMost,
  quoteIdent,
  type SqliteRange,
  type SqlValue,
  toSqlValue,
} from './sql.ts';

const SOURCE_ALIAS = 'sluice_source';

export type SqliteTargetOptions = {
  table: string;
  /** `upsert` (default) inserts or updates by key; `insert` leaves existing keys untouched. */
  mode: 'upsert' | 'insert';
  /** PRAGMA synchronous for the target file; FULL makes each confirmed batch survive power loss. */
  synchronous: 'FULL' | 'NORMAL';
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
  private readonly cursorField: string | null;
  /** The source file attached for copies, if any. */
  private attached: string | null = null;
  private readonly path: string;
  private readonly declaredTypes: ReadonlyMap<string, string>;
  private readonly statements = new Map<string, StatementSync>();

  constructor(path: string, options: SqliteTargetOptions, shape: SyncShape) {
    this.db = new DatabaseSync(path, { timeout: 10_000 });
    this.path = path;
    this.db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = ${options.synchronous}`);
    this.options = options;
    this.key = shape.key;
    this.cursorField = shape.cursorField;
    this.declaredTypes = declaredTypes(shape.sourceSchema);
    this.columns = this.tableColumns();
    if (this.columns.length > 0) this.assertUniqueKey();
  }

  private tableColumns(): string[] {
    return this.db
      .prepare('SELECT name FROM pragma_table_info(?)')
      .all(this.options.table)
      .map((r) => String(r.name));
  }

  private assertUniqueKey(): void {
    const wanted = [...this.key].sort().join('\u0000');
    const indexes = this.db
      .prepare('SELECT name, "unique" AS u FROM pragma_index_list(?)')
      .all(this.options.table);
    for (const index of indexes) {
      if (!index.u) continue;
      const cols = this.db
        .prepare('SELECT name FROM pragma_index_info(?)')
        .all(String(index.name))
        .map((r) => String(r.name));
      if (cols.sort().join('\u0000') === wanted) return;
    }
    const pk = this.db
      .prepare('SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk')
      .all(this.options.table)
      .map((r) => String(r.name));
    if (pk.sort().join('\u0000') === wanted) return;
    throw new ConnectorError(
      'TARGET_KEY_NOT_UNIQUE',
      `target table "${this.options.table}" has no PRIMARY KEY or UNIQUE index on (${this.key.join(', ')}); writes by key need one`,
    );
  }

  /**
   * Creates the table on first write, and adds columns for fields it has not seen. Columns keep the
   * types a SQLite source declares for them; others are left untyped (SQLite stores any value).
   */
  private ensureColumns(fields: readonly string[]): void {
    const table = quoteIdent(this.options.table);
    if (this.columns.length === 0) {
      this.db.exec(createTableSql(table, fields, this.key, this.declaredTypes));
      this.columns = this.tableColumns();
      return;
    }
    for (const field of fields) {
      if (this.columns.includes(field)) continue;
      this.db.exec(`ALTER TABLE ${table} ADD COLUMN ${quoteIdent(field)}`);
      this.columns.push(field);
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
    const columns = this.copiedColumns(from, location.table, location.columns);
    this.ensureColumns(columns);
    const where = [
      ...(typeof location.where === 'string' ? [`(${location.where})`] : []),
      ...(after ? [keysetAfter(fields, after.length)] : []),
      keysetAtMost(fields),
    ];
    const sql = `INSERT INTO main.${quoteIdent(this.options.table)} (${columnList(columns)}) SELECT ${columnList(columns)} FROM ${from}.${quoteIdent(location.table)} WHERE ${where.join(' AND ')} ORDER BY ${columnList(fields)} ${this.onConflict(columns)}`;
    const values = [...(after ?? []), ...upTo] as SqlValue[];
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const written = Number(this.copyStatement(sql).run(...values).changes);
      this.db.exec('COMMIT');
      return { written, rejected: [] };
    } catch (err) {
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      if (isRecordError(err)) return null;
      throw err;
    }
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
      this.db.prepare(`ATTACH DATABASE ? AS ${SOURCE_ALIAS}`).run(path);
      this.attached = path;
    }
    return SOURCE_ALIAS;
  }

  /** The source's columns a copy takes: all of its table's, or the ones its `columns` option names. */
  private copiedColumns(schema: string, table: string, only: Json | undefined): string[] {
    const all = this.db
      .prepare(`SELECT name FROM ${schema}.pragma_table_info(?) ORDER BY cid`)
      .all(table)
      .map((r) => String(r.name));
    if (!Array.isArray(only)) return all;
    const wanted = new Set([
      ...this.key,
      ...(this.cursorField ? [this.cursorField] : []),
      ...only.map(String),
    ]);
    return all.filter((c) => wanted.has(c));
  }

  async write(records: Row[], req: { signal: AbortSignal }): Promise<WriteResult<Row>> {
    req.signal.throwIfAborted();
    const rejected: Rejected<Row>[] = [];
    const writable: Row[] = [];
    for (const record of records) {
      const missing = this.missingKey(record);
      if (missing === undefined) writable.push(record);
      else rejected.push({ record, reason: `key field "${missing}" is missing` });
    }
    if (writable.length === 0) return { written: 0, rejected };
    const fields = fieldsOf(writable);
    this.ensureColumns(fields);
    const perStatement = Math.max(
      1,
      Math.min(MAX_ROWS_PER_STATEMENT, Math.floor(MAX_VALUES / fields.length)),
    );
    let written = 0;
    this.db.exec('BEGIN IMMEDIATE');
    try {
      for (let i = 0; i < writable.length; i += perStatement) {
        written += this.writeChunk(
          writable,
          i,
          Math.min(writable.length, i + perStatement),
          fields,
          rejected,
        );
      }
      this.db.exec('COMMIT');
    } catch (err) {
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      throw err;
    }
    return { written, rejected };
  }

  private missingKey(record: Row): string | undefined {
    for (const k of this.key) if (record[k] === null || record[k] === undefined) return k;
    return undefined;
  }

  /** Writes `records[start, end)` in one statement; on a failure, each of them alone. */
  private writeChunk(
    records: readonly Row[],
    start: number,
    end: number,
    fields: readonly string[],
    rejected: Rejected<Row>[],
  ): number {
    const width = fields.length;
    const values: SqlValue[] = new Array((end - start) * width);
    let n = 0;
    for (let i = start; i < end; i++) {
      const record = records[i]!;
      for (let j = 0; j < width; j++) {
        const value = record[fields[j]!];
        values[n++] = typeof value === 'string' ? value : toSqlValue(value);
      }
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
      for (let i = start; i < end; i++) written += this.writeChunk(records, i, i + 1, fields, rejected);
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

/** Types a SQLite source declares, where they read as a type name (they are written into DDL). */
function declaredTypes(schema: SourceSchema | undefined): Map<string, string> {
  const types = new Map<string, string>();
  if (schema?.dialect !== 'sqlite') return types;
  for (const { name, type } of schema.columns)
    if (/^[A-Za-z][A-Za-z0-9_ ]*(\(\s*\d+\s*(,\s*\d+\s*)?\))?$/.test(type)) types.set(name, type);
  return types;
}

function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}
