import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../core/errors.ts';
import { type ConnectorLookup, type ValidConfig, validateConfig } from './validate.ts';

export const DEFAULT_CONFIG = 'sluice.config.ts';

/**
 * Imports a config module (its default export, or `config`) and validates it. Importing runs the
 * user's file, so this is only ever called from an entry point, never at import time.
 */
export async function loadConfig(
  path: string,
  lookup: ConnectorLookup,
  knownTypes: string[],
): Promise<ValidConfig> {
  const file = resolve(path);
  if (!existsSync(file)) {
    throw new ConfigError([
      `config file ${file} does not exist; pass --config <file> or create ${DEFAULT_CONFIG}`,
    ]);
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError([`could not load ${file}: ${(err as Error).message}`]);
  }
  const raw = mod.default ?? mod.config;
  if (raw === undefined)
    throw new ConfigError(['the config file must `export default defineConfig({...})`'], file);
  return validateConfig(raw, { baseDir: dirname(file), lookup, knownTypes, origin: file });
}
