import { accessSync, constants, existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { CheckFinding, SyncShape } from '../../core/ports.ts';
import { hasUniqueKey } from './sql.ts';
import type { SqliteTargetOptions } from './target.ts';

/**
 * A SQLite target as `sluice check` sees it, opened read-only (opening it to write would create the
 * file and switch it to WAL): the file, the table, the key's columns and unique index, and whether
 * this process may write there.
 */
export async function checkSqliteTarget(
  connection: { path: string },
  options: SqliteTargetOptions,
  shape: SyncShape,
): Promise<CheckFinding[]> {
  const path = resolve(shape.baseDir, connection.path);
  const table = `table "${options.table}" in ${path}`;
  const creates = options.create !== false;
  if (!existsSync(path)) {
    const folder = nearestFolder(dirname(path));
    if (!writable(folder))
      return [{ level: 'problem', message: `${path} does not exist, and ${folder} is not writable` }];
    return [
      creates
        ? {
            level: 'ok',
            message: `${path} does not exist yet: the first write creates it, with table "${options.table}"`,
          }
        : { level: 'problem', message: `${path} does not exist and create is false: create ${table}` },
    ];
  }
  if (!writable(path)) return [{ level: 'problem', message: `${path} is not writable by this user` }];
  const db = new DatabaseSync(path, { readOnly: true, timeout: 5000 });
  try {
    const columns = db
      .prepare('SELECT name FROM pragma_table_info(?)')
      .all(options.table)
      .map((r) => String(r.name));
    if (columns.length === 0) {
      return [
        creates
          ? { level: 'ok', message: `${table} does not exist yet: the first write creates it` }
          : { level: 'problem', message: `${table} does not exist and create is false: create it` },
      ];
    }
    const missing = shape.key.filter((k) => !columns.includes(k));
    if (missing.length > 0)
      return [
        {
          level: 'problem',
          message: `${table} has no key column ${missing.map((m) => `"${m}"`).join(', ')}`,
        },
      ];
    if (!hasUniqueKey(db, options.table, shape.key))
      return [
        {
          level: 'problem',
          message: `${table} has no PRIMARY KEY or UNIQUE index on (${shape.key.join(', ')}); writes by key need one`,
        },
      ];
    return [{ level: 'ok', message: `${table} exists, unique on (${shape.key.join(', ')}), writable` }];
  } finally {
    db.close();
  }
}

/** The folder itself, or the closest folder above it that exists (where a missing one would be made). */
function nearestFolder(dir: string): string {
  let at = dir;
  while (!existsSync(at) && dirname(at) !== at) at = dirname(at);
  return at;
}

function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    // EACCES or EROFS: not writable, which is what is asked.
    return false;
  }
}
