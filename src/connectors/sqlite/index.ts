import { resolve } from 'node:path';
import { z } from 'zod';
import type { Connector } from '../../core/ports.ts';
import { SqliteSource, type SqliteSourceOptions } from './source.ts';
import { SqliteTarget, type SqliteTargetOptions } from './target.ts';

const connection = z.strictObject({
  /** Path of the database file, relative to the config file's folder. */
  path: z.string({ error: 'expected the path of a SQLite database file' }).min(1),
});

const sourceOptions = z.strictObject({
  table: z.string({ error: 'expected a table name' }).min(1),
  columns: z.array(z.string()).min(1).optional(),
  /** An SQL condition rows must meet, e.g. `deleted = 0`. */
  where: z.string().optional(),
});

const targetOptions = z.strictObject({
  table: z.string({ error: 'expected a table name' }).min(1),
  mode: z.enum(['upsert', 'insert']).default('upsert'),
  synchronous: z.enum(['FULL', 'NORMAL']).default('FULL'),
  /** Create a missing table on the first write, declaring types that keep the source's values; false refuses (TABLE_MISSING). @defaultValue true */
  create: z.boolean({ error: 'expected true or false' }).default(true),
});

export const sqliteConnector: Connector<
  z.output<typeof connection>,
  SqliteSourceOptions,
  SqliteTargetOptions
> = {
  type: 'sqlite',
  connection,
  source: {
    options: sourceOptions,
    open: async (conn, options, shape) => new SqliteSource(resolve(shape.baseDir, conn.path), options, shape),
  },
  target: {
    options: targetOptions,
    open: async (conn, options, shape) => new SqliteTarget(resolve(shape.baseDir, conn.path), options, shape),
    check: async (conn, options, shape) =>
      (await import('./check.ts')).checkSqliteTarget(conn, options, shape),
  },
};
