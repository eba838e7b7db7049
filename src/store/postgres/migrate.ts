import type { ClientBase } from 'pg';
import { SluiceError } from '../../core/errors.ts';
import { type Migration, readMigrations } from '../migrations.ts';
import { advisoryXactLock, LOCK_CLASS, quoteIdent, type Statements } from './sql.ts';

export const listMigrations = (): Migration[] => readMigrations('postgres');

/**
 * Runs `fn` in a transaction holding a transaction-level advisory lock on `name`: every lock the
 * store takes goes through here, so they all share one class id and release on commit or rollback.
 */
export async function withAdvisoryLock<T>(
  client: ClientBase,
  name: string,
  fn: () => Promise<T>,
): Promise<T> {
  await client.query('BEGIN');
  try {
    await client.query(advisoryXactLock, [LOCK_CLASS, name]);
    const result = await fn();
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** Takes one more advisory lock inside the transaction `withAdvisoryLock` opened. */
export async function lockAlso(client: ClientBase, name: string): Promise<void> {
  await client.query(advisoryXactLock, [LOCK_CLASS, name]);
}

/**
 * Applies pending migrations in one transaction under an advisory lock, re-reading the applied
 * versions once the lock is held: two processes starting at once serialise and the second finds
 * the work done. A store migrated by a newer Sluice is refused rather than misread.
 */
export async function migrate(
  client: ClientBase,
  schema: string,
  sql: Statements,
  where: string,
): Promise<void> {
  const migrations = listMigrations();
  const known = migrations.at(-1)?.version ?? 0;
  await withAdvisoryLock(client, `sluice.migrate:${schema}`, async () => {
    await client.query(sql.createSchema);
    await client.query(sql.createMigrations);
    const { rows } = await client.query<{ v: number | null }>(sql.selectMigrations);
    const latest = rows[0]?.v ?? 0;
    if (latest > known) {
      throw new SluiceError(
        'STORE_TOO_NEW',
        `the store ${where} (schema ${schema}) was migrated by a newer Sluice (version ${latest}, this one knows ${known}); upgrade Sluice`,
      );
    }
    // The migration files name tables unqualified; the schema comes from search_path, local to this transaction.
    await client.query(sql.setSearchPath, [quoteIdent(schema)]);
    for (const migration of migrations) {
      if (migration.version <= latest) continue;
      await client.query(migration.sql);
      await client.query(sql.insertMigration, [migration.version, migration.name]);
    }
  });
}
