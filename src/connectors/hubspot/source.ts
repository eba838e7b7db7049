import type { CheckFinding, Estimate, ReadRequest, Source, SyncShape } from '../../core/ports.ts';
import type { Cursor, Json, Page, Row } from '../../core/types.ts';
import { callFinding } from '../http/check.ts';
import type { HttpClient } from '../http/client.ts';
import {
  asAnswer,
  CONTACTS,
  type Filter,
  type ListAnswer,
  modifiedOf,
  readByIds,
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
  /** Incremental reads stop this long before now: the search index lags writes. */
  searchLagMs: number;
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
 *
 * The search index lags writes by several seconds, so incremental reads end `searchLagMs` before
 * now (a lookback sweep ends at its `until`): what the index has not taken in yet is read by a later
 * run, never skipped. Searches count in the connection's window and in the search API's own.
 */
export class HubSpotSource implements Source {
  private readonly client: HttpClient;
  private readonly options: HubSpotSourceOptions;
  private readonly properties: string[];
  /** The property records are looked up by for `readByKeys`: the sync's key. */
  private readonly keyProperty: string;
  private readonly now: () => number;

  constructor(
    client: HttpClient,
    options: HubSpotSourceOptions,
    shape: SyncShape,
    now: () => number = Date.now,
  ) {
    this.client = client;
    this.options = options;
    this.properties = [...new Set([...options.properties, 'hs_object_id', 'lastmodifieddate', 'createdate'])];
    this.keyProperty = shape.key.length === 1 ? shape.key[0]! : 'id';
    this.now = now;
  }

  async read(req: ReadRequest): Promise<Page<Row>> {
    return req.phase === 'backfill'
      ? this.readList((req.cursor as ListCursor | null) ?? { after: null }, req)
      : this.readChanges(req.cursor as SearchCursor, req);
  }

  /** Lists one contact with the sync's properties: the token, and its read scope. */
  async check(): Promise<CheckFinding[]> {
    return callFinding(
      'HubSpot contacts',
      (signal) =>
        this.client.request({
          method: 'GET',
          path: CONTACTS,
          query: { limit: 1, properties: this.properties.join(','), archived: 'false' },
          signal,
        }),
      'the token reads contacts',
    );
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
    // A sweep ends at its `until` (every record at that time included); a read after the checkpoint
    // at what the index has surely taken in.
    const until = req.until as SearchCursor | null | undefined;
    const upTo = until ? until.ts : this.now() - this.options.searchLagMs;
    if (at.ts > upTo || (at.ts === upTo && at.past)) return { records, next: at as Cursor, done: true };
    while (records.length < req.limit) {
      const limit = Math.min(this.options.searchPageSize, req.limit - records.length);
      const step =
        at.id !== null
          ? await this.tieStep(at, limit, req.signal)
          : await this.mainStep(at, upTo, limit, req.signal);
      records.push(...step.records);
      at = step.next;
      if (step.exhausted) return { records, next: at as Cursor, done: true };
    }
    return { records, next: at as Cursor, done: false };
  }

  /** Records after `at` in time order; keeps only those certainly complete at the page's end. */
  private async mainStep(at: SearchCursor, upTo: number, limit: number, signal: AbortSignal): Promise<Step> {
    const filters: Filter[] = [
      { propertyName: 'lastmodifieddate', operator: at.past ? 'GT' : 'GTE', value: String(at.ts) },
      { propertyName: 'lastmodifieddate', operator: 'LTE', value: String(upTo) },
    ];
    const answer = await this.query([filters], 'lastmodifieddate', limit, signal);
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
    const res = await this.client.request({
      method: 'POST',
      path: `${CONTACTS}/search`,
      body,
      signal,
      kind: 'search',
    });
    return asAnswer<SearchAnswer>(res.body, 'search contacts');
  }

  /**
   * Where incremental starts: `searchLagMs` before the backfill starts. The backfill lists every
   * contact as it is when listed; a change made after it started is at a later time and read by
   * incremental (one made meanwhile may be read by both, which the target absorbs by key).
   */
  async highWaterMark(): Promise<Cursor> {
    return { ts: this.now() - this.options.searchLagMs, id: null, past: true } satisfies SearchCursor;
  }

  /** The `lastmodifieddate` of an incremental position, in ms; null for a backfill position. */
  timeOf(cursor: Cursor): number | null {
    const ts = (cursor as Partial<SearchCursor> | null)?.ts;
    return typeof ts === 'number' ? ts : null;
  }

  /** The contacts with these keys as HubSpot holds them now: batch read by id (or by the key property). */
  async readByKeys(keys: readonly (readonly Json[])[], req: { signal: AbortSignal }): Promise<Row[]> {
    const ids = keys.map((k) => String(k[0]));
    const byId = this.keyProperty === 'id' || this.keyProperty === 'hs_object_id';
    const found = await readByIds(this.client, ids, {
      properties: this.properties,
      idProperty: byId ? null : this.keyProperty,
      signal: req.signal,
    });
    return found.map(toRow);
  }

  async estimate(req: { phase: string; cursor: Cursor | null }): Promise<Estimate | null> {
    if (req.phase !== 'backfill') return null;
    const after = (req.cursor as ListCursor | null)?.after;
    const filterGroups =
      after && /^\d+$/.test(after)
        ? [{ filters: [{ propertyName: 'hs_object_id', operator: 'GTE', value: after }] }]
        : [];
    const body = { filterGroups, sorts: [], properties: ['hs_object_id'], limit: 1 };
    const res = await this.client.request({
      method: 'POST',
      path: `${CONTACTS}/search`,
      body,
      signal: AbortSignal.timeout(60_000),
      kind: 'search',
    });
    // The list pages by its own `after` token: a count from an id is close, not exact.
    return { records: asAnswer<SearchAnswer>(res.body, 'search contacts').total, exact: false };
  }

  /** A lookback sweep starts before every record `lookbackMs` earlier; it ends at `ReadRequest.until`. */
  rewind(cursor: Cursor, lookbackMs: number): Cursor {
    const c = cursor as SearchCursor;
    return { ts: c.ts - lookbackMs, id: null, past: false } satisfies SearchCursor;
  }
}

type Step = { records: Row[]; next: SearchCursor; exhausted: boolean };
