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
  /** Record mapping; return null to skip a record. @defaultValue identity */
  map: mapSchema.optional(),
});

export const bundleSchema = z.strictObject({ syncs: z.array(z.string()).min(1) });

export const configSchema = z.strictObject({
  /** Where checkpoints, run history, the data store and dead letters live. @defaultValue '.sluice/state.db' */
  store: z.string().default('.sluice/state.db'),
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
  map: MapFn | null;
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
    map: sync.map ?? null,
    source: sync.source,
    target: sync.target,
  };
}

export type { Json };
