-- Checkpoints: a version every save must follow (a checkpoint never moves backwards), the position
-- of a lookback sweep under way, records found unchanged, and whether the backfill estimate is a count.
ALTER TABLE checkpoints ADD COLUMN version bigint NOT NULL DEFAULT 0;
ALTER TABLE checkpoints ADD COLUMN sweep json;
ALTER TABLE checkpoints ADD COLUMN records_unchanged bigint NOT NULL DEFAULT 0;
ALTER TABLE checkpoints ADD COLUMN backfill_estimate_exact boolean NOT NULL DEFAULT false;
-- A run's last heartbeat: an abandoned run ends there (it could write no later), not when it was noticed.
ALTER TABLE runs ADD COLUMN renewed_at timestamptz;
ALTER TABLE runs ADD COLUMN records_unchanged bigint NOT NULL DEFAULT 0;

-- A letter is closed when its record is written (by a later run, or a retry) or gone from the
-- source; the open-letter index follows the renamed column.
ALTER TABLE dead_letters RENAME COLUMN retried_at TO closed_at;
ALTER TABLE dead_letters ADD COLUMN closed_by_run bigint;
ALTER TABLE dead_letters ADD COLUMN resolution text;

-- A hash of the last version of each record written, so one re-read unchanged is not written again.
CREATE TABLE fingerprints (
  sync text NOT NULL,
  -- Bytewise order: keys are JSON text, compared for equality only.
  record_key text COLLATE "C" NOT NULL,
  hash text NOT NULL,
  -- The record's cursor value as epoch ms where it is a time; behind every lookback window, pruned.
  cursor_ms double precision,
  PRIMARY KEY (sync, record_key)
);
CREATE INDEX fingerprints_by_time ON fingerprints (sync, cursor_ms);
