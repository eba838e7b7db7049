import { z } from 'zod';
import type { Connector, SyncShape } from '../../core/ports.ts';
import { type Auth, createAuth } from '../http/auth.ts';
import { apiBudget, credentialId, labelOf } from '../http/connection.ts';
import { quotaSchema } from '../http/quota.ts';
import { clientFor, connectionFor, transportShape } from '../http/settings.ts';
import { SalesforceApi, soqlField } from './api.ts';
import { SalesforceSource, type SalesforceSourceOptions } from './source.ts';
import { SalesforceTarget, type SalesforceTargetOptions } from './target.ts';

const connection = z
  .object({
    /** Where tokens come from: https://login.salesforce.com, https://test.salesforce.com or a My Domain URL. */
    loginUrl: z.url().default('https://login.salesforce.com'),
    clientId: z.string().min(1).optional(),
    clientSecret: z.string().optional(),
    /** With a refresh token the refresh_token grant is used, else client_credentials. */
    refreshToken: z.string().optional(),
    /** Alternatively, a session already in hand. */
    accessToken: z.string().optional(),
    instanceUrl: z.url().optional(),
    apiVersion: z
      .string()
      .regex(/^\d+\.\d$/, { error: 'expected an API version such as "60.0"' })
      .default('60.0'),
    ...transportShape,
    /**
     * Salesforce's daily API request limit is per org over a rolling 24 hours (the org's allocation,
     * shared by every integration): set the share Sluice may use, e.g. `{ perDay: 50000 }`.
     */
    quota: quotaSchema
      .extend({ window: z.enum(['day', 'rolling']).default('rolling') })
      .nullable()
      .default(null),
  })
  .refine((c) => c.clientId || (c.accessToken && c.instanceUrl), {
    error: 'expected clientId (OAuth) or accessToken with instanceUrl',
    path: ['clientId'],
  });

const sourceOptions = z.strictObject({
  object: z.string().default('Contact'),
  fields: z.array(z.string().min(1)).default(['FirstName', 'LastName', 'Email']),
  where: z.string().optional(),
  chunkSize: z.number().int().min(200).max(2000).default(2000),
});

const targetOptions = z.strictObject({
  object: z.string().default('Contact'),
  externalIdField: z.string().min(1),
  /**
   * Whether the external id field was defined case-sensitive; by default Salesforce matches external
   * ids case-insensitively, so `A-1` and `a-1` are one record. @defaultValue false
   */
  externalIdCaseSensitive: z.boolean().default(false),
  batchSize: z.number().int().min(1).max(200).default(200),
  omit: z
    .array(z.string())
    .default(['Id', 'SystemModstamp', 'LastModifiedDate', 'CreatedDate', 'attributes']),
});

type Conn = z.output<typeof connection>;

function api(conn: Conn, shape: SyncShape): SalesforceApi {
  const makeAuth = (): Auth =>
    conn.clientId
      ? createAuth(
          {
            type: 'oauth2',
            grant: conn.refreshToken ? 'refresh_token' : 'client_credentials',
            tokenUrl: `${conn.loginUrl.replace(/\/+$/, '')}/services/oauth2/token`,
            clientId: conn.clientId,
            clientSecret: conn.clientSecret,
            refreshToken: conn.refreshToken,
            accessToken: conn.accessToken,
            clientAuth: 'body',
          },
          conn.timeoutMs,
        )
      : createAuth({ type: 'bearer', token: conn.accessToken! });
  const where = conn.clientId ? conn.loginUrl : (conn.instanceUrl ?? '');
  const connection = connectionFor(conn, conn, {
    identity: `${where}#${credentialId(conn.clientId, conn.refreshToken, conn.accessToken)}`,
    label: labelOf('salesforce', conn.instanceUrl ?? conn.loginUrl, shape),
    auth: makeAuth,
  });
  return new SalesforceApi(
    clientFor(conn.instanceUrl ?? '', connection, conn),
    connection.auth,
    conn.apiVersion,
  );
}

/** Salesforce sObjects (Contact by default): SOQL + queryMore to read, sObject Collections upsert to write. */
export const salesforceConnector: Connector<Conn, SalesforceSourceOptions, SalesforceTargetOptions> = {
  type: 'salesforce',
  connection,
  budget: (conn) => apiBudget(conn),
  source: {
    options: sourceOptions,
    open: async (conn, options, shape) => new SalesforceSource(api(conn, shape), options, shape),
  },
  target: {
    options: targetOptions,
    open: async (conn, options, shape) => new SalesforceTarget(api(conn, shape), options),
    // Upserts go by the external id field: a query names it, and refuses it where the object lacks it.
    check: async (conn, options, shape) => {
      const object = soqlField(options.object);
      const field = soqlField(options.externalIdField);
      return (await import('../http/check.ts')).callFinding(
        `Salesforce ${options.object}`,
        (signal) => api(conn, shape).query(`SELECT Id, ${field} FROM ${object} LIMIT 1`, signal),
        `the credentials read it, and it has ${options.externalIdField}`,
      );
    },
  },
};
