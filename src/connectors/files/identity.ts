import { createHash } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

/**
 * Which file a saved byte offset belongs to. An offset means nothing in another file: resumed
 * there, a read lands mid-record or past records it never saw. `dev` and `ino` catch a file
 * renamed over the old one; `head` and `tail`, hashes of the first and of the last 4 KiB before
 * the offset, catch one rewritten in place, even when it starts with the same header.
 * Strings, not numbers: inode numbers may exceed 2^53 and cursors are stored as JSON.
 */
export type FileIdentity = { dev: string; ino: string; head: string; tail: string };

/** The file as one read sees it: a handle open on it and what `fstat` said, so both name one file. */
export type OpenFile = { path: string; fh: FileHandle; stats: BigIntStats; size: number };

const WINDOW = 4096;

/**
 * The identity of `file` at `offset`. `known`, an identity already checked against this file, lends
 * its head hash where both offsets are past the head window, where it no longer changes: one read
 * saved per page.
 */
export async function identify(
  file: OpenFile,
  offset: number,
  known?: { offset: number; id: FileIdentity },
): Promise<FileIdentity> {
  const [dev, ino] = [String(file.stats.dev), String(file.stats.ino)];
  const headEnd = Math.min(offset, WINDOW);
  const tailStart = Math.max(0, offset - WINDOW);
  const head =
    known && known.offset >= WINDOW && offset >= WINDOW ? known.id.head : await hashOf(file.fh, 0, headEnd);
  const tail = tailStart === 0 && headEnd === offset ? head : await hashOf(file.fh, tailStart, offset);
  return { dev, ino, head, tail };
}

/** Why `file` is not the file `id` was taken from at `offset`; null when nothing says so. */
export async function differs(file: OpenFile, offset: number, id: FileIdentity): Promise<string | null> {
  const other = otherFile(file, id) ?? shorter(file, offset);
  if (other !== null) return other;
  const now = await identify(file, offset);
  return now.head === id.head && now.tail === id.tail ? null : `its bytes before byte ${offset} changed`;
}

/** The checks that cost no read: another inode or device under the path. */
export function otherFile(file: OpenFile, id: FileIdentity): string | null {
  const { dev, ino } = file.stats;
  if (String(dev) === id.dev && String(ino) === id.ino) return null;
  return `another file now has its name (device ${dev}, inode ${ino}; it was device ${id.dev}, inode ${id.ino})`;
}

export function shorter(file: OpenFile, offset: number): string | null {
  return file.size >= offset
    ? null
    : `it is ${file.size} bytes, shorter than the saved position at byte ${offset}`;
}

async function hashOf(fh: FileHandle, from: number, to: number): Promise<string> {
  const buf = Buffer.alloc(to - from);
  const { bytesRead } = to > from ? await fh.read(buf, 0, buf.length, from) : { bytesRead: 0 };
  // A short read (the file shrank meanwhile) hashes fewer bytes, so it cannot match.
  return createHash('sha256').update(buf.subarray(0, bytesRead)).digest('base64url').slice(0, 22);
}
