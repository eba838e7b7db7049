-- The lane a run held: one running run per lane (a bundle), whoever started it, CLI or runtime.
-- (0002 and 0003 are the SQLite store's run queue and webhook receipts, which the local runtime keeps
-- in the embedded store; the numbers stay the same across stores.)
ALTER TABLE runs ADD COLUMN lane TEXT;
CREATE UNIQUE INDEX runs_one_running_per_lane ON runs (lane) WHERE status = 'running' AND lane IS NOT NULL;
