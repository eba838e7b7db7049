import type { Target } from '../../core/ports.ts';
import type { Rejected, Row, WriteResult } from '../../core/types.ts';
import { HttpError } from '../http/errors.ts';
import { wait } from '../http/limiter.ts';
import { type SalesforceApi, type SaveResult, soqlField } from './api.ts';
import { RowsLockedError, UnknownFieldError, unknownFields } from './errors.ts';

export type SalesforceTargetOptions = {
  object: string;
  /** The external id field records are upserted by, e.g. `External_Id__c` or `Email` if marked unique external id. */
  externalIdField: string;
  /** Whether the external id field matches case-sensitively (Salesforce's default: it does not). */
  externalIdCaseSensitive: boolean;
  /** Records per sObject Collections call (Salesforce's maximum is 200). */
  batchSize: number;
  /** Fields never sent (read-only system fields a Salesforce source emits). */
  omit: string[];
};

/** Times a record refused with `UNABLE_TO_LOCK_ROW` is sent again within one write, and the first wait. */
const LOCK_RETRIES = 4;
const LOCK_BACKOFF_MS = 250;

/**
 * Upsert by external id through sObject Collections with `allOrNone: false`: Salesforce answers one
 * result per record, in order; records with `success: false` are rejected with Salesforce's
 * `statusCode: message (fields)` and the rest of the batch is written. Two kinds of refusal are not
 * the record's fault and are not dead-lettered: `UNABLE_TO_LOCK_ROW` (another transaction holds the
 * row: sent again after a pause, and failing the write as a transient error if it persists), and
 * `INVALID_FIELD` for the whole call (the sync sends a field the object does not have: the write
 * fails at once, naming it).
 */
export class SalesforceTarget implements Target {
  private readonly api: SalesforceApi;
  private readonly options: SalesforceTargetOptions;
  private readonly path: string;
  private readonly omit: ReadonlySet<string>;

  constructor(api: SalesforceApi, options: SalesforceTargetOptions) {
    this.api = api;
    this.options = options;
    this.omit = new Set(options.omit);
    this.path = `${api.dataPath}/composite/sobjects/${soqlField(options.object)}/${soqlField(options.externalIdField)}`;
  }

  async write(records: Row[], req: { signal: AbortSignal }): Promise<WriteResult<Row>> {
    const ext = this.options.externalIdField;
    const rejected: Rejected<Row>[] = [];
    // Two records with one external id in a call fail both (DUPLICATE_EXTERNAL_ID); keep the newest.
    // External ids match case-insensitively unless the field says otherwise: `A-1` and `a-1` are one.
    const latest = new Map<string, Row>();
    for (const record of records) {
      const id = record[ext];
      if (id === null || id === undefined || id === '')
        rejected.push({ record, reason: `"${ext}" is empty; Salesforce upserts by it` });
      else {
        const key = this.options.externalIdCaseSensitive ? String(id) : String(id).toLowerCase();
        latest.delete(key);
        latest.set(key, record);
      }
    }
    let written = records.length - rejected.length - latest.size;
    const unique = [...latest.values()];
    const chunks: Row[][] = [];
    for (let i = 0; i < unique.length; i += this.options.batchSize)
      chunks.push(unique.slice(i, i + this.options.batchSize));
    const results = await Promise.all(chunks.map((chunk) => this.upsertLocked(chunk, req.signal)));
    for (const r of results) {
      written += r.written;
      rejected.push(...r.rejected);
    }
    return { written, rejected };
  }

  /** Upserts a chunk, sending records refused for a row lock again until they go or the retries run out. */
  private async upsertLocked(chunk: Row[], signal: AbortSignal): Promise<WriteResult<Row>> {
    let pending = chunk;
    let written = 0;
    const rejected: Rejected<Row>[] = [];
    for (let attempt = 0; ; attempt++) {
      const r = await this.upsert(pending, signal);
      written += r.written;
      rejected.push(...r.rejected);
      if (r.locked.length === 0) return { written, rejected };
      if (attempt >= LOCK_RETRIES) throw new RowsLockedError(r.locked.length, attempt + 1, r.lockReason);
      const step = LOCK_BACKOFF_MS * 2 ** attempt;
      await wait(step / 2 + (Math.random() * step) / 2, signal);
      pending = r.locked;
    }
  }

  private async upsert(
    chunk: Row[],
    signal: AbortSignal,
  ): Promise<WriteResult<Row> & { locked: Row[]; lockReason: string }> {
    const attributes = { type: this.options.object };
    const omit = this.omit;
    let bigints = false;
    const records = chunk.map((record) => {
      const fields: Record<string, unknown> = { attributes };
      for (const k in record) {
        const v = record[k];
        if (v === undefined || omit.has(k)) continue;
        if (typeof v === 'bigint') bigints = true;
        fields[k] = v;
      }
      return fields;
    });
    const body = { allOrNone: false, records };
    let res: Awaited<ReturnType<SalesforceApi['request']>>;
    try {
      res = await this.api.request({ method: 'PATCH', path: this.path, body, bigints, signal });
    } catch (err) {
      const fields = err instanceof HttpError && err.status === 400 ? unknownFields(err.body) : [];
      if (fields.length) throw new UnknownFieldError(this.options.object, fields, err);
      throw err;
    }
    const results = res.body as SaveResult[] | null;
    if (!Array.isArray(results) || results.length !== chunk.length) {
      throw new HttpError(
        'HTTP_BAD_RESPONSE',
        `Salesforce upsert answered ${Array.isArray(results) ? results.length : 'no'} results for ${chunk.length} records`,
        {
          body: res.body,
        },
      );
    }
    const rejected: Rejected<Row>[] = [];
    const locked: Row[] = [];
    let lockReason = '';
    results.forEach((result, i) => {
      if (result.success) return;
      if (result.errors.some((e) => e.statusCode === 'UNABLE_TO_LOCK_ROW')) {
        locked.push(chunk[i]!);
        lockReason = result.errors[0]?.message ?? 'UNABLE_TO_LOCK_ROW';
        return;
      }
      const reason = result.errors
        .map((e) => `${e.statusCode}: ${e.message}${e.fields?.length ? ` (${e.fields.join(', ')})` : ''}`)
        .join('; ');
      rejected.push({ record: chunk[i]!, reason: reason || 'rejected without a reason' });
    });
    return { written: chunk.length - rejected.length - locked.length, rejected, locked, lockReason };
  }
}
