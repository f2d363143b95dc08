-- Crash detection for stream consumers (issue 12, item 1).
--
-- Ingest batches commit asynchronously (synchronous_commit = off): a crash of
-- the server can forget its last few commits, cursor included. The consumer
-- must then resume from the cursor that survived, not from where it was in
-- memory. A consumer registers a random token here when it reads its cursor,
-- and every batch checks, inside its own transaction, that the token is still
-- there. The table is UNLOGGED: PostgreSQL empties it during crash recovery
-- (and it is empty on a promoted standby), so a missing token means exactly
-- "the server may have lost commits since the cursor was read".
CREATE UNLOGGED TABLE ingest_sessions (
    token      text PRIMARY KEY,
    source     text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now()
);

-- Raises SQLSTATE CV001 when the session is gone, so a batch can check it in
-- the statement that takes the writers' lock, without waiting for a result.
CREATE FUNCTION ingest_session_alive(p_token text) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM ingest_sessions WHERE token = p_token) THEN
        RAISE EXCEPTION 'ingest session lost: the database restarted since the cursor was read'
            USING ERRCODE = 'CV001';
    END IF;
    RETURN true;
END
$$;
