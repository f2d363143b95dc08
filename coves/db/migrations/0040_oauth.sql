-- Coves as an atproto OAuth client (docs/oauth.md).
--
-- oauth_requests: sign-ins in progress, between the redirect to the user's
-- authorization server and its callback. The PKCE verifier and the DPoP key
-- are sealed (SecretBox, bound to the state). Rows live ten minutes.
CREATE TABLE oauth_requests (
    state            text PRIMARY KEY,
    issuer           text NOT NULL,
    did              text NOT NULL,          -- the account the sign-in was started for
    handle           text NOT NULL,
    pds_url          text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('web', 'mobile')),
    redirect_target  text NOT NULL,          -- from the allowlist, checked at /oauth/login
    client_state     text,                   -- the web client's own state, echoed back
    browser_binding  bytea,                  -- SHA-256 of the web flow's binding cookie
    secrets_sealed   bytea NOT NULL,         -- {verifier, dpop_key}; coves.db.sealed
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL
);
CREATE INDEX oauth_requests_expires ON oauth_requests (expires_at);

-- oauth_sessions: one per sign-in. The client holds only a sealed token
-- naming (did, session_id); tokens and the DPoP key are sealed here, bound
-- to the session id. Deleting the row is what signs the client out.
CREATE TABLE oauth_sessions (
    session_id           text PRIMARY KEY,
    did                  text NOT NULL,
    handle               text NOT NULL,
    pds_url              text NOT NULL,
    issuer               text NOT NULL,
    scope                text NOT NULL,
    secrets_sealed       bytea NOT NULL,     -- {access_token, refresh_token, dpop_key}
    access_expires_at    timestamptz NOT NULL,
    refresh_lease_until  timestamptz,        -- one refresh at a time across processes
    created_at           timestamptz NOT NULL DEFAULT now(),
    refreshed_at         timestamptz NOT NULL DEFAULT now(),
    expires_at           timestamptz NOT NULL -- when the refresh token can no longer work
);
CREATE INDEX oauth_sessions_did ON oauth_sessions (did);
CREATE INDEX oauth_sessions_expires ON oauth_sessions (expires_at);
