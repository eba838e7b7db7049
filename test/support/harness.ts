import { join } from 'node:path';
import { sqliteConnector } from '../../src/connectors/sqlite/index.ts';
import type { Source, Store, SyncShape, Target } from '../../src/core/ports.ts';
import { executeRun, type RunOptions, type RunOutcome, type RunSpec } from '../../src/engine/run.ts';
import { SqliteStore } from '../../src/store/sqlite/store.ts';

export type Pair = {
  dir: string;
  sourcePath: string;
  targetPath: string;
  store: SqliteStore;
  spec: RunSpec;
  shape: SyncShape;
  openSource(): Promise<Source>;
  openTarget(): Promise<Target>;
  /** One run with freshly opened source and target, closed afterwards, like the CLI does. */
  run(
    options?: Partial<RunOptions> & {
      wrapSource?: (s: Source) => Source;
      wrapTarget?: (t: Target) => Target;
      wrapStore?: (s: Store) => Store;
    },
  ): Promise<RunOutcome>;
  /** Runs until the backfill is done (or `max` runs); returns the runs made. */
  backfill(max?: number): Promise<RunOutcome[]>;
};

/** A SQLite → SQLite `contacts` sync in `dir`, driven through the engine as the CLI drives it. */
export function sqlitePair(
  dir: string,
  spec: Partial<RunSpec> = {},
  shape: Partial<SyncShape> = {},
  targetOptions: { table?: string } = {},
): Pair {
  const sourcePath = join(dir, 'a.db');
  const targetPath = join(dir, 'b.db');
  const store = SqliteStore.open(join(dir, 'state.db'));
  const fullSpec: RunSpec = {
    name: 'contacts',
    key: ['id'],
    cursorField: shape.cursorField === undefined ? 'updated_at' : shape.cursorField,
    batchSize: 1000,
    maxRunDurationMs: 600_000,
    lookbackMs: 0,
    map: null,
    ...spec,
  };
  const fullShape: SyncShape = {
    sync: 'contacts',
    key: ['id'],
    cursorField: 'updated_at',
    baseDir: dir,
    ...shape,
  };
  const openSource = () =>
    sqliteConnector.source!.open({ path: sourcePath }, { table: 'contacts' }, fullShape);
  const openTarget = () =>
    sqliteConnector.target!.open(
      { path: targetPath },
      { table: targetOptions.table ?? 'contacts', mode: 'upsert', synchronous: 'NORMAL' },
      fullShape,
    );
  const pair: Pair = {
    dir,
    sourcePath,
    targetPath,
    store,
    spec: fullSpec,
    shape: fullShape,
    openSource,
    openTarget,
    async run(options = {}) {
      const { wrapSource, wrapTarget, wrapStore, ...rest } = options;
      const source = await openSource();
      const target = await openTarget();
      try {
        return await executeRun({
          spec: fullSpec,
          source: wrapSource ? wrapSource(source) : source,
          target: wrapTarget ? wrapTarget(target) : target,
          store: wrapStore ? wrapStore(store) : store,
          trigger: 'run',
          holder: `test:${process.pid}`,
          ...rest,
        });
      } finally {
        await source.close?.();
        await target.close?.();
      }
    },
    async backfill(max = 10_000) {
      const outcomes: RunOutcome[] = [];
      for (let i = 0; i < max; i++) {
        const outcome = await pair.run({ stopAfterBackfill: true, trigger: 'backfill' });
        outcomes.push(outcome);
        if (outcome.checkpoint.phase === 'incremental') break;
      }
      return outcomes;
    },
  };
  return pair;
}

/** A source that records every page it returned, for exact accounting of reads. */
export function recordingSource(source: Source, pages: { cursor: unknown; ids: unknown[] }[]): Source {
  return {
    ...bindAll(source),
    async read(req) {
      const page = await source.read(req);
      pages.push({ cursor: req.cursor, ids: page.records.map((r) => r.id) });
      return page;
    },
  };
}

/** The source's optional methods, bound, so a wrapper can spread them. */
export function bindAll(source: Source): Source {
  return {
    read: source.read.bind(source),
    ...(source.highWaterMark ? { highWaterMark: source.highWaterMark.bind(source) } : {}),
    ...(source.estimate ? { estimate: source.estimate.bind(source) } : {}),
    ...(source.rewind ? { rewind: source.rewind.bind(source) } : {}),
    ...(source.timeOf ? { timeOf: source.timeOf.bind(source) } : {}),
    ...(source.readByKeys ? { readByKeys: source.readByKeys.bind(source) } : {}),
  };
}
