import type { z } from 'zod';
import type { SluiceError } from './errors.ts';
import type {
  Counters,
  Cursor,
  Json,
  Page,
  Phase,
  Row,
  RunStatus,
  RunTrigger,
  WriteResult,
} from './types.ts';

export type ReadRequest = {
  phase: Phase;
  /** null on the very first read of a backfill. */
  cursor: Cursor | null;
  /** Highest number of records to return; a source may return fewer (never more). */
  limit: number;
  /** The high-water mark taken when the backfill started; backfill reads stop there. */
  highWaterMark: Cursor | null;
  /**
   * Incremental reads only: the last position this read may return, inclusive. A lookback sweep
   * re-reads the window behind the checkpoint and ends there; `done` then means it got there. A
   * source may return records up to the end of `until`'s cursor value (its ties), never fewer.
   * Sources that have `rewind` honour it; absent or null, the read is unbounded.
   */
  until?: Cursor | null;
  signal: AbortSignal;
};

/** How many records are left to read, and whether that is a count or a guess. */
export type Estimate = { records: number; exact: boolean };

export interface Source<R extends Row = Row> {
  read(req: ReadRequest): Promise<Page<R>>;
  /**
   * `read` does its work on the calling thread before it returns (node:sqlite): reading the next
   * page while a batch is written would overlap nothing, so the engine does not read ahead.
   * @defaultValue false
   */
  readonly readsSynchronously?: boolean;
  /** Where the backfill stops and incremental starts; taken once, when the backfill starts. */
  highWaterMark?(): Promise<Cursor>;
  /** Records left to read from `cursor` in this phase, for progress and ETA. */
  estimate?(req: {
    phase: Phase;
    cursor: Cursor | null;
    highWaterMark: Cursor | null;
  }): Promise<Estimate | null>;
  /**
   * Where a lookback sweep behind the incremental cursor starts: `lookbackMs` earlier, before every
   * record at that cursor value. A source that has it honours `ReadRequest.until`.
   */
  rewind?(cursor: Cursor, lookbackMs: number): Cursor;
  /**
   * The cursor field's value at `cursor` as epoch milliseconds, where it is a time (or a number);
   * null otherwise. Lets the engine tell which records a lookback window will read again.
   */
  timeOf?(cursor: Cursor): number | null;
  /**
   * The records with these keys as the source holds them now (absent: gone, or filtered out), for a
   * dead-letter retry that must send the current version, not the copy kept in the letter.
   */
  readByKeys?(keys: readonly (readonly Json[])[], req: { signal: AbortSignal }): Promise<Row[]>;
  /** The source object's columns as its system declares them, for a target that creates its table. */
  schema?(): Promise<SourceSchema>;
  /** Where the rows live as their system addresses them, for a target there that copies batches itself. */
  location?(): NativeLocation;
  /** The page `read` would return, without its records: how many, where it ends, and its range. */
  bounds?(req: ReadRequest): Promise<PageBounds>;
  /**
   * Keys that split the backfill's range (up to `highWaterMark`'s key) into `parts` ranges of about
   * equal size, in the source's own key order: up to `parts - 1` backfill cursors, each the last key
   * of its range. A partitioned backfill (`backfill.partitions`) reads each range on its own.
   */
  splitKeys?(parts: number, highWaterMark: Cursor | null): Promise<Cursor[]>;
  /**
   * What opening did not check, by reading only (`sluice check`): credentials and scopes, a `where`
   * or a column list the system refuses, a file that is not there.
   */
  check?(): Promise<CheckFinding[]>;
  close?(): Promise<void>;
}

/** One thing `sluice check` found about a source or a target, reading only. */
export type CheckFinding = {
  /** `problem`: the next run would fail on it; `warning`: it would run, maybe not as meant; `ok`: checked. */
  level: 'ok' | 'warning' | 'problem';
  message: string;
};

/** A source's rows as their own system addresses them: `system` names it (`sqlite`), the rest is its. */
export type NativeLocation = { system: string } & { [field: string]: Json };

export type PageBounds = {
  count: number;
  next: Cursor;
  done: boolean;
  /** The page's rows, in the source's own terms, for `Target.copyFrom`. */
  range: Json;
};

/** A store transaction a target can join; `handle` is the store's own client, known to both. */
export type StoreTransaction = { readonly database: string; readonly handle: unknown };

export type WriteRequest = {
  signal: AbortSignal;
  /**
   * The batch's identity: the same for a batch written again because its checkpoint was never saved
   * (a crash between the target's confirmation and the store's commit). A target that cannot absorb
   * a replay by key (an append-only file) replaces its earlier write of the same batch instead.
   */
  batch: string;
};

export interface Target<R extends Row = Row> {
  /**
   * Idempotent by the target key. Per-record rejects come back in the result, never thrown, naming
   * the record object they were sent (`records` is read, not reordered: the engine finds each
   * refused record's source by its place in the batch).
   */
  write(records: R[], req: WriteRequest): Promise<WriteResult<R>>;
  /**
   * Where the target lives in the store's own database (`database` names it), it can write inside the
   * store's transaction so the batch and its checkpoint commit together: exactly once.
   */
  writeIn?(tx: StoreTransaction, records: R[], req: WriteRequest): Promise<WriteResult<R>>;
  /**
   * Copies one page straight from a source in the same system (no map configured), without the
   * records passing through Sluice. Answers null when it cannot — another system, or a row the table
   * refuses — and the batch then goes the ordinary way, where each refused row is dead-lettered.
   */
  copyFrom?(
    location: NativeLocation,
    range: Json,
    req: { signal: AbortSignal },
  ): Promise<WriteResult<R> | null>;
  /**
   * Called as a run starts with the id its first batch will have. A target that cannot absorb a
   * replay by key (an append-only file) drops a write of that batch it confirmed whose checkpoint
   * was never saved: the run reads that batch anew, and what it writes may differ (other records,
   * another batch size), so the earlier write must not stay beside it.
   */
  rollback?(batch: string): Promise<void>;
  /** The database this target writes to, in the same form as `Store.database`. */
  readonly database?: string;
  close?(): Promise<void>;
}

/** Column declarations in one system's own dialect; a target uses them only for the same dialect. */
export type SourceSchema = {
  dialect: string;
  columns: { name: string; type: string }[];
};

/** What a connector learns about the sync it serves. */
export type SyncShape = {
  sync: string;
  /** The field(s) that identify a record in the source and the target. */
  key: readonly string[];
  /** The field that grows when a record changes; absent for append-only or file sources. */
  cursorField: string | null;
  /** Folder relative paths in connection options are resolved against (the config's folder). */
  baseDir: string;
  /** The source's column declarations, given to the target where the source knows them. */
  sourceSchema?: SourceSchema | undefined;
};

export type Checkpoint = {
  sync: string;
  phase: Phase;
  /**
   * Where reading goes on: in backfill, after the last key moved; in incremental, after the furthest
   * position read (it never moves back).
   */
  cursor: Cursor | null;
  /**
   * Incremental only: the position of a lookback sweep under way, re-reading the window behind
   * `cursor` across as many runs as it takes; null when none is.
   */
  sweep: Cursor | null;
  highWaterMark: Cursor | null;
  /** Totals since the sync started (or was last reset). */
  totals: Counters;
  /** Records the backfill has moved, and its estimate of the whole, for progress. */
  backfillDone: number;
  backfillEstimate: number | null;
  /** False while the estimate is a guess (a planner's row count, bytes per record so far). */
  backfillEstimateExact: boolean;
  backfillStartedAt: string | null;
  backfillEndedAt: string | null;
  updatedAt: string;
  /**
   * Counts the checkpoint's saves. A save names the version it follows and is refused otherwise, so
   * a checkpoint never moves backwards, whoever writes it.
   */
  version: number;
};

export type RunRecord = {
  id: number;
  sync: string;
  trigger: RunTrigger;
  status: RunStatus;
  phase: Phase;
  startedAt: string;
  endedAt: string | null;
  counters: Counters;
  /** True when the run stopped with work left (budget spent), false when it caught up. */
  more: boolean | null;
  errorCode: string | null;
  errorMessage: string | null;
  holder: string;
  /** The lane the run held (its bundle's, or its own); null for runs without one. */
  lane: string | null;
};

export type DeadLetter = {
  id: number;
  sync: string;
  runId: number;
  batch: number;
  /** The batch's cursor range: where its read started and where it ended. */
  cursorFrom: Cursor | null;
  cursorTo: Cursor | null;
  /** The record's key values; null for a dead-lettered cursor range. */
  key: Json | null;
  record: Json | null;
  reason: string;
  /** How often the record failed while this letter was open (a lookback re-read, say). */
  attempts: number;
  createdAt: string;
  lastFailedAt: string;
  /** When the letter was closed (its record written, or gone from the source); null while open. */
  closedAt: string | null;
  /** The run that closed it. */
  closedByRun: number | null;
  /** Why it was closed: `written by run 12`, `retried by run 14`, `gone from the source`. */
  resolution: string | null;
};

export type NewDeadLetter = { key: Json | null; record: Json | null; reason: string };

/** A hash of the last version of a record written to the target, by the record's key. */
export type Fingerprint = {
  /** The key values as JSON text (`stringifyJson`), as dead letters name records. */
  key: string;
  hash: string;
  /** The record's cursor value as epoch ms, where it is a time: fingerprints behind the window are pruned. */
  cursorMs: number | null;
};

export type BatchCommit = {
  sync: string;
  runId: number;
  /** The run's holder: a run that lost its hold (timed out, taken over) can no longer commit. */
  holder: string;
  batch: number;
  cursorFrom: Cursor | null;
  /** The checkpoint after the batch, its `version` one past the saved one; null leaves it as it is. */
  checkpoint: Checkpoint | null;
  /** This batch's counts, added to the run's. */
  counters: Counters;
  deadLetters: NewDeadLetter[];
  /** The run's lease is extended by this much from now, in the same transaction. */
  leaseMs: number;
  /** Fingerprints of the records this batch wrote. */
  fingerprints?: readonly Fingerprint[];
  /** Open letters to close, by record key (their record was written or found unchanged) or by id. */
  resolved?: { keys?: readonly string[]; ids?: readonly number[]; resolution: string }[];
  /** Added to the saved checkpoint's totals where `checkpoint` is null (a dead-letter retry). */
  totals?: Counters;
};

export type RunStart = {
  sync: string;
  trigger: RunTrigger;
  phase: Phase;
  holder: string;
  leaseMs: number;
  /** The lane the run holds while it runs (its bundle's); another run of the lane is refused. */
  lane?: string | null;
};

export type RunEnd = {
  /** The run's holder: only the process that holds a run ends it. */
  holder: string;
  status: Exclude<RunStatus, 'running'>;
  more: boolean | null;
  errorCode?: string | undefined;
  errorMessage?: string | undefined;
};

/** The key-value data store open to syncs (through their context) and users (through the CLI). */
export interface DataStore {
  get(key: string): Promise<Json | undefined>;
  set(key: string, value: Json): Promise<void>;
  del(key: string): Promise<boolean>;
  list(prefix?: string): Promise<{ key: string; value: Json; updatedAt: string }[]>;
}

export interface Store {
  readonly data: DataStore;
  /** Identifies the store's database (for a target that shares it); absent where none can be shared. */
  readonly database?: string;
  /** Runs `fn` in one store transaction; `commitBatch(commit, tx)` inside it joins the transaction. */
  transaction?<T>(fn: (tx: StoreTransaction) => Promise<T>): Promise<T>;
  getCheckpoint(sync: string): Promise<Checkpoint | null>;
  listCheckpoints(): Promise<Checkpoint[]>;
  /**
   * Saves a confirmed batch: checkpoint, run counters, dead letters and fingerprints, in one
   * transaction. Refused (`RUN_FENCED`, nothing saved) unless the run is still running under its
   * holder and the checkpoint follows the saved version.
   */
  commitBatch(commit: BatchCommit, tx?: StoreTransaction): Promise<void>;
  /** Saves a checkpoint with no batch (a backfill's start); fenced by version like a batch's. */
  saveCheckpoint(checkpoint: Checkpoint): Promise<void>;
  /** The stored fingerprints of these record keys (JSON text of the key values). */
  fingerprints(sync: string, keys: readonly string[]): Promise<Map<string, string>>;
  /** Forgets fingerprints whose cursor time is before `beforeMs`: no lookback window reads them again. */
  pruneFingerprints(sync: string, beforeMs: number): Promise<void>;
  /** How many of the sync's dead letters are open. */
  countOpenDeadLetters(sync: string): Promise<number>;
  /**
   * Opens a run, refusing when another run of the sync holds a live lease. A run whose holder is
   * gone (its lease expired, or its process on this host is dead) is closed as `abandoned` first.
   */
  startRun(start: RunStart): Promise<RunRecord>;
  /**
   * A running run's heartbeat: extends its lease by `leaseMs` from now. False when the run is no
   * longer running under `holder` (timed out, taken over): it must stop.
   */
  renewRun(runId: number, holder: string, leaseMs: number): Promise<boolean>;
  /**
   * Ends a run that is still running under `end.holder`. A run already ended (timed out, abandoned
   * by another process) keeps its first end; the record returned says which end stands.
   */
  finishRun(runId: number, end: RunEnd): Promise<RunRecord>;
  listRuns(query: { sync?: string; limit?: number }): Promise<RunRecord[]>;
  getRun(runId: number): Promise<RunRecord | null>;
  listDeadLetters(query: { sync?: string; limit?: number; includeClosed?: boolean }): Promise<DeadLetter[]>;
  /**
   * Records `nonce` until `expiresAt` (epoch ms); true the first time, false while it is remembered.
   * Webhooks use it to refuse a replayed request.
   */
  claimNonce?(nonce: string, expiresAt: number): Promise<boolean>;
  /** The durable queue of requested runs, where this store keeps one. */
  readonly queue?: RunQueue;
  /**
   * Forgets history older than `before` (epoch ms): ended runs (each sync keeps its newest `keepRuns`),
   * closed dead letters, finished queue requests, expired webhook receipts. Open letters, running
   * runs, checkpoints and fingerprints are never pruned.
   */
  prune(before: number, keepRuns: number): Promise<number>;
  /** Forgets a sync's checkpoint, dead letters and fingerprints; run history stays. */
  resetSync(sync: string): Promise<void>;
  close(): Promise<void>;
}

export type RunContext = {
  sync: string;
  runId: number;
  phase: Phase;
  /** The data store; once the run is past its deadline or lost its hold, it refuses every write. */
  data: DataStore;
  /** What the run was triggered with: a webhook's JSON body, an API request's payload; else null. */
  payload: Json | null;
  /** Aborts when the run must stop at once (its deadline, a lost hold, a kill): a slow `map` should give up. */
  signal: AbortSignal;
};

/** A connection's API budget (a daily quota) as this process has counted it. */
export type ApiBudget = {
  used: number;
  limit: number;
  left: number;
  /** Epoch ms: when the window resets (`day`), or when the oldest counted call leaves it (`rolling`). */
  resetsAt: number;
  window: 'day' | 'rolling';
};

/** A connector: one folder under connectors/, one line in the registry. */
export type Connector<C = unknown, SO = unknown, TO = unknown> = {
  type: string;
  connection: z.ZodType<C>;
  /** The connection's API budget, where it has one (`quota`); null without. */
  budget?(connection: C): ApiBudget | null;
  source?: {
    options: z.ZodType<SO>;
    open(connection: C, options: SO, shape: SyncShape): Promise<Source>;
  };
  target?: {
    options: z.ZodType<TO>;
    open(connection: C, options: TO, shape: SyncShape): Promise<Target>;
    /**
     * Checks the target without opening it (opening may create its file or table), writing nothing:
     * credentials, its table or file, the key's columns and unique index, privileges (`sluice check`).
     */
    check?(connection: C, options: TO, shape: SyncShape): Promise<CheckFinding[]>;
    /**
     * The target has one writer at a time (an append-only file: its exactly-once replay knows only
     * the last batch appended), so a backfill's partitions cannot write it at once.
     */
    singleWriter?: boolean;
    /**
     * What the target writes to (a file's path), for a single-writer target: two syncs naming the
     * same one would each take the other's lines for their own. `baseDir`: the config's folder.
     */
    resource?(connection: C, options: TO, baseDir: string): string;
  };
};

export type RequestStatus = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

/** A requested run waiting in, or taken from, the runtime's durable queue. */
export type RunRequest = {
  id: number;
  sync: string;
  /** Requests of one lane run one at a time: a bundle's name, or the sync's own lane. */
  lane: string;
  trigger: RunTrigger;
  payload: Json | null;
  /** Set when the batch at the checkpoint failed too often: the run dead-letters it and moves on. */
  setAsideReason: string | null;
  /** 1 for a first try, 2 and up for retries of a failing run. */
  attempt: number;
  status: RequestStatus;
  notBefore: number;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  holder: string | null;
  /** The only process that may run it (a CLI run waiting its turn in the lane); null: any. */
  owner: string | null;
  runId: number | null;
  errorCode: string | null;
  errorMessage: string | null;
};

export type NewRunRequest = {
  sync: string;
  lane: string;
  trigger: RunTrigger;
  payload?: Json | null;
  setAsideReason?: string | null;
  attempt?: number;
  /** Epoch ms; defaults to now. */
  notBefore?: number;
  /** Return the sync's queued request in this lane, if there is one, instead of adding another. */
  coalesce?: boolean;
  /** Only this holder may run it; it keeps its place by claiming (`claimOwn`) within `leaseMs`. */
  owner?: string;
  leaseMs?: number;
};

/**
 * One claim of a request: who took it and when. A request recovered and claimed again (even by the
 * same process, after it was frozen) is another claim, and the old one can no longer change it.
 */
export type Claim = { id: number; holder: string; startedAt: number };

/** The claim a claimed (running) request carries. */
export function claimOf(request: RunRequest): Claim {
  return { id: request.id, holder: request.holder ?? '', startedAt: request.startedAt ?? 0 };
}

/**
 * How a claim takes requests: up to `limit` due ones, oldest first, at most one per lane and none
 * from a lane that has one running, marked running under `holder`'s lease. With `start`, each
 * claimed request's run is recorded in the same step, as `start` describes it (its phase is the
 * checkpoint's); a request `start` gives null for is claimed without a run.
 */
export type ClaimOptions = {
  holder: string;
  leaseMs: number;
  limit: number;
  start?: (request: RunRequest) => Omit<RunStart, 'phase'> | null;
};

/**
 * A claimed request, and the run its claim started: null where none was asked for, or where its
 * sync or lane is held by a run the queue does not know (`refused` says which: SYNC_BUSY, LANE_BUSY).
 */
export type ClaimedRequest = { request: RunRequest; run: RunRecord | null; refused: SluiceError | null };

/** The runtime's durable queue of requested runs, kept in the store's database. */
export interface RunQueue {
  enqueue(request: NewRunRequest): Promise<RunRequest>;
  /** Takes due requests (see `ClaimOptions`). */
  claim(options: ClaimOptions): Promise<ClaimedRequest[]>;
  /** Extends the lease of a claimed request; false when the claim no longer holds it. */
  renew(claim: Claim, leaseMs: number): Promise<boolean>;
  /**
   * Takes the owner's own request once it heads its lane and the lane is free; null while it waits
   * (the call keeps its place alive for another `leaseMs`).
   */
  claimOwn(id: number, holder: string, leaseMs: number): Promise<RunRequest | null>;
  /** Withdraws a queued request (its owner stopped waiting). */
  cancel(id: number, reason: { code: string; message: string }): Promise<void>;
  /**
   * When `holder` should next look for work (epoch ms): the earliest queued request it could claim,
   * or soon where one waits on another process; null with nothing queued for it to wait on.
   */
  nextDue(holder: string): Promise<number | null>;
  /**
   * Ends a claimed request and, in the same step, records the end of its run `then.run` (`run`: the
   * run as it stands after, as `Store.finishRun` says it), queues `then.next` (its successor) and
   * claims what `then.claim` asks, as `claim` does. `ended` is null, and nothing is queued or
   * claimed, when the claim no longer holds the request (recovered, claimed again) or the run's end
   * was fenced off (the request is then left as it is).
   */
  finish(
    claim: Claim,
    end: {
      status: 'done' | 'failed' | 'cancelled';
      runId?: number | null;
      errorCode?: string;
      errorMessage?: string;
      /** The failure's attempt at the batch, where it differs from the request's (see `RunRequest.attempt`). */
      attempt?: number;
    },
    then?: { next?: NewRunRequest | undefined; claim?: ClaimOptions; run?: { id: number; end: RunEnd } },
  ): Promise<{ ended: RunRequest | null; claimed: ClaimedRequest[]; run?: RunRecord }>;
  /** Puts a claimed request back in the queue (its run could not start), due at `notBefore`. */
  release(claim: Claim, notBefore: number): Promise<void>;
  /** Requeues running requests whose holder is gone; returns them. */
  recover(): Promise<RunRequest[]>;
  get(id: number): Promise<RunRequest | null>;
  list(query: { sync?: string; status?: RequestStatus; limit?: number }): Promise<RunRequest[]>;
  /** The sync's requests still queued or running. */
  pending(sync: string): Promise<RunRequest[]>;
  /** The sync's last finished request. */
  lastFinished(sync: string): Promise<RunRequest | null>;
}
