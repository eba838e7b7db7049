import { describe, expect, it } from 'vitest';
import { Workspace } from '../../src/runtime/workspace.ts';
import { tempDir } from '../support/tmp.ts';

describe('sluice status', () => {
  it('shows the API budget of a sync’s connections, where they have one', async () => {
    const dir = tempDir();
    const ws = await Workspace.fromConfig(
      {
        connections: {
          crm: {
            type: 'hubspot',
            baseUrl: 'http://127.0.0.1:9',
            accessToken: 't',
            quota: { perDay: 250_000 },
          },
          out: { type: 'sqlite', path: 'out.db' },
        },
        syncs: {
          contacts: {
            source: { connection: 'crm', properties: ['email'] },
            target: { connection: 'out', table: 'contacts' },
            key: 'id',
          },
        },
      },
      dir,
    );
    try {
      const [status] = await ws.status();
      expect(status?.budgets).toEqual([
        expect.objectContaining({ connection: 'crm', used: 0, limit: 250_000, left: 250_000 }),
      ]);
      expect(status?.budgets[0]?.resetsAt).toBeGreaterThan(Date.now());
    } finally {
      await ws.close();
    }
  });
});
