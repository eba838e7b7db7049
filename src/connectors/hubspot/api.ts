import type { HttpClient } from '../http/client.ts';
import { HttpError } from '../http/errors.ts';

/** The parts of HubSpot's CRM v3 answers the connector reads. */
export type HubSpotObject = {
  id: string;
  properties: Record<string, string | null>;
  createdAt?: string;
  updatedAt?: string;
};
export type ListAnswer = { results: HubSpotObject[]; paging?: { next?: { after: string } } };
export type SearchAnswer = { total: number; results: HubSpotObject[]; paging?: { next?: { after: string } } };
export type Filter = { propertyName: string; operator: 'EQ' | 'GT' | 'GTE' | 'LT' | 'LTE'; value: string };
export type SearchRequest = {
  filterGroups: { filters: Filter[] }[];
  sorts: { propertyName: string; direction: 'ASCENDING' | 'DESCENDING' }[];
  properties: string[];
  limit: number;
};
export type BatchError = { message?: string; category?: string; context?: Record<string, string[]> };
export type BatchAnswer = { status?: string; results?: unknown[]; numErrors?: number; errors?: BatchError[] };

export const CONTACTS = '/crm/v3/objects/contacts';
/** The search API answers at most 10,000 results per query (documented limit). */
export const SEARCH_CAP = 10_000;

export function asAnswer<T extends { results: unknown }>(body: unknown, what: string): T {
  if (!body || typeof body !== 'object' || !Array.isArray((body as { results?: unknown }).results)) {
    throw new HttpError('HTTP_BAD_RESPONSE', `HubSpot ${what}: no results array in the answer`, { body });
  }
  return body as T;
}

/** A HubSpot record as a Sluice row: its id beside its properties. */
export function toRow(o: HubSpotObject): Record<string, unknown> {
  return { id: o.id, ...o.properties };
}

/** `lastmodifieddate` in ms; HubSpot sends ISO text. */
export function modifiedOf(o: HubSpotObject): number {
  const v = o.properties.lastmodifieddate ?? o.updatedAt;
  const t = v ? Date.parse(v) : Number.NaN;
  if (Number.isNaN(t))
    throw new HttpError('HTTP_BAD_RESPONSE', `HubSpot contact ${o.id} has no lastmodifieddate`);
  return t;
}

/** Inputs per batch read call (documented maximum). */
export const BATCH_READ_MAX = 100;

/**
 * The contacts with these ids (or values of the unique `idProperty`), as HubSpot holds them now, by
 * `POST …/batch/read`, 100 per call. Ids HubSpot does not know come back in a 207's errors and are
 * left out (gone, or never there).
 */
export async function readByIds(
  client: HttpClient,
  ids: readonly string[],
  req: { properties: readonly string[]; idProperty: string | null; signal: AbortSignal },
): Promise<HubSpotObject[]> {
  const calls: Promise<HubSpotObject[]>[] = [];
  for (let i = 0; i < ids.length; i += BATCH_READ_MAX) {
    const inputs = ids.slice(i, i + BATCH_READ_MAX).map((id) => ({ id }));
    calls.push(
      client
        .request({
          method: 'POST',
          path: `${CONTACTS}/batch/read`,
          query: { archived: 'false' },
          body: {
            properties: req.properties,
            propertiesWithHistory: [],
            inputs,
            ...(req.idProperty ? { idProperty: req.idProperty } : {}),
          },
          signal: req.signal,
          accept: [207],
        })
        .then((res) => asAnswer<{ results: HubSpotObject[] }>(res.body, 'batch read contacts').results),
    );
  }
  return (await Promise.all(calls)).flat();
}
