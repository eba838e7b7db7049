import pg from 'pg';
import {
  CheckpointConflictError,
  LaneBusyError,
  RunFencedError,
  SluiceError,
  SyncBusyError,
} from '../../core/errors.ts';
import { isHolderGone } from '../../core/holder.ts';
import { parseJson, stringifyJson } from '../../core/json.ts';
import { isPartitionOf } from '../../core/partitions.ts';
import type {
  BatchCommit,
  Checkpoint,
  DataStore,
  DeadLetter,
  RunEnd,
  RunRecord,
  RunStart,
  Store,
  StoreTransaction,
} from '../../core/ports.ts';
import type { Json } from '../../core/types.ts';
import {
  checkpointFromRow,
  checkpointParams,
  deadLetterFromRow,
  prefixUpperBound,
  runFromRow,
  toJsonText,
} from '../rows.ts';
import { lockAlso, migrate, withAdvisoryLock } from './migrate.ts';
import { type Statements, selectDatabaseIdentity, statements } from './sql.ts';

export type PostgresStoreOptions = {
  /** Schema holding the store's tables. @defaultValue 'sluice' */
  schema?: string;
  /** Milliseconds since the epoch; tests move it to expire leases without waiting. */
  now?: () => number;
  /** Connections in the store's pool. @defaultValue 4 */
  maxConnections?: number;
};

const TIMESTAMPTZ = 1184;
const JSON_OID = 114;

/**
 * The shared row mapping (`rows.ts`) expects what SQLite returns: JSON as text and timestamps as
 * ISO-8601 strings. These parsers make this pool answer the same way, without touching pg's globals.
 */
const storeTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) => {
    if (oid === JSON_OID) return (text: string) => text;
    if (oid === TIMESTAMPTZ) return (text: string) => new Date(text).toISOString();
    return pg.types.getTypeParser(oid, format as 'text');
  }) as pg.CustomTypesConfig['getTypeParser'],
};

/** A store in a PostgreSQL schema, for many workers on many machines; migrated on open. */
export class PostgresStore implements Store {
  readonly data: DataStore;
  readonly database: string;
  readonly schema: string;
  private readonly pool: pg.Pool;
  private readonly sql: Statements;
  private readonly now: () => number;

  private constructor(pool: pg.Pool, database: string, schema: string, options: PostgresStoreOptions) {
    this.pool = pool;
    this.database = database;
    this.schema = schema;
    this.sql = statements(schema);
    this.now = options.now ?? Date.now;
    this.data = new PostgresDataStore(pool, this.sql, () => this.iso());
  }

  static async open(url: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const schema = options.schema ?? 'sluice';
    const pool = new pg.Pool({ connectionString: url, max: options.maxConnections ?? 4, types: storeTypes });
    // An idle connection the server drops must not crash the process; the pool replaces it.
    pool.on('error', () => undefined);
    // A checked-out client whose socket closes emits 'error' too; its query rejects with it already.
    pool.on('connect', (client) => client.on('error', () => undefined));
    try {
      const client = await pool.connect();
      try {
        await migrate(client, schema, statements(schema), redact(url));
        const { rows } = await client.query<{ id: string }>(selectDatabaseIdentity);
        return new PostgresStore(pool, rows[0]!.id, schema, options);
      } finally {
        client.release();
      }
    } catch (err) {
      await pool.end();
      if (err instanceof SluiceError) throw err;
      throw new SluiceError(
        'STORE_UNAVAILABLE',
        `cannot open the store at ${redact(url)}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }

  private async withClient<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      return await fn(client);
    } catch (err) {
      // A connection that failed mid-transaction may be unusable; let the pool drop it.
      broken = err as Error;
      throw err;
    } finally {
      client.release(broken && !('code' in broken) ? broken : undefined);
    }
  }

  async transaction<T>(fn: (tx: StoreTransaction) => Promise<T>): Promise<T> {
    return this.withClient(async (client) => {
      await client.query('BEGIN');
      try {
        const result = await fn({ database: this.database, handle: client });
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  async getCheckpoint(sync: string): Promise<Checkpoint | null> {
    const { rows } = await this.pool.query(this.sql.selectCheckpoint, [sync]);
    return rows[0] ? checkpointFromRow(rows[0]) : null;
  }

  async listCheckpoints(): Promise<Checkpoint[]> {
    const { rows } = await this.pool.query(this.sql.selectCheckpoints);
    return rows.map(checkpointFromRow);
  }

  async saveCheckpoint(checkpoint: Checkpoint): Promise<void> {
    await this.putCheckpoint(this.pool, checkpoint);
  }

  /** Saves `checkpoint` if it follows the saved version (or is the first); refuses otherwise. */
  private async putCheckpoint(client: pg.Pool | pg.ClientBase, checkpoint: Checkpoint): Promise<void> {
    const statement = checkpoint.version === 1 ? this.sql.insertCheckpoint : this.sql.updateCheckpoint;
    const result = await client.query(statement, checkpointValues(checkpoint));
    if (result.rowCount !== 1) throw new CheckpointConflictError(checkpoint.sync, checkpoint.version);
  }

  async commitBatch(commit: BatchCommit, tx?: StoreTransaction): Promise<void> {
    if (tx) {
      if (tx.database !== this.database) {
        throw new SluiceError(
          'STORE_TX_FOREIGN',
          `a transaction of ${tx.database} cannot commit a batch of ${this.database}`,
        );
      }
      await this.commitBatchOn(tx.handle as pg.ClientBase, commit);
      return;
    }
    await this.transaction((own) => this.commitBatchOn(own.handle as pg.ClientBase, commit));
  }

  private async commitBatchOn(client: pg.ClientBase, commit: BatchCommit): Promise<void> {
    const { counters } = commit;
    const held = await client.query(this.sql.addRunCounters, [
      commit.runId,
      counters.batches,
      counters.read,
      counters.written,
      counters.unchanged,
      counters.rejected,
      this.now() + commit.leaseMs,
      commit.holder,
      this.iso(),
    ]);
    if (held.rowCount !== 1) throw new RunFencedError(commit.sync, commit.runId, `batch ${commit.batch}`);
    if (commit.checkpoint) await this.putCheckpoint(client, commit.checkpoint);
    else if (commit.totals) {
      const t = commit.totals;
      await client.query(this.sql.addToTotals, [
        commit.sync,
        t.batches,
        t.read,
        t.written,
        t.unchanged,
        t.rejected,
      ]);
    }
    const prints = commit.fingerprints ?? [];
    if (prints.length > 0) {
      await client.query(this.sql.upsertFingerprints, [
        commit.sync,
        prints.map((f) => f.key),
        prints.map((f) => f.hash),
        prints.map((f) => f.cursorMs),
      ]);
    }
    const now = this.iso();
    for (const group of commit.resolved ?? []) {
      const close = [commit.sync, now, commit.runId, group.resolution];
      if (group.keys?.length) await client.query(this.sql.closeDeadLettersByKey, [...close, group.keys]);
      if (group.ids?.length) await client.query(this.sql.closeDeadLettersById, [...close, group.ids]);
    }
    const from = toJsonText(commit.cursorFrom);
    const to = toJsonText(commit.checkpoint?.cursor ?? commit.cursorFrom);
    // One statement per letter: two letters of one batch with the same key must update, as in SQLite.
    for (const dl of commit.deadLetters) {
      await client.query(this.sql.insertDeadLetter, [
        commit.sync,
        commit.runId,
        commit.batch,
        from,
        to,
        toJsonText(dl.key),
        toJsonText(dl.record),
        dl.reason,
        this.iso(),
      ]);
    }
  }

  async startRun(start: RunStart): Promise<RunRecord> {
    const now = this.now();
    const lane = start.lane ?? null;
    // The locks serialise two starts of one sync (then of one lane, always in that order, so two
    // starts never wait on each other crosswise): the second sees the first's run and refuses.
    const start_ = async (client: pg.PoolClient): Promise<RunRecord> => {
      if (lane !== null) await lockAlso(client, `sluice.lane:${this.schema}:${lane}`);
      const { rows: running } = await client.query(this.sql.selectRunningRuns, [start.sync, lane]);
      for (const live of running) {
        const holder = String(live.holder);
        if (!isHolderGone(holder, Number(live.lease_until), now)) {
          if (live.sync === start.sync) throw new SyncBusyError(start.sync, Number(live.id), holder);
          throw new LaneBusyError(lane!, String(live.sync), Number(live.id), holder);
        }
        const why = `its holder ${holder} stopped without finishing it; the next run resumes from the last checkpoint`;
        await client.query(this.sql.abandonRun, [this.iso(), why, live.id]);
      }
      const { rows } = await client.query(this.sql.insertRun, [
        start.sync,
        start.trigger,
        start.phase,
        this.iso(),
        start.holder,
        now + start.leaseMs,
        lane,
      ]);
      return runFromRow(rows[0]!);
    };
    return this.withClient((client) =>
      withAdvisoryLock(client, `sluice.run:${this.schema}:${start.sync}`, () => start_(client)),
    );
  }

  async renewRun(runId: number, holder: string, leaseMs: number): Promise<boolean> {
    const result = await this.pool.query(this.sql.renewRun, [
      this.now() + leaseMs,
      this.iso(),
      runId,
      holder,
    ]);
    return result.rowCount === 1;
  }

  async finishRun(runId: number, end: RunEnd): Promise<RunRecord> {
    await this.pool.query(this.sql.finishRun, [
      end.status,
      this.iso(),
      end.more,
      end.errorCode ?? null,
      end.errorMessage ?? null,
      runId,
      end.holder,
    ]);
    const { rows } = await this.pool.query(this.sql.selectRun, [runId]);
    if (!rows[0]) throw new SluiceError('RUN_UNKNOWN', `no run ${runId} in the store`);
    return runFromRow(rows[0]);
  }

  async getRun(runId: number): Promise<RunRecord | null> {
    const { rows } = await this.pool.query(this.sql.selectRun, [runId]);
    return rows[0] ? runFromRow(rows[0]) : null;
  }

  async listRuns(query: { sync?: string; limit?: number }): Promise<RunRecord[]> {
    const { rows } = await this.pool.query(this.sql.selectRuns, [query.sync ?? null, query.limit ?? 50]);
    return rows.map(runFromRow);
  }

  async listDeadLetters(query: {
    sync?: string;
    limit?: number;
    includeClosed?: boolean;
  }): Promise<DeadLetter[]> {
    const { rows } = await this.pool.query(this.sql.selectDeadLetters, [
      query.sync ?? null,
      query.includeClosed ?? false,
      query.limit ?? 100,
    ]);
    return rows.map(deadLetterFromRow);
  }

  async countOpenDeadLetters(sync: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(this.sql.countOpenDeadLetters, [sync]);
    return rows[0]?.n ?? 0;
  }

  async fingerprints(sync: string, keys: readonly string[]): Promise<Map<string, string>> {
    if (keys.length === 0) return new Map();
    const { rows } = await this.pool.query<{ record_key: string; hash: string }>(
      this.sql.selectFingerprints,
      [sync, keys],
    );
    return new Map(rows.map((r) => [r.record_key, r.hash]));
  }

  async pruneFingerprints(sync: string, beforeMs: number): Promise<void> {
    await this.pool.query(this.sql.pruneFingerprints, [sync, beforeMs]);
  }

  async prune(before: number, keepRuns: number): Promise<number> {
    const at = new Date(before).toISOString();
    const runs = await this.pool.query(this.sql.pruneRuns, [at, keepRuns]);
    const letters = await this.pool.query(this.sql.pruneDeadLetters, [at]);
    const receipts = await this.pool.query(this.sql.deleteExpiredReceipts, [this.now()]);
    return (runs.rowCount ?? 0) + (letters.rowCount ?? 0) + (receipts.rowCount ?? 0);
  }

  async claimNonce(nonce: string, expiresAt: number): Promise<boolean> {
    // Expired receipts go first, so a signature seen long ago is a stranger again, as in the SQLite store.
    await this.pool.query(this.sql.deleteExpiredReceipts, [this.now()]);
    const inserted = await this.pool.query(this.sql.insertReceipt, [nonce, expiresAt]);
    return inserted.rowCount === 1;
  }

  async resetSync(sync: string): Promise<void> {
    await this.transaction(async (tx) => {
      const client = tx.handle as pg.ClientBase;
      await client.query(this.sql.deleteCheckpoint, [sync]);
      // A partitioned backfill's partitions go with it.
      const { rows } = await client.query<{ sync: string }>(this.sql.selectCheckpointNames);
      for (const row of rows)
        if (isPartitionOf(row.sync, sync)) await client.query(this.sql.deleteCheckpoint, [row.sync]);
      await client.query(this.sql.deleteDeadLettersOfSync, [sync]);
      await client.query(this.sql.deleteFingerprintsOfSync, [sync]);
    });
  }

  async close(): Promise<void> {
    if (!this.pool.ended) await this.pool.end();
  }
}

class PostgresDataStore implements DataStore {
  private readonly pool: pg.Pool;
  private readonly sql: Statements;
  private readonly iso: () => string;
  constructor(pool: pg.Pool, sql: Statements, iso: () => string) {
    this.pool = pool;
    this.sql = sql;
    this.iso = iso;
  }

  async get(key: string): Promise<Json | undefined> {
    const { rows } = await this.pool.query(this.sql.selectData, [key]);
    return rows[0] ? (parseJson(String(rows[0].value)) as Json) : undefined;
  }

  async set(key: string, value: Json): Promise<void> {
    await this.pool.query(this.sql.upsertData, [key, stringifyJson(value), this.iso()]);
  }

  async del(key: string): Promise<boolean> {
    const result = await this.pool.query(this.sql.deleteData, [key]);
    return (result.rowCount ?? 0) > 0;
  }

  async list(prefix?: string): Promise<{ key: string; value: Json; updatedAt: string }[]> {
    const { rows } = prefix
      ? await this.pool.query(this.sql.selectDataByPrefix, [prefix, prefixUpperBound(prefix)])
      : await this.pool.query(this.sql.selectAllData);
    return rows.map((r) => ({
      key: String(r.key),
      value: parseJson(String(r.value)) as Json,
      updatedAt: String(r.updated_at),
    }));
  }
}

function checkpointValues(cp: Checkpoint): unknown[] {
  const p = checkpointParams(cp);
  return [
    p.sync,
    p.phase,
    p.cursor,
    p.sweep,
    p.hwm,
    p.batches,
    p.read,
    p.written,
    p.unchanged,
    p.rejected,
    p.backfillDone,
    p.backfillEstimate,
    p.backfillEstimateExact,
    p.backfillStartedAt,
    p.backfillEndedAt,
    p.updatedAt,
    p.version,
  ];
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://…';
  }
}
