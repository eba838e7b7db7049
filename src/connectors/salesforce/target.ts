import type { Target } from '../../core/ports.ts';
import type { Rejected, Row, WriteResult } from '../../core/types.ts';
import { HttpError } from '../http/errors.ts';
import { type SalesforceApi, type SaveResult, soqlField } from './api.ts';

export type SalesforceTargetOptions = {
  object: string;
  /** The external id field records are upserted by, e.g. `External_Id__c` or `Email` if marked unique external id. */
  externalIdField: string;
  /** Records per sObject Collections call (Salesforce's maximum is 200). */
  batchSize: number;
  /** Fields never sent (read-only system fields a Salesforce source emits). */
  omit: string[];
};

/**
 * Upsert by external id through sObject Collections with `allOrNone: false`: Salesforce answers one
 * result per record, in order; records with `success: false` are rejected with Salesforce's
 * `statusCode: message (fields)` and the rest of the batch is written.
 */
export class SalesforceTarget implements Target {
  private readonly api: SalesforceApi;
  private readonly options: SalesforceTargetOptions;
  private readonly path: string;

  constructor(api: SalesforceApi, options: SalesforceTargetOptions) {
    this.api = api;
    this.options = options;
    this.path = `${api.dataPath}/composite/sobjects/${soqlField(options.object)}/${soqlField(options.externalIdField)}`;
  }

  async write(records: Row[], req: { signal: AbortSignal }): Promise<WriteResult<Row>> {
    const ext = this.options.externalIdField;
    const rejected: Rejected<Row>[] = [];
    // Two records with one external id in a call fail both (DUPLICATE_EXTERNAL_ID); keep the newest.
    const latest = new Map<string, Row>();
    for (const record of records) {
      const id = record[ext];
      if (id === null || id === undefined || id === '')
        rejected.push({ record, reason: `"${ext}" is empty; Salesforce upserts by it` });
      else latest.set(String(id), record);
    }
    let written = records.length - rejected.length - latest.size;
    const unique = [...latest.values()];
    const chunks: Row[][] = [];
    for (let i = 0; i < unique.length; i += this.options.batchSize)
      chunks.push(unique.slice(i, i + this.options.batchSize));
    const results = await Promise.all(chunks.map((chunk) => this.upsert(chunk, req.signal)));
    for (const r of results) {
      written += r.written;
      rejected.push(...r.rejected);
    }
    return { written, rejected };
  }

  private async upsert(chunk: Row[], signal: AbortSignal): Promise<WriteResult<Row>> {
    const type = this.options.object;
    const body = {
      allOrNone: false,
      records: chunk.map((record) => {
        const fields: Record<string, unknown> = { attributes: { type } };
        for (const [k, v] of Object.entries(record))
          if (!this.options.omit.includes(k) && v !== undefined) fields[k] = v;
        return fields;
      }),
    };
    const res = await this.api.request({ method: 'PATCH', path: this.path, body, signal });
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
    results.forEach((result, i) => {
      if (result.success) return;
      const reason = result.errors
        .map((e) => `${e.statusCode}: ${e.message}${e.fields?.length ? ` (${e.fields.join(', ')})` : ''}`)
        .join('; ');
      rejected.push({ record: chunk[i]!, reason: reason || 'rejected without a reason' });
    });
    return { written: chunk.length - rejected.length, rejected };
  }
}
