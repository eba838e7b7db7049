import { z } from 'zod';
import type { Connector } from '../../core/ports.ts';
import { PostgresSource, type PostgresSourceOptions } from './source.ts';
import { PostgresTarget, type PostgresTargetOptions } from './target.ts';

const connection = z.strictObject({
  /** `postgres://user:password@host:5432/db`; a secret can come from `{ $env: 'NAME' }`. */
  url: z
    .string({ error: 'expected a PostgreSQL URL, e.g. postgres://user@host:5432/db' })
    .regex(/^postgres(ql)?:\/\//, { error: 'expected a URL starting with postgres:// or postgresql://' }),
});

const sourceOptions = z.strictObject({
  table: z.string({ error: 'expected a table name' }).min(1),
  /** @defaultValue 'public' */
  schema: z.string().min(1).optional(),
  columns: z.array(z.string()).min(1).optional(),
  /** An SQL condition rows must meet, e.g. `deleted_at IS NULL`. */
  where: z.string().optional(),
});

const targetOptions = z.strictObject({
  table: z.string({ error: 'expected a table name' }).min(1),
  /** @defaultValue 'public' */
  schema: z.string().min(1).optional(),
  mode: z.enum(['upsert', 'insert', 'update']).default('upsert'),
  /** Create a missing table from the source's declared columns and key; false refuses (TABLE_MISSING). @defaultValue true */
  create: z.boolean({ error: 'expected true or false' }).default(true),
});

export const postgresConnector: Connector<
  z.output<typeof connection>,
  PostgresSourceOptions,
  PostgresTargetOptions
> = {
  type: 'postgres',
  connection,
  source: {
    options: sourceOptions,
    open: (conn, options, shape) => PostgresSource.open(conn.url, options, shape),
  },
  target: {
    options: targetOptions,
    open: (conn, options, shape) => PostgresTarget.open(conn.url, options, shape),
    check: async (conn, options, shape) =>
      (await import('./check.ts')).checkPostgresTarget(conn, options, shape),
  },
};
