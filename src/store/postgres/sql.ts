/**
 * Every statement the PostgreSQL store runs, one named entry each. Names are schema-qualified
 * through `quoteIdent`, the only place an identifier enters SQL text; every value is a parameter.
 */

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export type Statements = ReturnType<typeof statements>;

export function statements(schema: string) {
  const t = (table: string) => `${quoteIdent(schema)}.${quoteIdent(table)}`;
  const checkpoints = t('checkpoints');
  const runs = t('runs');
  const data = t('data');
  const deadLetters = t('dead_letters');
  return {
    selectCheckpoint: `SELECT * FROM ${checkpoints} WHERE sync = $1`,
    selectCheckpoints: `SELECT * FROM ${checkpoints} ORDER BY sync`,
    upsertCheckpoint: `
INSERT INTO ${checkpoints} (sync, phase, cursor, high_water_mark, batches, records_read, records_written,
  records_rejected, backfill_done, backfill_estimate, backfill_started_at, backfill_ended_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (sync) DO UPDATE SET phase = excluded.phase, cursor = excluded.cursor,
  high_water_mark = excluded.high_water_mark, batches = excluded.batches, records_read = excluded.records_read,
  records_written = excluded.records_written, records_rejected = excluded.records_rejected,
  backfill_done = excluded.backfill_done, backfill_estimate = excluded.backfill_estimate,
  backfill_started_at = excluded.backfill_started_at, backfill_ended_at = excluded.backfill_ended_at,
  updated_at = excluded.updated_at`,
    deleteCheckpoint: `DELETE FROM ${checkpoints} WHERE sync = $1`,

    selectRunningRuns: `SELECT * FROM ${runs} WHERE status = 'running' AND (sync = $1 OR lane = $2) FOR UPDATE`,
    abandonRun: `UPDATE ${runs} SET status = 'abandoned', ended_at = $1, error_code = 'HOLDER_GONE',
  error_message = $2 WHERE id = $3 AND status = 'running'`,
    insertRun: `INSERT INTO ${runs} (sync, trigger, status, phase, started_at, holder, lease_until, lane)
  VALUES ($1, $2, 'running', $3, $4, $5, $6, $7) RETURNING *`,
    addRunCounters: `UPDATE ${runs} SET batches = batches + $2, records_read = records_read + $3,
  records_written = records_written + $4, records_rejected = records_rejected + $5, lease_until = $6 WHERE id = $1`,
    // Only a running run is finished: a late end from an aborted run does not overwrite `timed_out`.
    finishRun: `UPDATE ${runs} SET status = $1, ended_at = $2, more = $3, error_code = $4, error_message = $5
  WHERE id = $6 AND status = 'running'`,
    selectRun: `SELECT * FROM ${runs} WHERE id = $1`,
    selectRuns: `SELECT * FROM ${runs} WHERE ($1::text IS NULL OR sync = $1) ORDER BY id DESC LIMIT $2`,

    selectData: `SELECT value FROM ${data} WHERE key = $1`,
    upsertData: `INSERT INTO ${data} (key, value, updated_at) VALUES ($1, $2, $3)
  ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
    deleteData: `DELETE FROM ${data} WHERE key = $1`,
    // Prefix match by range over a "C"-collated key rather than LIKE, so '%' and '_' mean themselves.
    selectDataByPrefix: `SELECT key, value, updated_at FROM ${data} WHERE key >= $1 AND key < $2 ORDER BY key`,
    selectAllData: `SELECT key, value, updated_at FROM ${data} ORDER BY key`,

    insertDeadLetter: `INSERT INTO ${deadLetters} (sync, run_id, batch, cursor_from, cursor_to, record_key, record,
  reason, created_at, last_failed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
  ON CONFLICT (sync, record_key) WHERE retried_at IS NULL DO UPDATE SET run_id = excluded.run_id,
  batch = excluded.batch, cursor_from = excluded.cursor_from, cursor_to = excluded.cursor_to, record = excluded.record,
  reason = excluded.reason, attempts = ${deadLetters}.attempts + 1, last_failed_at = excluded.last_failed_at`,
    selectDeadLetters: `SELECT * FROM ${deadLetters} WHERE ($1::text IS NULL OR sync = $1)
  AND ($2 OR retried_at IS NULL) ORDER BY id LIMIT $3`,
    markDeadLettersRetried: `UPDATE ${deadLetters} SET retried_at = $1 WHERE id = ANY($2::bigint[])`,
    deleteDeadLettersOfSync: `DELETE FROM ${deadLetters} WHERE sync = $1`,

    selectMigrations: `SELECT max(version) AS v FROM ${t('migrations')}`,
    insertMigration: `INSERT INTO ${t('migrations')} (version, name, applied_at) VALUES ($1, $2, now())`,
    createMigrations: `CREATE TABLE IF NOT EXISTS ${t('migrations')} (version integer PRIMARY KEY, name text NOT NULL,
  applied_at timestamptz NOT NULL)`,
    createSchema: `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`,
    setSearchPath: `SELECT set_config('search_path', $1, true)`,
  };
}

/** The database's identity, the same for every URL that reaches it: the cluster's id and the database name. */
export const selectDatabaseIdentity =
  "SELECT 'postgres:' || (SELECT system_identifier FROM pg_control_system()) || '/' || current_database() AS id";

/** Transaction-level advisory lock; `classid` keeps Sluice's locks apart from an application's. */
export const advisoryXactLock = 'SELECT pg_advisory_xact_lock($1::int, hashtext($2))';
export const LOCK_CLASS = 0x51c3;
