import type { CheckFinding, Estimate, ReadRequest, Source, SyncShape } from '../../core/ports.ts';
import type { Cursor, Json, Page, Phase, Row } from '../../core/types.ts';
import { callFinding } from '../http/check.ts';
import { type SalesforceApi, soqlDate, soqlField, soqlString } from './api.ts';

export type SalesforceSourceOptions = {
  object: string;
  fields: string[];
  /** An extra SOQL condition, e.g. `IsDeleted = false`. */
  where?: string | undefined;
  /** Records per queryMore chunk (Sforce-Query-Options batchSize, 200–2000). */
  chunkSize: number;
};

/** A position in (SystemModstamp, Id) order; `id` null means "at or after `ts`". */
type SfCursor = { ts: string; id: string | null };

/**
 * Salesforce records in (SystemModstamp, Id) order, for both phases: a keyset query per batch
 * (`SystemModstamp > ts OR (SystemModstamp = ts AND Id > id)`, `LIMIT batch`), with queryMore
 * followed inside the batch. SystemModstamp moves on every change, including system ones, so an
 * edit during the backfill lifts a record past the high-water mark where incremental picks it up.
 * A lookback sweep ends at its `until` (`SystemModstamp <= until`, its ties included).
 */
export class SalesforceSource implements Source {
  private readonly api: SalesforceApi;
  private readonly options: SalesforceSourceOptions;
  private readonly fields: string[];
  /** The field records are looked up by for `readByKeys`: the sync's key (`Id` unless said otherwise). */
  private readonly keyField: string;

  constructor(api: SalesforceApi, options: SalesforceSourceOptions, shape: SyncShape) {
    this.api = api;
    this.options = options;
    this.keyField = soqlField(shape.key.length === 1 ? shape.key[0]! : 'Id');
    this.fields = [...new Set(['Id', 'SystemModstamp', this.keyField, ...options.fields])].map(soqlField);
  }

  private conditions(
    cursor: SfCursor | null,
    phase: Phase,
    hwm: SfCursor | null,
    until: SfCursor | null = null,
  ): string {
    const parts: string[] = [];
    if (cursor) {
      const ts = soqlDate(cursor.ts);
      parts.push(
        cursor.id === null
          ? `SystemModstamp >= ${ts}`
          : `(SystemModstamp > ${ts} OR (SystemModstamp = ${ts} AND Id > ${soqlString(cursor.id)}))`,
      );
    }
    if (phase === 'backfill' && hwm) parts.push(`SystemModstamp <= ${soqlDate(hwm.ts)}`);
    if (phase === 'incremental' && until) parts.push(`SystemModstamp <= ${soqlDate(until.ts)}`);
    if (this.options.where) parts.push(`(${this.options.where})`);
    return parts.length ? ` WHERE ${parts.join(' AND ')}` : '';
  }

  async read(req: ReadRequest): Promise<Page<Row>> {
    const cursor = req.cursor as SfCursor | null;
    const where = this.conditions(
      cursor,
      req.phase,
      req.highWaterMark as SfCursor | null,
      (req.until ?? null) as SfCursor | null,
    );
    const soql = `SELECT ${this.fields.join(', ')} FROM ${soqlField(this.options.object)}${where} ORDER BY SystemModstamp, Id LIMIT ${req.limit}`;
    const answer = await this.api.query(soql, req.signal, this.options.chunkSize);
    const records = answer.records.map(({ attributes: _attributes, ...fields }) => fields as Row);
    const last = records.at(-1);
    const next: SfCursor | null = last ? { ts: String(last.SystemModstamp), id: String(last.Id) } : cursor;
    return { records, next: next as Cursor, done: records.length < req.limit };
  }

  /** One record of the read's fields and `where`: the credentials, the fields the object has, the filter. */
  async check(): Promise<CheckFinding[]> {
    const where = this.options.where ? ` WHERE (${this.options.where})` : '';
    const soql = `SELECT ${this.fields.join(', ')} FROM ${soqlField(this.options.object)}${where} LIMIT 1`;
    return callFinding(
      `Salesforce ${this.options.object}`,
      (signal) => this.api.query(soql, signal),
      `reads ${this.fields.join(', ')}`,
    );
  }

  async highWaterMark(): Promise<Cursor> {
    const where = this.options.where ? ` WHERE (${this.options.where})` : '';
    const soql = `SELECT SystemModstamp FROM ${soqlField(this.options.object)}${where} ORDER BY SystemModstamp DESC LIMIT 1`;
    const answer = await this.api.query(soql, AbortSignal.timeout(60_000));
    const ts = answer.records[0]?.SystemModstamp;
    return { ts: typeof ts === 'string' ? ts : new Date(0).toISOString(), id: null } satisfies SfCursor;
  }

  async estimate(req: {
    phase: Phase;
    cursor: Cursor | null;
    highWaterMark: Cursor | null;
  }): Promise<Estimate | null> {
    if (req.phase !== 'backfill') return null;
    const where = this.conditions(
      req.cursor as SfCursor | null,
      'backfill',
      req.highWaterMark as SfCursor | null,
    );
    const answer = await this.api.query(
      `SELECT COUNT() FROM ${soqlField(this.options.object)}${where}`,
      AbortSignal.timeout(60_000),
    );
    return { records: answer.totalSize, exact: true };
  }

  /** `SystemModstamp` at a position, in ms. */
  timeOf(cursor: Cursor): number | null {
    const ts = (cursor as Partial<SfCursor> | null)?.ts;
    return typeof ts === 'string' ? Date.parse(soqlDate(ts)) : null;
  }

  /** The records with these keys as the org holds them now: `WHERE <key> IN (…)`, 200 keys per query. */
  async readByKeys(keys: readonly (readonly Json[])[], req: { signal: AbortSignal }): Promise<Row[]> {
    const values = keys.map((k) => soqlString(String(k[0])));
    const queries: Promise<Row[]>[] = [];
    for (let i = 0; i < values.length; i += 200) {
      const list = values.slice(i, i + 200).join(', ');
      const extra = this.options.where ? ` AND (${this.options.where})` : '';
      const soql = `SELECT ${this.fields.join(', ')} FROM ${soqlField(this.options.object)} WHERE ${this.keyField} IN (${list})${extra}`;
      queries.push(
        this.api
          .query(soql, req.signal, this.options.chunkSize)
          .then((a) => a.records.map(({ attributes: _attributes, ...fields }) => fields as Row)),
      );
    }
    return (await Promise.all(queries)).flat();
  }

  rewind(cursor: Cursor, lookbackMs: number): Cursor {
    const c = cursor as SfCursor;
    return {
      ts: new Date(Date.parse(soqlDate(c.ts)) - lookbackMs).toISOString(),
      id: null,
    } satisfies SfCursor;
  }
}
