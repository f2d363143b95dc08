-- One row per `coves backup` run, so every instance sharing the database (and its
-- /metrics, _health and `coves status`) knows how old the newest good backup is.
CREATE TABLE backups (
    id             bigserial PRIMARY KEY,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz NOT NULL DEFAULT now(),
    ok             boolean NOT NULL,
    file           text,
    size_bytes     bigint,
    sha256         text,
    schema_version integer,
    error          text
);
CREATE INDEX backups_ok_finished ON backups (ok, finished_at DESC);
