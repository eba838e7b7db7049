import type { Connector } from '../core/ports.ts';
import { filesConnector } from './files/index.ts';
import { httpConnector } from './http/index.ts';
import { hubspotConnector } from './hubspot/index.ts';
import { postgresConnector } from './postgres/index.ts';
import { salesforceConnector } from './salesforce/index.ts';
import { sqliteConnector } from './sqlite/index.ts';

/** Every connector Sluice ships: a new connector is a new folder and one line here. */
const connectors: Connector[] = [
  sqliteConnector as Connector,
  filesConnector as Connector,
  postgresConnector as Connector,
  httpConnector as Connector,
  hubspotConnector as Connector,
  salesforceConnector as Connector,
];

const byType = new Map(connectors.map((c) => [c.type, c]));

export const findConnector = (type: string): Connector | undefined => byType.get(type);
export const connectorTypes = (): string[] => [...byType.keys()];
