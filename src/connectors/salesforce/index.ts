import { z } from 'zod';
import type { Connector } from '../../core/ports.ts';
import { type Auth, createAuth } from '../http/auth.ts';
import { clientFor, transportShape } from '../http/settings.ts';
import { SalesforceApi } from './api.ts';
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
  batchSize: z.number().int().min(1).max(200).default(200),
  omit: z
    .array(z.string())
    .default(['Id', 'SystemModstamp', 'LastModifiedDate', 'CreatedDate', 'attributes']),
});

type Conn = z.output<typeof connection>;

function api(conn: Conn): SalesforceApi {
  const auth: Auth = conn.clientId
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
  return new SalesforceApi(clientFor(conn.instanceUrl ?? '', auth, conn), auth, conn.apiVersion);
}

/** Salesforce sObjects (Contact by default): SOQL + queryMore to read, sObject Collections upsert to write. */
export const salesforceConnector: Connector<Conn, SalesforceSourceOptions, SalesforceTargetOptions> = {
  type: 'salesforce',
  connection,
  source: { options: sourceOptions, open: async (conn, options) => new SalesforceSource(api(conn), options) },
  target: { options: targetOptions, open: async (conn, options) => new SalesforceTarget(api(conn), options) },
};
