import { isUtf8 } from 'node:buffer';
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { type CsvError, type Info, type Options, parse } from 'csv-parse';
import { ConnectorError } from '../../core/errors.ts';
import type { Row } from '../../core/types.ts';
import type { CsvOptions } from './options.ts';
import { addLine, bodyStart, type Item, type ScanRequest, type ScanResult } from './scan.ts';

/** A parsed record as csv-parse hands it over with `info` and `raw`; null is an unquoted empty field. */
type Parsed = { record: (string | null)[]; raw: string; info: Info };

/** A record csv-parse refused; `after` is how many records it had produced before it. */
type Skip = { after: number; error: CsvError; raw: string };

export type CsvScanRequest = ScanRequest & {
  columns: readonly string[];
  /** Records at `offset` already delivered as malformed (see `CsvScanResult.skip`). */
  skip: number;
};

export type CsvScanResult = ScanResult & {
  /**
   * 1 when the page ended on a malformed record: csv-parse reports where a good record ends but
   * not where a refused one does, so the cursor stays at its start and says it was delivered; the
   * next read parses it again (the same bytes give the same refusal) and drops it.
   */
  skip: number;
};

const NEWLINE = 0x0a;

/**
 * Reads CSV records from `offset` to `end` with csv-parse, streaming. Each record's end offset
 * comes from csv-parse's `info.bytes`; a record csv-parse refuses (bad quoting) or whose bytes are
 * not UTF-8 is reported as malformed and parsing goes on from the next record it can read.
 */
export async function scanCsv(req: CsvScanRequest, csv: CsvOptions): Promise<CsvScanResult> {
  const start = req.offset === 0 ? await bodyStart(req.fh) : req.offset;
  const result: CsvScanResult = { items: [], offset: start, line: req.line, exhausted: true, skip: 0 };
  if (start >= req.end) return result;
  const terminated = await endsWithNewline(req.fh, req.end);
  const skips: Skip[] = [];
  const parser = parse({
    ...parserOptions(csv),
    on_skip: (error, raw) => {
      skips.push(skipOf(error, raw));
    },
  });
  // csv-parse reads its live `info` in on_skip; set after construction because it is the parser's own.
  const info = parser.info;
  function skipOf(error: CsvError | undefined, raw: string | undefined): Skip {
    return { after: info.records, error: error as CsvError, raw: fromLatin1(raw ?? '') };
  }
  const input = byteRange(req.fh, start, req.end, req.chunkSize);
  input.on('error', (err) => parser.destroy(err));
  input.pipe(parser);
  let skipToDrop = req.skip;
  let consumedSkips = 0;
  /** Takes the malformed records csv-parse reported before record number `before`; false when the page is full. */
  const takeSkips = (before: number, final: boolean): boolean => {
    const region = skips.slice(consumedSkips).filter((s) => s.after < before);
    if (region.length === 0) return true;
    // Records that do not finish before the tail may still be being written: leave them for later.
    if (
      final &&
      !req.tailComplete &&
      (!terminated || region.some((s) => s.error.code === 'CSV_QUOTE_NOT_CLOSED'))
    ) {
      result.exhausted = true;
      return false;
    }
    consumedSkips += region.length;
    if (skipToDrop > 0) {
      skipToDrop = 0;
      return true;
    }
    if (result.items.length >= req.limit) {
      consumedSkips -= region.length;
      result.exhausted = false;
      return false;
    }
    const first = region[0]!;
    const more = region.length > 1 ? ` (and ${region.length - 1} more errors)` : '';
    result.line = addLine(result.line, 1);
    result.items.push({
      malformed: {
        reason: `${fromLatin1(first.error.message)}${more}`,
        offset: result.offset,
        line: result.line,
        raw: region.at(-1)!.raw,
      },
    });
    if (final) {
      result.offset = req.end;
      result.skip = 0;
    } else result.skip = 1;
    return true;
  };
  try {
    for await (const parsed of parser as AsyncIterable<Parsed>) {
      req.signal.throwIfAborted();
      if (!takeSkips(parsed.info.records, false)) return result;
      const end = start + parsed.info.bytes;
      if (end >= req.end && !terminated && !req.tailComplete) return result;
      if (result.items.length >= req.limit) {
        result.exhausted = false;
        return result;
      }
      result.line = addLine(result.line, 1);
      result.items.push(toItem(parsed, req.columns, result.offset, result.line));
      result.offset = end;
      result.skip = 0;
    }
    takeSkips(Number.POSITIVE_INFINITY, true);
    return result;
  } catch (err) {
    if (err instanceof ConnectorError) throw err;
    throw new ConnectorError(
      'SOURCE_READ_FAILED',
      `cannot read CSV file ${req.path}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  } finally {
    input.destroy();
    parser.destroy();
  }
}

function parserOptions(csv: CsvOptions): Options {
  return {
    // One character per byte: a record's text is its bytes, checked as UTF-8 before it is decoded
    // (csv-parse's own UTF-8 decoding turns invalid bytes into U+FFFD without a word). So the
    // delimiter and quote are given as their UTF-8 bytes.
    encoding: 'latin1',
    delimiter: Buffer.from(csv.delimiter),
    quote: Buffer.from(csv.quote),
    // Fixed rather than guessed: parsing resumes mid-file, where a guess could differ from the first one.
    record_delimiter: ['\r\n', '\n'],
    relax_column_count: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
    info: true,
    raw: true,
    // An empty field is NULL unless quoted (`""` is the empty text), as PostgreSQL's COPY … CSV has it.
    cast: (value, context) => (value === '' && !context.quoting ? null : value),
  };
}

function toItem(parsed: Parsed, columns: readonly string[], offset: number, line: number | null): Item {
  const bad = (reason: string): Item => ({
    malformed: { reason, offset, line, raw: fromLatin1(parsed.raw).replace(/\r?\n?$/, '') },
  });
  const values = decodeRecord(parsed);
  if (values === null) return bad('invalid UTF-8');
  if (values.length !== columns.length)
    return bad(`expected ${columns.length} fields (${columns.join(', ')}), got ${values.length}`);
  const row: Row = {};
  columns.forEach((name, i) => {
    row[name] = values[i];
  });
  return { row };
}

const NON_ASCII = /[\x80-\xff]/;

/** The record's fields as UTF-8 text (null: an unquoted empty field); null when its bytes are not UTF-8. */
function decodeRecord(parsed: Parsed): (string | null)[] | null {
  // ASCII reads the same in latin1 and UTF-8: most records need no second decoding.
  if (!NON_ASCII.test(parsed.raw)) return parsed.record;
  if (!isUtf8(Buffer.from(parsed.raw, 'latin1'))) return null;
  // Fields are the record's bytes less ASCII (or whole-character) quotes and delimiters: UTF-8 too.
  return parsed.record.map((field) =>
    field !== null && NON_ASCII.test(field) ? Buffer.from(field, 'latin1').toString('utf8') : field,
  );
}

/** latin1 text (bytes as characters) read as UTF-8, invalid bytes as U+FFFD: for messages and raw text. */
function fromLatin1(text: string): string {
  return NON_ASCII.test(text) ? Buffer.from(text, 'latin1').toString('utf8') : text;
}

/** The header: the first record's fields and where the data after it starts; null while incomplete. */
export async function readHeader(
  file: { path: string; fh: FileHandle },
  end: number,
  tailComplete: boolean,
  csv: CsvOptions,
): Promise<{ columns: string[]; offset: number } | null> {
  const { path, fh } = file;
  const start = await bodyStart(fh);
  if (start >= end) return null;
  const terminated = await endsWithNewline(fh, end);
  // Skips are reported as csv-parse meets them, ahead of the records it queued: count those before the header.
  const skips: string[] = [];
  const parser = parse({
    ...parserOptions(csv),
    on_skip: (error) => {
      if (parser.info.records === 0) skips.push(fromLatin1(error?.message ?? 'unreadable'));
    },
  });
  const input = byteRange(fh, start, end, 16_384);
  input.on('error', (err) => parser.destroy(err));
  input.pipe(parser);
  try {
    for await (const parsed of parser as AsyncIterable<Parsed>) {
      if (skips.length > 0) break;
      const after = start + parsed.info.bytes;
      if (after >= end && !terminated && !tailComplete) return null;
      const names = decodeRecord(parsed);
      if (names === null) {
        throw new ConnectorError(
          'SOURCE_HEADER_INVALID',
          `the header of CSV file ${path} is not valid UTF-8: save the file as UTF-8`,
        );
      }
      return { columns: names.map((name, i) => name || `column${i + 1}`), offset: after };
    }
    if (skips.length === 0 || (!tailComplete && !terminated)) return null;
    throw new ConnectorError(
      'SOURCE_HEADER_INVALID',
      `the header of CSV file ${path} cannot be read: ${skips[0]}`,
    );
  } finally {
    input.destroy();
    parser.destroy();
  }
}

/**
 * The bytes from `start` to `end` of the open file, as a stream for csv-parse. Read through the
 * handle the identity check used: a path could meanwhile name another file. (Node's fd and
 * FileHandle read streams close the handle when they end, which the next read still needs.)
 */
function byteRange(fh: FileHandle, start: number, end: number, chunkSize: number): Readable {
  return Readable.from(chunks(fh, start, end, chunkSize), { objectMode: false });
}

async function* chunks(fh: FileHandle, start: number, end: number, size: number): AsyncGenerator<Buffer> {
  for (let pos = start; pos < end; ) {
    const buf = Buffer.allocUnsafe(Math.min(size, end - pos));
    const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
    if (bytesRead === 0) return; // the file shrank under us; what was read stands
    yield buf.subarray(0, bytesRead);
    pos += bytesRead;
  }
}

async function endsWithNewline(fh: FileHandle, end: number): Promise<boolean> {
  if (end === 0) return false;
  const last = Buffer.alloc(1);
  const { bytesRead } = await fh.read(last, 0, 1, end - 1);
  return bytesRead === 1 && last[0] === NEWLINE;
}
