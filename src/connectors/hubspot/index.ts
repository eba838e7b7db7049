import { z } from 'zod';
import type { Connector, SyncShape } from '../../core/ports.ts';
import { type Auth, authSchema, createAuth } from '../http/auth.ts';
import { apiBudget, credentialId, labelOf } from '../http/connection.ts';
import { quotaSchema } from '../http/quota.ts';
import { clientFor, connectionFor, transportShape, windowSchema } from '../http/settings.ts';
import { CONTACTS } from './api.ts';
import { HubSpotSource, type HubSpotSourceOptions } from './source.ts';
import { HubSpotTarget, type HubSpotTargetOptions } from './target.ts';

const connection = z
  .object({
    baseUrl: z.url().default('https://api.hubapi.com'),
    /** A private app's access token; or use `auth` for OAuth. */
    accessToken: z.string().min(1).optional(),
    auth: authSchema.optional(),
    ...transportShape,
    /**
     * HubSpot's documented burst limit is per app and account: 100 requests per 10 s for public
     * (OAuth) apps and free/starter accounts, 190 for private apps on Professional and Enterprise.
     * The default stays at the lowest. Never more than this in any 10 s, over every sync on the
     * connection in the process.
     */
    rateLimit: windowSchema.nullable().default({ requests: 100, perMs: 10_000 }),
    /**
     * The CRM search API has its own, lower limit (4 requests per second per token, documented); a
     * search counts in both windows.
     */
    searchRateLimit: windowSchema.nullable().default({ requests: 4, perMs: 1_000 }),
    /**
     * HubSpot's daily limit (250,000 to 1,000,000 calls by tier, reset at midnight in the account's
     * time zone): set the share Sluice may use, e.g. `{ perDay: 200000, timeZone: 'America/New_York' }`.
     */
    quota: quotaSchema.nullable().default(null),
  })
  .refine((c) => c.accessToken || c.auth, {
    error: 'expected accessToken (private app) or auth (OAuth)',
    path: ['accessToken'],
  });

const sourceOptions = z.strictObject({
  properties: z.array(z.string().min(1)).default(['email', 'firstname', 'lastname']),
  pageSize: z.number().int().min(1).max(100).default(100),
  searchPageSize: z.number().int().min(1).max(200).default(100),
  /**
   * How far behind the search index may be: incremental reads stop this long before now, so a change
   * the index has not taken in yet is read by a later run (HubSpot: changes take several seconds to
   * reach search). @defaultValue 30000
   */
  searchLagMs: z.number().int().min(0).default(30_000),
});

const targetOptions = z.strictObject({
  idProperty: z.string().min(1).default('email'),
  batchSize: z.number().int().min(1).max(100).default(100),
  omit: z
    .array(z.string())
    .default(['id', 'hs_object_id', 'createdate', 'lastmodifieddate', 'createdAt', 'updatedAt', 'archived']),
});

type Conn = z.output<typeof connection>;

function clientOf(conn: Conn, shape: SyncShape) {
  const auth = conn.auth ?? { type: 'bearer' as const, token: conn.accessToken! };
  const connection = connectionFor(conn, conn, {
    identity: `${conn.baseUrl}#${credentialId(JSON.stringify(auth))}#search=${JSON.stringify(conn.searchRateLimit)}`,
    label: labelOf('hubspot', conn.baseUrl, shape),
    auth: (): Auth => createAuth(auth, conn.timeoutMs),
  });
  return clientFor(conn.baseUrl, connection, conn, { kinds: { search: conn.searchRateLimit } });
}

/** HubSpot CRM v3 contacts: list + search to read, batch upsert to write. */
export const hubspotConnector: Connector<Conn, HubSpotSourceOptions, HubSpotTargetOptions> = {
  type: 'hubspot',
  connection,
  budget: (conn) => apiBudget(conn),
  source: {
    options: sourceOptions,
    open: async (conn, options, shape) => new HubSpotSource(clientOf(conn, shape), options, shape),
  },
  target: {
    options: targetOptions,
    open: async (conn, options, shape) => new HubSpotTarget(clientOf(conn, shape), options),
    // HubSpot tells a token's write scope only on a write: the check reads, by the upsert's property.
    check: async (conn, options, shape) =>
      (await import('../http/check.ts')).callFinding(
        'HubSpot contacts',
        (signal) =>
          clientOf(conn, shape).request({
            method: 'GET',
            path: CONTACTS,
            query: { limit: 1, properties: options.idProperty, archived: 'false' },
            signal,
          }),
        'the token reads contacts (its write scope shows on the first write)',
      ),
  },
};
