-- Listing snapshots, cheap to write and bounded (coves/snapshots.py).
--
-- Every new ranked first page (a timeline per viewer, each feed every few
-- seconds) stores up to 1 000 URIs. As a text[] that cost milliseconds of
-- client CPU to encode, and each insert waited for a durable commit, for
-- rows whose loss only means an open cursor asks the client to start again.
-- Now: one newline-joined text value, in an UNLOGGED table (no WAL, no flush
-- to wait for; emptied if PostgreSQL crashes), swept by housekeeping to the
-- TTL and to FEED_SNAPSHOT_MAX_ROWS.
ALTER TABLE listing_snapshots RENAME TO listing_snapshots_old;
ALTER INDEX listing_snapshots_expiry RENAME TO listing_snapshots_old_expiry;
CREATE UNLOGGED TABLE listing_snapshots (
    id         text PRIMARY KEY,
    key        text NOT NULL,
    items      text NOT NULL,                 -- URIs, one per line
    taken_at   double precision NOT NULL,     -- unix seconds
    expires_at timestamptz NOT NULL
);
CREATE INDEX listing_snapshots_expiry ON listing_snapshots (expires_at);
INSERT INTO listing_snapshots (id, key, items, taken_at, expires_at)
SELECT id, key, array_to_string(items, E'\n'), taken_at, expires_at
FROM listing_snapshots_old WHERE expires_at > now();
DROP TABLE listing_snapshots_old;
