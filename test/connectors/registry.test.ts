import { describe, expect, it } from 'vitest';
import { connectorTypes, loadConnector, loadConnectors } from '../../src/connectors/registry.ts';

describe('connector registry', () => {
  it('loads each connector by its own type, once', async () => {
    expect(connectorTypes()).toEqual(['sqlite', 'files', 'postgres', 'http', 'hubspot', 'salesforce']);
    for (const type of connectorTypes()) {
      const connector = await loadConnector(type);
      expect(connector?.type).toBe(type);
      expect(await loadConnector(type)).toBe(connector);
    }
  });

  it('knows nothing of other types, not even what Object.prototype has', async () => {
    expect(await loadConnector('nope')).toBeUndefined();
    expect(await loadConnector('toString')).toBeUndefined();
    const lookup = await loadConnectors(['sqlite', 'nope', 'sqlite']);
    expect(lookup('sqlite')?.type).toBe('sqlite');
    expect(lookup('nope')).toBeUndefined();
    // Only the types asked for are in the lookup, loaded or not elsewhere.
    expect(lookup('files')).toBeUndefined();
  });
});
