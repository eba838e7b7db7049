import { afterEach, describe, expect, it } from 'vitest';
import { httpConnector } from '../../../src/connectors/http/index.ts';
import type { Connector } from '../../../src/core/ports.ts';
import { EmulatorServer } from '../../emulators/server.ts';
import { tempDir } from '../../support/tmp.ts';
import { openSource, shapeOf } from './harness.ts';

const TOKEN = 'exact-numbers-token';
const servers: EmulatorServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** JSON text for a number a double cannot hold: the emulator writes it verbatim. */
const raw = (text: string): unknown => (JSON as unknown as { rawJSON: (t: string) => unknown }).rawJSON(text);

describe('HTTP source: numbers in response bodies', () => {
  it('keeps ids that differ only beyond 2^53 apart, and other numbers a double cannot hold, exact', async () => {
    // Two pages, so the ids cross the client's parse twice, as a real listing does.
    const pages: Record<string, unknown> = {
      first: {
        data: [
          { id: raw('9007199254740993'), name: 'a' },
          { id: raw('9007199254740992'), name: 'b' },
        ],
        next_cursor: 'second',
      },
      second: {
        data: [{ id: raw('123456789012345678901234567890'), price: raw('0.10000000000000000001'), n: 42 }],
        next_cursor: null,
      },
    };
    const server = new EmulatorServer(
      (req) => ({ status: 200, body: pages[req.url.searchParams.get('cursor') ?? 'first'] }),
      {
        tokens: [TOKEN],
        errors: { rateLimited: () => ({}), server: () => ({}), unauthorized: () => ({ message: 'no' }) },
      },
    );
    servers.push(await server.listen());
    const source = await openSource(
      httpConnector as Connector,
      { baseUrl: server.url, auth: { type: 'bearer', token: TOKEN } },
      { path: '/items', recordsPath: 'data', paging: { style: 'cursor' }, pageSize: 2 },
      shapeOf(['id'], null, tempDir()),
    );
    const page = await source.read({
      phase: 'backfill',
      cursor: null,
      limit: 10,
      highWaterMark: null,
      signal: new AbortController().signal,
    });
    // Digits, not types: 2^53 itself fits a double and may stay a number; its neighbour may not.
    expect(page.records.map((r) => String(r.id))).toEqual([
      '9007199254740993',
      '9007199254740992',
      '123456789012345678901234567890',
    ]);
    expect(page.records[0]?.id).toBe(9007199254740993n);
    expect(page.records[2]).toMatchObject({ n: 42 });
    // Kept as its own text, so writing it out gives the digits the API sent.
    expect(JSON.stringify(page.records[2]?.price)).toBe('0.10000000000000000001');
  });
});
