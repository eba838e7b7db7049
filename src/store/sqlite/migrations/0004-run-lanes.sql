-- The lane a run held: one running run per lane (a bundle), whoever started it, CLI or runtime.
ALTER TABLE runs ADD COLUMN lane TEXT;
CREATE UNIQUE INDEX runs_one_running_per_lane ON runs (lane) WHERE status = 'running' AND lane IS NOT NULL;
