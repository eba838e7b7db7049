import type { Connector } from '../core/ports.ts';

/**
 * Every connector Sluice ships, by type: a new connector is a new folder and one line here. Each is
 * imported on first use, so a command pays only for the connectors its config names (the postgres
 * connector's driver is not loaded for a SQLite-only config).
 */
const loaders: Record<string, () => Promise<Connector>> = {
  sqlite: async () => (await import('./sqlite/index.ts')).sqliteConnector as Connector,
  files: async () => (await import('./files/index.ts')).filesConnector as Connector,
  postgres: async () => (await import('./postgres/index.ts')).postgresConnector as Connector,
  http: async () => (await import('./http/index.ts')).httpConnector as Connector,
  hubspot: async () => (await import('./hubspot/index.ts')).hubspotConnector as Connector,
  salesforce: async () => (await import('./salesforce/index.ts')).salesforceConnector as Connector,
};

const loaded = new Map<string, Promise<Connector>>();

export const connectorTypes = (): string[] => Object.keys(loaders);

/** The connector of a type, imported on first use; undefined for a type Sluice does not ship. */
export function loadConnector(type: string): Promise<Connector | undefined> {
  const load = Object.hasOwn(loaders, type) ? loaders[type] : undefined;
  if (!load) return Promise.resolve(undefined);
  let connector = loaded.get(type);
  if (!connector) {
    connector = load();
    loaded.set(type, connector);
  }
  return connector;
}

/**
 * Imports the connectors of `types` (unknown ones are skipped: validation names them) and returns a
 * synchronous lookup over them, as config validation takes.
 */
export async function loadConnectors(
  types: Iterable<string>,
): Promise<(type: string) => Connector | undefined> {
  const found = new Map<string, Connector>();
  for (const type of new Set(types)) {
    const connector = await loadConnector(type);
    if (connector) found.set(type, connector);
  }
  return (type) => found.get(type);
}
