import { existsSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../core/errors.ts';
import type { ConnectorLookup, ValidConfig } from './validate.ts';

export const DEFAULT_CONFIG = 'sluice.config.ts';

/** The extensions a config file may have, in the order the default name is looked for. */
export const CONFIG_EXTENSIONS = ['.ts', '.mts', '.js', '.mjs'] as const;

/**
 * The connectors a config may name: every known type, and a way to load the ones a config uses
 * (connectors are imported on first use, so only those are).
 */
export type ConnectorCatalog = {
  knownTypes: string[];
  load(types: string[]): Promise<ConnectorLookup>;
};

/**
 * Imports a config module (its default export, or `config`), loads the connectors it names and
 * validates it. Importing runs the user's file, so this is only ever called from an entry point,
 * never at import time.
 */
export async function loadConfig(path: string, connectors: ConnectorCatalog): Promise<ValidConfig> {
  const { raw, file } = await importConfig(path);
  const lookup = await connectors.load(connectionTypes(raw));
  // Imported here: the CLI imports this module for DEFAULT_CONFIG, and `--help` or `init` need no zod.
  const { validateConfig } = await import('./validate.ts');
  return validateConfig(raw, {
    baseDir: dirname(file),
    lookup,
    knownTypes: connectors.knownTypes,
    origin: file,
  });
}

/**
 * Imports a config file: `.ts` and `.mts` (Node strips their types; the file is the user's own, not
 * under node_modules), `.js` and `.mjs`. The default name is also found with the other extensions
 * (`sluice.config.mts`, `.js`, `.mjs`).
 */
export async function importConfig(path: string): Promise<{ raw: unknown; file: string }> {
  const file = findConfigFile(resolve(path));
  const ext = extname(file);
  if (!(CONFIG_EXTENSIONS as readonly string[]).includes(ext)) {
    throw new ConfigError([
      `config file ${file} must end in ${CONFIG_EXTENSIONS.join(', ')} (a module that exports the config)`,
    ]);
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError([`could not load ${file}: ${(err as Error).message}${moduleHint(err, file)}`]);
  }
  const raw = mod.default ?? mod.config;
  if (raw === undefined)
    throw new ConfigError(['the config file must `export default defineConfig({...})`'], file);
  return { raw, file };
}

/** The connector types a raw (not yet validated) config's connections name. */
export function connectionTypes(raw: unknown): string[] {
  const connections = (raw as { connections?: unknown } | null | undefined)?.connections;
  if (connections === null || typeof connections !== 'object') return [];
  return Object.values(connections).flatMap((conn: unknown) => {
    const type = (conn as { type?: unknown } | null)?.type;
    return typeof type === 'string' ? [type] : [];
  });
}

function findConfigFile(file: string): string {
  if (existsSync(file)) return file;
  if (basename(file) === DEFAULT_CONFIG) {
    const stem = file.slice(0, -extname(file).length);
    for (const ext of CONFIG_EXTENSIONS) if (existsSync(stem + ext)) return stem + ext;
    const names = CONFIG_EXTENSIONS.map((e) => `sluice.config${e}`).join(', ');
    throw new ConfigError([
      `no config file in ${dirname(file)} (looked for ${names}); pass --config <file> or create ${DEFAULT_CONFIG}`,
    ]);
  }
  throw new ConfigError([
    `config file ${file} does not exist; pass --config <file> or create ${DEFAULT_CONFIG}`,
  ]);
}

/**
 * A `.ts` or `.js` file using `import`/`export` in a package whose package.json says
 * `"type": "commonjs"` is run as CommonJS and fails on its first `import`: say how to fix it.
 */
function moduleHint(err: unknown, file: string): string {
  const ext = extname(file);
  if (!(err instanceof SyntaxError) || (ext !== '.ts' && ext !== '.js')) return '';
  if (!/\b(import|export)\b/.test(err.message)) return '';
  const renamed = `${basename(file, ext)}${ext === '.ts' ? '.mts' : '.mjs'}`;
  return ` (the nearest package.json makes ${ext} files CommonJS: rename the config to ${renamed}, or set "type": "module" in that package.json)`;
}
