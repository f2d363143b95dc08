-- Communities hosted on this instance's PDS: the account Coves provisioned for each,
-- its sealed credentials, and the provisioning state that makes creation crash-safe.
--
-- A row is written before anything is asked of the PDS ('reserved', with the generated
-- password already sealed), so a crash at any later point leaves a row that says how far
-- creation got and holds what is needed to finish it: 'reserved' -> the account may or
-- may not exist (a login with the stored password tells); 'account_created' -> the
-- account exists, the profile record is still to be written; 'active' -> done.
-- The primary key on the lowercased name makes two concurrent creates of one name
-- yield exactly one row. Indexed communities stay in `communities` (the profile record,
-- written through the indexer); this table is the hosting side only.
CREATE TABLE community_accounts (
    name               text PRIMARY KEY CHECK (name = lower(name)),
    handle             text NOT NULL UNIQUE,
    email              text NOT NULL,
    pds_url            text NOT NULL,
    created_by         text NOT NULL,
    did                text UNIQUE,
    state              text NOT NULL
                       CHECK (state IN ('reserved', 'account_created', 'active', 'deleted')),
    profile            jsonb NOT NULL,   -- the profile record creation writes
    -- Sealed with SecretBox (AES-256-GCM); the AAD binds each to this row and column:
    -- 'community_accounts:<name>:password' / ':access' / ':refresh'.
    password_sealed    bytea NOT NULL,
    access_sealed      bytea,
    refresh_sealed     bytea,
    access_expires_at  timestamptz,
    refresh_expires_at timestamptz,
    refreshed_at       timestamptz,
    refresh_failures   integer NOT NULL DEFAULT 0,
    locked_out         boolean NOT NULL DEFAULT false,  -- neither refresh nor password works
    create_attempts    integer NOT NULL DEFAULT 0,      -- createAccount calls sent
    last_error         text,
    lease_until        timestamptz,      -- a worker is provisioning it until then
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at         timestamptz
);
CREATE INDEX community_accounts_creator ON community_accounts (created_by, created_at);
CREATE INDEX community_accounts_unfinished ON community_accounts (updated_at)
    WHERE state IN ('reserved', 'account_created');
CREATE INDEX community_accounts_expiry ON community_accounts (access_expires_at)
    WHERE state = 'active';
