import { compareValues, timeOfValue } from '../../core/keyset.ts';
import type { CheckFinding, ReadRequest, Source, SyncShape } from '../../core/ports.ts';
import type { Cursor, Page, Row } from '../../core/types.ts';
import { callFinding } from './check.ts';
import type { HttpClient } from './client.ts';
import { HttpError } from './errors.ts';
import { nextToken, type PageToken, type Paging, pageRequest } from './paging.ts';
import { getPath } from './settings.ts';

export type RestSourceOptions = {
  path: string;
  query?: Record<string, string> | undefined;
  /** Dot path to the array of records in the body; '' when the body is the array. */
  recordsPath: string;
  paging: Paging;
  pageSize: number;
  /** The filter that lists records changed since a value, e.g. `updated_since` (inclusive, >=). */
  incremental?: { param: string; format: 'iso' | 'epoch_ms' | 'epoch_s' } | undefined;
};

/**
 * `since`: the incremental filter value of this listing (null in backfill); `token`: where the
 * listing stands; `seen`: records read in it (orders cursors of one listing); `max`: the highest
 * cursor-field value seen, where the next listing starts; `size`: the page size, fixed per listing
 * because page numbers and offsets mean nothing if it changes.
 */
type RestCursor = {
  since: string | number | null;
  token: PageToken;
  seen: number;
  max: string | number | null;
  size: number | null;
};

const start = (since: string | number | null): RestCursor => ({
  since,
  token: null,
  seen: 0,
  max: null,
  size: null,
});

/**
 * A declarative REST listing. Backfill pages through the whole list; incremental lists
 * `param >= since` and, once that listing ends, starts the next from the highest cursor value seen.
 * Re-reading the records at that value is harmless: the target upserts by key. A lookback sweep
 * (`ReadRequest.until`) lists from its start and keeps only records at or before `until`'s value: the
 * API filters by a lower bound only, so the bound above is applied here.
 */
export class RestSource implements Source {
  private readonly client: HttpClient;
  private readonly options: RestSourceOptions;
  private readonly shape: SyncShape;

  constructor(client: HttpClient, options: RestSourceOptions, shape: SyncShape) {
    this.client = client;
    this.options = options;
    this.shape = shape;
  }

  async read(req: ReadRequest): Promise<Page<Row>> {
    const incremental = req.phase === 'incremental';
    let c: RestCursor = (req.cursor as RestCursor | null) ?? start(null);
    if (incremental && !this.options.incremental) return { records: [], next: c as Cursor, done: true };
    const size = c.size ?? Math.min(this.options.pageSize, req.limit);
    const records: Row[] = [];
    let done = false;
    const until = incremental ? this.valueOf(req.until as RestCursor | null | undefined) : null;
    const field = this.shape.cursorField;
    // Whole pages only, so the next read resumes exactly at a page boundary.
    do {
      const page = await this.fetchPage(c, size, req.signal);
      if (until !== null && field) {
        for (const r of page.records) {
          const v = r[field];
          if (!(typeof v === 'string' || typeof v === 'number') || compareTime(v, until) <= 0)
            records.push(r);
        }
      } else records.push(...page.records);
      const max = this.maxOf(page.records, c.max);
      if (page.next === null) {
        done = true;
        c = incremental
          ? start(max ?? c.since)
          : { ...c, token: null, seen: c.seen + page.records.length, size };
      } else {
        c = { ...c, token: page.next, seen: c.seen + page.records.length, max, size };
      }
    } while (!done && records.length + size <= req.limit);
    return { records, next: c as Cursor, done };
  }

  /** Reads the first page (one record) as a backfill would start: the URL, the credentials, the paging. */
  async check(): Promise<CheckFinding[]> {
    return callFinding(
      `GET ${this.options.path}`,
      (signal) => this.fetchPage(start(null), 1, signal),
      'the first page reads',
    );
  }

  private async fetchPage(
    c: RestCursor,
    size: number,
    signal: AbortSignal,
  ): Promise<{ records: Row[]; next: PageToken }> {
    const { paging, path, query, incremental } = this.options;
    const r = pageRequest(paging, path, c.token, size);
    const q: Record<string, string | number> = {
      ...(c.token === null || paging.style !== 'link' ? query : {}),
      ...r.query,
    };
    if (incremental && c.since !== null && (c.token === null || paging.style !== 'link'))
      q[incremental.param] = c.since;
    const res = await this.client.request({ method: 'GET', path: r.path, query: q, signal });
    const list = getPath(res.body, this.options.recordsPath);
    if (!Array.isArray(list)) {
      throw new HttpError(
        'HTTP_BAD_RESPONSE',
        `GET ${path}: no array of records at "${this.options.recordsPath}"`,
        { body: res.body },
      );
    }
    return {
      records: list as Row[],
      next: nextToken(paging, c.token, size, list.length, res.body, res.headers),
    };
  }

  private maxOf(records: Row[], max: string | number | null): string | number | null {
    const field = this.shape.cursorField;
    if (!field) return max;
    let best = max;
    for (const r of records) {
      const v = r[field];
      if ((typeof v === 'string' || typeof v === 'number') && (best === null || compareTime(v, best) > 0))
        best = v;
    }
    return best;
  }

  async highWaterMark(): Promise<Cursor> {
    const inc = this.options.incremental;
    if (!inc) return null;
    const now = Date.now();
    const since =
      inc.format === 'iso'
        ? new Date(now).toISOString()
        : inc.format === 'epoch_ms'
          ? now
          : Math.floor(now / 1000);
    return start(since) as Cursor;
  }

  /** A listing position's cursor value: the highest seen in it, else where it started. */
  private valueOf(c: RestCursor | null | undefined): string | number | null {
    return c ? (c.max ?? c.since) : null;
  }

  /** Where a listing starts (its `since`), in ms: the records it reads are at or after it. */
  timeOf(cursor: Cursor): number | null {
    const c = cursor as RestCursor | null;
    if (!c || c.since === null) return null;
    if (typeof c.since === 'number' && this.options.incremental?.format === 'epoch_s') return c.since * 1000;
    return timeOfValue(c.since);
  }

  rewind(cursor: Cursor, lookbackMs: number): Cursor {
    const c = cursor as RestCursor;
    if (c.since === null) return cursor;
    const since =
      typeof c.since === 'number'
        ? c.since - (this.options.incremental?.format === 'epoch_s' ? lookbackMs / 1000 : lookbackMs)
        : new Date(Date.parse(c.since) - lookbackMs).toISOString();
    return start(since) as Cursor;
  }
}

/** Orders timestamps given as ISO text or epoch numbers. */
function compareTime(a: string | number | null, b: string | number | null): number {
  if (typeof a === 'string' && typeof b === 'string') {
    const ta = Date.parse(a);
    const tb = Date.parse(b);
    if (!Number.isNaN(ta) && !Number.isNaN(tb)) return ta - tb;
  }
  return compareValues(a, b);
}
