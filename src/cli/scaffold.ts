/**
 * The `sluice.config.ts` that `sluice init` writes: one connection each for the chosen source and
 * target types, one sync between them, every line commented. Secrets come from environment
 * variables (`{ $env: 'NAME' }`), read when the config loads and never printed.
 */

export const scaffoldTypes = ['sqlite', 'postgres', 'files', 'http', 'hubspot', 'salesforce'] as const;
export type ScaffoldType = (typeof scaffoldTypes)[number];

/** What one side of the sync says about its connector. */
type Side = {
  /** The connection's fields after `type`, one per line, commented. */
  connection: string[];
  /** The sync's `source:` or `target:` options after `connection`. */
  options: string;
  /** Environment variables the connection reads. */
  env: string[];
};

export const scaffoldDescriptions: Record<ScaffoldType, string> = {
  sqlite: 'SQLite database file',
  postgres: 'PostgreSQL table',
  files: 'JSON Lines or CSV file (as a target: JSON Lines)',
  http: 'REST API',
  hubspot: 'HubSpot CRM contacts',
  salesforce: 'Salesforce sObject (Contact)',
};

/** Which types can be a target: every one. Which can be a source: every one too. */
function sideOf(type: ScaffoldType, role: 'source' | 'target'): Side {
  const ENV = role === 'source' ? 'SOURCE' : 'TARGET';
  switch (type) {
    case 'sqlite':
      return {
        connection: [`// A database file, relative to this config's folder.`, `path: '${role}.db',`],
        options:
          role === 'source'
            ? `table: 'contacts' /* , columns: ['id', 'email'], where: 'deleted = 0' */`
            : `table: 'contacts' /* created on the first write, with the source's column types */`,
        env: [],
      };
    case 'postgres':
      return {
        connection: [
          `// postgres://user:password@host:5432/database, from the environment: never in this file.`,
          `url: { $env: '${ENV}_DATABASE_URL' },`,
        ],
        options:
          role === 'source'
            ? `schema: 'public', table: 'contacts' /* , where: 'deleted_at IS NULL' */`
            : `schema: 'public', table: 'contacts' /* created on the first write; mode: 'upsert' (default), 'insert' or 'update' */`,
        env: [`${ENV}_DATABASE_URL`],
      };
    case 'files':
      return {
        connection: [
          `// The folder file paths are relative to (itself relative to this config's folder).`,
          `dir: 'data',`,
        ],
        options:
          role === 'source'
            ? `path: 'contacts.jsonl' /* or a .csv file; read to its end, then what is appended */`
            : `path: '${role === 'target' ? 'contacts-out' : 'contacts'}.jsonl' /* appended; a contacts-out.jsonl.sluice sidecar beside it keeps each batch once */`,
        env: [],
      };
    case 'http':
      return {
        connection: [
          `baseUrl: 'https://api.example.com/v1',`,
          `auth: { type: 'bearer', token: { $env: '${ENV}_API_TOKEN' } },`,
          `rateLimit: { requests: 10, perMs: 1000 }, // at most this many calls in any window`,
        ],
        options:
          role === 'source'
            ? `path: '/contacts', recordsPath: 'data', paging: { style: 'cursor', param: 'cursor', nextPath: 'next_cursor' }`
            : `path: '/contacts/batch', mode: 'batch' /* or 'record': one call per record */`,
        env: [`${ENV}_API_TOKEN`],
      };
    case 'hubspot':
      return {
        connection: [
          `// A private app's access token (scopes crm.objects.contacts.read and .write).`,
          `accessToken: { $env: 'HUBSPOT_ACCESS_TOKEN' },`,
          `// quota: { perDay: 200000 }, // the share of the account's daily calls Sluice may use`,
        ],
        options:
          role === 'source'
            ? `properties: ['email', 'firstname', 'lastname', 'lastmodifieddate']`
            : `idProperty: 'email' /* or a custom unique property */`,
        env: ['HUBSPOT_ACCESS_TOKEN'],
      };
    case 'salesforce':
      return {
        connection: [
          `// OAuth: a connected app's client id and secret, with a refresh token (or client credentials).`,
          `loginUrl: 'https://login.salesforce.com',`,
          `clientId: { $env: 'SALESFORCE_CLIENT_ID' },`,
          `clientSecret: { $env: 'SALESFORCE_CLIENT_SECRET' },`,
          `refreshToken: { $env: 'SALESFORCE_REFRESH_TOKEN' },`,
        ],
        options:
          role === 'source'
            ? `object: 'Contact', fields: ['FirstName', 'LastName', 'Email']`
            : `object: 'Contact', externalIdField: 'External_Id__c' /* a field marked External ID: upserts go by it */`,
        env: ['SALESFORCE_CLIENT_ID', 'SALESFORCE_CLIENT_SECRET', 'SALESFORCE_REFRESH_TOKEN'],
      };
  }
}

/** The sync's key and cursor as the source type names them. */
function keyOf(source: ScaffoldType): { key: string; cursor: string | null } {
  switch (source) {
    case 'hubspot':
      return { key: 'id', cursor: 'lastmodifieddate' };
    case 'salesforce':
      return { key: 'Id', cursor: 'SystemModstamp' };
    case 'files':
      // A file is read by position: new lines are what is appended, so no cursor field.
      return { key: 'id', cursor: null };
    default:
      return { key: 'id', cursor: 'updated_at' };
  }
}

export type Scaffold = {
  source: ScaffoldType;
  target: ScaffoldType;
  /** The sync's name. @defaultValue 'contacts' */
  sync?: string;
  /** The store: a SQLite file relative to the config, or a postgres:// URL. @defaultValue '.sluice/state.db' */
  store?: string;
  /** What `import { defineConfig } from …` names. @defaultValue 'sluice' */
  importFrom?: string;
};

/** Environment variables the scaffolded config reads (set them before `sluice check`). */
export function scaffoldEnv(s: Scaffold): string[] {
  return [...new Set([...sideOf(s.source, 'source').env, ...sideOf(s.target, 'target').env])];
}

const indent = (lines: string[], by: string): string => lines.map((l) => `${by}${l}`).join('\n');

export function scaffoldConfig(s: Scaffold): string {
  const sync = s.sync ?? 'contacts';
  const source = sideOf(s.source, 'source');
  const target = sideOf(s.target, 'target');
  const { key, cursor } = keyOf(s.source);
  // Two connections of one type need two names.
  const sourceName = s.source === s.target ? `${s.source}Source` : s.source;
  const targetName = s.source === s.target ? `${s.target}Target` : s.target;
  const env = scaffoldEnv(s);
  const cursorLines = cursor
    ? [
        `// A field that grows whenever a record changes: incremental runs read what is past it.`,
        `// { field: '${cursor}', lookback: '5s' } also re-reads 5 s behind it (rows committed late).`,
        `cursor: '${cursor}',`,
      ]
    : [`// No cursor: a file source reads by position (what is appended after the last run).`];
  return `// Sluice config, written by \`sluice init\`. Check it with \`npx sluice check\` (reads only, writes
// nothing), then move the history with \`npx sluice backfill ${sync}\`. Every option is in the README
// (Config, Connectors); a wrong field is named by its path when this file loads.${
    env.length > 0 ? `\n// Reads from the environment: ${env.join(', ')}.` : ''
  }
import { defineConfig } from '${s.importFrom ?? 'sluice'}';

export default defineConfig({
  // Checkpoints, run history and dead letters: a SQLite file (relative to this file), or a
  // postgres:// URL shared by many \`sluice worker\`s.
  store: '${s.store ?? '.sluice/state.db'}',
  connections: {
    // ${scaffoldDescriptions[s.source]}: where records come from.
    ${sourceName}: {
      type: '${s.source}',
${indent(source.connection, '      ')}
    },
    // ${scaffoldDescriptions[s.target]}: where they go.
    ${targetName}: {
      type: '${s.target}',
${indent(target.connection, '      ')}
    },
  },
  syncs: {
    ${sync}: {
      source: { connection: '${sourceName}', ${source.options} },
      target: { connection: '${targetName}', ${target.options} },
      // The field, or fields (['tenant', 'id']), naming a record: the target upserts by it.
      key: '${key}',
${indent(cursorLines, '      ')}
      // Records per batch: the unit of write, checkpoint and retry.
      batch: { size: 5000 },
      // A run starts no batch after this; \`sluice backfill\` runs again until the history is done.
      maxRunDuration: '10m',
      // map: (record, ctx) => ({ ...record, email: record.email?.toLowerCase() }), // null skips one
      // incremental: { every: '5m' }, // once the backfill is done, under \`sluice serve\`
    },
  },
});
`;
}
