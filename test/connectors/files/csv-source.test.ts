import { appendFileSync, closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MALFORMED_FIELD } from '../../../src/connectors/files/source.ts';
import type { Json } from '../../../src/core/types.ts';
import { tempDir } from '../../support/tmp.ts';
import { openSource, readAll, request } from './helpers.ts';

// An empty field is the empty text when quoted (`""`) and null when not, as in PostgreSQL's CSV
// (deliberate change, issue 11: an unquoted empty field was the empty text too).
const tricky: Record<string, string | null>[] = [
  { id: '1', name: 'plain', note: 'a' },
  { id: '2', name: 'with, comma', note: 'say "hi"' },
  { id: '3', name: 'two\nlines', note: 'crlf\r\ninside' },
  { id: '4', name: 'é日本🙂', note: '' },
  { id: '5', name: '"quoted"', note: ',\n,' },
  { id: '6', name: 'no note', note: null },
];
const quote = (v: string | null) =>
  v === null ? '' : v === '' || /[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
const csvOf = (rows: Record<string, string | null>[], eol = '\n') =>
  rows.map((r) => Object.values(r).map(quote).join(',')).join(eol) + eol;
const header = 'id,name,note\n';

describe('files source: CSV', () => {
  it('reads quoted fields with newlines, commas and quotes, CRLF, a BOM and multi-byte characters, once and in order', async () => {
    const dir = tempDir();
    const many = Array.from({ length: 60 }, (_, i) => ({ ...tricky[i % tricky.length]!, id: String(i + 1) }));
    writeFileSync(join(dir, 'a.csv'), `\uFEFFid,name,note\r\n${csvOf(many, '\r\n')}\r\n`);
    for (const chunkSize of [1, 3, 7, 4096]) {
      const source = await openSource(dir, { path: 'a.csv', chunkSize });
      const hwm = await source.highWaterMark();
      expect(hwm).toMatchObject({ columns: ['id', 'name', 'note'] });
      const { records, pages } = await readAll(source, 'backfill', 7, { cursor: null, highWaterMark: hwm });
      expect(records, `chunkSize ${chunkSize}`).toEqual(many);
      expect(pages.flatMap((p) => p.rejected)).toEqual([]);
    }
  });

  it('resumes from a saved cursor in a new source without reading the header again', async () => {
    const dir = tempDir();
    const path = join(dir, 'a.csv');
    writeFileSync(path, header + csvOf(tricky));
    const first = await openSource(dir, { path: 'a.csv' });
    const hwm = await first.highWaterMark();
    const page = await first.read(request('backfill', null, 2, hwm));
    expect(page.next).toMatchObject({ line: 2, columns: ['id', 'name', 'note'] });
    // Same length, other names: a source that went back to the header would use them.
    const fd = openSync(path, 'r+');
    writeSync(fd, 'ab,cdef,ghij', 0);
    closeSync(fd);
    const second = await openSource(dir, { path: 'a.csv' });
    // Without the file's identity (as cursors saved before it was kept): with it, the rewritten
    // header would rightly count as a replaced file.
    const { file: _identity, ...saved } = JSON.parse(JSON.stringify(page.next));
    const { file: _hwmIdentity, ...mark } = hwm as { [field: string]: Json };
    const rest = await readAll(second, 'backfill', 2, { cursor: saved, highWaterMark: mark });
    expect([...page.records, ...rest.records]).toEqual(tricky);
  });

  it('takes column names from options when the file has no header', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.txt'), '1;x\n2;"y;z"\n');
    const source = await openSource(dir, {
      path: 'a.txt',
      format: 'csv',
      csv: { delimiter: ';', header: false, columns: ['id', 'v'] },
    });
    const { records } = await readAll(source, 'backfill', 1, {
      cursor: null,
      highWaterMark: await source.highWaterMark(),
    });
    expect(records).toEqual([
      { id: '1', v: 'x' },
      { id: '2', v: 'y;z' },
    ]);
  });

  it('tails appended records, leaving a record that is not finished (open quote, no newline) for later', async () => {
    const dir = tempDir();
    const path = join(dir, 'a.csv');
    writeFileSync(path, header + csvOf(tricky.slice(0, 2)));
    const source = await openSource(dir, { path: 'a.csv' });
    const hwm = await source.highWaterMark();
    const backfill = await readAll(source, 'backfill', 10, { cursor: null, highWaterMark: hwm });
    expect(backfill.records).toEqual(tricky.slice(0, 2));
    appendFileSync(path, '10,ten,x\n11,"eleven\nstill open');
    let tail = await readAll(source, 'incremental', 10, { cursor: hwm, highWaterMark: hwm });
    expect(tail.records).toEqual([{ id: '10', name: 'ten', note: 'x' }]);
    expect(tail.pages.flatMap((p) => p.rejected)).toEqual([]);
    appendFileSync(path, '",y\n12,twelve,no newline yet');
    tail = await readAll(source, 'incremental', 10, { cursor: tail.cursor, highWaterMark: hwm });
    expect(tail.records).toEqual([{ id: '11', name: 'eleven\nstill open', note: 'y' }]);
    appendFileSync(path, '\r\n');
    tail = await readAll(source, 'incremental', 10, { cursor: tail.cursor, highWaterMark: hwm });
    expect(tail.records).toEqual([{ id: '12', name: 'twelve', note: 'no newline yet' }]);
  });

  it('reports malformed records (bad quoting, wrong field count) and goes on, across page boundaries', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.csv'), `${header}1,a,b\n2,b"x,c\n3,c,d\n4,only two\n5,e,f\n6,"f"g,h\n7,g,h\n`);
    for (const limit of [1, 2, 3, 100]) {
      const source = await openSource(dir, { path: 'a.csv', malformed: 'reject' });
      const { pages, records } = await readAll(source, 'backfill', limit, {
        cursor: null,
        highWaterMark: await source.highWaterMark(),
      });
      // After a stray closing quote csv-parse reads on as quoted text: record 7 is swallowed into
      // the malformed one, kept in its raw text rather than lost.
      expect(
        records.map((r) => r.id),
        `limit ${limit}`,
      ).toEqual(['1', '3', '5']);
      const rejected = pages.flatMap((p) => p.rejected);
      expect(
        rejected.map((r) => r.reason),
        `limit ${limit}`,
      ).toEqual([
        expect.stringMatching(/Invalid Opening Quote/),
        'malformed record: expected 3 fields (id, name, note), got 2',
        expect.stringMatching(/Invalid Closing Quote/),
      ]);
      expect(rejected[1]?.record).toMatchObject({ raw: '4,only two', line: 4 });
      expect(rejected[0]?.record).toMatchObject({ raw: expect.stringContaining('2,b"'), line: 2 });
      expect(rejected[2]?.record).toMatchObject({ raw: '6,"f"g,h\n7,g,h\n', line: 6 });
    }
  });

  it('rejects an unclosed quote at the end of the backfill as one malformed record', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.csv'), `${header}1,a,b\n2,"never closed\n3,c,d\n`);
    const source = await openSource(dir, { path: 'a.csv', malformed: 'reject' });
    const hwm = await source.highWaterMark();
    const { pages, records, cursor } = await readAll(source, 'backfill', 10, {
      cursor: null,
      highWaterMark: hwm,
    });
    expect(records).toEqual([{ id: '1', name: 'a', note: 'b' }]);
    expect(pages.flatMap((p) => p.rejected).map((r) => r.reason)).toEqual([
      expect.stringMatching(/Quote Not Closed/),
    ]);
    expect(cursor).toMatchObject({ offset: (hwm as { offset: number }).offset });
  });

  // Record 2 holds a lone 0xFF, record 4 a cut two-byte sequence inside quotes; record 3 is valid
  // multi-byte text and record 5 a real U+FFFD (EF BF BD), which must not be taken for a bad byte.
  const badUtf8 = Buffer.concat([
    Buffer.from(`${header}1,a,b\n2,b`),
    Buffer.from([0xff]),
    Buffer.from('c,d\n3,é日,x\n4,"q'),
    Buffer.from([0xc3]),
    Buffer.from('(",y\n5,\uFFFD,z\n'),
  ]);
  const offsetOf = (record: number) => badUtf8.indexOf(`\n${record},`) + 1;

  it('treats a record that is not valid UTF-8 as malformed: rejected with its record and byte, at any chunk size', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.csv'), badUtf8);
    for (const chunkSize of [1, 2, 5, 4096]) {
      const source = await openSource(dir, { path: 'a.csv', chunkSize, malformed: 'reject' });
      const { pages, records } = await readAll(source, 'backfill', 2, {
        cursor: null,
        highWaterMark: await source.highWaterMark(),
      });
      expect(records, `chunkSize ${chunkSize}`).toEqual([
        { id: '1', name: 'a', note: 'b' },
        { id: '3', name: 'é日', note: 'x' },
        { id: '5', name: '\uFFFD', note: 'z' },
      ]);
      expect(pages.flatMap((p) => p.rejected)).toEqual([
        {
          record: { reason: 'invalid UTF-8', offset: offsetOf(2), line: 2, raw: '2,b\uFFFDc,d' },
          reason: 'malformed record: invalid UTF-8',
        },
        {
          record: { reason: 'invalid UTF-8', offset: offsetOf(4), line: 4, raw: '4,"q\uFFFD(",y' },
          reason: 'malformed record: invalid UTF-8',
        },
      ]);
    }
  });

  it('passes a record that is not valid UTF-8 on as marked in "record" mode, and stops at it in "fail" mode', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.csv'), badUtf8);
    const marking = await openSource(dir, { path: 'a.csv', malformed: 'record' });
    const hwm = await marking.highWaterMark();
    const { records } = await readAll(marking, 'backfill', 10, { cursor: null, highWaterMark: hwm });
    expect(records.map((r) => r.id ?? (r[MALFORMED_FIELD] as { reason: string }).reason)).toEqual([
      '1',
      'invalid UTF-8',
      '3',
      'invalid UTF-8',
      '5',
    ]);
    const failing = await openSource(dir, { path: 'a.csv', malformed: 'fail' });
    await expect(failing.read(request('backfill', null, 10, hwm))).rejects.toMatchObject({
      code: 'SOURCE_RECORD_MALFORMED',
      message: `${join(dir, 'a.csv')}, record 2, byte ${offsetOf(2)}: invalid UTF-8`,
    });
  });

  it('refuses a header that is not valid UTF-8 rather than naming columns after replacement characters', async () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, 'a.csv'),
      Buffer.concat([Buffer.from('id,n'), Buffer.from([0xe9]), Buffer.from('\n1,x\n')]),
    );
    const source = await openSource(dir, { path: 'a.csv' });
    await expect(source.highWaterMark()).rejects.toMatchObject({
      code: 'SOURCE_HEADER_INVALID',
      message: expect.stringContaining('is not valid UTF-8'),
    });
  });
});
