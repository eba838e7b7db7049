import { Cron } from 'croner';
import type { RunRecord, RunRequest } from '../../core/ports.ts';
import type { Progress } from '../../engine/progress.ts';
import { bundleIndex, laneOf } from '../../runtime/lanes.ts';
import type { SyncStatus, Workspace } from '../../runtime/workspace.ts';

/** How far back the lane view draws hand-overs. */
export const TURNS_WINDOW_MS = 10 * 60_000;
/** How far back the records-per-second chart reaches, and its bucket. */
export const RATES_WINDOW_MS = 60 * 60_000;
export const RATES_BUCKET_MS = 60_000;
/** Runs read for the lane view and the chart: enough for a busy hour, bounded for 200 syncs. */
const RECENT_RUNS = 5_000;

/** When a sync next runs, as far as this process can tell. */
export type NextRun = {
  /** Epoch ms, or null when it runs on its own (a triggered chain) or only on request. */
  at: number | null;
  /** True where `at` is worked out from the last run and the interval, not read from a queue or cron. */
  approximate: boolean;
  /** The interval, where `at` is approximate: the page rolls `at` on by it once it has passed. */
  everyMs?: number;
  what: string;
};

/** One row of the syncs table: the sync's status, where it runs and what it does next. */
export type SyncRow = SyncStatus & {
  bundle: string | null;
  lane: string;
  rerun: 'triggered' | 'scheduled';
  /** The chain broke (retries spent) and nothing has run since; the reason. */
  chainBroken: string | null;
  /** A run is queued but another sync holds the lane. */
  waitingForLane: boolean;
  /** Since when it runs (epoch ms), while it does. */
  runningSince: number | null;
  next: NextRun | null;
  /** The running run's latest progress, where this process runs it. */
  live: LiveProgress | null;
  /** When the backfill started (epoch ms); null once it is done or before it starts. */
  backfillStartedAt: number | null;
  /**
   * Milliseconds until the backfill is done at the pace it has kept since it started (its turns in
   * the lane and the waits between them included); null when not in backfill or not yet known.
   */
  backfillEtaMs: number | null;
};

export type LiveProgress = Pick<
  Progress,
  | 'runId'
  | 'phase'
  | 'run'
  | 'backfillDone'
  | 'backfillEstimate'
  | 'estimateExact'
  | 'rate'
  | 'etaMs'
  | 'elapsedMs'
> & { sync: string; at: number };

export type Turn = {
  sync: string;
  runId: number;
  trigger: string;
  start: number;
  end: number | null;
  status: string;
};
export type LaneView = {
  lane: string;
  bundle: string | null;
  /** The request running (Sluice's own queue), or only the run (a store without it). */
  running: { sync: string; requestId: number | null; runId?: number; since: number | null }[];
  waiting: { sync: string; requestId: number; trigger: string; dueAt: number }[];
  turns: Turn[];
};

export type Snapshot = { now: number; syncs: SyncRow[]; lanes: LaneView[]; windowMs: number };

/** What the server remembers between reads: live progress and broken chains, both from runtime events. */
export type LiveState = {
  progress: Map<string, LiveProgress>;
  chainBroken: Map<string, string>;
};

/** Everything the syncs table and the lane view show, read in one go. */
export async function snapshot(ws: Workspace, live: LiveState, now = Date.now()): Promise<Snapshot> {
  const statuses = await ws.status(now);
  const queue = ws.store.queue;
  const [checkpoints, running, queued, runs] = await Promise.all([
    ws.store.listCheckpoints(),
    queue ? queue.list({ status: 'running', limit: 1_000 }) : Promise.resolve([]),
    queue ? queue.list({ status: 'queued', limit: 2_000 }) : Promise.resolve([]),
    ws.store.listRuns({ limit: RECENT_RUNS }),
  ]);
  const bundles = bundleIndex(ws.config.config.bundles);
  const busyLanes = new Set(running.map((r) => r.lane));
  const started = new Map(
    checkpoints.map((cp) => [cp.sync, cp.backfillStartedAt ? Date.parse(cp.backfillStartedAt) : null]),
  );
  const syncs: SyncRow[] = statuses.map((status) => {
    const sync = ws.sync(status.sync);
    const lane = laneOf(status.sync, bundles, 'schedule');
    const mine = queued.filter((r) => r.sync === status.sync);
    // Claimed is running: the run's own record follows a moment later (its source and target open).
    const claimed = running.find((r) => r.sync === status.sync);
    const state = claimed ? 'running' : status.state;
    const runningSince =
      claimed?.startedAt ??
      (state === 'running' && status.lastRun ? Date.parse(status.lastRun.startedAt) : null);
    return {
      ...status,
      state,
      runningSince,
      bundle: bundles.get(status.sync) ?? null,
      lane,
      rerun: sync.rerun.mode,
      chainBroken: live.chainBroken.get(status.sync) ?? null,
      waitingForLane: state === 'queued' && mine.some((r) => r.notBefore <= now && busyLanes.has(r.lane)),
      next: nextRun(ws, status, mine, now),
      live: state === 'running' ? (live.progress.get(status.sync) ?? null) : null,
      backfillStartedAt: status.phase === 'backfill' ? (started.get(status.sync) ?? null) : null,
      backfillEtaMs: backfillEta(status, started.get(status.sync) ?? null, now),
    };
  });
  return { now, syncs, lanes: lanes(ws, running, queued, runs, now), windowMs: TURNS_WINDOW_MS };
}

function backfillEta(status: SyncStatus, startedAt: number | null, now: number): number | null {
  if (status.phase !== 'backfill' || startedAt === null || status.backfillEstimate === null) return null;
  const elapsed = now - startedAt;
  if (status.backfillDone <= 0 || elapsed <= 0) return null;
  return (Math.max(0, status.backfillEstimate - status.backfillDone) * elapsed) / status.backfillDone;
}

function nextRun(ws: Workspace, status: SyncStatus, queued: RunRequest[], now: number): NextRun | null {
  const due = queued.map((r) => r.notBefore).sort((a, b) => a - b)[0];
  if (due !== undefined) return { at: due, approximate: false, what: due <= now ? 'due now' : 'queued' };
  const sync = ws.sync(status.sync);
  const backfilling = status.phase !== 'incremental';
  if (backfilling && sync.rerun.mode === 'triggered')
    return status.phase === 'new' ? null : { at: null, approximate: false, what: 'continues on its own' };
  const schedule = backfilling
    ? sync.rerun.mode === 'scheduled'
      ? sync.rerun.every !== undefined
        ? { every: sync.rerun.every }
        : { cron: sync.rerun.cron! }
      : null
    : sync.incremental;
  if (!schedule) return null;
  if ('cron' in schedule) {
    const next = new Cron(schedule.cron, { paused: true }).nextRun();
    return next ? { at: next.getTime(), approximate: false, what: schedule.cron } : null;
  }
  // The runtime ticks every `every` from its own start, which no one records; the last run's start is
  // the nearest guide. Kept as it is (the page rolls it on), so a snapshot does not change by itself.
  const what = `every ${formatMs(schedule.every)}`;
  if (!status.lastRun) return { at: null, approximate: true, what };
  return {
    at: Date.parse(status.lastRun.startedAt) + schedule.every,
    approximate: true,
    everyMs: schedule.every,
    what,
  };
}

function lanes(
  ws: Workspace,
  running: RunRequest[],
  queued: RunRequest[],
  runs: RunRecord[],
  now: number,
): LaneView[] {
  const from = now - TURNS_WINDOW_MS;
  const views = new Map<string, LaneView>();
  const view = (lane: string): LaneView => {
    let v = views.get(lane);
    if (!v) {
      const bundle = lane.startsWith('bundle:') ? lane.slice('bundle:'.length) : null;
      v = { lane, bundle, running: [], waiting: [], turns: [] };
      views.set(lane, v);
    }
    return v;
  };
  for (const bundle of Object.keys(ws.config.config.bundles)) view(`bundle:${bundle}`);
  for (const r of running) view(r.lane).running.push({ sync: r.sync, requestId: r.id, since: r.startedAt });
  // A store without Sluice's own queue (PostgreSQL, where pg-boss keeps the requests): what runs now
  // is read from the runs themselves; what waits is not known here.
  if (!ws.store.queue)
    for (const run of runs)
      if (run.status === 'running' && run.lane)
        view(run.lane).running.push({
          sync: run.sync,
          requestId: null,
          runId: run.id,
          since: Date.parse(run.startedAt),
        });
  for (const r of [...queued].sort((a, b) => a.notBefore - b.notBefore || a.id - b.id))
    view(r.lane).waiting.push({ sync: r.sync, requestId: r.id, trigger: r.trigger, dueAt: r.notBefore });
  for (const run of runs) {
    if (!run.lane) continue;
    const start = Date.parse(run.startedAt);
    const end = run.endedAt ? Date.parse(run.endedAt) : null;
    if ((end ?? now) < from) continue;
    view(run.lane).turns.push({
      sync: run.sync,
      runId: run.id,
      trigger: run.trigger,
      start,
      end,
      status: run.status,
    });
  }
  for (const v of views.values()) v.turns.sort((a, b) => a.start - b.start || a.runId - b.runId);
  return [...views.values()].sort((a, b) => laneOrder(a) - laneOrder(b) || a.lane.localeCompare(b.lane));
}

const laneOrder = (v: LaneView) => (v.bundle !== null ? 0 : v.lane.startsWith('sync:') ? 1 : 2);

/** Records read per second, per sync, in one-minute buckets over the last hour (runs spread evenly). */
export async function rates(
  ws: Workspace,
  live: LiveState,
  now = Date.now(),
): Promise<{ from: number; bucketMs: number; series: { sync: string; perSecond: number[] }[] }> {
  const buckets = RATES_WINDOW_MS / RATES_BUCKET_MS;
  const from = now - RATES_WINDOW_MS;
  const series = new Map<string, number[]>();
  const add = (sync: string, read: number, start: number, end: number) => {
    if (read <= 0 || end < from) return;
    let s = series.get(sync);
    if (!s) {
      s = new Array<number>(buckets).fill(0);
      series.set(sync, s);
    }
    const span = Math.max(1, end - start);
    for (let i = Math.max(0, Math.floor((start - from) / RATES_BUCKET_MS)); i < buckets; i++) {
      const b0 = from + i * RATES_BUCKET_MS;
      const overlap = Math.min(end, b0 + RATES_BUCKET_MS) - Math.max(start, b0);
      if (overlap > 0) s[i]! += (read * overlap) / span / (RATES_BUCKET_MS / 1000);
      if (b0 > end) break;
    }
  };
  for (const run of await ws.store.listRuns({ limit: RECENT_RUNS })) {
    const start = Date.parse(run.startedAt);
    const progress = live.progress.get(run.sync);
    const read = run.endedAt === null && progress?.runId === run.id ? progress.run.read : run.counters.read;
    add(run.sync, read, start, run.endedAt ? Date.parse(run.endedAt) : now);
  }
  return {
    from,
    bucketMs: RATES_BUCKET_MS,
    series: [...series.entries()]
      .map(([sync, perSecond]) => ({ sync, perSecond: perSecond.map((v) => Math.round(v * 10) / 10) }))
      .sort((a, b) => a.sync.localeCompare(b.sync)),
  };
}

function formatMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
