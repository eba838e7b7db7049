import { appendFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MALFORMED_FIELD } from '../../../src/connectors/files/source.ts';
import { tempDir } from '../../support/tmp.ts';
import { openSource, readAll, request } from './helpers.ts';

const rows = (n: number, from = 1) =>
  Array.from({ length: n }, (_, i) => ({ id: from + i, name: `n${from + i} é日本🙂`, tags: [i % 3] }));
const lines = (records: object[]) => records.map((r) => JSON.stringify(r));

describe('files source: JSON Lines', () => {
  it('reads a file across many batches, every record once and in order, with CRLF, BOM, blank lines and no final newline', async () => {
    const dir = tempDir();
    const expected = rows(500);
    const text = lines(expected)
      .map((l, i) => (i % 7 === 0 ? `${l}\r\n` : i % 11 === 0 ? `${l}\n\n  \r\n` : `${l}\n`))
      .join('');
    writeFileSync(join(dir, 'a.jsonl'), `\uFEFF${text.replace(/\r?\n$/, '')}`);
    // A 5-byte chunk splits every multi-byte character somewhere.
    const source = await openSource(dir, { path: 'a.jsonl', chunkSize: 5 });
    const hwm = await source.highWaterMark();
    const { pages, records } = await readAll(source, 'backfill', 37, { cursor: null, highWaterMark: hwm });
    expect(records).toEqual(expected);
    expect(pages.length).toBeGreaterThan(13);
    expect(pages.flatMap((p) => p.rejected)).toEqual([]);
    expect(pages.at(-1)?.next).toMatchObject({ offset: (hwm as { offset: number }).offset });
  });

  it('decodes multi-byte characters split across chunks at every position', async () => {
    const dir = tempDir();
    const expected = [
      { id: 1, s: 'é' },
      { id: 2, s: '日本語' },
      { id: 3, s: '🙂🙃' },
      { id: 4, s: 'aé日🙂' },
    ];
    writeFileSync(join(dir, 'a.ndjson'), `${lines(expected).join('\n')}\n`);
    for (let chunkSize = 1; chunkSize <= 9; chunkSize++) {
      const source = await openSource(dir, { path: 'a.ndjson', chunkSize });
      const { records } = await readAll(source, 'backfill', 3, {
        cursor: null,
        highWaterMark: await source.highWaterMark(),
      });
      expect(records, `chunkSize ${chunkSize}`).toEqual(expected);
    }
  });

  it('resumes from a saved cursor in a new source', async () => {
    const dir = tempDir();
    const expected = rows(100);
    writeFileSync(join(dir, 'a.jsonl'), `${lines(expected).join('\n')}\n`);
    const first = await openSource(dir, { path: 'a.jsonl', chunkSize: 64 });
    const hwm = await first.highWaterMark();
    const p1 = await first.read(request('backfill', null, 30, hwm));
    const p2 = await first.read(request('backfill', p1.next, 30, hwm));
    expect(p2.next).toMatchObject({ line: 60 });
    const saved = JSON.parse(JSON.stringify(p2.next));
    const second = await openSource(dir, { path: 'a.jsonl' });
    const rest = await readAll(second, 'backfill', 30, { cursor: saved, highWaterMark: hwm });
    expect([...p1.records, ...p2.records, ...rest.records]).toEqual(expected);
  });

  it('stops the backfill at the high-water mark; incremental tails what was appended, leaving a partial line until it is complete', async () => {
    const dir = tempDir();
    const path = join(dir, 'a.jsonl');
    writeFileSync(path, `${lines(rows(10)).join('\n')}\n`);
    const source = await openSource(dir, { path: 'a.jsonl' });
    const hwm = await source.highWaterMark();
    appendFileSync(path, `${lines(rows(5, 11)).join('\n')}\n`);
    const backfill = await readAll(source, 'backfill', 4, { cursor: null, highWaterMark: hwm });
    expect(backfill.records.map((r) => r.id)).toEqual(rows(10).map((r) => r.id));

    let tail = await readAll(source, 'incremental', 4, { cursor: hwm, highWaterMark: hwm });
    expect(tail.records.map((r) => r.id)).toEqual([11, 12, 13, 14, 15]);
    appendFileSync(path, `${JSON.stringify({ id: 16 })}\n{"id": 17, "na`);
    tail = await readAll(source, 'incremental', 4, { cursor: tail.cursor, highWaterMark: hwm });
    expect(tail.records).toEqual([{ id: 16 }]);
    expect(tail.pages.at(-1)?.done).toBe(true);
    const again = await source.read(request('incremental', tail.cursor, 4, hwm));
    expect(again).toMatchObject({ records: [], done: true, next: tail.cursor });
    appendFileSync(path, 'me": "x"}\r\n');
    tail = await readAll(source, 'incremental', 4, { cursor: tail.cursor, highWaterMark: hwm });
    expect(tail.records).toEqual([{ id: 17, name: 'x' }]);
  });

  it('counts a final line without newline at the high-water mark as complete in the backfill', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.jsonl'), '{"id":1}\n{"id":2}');
    const source = await openSource(dir, { path: 'a.jsonl' });
    const hwm = await source.highWaterMark();
    const { records } = await readAll(source, 'backfill', 10, { cursor: null, highWaterMark: hwm });
    expect(records).toEqual([{ id: 1 }, { id: 2 }]);
  });

  const withBadLines = '{"id":1}\n{"id":2,}\n[1,2]\n{"id":3}\n\xff\n{"id":4}\n';

  it('passes malformed lines on as marked records in "record" mode, for map to see', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.jsonl'), Buffer.from(withBadLines, 'latin1'));
    const source = await openSource(dir, { path: 'a.jsonl', malformed: 'record' });
    const { records } = await readAll(source, 'backfill', 2, {
      cursor: null,
      highWaterMark: await source.highWaterMark(),
    });
    expect(records.map((r) => r.id ?? (r[MALFORMED_FIELD] as { line: number }).line)).toEqual([
      1, 2, 3, 3, 5, 4,
    ]);
    expect(records[1]).toEqual({
      [MALFORMED_FIELD]: {
        reason: expect.stringMatching(/^invalid JSON/),
        offset: 9,
        line: 2,
        raw: '{"id":2,}',
      },
    });
    expect(records[2]?.[MALFORMED_FIELD]).toMatchObject({
      reason: 'expected a JSON object, got an array',
      raw: '[1,2]',
    });
    expect(records[4]?.[MALFORMED_FIELD]).toMatchObject({ reason: 'invalid UTF-8', line: 5 });
  });

  it('returns malformed lines in the page\'s rejected list in "reject" mode, and fails the read in "fail" mode', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.jsonl'), Buffer.from(withBadLines, 'latin1'));
    const rejecting = await openSource(dir, { path: 'a.jsonl', malformed: 'reject' });
    const hwm = await rejecting.highWaterMark();
    const { pages, records } = await readAll(rejecting, 'backfill', 2, { cursor: null, highWaterMark: hwm });
    expect(records).toEqual([{ id: 1 }, { id: 3 }, { id: 4 }]);
    const rejected = pages.flatMap((p) => p.rejected);
    expect(rejected.map((r) => (r.record as { line: number }).line)).toEqual([2, 3, 5]);
    expect(rejected[0]?.reason).toMatch(/^malformed record: invalid JSON/);
    const failing = await openSource(dir, { path: 'a.jsonl', malformed: 'fail' });
    await expect(failing.read(request('backfill', null, 10, hwm))).rejects.toMatchObject({
      code: 'SOURCE_RECORD_MALFORMED',
      message: expect.stringMatching(/record 2, byte 9: invalid JSON/),
    });
  });

  it('estimates the records left from the bytes per record read so far', async () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, 'a.jsonl'),
      `${lines(Array.from({ length: 1000 }, (_, i) => ({ id: 1000 + i }))).join('\n')}\n`,
    );
    const source = await openSource(dir, { path: 'a.jsonl' });
    const hwm = await source.highWaterMark();
    expect(await source.estimate({ phase: 'backfill', cursor: null, highWaterMark: hwm })).toEqual({
      records: 1000,
      exact: false,
    });
    const page = await source.read(request('backfill', null, 250, hwm));
    expect(await source.estimate({ phase: 'backfill', cursor: page.next, highWaterMark: hwm })).toEqual({
      records: 750,
      exact: false,
    });
    expect(await source.estimate({ phase: 'backfill', cursor: hwm, highWaterMark: hwm })).toEqual({
      records: 0,
      exact: true,
    });
    expect(await source.estimate({ phase: 'incremental', cursor: hwm, highWaterMark: hwm })).toBeNull();
  });

  it('refuses a cursor past the end of a file that was truncated, naming the file and the way out', async () => {
    const dir = tempDir();
    const path = join(dir, 'a.jsonl');
    writeFileSync(path, `${lines(rows(10)).join('\n')}\n`);
    const source = await openSource(dir, { path: 'a.jsonl' });
    const hwm = await source.highWaterMark();
    const page = await source.read(request('backfill', null, 8, hwm));
    truncateSync(path, 20);
    await expect(source.read(request('backfill', page.next, 8, hwm))).rejects.toMatchObject({
      code: 'SOURCE_FILE_REPLACED',
      message: expect.stringMatching(
        new RegExp(
          `^source file ${path.replaceAll('.', '\\.')} was replaced .*shorter than the saved position.*sluice reset s`,
        ),
      ),
    });
  });
});
