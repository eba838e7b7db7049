import { z } from 'zod';
import type { Connector, SyncShape } from '../../core/ports.ts';
import { authSchema, createAuth } from './auth.ts';
import { apiBudget, credentialId, labelOf } from './connection.ts';
import { pagingSchema } from './paging.ts';
import { clientFor, connectionFor, transportShape } from './settings.ts';
import { RestSource, type RestSourceOptions } from './source.ts';
import { RestTarget, type RestTargetOptions } from './target.ts';

const connection = z.strictObject({
  baseUrl: z.url({ error: 'expected the API base URL, e.g. https://api.example.com/v1' }),
  auth: authSchema.default({ type: 'none' }),
  /** Header that carries an idempotency key on writes, where the API supports one. */
  idempotencyHeader: z.string().nullable().default(null),
  ...transportShape,
});

const sourceOptions = z.strictObject({
  path: z.string().startsWith('/'),
  query: z.record(z.string(), z.string()).optional(),
  recordsPath: z.string().default(''),
  paging: pagingSchema,
  pageSize: z.number().int().positive().default(100),
  incremental: z
    .object({ param: z.string().min(1), format: z.enum(['iso', 'epoch_ms', 'epoch_s']).default('iso') })
    .optional(),
});

const targetOptions = z.strictObject({
  mode: z.enum(['batch', 'record']).default('batch'),
  method: z.enum(['POST', 'PUT', 'PATCH']).default('POST'),
  path: z.string().startsWith('/'),
  batchSize: z.number().int().positive().default(100),
  bodyKey: z.string().optional(),
  resultsPath: z.string().optional(),
  errorPath: z.string().default('error'),
  rejectStatuses: z.array(z.number().int().min(400).max(499)).default([400, 409, 422]),
});

type Conn = z.output<typeof connection>;

function client(conn: Conn, shape: SyncShape) {
  const connection = connectionFor(conn, conn, {
    identity: `${conn.baseUrl}#${credentialId(JSON.stringify(conn.auth))}`,
    label: labelOf('http', conn.baseUrl, shape),
    auth: () => createAuth(conn.auth, conn.timeoutMs),
  });
  return clientFor(conn.baseUrl, connection, conn, { idempotencyHeader: conn.idempotencyHeader });
}

/** Any REST API, described rather than coded: a list endpoint to read, an endpoint to write. */
export const httpConnector: Connector<Conn, RestSourceOptions, RestTargetOptions> = {
  type: 'http',
  connection,
  budget: (conn) => apiBudget(conn),
  source: {
    options: sourceOptions,
    open: async (conn, options, shape) => new RestSource(client(conn, shape), options, shape),
  },
  target: {
    options: targetOptions,
    open: async (conn, options, shape) => new RestTarget(client(conn, shape), options),
  },
};
