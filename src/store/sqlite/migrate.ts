import type { DatabaseSync } from 'node:sqlite';
import { SluiceError } from '../../core/errors.ts';
import { type Migration, readMigrations } from '../migrations.ts';

export const listMigrations = (): Migration[] => readMigrations('sqlite');

/**
 * Applies pending migrations, each in its own IMMEDIATE transaction that re-checks the applied
 * versions inside it, so two processes starting at once serialise on the write lock and the second
 * finds the work done. A store written by a newer Sluice is refused rather than misread.
 */
export function migrate(db: DatabaseSync, path: string): void {
  db.exec(
    'CREATE TABLE IF NOT EXISTS sluice_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
  );
  const migrations = listMigrations();
  const known = migrations.at(-1)?.version ?? 0;
  for (const migration of migrations) {
    db.exec('BEGIN IMMEDIATE');
    try {
      const latest = latestVersion(db);
      if (latest > known) {
        throw new SluiceError(
          'STORE_TOO_NEW',
          `the store ${path} was migrated by a newer Sluice (version ${latest}, this one knows ${known}); upgrade Sluice`,
        );
      }
      if (latest < migration.version) {
        db.exec(migration.sql);
        db.prepare('INSERT INTO sluice_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
          migration.version,
          migration.name,
          new Date().toISOString(),
        );
      }
      db.exec('COMMIT');
    } catch (err) {
      db.exec('ROLLBACK');
      throw err;
    }
  }
}

function latestVersion(db: DatabaseSync): number {
  const row = db.prepare('SELECT max(version) AS v FROM sluice_migrations').get() as { v: number | null };
  return row.v ?? 0;
}
