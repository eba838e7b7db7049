import type { Estimate, ReadRequest, Source } from '../../core/ports.ts';
import type { Cursor, Page, Row } from '../../core/types.ts';
import type { HttpClient } from '../http/client.ts';
import {
  asAnswer,
  CONTACTS,
  type Filter,
  type ListAnswer,
  modifiedOf,
  type SearchAnswer,
  type SearchRequest,
  toRow,
} from './api.ts';

export type HubSpotSourceOptions = {
  properties: string[];
  /** Records per list call (HubSpot's maximum is 100). */
  pageSize: number;
  /** Records per search call (HubSpot's maximum is 200). */
  searchPageSize: number;
};

/** Backfill: the list endpoint's `after` token, in id order. */
type ListCursor = { after: string | null };
/**
 * Incremental: a position in (lastmodifieddate, id) order. `id` null means "before every record at
 * `ts`"; `past` means "after every record at `ts`"; otherwise after record `id` among those at `ts`.
 */
type SearchCursor = { ts: number; id: string | null; past: boolean };

/**
 * HubSpot contacts. Backfill lists every contact in id order. Incremental uses the search API,
 * which has two traps: it answers at most 10,000 results per query, and it sorts by one property
 * only, with no promised order among equal values. So every search call is a fresh query starting
 * at the last position (never paging past the cap), and the records sharing one timestamp are read
 * by a second kind of query — `lastmodifieddate = ts AND hs_object_id > id`, sorted by id — whenever
 * a page could have cut through them. 25,000 contacts modified in the same millisecond cost 250
 * calls and lose none.
 */
export class HubSpotSource implements Source {
  private readonly client: HttpClient;
  private readonly search: HttpClient;
  private readonly options: HubSpotSourceOptions;
  private readonly properties: string[];

  /** `search` is a client of its own: HubSpot limits the search API separately (a few calls a second). */
  constructor(client: HttpClient, search: HttpClient, options: HubSpotSourceOptions) {
    this.client = client;
    this.search = search;
    this.options = options;
    this.properties = [...new Set([...options.properties, 'hs_object_id', 'lastmodifieddate', 'createdate'])];
  }

  async read(req: ReadRequest): Promise<Page<Row>> {
    return req.phase === 'backfill'
      ? this.readList((req.cursor as ListCursor | null) ?? { after: null }, req)
      : this.readChanges(req.cursor as SearchCursor, req);
  }

  private async readList(cursor: ListCursor, req: ReadRequest): Promise<Page<Row>> {
    const records: Row[] = [];
    let after = cursor.after;
    while (records.length < req.limit) {
      const limit = Math.min(this.options.pageSize, req.limit - records.length);
      const query = {
        limit,
        properties: this.properties.join(','),
        archived: 'false',
        after: after ?? undefined,
      };
      const res = await this.client.request({ method: 'GET', path: CONTACTS, query, signal: req.signal });
      const answer = asAnswer<ListAnswer>(res.body, 'list contacts');
      records.push(...answer.results.map(toRow));
      const next = answer.paging?.next?.after;
      if (!next) return { records, next: { after } as Cursor, done: true };
      after = next;
    }
    return { records, next: { after } as Cursor, done: false };
  }

  private async readChanges(start: SearchCursor, req: ReadRequest): Promise<Page<Row>> {
    const records: Row[] = [];
    let at = start;
    while (records.length < req.limit) {
      const limit = Math.min(this.options.searchPageSize, req.limit - records.length);
      const step =
        at.id !== null
          ? await this.tieStep(at, limit, req.signal)
          : await this.mainStep(at, limit, req.signal);
      records.push(...step.records);
      at = step.next;
      if (step.exhausted) return { records, next: at as Cursor, done: true };
    }
    return { records, next: at as Cursor, done: false };
  }

  /** Records after `at` in time order; keeps only those certainly complete at the page's end. */
  private async mainStep(at: SearchCursor, limit: number, signal: AbortSignal): Promise<Step> {
    const filter: Filter = {
      propertyName: 'lastmodifieddate',
      operator: at.past ? 'GT' : 'GTE',
      value: String(at.ts),
    };
    const answer = await this.query([[filter]], 'lastmodifieddate', limit, signal);
    const found = answer.results;
    if (found.length < limit) {
      // Everything after `at` is here, ties included: the position is past the last timestamp seen.
      const last = found.at(-1);
      return {
        records: found.map(toRow),
        next: last ? { ts: modifiedOf(last), id: null, past: true } : at,
        exhausted: true,
      };
    }
    const lastTs = modifiedOf(found.at(-1)!);
    const before = found.filter((o) => modifiedOf(o) < lastTs);
    // A full page may cut through the records at its last timestamp: keep those before it, and start
    // the next query at that timestamp. A page entirely at one timestamp goes through it by id.
    if (before.length === 0) return this.tieStep({ ts: lastTs, id: null, past: false }, limit, signal);
    return { records: before.map(toRow), next: { ts: lastTs, id: null, past: false }, exhausted: false };
  }

  /** Records at exactly `at.ts` after id `at.id`, in id order: a keyset the search API can page without a cap. */
  private async tieStep(at: SearchCursor, limit: number, signal: AbortSignal): Promise<Step> {
    const filters: Filter[] = [{ propertyName: 'lastmodifieddate', operator: 'EQ', value: String(at.ts) }];
    if (at.id !== null) filters.push({ propertyName: 'hs_object_id', operator: 'GT', value: at.id });
    const answer = await this.query([filters], 'hs_object_id', limit, signal);
    const found = answer.results;
    const records = found.map(toRow);
    if (found.length < limit) return { records, next: { ts: at.ts, id: null, past: true }, exhausted: false };
    return { records, next: { ts: at.ts, id: found.at(-1)!.id, past: false }, exhausted: false };
  }

  private async query(
    groups: Filter[][],
    sortBy: string,
    limit: number,
    signal: AbortSignal,
  ): Promise<SearchAnswer> {
    const body: SearchRequest = {
      filterGroups: groups.map((filters) => ({ filters })),
      sorts: [{ propertyName: sortBy, direction: 'ASCENDING' }],
      properties: this.properties,
      limit,
    };
    const res = await this.search.request({ method: 'POST', path: `${CONTACTS}/search`, body, signal });
    return asAnswer<SearchAnswer>(res.body, 'search contacts');
  }

  /** Where incremental starts: after every record at the newest `lastmodifieddate` when the backfill starts. */
  async highWaterMark(): Promise<Cursor> {
    const body = {
      filterGroups: [],
      sorts: [{ propertyName: 'lastmodifieddate', direction: 'DESCENDING' }],
      properties: ['lastmodifieddate'],
      limit: 1,
    };
    const res = await this.search.request({
      method: 'POST',
      path: `${CONTACTS}/search`,
      body,
      signal: AbortSignal.timeout(60_000),
    });
    const newest = asAnswer<SearchAnswer>(res.body, 'search contacts').results[0];
    return { ts: newest ? modifiedOf(newest) : 0, id: null, past: true } satisfies SearchCursor;
  }

  async estimate(req: { phase: string; cursor: Cursor | null }): Promise<Estimate | null> {
    if (req.phase !== 'backfill') return null;
    const after = (req.cursor as ListCursor | null)?.after;
    const filterGroups =
      after && /^\d+$/.test(after)
        ? [{ filters: [{ propertyName: 'hs_object_id', operator: 'GTE', value: after }] }]
        : [];
    const body = { filterGroups, sorts: [], properties: ['hs_object_id'], limit: 1 };
    const res = await this.search.request({
      method: 'POST',
      path: `${CONTACTS}/search`,
      body,
      signal: AbortSignal.timeout(60_000),
    });
    // The list pages by its own `after` token: a count from an id is close, not exact.
    return { records: asAnswer<SearchAnswer>(res.body, 'search contacts').total, exact: false };
  }

  rewind(cursor: Cursor, lookbackMs: number): Cursor {
    const c = cursor as SearchCursor;
    return { ts: c.ts - lookbackMs, id: null, past: false } satisfies SearchCursor;
  }
}

type Step = { records: Row[]; next: SearchCursor; exhausted: boolean };
