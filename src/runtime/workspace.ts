import { type ConnectorCatalog, connectionTypes, loadConfig } from '../config/load.ts';
import type { ResolvedSync } from '../config/schema.ts';
import { type ValidConfig, validateConfig } from '../config/validate.ts';
import { connectorTypes, loadConnectors } from '../connectors/registry.ts';
import { asSluiceError, ConnectorError, isTransient, UnknownSyncError } from '../core/errors.ts';
import { currentHolder } from '../core/holder.ts';
import { isPartitionOf, partitionName, partitionProgress, partitionsAmong } from '../core/partitions.ts';
import type {
  ApiBudget,
  Checkpoint,
  Connector,
  RunRecord,
  RunStart,
  Source,
  Store,
  SyncShape,
  Target,
} from '../core/ports.ts';
import type { Json, RunTrigger } from '../core/types.ts';
import type { Progress } from '../engine/progress.ts';
import type { RetryOutcome } from '../engine/retry.ts';
import type { RunOptions, RunOutcome } from '../engine/run.ts';
import { openStore } from '../store/open.ts';
import { bundleIndex, laneOf } from './lanes.ts';

// The engine loads with the first run: a command that only reads the store (`sluice status`) starts
// without it (and without node:crypto, which it needs for fingerprints and dead-letter ids).
let engineModule: Promise<typeof import('../engine/run.ts')> | null = null;
const engine = () => (engineModule ??= import('../engine/run.ts'));

export type SyncDefinition = ValidConfig['syncs'] extends Map<string, infer S> ? S : never;

export type RunParams = {
  trigger: RunTrigger;
  stop?: AbortSignal;
  stopAfterBackfill?: boolean;
  onProgress?: (progress: Progress) => void;
  /** Called once the run is recorded, with its id. */
  onStart?: (run: RunRecord) => void;
  /** The run, where the caller recorded it already (a runtime's claim; see `runStartOf`). */
  run?: RunRecord;
  /** How the end of a run that succeeds is recorded (see the engine's `RunOptions.finishRun`); not for a partitioned backfill's run. */
  finishRun?: RunOptions['finishRun'];
  /**
   * A partitioned backfill's run splits (the first time) and names its unfinished partitions in its
   * outcome for the runtime to queue, rather than moving them itself: each partition is then a
   * request of its own, taken by whichever worker is free (runtimes set this; the CLI does not).
   */
  fanOut?: boolean;
  payload?: Json | null;
  setAside?: { reason: string };
  graceMs?: number;
  /**
   * The run has been given up on (it overran its deadline and lost its lane): its source and target
   * are closed at once, so a run stuck in a connector lets go of its connections and can write no more.
   */
  abandon?: AbortSignal;
  /** Stops the run at once, recorded `abandoned` with the reason (a shutdown past its grace). */
  kill?: AbortSignal;
};

export type WorkspaceOptions = {
  /** Connectors beyond the built-in ones (tests, plugins); a type here wins over a built-in one. */
  connectors?: Connector[];
};

export type SyncStatus = {
  sync: string;
  phase: 'new' | Checkpoint['phase'];
  backfillDone: number;
  backfillEstimate: number | null;
  /** Backfill progress from 0 to 1; 1 once incremental; null before the first run. */
  progress: number | null;
  /** False while the backfill's estimate (and so progress and ETA) is a guess. */
  estimateExact: boolean;
  /** Dead letters still open. */
  deadLetters: number;
  /** The API budgets of its source's and target's connections, where they have one (as this process counts them). */
  budgets: ({ connection: string } & ApiBudget)[];
  totals: Checkpoint['totals'] | null;
  lastRun: RunRecord | null;
  /**
   * `running`, `queued` (a run is requested), `failed` (the last run failed; `error` says why), or
   * `idle`.
   */
  state: 'running' | 'queued' | 'failed' | 'idle';
  error: string | null;
  /** Milliseconds since the sync last caught up (a succeeded run with no work left); null if never. */
  lagMs: number | null;
};

/** A loaded config and its open store: what every command and the server work through. */
export class Workspace {
  readonly config: ValidConfig;
  readonly store: Store;
  /** Sync → bundle, for the lanes runs hold. */
  private readonly bundles: ReadonlyMap<string, string>;

  private constructor(config: ValidConfig, store: Store) {
    this.config = config;
    this.store = store;
    this.bundles = bundleIndex(config.config.bundles);
  }

  static async open(configPath: string, options: WorkspaceOptions = {}): Promise<Workspace> {
    const config = await loadConfig(configPath, connectorCatalog(options));
    return new Workspace(config, await openStore(config.config.store, config.baseDir));
  }

  /** A workspace from a config value rather than a file (tests, embedding Sluice in a program). */
  static async fromConfig(raw: unknown, baseDir: string, options: WorkspaceOptions = {}): Promise<Workspace> {
    const { load, knownTypes } = connectorCatalog(options);
    const config = validateConfig(raw, { baseDir, lookup: await load(connectionTypes(raw)), knownTypes });
    return new Workspace(config, await openStore(config.config.store, config.baseDir));
  }

  /** A config file loaded and validated, its connectors loaded, no store opened (`sluice check` writes nothing). */
  static async loadConfig(configPath: string, options: WorkspaceOptions = {}): Promise<ValidConfig> {
    return loadConfig(configPath, connectorCatalog(options));
  }

  syncNames(): string[] {
    return [...this.config.syncs.keys()];
  }

  /**
   * A configured sync, or a partition of one's backfill (`contacts#2`, see core/partitions): the
   * sync's definition under the partition's name, its records still the sync's, continued by
   * triggered reruns whatever the sync's own rerun policy.
   */
  sync(name: string): SyncDefinition {
    const sync = this.config.syncs.get(name);
    if (sync) return sync;
    const hash = name.lastIndexOf('#');
    const of = hash > 0 ? this.config.syncs.get(name.slice(0, hash)) : undefined;
    if (!of || !isPartitionOf(name, of.name)) throw new UnknownSyncError(name, this.syncNames());
    return {
      ...of,
      name,
      recordsOf: of.name,
      partitions: 1,
      rerun: { mode: 'triggered' },
      incremental: null,
      webhook: null,
    };
  }

  /** `name` is a configured sync or a partition of one. */
  hasSync(name: string): boolean {
    try {
      this.sync(name);
      return true;
    } catch {
      return false;
    }
  }

  shape(sync: ResolvedSync): SyncShape {
    return { sync: sync.name, key: sync.key, cursorField: sync.cursorField, baseDir: this.config.baseDir };
  }

  async openSource(name: string): Promise<Source> {
    const sync = this.sync(name);
    const conn = this.config.connections.get(sync.source.connection)!;
    return conn.connector.source!.open(conn.options, sync.sourceOptions, this.shape(sync));
  }

  async openTarget(name: string, source?: Source): Promise<Target> {
    const sync = this.sync(name);
    const conn = this.config.connections.get(sync.target.connection)!;
    const sourceSchema = source?.schema ? await source.schema() : undefined;
    return conn.connector.target!.open(conn.options, sync.targetOptions, {
      ...this.shape(sync),
      sourceSchema,
    });
  }

  /** The sync's source and target, opened for `fn` and closed after (or when `abandon` fires). */
  private async withEndpoints<T>(
    name: string,
    fn: (source: Source, target: Target) => Promise<T>,
    abandon?: AbortSignal,
  ): Promise<T> {
    const source = await openEndpoint(() => this.openSource(name), name, 'source');
    let target: Target;
    try {
      target = await openEndpoint(() => this.openTarget(name, source), name, 'target');
    } catch (err) {
      await source.close?.();
      throw err;
    }
    let closing: Promise<unknown> | null = null;
    const close = () => (closing ??= Promise.allSettled([source.close?.(), target.close?.()]));
    abandon?.addEventListener('abort', close, { once: true });
    try {
      return await fn(source, target);
    } finally {
      abandon?.removeEventListener('abort', close);
      await close();
    }
  }

  /**
   * One run of a sync. Its hold on the sync and its lane is taken first, so a busy lane opens no
   * connector; then its source and target are opened for it (a failure to open is a failed run, with
   * the reason, like any other) and closed after.
   */
  async run(name: string, request: RunParams): Promise<RunOutcome> {
    const sync = this.sync(name);
    const partition = sync.recordsOf !== sync.name;
    const start = this.runStartOf(name, request.trigger);
    const base = {
      spec: sync,
      store: this.store,
      trigger: request.trigger,
      holder: request.run?.holder ?? start.holder,
      lane: start.lane ?? null,
      leaseMs: start.leaseMs,
    };
    // A run recorded already (by a runtime's claim) is ended `failed` by whatever stops it here.
    let run = request.run ?? null;
    let opened = false;
    try {
      const partitioned = await this.partitioned(sync);
      const { executeRun, startRunOf } = await engine();
      const { executePartitionedRun } = partitioned ? await import('../engine/partitions.ts') : {};
      run ??= await startRunOf(base);
      request.onStart?.(run);
      const started = run;
      return await this.withEndpoints(
        name,
        (source, target) => {
          opened = true;
          const options = {
            ...base,
            run: started,
            source,
            target,
            ...(request.stop ? { stop: request.stop } : {}),
            // A partition's runs end with its range: what follows is its sync's incremental.
            ...(request.stopAfterBackfill || partition ? { stopAfterBackfill: true } : {}),
            ...(request.onProgress ? { onProgress: request.onProgress } : {}),
            ...(request.payload !== undefined ? { payload: request.payload } : {}),
            ...(request.setAside ? { setAside: request.setAside } : {}),
            ...(request.kill ? { kill: request.kill } : {}),
            graceMs: request.graceMs ?? this.config.config.runtime.grace,
          };
          if (!executePartitionedRun)
            return executeRun({ ...options, ...(request.finishRun ? { finishRun: request.finishRun } : {}) });
          return executePartitionedRun({
            ...options,
            partitions: sync.partitions,
            parallel: sync.parallelPartitions,
            fanOut: request.fanOut ?? false,
            endpoints: (fn) => this.withEndpoints(name, fn, request.abandon),
          });
        },
        request.abandon,
      );
    } catch (err) {
      if (run && !opened) {
        // Failed before its first batch could start: its source or target would not open, say.
        const error = asSluiceError(err);
        await this.store.finishRun(run.id, {
          holder: run.holder,
          status: 'failed',
          more: true,
          errorCode: error.code,
          errorMessage: error.message,
        });
      }
      throw err;
    }
  }

  /**
   * The sync's backfill goes by partitions: one not begun, configured so; one begun, as it began,
   * whatever `backfill.partitions` says now (split, or not: a checkpoint of its own and none of a
   * partition).
   */
  private async partitioned(sync: SyncDefinition): Promise<boolean> {
    const cp = await this.store.getCheckpoint(sync.name);
    if (cp === null) return sync.partitions > 1;
    // A split sync's own checkpoint has no cursor until its partitions are all done and it goes
    // incremental (see core/partitions): one with a cursor was never split.
    if (cp.phase !== 'backfill' || cp.cursor !== null) return false;
    // A split always makes partition 1.
    return (await this.store.getCheckpoint(partitionName(sync.name, 1))) !== null;
  }

  /**
   * The lane a run of the sync holds: its own or its bundle's; a partition's run, its own where the
   * partitions move at once (they opt out of the bundle's one-at-a-time rule), else its sync's.
   */
  laneOfRun(sync: SyncDefinition, trigger: RunTrigger): string {
    const partition = sync.recordsOf !== sync.name;
    return laneOf(partition && !sync.parallelPartitions ? sync.recordsOf : sync.name, this.bundles, trigger);
  }

  /**
   * How a run of the sync is recorded, but for its phase (the checkpoint's): this process holds it,
   * for `runtime.lease` at a time, in the lane of `laneOfRun`. A runtime whose claim records the run
   * (see `ClaimOptions.start`) describes it with this, as `run` does.
   */
  runStartOf(name: string, trigger: RunTrigger): Omit<RunStart, 'phase'> {
    return {
      sync: name,
      trigger,
      holder: currentHolder(),
      leaseMs: this.config.config.runtime.lease,
      lane: this.laneOfRun(this.sync(name), trigger),
    };
  }

  /** Sends the sync's open dead letters again (see `retryDeadLetters`), holding its lane. */
  async retryDeadLetters(name: string): Promise<RetryOutcome> {
    const sync = this.sync(name);
    const { retryDeadLetters } = await import('../engine/retry.ts');
    return this.withEndpoints(name, (source, target) =>
      retryDeadLetters({
        spec: sync,
        source,
        target,
        store: this.store,
        holder: currentHolder(),
        lane: laneOf(name, this.bundles, 'retry'),
      }),
    );
  }

  async status(now = Date.now()): Promise<SyncStatus[]> {
    const checkpoints = new Map((await this.store.listCheckpoints()).map((c) => [c.sync, c]));
    const statuses: SyncStatus[] = [];
    for (const name of this.syncNames()) {
      const own = checkpoints.get(name) ?? null;
      // A backfill under way by partitions: their checkpoints and latest runs speak for it.
      const parts = own?.phase === 'backfill' ? partitionsAmong(name, [...checkpoints.values()]) : [];
      const cp = withPartitions(own, parts);
      const runs = await this.store.listRuns({ sync: name, limit: 50 });
      const caughtUp = runs.find((r) => r.status === 'succeeded' && r.more === false && r.endedAt);
      const partitionRuns = await this.latestRuns(parts);
      const last = runs[0] ?? null;
      const queued = ((await this.store.queue?.pending(name)) ?? []).length > 0;
      const failedRun = [last, ...partitionRuns].find(
        (r) => r?.status === 'failed' || r?.status === 'timed_out',
      );
      const running = [last, ...partitionRuns].some((r) => r?.status === 'running');
      const failed = !running && failedRun !== undefined;
      const state = running ? 'running' : queued ? 'queued' : failed ? 'failed' : 'idle';
      statuses.push({
        sync: name,
        phase: cp?.phase ?? 'new',
        backfillDone: cp?.backfillDone ?? 0,
        backfillEstimate: cp?.backfillEstimate ?? null,
        progress: progressOf(cp),
        estimateExact: cp?.backfillEstimateExact ?? false,
        deadLetters: await this.store.countOpenDeadLetters(name),
        budgets: this.budgetsOf(name),
        totals: cp?.totals ?? null,
        lastRun: last,
        state,
        error:
          failed && failedRun
            ? `${failedRun.sync === name ? '' : `${failedRun.sync}: `}${failedRun.errorCode}: ${failedRun.errorMessage}`
            : null,
        lagMs: caughtUp?.endedAt ? now - Date.parse(caughtUp.endedAt) : null,
      });
    }
    return statuses;
  }

  /** The latest run of each partition of the sync's backfill while it is under way (none otherwise). */
  /** The latest run of each partition: a partitioned backfill's runs are theirs, not the sync's. */
  private async latestRuns(parts: readonly Checkpoint[]): Promise<RunRecord[]> {
    const latest: RunRecord[] = [];
    for (const part of parts) {
      const [run] = await this.store.listRuns({ sync: part.sync, limit: 1 });
      if (run) latest.push(run);
    }
    return latest;
  }

  private budgetsOf(name: string): ({ connection: string } & ApiBudget)[] {
    const sync = this.sync(name);
    const budgets: ({ connection: string } & ApiBudget)[] = [];
    for (const connection of new Set([sync.source.connection, sync.target.connection])) {
      const conn = this.config.connections.get(connection);
      const budget = conn?.connector.budget?.(conn.options);
      if (budget) budgets.push({ connection, ...budget });
    }
    return budgets;
  }

  async close(): Promise<void> {
    await this.store.close();
  }
}

function connectorCatalog(options: WorkspaceOptions): ConnectorCatalog {
  const extra = new Map((options.connectors ?? []).map((c) => [c.type, c]));
  return {
    knownTypes: [...new Set([...connectorTypes(), ...extra.keys()])],
    load: async (types) => {
      const builtIn = await loadConnectors(types.filter((t) => !extra.has(t)));
      return (type) => extra.get(type) ?? builtIn(type);
    },
  };
}

/**
 * A partitioned backfill's checkpoint as status shows it: what its partitions have done, of how
 * much, and their totals (the sync's own checkpoint holds them only once they are all done).
 */
function withPartitions(cp: Checkpoint | null, parts: readonly Checkpoint[]): Checkpoint | null {
  if (cp === null || parts.length === 0) return cp;
  const { done, estimate, exact, totals } = partitionProgress(parts);
  return { ...cp, backfillDone: done, backfillEstimate: estimate, backfillEstimateExact: exact, totals };
}

function progressOf(cp: Checkpoint | null): number | null {
  if (!cp) return null;
  if (cp.phase === 'incremental') return 1;
  if (!cp.backfillEstimate) return cp.backfillDone > 0 ? null : 0;
  return Math.min(1, cp.backfillDone / cp.backfillEstimate);
}

async function openEndpoint<T>(open: () => Promise<T>, sync: string, side: 'source' | 'target'): Promise<T> {
  try {
    return await open();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const code = (err as { code?: unknown }).code;
    throw new ConnectorError(
      typeof code === 'string' && code.length > 0 ? code : `${side.toUpperCase()}_OPEN_FAILED`,
      `sync "${sync}": cannot open its ${side}: ${message}`,
      // A dropped connection while opening is as momentary as one mid-batch.
      { cause: err, transient: isTransient(err) },
    );
  }
}
