import { stringifyJson } from '../../core/json.ts';
import type { Target } from '../../core/ports.ts';
import type { Rejected, Row, WriteResult } from '../../core/types.ts';
import type { HttpClient } from '../http/client.ts';
import { HttpError, messageOf } from '../http/errors.ts';
import { type BatchAnswer, type BatchError, CONTACTS } from './api.ts';
import { UnknownPropertyError, unknownProperties } from './errors.ts';

export type HubSpotTargetOptions = {
  /** The unique property records are matched by: `email`, or a custom unique property. */
  idProperty: string;
  /** Inputs per batch/upsert call (HubSpot's maximum is 100). */
  batchSize: number;
  /** Fields never sent as properties (ids and read-only dates a HubSpot source emits). */
  omit: string[];
};

type Input = { id: string; idProperty: string; properties: Record<string, string> };

/**
 * Batch upsert by a unique property. Per-record errors come back in a 207's `errors`, each naming
 * the input ids it concerns; those records are rejected with HubSpot's message and the rest count
 * as written. A 400 refusing the whole batch is split in halves until the bad inputs stand alone,
 * except one naming properties HubSpot does not have: that is the sync's mistake, not the records',
 * and fails the write at once (`HUBSPOT_PROPERTY_UNKNOWN`) rather than dead-lettering every record.
 *
 * HubSpot matches emails case-insensitively, so `A@x.com` and `a@x.com` are one contact there: a
 * batch keeps the last version of each, as the service would end up with, and never sends both
 * (HubSpot refuses a batch naming one contact twice).
 */
export class HubSpotTarget implements Target {
  private readonly client: HttpClient;
  private readonly options: HubSpotTargetOptions;

  private readonly omit: ReadonlySet<string>;

  constructor(client: HttpClient, options: HubSpotTargetOptions) {
    this.client = client;
    this.options = options;
    this.omit = new Set(options.omit);
  }

  async write(records: Row[], req: { signal: AbortSignal }): Promise<WriteResult<Row>> {
    const { idProperty, batchSize } = this.options;
    const rejected: Rejected<Row>[] = [];
    // HubSpot refuses a batch naming one contact twice; the last version of a record is the one to keep.
    const latest = new Map<string, Row>();
    const fold = idProperty === 'email';
    for (const record of records) {
      const id = record[idProperty];
      if (id === null || id === undefined || id === '')
        rejected.push({ record, reason: `"${idProperty}" is empty; HubSpot upserts by it` });
      else {
        const key = fold ? String(id).toLowerCase() : String(id);
        latest.delete(key); // re-inserted last: a later version keeps the later place
        latest.set(key, record);
      }
    }
    const superseded = records.length - rejected.length - latest.size;
    const unique = [...latest.values()];
    const chunks: Row[][] = [];
    for (let i = 0; i < unique.length; i += batchSize) chunks.push(unique.slice(i, i + batchSize));
    const results = await Promise.all(chunks.map((chunk) => this.upsert(chunk, req.signal)));
    let written = superseded;
    for (const r of results) {
      written += r.written;
      rejected.push(...r.rejected);
    }
    return { written, rejected };
  }

  private input(record: Row): Input {
    const properties: Record<string, string> = {};
    for (const k in record) {
      const v = record[k];
      if (v === undefined || k === this.options.idProperty || this.omit.has(k)) continue;
      properties[k] = v === null ? '' : typeof v === 'object' ? stringifyJson(v) : String(v);
    }
    return { id: String(record[this.options.idProperty]), idProperty: this.options.idProperty, properties };
  }

  private async upsert(chunk: Row[], signal: AbortSignal): Promise<WriteResult<Row>> {
    const inputs = chunk.map((r) => this.input(r));
    const res = await this.client.request({
      method: 'POST',
      path: `${CONTACTS}/batch/upsert`,
      body: { inputs },
      bigints: false, // every property value is a string
      signal,
      accept: [207, 400, 409],
    });
    if (res.status === 400 || res.status === 409) {
      const unknown = unknownProperties(res.body);
      if (unknown.length) throw new UnknownPropertyError(unknown, res.body);
      return this.split(chunk, res.body, signal);
    }
    const errors = (res.body as BatchAnswer | null)?.errors ?? [];
    if (res.status !== 207 || errors.length === 0) return { written: chunk.length, rejected: [] };
    const byId = new Map(inputs.map((input, i) => [input.id, chunk[i]!]));
    const rejected = new Map<Row, string>();
    let unplaced = false;
    for (const error of errors) {
      const ids = idsOf(error).filter((id) => byId.has(id));
      if (ids.length === 0) unplaced = true;
      for (const id of ids) rejected.set(byId.get(id)!, reasonOf(error));
    }
    // An error naming no input of ours cannot be pinned on a record: find the culprits by halves.
    // (Upserts are idempotent, so records already written are simply written again.)
    if (unplaced) return this.split(chunk, res.body, signal);
    return {
      written: chunk.length - rejected.size,
      rejected: [...rejected].map(([record, reason]) => ({ record, reason })),
    };
  }

  private async split(chunk: Row[], body: unknown, signal: AbortSignal): Promise<WriteResult<Row>> {
    if (chunk.length === 1) return { written: 0, rejected: [{ record: chunk[0]!, reason: reasonOf(body) }] };
    const half = Math.ceil(chunk.length / 2);
    const [a, b] = await Promise.all([
      this.upsert(chunk.slice(0, half), signal),
      this.upsert(chunk.slice(half), signal),
    ]);
    return { written: a.written + b.written, rejected: [...a.rejected, ...b.rejected] };
  }
}

function idsOf(error: BatchError): string[] {
  return Object.values(error.context ?? {}).flatMap((v) => (Array.isArray(v) ? v.map(String) : []));
}

function reasonOf(body: unknown): string {
  const message = messageOf(body);
  if (!message)
    throw new HttpError('HTTP_BAD_RESPONSE', 'HubSpot refused a batch without saying why', { body });
  return message;
}
