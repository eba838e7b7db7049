-- The local runtime's durable queue: requested runs survive a restart.
CREATE TABLE run_requests (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  sync TEXT NOT NULL,
  lane TEXT NOT NULL,
  trigger TEXT NOT NULL,
  payload TEXT,
  -- Set when the batch at the checkpoint failed too often: the run dead-letters it and moves on.
  skip_reason TEXT,
  attempt INTEGER NOT NULL DEFAULT 1,
  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
  -- Epoch milliseconds: not claimed before this.
  not_before INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  holder TEXT,
  lease_until INTEGER,
  run_id INTEGER,
  error_code TEXT,
  error_message TEXT
);
CREATE INDEX run_requests_due ON run_requests (status, not_before, id);
CREATE INDEX run_requests_by_sync ON run_requests (sync, id);
-- A lane runs one request at a time, whatever the processes sharing this file do.
CREATE UNIQUE INDEX run_requests_one_per_lane ON run_requests (lane) WHERE status = 'running';
