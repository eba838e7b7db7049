import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { ValidConfig } from '../config/validate.ts';
import type { CheckFinding, Estimate, Source, SourceSchema, Store, SyncShape } from '../core/ports.ts';
import type { Cursor, Phase } from '../core/types.ts';
import { openStore } from '../store/open.ts';

/**
 * What `sluice check` finds, reading only: each sync's source opened (sources open read-only) and
 * asked for its high-water mark and estimate, its target checked without being opened (opening may
 * create a table or a file), and the store read where it exists.
 */

export type Side = 'source' | 'target' | 'store';
export type Finding = CheckFinding & { side: Side };

export type NextRun = {
  phase: Phase;
  /** No checkpoint yet: the next run starts the backfill (and takes the high-water mark). */
  startsBackfill: boolean;
  /** Where the backfill stops: the checkpoint's, or the one the source would give now. */
  highWaterMark: Cursor | null;
  /** Where the next read starts after: the checkpoint's cursor; null at the start of a backfill. */
  cursor: Cursor | null;
  /** Records left to read in this phase, where the source can tell. */
  estimate: Estimate | null;
  /** Whether the target copies batches from the source itself, and why (not). */
  nativeCopy: { native: boolean; why: string };
  openDeadLetters: number;
};

export type SyncCheck = {
  sync: string;
  source: { connection: string; type: string };
  target: { connection: string; type: string };
  /** Null where the source could not be opened (the findings say why). */
  next: NextRun | null;
  findings: Finding[];
};

/** A step that has to answer: a server that never does is a problem, not a hung check. */
const STEP_TIMEOUT_MS = 30_000;

/** The store, where one exists, for reading checkpoints; null (and a finding) where none does yet. */
export async function storeToRead(
  config: ValidConfig,
): Promise<{ store: Store | null; findings: Finding[] }> {
  const location = config.config.store;
  const none = (where: string) => ({
    store: null,
    findings: [
      {
        side: 'store' as const,
        level: 'ok' as const,
        message: `${where}: every sync starts with its backfill, and the first run creates it`,
      },
    ],
  });
  try {
    if (/^postgres(ql)?:\/\//.test(location)) {
      if (!(await step(postgresStoreExists(location), 'looking for the store')))
        return none(`schema "sluice" of ${redacted(location)} holds no store yet`);
    } else {
      const path = location.startsWith('sqlite:') ? location.slice('sqlite:'.length) : location;
      const file = isAbsolute(path) || path === ':memory:' ? path : resolve(config.baseDir, path);
      if (file === ':memory:' || !existsSync(file)) return none(`${file} does not exist yet`);
    }
    return { store: await step(openStore(location, config.baseDir), 'opening the store'), findings: [] };
  } catch (err) {
    return { store: null, findings: [{ side: 'store', level: 'problem', message: messageOf(err) }] };
  }
}

/**
 * Whether a PostgreSQL store was created there (opening one that was not would create it: `check`
 * writes nothing). The store lives in schema `sluice`, as `store/open.ts` opens it.
 */
async function postgresStoreExists(url: string): Promise<boolean> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  // A dropped connection rejects the query in flight; the event itself needs no more handling.
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rows } = await client.query<{ oid: string | null }>(
      "SELECT to_regclass('sluice.checkpoints') AS oid",
    );
    return rows[0]?.oid != null;
  } finally {
    await client.end();
  }
}

const redacted = (url: string): string => url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');

export async function checkSync(config: ValidConfig, name: string, store: Store | null): Promise<SyncCheck> {
  const sync = config.syncs.get(name)!;
  const sourceConn = config.connections.get(sync.source.connection)!;
  const targetConn = config.connections.get(sync.target.connection)!;
  const shape: SyncShape = {
    sync: name,
    key: sync.key,
    cursorField: sync.cursorField,
    baseDir: config.baseDir,
  };
  const result: SyncCheck = {
    sync: name,
    source: { connection: sourceConn.name, type: sourceConn.type },
    target: { connection: targetConn.name, type: targetConn.type },
    next: null,
    findings: [],
  };
  const found = (side: Side, findings: CheckFinding[]) =>
    result.findings.push(...findings.map((f) => ({ side, ...f })));
  /** Runs one read; a failure is a problem of `side` and the value is null. */
  const attempt = async <T>(side: Side, doing: string, fn: () => Promise<T>): Promise<T | null> => {
    try {
      return await step(fn(), doing);
    } catch (err) {
      found(side, [{ level: 'problem', message: `${doing}: ${messageOf(err)}` }]);
      return null;
    }
  };

  const checkpoint = store ? await store.getCheckpoint(name) : null;
  const source = await attempt('source', 'opening the source', () =>
    sourceConn.connector.source!.open(sourceConn.options, sync.sourceOptions, shape),
  );
  let sourceSchema: SourceSchema | undefined;
  if (source) {
    try {
      const checked = await attempt(
        'source',
        'checking the source',
        async () => (await source.check?.()) ?? [],
      );
      found('source', checked ?? []);
      // A backfill split into partitions needs a source that can split its keys (SQLite, PostgreSQL).
      if (sync.partitions > 1 && checkpoint === null && !source.splitKeys) {
        found('source', [
          {
            level: 'problem',
            message: `backfill.partitions is ${sync.partitions}, but a ${sourceConn.type} source cannot split its keys into ranges; set it to 1`,
          },
        ]);
      }
      sourceSchema =
        (await attempt('source', 'reading its columns', async () => source.schema?.())) ?? undefined;
      // A source its own check refused would fail the reads below for the same reason: said once.
      if (checked !== null && !checked.some((f) => f.level === 'problem')) {
        result.next = await nextRun(source, checkpoint, attempt);
        if (result.next) {
          result.next.nativeCopy = nativeCopy(config, name, source, targetConn.type);
          result.next.openDeadLetters = store ? await store.countOpenDeadLetters(name) : 0;
        }
      }
    } finally {
      await source.close?.();
    }
  }
  const check = targetConn.connector.target?.check;
  if (check) {
    const findings = await attempt('target', 'checking the target', () =>
      check(targetConn.options, sync.targetOptions, { ...shape, sourceSchema }),
    );
    found('target', findings ?? []);
  } else
    found('target', [
      {
        level: 'warning',
        message: `the ${targetConn.type} target cannot be checked without writing to it: its first batch tells`,
      },
    ]);
  return result;
}

async function nextRun(
  source: Source,
  checkpoint: Awaited<ReturnType<Store['getCheckpoint']>>,
  attempt: <T>(side: Side, doing: string, fn: () => Promise<T>) => Promise<T | null>,
): Promise<NextRun | null> {
  const phase = checkpoint?.phase ?? 'backfill';
  // A backfill under way keeps the mark it took; a new one takes the source's now (a read).
  let highWaterMark = checkpoint ? checkpoint.highWaterMark : null;
  if (!checkpoint && source.highWaterMark) {
    highWaterMark = await attempt('source', 'taking the high-water mark', () => source.highWaterMark!());
    if (highWaterMark === null) return null;
  }
  const estimate = source.estimate
    ? await attempt('source', 'estimating the records left', () =>
        source.estimate!({ phase, cursor: checkpoint?.cursor ?? null, highWaterMark }),
      )
    : null;
  return {
    phase,
    startsBackfill: !checkpoint,
    highWaterMark,
    cursor: checkpoint?.cursor ?? null,
    estimate,
    nativeCopy: { native: false, why: '' },
    openDeadLetters: 0,
  };
}

/** As the engine decides it (engine/loop.ts): no map, a source the target's system can copy from, no shared store. */
function nativeCopy(
  config: ValidConfig,
  name: string,
  source: Source,
  targetType: string,
): NextRun['nativeCopy'] {
  const sync = config.syncs.get(name)!;
  if (sync.map)
    return { native: false, why: 'a map changes the records: read, mapped and written by Sluice' };
  const location = source.location && source.bounds ? source.location() : null;
  if (!location)
    return { native: false, why: 'the source is read record by record: records pass through Sluice' };
  if (location.system !== targetType)
    return { native: false, why: `${location.system} → ${targetType}: records pass through Sluice` };
  const target = config.connections.get(sync.target.connection)!.options as { url?: unknown };
  if (targetType === 'postgres' && target.url === config.config.store)
    return {
      native: false,
      why: "the target is the store's database: each batch commits with its checkpoint, written by Sluice",
    };
  const later =
    sync.lookbackMs > 0
      ? '; incremental batches with a lookback window go through Sluice (fingerprints)'
      : '';
  return {
    native: true,
    why: `the ${targetType} target copies each batch from the source itself where the columns' types match${later}`,
  };
}

export function problemsOf(checks: readonly SyncCheck[], store: readonly Finding[]): string[] {
  return [
    ...store.filter((f) => f.level === 'problem').map((f) => `store: ${f.message}`),
    ...checks.flatMap((c) =>
      c.findings.filter((f) => f.level === 'problem').map((f) => `${c.sync}: ${f.side}: ${f.message}`),
    ),
  ];
}

function step<T>(promise: Promise<T>, doing: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${STEP_TIMEOUT_MS / 1000} s ${doing}`)),
      STEP_TIMEOUT_MS,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function messageOf(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && code.length > 0 && !message.includes(code)
    ? `${message} [${code}]`
    : message;
}
