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
    // A checkpoint's first save inserts it (version 1); every later one must follow the saved version.
    insertCheckpoint: `
INSERT INTO ${checkpoints} (sync, phase, cursor, sweep, high_water_mark, batches, records_read, records_written,
  records_unchanged, records_rejected, backfill_done, backfill_estimate, backfill_estimate_exact,
  backfill_started_at, backfill_ended_at, updated_at, version)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
ON CONFLICT (sync) DO NOTHING`,
    updateCheckpoint: `
UPDATE ${checkpoints} SET phase = $2, cursor = $3, sweep = $4, high_water_mark = $5, batches = $6,
  records_read = $7, records_written = $8, records_unchanged = $9, records_rejected = $10, backfill_done = $11,
  backfill_estimate = $12, backfill_estimate_exact = $13, backfill_started_at = $14, backfill_ended_at = $15,
  updated_at = $16, version = $17
WHERE sync = $1 AND version = $17 - 1`,
    addToTotals: `UPDATE ${checkpoints} SET batches = batches + $2, records_read = records_read + $3,
  records_written = records_written + $4, records_unchanged = records_unchanged + $5,
  records_rejected = greatest(0, records_rejected + $6) WHERE sync = $1`,
    deleteCheckpoint: `DELETE FROM ${checkpoints} WHERE sync = $1`,
    selectCheckpointNames: `SELECT sync FROM ${checkpoints}`,

    selectRunningRuns: `SELECT * FROM ${runs} WHERE status = 'running' AND (sync = $1 OR lane = $2) FOR UPDATE`,
    abandonRun: `UPDATE ${runs} SET status = 'abandoned', ended_at = coalesce(renewed_at, $1), error_code = 'HOLDER_GONE',
  error_message = $2 WHERE id = $3 AND status = 'running'`,
    insertRun: `INSERT INTO ${runs} (sync, trigger, status, phase, started_at, holder, lease_until, lane, renewed_at)
  VALUES ($1, $2, 'running', $3, $4, $5, $6, $7, $4) RETURNING *`,
    // A heartbeat: only the holder of a running run extends its lease.
    renewRun: `UPDATE ${runs} SET lease_until = $1, renewed_at = $2 WHERE id = $3 AND status = 'running' AND holder = $4`,
    // Fenced: a run that lost its hold (timed out, abandoned) changes nothing, and its batch rolls back.
    addRunCounters: `UPDATE ${runs} SET batches = batches + $2, records_read = records_read + $3,
  records_written = records_written + $4, records_unchanged = records_unchanged + $5,
  records_rejected = records_rejected + $6, lease_until = $7, renewed_at = $9
  WHERE id = $1 AND status = 'running' AND holder = $8`,
    // Only a running run is finished, by its holder: a late end from an aborted run does not overwrite `timed_out`.
    finishRun: `UPDATE ${runs} SET status = $1, ended_at = $2, more = $3, error_code = $4, error_message = $5
  WHERE id = $6 AND status = 'running' AND holder = $7`,
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
  ON CONFLICT (sync, record_key) WHERE closed_at IS NULL DO UPDATE SET run_id = excluded.run_id,
  batch = excluded.batch, cursor_from = excluded.cursor_from, cursor_to = excluded.cursor_to, record = excluded.record,
  reason = excluded.reason, attempts = ${deadLetters}.attempts + 1, last_failed_at = excluded.last_failed_at`,
    selectDeadLetters: `SELECT * FROM ${deadLetters} WHERE ($1::text IS NULL OR sync = $1)
  AND ($2 OR closed_at IS NULL) ORDER BY id LIMIT $3`,
    closeDeadLettersByKey: `UPDATE ${deadLetters} SET closed_at = $2, closed_by_run = $3, resolution = $4
  WHERE sync = $1 AND record_key = ANY($5::text[]) AND closed_at IS NULL`,
    closeDeadLettersById: `UPDATE ${deadLetters} SET closed_at = $2, closed_by_run = $3, resolution = $4
  WHERE sync = $1 AND id = ANY($5::bigint[]) AND closed_at IS NULL`,
    countOpenDeadLetters: `SELECT count(*)::int AS n FROM ${deadLetters} WHERE sync = $1 AND closed_at IS NULL`,
    deleteDeadLettersOfSync: `DELETE FROM ${deadLetters} WHERE sync = $1`,
    // Retention: history older than a time goes, but each sync keeps its newest runs (status reads them).
    pruneRuns: `DELETE FROM ${runs} WHERE status <> 'running' AND ended_at < $1 AND id NOT IN (
  SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY sync ORDER BY id DESC) AS n FROM ${runs}) r WHERE n <= $2)`,
    pruneDeadLetters: `DELETE FROM ${deadLetters} WHERE closed_at IS NOT NULL AND closed_at < $1`,
    deleteExpiredReceipts: `DELETE FROM ${t('webhook_receipts')} WHERE expires_at < $1`,
    insertReceipt: `INSERT INTO ${t('webhook_receipts')} (signature, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING`,

    selectFingerprints: `SELECT record_key, hash FROM ${t('fingerprints')} WHERE sync = $1 AND record_key = ANY($2::text[])`,
    // One statement per batch: the batch's fingerprints as parallel arrays.
    upsertFingerprints: `INSERT INTO ${t('fingerprints')} (sync, record_key, hash, cursor_ms)
  SELECT $1, k, h, c FROM unnest($2::text[], $3::text[], $4::float8[]) AS f(k, h, c)
  ON CONFLICT (sync, record_key) DO UPDATE SET hash = excluded.hash, cursor_ms = excluded.cursor_ms`,
    pruneFingerprints: `DELETE FROM ${t('fingerprints')} WHERE sync = $1 AND cursor_ms < $2`,
    deleteFingerprintsOfSync: `DELETE FROM ${t('fingerprints')} WHERE sync = $1`,

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
