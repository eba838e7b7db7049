-- Signatures of webhook requests already accepted, kept for the replay window, so a captured
-- request replayed within it is refused, across restarts too.
CREATE TABLE webhook_receipts (
  signature TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL
);
CREATE INDEX webhook_receipts_expiry ON webhook_receipts (expires_at);
