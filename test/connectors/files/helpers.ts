import { expect } from 'vitest';
import { filesConnector } from '../../../src/connectors/files/index.ts';
import type { FilePage, FileSource } from '../../../src/connectors/files/source.ts';
import type { ReadRequest } from '../../../src/core/ports.ts';
import type { Cursor, Phase, Row } from '../../../src/core/types.ts';

export async function openSource(dir: string, options: Record<string, unknown>): Promise<FileSource> {
  const parsed = filesConnector.source!.options.parse(options);
  const shape = { sync: 's', key: ['id'], cursorField: null, baseDir: dir };
  return (await filesConnector.source!.open({ dir: '.' }, parsed, shape)) as FileSource;
}

export function request(
  phase: Phase,
  cursor: Cursor | null,
  limit: number,
  highWaterMark: Cursor | null,
): ReadRequest {
  return { phase, cursor, limit, highWaterMark, signal: new AbortController().signal };
}

/** Reads a phase to its end in pages of `limit`, as the engine would; returns every page. */
export async function readAll(
  source: FileSource,
  phase: Phase,
  limit: number,
  from: { cursor: Cursor | null; highWaterMark: Cursor | null },
): Promise<{ pages: FilePage[]; records: Row[]; cursor: Cursor | null }> {
  const pages: FilePage[] = [];
  let cursor = from.cursor;
  for (let i = 0; i < 1_000_000; i++) {
    const page = await source.read(request(phase, cursor, limit, from.highWaterMark));
    expect(page.records.length + page.rejected.length).toBeLessThanOrEqual(limit);
    pages.push(page);
    cursor = page.next;
    if (page.done) break;
  }
  return { pages, records: pages.flatMap((p) => p.records), cursor };
}
