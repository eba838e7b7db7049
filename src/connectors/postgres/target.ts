import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { ConnectorError } from '../../core/errors.ts';
import type { NativeLocation, StoreTransaction, SyncShape, Target } from '../../core/ports.ts';
import type { Json, Rejected, Row, WriteResult } from '../../core/types.ts';
import { ChunkWriter } from './chunks.ts';
import { type Column, createPool, databaseIdentity, describeTable, query, withClient } from './client.ts';
import { CopyEncoder } from './copy.ts';
import { describeOrCreate } from './create.ts';
import { classifyPgError, pgError, sqlstateOf } from './errors.ts';
import {
  columnList,
  keysetAfter,
  keysetAtMost,
  literal,
  type PostgresRange,
  qualified,
  quoteIdent,
  selectStoreSchemas,
  selectUniqueKeys,
} from './sql.ts';
import { type Check, checkOf } from './values.ts';

export type PostgresTargetOptions = {
  table: string;
  schema?: string | undefined;
  /** `upsert` inserts or updates by key; `insert` leaves existing keys untouched; `update` touches only existing keys. */
  mode: 'upsert' | 'insert' | 'update';
  /** Create a missing table from the source's declared columns and key (default); false refuses with TABLE_MISSING. */
  create?: boolean | undefined;
};

/** SQLSTATE unique_violation: with COPY straight into the target, a key that already exists. */
const UNIQUE_VIOLATION = '23505';

/**
 * Writes a batch in bulk, a few statements whatever its size, by one of two paths:
 * - **direct**: `COPY` straight into the target. Where no key of the batch exists yet (a backfill
 *   into an empty table) an insert is exactly what the upsert would do, at a third of its cost.
 *   The first key that exists fails the COPY (23505), which rolls back to its savepoint: the batch
 *   is written by the staged path instead, and so is every later batch of this target.
 * - **staged**: `COPY` into a temporary table, then one `INSERT … SELECT … ON CONFLICT` (or
 *   `UPDATE … FROM`). The stage is created once per session (`ON COMMIT DELETE ROWS`), not per batch.
 * When a statement fails because of some row's values, the chunk is rolled back to its savepoint
 * and split in halves until the bad rows stand alone; they are rejected with PostgreSQL's message
 * and the rest of the batch is written.
 */
export class PostgresTarget implements Target {
  readonly database: string;
  private readonly pool: pg.Pool;
  private readonly options: PostgresTargetOptions;
  private readonly key: readonly string[];
  private readonly table: string;
  private readonly columns: ReadonlyMap<string, Column>;
  /** The stage, one per target table in a session: writes into several tables can share the store's client. */
  private readonly stage: string;
  /** COPY straight into the target until a batch meets a key that exists (never for `update`). */
  private direct: boolean;
  /** One scratch buffer for the COPY data of every batch: writes to one target run one after the other. */
  private readonly encoder = new CopyEncoder();
  private readonly sync: string;
  /** Pools on source databases this target copies from, by URL; closed with the target. */
  private readonly sources = new Map<string, pg.Pool>();
  /** Per source table: the columns a copy takes, or why copies from it are declined. */
  private readonly plans = new Map<string, Promise<CopyPlan | null>>();
  /** Whether a Sluice store with this sync's checkpoint lives in this database (asked once). */
  private storeHere: Promise<boolean> | undefined;
  /** Per column, why a value cannot be stored in it exactly (see `./values.ts`). */
  private readonly checks: ReadonlyMap<string, Check>;
  /** Strings are their column's input text, not values (a CSV source): see `CopyEncoder`. */
  private readonly textInput: boolean;

  private constructor(
    pool: pg.Pool,
    database: string,
    options: PostgresTargetOptions,
    shape: SyncShape,
    columns: Column[],
  ) {
    const key = shape.key;
    this.sync = shape.sync;
    this.pool = pool;
    this.database = database;
    this.options = options;
    this.key = key;
    this.table = qualified(options.schema ?? 'public', options.table);
    this.columns = new Map(columns.map((c) => [c.name, c]));
    this.textInput = shape.sourceSchema?.dialect === 'csv';
    this.checks = new Map(columns.map((c) => [c.name, checkOf(c, this.textInput)]));
    // Named by the table and its columns as opened: a session outlives a target (the store's pool),
    // and a table altered since must not meet a stage of its old shape.
    const shapeOf = `${this.table}\u0000${columns.map((c) => `${c.name}:${c.fullType}`).join('\u0000')}`;
    this.stage = quoteIdent(`sluice_stage_${createHash('sha1').update(shapeOf).digest('hex').slice(0, 16)}`);
    this.direct = options.mode !== 'update';
  }

  static async open(url: string, options: PostgresTargetOptions, shape: SyncShape): Promise<PostgresTarget> {
    const pool = createPool(url, 2);
    const schema = options.schema ?? 'public';
    const where = `target table ${schema}.${options.table}`;
    try {
      return await withClient(pool, 'opening the target', async (client) => {
        const columns = await describeOrCreate(client, schema, options, shape);
        const missing = shape.key.find((k) => !columns.some((c) => c.name === k));
        if (missing)
          throw new ConnectorError('TARGET_COLUMN_MISSING', `${where} has no key column "${missing}"`);
        if (options.mode !== 'update') {
          const { rows } = await client.query<{ cols: string[] }>(selectUniqueKeys, [
            qualified(schema, options.table),
          ]);
          const wanted = [...shape.key].sort().join('\u0000');
          if (!rows.some((r) => [...r.cols].sort().join('\u0000') === wanted)) {
            throw new ConnectorError(
              'TARGET_KEY_NOT_UNIQUE',
              `${where} has no PRIMARY KEY or UNIQUE index on (${shape.key.join(', ')}); writes by key need one`,
            );
          }
        }
        return new PostgresTarget(pool, await databaseIdentity(client), options, shape, columns);
      });
    } catch (err) {
      await pool.end();
      throw err instanceof ConnectorError ? err : pgError('opening the target', err);
    }
  }

  async write(records: Row[], req: { signal: AbortSignal }): Promise<WriteResult<Row>> {
    req.signal.throwIfAborted();
    return withClient(this.pool, 'writing', async (client) => {
      await query(client, 'BEGIN');
      try {
        const result = await this.writeOn(client, records);
        await query(client, 'COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  /** Writes inside the store's open transaction (its client is `tx.handle`): the batch commits with its checkpoint. */
  async writeIn(
    tx: StoreTransaction,
    records: Row[],
    req: { signal: AbortSignal },
  ): Promise<WriteResult<Row>> {
    req.signal.throwIfAborted();
    if (tx.database !== this.database) {
      throw new ConnectorError(
        'TARGET_TX_FOREIGN',
        `cannot write to ${this.database} in a transaction of ${tx.database}`,
      );
    }
    return this.writeOn(tx.handle as pg.ClientBase, records);
  }

  private async writeOn(client: pg.ClientBase, records: Row[]): Promise<WriteResult<Row>> {
    const rejected: Rejected<Row>[] = [];
    const columns = this.columnsOf(records);
    const writable = records.filter((record) => {
      const reason = this.problemOf(record, columns);
      if (reason) rejected.push({ record, reason });
      return reason === null;
    });
    if (writable.length === 0) return { written: 0, rejected };
    const names = columns.map((c) => c.name);
    if (this.direct) {
      const written = await this.copyDirect(client, writable, columns, columnList(names));
      if (written !== null) return { written, rejected };
    }
    // The stage has the target's column types, so COPY parses each value as the target would. Its
    // rows go at commit; inside a longer transaction (the store's) a later batch empties it first.
    await query(
      client,
      `CREATE TEMP TABLE IF NOT EXISTS ${this.stage} ON COMMIT DELETE ROWS AS SELECT * FROM ${this.table} WITH NO DATA; DELETE FROM ${this.stage}`,
    );
    const chunk = new ChunkWriter(
      client,
      this.encoder,
      columns,
      this.stage,
      this.statement(names),
      rejected,
      this.textInput,
    );
    const written = await chunk.write(writable);
    return { written, rejected };
  }

  /**
   * COPY straight into the target under a savepoint: the count written, or null when some row
   * failed (the savepoint undid the COPY). A key that exists turns the direct path off for good.
   */
  private async copyDirect(
    client: pg.ClientBase,
    records: Row[],
    columns: readonly Column[],
    names: string,
  ): Promise<number | null> {
    await query(client, 'SAVEPOINT sluice_direct');
    try {
      const copy = client.query(copyFrom(`COPY ${this.table} (${names}) FROM STDIN`));
      await pipeline(
        Readable.from(this.encoder.chunks(records, columns, { textInput: this.textInput })),
        copy,
      );
      await query(client, 'RELEASE SAVEPOINT sluice_direct');
      return copy.rowCount;
    } catch (err) {
      if (classifyPgError(err) !== 'record') throw pgError('writing a batch', err);
      if (sqlstateOf(err) === UNIQUE_VIOLATION) this.direct = false;
      await query(client, 'ROLLBACK TO SAVEPOINT sluice_direct; RELEASE SAVEPOINT sluice_direct');
      return null;
    }
  }

  /**
   * Copies one page straight from a PostgreSQL source: `COPY (SELECT … ) TO STDOUT` on the source
   * database piped, bytes unparsed, into this target's COPY-in path (direct into the table while no
   * key exists, else the stage and its `INSERT … ON CONFLICT`), in one target transaction. Answers
   * null — and the engine reads and writes the page the ordinary way — for another system, a column
   * whose type differs between the two tables, a source column the target lacks, a row the table
   * refuses (the copy is rolled back), and where the store lives in this database (see `storeLivesHere`).
   */
  async copyFrom(
    location: NativeLocation,
    range: Json,
    req: { signal: AbortSignal },
  ): Promise<WriteResult<Row> | null> {
    req.signal.throwIfAborted();
    const from = sourceOf(location);
    if (!from) return null;
    if (await this.storeLivesHere()) return null;
    const { fields, after, upTo } = range as unknown as PostgresRange;
    if (!upTo) return { written: 0, rejected: [] };
    const plan = await this.plan(from);
    if (!plan) return null;
    const where = [
      ...(from.where ? [`(${from.where})`] : []),
      ...(after ? [keysetAfter(fields, after.length, after.map(literal))] : []),
      keysetAtMost(fields, upTo.map(literal)),
    ];
    const names = columnList(plan.columns);
    const select = `COPY (SELECT ${names} FROM ${qualified(from.schema, from.table)} WHERE ${where.join(' AND ')} ORDER BY ${columnList(fields)}) TO STDOUT`;
    const pool = this.sourcePool(from.url);
    const pipe = (client: pg.ClientBase, into: string) =>
      pipeFromSource(client, pool, select, into, req.signal);
    return withClient(this.pool, 'copying', async (client) => {
      await query(client, 'BEGIN');
      try {
        const written = await this.copyOn(client, plan.columns, pipe);
        if (written === null) {
          await query(client, 'ROLLBACK');
          return null;
        }
        await query(client, 'COMMIT');
        return { written, rejected: [] };
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  /** The copy inside the open transaction: rows written, or null when some row was refused. */
  private async copyOn(
    client: pg.ClientBase,
    columns: readonly string[],
    pipe: (client: pg.ClientBase, into: string) => Promise<number>,
  ): Promise<number | null> {
    const names = columnList(columns);
    if (this.direct) {
      await query(client, 'SAVEPOINT sluice_direct');
      try {
        const written = await pipe(client, `COPY ${this.table} (${names}) FROM STDIN`);
        await query(client, 'RELEASE SAVEPOINT sluice_direct');
        return written;
      } catch (err) {
        if (classifyPgError(err) !== 'record') throw pgError('copying a batch', err);
        await query(client, 'ROLLBACK TO SAVEPOINT sluice_direct; RELEASE SAVEPOINT sluice_direct');
        // Only a key that exists sends the copy to the stage; any other refused row declines it.
        if (sqlstateOf(err) !== UNIQUE_VIOLATION) return null;
        this.direct = false;
      }
    }
    await query(
      client,
      `CREATE TEMP TABLE IF NOT EXISTS ${this.stage} ON COMMIT DELETE ROWS AS SELECT * FROM ${this.table} WITH NO DATA; DELETE FROM ${this.stage}`,
    );
    try {
      await pipe(client, `COPY ${this.stage} (${names}) FROM STDIN`);
      const result = await client.query(this.statement(columns));
      return result.rowCount ?? 0;
    } catch (err) {
      if (classifyPgError(err) !== 'record') throw pgError('copying a batch', err);
      return null;
    }
  }

  /**
   * The columns a copy from `from` takes: the target's columns the source selects, in the target's
   * order (the same list in both statements). Null (decline) where a column's full type differs
   * between the two tables, modifiers included (`numeric(38,10)` into `numeric(10,2)` would round
   * without a word; the ordinary path refuses what a column cannot hold exactly): a cast in the source's SELECT could give another value than the ordinary path,
   * which parses the source's text and writes it as the target column's input, so a batch's values
   * would depend on whether it was copied or fell back. Null too where the source selects a column
   * the target lacks: the ordinary path then fails with the configuration error that names it.
   */
  private plan(from: SourceRef): Promise<CopyPlan | null> {
    const id = JSON.stringify([from.url, from.schema, from.table, from.columns]);
    let plan = this.plans.get(id);
    if (!plan) {
      plan = withClient(this.sourcePool(from.url), 'describing the copy source', (c) =>
        describeTable(c, from.schema, from.table),
      ).then((sourceColumns) => {
        const source = new Map(sourceColumns.map((c) => [c.name, c]));
        const selected = from.columns ?? sourceColumns.map((c) => c.name);
        if (selected.some((name) => !this.columns.has(name))) return null;
        const columns: string[] = [];
        for (const column of this.columns.values()) {
          const theirs = source.get(column.name);
          if (!theirs || !selected.includes(column.name)) continue;
          if (theirs.fullType !== column.fullType) return null;
          columns.push(column.name);
        }
        return { columns };
      });
      // A failure (source unreachable) is not kept: the next batch asks again.
      plan.catch(() => this.plans.delete(id));
      this.plans.set(id, plan);
    }
    return plan;
  }

  private sourcePool(url: string): pg.Pool {
    let pool = this.sources.get(url);
    if (!pool) {
      pool = createPool(url, 2);
      this.sources.set(url, pool);
    }
    return pool;
  }

  /**
   * Where this target's database holds a Sluice store that keeps this sync's checkpoint, a batch and
   * its checkpoint must commit in one transaction (the engine's writeIn path). A copy commits on
   * its own, so it is declined there. The port gives a target no sight of the store, so the target
   * looks for one: any schema with the store's tables and a checkpoint row for this sync (the
   * engine saves one before the first batch). Unreadable counts as present: declining is only slower.
   */
  private storeLivesHere(): Promise<boolean> {
    this.storeHere ??= withClient(this.pool, 'looking for the store', async (client) => {
      const { rows } = await client.query<{ schema: string }>(selectStoreSchemas);
      for (const { schema } of rows) {
        try {
          const found = await client.query(
            `SELECT 1 FROM ${qualified(schema, 'checkpoints')} WHERE sync = $1 LIMIT 1`,
            [this.sync],
          );
          if (found.rowCount) return true;
        } catch {
          return true;
        }
      }
      return false;
    });
    return this.storeHere;
  }

  /**
   * Why `record` cannot be written as it is — a key field missing, a value its column cannot hold
   * exactly — or null. The reason names the field.
   */
  private problemOf(record: Row, columns: readonly Column[]): string | null {
    const missing = this.key.find((k) => record[k] === null || record[k] === undefined);
    if (missing) return `key field "${missing}" is missing`;
    for (const column of columns) {
      const problem = this.checks.get(column.name)!(record[column.name]);
      if (problem) return problem;
    }
    return null;
  }

  /** The target columns the batch has values for, in table order; a field the table lacks is a config error. */
  private columnsOf(records: readonly Row[]): Column[] {
    const seen = new Set<string>();
    for (const record of records) for (const field of Object.keys(record)) seen.add(field);
    for (const field of seen) {
      if (!this.columns.has(field)) {
        throw new ConnectorError(
          'TARGET_COLUMN_MISSING',
          `target table ${this.table} has no column "${field}"; map or drop the field`,
        );
      }
    }
    return [...this.columns.values()].filter((c) => seen.has(c.name));
  }

  private statement(names: readonly string[]): string {
    const cols = columnList(names);
    const updates = names.filter((n) => !this.key.includes(n));
    const set = (from: string) =>
      updates.map((n) => `${quoteIdent(n)} = ${from}.${quoteIdent(n)}`).join(', ');
    if (this.options.mode === 'update') {
      if (updates.length === 0) return `SELECT 0 WHERE false`;
      const match = this.key.map((k) => `t.${quoteIdent(k)} = s.${quoteIdent(k)}`).join(' AND ');
      return `UPDATE ${this.table} AS t SET ${set('s')} FROM ${this.stage} AS s WHERE ${match}`;
    }
    const conflict =
      this.options.mode === 'insert' || updates.length === 0
        ? 'DO NOTHING'
        : `DO UPDATE SET ${set('excluded')}`;
    return `INSERT INTO ${this.table} (${cols}) SELECT ${cols} FROM ${this.stage} ON CONFLICT (${columnList(this.key)}) ${conflict}`;
  }

  async close(): Promise<void> {
    const sources = [...this.sources.values()];
    this.sources.clear();
    await Promise.all(sources.map((p) => (p.ended ? undefined : p.end())));
    if (!this.pool.ended) await this.pool.end();
  }
}

type SourceRef = {
  url: string;
  schema: string;
  table: string;
  columns: string[] | null;
  where: string | null;
};
type CopyPlan = { columns: string[] };

/** A PostgreSQL source's location, or null for another system's (or one this target cannot read). */
function sourceOf(location: NativeLocation): SourceRef | null {
  const { system, url, schema, table, columns, where } = location;
  if (system !== 'postgres' || typeof url !== 'string' || typeof table !== 'string') return null;
  if (typeof schema !== 'string' || (where !== null && where !== undefined && typeof where !== 'string'))
    return null;
  if (columns !== null && columns !== undefined && !Array.isArray(columns)) return null;
  return {
    url,
    schema,
    table,
    columns: Array.isArray(columns) ? columns.map(String) : null,
    where: typeof where === 'string' ? where : null,
  };
}

/**
 * A function that pipes the source's `COPY … TO STDOUT` into `into` (a `COPY … FROM STDIN`) on a
 * target client, bytes as they come, with backpressure; it answers the rows the target took. A
 * source connection left mid-COPY by a failure is discarded, not returned to its pool.
 */
async function pipeFromSource(
  client: pg.ClientBase,
  pool: pg.Pool,
  select: string,
  into: string,
  signal: AbortSignal,
): Promise<number> {
  let source: pg.PoolClient;
  try {
    source = await pool.connect();
  } catch (err) {
    throw pgError('copying from the source: cannot connect', err);
  }
  let failed: Error | undefined;
  try {
    const out = source.query(copyTo(select));
    const sink = client.query(copyFrom(into));
    await pipeline(out, sink, { signal });
    return sink.rowCount;
  } catch (err) {
    failed = err as Error;
    if (signal.aborted) throw signal.reason;
    throw err;
  } finally {
    source.release(failed);
  }
}
