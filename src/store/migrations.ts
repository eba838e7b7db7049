import { readdirSync, readFileSync } from 'node:fs';
import { findPackageJSON } from 'node:module';
import { pathToFileURL } from 'node:url';

export type Migration = { version: number; name: string; sql: string };

/**
 * A store's migrations, `src/store/<engine>/migrations/NNNN-name.sql`, in order. The folder is found
 * from the package root, not from the calling module: in the published package the code is bundled
 * into dist/chunks/ while the SQL files ship at the path they have in the repository (package.json
 * `files`), so one path holds from source and from the package.
 */
export function readMigrations(engine: 'sqlite' | 'postgres'): Migration[] {
  const root = findPackageJSON(import.meta.url);
  if (!root) throw new Error(`sluice: no package.json above ${import.meta.url}`);
  const dir = new URL(`src/store/${engine}/migrations/`, pathToFileURL(root));
  return readdirSync(dir)
    .filter((file) => /^\d{4}-.+\.sql$/.test(file))
    .sort()
    .map((file) => ({
      version: Number(file.slice(0, 4)),
      name: file.slice(5, -4),
      sql: readFileSync(new URL(file, dir), 'utf8'),
    }));
}
