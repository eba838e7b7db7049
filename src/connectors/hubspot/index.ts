import { z } from 'zod';
import type { Connector } from '../../core/ports.ts';
import { type Auth, authSchema, createAuth } from '../http/auth.ts';
import { clientFor, transportShape } from '../http/settings.ts';
import { HubSpotSource, type HubSpotSourceOptions } from './source.ts';
import { HubSpotTarget, type HubSpotTargetOptions } from './target.ts';

const limit = z.strictObject({ requests: z.number().int().positive(), perMs: z.number().int().positive() });

const connection = z
  .object({
    baseUrl: z.url().default('https://api.hubapi.com'),
    /** A private app's access token; or use `auth` for OAuth. */
    accessToken: z.string().min(1).optional(),
    auth: authSchema.optional(),
    ...transportShape,
    /**
     * HubSpot's documented burst limit is per app and account: 100 requests per 10 s for public
     * (OAuth) apps, 100–190 for private apps by tier. The default stays at the lowest.
     */
    rateLimit: limit.nullable().default({ requests: 100, perMs: 10_000 }),
    /** The CRM search API has its own, lower limit (4 requests per second per token, documented). */
    searchRateLimit: limit.nullable().default({ requests: 4, perMs: 1_000 }),
  })
  .refine((c) => c.accessToken || c.auth, {
    error: 'expected accessToken (private app) or auth (OAuth)',
    path: ['accessToken'],
  });

const sourceOptions = z.strictObject({
  properties: z.array(z.string().min(1)).default(['email', 'firstname', 'lastname']),
  pageSize: z.number().int().min(1).max(100).default(100),
  searchPageSize: z.number().int().min(1).max(200).default(100),
});

const targetOptions = z.strictObject({
  idProperty: z.string().min(1).default('email'),
  batchSize: z.number().int().min(1).max(100).default(100),
  omit: z
    .array(z.string())
    .default(['id', 'hs_object_id', 'createdate', 'lastmodifieddate', 'createdAt', 'updatedAt', 'archived']),
});

type Conn = z.output<typeof connection>;

function authOf(conn: Conn): Auth {
  return createAuth(conn.auth ?? { type: 'bearer', token: conn.accessToken! }, conn.timeoutMs);
}

/** HubSpot CRM v3 contacts: list + search to read, batch upsert to write. */
export const hubspotConnector: Connector<Conn, HubSpotSourceOptions, HubSpotTargetOptions> = {
  type: 'hubspot',
  connection,
  source: {
    options: sourceOptions,
    open: async (conn, options) => {
      const auth = authOf(conn);
      return new HubSpotSource(
        clientFor(conn.baseUrl, auth, conn),
        clientFor(conn.baseUrl, auth, conn, { rateLimit: conn.searchRateLimit }),
        options,
      );
    },
  },
  target: {
    options: targetOptions,
    open: async (conn, options) => new HubSpotTarget(clientFor(conn.baseUrl, authOf(conn), conn), options),
  },
};
