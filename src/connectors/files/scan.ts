import { type FileHandle, open } from 'node:fs/promises';
import type { Json, Row } from '../../core/types.ts';

/** A line or CSV record that could not be parsed, with where it sits in the file. */
export type Malformed = {
  reason: string;
  /** Byte offset where the record starts. */
  offset: number;
  /** Its line (JSONL) or record (CSV) number, counted from the file's start, when known. */
  line: number | null;
  /** Its text as read (for CSV: the text the parser had consumed when it failed). */
  raw: string;
};

export type Item = { row: Row } | { malformed: Malformed };

/** Where a scan reads: from `offset` to `end` bytes, stopping after `limit` items. */
export type ScanRequest = {
  /** For messages; the bytes come from `fh`, the file whose identity the read checked. */
  path: string;
  fh: FileHandle;
  offset: number;
  /** Records (or lines) before `offset`, when known, to number what follows. */
  line: number | null;
  end: number;
  /** A last record without a newline at `end` is complete (backfill) or may still be being written (tail). */
  tailComplete: boolean;
  limit: number;
  chunkSize: number;
  signal: AbortSignal;
};

export type ScanResult = {
  items: Item[];
  /** Byte offset after the last item consumed. */
  offset: number;
  line: number | null;
  /** Nothing complete is left before `end`. */
  exhausted: boolean;
};

export const malformedJson = (m: Malformed): Json => ({
  reason: m.reason,
  offset: m.offset,
  line: m.line,
  raw: m.raw,
});

const BOM = [0xef, 0xbb, 0xbf];

/** Where records start: after a UTF-8 byte order mark, if the file has one. */
export async function bodyStart(fh: FileHandle): Promise<number> {
  const head = Buffer.alloc(3);
  const { bytesRead } = await fh.read(head, 0, 3, 0);
  return bytesRead === 3 && BOM.every((b, i) => head[i] === b) ? 3 : 0;
}

export const addLine = (line: number | null, n: number): number | null => (line === null ? null : line + n);

/** Newlines in the file's first `bytes`: a cheap stand-in for records per byte before any was read. */
export async function countNewlines(path: string, bytes: number): Promise<number> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    const { bytesRead } = await fh.read(buf, 0, bytes, 0);
    let n = 0;
    for (let i = buf.indexOf(0x0a); i !== -1 && i < bytesRead; i = buf.indexOf(0x0a, i + 1)) n++;
    return n;
  } finally {
    await fh.close();
  }
}
