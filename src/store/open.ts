import { isAbsolute, resolve } from 'node:path';
import type { Store } from '../core/ports.ts';
import { SqliteStore } from './sqlite/store.ts';

/**
 * Opens the store a config names: a `postgres://` URL, or a SQLite file path (optionally
 * `sqlite:`-prefixed) relative to the config's folder.
 */
export async function openStore(location: string, baseDir: string): Promise<Store> {
  if (/^postgres(ql)?:\/\//.test(location)) {
    // Loaded where it is used: `pg` costs every command on a SQLite store start-up time and memory.
    const { PostgresStore } = await import('./postgres/store.ts');
    return PostgresStore.open(location);
  }
  const path = location.startsWith('sqlite:') ? location.slice('sqlite:'.length) : location;
  return SqliteStore.open(isAbsolute(path) || path === ':memory:' ? path : resolve(baseDir, path));
}
