import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { sqliteConnector } from '../../src/connectors/sqlite/index.ts';
import type { Connector, Target } from '../../src/core/ports.ts';

/**
 * A test-only connector: the real SQLite target, in front of which a target API's troubles are
 * staged — a batch refused while it holds a key in a range (a set number of times, or always),
 * slow writes, or a write that hangs and ignores its abort signal.
 */
const options = z.strictObject({
  table: z.string(),
  failKeys: z.tuple([z.number(), z.number()]).optional(),
  /** How many writes touching failKeys fail before they succeed; omitted: always. */
  failTimes: z.number().optional(),
  delayMs: z.number().default(0),
  hang: z.boolean().default(false),
  /** The target cannot be opened at all (a server that refuses connections, bad credentials). */
  failOpen: z.boolean().default(false),
});

const failures = new Map<string, number>();

export const faultyConnector: Connector<{ path: string }, never, z.output<typeof options>> = {
  type: 'faulty',
  connection: z.strictObject({ path: z.string() }),
  target: {
    options,
    async open(conn, opts, shape) {
      if (opts.failOpen) throw new Error('connect ECONNREFUSED 127.0.0.1:1 (the staged target is down)');
      const real = await sqliteConnector.target!.open(
        { path: conn.path },
        { table: opts.table, mode: 'upsert', synchronous: 'NORMAL' },
        shape,
      );
      const id = `${resolve(shape.baseDir, conn.path)}:${opts.table}`;
      const target: Target = {
        async write(records, req) {
          if (opts.delayMs) await sleep(opts.delayMs);
          if (opts.hang) await new Promise(() => {});
          const [lo, hi] = opts.failKeys ?? [1, 0];
          const touches = records.some((r) => Number(r.id) >= lo && Number(r.id) <= hi);
          const failed = failures.get(id) ?? 0;
          if (touches && (opts.failTimes === undefined || failed < opts.failTimes)) {
            failures.set(id, failed + 1);
            throw new Error(`503 Service Unavailable from the staged target (failure ${failed + 1})`);
          }
          return real.write(records, req);
        },
        close: () => real.close?.() ?? Promise.resolve(),
      };
      return target;
    },
  },
};
