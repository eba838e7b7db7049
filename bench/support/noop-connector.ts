import { z } from 'zod';
import type { Connector } from '../../src/core/ports.ts';

/**
 * A connector that costs nothing: its source always has one more record, its target accepts
 * everything. With it a run is pure orchestration: claim, run record, one batch, checkpoint, rerun.
 */
export const noopConnector: Connector<Record<string, never>, Record<string, never>, Record<string, never>> = {
  type: 'noop',
  connection: z.strictObject({}),
  source: {
    options: z.strictObject({}),
    async open() {
      return {
        async read(req) {
          const n = Number((req.cursor as { n?: number } | null)?.n ?? 0) + 1;
          return { records: [{ id: n }], next: { n }, done: false };
        },
      };
    },
  },
  target: {
    options: z.strictObject({}),
    async open() {
      return {
        async write(records) {
          return { written: records.length, rejected: [] };
        },
      };
    },
  },
};
