-- One refresh per key across the processes of a deployment (coves/single_refresh.py):
-- a process holds a key's lease while it renews a token (a user's OAuth session,
-- a hosted community's PDS session); others wait for its result. A lease left by a
-- crashed process simply expires. Nothing here needs to survive a crash of
-- PostgreSQL: UNLOGGED, like the other shared process state (0080).
CREATE UNLOGGED TABLE refresh_leases (
    scope       text NOT NULL,            -- what is refreshed: oauth_session, community_session
    key         text NOT NULL,            -- which one: a session id, a community name
    holder      text NOT NULL,            -- a random id per claim: only its holder releases it
    until       timestamptz NOT NULL,     -- after this, another process may take it
    PRIMARY KEY (scope, key)
);

COMMENT ON COLUMN oauth_sessions.refresh_lease_until IS
    'unused since migration 0100 (refresh_leases); kept for processes of the previous '
    'release during a rolling restart';
