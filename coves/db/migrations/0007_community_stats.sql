-- Community counters move out of the wide communities row into a narrow table.
--
-- Every new post and every subscription change rewrote a communities row: a
-- non-HOT update (subscriber_count and last_post_at are indexed) that added
-- an entry to each of its nine indexes, dozens for the GIN trigram index.
-- That was a fifth of the indexer's database time. A stats row has three
-- small indexes. It is keyed by community DID alone, so counts are kept for
-- posts and subscriptions that arrive before their community's profile.
CREATE TABLE community_stats (
    did              text PRIMARY KEY,
    subscriber_count integer NOT NULL DEFAULT 0,
    post_count       integer NOT NULL DEFAULT 0,
    last_post_at     timestamptz
);
CREATE INDEX community_stats_popular ON community_stats (subscriber_count DESC, did);
CREATE INDEX community_stats_active ON community_stats (last_post_at DESC NULLS LAST, did);

INSERT INTO community_stats (did, subscriber_count, post_count, last_post_at)
SELECT k.did, s.n, p.n, p.last
FROM (SELECT did FROM communities
      UNION SELECT community_did FROM subscriptions WHERE deleted_at IS NULL
      UNION SELECT community_did FROM posts WHERE deleted_at IS NULL) k
CROSS JOIN LATERAL (
    SELECT count(DISTINCT user_did)::int AS n FROM subscriptions
    WHERE community_did = k.did AND deleted_at IS NULL) s
CROSS JOIN LATERAL (
    SELECT count(*)::int AS n, max(ranked_at) AS last FROM posts
    WHERE community_did = k.did AND deleted_at IS NULL) p;

-- Listings join communities to their stats row: every community has one,
-- whoever writes the community (the indexer, an operator, a test fixture).
CREATE FUNCTION coves_community_stats_row() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO community_stats (did) VALUES (NEW.did) ON CONFLICT (did) DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER communities_stats_row AFTER INSERT ON communities
    FOR EACH ROW EXECUTE FUNCTION coves_community_stats_row();

DROP INDEX communities_popular;
DROP INDEX communities_active;
ALTER TABLE communities DROP COLUMN subscriber_count,
                        DROP COLUMN post_count,
                        DROP COLUMN last_post_at;
