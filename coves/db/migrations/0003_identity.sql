-- Identity cache: resolved DID documents and handle -> DID answers, shared by
-- every process, in front of the network. A NULL value with an error is a
-- negative entry (kept only for IDENTITY_NEGATIVE_TTL_SECONDS).
CREATE TABLE identity_cache (
    kind        text NOT NULL CHECK (kind IN ('did', 'handle')),
    key         text NOT NULL,               -- the DID (case kept) or lowercased handle
    did         text,                        -- the DID this entry is about, for purge
    value       jsonb,                       -- DID document, or {"did": ...} for a handle
    error       text,                        -- negative entries: why resolution failed
    expires_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, key)
);
CREATE INDEX identity_cache_did ON identity_cache (did) WHERE did IS NOT NULL;
CREATE INDEX identity_cache_expires ON identity_cache (expires_at);
