import { stat } from 'node:fs/promises';
import { ConnectorError } from '../../core/errors.ts';
import type { ReadRequest, Source } from '../../core/ports.ts';
import type { Cursor, Json, Page, Phase, Rejected, Row } from '../../core/types.ts';
import { readHeader, scanCsv } from './csv.ts';
import { scanJsonl } from './jsonl.ts';
import type { FileSourceOptions } from './options.ts';
import { countNewlines, type Malformed, malformedJson, type ScanResult } from './scan.ts';

/**
 * A file cursor: `offset` is the byte after the last record returned, `line` the lines (JSONL) or
 * records (CSV) before it, null where unknown (the high-water mark is taken without counting).
 * CSV cursors carry the header's `columns`, so a resumed read never goes back to the header, and
 * `skip` (see `CsvScanResult.skip`).
 */
export type FileCursor = { offset: number; line: number | null; columns?: string[] | null; skip?: number };

/** The one field of a row that stands for a malformed record in `malformed: 'record'` mode. */
export const MALFORMED_FIELD = '_sluice_malformed';

/** A page that also hands back the records the source could not parse (see `FileSourceOptions.malformed`). */
export type FilePage = Page<Row> & { rejected: Rejected<Json>[] };

/**
 * Reads a JSON Lines or CSV file in byte ranges. The backfill reads up to the file's size when it
 * started; incremental reads what was appended since (tail mode), leaving a last line without its
 * newline for a later read, since its writer may not have finished it. A final line without a
 * newline at the high-water mark counts as complete: if a writer was caught mid-line at that very
 * instant, both halves of its line are reported malformed rather than lost.
 */
export class FileSource implements Source {
  private readonly path: string;
  private readonly options: FileSourceOptions;

  constructor(path: string, options: FileSourceOptions) {
    this.path = path;
    this.options = options;
  }

  async read(req: ReadRequest): Promise<FilePage> {
    req.signal.throwIfAborted();
    const size = await this.size();
    const cursor = (req.cursor as FileCursor | null) ?? { offset: 0, line: 0 };
    if (cursor.offset > size) {
      throw new ConnectorError(
        'SOURCE_FILE_SHRANK',
        `${this.path} is ${size} bytes, shorter than the saved position (byte ${cursor.offset}): it was truncated or replaced; reset the sync to read it again`,
      );
    }
    const backfill = req.phase === 'backfill';
    const hwm = req.highWaterMark as FileCursor | null;
    const end = backfill ? Math.min(hwm?.offset ?? size, size) : size;
    const scan = await this.scan(cursor, end, backfill, req.limit, req.signal);
    if (scan === null) return { records: [], rejected: [], next: cursor as Json, done: true };
    const page: FilePage = { records: [], rejected: [], next: scan.next as Json, done: scan.exhausted };
    for (const item of scan.items) {
      if ('row' in item) page.records.push(item.row);
      else this.malformed(item.malformed, page);
    }
    return page;
  }

  private async scan(
    cursor: FileCursor,
    end: number,
    tailComplete: boolean,
    limit: number,
    signal: AbortSignal,
  ): Promise<(ScanResult & { next: FileCursor }) | null> {
    const base = { path: this.path, end, tailComplete, limit, chunkSize: this.options.chunkSize, signal };
    if (this.options.format === 'jsonl') {
      const scan = await scanJsonl({ ...base, offset: cursor.offset, line: cursor.line });
      return { ...scan, next: { offset: scan.offset, line: scan.line } };
    }
    let { offset, line } = cursor;
    let columns = cursor.columns ?? this.options.csv.columns ?? null;
    if (this.options.csv.header && !cursor.columns) {
      const header = await readHeader(this.path, end, tailComplete, this.options.csv);
      if (!header) return null;
      columns = this.options.csv.columns ?? header.columns;
      if (offset < header.offset) [offset, line] = [header.offset, 0];
    }
    if (!columns)
      throw new ConnectorError('SOURCE_COLUMNS_MISSING', `no column names for CSV file ${this.path}`);
    const scan = await scanCsv({ ...base, offset, line, columns, skip: cursor.skip ?? 0 }, this.options.csv);
    const next: FileCursor = { offset: scan.offset, line: scan.line, columns };
    if (scan.skip) next.skip = scan.skip;
    return { ...scan, next };
  }

  private malformed(m: Malformed, page: FilePage): void {
    switch (this.options.malformed) {
      case 'record':
        page.records.push({ [MALFORMED_FIELD]: malformedJson(m) });
        return;
      case 'reject':
        page.rejected.push({ record: malformedJson(m), reason: `malformed record: ${m.reason}` });
        return;
      case 'fail':
        throw new ConnectorError(
          'SOURCE_RECORD_MALFORMED',
          `${this.path}, ${m.line === null ? '' : `record ${m.line}, `}byte ${m.offset}: ${m.reason}`,
        );
    }
  }

  /** The file's size now; for CSV with a header, also the columns, so incremental never re-reads it. */
  async highWaterMark(): Promise<Cursor> {
    const size = await this.size();
    const mark: FileCursor = { offset: size, line: null };
    if (this.options.format === 'csv') {
      const header = this.options.csv.header
        ? await readHeader(this.path, size, true, this.options.csv)
        : null;
      mark.columns = this.options.csv.columns ?? header?.columns ?? null;
    }
    return mark as Json;
  }

  /** Bytes left divided by the bytes per record so far (or, at the start, in the first 64 KiB). */
  async estimate(req: {
    phase: Phase;
    cursor: Cursor | null;
    highWaterMark: Cursor | null;
  }): Promise<number | null> {
    if (req.phase !== 'backfill') return null;
    const cursor = req.cursor as FileCursor | null;
    const end = (req.highWaterMark as FileCursor | null)?.offset ?? (await this.size());
    const offset = cursor?.offset ?? 0;
    if (offset >= end) return 0;
    if (cursor?.line && cursor.offset > 0) return Math.round(((end - offset) * cursor.line) / cursor.offset);
    const sample = await countNewlines(this.path, Math.min(end, 65_536));
    return sample === 0 ? 1 : Math.round(((end - offset) * sample) / Math.min(end, 65_536));
  }

  compare(a: Cursor, b: Cursor): number {
    const ca = a as FileCursor;
    const cb = b as FileCursor;
    return ca.offset - cb.offset || (ca.skip ?? 0) - (cb.skip ?? 0);
  }

  private async size(): Promise<number> {
    try {
      return (await stat(this.path)).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new ConnectorError('SOURCE_FILE_MISSING', `source file ${this.path} does not exist`, {
          cause: err,
        });
      }
      throw err;
    }
  }
}
