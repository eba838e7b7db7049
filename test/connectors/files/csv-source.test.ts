import { appendFileSync, closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../support/tmp.ts';
import { openSource, readAll, request } from './helpers.ts';

const tricky = [
  { id: '1', name: 'plain', note: 'a' },
  { id: '2', name: 'with, comma', note: 'say "hi"' },
  { id: '3', name: 'two\nlines', note: 'crlf\r\ninside' },
  { id: '4', name: 'é日本🙂', note: '' },
  { id: '5', name: '"quoted"', note: ',\n,' },
];
const quote = (v: string) => (/[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);
const csvOf = (rows: Record<string, string>[], eol = '\n') =>
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
    const rest = await readAll(second, 'backfill', 2, {
      cursor: JSON.parse(JSON.stringify(page.next)),
      highWaterMark: hwm,
    });
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
});
