import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { sqliteConnector } from '../../../src/connectors/sqlite/index.ts';
import type { Connector, Source, SyncShape, Target } from '../../../src/core/ports.ts';
import type { Row } from '../../../src/core/types.ts';
import { executeRun, type RunOutcome } from '../../../src/engine/run.ts';
import { SqliteStore } from '../../../src/store/sqlite/store.ts';

/** Shared by the API connector tests: open connectors through their zod schemas, run syncs to the end. */
export type Spec = {
  name?: string;
  key?: string[];
  batchSize?: number;
  lookbackMs?: number;
  maxRunDurationMs?: number;
};

export function shapeOf(key: string[], cursorField: string | null, baseDir: string): SyncShape {
  return { sync: 's', key, cursorField, baseDir };
}

/** Opens a source through the connector's schemas, as the config layer does. */
export async function openSource(
  connector: Connector,
  conn: unknown,
  options: unknown,
  shape: SyncShape,
): Promise<Source> {
  const c = connector as Connector<unknown, unknown, unknown>;
  return c.source!.open(c.connection.parse(conn), c.source!.options.parse(options), shape);
}

export async function openTarget(
  connector: Connector,
  conn: unknown,
  options: unknown,
  shape: SyncShape,
): Promise<Target> {
  const c = connector as Connector<unknown, unknown, unknown>;
  return c.target!.open(c.connection.parse(conn), c.target!.options.parse(options), shape);
}

export function openStore(dir: string): SqliteStore {
  return SqliteStore.open(join(dir, 'state.db'));
}

/** One run. */
export function runOnce(
  store: SqliteStore,
  source: Source,
  target: Target,
  spec: Spec = {},
): Promise<RunOutcome> {
  return executeRun({
    spec: {
      name: spec.name ?? 's',
      key: spec.key ?? ['id'],
      cursorField: null,
      batchSize: spec.batchSize ?? 100,
      maxRunDurationMs: spec.maxRunDurationMs ?? 60_000,
      lookbackMs: spec.lookbackMs ?? 0,
      map: null,
    },
    source,
    target,
    store,
    trigger: 'run',
    holder: 'test',
  });
}

/** Runs until the sync has caught up (bounded, so a source that never finishes fails the test). */
export async function runToEnd(
  store: SqliteStore,
  source: Source,
  target: Target,
  spec: Spec = {},
): Promise<RunOutcome> {
  for (let i = 0; i < 50; i++) {
    const outcome = await runOnce(store, source, target, spec);
    if (!outcome.more && outcome.checkpoint.phase === 'incremental') return outcome;
  }
  throw new Error('sync did not catch up in 50 runs');
}

/** A SQLite target table `t` keyed by `key` in `dir/target.db`, and a reader for it. */
export async function sqliteTarget(
  dir: string,
  key: string[],
): Promise<{ target: Target; rows: () => Row[] }> {
  const path = join(dir, 'target.db');
  const target = await openTarget(
    sqliteConnector as Connector,
    { path },
    { table: 't' },
    shapeOf(key, null, dir),
  );
  return {
    target,
    rows: () => {
      const db = new DatabaseSync(path, { readOnly: true });
      try {
        return db.prepare('SELECT * FROM t').all() as Row[];
      } finally {
        db.close();
      }
    },
  };
}

/** A SQLite source table `src` in `dir/source.db` holding `rows` (all with the same fields). */
export async function sqliteSource(
  dir: string,
  rows: Row[],
  key: string[],
  cursorField: string | null,
): Promise<Source> {
  const path = join(dir, 'source.db');
  const db = new DatabaseSync(path);
  const fields = Object.keys(rows[0]!);
  db.exec(
    `CREATE TABLE src (${fields.map((f) => `"${f}"`).join(', ')}, PRIMARY KEY (${key.map((k) => `"${k}"`).join(', ')}))`,
  );
  const insert = db.prepare(`INSERT INTO src VALUES (${fields.map(() => '?').join(', ')})`);
  db.exec('BEGIN');
  for (const r of rows) insert.run(...fields.map((f) => r[f] as string | number | null));
  db.exec('COMMIT');
  db.close();
  return openSource(sqliteConnector as Connector, { path }, { table: 'src' }, shapeOf(key, cursorField, dir));
}
