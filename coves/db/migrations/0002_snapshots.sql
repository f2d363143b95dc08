-- Frozen orderings of ranked listings (see coves/snapshots.py).
CREATE TABLE listing_snapshots (
    id         text PRIMARY KEY,
    key        text NOT NULL,
    items      text[] NOT NULL,
    taken_at   double precision NOT NULL,   -- unix seconds
    expires_at timestamptz NOT NULL
);
CREATE INDEX listing_snapshots_expiry ON listing_snapshots (expires_at);
