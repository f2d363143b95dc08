-- Handles are shown only once verified both ways. An #identity event no longer sets
-- users.handle; it makes the account due for verification (handle_retry_at), and the
-- handle backfill sets the handle it verified. A failed verification is retried with
-- exponential backoff (handle_attempts); a verified account is not due (NULL).
ALTER TABLE users ADD COLUMN handle_retry_at timestamptz;
ALTER TABLE users ADD COLUMN handle_attempts integer NOT NULL DEFAULT 0;
UPDATE users SET handle_retry_at = COALESCE(handle_checked_at + interval '1 hour', now())
WHERE handle IS NULL;
-- New rows (the indexer inserts users without a handle) are due at once.
ALTER TABLE users ALTER COLUMN handle_retry_at SET DEFAULT now();
CREATE INDEX users_handle_due ON users (handle_retry_at) WHERE handle_retry_at IS NOT NULL;
DROP INDEX users_unresolved;
