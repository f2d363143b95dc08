-- State shared by the processes of one deployment (`coves serve --workers N`,
-- or roles split across machines): nothing here needs to survive a crash of
-- PostgreSQL, so the tables are UNLOGGED (no WAL, no durable commit to wait for).

-- Every process says it is alive every few seconds (nurseries/heartbeat.py);
-- any API process answers _health with the whole deployment from here.
CREATE UNLOGGED TABLE process_heartbeats (
    id         text PRIMARY KEY,              -- host:pid
    name       text NOT NULL,                 -- supervisor, api-0, ingest, ...
    role       text NOT NULL,                 -- supervisor, api, ingest, all
    host       text NOT NULL,
    pid        integer NOT NULL,
    healthy    boolean NOT NULL,
    started_at timestamptz NOT NULL,
    seen_at    timestamptz NOT NULL,
    details    jsonb NOT NULL DEFAULT '{}'
);

-- Rate-limit windows counted across processes (coves/xrpc/ratelimit.py,
-- SharedStore): each process adds what it counted about once a second and
-- reads back the total.
CREATE UNLOGGED TABLE rate_limit_counts (
    key          text NOT NULL,
    window_start bigint NOT NULL,             -- unix seconds, a multiple of the window
    hits         integer NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (key, window_start)
);
CREATE INDEX rate_limit_counts_expiry ON rate_limit_counts (expires_at);
