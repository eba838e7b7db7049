import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type SQLInputValue } from 'node:sqlite';
import { SQLITE_BUSY_WAIT_MS, whileBusy } from '../../core/busy.ts';
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
} from '../../core/ports.ts';
import type { Json, Phase } from '../../core/types.ts';
import {
  checkpointFromRow,
  checkpointParams,
  counterParams,
  deadLetterFromRow,
  prefixUpperBound,
  runFromRow,
  toJsonText,
} from '../rows.ts';
import { migrate } from './migrate.ts';
import { SqliteQueue } from './queue.ts';
import * as sql from './sql.ts';
import { type Connection, cachedStatements } from './statements.ts';

export type SqliteStoreOptions = {
  /** Milliseconds since the epoch; tests move it to expire leases without waiting. */
  now?: () => number;
};

type Params = Record<string, SQLInputValue>;

/** The embedded store: one SQLite file in WAL mode, migrated on open. */
export class SqliteStore implements Store {
  readonly data: DataStore;
  readonly queue: SqliteQueue;
  readonly path: string;
  private readonly db: DatabaseSync;
  private readonly conn: Connection;
  private readonly now: () => number;

  private constructor(path: string, db: DatabaseSync, options: SqliteStoreOptions) {
    this.path = path;
    this.db = db;
    this.conn = cachedStatements(db);
    this.now = options.now ?? Date.now;
    this.data = new SqliteDataStore(
      this.conn,
      () => this.iso(),
      (fn) => this.tx(fn),
    );
    this.queue = new SqliteQueue(
      this.conn,
      () => this.now(),
      (fn) => this.tx(fn),
      {
        // A claim records its request's run in its own transaction, in the phase the checkpoint is in;
        // a request's end records its run's.
        start: (start) =>
          this.recordStart({
            ...start,
            phase:
              (this.conn.prepare(sql.selectCheckpointPhase).get(start.sync)?.phase as Phase) ?? 'backfill',
          }),
        end: (runId, end) => this.recordEnd(runId, end),
      },
    );
  }

  static open(path: string, options: SqliteStoreOptions = {}): SqliteStore {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const db = new DatabaseSync(path, { timeout: 10_000 });
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON');
    migrate(db, path);
    // Past start-up (where migrations from several processes may queue), lock waits are awaited.
    db.exec(`PRAGMA busy_timeout = ${SQLITE_BUSY_WAIT_MS}`);
    return new SqliteStore(path, db, options);
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }

  /**
   * Runs `fn` holding the file's write lock. node:sqlite waits for a lock synchronously, on the event
   * loop, so its own wait is kept short (`BUSY_WAIT_MS`) and a longer one is awaited here between
   * tries: webhooks, /healthz and other lanes go on while another process holds the file.
   */
  private tx<T>(fn: () => T): Promise<T> {
    return whileBusy(
      () => this.conn.exec('BEGIN IMMEDIATE'),
      () => {
        try {
          const result = fn();
          this.conn.exec('COMMIT');
          return result;
        } catch (err) {
          this.conn.exec('ROLLBACK');
          throw err;
        }
      },
      { giveUpMs: BUSY_GIVE_UP_MS, giveUp: (err) => storeBusy(this.path, err) },
    );
  }

  async getCheckpoint(sync: string): Promise<Checkpoint | null> {
    const row = this.conn.prepare(sql.selectCheckpoint).get(sync);
    return row ? checkpointFromRow(row) : null;
  }

  async listCheckpoints(): Promise<Checkpoint[]> {
    return this.conn.prepare(sql.selectCheckpoints).all().map(checkpointFromRow);
  }

  async saveCheckpoint(checkpoint: Checkpoint): Promise<void> {
    await this.tx(() => this.putCheckpoint(checkpoint));
  }

  /** Saves `checkpoint` if it follows the saved version (or is the first); refuses otherwise. */
  private putCheckpoint(checkpoint: Checkpoint): void {
    const params = bindable(checkpointParams(checkpoint));
    const statement = checkpoint.version === 1 ? sql.insertCheckpoint : sql.updateCheckpoint;
    if (Number(this.conn.prepare(statement).run(params).changes) === 1) return;
    throw new CheckpointConflictError(checkpoint.sync, checkpoint.version);
  }

  async commitBatch(commit: BatchCommit): Promise<void> {
    const now = this.iso();
    await this.tx(() => {
      const leaseUntil = this.now() + commit.leaseMs;
      const held = this.conn.prepare(sql.addRunCounters).run({
        id: commit.runId,
        holder: commit.holder,
        leaseUntil,
        now,
        ...counterParams(commit.counters),
      });
      if (Number(held.changes) !== 1)
        throw new RunFencedError(commit.sync, commit.runId, `batch ${commit.batch}`);
      if (commit.checkpoint) this.putCheckpoint(commit.checkpoint);
      else if (commit.totals)
        this.conn.prepare(sql.addToTotals).run({ sync: commit.sync, ...counterParams(commit.totals) });
      const upsert = this.conn.prepare(sql.upsertFingerprint);
      for (const f of commit.fingerprints ?? []) upsert.run(commit.sync, f.key, f.hash, f.cursorMs);
      for (const group of commit.resolved ?? []) {
        const close = { sync: commit.sync, now, runId: commit.runId, resolution: group.resolution };
        const byKey = this.conn.prepare(sql.closeDeadLetterByKey);
        for (const key of group.keys ?? []) byKey.run({ ...close, key });
        const byId = this.conn.prepare(sql.closeDeadLetterById);
        for (const id of group.ids ?? []) byId.run({ ...close, id });
      }
      const insert = this.conn.prepare(sql.insertDeadLetter);
      const from = toJsonText(commit.cursorFrom);
      const to = toJsonText(commit.checkpoint?.cursor ?? commit.cursorFrom);
      for (const dl of commit.deadLetters) {
        insert.run({
          sync: commit.sync,
          runId: commit.runId,
          batch: commit.batch,
          from,
          to,
          key: toJsonText(dl.key),
          record: toJsonText(dl.record),
          reason: dl.reason,
          now,
        });
      }
    });
  }

  async startRun(start: RunStart): Promise<RunRecord> {
    return this.tx(() => this.recordStart(start));
  }

  /** A run's start, inside a transaction: refused while a live run holds its sync or lane. */
  private recordStart(start: RunStart): RunRecord {
    const now = this.now();
    const lane = start.lane ?? null;
    for (const running of this.conn.prepare(sql.selectRunningRuns).all({ sync: start.sync, lane })) {
      const holder = String(running.holder);
      if (!isHolderGone(holder, Number(running.lease_until), now)) {
        if (running.sync === start.sync) throw new SyncBusyError(start.sync, Number(running.id), holder);
        throw new LaneBusyError(lane!, String(running.sync), Number(running.id), holder);
      }
      const why = `its holder ${holder} stopped without finishing it; the next run resumes from the last checkpoint`;
      this.conn.prepare(sql.abandonRun).run(this.iso(), why, Number(running.id));
    }
    const row = this.conn
      .prepare(sql.insertRun)
      .get(
        start.sync,
        start.trigger,
        start.phase,
        this.iso(),
        start.holder,
        now + start.leaseMs,
        lane,
        this.iso(),
      );
    return runFromRow(row!);
  }

  async renewRun(runId: number, holder: string, leaseMs: number): Promise<boolean> {
    return this.tx(
      () =>
        Number(
          this.conn.prepare(sql.renewRun).run(this.now() + leaseMs, this.iso(), runId, holder).changes,
        ) === 1,
    );
  }

  async finishRun(runId: number, end: RunEnd): Promise<RunRecord> {
    return this.tx(() => this.recordEnd(runId, end));
  }

  /** A run's end, inside a transaction: the run as it stands after (unchanged where fenced). */
  private recordEnd(runId: number, end: RunEnd): RunRecord {
    const more = end.more === null ? null : end.more ? 1 : 0;
    const row =
      this.conn
        .prepare(sql.finishRun)
        .get(
          end.status,
          this.iso(),
          more,
          end.errorCode ?? null,
          end.errorMessage ?? null,
          runId,
          end.holder,
        ) ??
      // Fenced: the run as it stands (ended by another, or held by another), for the caller to see.
      this.conn.prepare(sql.selectRun).get(runId);
    return runFromRow(row!);
  }

  async getRun(runId: number): Promise<RunRecord | null> {
    const row = this.conn.prepare(sql.selectRun).get(runId);
    return row ? runFromRow(row) : null;
  }

  async listRuns(query: { sync?: string; limit?: number }): Promise<RunRecord[]> {
    const limit = query.limit ?? 50;
    const rows = query.sync
      ? this.conn.prepare(sql.selectRunsOfSync).all(query.sync, limit)
      : this.conn.prepare(sql.selectRuns).all(limit);
    return rows.map(runFromRow);
  }

  async listDeadLetters(query: {
    sync?: string;
    limit?: number;
    includeClosed?: boolean;
  }): Promise<DeadLetter[]> {
    const rows = this.conn
      .prepare(sql.selectDeadLetters)
      .all({ sync: query.sync ?? null, all: query.includeClosed ? 1 : 0, limit: query.limit ?? 100 });
    return rows.map(deadLetterFromRow);
  }

  async countOpenDeadLetters(sync: string): Promise<number> {
    return Number(this.conn.prepare(sql.countOpenDeadLetters).get(sync)?.n ?? 0);
  }

  async fingerprints(sync: string, keys: readonly string[]): Promise<Map<string, string>> {
    if (keys.length === 0) return new Map();
    const rows = this.conn.prepare(sql.selectFingerprints).all(sync, JSON.stringify(keys));
    return new Map(rows.map((r) => [String(r.record_key), String(r.hash)]));
  }

  async pruneFingerprints(sync: string, beforeMs: number): Promise<void> {
    await this.tx(() => this.conn.prepare(sql.pruneFingerprints).run(sync, beforeMs));
  }

  async claimNonce(nonce: string, expiresAt: number): Promise<boolean> {
    return this.tx(() => {
      this.conn.prepare(sql.deleteExpiredReceipts).run(this.now());
      return Number(this.conn.prepare(sql.insertReceipt).run(nonce, expiresAt).changes) === 1;
    });
  }

  async prune(before: number, keepRuns: number): Promise<number> {
    const at = new Date(before).toISOString();
    return this.tx(
      () =>
        Number(this.conn.prepare(sql.pruneRuns).run({ before: at, keep: keepRuns }).changes) +
        Number(this.conn.prepare(sql.pruneDeadLetters).run(at).changes) +
        Number(this.conn.prepare(sql.pruneRequests).run(before).changes) +
        Number(this.conn.prepare(sql.deleteExpiredReceipts).run(this.now()).changes),
    );
  }

  async resetSync(sync: string): Promise<void> {
    await this.tx(() => {
      this.conn.prepare(sql.deleteCheckpoint).run(sync);
      // A partitioned backfill's partitions go with it.
      for (const row of this.conn.prepare(sql.selectCheckpointNames).all()) {
        if (isPartitionOf(String(row.sync), sync))
          this.conn.prepare(sql.deleteCheckpoint).run(String(row.sync));
      }
      this.conn.prepare(sql.deleteDeadLettersOfSync).run(sync);
      this.conn.prepare(sql.deleteFingerprintsOfSync).run(sync);
    });
  }

  async close(): Promise<void> {
    if (this.db.isOpen) this.db.close();
  }
}

class SqliteDataStore implements DataStore {
  private readonly conn: Connection;
  private readonly iso: () => string;
  private readonly tx: <T>(fn: () => T) => Promise<T>;
  constructor(conn: Connection, iso: () => string, tx: <T>(fn: () => T) => Promise<T>) {
    this.conn = conn;
    this.iso = iso;
    this.tx = tx;
  }

  async get(key: string): Promise<Json | undefined> {
    const row = this.conn.prepare(sql.selectData).get(key);
    return row ? (parseJson(String(row.value)) as Json) : undefined;
  }

  async set(key: string, value: Json): Promise<void> {
    await this.tx(() => this.conn.prepare(sql.upsertData).run(key, stringifyJson(value), this.iso()));
  }

  async del(key: string): Promise<boolean> {
    return this.tx(() => Number(this.conn.prepare(sql.deleteData).run(key).changes) > 0);
  }

  async list(prefix?: string): Promise<{ key: string; value: Json; updatedAt: string }[]> {
    const rows = prefix
      ? this.conn.prepare(sql.selectDataByPrefix).all(prefix, prefixUpperBound(prefix))
      : this.conn.prepare(sql.selectAllData).all();
    return rows.map((r) => ({
      key: String(r.key),
      value: parseJson(String(r.value)) as Json,
      updatedAt: String(r.updated_at),
    }));
  }
}

// A store locked this long by another process is reported (a transient error: a later try may pass).
const BUSY_GIVE_UP_MS = 30_000;

function storeBusy(path: string, err: unknown): SluiceError {
  return new SluiceError(
    'STORE_BUSY',
    `the store ${path} stayed locked by another process for ${BUSY_GIVE_UP_MS / 1000} s`,
    { cause: err, transient: true },
  );
}

/** node:sqlite binds no booleans: they go as 0 and 1, as SQLite keeps them. */
function bindable(params: Record<string, string | number | boolean | null>): Params {
  const out: Params = {};
  for (const [k, v] of Object.entries(params)) out[k] = typeof v === 'boolean' ? (v ? 1 : 0) : v;
  return out;
}
