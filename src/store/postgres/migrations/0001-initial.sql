-- Runs with search_path set to the store's schema, so one file serves any schema name.
-- JSON columns are `json`, not `jsonb`: kept as written (key order, \u0000 in strings), like the SQLite store.
CREATE TABLE checkpoints (
  sync text PRIMARY KEY,
  phase text NOT NULL CHECK (phase IN ('backfill', 'incremental')),
  cursor json,
  high_water_mark json,
  batches bigint NOT NULL DEFAULT 0,
  records_read bigint NOT NULL DEFAULT 0,
  records_written bigint NOT NULL DEFAULT 0,
  records_rejected bigint NOT NULL DEFAULT 0,
  backfill_done bigint NOT NULL DEFAULT 0,
  backfill_estimate bigint,
  backfill_started_at timestamptz,
  backfill_ended_at timestamptz,
  updated_at timestamptz NOT NULL
);

CREATE TABLE runs (
  id bigserial PRIMARY KEY,
  sync text NOT NULL,
  trigger text NOT NULL,
  status text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'timed_out', 'abandoned')),
  phase text NOT NULL,
  started_at timestamptz NOT NULL,
  ended_at timestamptz,
  batches bigint NOT NULL DEFAULT 0,
  records_read bigint NOT NULL DEFAULT 0,
  records_written bigint NOT NULL DEFAULT 0,
  records_rejected bigint NOT NULL DEFAULT 0,
  more boolean,
  error_code text,
  error_message text,
  holder text NOT NULL,
  -- Epoch milliseconds, compared with the store's clock (which tests move), not the server's.
  lease_until bigint NOT NULL
);
CREATE INDEX runs_by_sync ON runs (sync, id);
-- At most one live run per sync, whatever the callers do.
CREATE UNIQUE INDEX runs_one_running ON runs (sync) WHERE status = 'running';

CREATE TABLE data (
  -- Bytewise order, so prefix listing by range matches the SQLite store and '%' and '_' mean themselves.
  key text COLLATE "C" PRIMARY KEY,
  value json NOT NULL,
  updated_at timestamptz NOT NULL
);

CREATE TABLE dead_letters (
  id bigserial PRIMARY KEY,
  sync text NOT NULL,
  run_id bigint NOT NULL,
  batch integer NOT NULL,
  cursor_from json,
  cursor_to json,
  -- JSON text of the key values: `json` has no equality, and the open-letter index needs one.
  record_key text,
  record json,
  reason text NOT NULL,
  attempts integer NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL,
  last_failed_at timestamptz NOT NULL,
  retried_at timestamptz
);
CREATE INDEX dead_letters_by_sync ON dead_letters (sync, id);
-- A record that fails again while its dead letter is open (re-read by a lookback window, say)
-- updates that letter instead of adding another.
CREATE UNIQUE INDEX dead_letters_open_by_key ON dead_letters (sync, record_key) WHERE retried_at IS NULL;
