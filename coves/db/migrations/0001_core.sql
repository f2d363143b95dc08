-- Core schema. No foreign keys between indexed tables: records arrive from the
-- network in any order (a vote before its post, a post before its author), so
-- references are resolved at read time and counters are recomputed from rows.

-- Functions used by both the indexer and the read API (see coves/ranking.py,
-- which mirrors them and documents the formulas).
CREATE FUNCTION coves_hot_rank(score integer, ranked_at timestamptz)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT sign(score)::double precision * log(greatest(abs(score), 1)::double precision)
         + (extract(epoch FROM ranked_at) - 1704067200) / 45000.0
$$;

CREATE FUNCTION coves_controversy_rank(ups integer, downs integer)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN ups <= 0 OR downs <= 0 THEN 0.0
                ELSE power((ups + downs)::double precision,
                           least(ups, downs)::double precision / greatest(ups, downs))
           END
$$;

-- Per-record revision and tombstone for every record we index. A commit is
-- applied only when its rev is newer than the stored one: replays and stale
-- updates/deletes become no-ops, and a delete keeps blocking older creates.
CREATE TABLE record_state (
    did        text NOT NULL,
    collection text NOT NULL,
    rkey       text NOT NULL,
    rev        text NOT NULL,
    cid        text,
    deleted    boolean NOT NULL DEFAULT false,
    time_us    bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (did, collection, rkey)
);

-- Every account we know of: people, communities, aggregators.
CREATE TABLE users (
    did               text PRIMARY KEY,
    handle            text,                     -- lowercased; NULL until known
    display_name      text,
    description       text,
    avatar            jsonb,                    -- blob ref {"cid", "mimeType", "size"}
    banner            jsonb,
    pds_url           text,
    active            boolean NOT NULL DEFAULT true,
    account_status    text,                     -- takendown/suspended/deleted/deactivated
    identity_time_us  bigint NOT NULL DEFAULT 0,  -- newest identity event applied
    account_time_us   bigint NOT NULL DEFAULT 0,  -- newest account event applied
    handle_checked_at timestamptz,              -- last resolution attempt
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_handle_key ON users (handle) WHERE handle IS NOT NULL;
CREATE INDEX users_unresolved ON users (created_at) WHERE handle IS NULL;

CREATE TABLE communities (
    did                      text PRIMARY KEY,
    name                     text NOT NULL,
    display_name             text,
    description              text,
    description_facets       jsonb,
    avatar                   jsonb,
    banner                   jsonb,
    created_by               text NOT NULL,
    hosted_by                text NOT NULL,
    visibility               text NOT NULL DEFAULT 'public'
                             CHECK (visibility IN ('public', 'unlisted', 'private')),
    allow_external_discovery boolean NOT NULL DEFAULT true,
    moderation_type          text,
    content_warnings         text[] NOT NULL DEFAULT '{}',
    rules                    jsonb,
    categories               text[] NOT NULL DEFAULT '{}',
    language                 text,
    -- hostedBy verification: local communities are verified on arrival;
    -- foreign ones wait for the did:web verifier.
    verification             text NOT NULL DEFAULT 'unverified'
                             CHECK (verification IN ('verified', 'unverified', 'rejected')),
    verification_reason      text,
    verified_at              timestamptz,
    subscriber_count         integer NOT NULL DEFAULT 0,
    post_count               integer NOT NULL DEFAULT 0,
    last_post_at             timestamptz,
    search_trigrams          text[] NOT NULL DEFAULT '{}',
    record                   jsonb NOT NULL,
    record_cid               text NOT NULL,
    created_at               timestamptz NOT NULL,
    indexed_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    deleted_at               timestamptz
);
CREATE INDEX communities_hosted_name ON communities (hosted_by, lower(name));
CREATE INDEX communities_lower_name ON communities (lower(name));
CREATE INDEX communities_popular ON communities (subscriber_count DESC, did)
    WHERE deleted_at IS NULL AND verification = 'verified';
CREATE INDEX communities_new ON communities (created_at DESC, did)
    WHERE deleted_at IS NULL AND verification = 'verified';
CREATE INDEX communities_active ON communities (last_post_at DESC NULLS LAST, did)
    WHERE deleted_at IS NULL AND verification = 'verified';
CREATE INDEX communities_alpha ON communities (lower(name), did)
    WHERE deleted_at IS NULL AND verification = 'verified';
CREATE INDEX communities_trigrams ON communities USING gin (search_trigrams);
CREATE INDEX communities_unverified ON communities (indexed_at)
    WHERE verification = 'unverified' AND deleted_at IS NULL;

-- Subscriptions and blocks live in the subscriber's repo.
CREATE TABLE subscriptions (
    uri                text PRIMARY KEY,
    user_did           text NOT NULL,
    rkey               text NOT NULL,
    community_did      text NOT NULL,
    content_visibility smallint NOT NULL DEFAULT 3 CHECK (content_visibility BETWEEN 1 AND 5),
    record_cid         text NOT NULL,
    created_at         timestamptz NOT NULL,
    indexed_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at         timestamptz
);
CREATE INDEX subscriptions_user ON subscriptions (user_did, community_did) WHERE deleted_at IS NULL;
CREATE INDEX subscriptions_community ON subscriptions (community_did, user_did)
    WHERE deleted_at IS NULL;

CREATE TABLE blocks (
    uri           text PRIMARY KEY,
    user_did      text NOT NULL,
    rkey          text NOT NULL,
    community_did text NOT NULL,
    record_cid    text NOT NULL,
    created_at    timestamptz NOT NULL,
    indexed_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz
);
CREATE INDEX blocks_user ON blocks (user_did, community_did) WHERE deleted_at IS NULL;

-- Posts live in the community's repo.
CREATE TABLE posts (
    uri              text PRIMARY KEY,
    rkey             text NOT NULL,
    cid              text NOT NULL,
    community_did    text NOT NULL,
    author_did       text NOT NULL,
    title            text,
    content          text,
    facets           jsonb,
    embed            jsonb,
    labels           jsonb,
    langs            text[] NOT NULL DEFAULT '{}',
    record           jsonb NOT NULL,
    created_at       timestamptz NOT NULL,        -- as the record claims
    ranked_at        timestamptz NOT NULL,        -- least(created_at, first indexed): no future boost
    indexed_at       timestamptz NOT NULL DEFAULT now(),
    edited_at        timestamptz,
    deleted_at       timestamptz,
    upvote_count     integer NOT NULL DEFAULT 0,
    downvote_count   integer NOT NULL DEFAULT 0,
    score            integer NOT NULL DEFAULT 0,
    comment_count    integer NOT NULL DEFAULT 0,
    hot_rank         double precision NOT NULL DEFAULT 0,
    controversy_rank double precision NOT NULL DEFAULT 0
);
CREATE INDEX posts_community_new ON posts (community_did, ranked_at DESC, uri DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX posts_community_hot ON posts (community_did, hot_rank DESC, uri DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX posts_community_top ON posts (community_did, score DESC, ranked_at DESC, uri DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX posts_community_controversial
    ON posts (community_did, controversy_rank DESC, ranked_at DESC, uri DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX posts_new ON posts (ranked_at DESC, uri DESC) WHERE deleted_at IS NULL;
CREATE INDEX posts_hot ON posts (hot_rank DESC, uri DESC) WHERE deleted_at IS NULL;
CREATE INDEX posts_top ON posts (score DESC, ranked_at DESC, uri DESC) WHERE deleted_at IS NULL;
CREATE INDEX posts_controversial ON posts (controversy_rank DESC, ranked_at DESC, uri DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX posts_author ON posts (author_did, ranked_at DESC, uri DESC) WHERE deleted_at IS NULL;

-- Comments live in the commenter's repo. Deleted comments keep their row (and
-- place in the thread) so replies under them stay reachable.
CREATE TABLE comments (
    uri              text PRIMARY KEY,
    rkey             text NOT NULL,
    cid              text NOT NULL,
    commenter_did    text NOT NULL,
    root_uri         text NOT NULL,
    root_cid         text NOT NULL,
    parent_uri       text NOT NULL,
    parent_cid       text NOT NULL,
    content          text,
    facets           jsonb,
    embed            jsonb,
    labels           jsonb,
    langs            text[] NOT NULL DEFAULT '{}',
    record           jsonb,
    created_at       timestamptz NOT NULL,
    ranked_at        timestamptz NOT NULL,
    indexed_at       timestamptz NOT NULL DEFAULT now(),
    edited_at        timestamptz,
    deleted_at       timestamptz,
    upvote_count     integer NOT NULL DEFAULT 0,
    downvote_count   integer NOT NULL DEFAULT 0,
    score            integer NOT NULL DEFAULT 0,
    reply_count      integer NOT NULL DEFAULT 0,
    hot_rank         double precision NOT NULL DEFAULT 0,
    controversy_rank double precision NOT NULL DEFAULT 0
);
CREATE INDEX comments_parent_hot ON comments (parent_uri, hot_rank DESC, uri DESC);
CREATE INDEX comments_parent_top ON comments (parent_uri, score DESC, ranked_at DESC, uri DESC);
CREATE INDEX comments_parent_new ON comments (parent_uri, ranked_at DESC, uri DESC);
CREATE INDEX comments_root_live ON comments (root_uri) WHERE deleted_at IS NULL;
CREATE INDEX comments_parent_live ON comments (parent_uri) WHERE deleted_at IS NULL;
CREATE INDEX comments_commenter ON comments (commenter_did, ranked_at DESC, uri DESC)
    WHERE deleted_at IS NULL;

-- Votes live in the voter's repo. Of several live votes by one voter on one
-- subject, only the newest (highest rev) is effective and counted.
CREATE TABLE votes (
    uri         text PRIMARY KEY,
    rkey        text NOT NULL,
    cid         text NOT NULL,
    rev         text NOT NULL,
    voter_did   text NOT NULL,
    subject_uri text NOT NULL,
    subject_cid text NOT NULL,
    direction   smallint NOT NULL CHECK (direction IN (-1, 1)),
    created_at  timestamptz NOT NULL,
    indexed_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    effective   boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX votes_one_effective ON votes (voter_did, subject_uri) WHERE effective;
CREATE INDEX votes_subject_effective ON votes (subject_uri) INCLUDE (direction) WHERE effective;
CREATE INDEX votes_voter_subject ON votes (voter_did, subject_uri);

CREATE TABLE aggregators (
    did               text PRIMARY KEY,
    display_name      text NOT NULL,
    description       text,
    avatar            jsonb,
    config_schema     jsonb,
    source_url        text,
    maintainer_did    text,
    record            jsonb NOT NULL,
    record_cid        text NOT NULL,
    created_at        timestamptz NOT NULL,
    indexed_at        timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz,
    communities_using integer NOT NULL DEFAULT 0,
    posts_created     integer NOT NULL DEFAULT 0
);

-- Authorizations live in the community's repo.
CREATE TABLE aggregator_authorizations (
    uri            text PRIMARY KEY,
    community_did  text NOT NULL,
    rkey           text NOT NULL,
    aggregator_did text NOT NULL,
    enabled        boolean NOT NULL,
    config         jsonb,
    created_by     text NOT NULL,
    disabled_at    timestamptz,
    disabled_by    text,
    record_cid     text NOT NULL,
    created_at     timestamptz NOT NULL,
    indexed_at     timestamptz NOT NULL DEFAULT now(),
    deleted_at     timestamptz
);
CREATE INDEX aggregator_authorizations_aggregator
    ON aggregator_authorizations (aggregator_did, created_at DESC) WHERE deleted_at IS NULL;
CREATE INDEX aggregator_authorizations_community
    ON aggregator_authorizations (community_did, created_at DESC) WHERE deleted_at IS NULL;

-- Stream position, written in the same transaction as the events it covers.
CREATE TABLE ingest_cursor (
    name       text PRIMARY KEY,
    time_us    bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Events we could not index, kept (bounded) for inspection.
CREATE TABLE dead_letters (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    reason      text NOT NULL,
    detail      text,
    did         text,
    collection  text,
    rkey        text,
    time_us     bigint,
    raw         text NOT NULL
);
CREATE INDEX dead_letters_reason ON dead_letters (reason, id DESC);

-- Instance secrets (for example a generated signing key), sealed with ENCRYPTION_KEY.
CREATE TABLE instance_secrets (
    name       text PRIMARY KEY,
    sealed     bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
