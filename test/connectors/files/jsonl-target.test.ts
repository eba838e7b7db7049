import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { filesConnector } from '../../../src/connectors/files/index.ts';
import { MALFORMED_FIELD } from '../../../src/connectors/files/source.ts';
import type { Target } from '../../../src/core/ports.ts';
import { jsonArray, jsonNull, readJson } from '../../../src/core/values.ts';
import { tempDir } from '../../support/tmp.ts';
import { openSource, readAll } from './helpers.ts';

const signal = new AbortController().signal;
let batches = 0;
/** A write request as the engine makes one: each batch its own identity. */
const req = () => ({ signal, batch: `batch-${++batches}` });
const shape = (dir: string) => ({ sync: 's', key: ['id'], cursorField: null, baseDir: dir });
const openTarget = (dir: string, path = 'out/b.jsonl'): Promise<Target> =>
  filesConnector.target!.open({ dir: '.' }, { path }, shape(dir));

describe('files target: JSON Lines', () => {
  it('round-trips records through the target and back through the source', async () => {
    const dir = tempDir();
    const records = Array.from({ length: 250 }, (_, i) => ({
      id: i,
      s: `é日🙂 "${i}"\n`,
      n: { a: [i, null, true] },
    }));
    const target = await openTarget(dir);
    for (let i = 0; i < records.length; i += 40) {
      expect(await target.write(records.slice(i, i + 40), req())).toEqual({
        written: Math.min(40, records.length - i),
        rejected: [],
      });
    }
    await target.close?.();
    const source = await openSource(dir, { path: 'out/b.jsonl' });
    const back = await readAll(source, 'backfill', 100, {
      cursor: null,
      highWaterMark: await source.highWaterMark(),
    });
    expect(back.records).toEqual(records);
    expect(JSON.parse(readFileSync(join(dir, 'out/b.jsonl.sluice'), 'utf8'))).toMatchObject({
      length: readFileSync(join(dir, 'out/b.jsonl')).length,
    });
  });

  it('replaces a batch written again under the same id (its checkpoint was never saved) instead of adding to it', async () => {
    const dir = tempDir();
    const file = join(dir, 'out/b.jsonl');
    const lines = () =>
      readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { id: number; v: number });
    const first = await openTarget(dir);
    await first.write([{ id: 1, v: 1 }], { signal, batch: 'b#1' });
    await first.write(
      [
        { id: 2, v: 1 },
        { id: 3, v: 1 },
      ],
      { signal, batch: 'b#2' },
    );
    // The process dies before the checkpoint of b#2 is saved; the replay reads the page anew.
    await first.close?.();
    const second = await openTarget(dir);
    await second.write(
      [
        { id: 2, v: 2 },
        { id: 3, v: 1 },
        { id: 4, v: 1 },
      ],
      { signal, batch: 'b#2' },
    );
    await second.write([{ id: 5, v: 1 }], { signal, batch: 'b#3' });
    await second.close?.();
    expect(lines()).toEqual([
      { id: 1, v: 1 },
      { id: 2, v: 2 },
      { id: 3, v: 1 },
      { id: 4, v: 1 },
      { id: 5, v: 1 },
    ]);
    // A run that reads the unsaved batch again may write nothing for it (other records, another
    // batch size): rolled back as the run starts, its lines go all the same.
    const fourth = await openTarget(dir);
    await fourth.write([{ id: 6, v: 1 }], { signal, batch: 'b#4' });
    await fourth.close?.();
    const fifth = await openTarget(dir);
    await fifth.rollback?.('b#4');
    await fifth.write([{ id: 7, v: 1 }], { signal, batch: 'b#5' });
    await fifth.close?.();
    expect(lines().map((l) => l.id)).toEqual([1, 2, 3, 4, 5, 7]);
    // An older batch id is not the last batch: written again, it is appended (no lines vanish).
    const third = await openTarget(dir);
    await third.rollback?.('b#2');
    await third.write([{ id: 6, v: 1 }], { signal, batch: 'b#2' });
    await third.close?.();
    expect(lines().map((l) => l.id)).toEqual([1, 2, 3, 4, 5, 7, 6]);
  });

  it('rejects malformed source records and values JSON cannot hold, writing the rest', async () => {
    const dir = tempDir();
    const target = await openTarget(dir);
    const cyclic: Record<string, unknown> = { id: 3 };
    cyclic.self = cyclic;
    const result = await target.write(
      [
        { id: 1, big: 10n },
        { [MALFORMED_FIELD]: { reason: 'invalid JSON: x', raw: '{' } },
        cyclic,
        { id: 4 },
      ],
      req(),
    );
    await target.close?.();
    expect(result.written).toBe(2);
    expect(result.rejected.map((r) => r.reason)).toEqual([
      'malformed source record: invalid JSON: x',
      expect.stringMatching(/^cannot be written as JSON: .*circular/i),
    ]);
    // A bigint is a JSON number again, as it was in the source, not a string.
    expect(readFileSync(join(dir, 'out/b.jsonl'), 'utf8')).toBe('{"id":1,"big":10}\n{"id":4}\n');
  });

  it('cuts bytes past the last confirmed write when opened (a crash mid-batch), so the replay is written once', async () => {
    const dir = tempDir();
    const path = join(dir, 'out/b.jsonl');
    let target = await openTarget(dir);
    await target.write([{ id: 1 }, { id: 2 }], req());
    await target.close?.();
    // What a crash mid-append leaves: part of the next batch, the last line torn.
    appendFileSync(path, '{"id":3}\n{"id":');
    target = await openTarget(dir);
    expect(readFileSync(path, 'utf8')).toBe('{"id":1}\n{"id":2}\n');
    await target.write([{ id: 3 }, { id: 4 }], req());
    await target.close?.();
    expect(readFileSync(path, 'utf8')).toBe('{"id":1}\n{"id":2}\n{"id":3}\n{"id":4}\n');
  });

  it('takes an existing file without a sidecar as confirmed, and a file shorter than its sidecar as it is', async () => {
    const dir = tempDir();
    const path = join(dir, 'b.jsonl');
    writeFileSync(path, '{"id":0}\n');
    let target = await openTarget(dir, 'b.jsonl');
    expect(existsSync(`${path}.sluice`)).toBe(true);
    await target.write([{ id: 1 }], req());
    await target.close?.();
    writeFileSync(path, ''); // rotated by hand
    target = await openTarget(dir, 'b.jsonl');
    await target.write([{ id: 2 }], req());
    await target.close?.();
    expect(readFileSync(path, 'utf8')).toBe('{"id":2}\n');
  });

  it('round-trips ids that differ only beyond 2^53, and numbers a double cannot hold, source to target, digit for digit', async () => {
    const dir = tempDir();
    const lines = [
      '{"id":9007199254740993,"v":"a"}',
      '{"id":9007199254740992,"v":"b"}',
      '{"id":-12345678901234567890123,"price":0.10000000000000000001,"huge":1e400,"n":[18446744073709551615]}',
      '{"id":7,"plain":1.5}',
    ];
    writeFileSync(join(dir, 'a.jsonl'), `${lines.join('\n')}\n`);
    const source = await openSource(dir, { path: 'a.jsonl', malformed: 'fail' });
    const { records } = await readAll(source, 'backfill', 100, {
      cursor: null,
      highWaterMark: await source.highWaterMark(),
    });
    // Two keys, not one: an upsert by id keeps both records.
    expect(new Set(records.map((r) => String(r.id))).size).toBe(4);
    expect(records[0]?.id).toBe(9007199254740993n);
    const target = await openTarget(dir);
    expect(await target.write(records, req())).toEqual({ written: 4, rejected: [] });
    await target.close?.();
    expect(readFileSync(join(dir, 'out/b.jsonl'), 'utf8')).toBe(`${lines.join('\n')}\n`);
  });

  it('refuses, naming the field, what a JSON Lines reader would read back as another value, and writes -0 as -0', async () => {
    const dir = tempDir();
    const target = await openTarget(dir);
    const result = await target.write(
      [
        { id: 1, ratio: -0, doc: readJson('{"a": 1}', 'numbers'), nested: { zero: -0 } },
        { id: 2, ratio: Number.NaN },
        { id: 3, list: [1, Number.NEGATIVE_INFINITY] },
        { id: 4, doc: jsonNull },
        { id: 5, docs: [jsonNull] },
        { id: 6, doc: readJson('{"b":1,  "a":2}', 'text') },
        { id: 7, doc: readJson('{"n": 1.50}', 'numbers') },
        { id: 8, doc: readJson('1.0', 'text') },
        { id: 9, docs: [jsonArray([1, 2])] },
        { id: 10, doc: { inside: jsonNull }, docs: readJson('[null,[1]]', 'text') },
      ],
      req(),
    );
    await target.close?.();
    expect(result.rejected.map((r) => [r.record.id, r.reason])).toEqual([
      [2, 'field "ratio": NaN cannot be written in JSON (it would read back as null)'],
      [3, 'field "list": -Infinity cannot be written in JSON (it would read back as null)'],
      [4, 'field "doc": a JSON null document would read back as no value (null) from JSON Lines'],
      [5, 'field "docs": a JSON null document would read back as no value (null) from JSON Lines'],
      [
        6,
        'field "doc": JSON Lines keeps a JSON value, not its text as written (whitespace, key order, duplicate keys, 1.50)',
      ],
      [
        7,
        'field "doc": JSON Lines keeps a JSON value, not its text as written (whitespace, key order, duplicate keys, 1.50)',
      ],
      [8, 'field "doc": JSON 1.0 would read back from JSON Lines as 1'],
      [
        9,
        'field "docs": JSON Lines cannot tell an array document in an array of documents from a nested array',
      ],
    ]);
    expect(readFileSync(join(dir, 'out/b.jsonl'), 'utf8')).toBe(
      '{"id":1,"ratio":-0,"doc":{"a":1},"nested":{"zero":-0}}\n{"id":10,"doc":{"inside":null},"docs":[null,[1]]}\n',
    );
    const source = await openSource(dir, { path: 'out/b.jsonl' });
    const { records } = await readAll(source, 'backfill', 10, { cursor: null, highWaterMark: null });
    expect(Object.is(records[0]!.ratio, -0)).toBe(true);
  });

  it('refuses every write after a failed append whose torn bytes could not be cut, until opened again', async () => {
    const dir = tempDir();
    const path = join(dir, 'out/b.jsonl');
    let target = await openTarget(dir);
    await target.write([{ id: 1 }], req());
    // At the fs boundary only: the next append writes 5 bytes and then fails (a full disk), and the
    // truncate that should cut them fails too (an I/O error). Everything else is the real file.
    const probe = await open(path, 'r');
    const handle = Object.getPrototypeOf(probe) as FileHandle;
    await probe.close();
    const realWrite = handle.write as (this: FileHandle, data: Buffer) => Promise<unknown>;
    const write = vi.spyOn(handle, 'write').mockImplementationOnce(async function (
      this: FileHandle,
      data: unknown,
    ) {
      await realWrite.call(this, (data as Buffer).subarray(0, 5));
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    } as unknown as FileHandle['write']);
    const truncate = vi
      .spyOn(handle, 'truncate')
      .mockRejectedValueOnce(Object.assign(new Error('EIO: i/o error, ftruncate'), { code: 'EIO' }));
    try {
      await expect(target.write([{ id: 2 }, { id: 3 }], req())).rejects.toMatchObject({
        code: 'TARGET_WRITE_FAILED',
      });
      expect(truncate).toHaveBeenCalledTimes(1);
    } finally {
      write.mockRestore();
      truncate.mockRestore();
    }
    expect(readFileSync(path, 'utf8')).toBe('{"id":1}\n{"id"');
    // The fs works again, but the target does not append after bytes it could not cut.
    const refused = target.write([{ id: 4 }], req());
    await expect(refused).rejects.toMatchObject({
      code: 'TARGET_BROKEN',
      message: expect.stringMatching(
        /b\.jsonl may end in a torn batch: appending failed \(ENOSPC.*\) and cutting the partial bytes failed too \(EIO.*\)\. .*open it again.*cuts the file back to the 9 bytes confirmed in .*b\.jsonl\.sluice/,
      ),
    });
    expect(readFileSync(path, 'utf8')).toBe('{"id":1}\n{"id"');
    await target.close?.();
    target = await openTarget(dir);
    await target.write([{ id: 2 }, { id: 3 }], req());
    await target.close?.();
    expect(readFileSync(path, 'utf8')).toBe('{"id":1}\n{"id":2}\n{"id":3}\n');
  });
});

describe('files target: one writer at a time', () => {
  it('refuses a second target on the same file while the first is open, and lets it in once it closed', async () => {
    const dir = tempDir();
    const first = await openTarget(dir);
    await expect(openTarget(dir)).rejects.toMatchObject({ code: 'TARGET_BUSY', transient: true });
    await first.write([{ id: 1 }], req());
    await first.close?.();
    const second = await openTarget(dir);
    await second.write([{ id: 2 }], req());
    await second.close?.();
    expect(readFileSync(join(dir, 'out/b.jsonl'), 'utf8')).toBe('{"id":1}\n{"id":2}\n');
    expect(existsSync(join(dir, 'out/b.jsonl.sluice.lock'))).toBe(false);
  });

  it("takes over the lock of a writer that died on this host, and refuses a live one's", async () => {
    const dir = tempDir();
    const lock = join(dir, 'out/b.jsonl.sluice.lock');
    const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    const dead = spawnSync(process.execPath, ['-e', '0']);
    try {
      await (await openTarget(dir)).close?.();
      writeFileSync(lock, `${hostname()}:${live.pid}`);
      await expect(openTarget(dir)).rejects.toThrow(
        /is being written by .*: a JSON Lines file has one writer/,
      );
      writeFileSync(lock, `${hostname()}:${dead.pid}`);
      const target = await openTarget(dir);
      expect(readFileSync(lock, 'utf8')).toBe(`${hostname()}:${process.pid}`);
      await target.close?.();
    } finally {
      live.kill('SIGKILL');
    }
  });
});
