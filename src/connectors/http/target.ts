import type { Target } from '../../core/ports.ts';
import type { Rejected, Row, WriteResult } from '../../core/types.ts';
import type { HttpClient } from './client.ts';
import { HttpError, messageOf } from './errors.ts';
import { getPath } from './settings.ts';

export type RestTargetOptions = {
  /** `batch`: many records per call; `record`: one call per record (sent concurrently, within the connection's cap). */
  mode: 'batch' | 'record';
  method: 'POST' | 'PUT' | 'PATCH';
  /** Endpoint; `{field}` is replaced by the record's value in record mode, e.g. `/contacts/{email}`. */
  path: string;
  batchSize: number;
  /** Wraps a batch as `{ [bodyKey]: records }`; the body is the bare array when absent. */
  bodyKey?: string | undefined;
  /** Dot path to per-record results, in input order. */
  resultsPath?: string | undefined;
  /** Dot path, inside one result, to its error; a result with one is rejected. */
  errorPath: string;
  /** Statuses that blame the records rather than the service: a record gets rejected, a batch split in halves. */
  rejectStatuses: number[];
};

/**
 * Declarative writes. A status in `rejectStatuses` on a batch splits it in halves until the
 * records at fault are alone, so one bad record costs log2(batch) extra calls, not the batch.
 */
export class RestTarget implements Target {
  private readonly client: HttpClient;
  private readonly options: RestTargetOptions;

  constructor(client: HttpClient, options: RestTargetOptions) {
    this.client = client;
    this.options = options;
  }

  async write(records: Row[], req: { signal: AbortSignal }): Promise<WriteResult<Row>> {
    const rejected: Rejected<Row>[] = [];
    let written = 0;
    if (this.options.mode === 'record') {
      const outcomes = await Promise.all(records.map((r) => this.writeOne(r, req.signal)));
      outcomes.forEach((reason, i) => {
        if (reason === null) written += 1;
        else rejected.push({ record: records[i]!, reason });
      });
      return { written, rejected };
    }
    const chunks: Row[][] = [];
    for (let i = 0; i < records.length; i += this.options.batchSize)
      chunks.push(records.slice(i, i + this.options.batchSize));
    const results = await Promise.all(chunks.map((chunk) => this.writeBatch(chunk, req.signal)));
    for (const r of results) {
      written += r.written;
      rejected.push(...r.rejected);
    }
    return { written, rejected };
  }

  /** Null when written, else the API's reason. */
  private async writeOne(record: Row, signal: AbortSignal): Promise<string | null> {
    const path = this.options.path.replace(/\{(\w+)\}/g, (_m, field: string) =>
      encodeURIComponent(String(record[field] ?? '')),
    );
    const res = await this.client.request({
      method: this.options.method,
      path,
      body: record,
      signal,
      accept: this.options.rejectStatuses,
    });
    if (this.options.rejectStatuses.includes(res.status))
      return messageOf(res.body) ?? `rejected with status ${res.status}`;
    return null;
  }

  private async writeBatch(chunk: Row[], signal: AbortSignal): Promise<WriteResult<Row>> {
    const { bodyKey, resultsPath, errorPath, rejectStatuses } = this.options;
    const body = bodyKey ? { [bodyKey]: chunk } : chunk;
    const res = await this.client.request({
      method: this.options.method,
      path: this.options.path,
      body,
      signal,
      accept: rejectStatuses,
    });
    if (rejectStatuses.includes(res.status)) {
      if (chunk.length === 1)
        return {
          written: 0,
          rejected: [{ record: chunk[0]!, reason: messageOf(res.body) ?? `status ${res.status}` }],
        };
      const half = Math.ceil(chunk.length / 2);
      const [a, b] = await Promise.all([
        this.writeBatch(chunk.slice(0, half), signal),
        this.writeBatch(chunk.slice(half), signal),
      ]);
      return { written: a.written + b.written, rejected: [...a.rejected, ...b.rejected] };
    }
    if (resultsPath === undefined) return { written: chunk.length, rejected: [] };
    const results = getPath(res.body, resultsPath);
    if (!Array.isArray(results) || results.length !== chunk.length) {
      throw new HttpError(
        'HTTP_BAD_RESPONSE',
        `${this.options.path}: expected ${chunk.length} results at "${resultsPath}"`,
        { body: res.body },
      );
    }
    const rejected: Rejected<Row>[] = [];
    results.forEach((result, i) => {
      const error = getPath(result, errorPath);
      if (error) rejected.push({ record: chunk[i]!, reason: messageOf(error) ?? JSON.stringify(error) });
    });
    return { written: chunk.length - rejected.length, rejected };
  }
}
