import type { SQLInputValue } from 'node:sqlite';
import { LaneBusyError, SyncBusyError } from '../../core/errors.ts';
import { isHolderGone } from '../../core/holder.ts';
import type {
  Claim,
  ClaimedRequest,
  ClaimOptions,
  NewRunRequest,
  RequestStatus,
  RunEnd,
  RunQueue,
  RunRecord,
  RunRequest,
  RunStart,
} from '../../core/ports.ts';
import { requestFromRow, toJsonText } from '../rows.ts';
import * as sql from './sql.ts';
import type { Connection } from './statements.ts';

/** The store's own writes of a run, for a claim that starts runs and a request's end that ends one. */
export type RunWrites = {
  start: (start: Omit<RunStart, 'phase'>) => RunRecord;
  end: (runId: number, end: RunEnd) => RunRecord;
};

// A request that waits on another process (its lane running there, or owned by a waiting CLI run)
// is looked at again this soon: that process's hand-over wakes nobody here.
const LOOK_AGAIN_MS = 50;

/**
 * The local runtime's queue in the store's SQLite file. Claims run in IMMEDIATE transactions and
 * a partial unique index allows one running request per lane, so lanes stay serial even when
 * several processes share the file.
 */
export class SqliteQueue implements RunQueue {
  private readonly db: Connection;
  private readonly now: () => number;
  private readonly tx: <T>(fn: () => T) => Promise<T>;
  private readonly runs: RunWrites;

  /** `runs` records runs' starts and ends inside the queue's transactions (the store's). */
  constructor(db: Connection, now: () => number, tx: <T>(fn: () => T) => Promise<T>, runs: RunWrites) {
    this.db = db;
    this.now = now;
    this.tx = tx;
    this.runs = runs;
  }

  async enqueue(request: NewRunRequest): Promise<RunRequest> {
    return this.tx(() => this.insert(request));
  }

  private insert(request: NewRunRequest): RunRequest {
    if (request.coalesce) {
      const queued = this.db.prepare(sql.selectQueuedOfSyncInLane).get(request.sync, request.lane);
      if (queued) return requestFromRow(queued);
    }
    const now = this.now();
    const row = this.db.prepare(sql.insertRequest).get({
      sync: request.sync,
      lane: request.lane,
      trigger: request.trigger,
      payload: toJsonText(request.payload ?? null),
      setAside: request.setAsideReason ?? null,
      attempt: request.attempt ?? 1,
      notBefore: request.notBefore ?? now,
      now,
      owner: request.owner ?? null,
      leaseUntil: request.owner ? now + (request.leaseMs ?? 30_000) : null,
    } as Record<string, SQLInputValue>);
    return requestFromRow(row!);
  }

  async claim(options: ClaimOptions): Promise<ClaimedRequest[]> {
    if (options.limit <= 0) return [];
    return this.tx(() => this.take(options));
  }

  /**
   * The claim itself, inside a transaction: each free lane's oldest due request, at most `limit`,
   * and the run of each where `start` asks for one.
   */
  private take(options: ClaimOptions): ClaimedRequest[] {
    if (options.limit <= 0) return [];
    const now = this.now();
    const due = this.db
      .prepare(sql.selectDueRequests)
      .all({ now, limit: options.limit, holder: options.holder });
    const claimed: ClaimedRequest[] = [];
    const claim = this.db.prepare(sql.claimRequest);
    for (const row of due) {
      const taken = claim.get(options.holder, now + options.leaseMs, now, Number(row.id));
      if (!taken) continue;
      const request = requestFromRow(taken);
      const start = options.start?.(request) ?? null;
      if (start === null) {
        claimed.push({ request, run: null, refused: null });
        continue;
      }
      try {
        claimed.push({ request, run: this.runs.start(start), refused: null });
      } catch (err) {
        // Held by a run this queue did not hand out (a `sluice run` on a store without turns, a
        // dead-letter retry): the request stays claimed, for its runtime to put back for a while.
        if (!(err instanceof SyncBusyError || err instanceof LaneBusyError)) throw err;
        claimed.push({ request, run: null, refused: err });
      }
    }
    return claimed;
  }

  async renew(claim: Claim, leaseMs: number): Promise<boolean> {
    return this.tx(() => {
      const at = this.now() + leaseMs;
      const result = this.db.prepare(sql.renewRequest).run(at, claim.id, claim.holder, claim.startedAt);
      return Number(result.changes) === 1;
    });
  }

  async claimOwn(id: number, holder: string, leaseMs: number): Promise<RunRequest | null> {
    return this.tx(() => {
      const now = this.now();
      const row = this.db.prepare(sql.claimOwnRequest).get({ id, holder, leaseUntil: now + leaseMs, now });
      if (row) return requestFromRow(row);
      this.db.prepare(sql.renewQueued).run(now + leaseMs, id, holder);
      return null;
    });
  }

  async cancel(id: number, reason: { code: string; message: string }): Promise<void> {
    await this.tx(() => this.db.prepare(sql.cancelRequest).run(this.now(), reason.code, reason.message, id));
  }

  async nextDue(holder: string): Promise<number | null> {
    const at = this.db
      .prepare(sql.selectNextDue)
      .get({ holder, now: this.now(), lookAgain: LOOK_AGAIN_MS })?.at;
    return at === null || at === undefined ? null : Number(at);
  }

  async finish(
    claim: Claim,
    end: {
      status: 'done' | 'failed' | 'cancelled';
      runId?: number | null;
      errorCode?: string;
      errorMessage?: string;
      attempt?: number;
    },
    then: {
      next?: NewRunRequest | undefined;
      claim?: ClaimOptions;
      run?: { id: number; end: RunEnd };
    } = {},
  ): Promise<{ ended: RunRequest | null; claimed: ClaimedRequest[]; run?: RunRecord }> {
    return this.tx(() => {
      // The run's end first: a run fenced off (timed out, taken over) leaves its request as it is,
      // for its runtime to settle by what that run's end then says.
      const run = then.run ? this.runs.end(then.run.id, then.run.end) : undefined;
      if (run && run.status !== then.run!.end.status) return { ended: null, claimed: [], run };
      const row = this.db
        .prepare(sql.finishRequest)
        .get(
          end.status,
          this.now(),
          end.runId ?? null,
          end.errorCode ?? null,
          end.errorMessage ?? null,
          end.attempt ?? null,
          claim.id,
          claim.holder,
          claim.startedAt,
        );
      if (!row) return { ended: null, claimed: [], ...(run ? { run } : {}) };
      // The successor is queued with the end of its predecessor or not at all: no crash between the
      // two leaves a chain without its next run, and a claim lost to a takeover queues nothing.
      if (then.next) this.insert(then.next);
      // The slot the request held is taken again in the same write: a lane hands over without
      // another transaction, and the oldest due request of any free lane still goes first.
      const claimed = then.claim ? this.take(then.claim) : [];
      return { ended: requestFromRow(row), claimed, ...(run ? { run } : {}) };
    });
  }

  async release(claim: Claim, notBefore: number): Promise<void> {
    await this.tx(() =>
      this.db.prepare(sql.releaseRequest).run(notBefore, claim.id, claim.holder, claim.startedAt),
    );
  }

  async recover(): Promise<RunRequest[]> {
    // Looking is a read; the write lock is taken only when some holder is gone.
    if (!this.anyHolderGone()) return [];
    return this.tx(() => {
      const now = this.now();
      const recovered: RunRequest[] = [];
      for (const row of this.db.prepare(sql.selectRunningRequests).all()) {
        if (!isHolderGone(String(row.holder), Number(row.lease_until), now)) continue;
        if (row.owner !== null) {
          // Only its owner could run it, and the owner is gone: nothing will.
          this.db
            .prepare(sql.finishRequest)
            .run(
              'cancelled',
              now,
              null,
              'HOLDER_GONE',
              'its process died',
              null,
              Number(row.id),
              String(row.holder),
              Number(row.started_at),
            );
          continue;
        }
        this.db
          .prepare(sql.releaseRequest)
          .run(now, Number(row.id), String(row.holder), Number(row.started_at));
        recovered.push(requestFromRow({ ...row, status: 'queued' }));
      }
      // A CLI run that died waiting its turn leaves a request only it may run: it blocks its lane.
      for (const row of this.db.prepare(sql.selectOwnedQueued).all()) {
        if (!isHolderGone(String(row.owner), Number(row.lease_until ?? 0), now)) continue;
        this.db
          .prepare(sql.cancelRequest)
          .run(now, 'HOLDER_GONE', `its process ${row.owner} died waiting its turn`, Number(row.id));
      }
      return recovered;
    });
  }

  private anyHolderGone(): boolean {
    const now = this.now();
    const running = this.db.prepare(sql.selectRunningRequests).all();
    if (running.some((row) => isHolderGone(String(row.holder), Number(row.lease_until), now))) return true;
    const owned = this.db.prepare(sql.selectOwnedQueued).all();
    return owned.some((row) => isHolderGone(String(row.owner), Number(row.lease_until ?? 0), now));
  }

  async get(id: number): Promise<RunRequest | null> {
    const row = this.db.prepare(sql.selectRequest).get(id);
    return row ? requestFromRow(row) : null;
  }

  async list(query: { sync?: string; status?: RequestStatus; limit?: number }): Promise<RunRequest[]> {
    return this.db
      .prepare(sql.selectRequests)
      .all({ sync: query.sync ?? null, status: query.status ?? null, limit: query.limit ?? 100 })
      .map(requestFromRow);
  }

  async pending(sync: string): Promise<RunRequest[]> {
    return this.db.prepare(sql.selectPendingOfSync).all(sync).map(requestFromRow);
  }

  async lastFinished(sync: string): Promise<RunRequest | null> {
    const row = this.db.prepare(sql.selectLastFinishedOfSync).get(sync);
    return row ? requestFromRow(row) : null;
  }
}
