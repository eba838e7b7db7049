CREATE TABLE checkpoints (
  sync TEXT PRIMARY KEY,
  phase TEXT NOT NULL CHECK (phase IN ('backfill', 'incremental')),
  cursor TEXT,
  high_water_mark TEXT,
  batches INTEGER NOT NULL DEFAULT 0,
  records_read INTEGER NOT NULL DEFAULT 0,
  records_written INTEGER NOT NULL DEFAULT 0,
  records_rejected INTEGER NOT NULL DEFAULT 0,
  backfill_done INTEGER NOT NULL DEFAULT 0,
  backfill_estimate INTEGER,
  backfill_started_at TEXT,
  backfill_ended_at TEXT,
  updated_at TEXT NOT NULL
);

CREATE TABLE runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  sync TEXT NOT NULL,
  trigger TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'timed_out', 'abandoned')),
  phase TEXT NOT NULL,
  started_at TEXT NOT NULL,
  ended_at TEXT,
  batches INTEGER NOT NULL DEFAULT 0,
  records_read INTEGER NOT NULL DEFAULT 0,
  records_written INTEGER NOT NULL DEFAULT 0,
  records_rejected INTEGER NOT NULL DEFAULT 0,
  more INTEGER,
  error_code TEXT,
  error_message TEXT,
  holder TEXT NOT NULL,
  lease_until INTEGER NOT NULL
);
CREATE INDEX runs_by_sync ON runs (sync, id);
-- At most one live run per sync, whatever the callers do.
CREATE UNIQUE INDEX runs_one_running ON runs (sync) WHERE status = 'running';

CREATE TABLE data (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  updated_at TEXT NOT NULL
);

CREATE TABLE dead_letters (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  sync TEXT NOT NULL,
  run_id INTEGER NOT NULL,
  batch INTEGER NOT NULL,
  cursor_from TEXT,
  cursor_to TEXT,
  record_key TEXT,
  record TEXT,
  reason TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 1,
  created_at TEXT NOT NULL,
  last_failed_at TEXT NOT NULL,
  retried_at TEXT
);
CREATE INDEX dead_letters_by_sync ON dead_letters (sync, id);
-- A record that fails again while its dead letter is open (re-read by a lookback window, say)
-- updates that letter instead of adding another.
CREATE UNIQUE INDEX dead_letters_open_by_key ON dead_letters (sync, record_key) WHERE retried_at IS NULL;
