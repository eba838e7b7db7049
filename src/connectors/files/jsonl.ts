import { parseJson } from '../../core/json.ts';
import type { Row } from '../../core/types.ts';
import { addLine, bodyStart, type Item, type Malformed, type ScanRequest, type ScanResult } from './scan.ts';

const NEWLINE = 0x0a;
const CR = 0x0d;
const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const lenient = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * Reads JSON Lines from `offset` in chunks, splitting on newline bytes, so memory holds one chunk
 * and the lines of one page whatever the file's size. Lines are decoded only once whole, so a
 * multi-byte character split between two chunks decodes intact.
 */
export async function scanJsonl(req: ScanRequest): Promise<ScanResult> {
  const { fh } = req;
  let offset = req.offset === 0 ? await bodyStart(fh) : req.offset;
  let line = req.line;
  const items: Item[] = [];
  const chunk = Buffer.allocUnsafe(Math.min(req.chunkSize, Math.max(1, req.end - offset)));
  let parts: Buffer[] = [];
  let pos = offset; // where the next chunk is read
  while (pos < req.end && items.length < req.limit) {
    req.signal.throwIfAborted();
    const { bytesRead } = await fh.read(chunk, 0, Math.min(chunk.length, req.end - pos), pos);
    if (bytesRead === 0) break; // the file shrank under us; what was read stands
    let from = 0;
    while (items.length < req.limit) {
      const nl = chunk.indexOf(NEWLINE, from);
      if (nl === -1 || nl >= bytesRead) break;
      parts.push(chunk.subarray(from, nl));
      const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      parts = [];
      line = addLine(line, 1);
      const item = parseLine(bytes, offset, line);
      if (item) items.push(item);
      offset = pos + nl + 1;
      from = nl + 1;
    }
    // Copied: the chunk buffer is reused by the next read.
    if (items.length < req.limit && from < bytesRead)
      parts.push(Buffer.from(chunk.subarray(from, bytesRead)));
    pos += bytesRead;
  }
  const tail = parts.length > 0 && items.length < req.limit && pos >= req.end;
  if (tail && req.tailComplete) {
    line = addLine(line, 1);
    const item = parseLine(Buffer.concat(parts), offset, line);
    if (item) items.push(item);
    offset = req.end;
  }
  // A partial last line is left for when its newline arrives: the tail is caught up without it.
  const exhausted = offset >= req.end || (tail && !req.tailComplete);
  return { items, offset, line, exhausted };
}

/** One line: null when blank, a row when it is a JSON object, malformed otherwise. */
function parseLine(bytes: Buffer, offset: number, line: number | null): Item | null {
  const body = bytes.length > 0 && bytes[bytes.length - 1] === CR ? bytes.subarray(0, -1) : bytes;
  const bad = (reason: string): Item => ({ malformed: malformed(reason, body, offset, line) });
  let text: string;
  try {
    text = strict.decode(body);
  } catch {
    return bad('invalid UTF-8');
  }
  if (text.trim() === '') return null;
  let value: unknown;
  try {
    // Exact: an id beyond 2^53 read by JSON.parse would become its neighbour's, and one record.
    value = parseJson(text);
  } catch (err) {
    return bad(`invalid JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return bad(
      `expected a JSON object, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`,
    );
  }
  return { row: value as Row };
}

function malformed(reason: string, body: Buffer, offset: number, line: number | null): Malformed {
  return { reason, offset, line, raw: lenient.decode(body) };
}
