-- Checkpoints: a version every save must follow (a checkpoint never moves backwards), the position
-- of a lookback sweep under way, records found unchanged, and whether the backfill estimate is a count.
ALTER TABLE checkpoints ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE checkpoints ADD COLUMN sweep TEXT;
ALTER TABLE checkpoints ADD COLUMN records_unchanged INTEGER NOT NULL DEFAULT 0;
ALTER TABLE checkpoints ADD COLUMN backfill_estimate_exact INTEGER NOT NULL DEFAULT 0;
-- A run's last heartbeat: an abandoned run ends there (it could write no later), not when it was noticed.
ALTER TABLE runs ADD COLUMN renewed_at TEXT;
ALTER TABLE runs ADD COLUMN records_unchanged INTEGER NOT NULL DEFAULT 0;

-- A letter is closed when its record is written (by a later run, or a retry) or gone from the
-- source; the open-letter index follows the renamed column.
ALTER TABLE dead_letters RENAME COLUMN retried_at TO closed_at;
ALTER TABLE dead_letters ADD COLUMN closed_by_run INTEGER;
ALTER TABLE dead_letters ADD COLUMN resolution TEXT;

-- A request to set the batch at the checkpoint aside (it failed too often): one name for one idea.
ALTER TABLE run_requests RENAME COLUMN skip_reason TO set_aside_reason;
-- A request only its owner may run (a CLI run waiting its turn in the lane); NULL: any process.
ALTER TABLE run_requests ADD COLUMN owner TEXT;

-- A hash of the last version of each record written, so one re-read unchanged is not written again.
CREATE TABLE fingerprints (
  sync TEXT NOT NULL,
  record_key TEXT NOT NULL,
  hash TEXT NOT NULL,
  -- The record's cursor value as epoch ms where it is a time; behind every lookback window, pruned.
  cursor_ms REAL,
  PRIMARY KEY (sync, record_key)
) WITHOUT ROWID;
CREATE INDEX fingerprints_by_time ON fingerprints (sync, cursor_ms);
