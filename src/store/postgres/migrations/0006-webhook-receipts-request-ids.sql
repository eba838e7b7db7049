-- Signatures of webhook requests already accepted, kept for the replay window, so a captured request
-- replayed within it is refused, across restarts and by every `sluice serve` sharing the store. The
-- SQLite store has had them since its 0003 (a number the PostgreSQL store skipped then).
CREATE TABLE webhook_receipts (
  signature TEXT PRIMARY KEY,
  expires_at BIGINT NOT NULL
);
CREATE INDEX webhook_receipts_expiry ON webhook_receipts (expires_at);

-- Ids of requested runs queued in the pg-boss runtime (its jobs are named by UUIDs; requests by numbers).
CREATE SEQUENCE run_request_ids;
