import { type FileHandle, open, stat } from 'node:fs/promises';
import { ConnectorError } from '../../core/errors.ts';
import type { CheckFinding, Estimate, ReadRequest, Source, SourceSchema } from '../../core/ports.ts';
import type { Cursor, Json, Page, Phase, Rejected, Row } from '../../core/types.ts';
import { readHeader, scanCsv } from './csv.ts';
import { differs, type FileIdentity, identify, type OpenFile, otherFile, shorter } from './identity.ts';
import { scanJsonl } from './jsonl.ts';
import type { FileSourceOptions } from './options.ts';
import { countNewlines, type Malformed, malformedJson, type ScanResult } from './scan.ts';

/**
 * A file cursor: `offset` is the byte after the last record returned, `line` the lines (JSONL) or
 * records (CSV) before it, null where unknown (the high-water mark is taken without counting).
 * CSV cursors carry the header's `columns`, so a resumed read never goes back to the header, and
 * `skip` (see `CsvScanResult.skip`). `file` says which file the offset belongs to (absent in
 * cursors saved before it was kept: the next read adopts the file it finds). `generation` counts
 * the times the file was found replaced and read again from its start (`onReplace: 'restart'`),
 * so a position in the new file orders after every position in the old one.
 */
export type FileCursor = {
  offset: number;
  line: number | null;
  columns?: string[] | null;
  skip?: number;
  file?: FileIdentity;
  generation?: number;
};

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
 *
 * Every read first checks that the file is still the one its cursor was taken from (see
 * `FileIdentity`), and reads through the handle it checked.
 */
export class FileSource implements Source {
  private readonly path: string;
  private readonly options: FileSourceOptions;
  /** The sync's name, for the way out of a replaced file (`sluice reset <sync>`). */
  private readonly sync: string;

  constructor(path: string, options: FileSourceOptions, sync: string) {
    this.path = path;
    this.options = options;
    this.sync = sync;
  }

  async read(req: ReadRequest): Promise<FilePage> {
    req.signal.throwIfAborted();
    const file = await this.openFile();
    try {
      return await this.readFile(file, req);
    } finally {
      await file.fh.close();
    }
  }

  private async readFile(file: OpenFile, req: ReadRequest): Promise<FilePage> {
    const backfill = req.phase === 'backfill';
    const hwm = backfill ? (req.highWaterMark as FileCursor | null) : null;
    const saved = req.cursor as FileCursor | null;
    let cursor = saved ?? { offset: 0, line: 0 };
    const why = await this.replacedBecause(file, saved, hwm);
    if (why !== null) {
      const fresh = await this.startOver(file, why, saved, hwm);
      // The backfill ends on an empty page; incremental, finding the mark's file replaced, starts over.
      if (fresh === null) return { records: [], rejected: [], next: hwm as Json, done: true };
      cursor = fresh;
    }
    const end = hwm ? Math.min(hwm.offset, file.size) : file.size;
    const scan = await this.scan(file, cursor, end, backfill, req.limit, req.signal);
    // A checked identity's head no longer changes past 4 KiB: one read saved per page.
    const known = why === null && saved?.file ? { offset: saved.offset, id: saved.file } : undefined;
    const next = scan?.next ?? cursor;
    const mark: FileCursor = { ...next, file: await identify(file, next.offset, known) };
    if (cursor.generation) mark.generation = cursor.generation;
    if (scan === null) return { records: [], rejected: [], next: mark as Json, done: true };
    const page: FilePage = { records: [], rejected: [], next: mark as Json, done: scan.exhausted };
    for (const item of scan.items) {
      if ('row' in item) page.records.push(item.row);
      else this.malformed(item.malformed, page);
    }
    return page;
  }

  /**
   * Why the saved position, or in backfill the high-water mark, does not belong to this file; null
   * when nothing says so. A stat and at most two small reads: once the cursor's file is checked,
   * the mark's inode and size are enough.
   */
  private async replacedBecause(
    file: OpenFile,
    saved: FileCursor | null,
    hwm: FileCursor | null,
  ): Promise<string | null> {
    // A cursor saved before identities were kept: only its size can tell.
    const why = saved?.file
      ? await differs(file, saved.offset, saved.file)
      : saved
        ? shorter(file, saved.offset)
        : null;
    if (why !== null || !hwm) return why;
    if (!hwm.file) return shorter(file, hwm.offset);
    if (saved?.file) return otherFile(file, hwm.file) ?? shorter(file, hwm.offset);
    return differs(file, hwm.offset, hwm.file);
  }

  /**
   * Where to read a replaced file from under `onReplace`: its start, one generation on; or null
   * where the backfill must end first, because its high-water mark was taken from the old file
   * and cannot say where the new one's backfill would end. Throws under 'fail'.
   */
  private async startOver(
    file: OpenFile,
    why: string,
    saved: FileCursor | null,
    hwm: FileCursor | null,
  ): Promise<FileCursor | null> {
    if (this.options.onReplace === 'fail') throw this.replaced(why, saved, hwm);
    if (hwm?.file && (await differs(file, hwm.offset, hwm.file)) !== null) return null;
    return { offset: 0, line: 0, generation: (saved?.generation ?? 0) + 1 };
  }

  private replaced(why: string, saved: FileCursor | null, hwm: FileCursor | null): ConnectorError {
    const since = saved
      ? `sync "${this.sync}" read it up to byte ${saved.offset}`
      : `the backfill of sync "${this.sync}" began (it was ${hwm?.offset} bytes then)`;
    return new ConnectorError(
      'SOURCE_FILE_REPLACED',
      `source file ${this.path} was replaced since ${since}: ${why}. Reading on from there would skip or split the new file's records. ` +
        `Run \`sluice reset ${this.sync}\` to read the file from its start (what was written from the old file stays in the target), or set the source option onReplace: 'restart' to do so by itself.`,
    );
  }

  private async scan(
    file: OpenFile,
    cursor: FileCursor,
    end: number,
    tailComplete: boolean,
    limit: number,
    signal: AbortSignal,
  ): Promise<(ScanResult & { next: FileCursor }) | null> {
    const { path, fh } = file;
    const base = { path, fh, end, tailComplete, limit, chunkSize: this.options.chunkSize, signal };
    if (this.options.format === 'jsonl') {
      const scan = await scanJsonl({ ...base, offset: cursor.offset, line: cursor.line });
      return { ...scan, next: { offset: scan.offset, line: scan.line } };
    }
    let { offset, line } = cursor;
    let columns = cursor.columns ?? this.options.csv.columns ?? null;
    if (this.options.csv.header && !cursor.columns) {
      const header = await readHeader(file, end, tailComplete, this.options.csv);
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

  /**
   * The file's size now, with its identity, so a file replaced before the backfill reads it is
   * caught; for CSV with a header, also the columns, so incremental never re-reads it.
   */
  async highWaterMark(): Promise<Cursor> {
    const file = await this.openFile();
    try {
      const mark: FileCursor = { offset: file.size, line: null, file: await identify(file, file.size) };
      if (this.options.format === 'csv') {
        const header = this.options.csv.header
          ? await readHeader(file, file.size, true, this.options.csv)
          : null;
        mark.columns = this.options.csv.columns ?? header?.columns ?? null;
      }
      return mark as Json;
    } finally {
      await file.fh.close();
    }
  }

  /**
   * Bytes left divided by the bytes per record so far (or, at the start, in the first 64 KiB): a
   * guess, since records differ in length; exact only where nothing is left.
   */
  async estimate(req: {
    phase: Phase;
    cursor: Cursor | null;
    highWaterMark: Cursor | null;
  }): Promise<Estimate | null> {
    if (req.phase !== 'backfill') return null;
    const cursor = req.cursor as FileCursor | null;
    const end = (req.highWaterMark as FileCursor | null)?.offset ?? (await this.size());
    const offset = cursor?.offset ?? 0;
    if (offset >= end) return { records: 0, exact: true };
    const guess = (records: number): Estimate => ({ records, exact: false });
    if (cursor?.line && cursor.offset > 0)
      return guess(Math.round(((end - offset) * cursor.line) / cursor.offset));
    const sample = await countNewlines(this.path, Math.min(end, 65_536));
    return guess(sample === 0 ? 1 : Math.round(((end - offset) * sample) / Math.min(end, 65_536)));
  }

  /** A position in a file read again after it was replaced comes after every one in the old file. */
  compare(a: Cursor, b: Cursor): number {
    const ca = a as FileCursor;
    const cb = b as FileCursor;
    return (
      (ca.generation ?? 0) - (cb.generation ?? 0) || ca.offset - cb.offset || (ca.skip ?? 0) - (cb.skip ?? 0)
    );
  }

  private async size(): Promise<number> {
    try {
      return (await stat(this.path)).size;
    } catch (err) {
      throw this.missing(err);
    }
  }

  /** The file open for one read, with its `fstat`: the inode checked is the one read. */
  /**
   * The columns a target may create its table from: a CSV file's (the `columns` option, else its
   * header), each `text` in the `csv` dialect, since a CSV field is its column's input text (as
   * `COPY … CSV` reads it); none for JSON Lines, whose records declare no columns.
   */
  async schema(): Promise<SourceSchema> {
    if (this.options.format !== 'csv') return { dialect: 'jsonl', columns: [] };
    let names = this.options.csv.columns ?? null;
    if (!names && this.options.csv.header) {
      let file: OpenFile;
      try {
        file = await this.openFile();
      } catch {
        // No file yet (or none readable): it declares nothing, and the first read says what is wrong.
        return { dialect: 'csv', columns: [] };
      }
      try {
        names = (await readHeader(file, file.size, true, this.options.csv))?.columns ?? null;
      } catch {
        // A header that cannot be read declares nothing either; the first read refuses it with the reason.
      } finally {
        await file.fh.close();
      }
    }
    return { dialect: 'csv', columns: (names ?? []).map((name) => ({ name, type: 'text' })) };
  }

  /** Whether the file is there and readable, and what a CSV file's header names. */
  async check(): Promise<CheckFinding[]> {
    let file: OpenFile;
    try {
      file = await this.openFile();
    } catch (err) {
      return [{ level: 'problem', message: (err as Error).message }];
    }
    const size = file.size;
    await file.fh.close();
    const columns = this.options.format === 'csv' ? (await this.schema()).columns.map((c) => c.name) : [];
    const named = columns.length > 0 ? `; columns ${columns.join(', ')}` : '';
    return [
      { level: 'ok', message: `${this.path} is readable (${size} bytes, ${this.options.format})${named}` },
    ];
  }

  private async openFile(): Promise<OpenFile> {
    let fh: FileHandle;
    try {
      fh = await open(this.path, 'r');
    } catch (err) {
      throw this.missing(err);
    }
    try {
      const stats = await fh.stat({ bigint: true });
      return { path: this.path, fh, stats, size: Number(stats.size) };
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  private missing(err: unknown): unknown {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return err;
    return new ConnectorError('SOURCE_FILE_MISSING', `source file ${this.path} does not exist`, {
      cause: err,
    });
  }
}
