-- Aggregators registered with this instance (social.coves.aggregator.register):
-- the domain that proved control of the DID, and what the DID resolved to.
CREATE TABLE aggregator_registrations (
    did           text PRIMARY KEY,
    domain        text NOT NULL,
    handle        text,
    pds_url       text,
    registered_at timestamptz NOT NULL
);

-- API keys of registered aggregators: only a SHA-256 of the key is kept (the
-- key is 256 random bits, so no slow hash is needed); at most one live key
-- per aggregator.
CREATE TABLE aggregator_api_keys (
    id             bigserial PRIMARY KEY,
    aggregator_did text NOT NULL,
    key_hash       bytea NOT NULL UNIQUE,
    key_prefix     text NOT NULL,              -- shown to the owner to tell keys apart
    created_at     timestamptz NOT NULL,
    last_used_at   timestamptz,
    revoked_at     timestamptz
);
CREATE UNIQUE INDEX aggregator_api_keys_live ON aggregator_api_keys (aggregator_did)
    WHERE revoked_at IS NULL;

-- Listings of authorizations by aggregator and by community, newest first.
CREATE INDEX aggregator_authorizations_aggregator_page
    ON aggregator_authorizations (aggregator_did, created_at DESC, uri DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX aggregator_authorizations_community_page
    ON aggregator_authorizations (community_did, created_at DESC, uri DESC)
    WHERE deleted_at IS NULL;
DROP INDEX aggregator_authorizations_aggregator;
DROP INDEX aggregator_authorizations_community;
