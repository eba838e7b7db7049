import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { ConnectorError } from '../../core/errors.ts';
import type { StoreTransaction, SyncShape, Target } from '../../core/ports.ts';
import type { Rejected, Row, WriteResult } from '../../core/types.ts';
import { type Column, createPool, databaseIdentity, describeTable, withClient } from './client.ts';
import { copyText } from './copy.ts';
import { classifyPgError, describePgError, pgError } from './errors.ts';
import { columnList, qualified, quoteIdent, selectUniqueKeys } from './sql.ts';

export type PostgresTargetOptions = {
  table: string;
  schema?: string | undefined;
  /** `upsert` inserts or updates by key; `insert` leaves existing keys untouched; `update` touches only existing keys. */
  mode: 'upsert' | 'insert' | 'update';
};

const STAGE = quoteIdent('sluice_stage');

/**
 * Writes a batch with COPY into a temporary table and one `INSERT … SELECT … ON CONFLICT` (or
 * `UPDATE … FROM`) into the target: the bulk path, a few statements per batch whatever its size.
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

  private constructor(
    pool: pg.Pool,
    database: string,
    options: PostgresTargetOptions,
    key: readonly string[],
    columns: Column[],
  ) {
    this.pool = pool;
    this.database = database;
    this.options = options;
    this.key = key;
    this.table = qualified(options.schema ?? 'public', options.table);
    this.columns = new Map(columns.map((c) => [c.name, c]));
  }

  static async open(url: string, options: PostgresTargetOptions, shape: SyncShape): Promise<PostgresTarget> {
    const pool = createPool(url, 2);
    const schema = options.schema ?? 'public';
    const where = `target table ${schema}.${options.table}`;
    try {
      return await withClient(pool, 'opening the target', async (client) => {
        const columns = await describeTable(client, schema, options.table);
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
        return new PostgresTarget(pool, await databaseIdentity(client), options, shape.key, columns);
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
    const writable = records.filter((record) => {
      const missing = this.key.find((k) => record[k] === null || record[k] === undefined);
      if (missing) rejected.push({ record, reason: `key field "${missing}" is missing` });
      return !missing;
    });
    if (writable.length === 0) return { written: 0, rejected };
    const columns = this.columnsOf(writable);
    const names = columns.map((c) => c.name);
    // The stage has the target's column types, so COPY parses each value as the target would.
    await query(
      client,
      `CREATE TEMP TABLE ${STAGE} ON COMMIT DROP AS SELECT ${columnList(names)} FROM ${this.table} WITH NO DATA`,
    );
    const chunk = new ChunkWriter(client, columns, this.statement(names), rejected);
    try {
      const written = await chunk.write(writable, true);
      return { written, rejected };
    } finally {
      // Inside a longer transaction (the store's), the next batch creates the stage again.
      await client.query(`DROP TABLE IF EXISTS ${STAGE}`).catch(() => undefined);
    }
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
      return `UPDATE ${this.table} AS t SET ${set('s')} FROM ${STAGE} AS s WHERE ${match}`;
    }
    const conflict =
      this.options.mode === 'insert' || updates.length === 0
        ? 'DO NOTHING'
        : `DO UPDATE SET ${set('excluded')}`;
    return `INSERT INTO ${this.table} (${cols}) SELECT ${cols} FROM ${STAGE} ON CONFLICT (${columnList(this.key)}) ${conflict}`;
  }

  async close(): Promise<void> {
    if (!this.pool.ended) await this.pool.end();
  }
}

/** COPY + statement per chunk under a savepoint, bisecting a chunk that fails on some row's values. */
class ChunkWriter {
  private readonly client: pg.ClientBase;
  private readonly columns: readonly Column[];
  private readonly statement: string;
  private readonly rejected: Rejected<Row>[];
  private readonly copy: string;

  constructor(
    client: pg.ClientBase,
    columns: readonly Column[],
    statement: string,
    rejected: Rejected<Row>[],
  ) {
    this.client = client;
    this.columns = columns;
    this.statement = statement;
    this.rejected = rejected;
    this.copy = `COPY ${STAGE} (${columnList(columns.map((c) => c.name))}) FROM STDIN`;
  }

  async write(chunk: Row[], first: boolean): Promise<number> {
    await query(this.client, 'SAVEPOINT sluice_chunk');
    try {
      if (!first) await this.client.query(`TRUNCATE ${STAGE}`);
      await pipeline(Readable.from([copyText(chunk, this.columns)]), this.client.query(copyFrom(this.copy)));
      const result = await this.client.query(this.statement);
      await this.client.query('RELEASE SAVEPOINT sluice_chunk');
      return result.rowCount ?? 0;
    } catch (err) {
      if (classifyPgError(err) !== 'record') throw pgError('writing a batch', err);
      await query(this.client, 'ROLLBACK TO SAVEPOINT sluice_chunk');
      await query(this.client, 'RELEASE SAVEPOINT sluice_chunk');
      if (chunk.length === 1) {
        this.rejected.push({ record: chunk[0]!, reason: describePgError(err) });
        return 0;
      }
      const half = Math.ceil(chunk.length / 2);
      return (await this.write(chunk.slice(0, half), false)) + (await this.write(chunk.slice(half), false));
    }
  }
}

async function query(client: pg.ClientBase, sql: string): Promise<void> {
  try {
    await client.query(sql);
  } catch (err) {
    throw pgError(`running ${sql.split(' ')[0]}`, err);
  }
}
