-- Service-auth token ids already used, shared by every process on this database and kept
-- across restarts, so a captured token cannot be replayed anywhere until it expires.
-- The key is a SHA-256 of "<issuer> <jti>"; rows past expires_at are pruned.
CREATE TABLE auth_replay (
    key         bytea PRIMARY KEY,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX auth_replay_expires ON auth_replay (expires_at);
