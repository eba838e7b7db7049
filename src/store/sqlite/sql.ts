/** Every statement the SQLite store runs, one named constant each. */

export const selectCheckpointNames = 'SELECT sync FROM checkpoints';
export const selectCheckpointPhase = 'SELECT phase FROM checkpoints WHERE sync = ?';
export const selectCheckpoint = 'SELECT * FROM checkpoints WHERE sync = ?';
export const selectCheckpoints = 'SELECT * FROM checkpoints ORDER BY sync';
// A checkpoint's first save inserts it (version 1); every later one must follow the saved version.
export const insertCheckpoint = `
INSERT INTO checkpoints (sync, phase, cursor, sweep, high_water_mark, batches, records_read, records_written,
  records_unchanged, records_rejected, backfill_done, backfill_estimate, backfill_estimate_exact,
  backfill_started_at, backfill_ended_at, updated_at, version)
VALUES ($sync, $phase, $cursor, $sweep, $hwm, $batches, $read, $written, $unchanged, $rejected, $backfillDone,
  $backfillEstimate, $backfillEstimateExact, $backfillStartedAt, $backfillEndedAt, $updatedAt, $version)
ON CONFLICT (sync) DO NOTHING`;
export const updateCheckpoint = `
UPDATE checkpoints SET phase = $phase, cursor = $cursor, sweep = $sweep, high_water_mark = $hwm, batches = $batches,
  records_read = $read, records_written = $written, records_unchanged = $unchanged, records_rejected = $rejected,
  backfill_done = $backfillDone, backfill_estimate = $backfillEstimate,
  backfill_estimate_exact = $backfillEstimateExact, backfill_started_at = $backfillStartedAt,
  backfill_ended_at = $backfillEndedAt, updated_at = $updatedAt, version = $version
WHERE sync = $sync AND version = $version - 1`;
export const addToTotals = `UPDATE checkpoints SET batches = batches + $batches, records_read = records_read + $read,
  records_written = records_written + $written, records_unchanged = records_unchanged + $unchanged,
  records_rejected = max(0, records_rejected + $rejected) WHERE sync = $sync`;
export const deleteCheckpoint = 'DELETE FROM checkpoints WHERE sync = ?';

export const selectRunningRuns = `SELECT * FROM runs WHERE status = 'running' AND (sync = $sync OR lane = $lane)`;
export const abandonRun = `UPDATE runs SET status = 'abandoned', ended_at = coalesce(renewed_at, ?), error_code = 'HOLDER_GONE',
  error_message = ? WHERE id = ? AND status = 'running'`;
export const insertRun = `INSERT INTO runs (sync, trigger, status, phase, started_at, holder, lease_until, lane, renewed_at)
  VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?) RETURNING *`;
// A heartbeat: only the holder of a running run extends its lease.
export const renewRun = `UPDATE runs SET lease_until = ?, renewed_at = ? WHERE id = ? AND status = 'running' AND holder = ?`;
// Fenced: a run that lost its hold (timed out, abandoned) changes nothing, and its batch rolls back.
export const addRunCounters = `UPDATE runs SET batches = batches + $batches, records_read = records_read + $read,
  records_written = records_written + $written, records_unchanged = records_unchanged + $unchanged,
  records_rejected = records_rejected + $rejected, lease_until = $leaseUntil, renewed_at = $now
  WHERE id = $id AND status = 'running' AND holder = $holder`;
// Only a running run is finished, by its holder: a late end from an aborted run does not overwrite `timed_out`.
export const finishRun = `UPDATE runs SET status = ?, ended_at = ?, more = ?, error_code = ?, error_message = ?
  WHERE id = ? AND status = 'running' AND holder = ? RETURNING *`;
export const selectRun = 'SELECT * FROM runs WHERE id = ?';
export const selectRuns = 'SELECT * FROM runs ORDER BY id DESC LIMIT ?';
export const selectRunsOfSync = 'SELECT * FROM runs WHERE sync = ? ORDER BY id DESC LIMIT ?';

export const selectData = 'SELECT value FROM data WHERE key = ?';
export const upsertData = `INSERT INTO data (key, value, updated_at) VALUES (?, ?, ?)
  ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`;
export const deleteData = 'DELETE FROM data WHERE key = ?';
// Prefix match by range rather than LIKE, so '%' and '_' in keys mean themselves.
export const selectDataByPrefix =
  'SELECT key, value, updated_at FROM data WHERE key >= ? AND key < ? ORDER BY key';
export const selectAllData = 'SELECT key, value, updated_at FROM data ORDER BY key';

export const insertDeadLetter = `INSERT INTO dead_letters (sync, run_id, batch, cursor_from, cursor_to, record_key, record,
  reason, created_at, last_failed_at) VALUES ($sync, $runId, $batch, $from, $to, $key, $record, $reason, $now, $now)
  ON CONFLICT (sync, record_key) WHERE closed_at IS NULL DO UPDATE SET run_id = excluded.run_id, batch = excluded.batch,
  cursor_from = excluded.cursor_from, cursor_to = excluded.cursor_to, record = excluded.record, reason = excluded.reason,
  attempts = attempts + 1, last_failed_at = excluded.last_failed_at`;
export const selectDeadLetters = `SELECT * FROM dead_letters WHERE ($sync IS NULL OR sync = $sync)
  AND ($all = 1 OR closed_at IS NULL) ORDER BY id LIMIT $limit`;
export const closeDeadLetterByKey = `UPDATE dead_letters SET closed_at = $now, closed_by_run = $runId,
  resolution = $resolution WHERE sync = $sync AND record_key = $key AND closed_at IS NULL`;
export const closeDeadLetterById = `UPDATE dead_letters SET closed_at = $now, closed_by_run = $runId,
  resolution = $resolution WHERE id = $id AND sync = $sync AND closed_at IS NULL`;
export const countOpenDeadLetters =
  'SELECT count(*) AS n FROM dead_letters WHERE sync = ? AND closed_at IS NULL';
export const deleteDeadLettersOfSync = 'DELETE FROM dead_letters WHERE sync = ?';

// Keys arrive as one JSON array, so a batch's lookup is one statement whatever its size.
export const selectFingerprints = `SELECT record_key, hash FROM fingerprints
  WHERE sync = ? AND record_key IN (SELECT value FROM json_each(?))`;
export const upsertFingerprint = `INSERT INTO fingerprints (sync, record_key, hash, cursor_ms) VALUES (?, ?, ?, ?)
  ON CONFLICT (sync, record_key) DO UPDATE SET hash = excluded.hash, cursor_ms = excluded.cursor_ms`;
export const pruneFingerprints = 'DELETE FROM fingerprints WHERE sync = ? AND cursor_ms < ?';
export const deleteFingerprintsOfSync = 'DELETE FROM fingerprints WHERE sync = ?';

export const insertRequest = `INSERT INTO run_requests (sync, lane, trigger, payload, set_aside_reason, attempt, status,
  not_before, created_at, owner, lease_until) VALUES ($sync, $lane, $trigger, $payload, $setAside, $attempt, 'queued',
  $notBefore, $now, $owner, $leaseUntil) RETURNING *`;
export const selectQueuedOfSyncInLane = `SELECT * FROM run_requests WHERE sync = ? AND lane = ? AND status = 'queued'
  ORDER BY id LIMIT 1`;
// Each free lane's oldest due request, oldest first, at most $limit: a lane with many requests
// waiting hides no other lane's. A lane headed by a request another process owns (a CLI run waiting
// its turn) is not this holder's to take: that lane waits. Walked in age order over the queued
// requests alone, so a claim reads about as many rows as it takes, however long the history.
export const selectDueRequests = `SELECT r.id FROM run_requests r INDEXED BY run_requests_queued
  WHERE r.status = 'queued' AND r.not_before <= $now AND (r.owner IS NULL OR r.owner = $holder)
  AND NOT EXISTS (SELECT 1 FROM run_requests running WHERE running.lane = r.lane AND running.status = 'running')
  AND NOT EXISTS (SELECT 1 FROM run_requests earlier INDEXED BY run_requests_queued_by_lane
    WHERE earlier.lane = r.lane AND earlier.status = 'queued' AND earlier.id < r.id AND earlier.not_before <= $now)
  ORDER BY r.id LIMIT $limit`;
// The owner takes its own request once it heads its lane and the lane is free.
export const claimOwnRequest = `UPDATE run_requests SET status = 'running', holder = $holder, lease_until = $leaseUntil,
  started_at = $now WHERE id = $id AND status = 'queued' AND owner = $holder AND not_before <= $now
  AND lane NOT IN (SELECT lane FROM run_requests WHERE status = 'running')
  AND id = (SELECT min(id) FROM run_requests q WHERE q.lane = run_requests.lane AND q.status = 'queued'
    AND q.not_before <= $now)
  RETURNING *`;
// A waiting owner keeps its place alive; one that died leaves a request nobody else may run.
export const renewQueued =
  "UPDATE run_requests SET lease_until = ? WHERE id = ? AND status = 'queued' AND owner = ?";
export const selectOwnedQueued = "SELECT * FROM run_requests WHERE status = 'queued' AND owner IS NOT NULL";
export const cancelRequest = `UPDATE run_requests SET status = 'cancelled', finished_at = ?, error_code = ?,
  error_message = ? WHERE id = ? AND status = 'queued'`;
// A request behind a lane this holder runs is not due: the run's end wakes the holder. One behind a
// lane running elsewhere, or owned by another process, is looked at again shortly.
export const selectNextDue = `SELECT min(CASE
    WHEN (l.holder IS NOT NULL AND l.holder <> $holder) OR (r.owner IS NOT NULL AND r.owner <> $holder)
      THEN max(r.not_before, $now + $lookAgain)
    WHEN l.holder IS NULL THEN r.not_before
  END) AS at
  FROM run_requests r LEFT JOIN run_requests l ON l.lane = r.lane AND l.status = 'running'
  WHERE r.status = 'queued'`;
export const claimRequest = `UPDATE run_requests SET status = 'running', holder = ?, lease_until = ?, started_at = ?
  WHERE id = ? AND status = 'queued' RETURNING *`;
// Queue writes of a running request are its claim's only (holder and claim time): one recovered and
// claimed again, even by the same process, is not touched by the old claim.
export const renewRequest =
  "UPDATE run_requests SET lease_until = ? WHERE id = ? AND status = 'running' AND holder = ? AND started_at = ?";
// `attempt` is rewritten where a failed run had saved batches first: the next failure is the new batch's first.
export const finishRequest = `UPDATE run_requests SET status = ?, finished_at = ?, run_id = coalesce(?, run_id),
  error_code = ?, error_message = ?, attempt = coalesce(?, attempt)
  WHERE id = ? AND status = 'running' AND holder = ? AND started_at = ? RETURNING *`;
export const releaseRequest = `UPDATE run_requests SET status = 'queued', holder = NULL, lease_until = NULL,
  started_at = NULL, not_before = ? WHERE id = ? AND status = 'running' AND holder = ? AND started_at = ?`;
export const selectRunningRequests = "SELECT * FROM run_requests WHERE status = 'running'";
export const selectRequest = 'SELECT * FROM run_requests WHERE id = ?';
export const selectRequests = `SELECT * FROM run_requests WHERE ($sync IS NULL OR sync = $sync)
  AND ($status IS NULL OR status = $status) ORDER BY id DESC LIMIT $limit`;
export const selectPendingOfSync =
  "SELECT * FROM run_requests WHERE sync = ? AND status IN ('queued', 'running') ORDER BY id";
export const selectLastFinishedOfSync = `SELECT * FROM run_requests WHERE sync = ? AND status IN ('done', 'failed', 'cancelled')
  ORDER BY finished_at DESC, id DESC LIMIT 1`;

export const deleteExpiredReceipts = 'DELETE FROM webhook_receipts WHERE expires_at < ?';

// Retention: history older than a time goes, but each sync keeps its newest runs (status reads them).
export const pruneRuns = `DELETE FROM runs WHERE status <> 'running' AND ended_at < $before AND id NOT IN (
  SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY sync ORDER BY id DESC) AS n FROM runs) WHERE n <= $keep)`;
export const pruneDeadLetters = 'DELETE FROM dead_letters WHERE closed_at IS NOT NULL AND closed_at < ?';
export const pruneRequests = `DELETE FROM run_requests WHERE status IN ('done', 'failed', 'cancelled') AND finished_at < ?
  AND id NOT IN (SELECT max(id) FROM run_requests WHERE status IN ('done', 'failed', 'cancelled') GROUP BY sync)`;
export const insertReceipt =
  'INSERT INTO webhook_receipts (signature, expires_at) VALUES (?, ?) ON CONFLICT DO NOTHING';
