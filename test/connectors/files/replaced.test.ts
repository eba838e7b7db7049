import { appendFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { FileSource } from '../../../src/connectors/files/source.ts';
import type { Cursor, Row } from '../../../src/core/types.ts';
import { tempDir } from '../../support/tmp.ts';
import { openSource, readAll, request } from './helpers.ts';

const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);

/** The same records as JSON Lines and as CSV; ids read back as numbers from either. */
const formats = {
  jsonl: {
    path: 'a.jsonl',
    header: '',
    body: (ids: number[], name = 'person') =>
      ids.map((id) => `${JSON.stringify({ id, name: `${name} ${id} é` })}\n`).join(''),
  },
  csv: {
    path: 'a.csv',
    header: 'id,name\n',
    body: (ids: number[], name = 'person') => ids.map((id) => `${id},${name} ${id} é\n`).join(''),
  },
} as const;

const idsOf = (records: Row[]): number[] => records.map((r) => Number(r.id));

/** Another file takes the name: written aside, renamed over (a new inode). */
function renameOver(path: string, text: string): void {
  const inode = statSync(path).ino;
  writeFileSync(`${path}.new`, text);
  renameSync(`${path}.new`, path);
  expect(statSync(path).ino).not.toBe(inode);
}

/** The same file rewritten from its start (same inode). */
function rewriteInPlace(path: string, text: string): void {
  const inode = statSync(path).ino;
  writeFileSync(path, text);
  expect(statSync(path).ino).toBe(inode);
}

/** Backfill pages of 100 until `n` records are read; the cursor a checkpoint would hold. */
async function readSome(
  source: FileSource,
  hwm: Cursor,
  n: number,
): Promise<{ ids: number[]; cursor: Cursor }> {
  const ids: number[] = [];
  let cursor: Cursor | null = null;
  while (ids.length < n) {
    const page = await source.read(request('backfill', cursor, 100, hwm));
    ids.push(...idsOf(page.records));
    cursor = page.next;
  }
  return { ids, cursor: cursor as Cursor };
}

// The old file holds ids 1..1000. Both new files are larger (2,000 records). The one rewritten in
// place keeps the first 300 records (more than 4 KiB: the same header and first bytes), so only
// the bytes just before the saved position tell it from the old one.
const OLD = range(1, 1000);
const RENAMED = range(5001, 2000);
const REWRITTEN = [...range(1, 300), ...range(100_001, 1700)];

for (const [format, f] of Object.entries(formats)) {
  const text = (ids: number[]) => f.header + f.body(ids);
  describe(`files source: a replaced ${format} file`, () => {
    const setup = async (options: Record<string, unknown> = {}) => {
      const dir = tempDir();
      const path = join(dir, f.path);
      writeFileSync(path, text(OLD));
      const source = await openSource(dir, { path: f.path, ...options });
      const hwm = await source.highWaterMark();
      return { dir, path, source, hwm };
    };

    it('renamed over by a larger file mid-backfill: the next read stops with SOURCE_FILE_REPLACED, naming the file and the way out', async () => {
      const { dir, path, source, hwm } = await setup();
      const { ids, cursor } = await readSome(source, hwm, 600);
      expect(ids).toEqual(range(1, 600));
      renameOver(path, text(RENAMED));
      const replaced = {
        code: 'SOURCE_FILE_REPLACED',
        message: expect.stringMatching(
          /^source file .* was replaced since sync "s" read it up to byte \d+: another file now has its name .*Run `sluice reset s` to read the file from its start.*onReplace: 'restart'/,
        ),
      };
      const error = await source.read(request('backfill', cursor, 100, hwm)).catch((e: Error) => e);
      expect(error).toMatchObject(replaced);
      expect((error as Error).message).toContain(path);
      // A new run opens a new source: it finds the same.
      const next = await openSource(dir, { path: f.path });
      await expect(next.read(request('backfill', cursor, 100, hwm))).rejects.toMatchObject(replaced);
    });

    it('rewritten in place (same inode, same first 4 KiB) by a larger file: caught mid-backfill and once caught up', async () => {
      const { path, source, hwm } = await setup();
      const { cursor } = await readSome(source, hwm, 600);
      rewriteInPlace(path, text(REWRITTEN));
      await expect(source.read(request('backfill', cursor, 100, hwm))).rejects.toMatchObject({
        code: 'SOURCE_FILE_REPLACED',
        message: expect.stringMatching(/: its bytes before byte \d+ changed\. /),
      });

      // Caught up: incremental starts at the high-water mark, as the engine does after a backfill.
      const fresh = await setup();
      await readAll(fresh.source, 'backfill', 100, { cursor: null, highWaterMark: fresh.hwm });
      appendFileSync(fresh.path, f.body([1001]));
      const tail = await readAll(fresh.source, 'incremental', 100, {
        cursor: fresh.hwm,
        highWaterMark: fresh.hwm,
      });
      expect(idsOf(tail.records)).toEqual([1001]);
      rewriteInPlace(fresh.path, text(REWRITTEN));
      await expect(
        fresh.source.read(request('incremental', tail.cursor, 100, fresh.hwm)),
      ).rejects.toMatchObject({
        code: 'SOURCE_FILE_REPLACED',
      });
    });

    it('replaced between the high-water mark and the first read: caught by the mark', async () => {
      const { path, source, hwm } = await setup();
      renameOver(path, text(RENAMED));
      await expect(source.read(request('backfill', null, 100, hwm))).rejects.toMatchObject({
        code: 'SOURCE_FILE_REPLACED',
        message: expect.stringContaining('since the backfill of sync "s" began'),
      });
    });

    it('with onReplace "restart", a file renamed over once caught up is read from its start, every new record once, after every old position', async () => {
      const { path, source, hwm } = await setup({ onReplace: 'restart' });
      await readAll(source, 'backfill', 100, { cursor: null, highWaterMark: hwm });
      renameOver(path, text(RENAMED));
      const tail = await readAll(source, 'incremental', 100, { cursor: hwm, highWaterMark: hwm });
      expect(idsOf(tail.records)).toEqual(RENAMED);
      expect(tail.cursor).toMatchObject({ generation: 1 });
      expect(source.compare(tail.cursor as Cursor, hwm)).toBeGreaterThan(0);
      // The new file is then tailed like any other.
      appendFileSync(path, f.body([9001]));
      const more = await readAll(source, 'incremental', 100, { cursor: tail.cursor, highWaterMark: hwm });
      expect(idsOf(more.records)).toEqual([9001]);
    });

    it('with onReplace "restart", a file rewritten in place mid-backfill ends the backfill, and incremental reads the new file from its start', async () => {
      const { path, source, hwm } = await setup({ onReplace: 'restart' });
      const { cursor } = await readSome(source, hwm, 600);
      rewriteInPlace(path, text(REWRITTEN));
      const rest = await readAll(source, 'backfill', 100, { cursor, highWaterMark: hwm });
      expect(rest.records).toEqual([]);
      expect(rest.pages.at(-1)?.done).toBe(true);
      // The engine goes on from the high-water mark, whose file is gone too.
      const tail = await readAll(source, 'incremental', 100, { cursor: hwm, highWaterMark: hwm });
      expect(idsOf(tail.records)).toEqual(REWRITTEN);
    });

    it('with onReplace "restart", a file changed before the saved position but not at the high-water mark is read again within the backfill', async () => {
      const { path, source, hwm } = await setup({ onReplace: 'restart' });
      const { cursor } = await readSome(source, hwm, 600);
      // Records 400-600 renamed (same length, so every offset stays), then 500 records appended.
      rewriteInPlace(
        path,
        f.header + f.body(range(1, 399)) + f.body(range(400, 201), 'PERSON') + f.body(range(601, 400)),
      );
      appendFileSync(path, f.body(range(1001, 500)));
      const rest = await readAll(source, 'backfill', 100, { cursor, highWaterMark: hwm });
      expect(idsOf(rest.records)).toEqual(OLD);
      expect(rest.records[450]).toMatchObject({ name: 'PERSON 451 é' });
      const tail = await readAll(source, 'incremental', 100, { cursor: hwm, highWaterMark: hwm });
      expect(idsOf(tail.records)).toEqual(range(1001, 500));
    });

    it('takes a cursor saved before identities were kept, adopts the file it finds, and then catches a replacement', async () => {
      const { path, source, hwm } = await setup();
      const { cursor } = await readSome(source, hwm, 300);
      const { file: _file, ...legacy } = cursor as { [field: string]: Cursor };
      const { file: _mark, ...legacyMark } = hwm as { [field: string]: Cursor };
      const page = await source.read(request('backfill', legacy, 100, legacyMark));
      expect(idsOf(page.records)).toEqual(range(301, 100));
      expect(page.next).toMatchObject({ file: { ino: String(statSync(path).ino) } });
      renameOver(path, text(RENAMED));
      await expect(source.read(request('backfill', page.next, 100, legacyMark))).rejects.toMatchObject({
        code: 'SOURCE_FILE_REPLACED',
      });
    });
  });
}
