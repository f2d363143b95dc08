-- Posts created through Coves, for the limits post.create enforces: posts per
-- account per hour, aggregator posts per community per hour, and the same link
-- posted twice to one community within an hour. A row is written (under a per-
-- poster lock) before the PDS write and removed if that write fails, so
-- concurrent requests cannot slip past a limit. Rows older than a day are pruned.
CREATE TABLE post_submissions (
    id            bigserial PRIMARY KEY,
    author_did    text NOT NULL,
    community_did text NOT NULL,
    link          text,                    -- normalised URL of an external embed
    aggregator    boolean NOT NULL,
    post_uri      text,                    -- set once the PDS accepted the write
    created_at    timestamptz NOT NULL
);
CREATE INDEX post_submissions_author ON post_submissions (author_did, created_at);
CREATE INDEX post_submissions_pair ON post_submissions (author_did, community_did, created_at);
