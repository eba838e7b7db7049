import { Cron } from 'croner';
import { z } from 'zod';
import { parseDuration } from '../core/duration.ts';
import type { RunContext } from '../core/ports.ts';
import type { Json, Row } from '../core/types.ts';

/** A secret read from the environment when the config loads; never printed. */
export type EnvSecret = { $env: string };

const duration = (what: string) =>
  z.union([z.string(), z.number()]).transform((value, ctx) => {
    const parsed = parseDuration(value);
    if (parsed === null) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a duration for ${what} such as '30s', '10m' or '1h'`,
      });
      return z.NEVER;
    }
    return parsed;
  });

const name = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, { error: 'expected a name of letters, digits, "_", "." or "-"' });

const positiveInt = z
  .number({ error: 'expected a positive integer' })
  .int({ error: 'expected a positive integer' })
  .positive({ error: 'expected a positive integer' });

const cronExpression = z.string().refine(
  (pattern) => {
    try {
      new Cron(pattern, { paused: true }).stop();
      return true;
    } catch {
      return false;
    }
  },
  { error: "expected a cron expression such as '*/5 * * * *'" },
);

/** When something recurs: every fixed interval, or on a cron expression. */
const scheduleSchema = z.union(
  [z.strictObject({ every: duration('every') }), z.strictObject({ cron: cronExpression })],
  { error: "expected { every: '5m' } or { cron: '*/5 * * * *' }" },
);

const rerunSchema = z.discriminatedUnion(
  'mode',
  [
    z.strictObject({
      /** The run enqueues its successor the moment it ends with work left. */
      mode: z.literal('triggered'),
      /** Restarts a chain broken by a failure, from the checkpoint. */
      watchdog: scheduleSchema.optional(),
    }),
    z.strictObject({
      /** A schedule continues the backfill; a failing batch is retried on the next ticks. */
      mode: z.literal('scheduled'),
      every: duration('rerun.every').optional(),
      cron: cronExpression.optional(),
    }),
  ],
  { error: "expected { mode: 'triggered' } or { mode: 'scheduled', every | cron }" },
);

const retriesSchema = z.strictObject({
  /** Attempts at a failing batch before giving up on it. @defaultValue 3 */
  attempts: z.number().int().positive({ error: 'expected a positive integer' }).default(3),
  backoff: z
    .strictObject({
      /** Delay before the second attempt; it doubles each time, with jitter. @defaultValue '1s' */
      initial: duration('retries.backoff.initial').default(1000),
      /** The longest delay. @defaultValue '5m' */
      max: duration('retries.backoff.max').default(300_000),
    })
    .default({ initial: 1000, max: 300_000 }),
});

const secretList = z.array(z.string().min(1)).min(1);

const webhookSchema = z
  .strictObject({
    /** HMAC-SHA256 secrets; several at once while one is rotated out. */
    secrets: secretList.optional(),
    /** Bearer tokens accepted instead of a signature. */
    tokens: secretList.optional(),
  })
  .refine((w) => w.secrets || w.tokens, { error: 'expected secrets or tokens (or both)' });

const connectionSchema = z.looseObject({
  type: z.string({ error: 'expected a connector type such as "sqlite" or "files"' }),
});

const endpointSchema = z.looseObject({
  connection: z.string({ error: 'expected the name of a connection' }),
});

const cursorSchema = z.union([
  z.string(),
  z.strictObject({
    /** The field that grows when a record changes, e.g. `updated_at`. */
    field: z.string(),
    /** How far each incremental run re-reads behind its checkpoint, for rows committed late. @defaultValue '0s' */
    lookback: duration('cursor.lookback').default(0),
  }),
]);

const mapSchema = z.custom<MapFn>((v) => typeof v === 'function', {
  error: 'expected a function (record, ctx) => record',
});

export const syncSchema = z.strictObject({
  source: endpointSchema,
  target: endpointSchema,
  /** The field (or fields) that identify a record; the target upserts by it. */
  key: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)], {
    error: 'expected a field name or a list of field names',
  }),
  /** The field incremental runs follow; omit for append-only sources (files). */
  cursor: cursorSchema.optional(),
  batch: z
    .strictObject({
      /** Records per batch: the unit of write, checkpoint and retry. @defaultValue 5000 */
      size: positiveInt.max(1_000_000, { error: 'expected at most 1000000' }).default(5000),
    })
    .default({ size: 5000 }),
  /** A run stops starting batches once this is spent; the batch in hand is finished. @defaultValue '10m' */
  maxRunDuration: duration('maxRunDuration').default(600_000),
  /** How the backfill is moved. @defaultValue { partitions: 1, parallel: true } */
  backfill: z
    .strictObject({
      /**
       * Splits the backfill's key range into this many ranges of about equal size (from the source's
       * keys), each with its own checkpoint and runs; incremental starts once every one is done.
       * Needs a source that can split its keys (SQLite, PostgreSQL). @defaultValue 1
       */
      partitions: positiveInt.max(64, { error: 'expected at most 64' }).default(1),
      /**
       * The partitions move at once (each with its own source and target connections), not one
       * after another; the sync's run still holds its bundle's lane meanwhile. @defaultValue true
       */
      parallel: z.boolean().default(true),
    })
    .default({ partitions: 1, parallel: true }),
  /** Record mapping; return null to skip a record. @defaultValue identity */
  map: mapSchema.optional(),
  /** How a run that ends with work left is continued. @defaultValue { mode: 'triggered' } */
  rerun: rerunSchema
    .refine((r) => r.mode !== 'scheduled' || (r.every === undefined) !== (r.cron === undefined), {
      error: 'a scheduled rerun needs exactly one of every or cron',
    })
    .default({ mode: 'triggered' }),
  retries: retriesSchema.default({ attempts: 3, backoff: { initial: 1000, max: 300_000 } }),
  /** When incremental runs happen once the backfill is done; without it, only on request. */
  incremental: scheduleSchema.optional(),
  /** Lets `POST /hooks/<sync>` trigger the sync; such runs never wait behind a bundle's backfill. */
  webhook: webhookSchema.optional(),
});

export const bundleSchema = z.strictObject({ syncs: z.array(z.string()).min(1) });

const runtimeSchema = z.strictObject({
  /** Runs at once across all lanes. @defaultValue 4 */
  concurrency: positiveInt.default(4),
  /** A run still going this long after its maxRunDuration is aborted and its lane released. @defaultValue '30s' */
  grace: duration('runtime.grace').default(30_000),
  /** How often the queue is polled for due runs, besides being woken when one is queued. @defaultValue '1s' */
  poll: duration('runtime.poll').default(1000),
  /**
   * How long a run's hold lasts without a heartbeat (renewed every third of it): a process that dies
   * has its runs taken over by a live one this long after, within one poll. @defaultValue '30s'
   */
  lease: duration('runtime.lease').default(30_000),
  /**
   * History older than this is pruned (hourly by the runtime): ended runs (each sync keeps its newest
   * 100), closed dead letters, finished queue requests. Open dead letters are never pruned. @defaultValue '30d'
   */
  retention: duration('runtime.retention').default(30 * 86_400_000),
});

const serverSchema = z.strictObject({
  /** @defaultValue '127.0.0.1' */
  host: z.string().default('127.0.0.1'),
  /** @defaultValue 4300 */
  port: z.number().int().min(0).max(65535).default(4300),
  /** Bearer tokens for the REST API; without one, the API answers 401. */
  apiTokens: z.array(z.string().min(1)).default([]),
});

export const configSchema = z.strictObject({
  /** Where checkpoints, run history, the data store and dead letters live. @defaultValue '.sluice/state.db' */
  store: z.string().default('.sluice/state.db'),
  runtime: runtimeSchema.default({
    concurrency: 4,
    grace: 30_000,
    poll: 1000,
    lease: 30_000,
    retention: 30 * 86_400_000,
  }),
  server: serverSchema.default({ host: '127.0.0.1', port: 4300, apiTokens: [] }),
  connections: z.record(name, connectionSchema).default({}),
  syncs: z.record(name, syncSchema).default({}),
  bundles: z.record(name, bundleSchema).default({}),
});

export type MapFn = (
  record: Row,
  ctx: RunContext,
) => Row | null | undefined | Promise<Row | null | undefined>;

/** What a user writes in `sluice.config.ts`. */
export type ConfigInput = z.input<typeof configSchema>;
export type SyncInput = z.input<typeof syncSchema>;

/** What the rest of Sluice reads: defaults filled, durations in milliseconds. */
export type Config = z.output<typeof configSchema>;
export type SyncConfig = z.output<typeof syncSchema>;

export type ResolvedSync = {
  name: string;
  key: string[];
  cursorField: string | null;
  lookbackMs: number;
  batchSize: number;
  maxRunDurationMs: number;
  /** The sync whose records these are (dead letters, fingerprints): itself, or a partition's sync. */
  recordsOf: string;
  partitions: number;
  parallelPartitions: boolean;
  map: MapFn | null;
  rerun: SyncConfig['rerun'];
  retries: SyncConfig['retries'];
  incremental: SyncConfig['incremental'] | null;
  webhook: SyncConfig['webhook'] | null;
  source: Record<string, unknown> & { connection: string };
  target: Record<string, unknown> & { connection: string };
};

export function resolveSync(name: string, sync: SyncConfig): ResolvedSync {
  const cursor = typeof sync.cursor === 'string' ? { field: sync.cursor, lookback: 0 } : sync.cursor;
  return {
    name,
    key: Array.isArray(sync.key) ? sync.key : [sync.key],
    cursorField: cursor?.field ?? null,
    lookbackMs: cursor?.lookback ?? 0,
    batchSize: sync.batch.size,
    maxRunDurationMs: sync.maxRunDuration,
    recordsOf: name,
    partitions: sync.backfill.partitions,
    parallelPartitions: sync.backfill.parallel,
    map: sync.map ?? null,
    rerun: sync.rerun,
    retries: sync.retries,
    incremental: sync.incremental ?? null,
    webhook: sync.webhook ?? null,
    source: sync.source,
    target: sync.target,
  };
}

export type { Json };
