-- Read path: user blocks, profile record dates, profile stats, post search.

-- User-to-user blocks: social.coves.actor.block records, in the blocker's repo.
-- The read rules hide each side's content from the other (coves/read/rules.py).
CREATE TABLE user_blocks (
    uri         text PRIMARY KEY,
    blocker_did text NOT NULL,
    rkey        text NOT NULL,
    subject_did text NOT NULL,
    record_cid  text NOT NULL,
    created_at  timestamptz NOT NULL,
    indexed_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    rev         text
);
-- Relations of a page: whom the viewer blocks among its authors, and who blocks the viewer.
CREATE INDEX user_blocks_pair ON user_blocks (blocker_did, subject_did) WHERE deleted_at IS NULL;
CREATE INDEX user_blocks_subject ON user_blocks (subject_did, blocker_did)
    WHERE deleted_at IS NULL;
-- actor.getBlockedUsers: the viewer's blocks, newest first.
CREATE INDEX user_blocks_newest ON user_blocks (blocker_did, created_at DESC, uri DESC)
    WHERE deleted_at IS NULL;

-- community.getBlockedCommunities: the viewer's community blocks, newest first.
CREATE INDEX blocks_user_newest ON blocks (user_did, created_at DESC, uri DESC)
    WHERE deleted_at IS NULL;

-- When the account says it was created (its social.coves.actor.profile record's
-- createdAt), as opposed to users.created_at, when Coves first saw the DID.
ALTER TABLE users ADD COLUMN profile_created_at timestamptz;

-- Profile stats read only index entries: the author index carries each post's
-- score and community (reputation, communities posted in), the commenter index
-- each comment's score. Vote counter updates of posts and comments are never
-- HOT (score is indexed already), so the wider entries cost no extra writes.
CREATE INDEX posts_author_v2 ON posts (author_did, ranked_at DESC, uri DESC)
    INCLUDE (score, community_did) WHERE deleted_at IS NULL;
DROP INDEX posts_author;
ALTER INDEX posts_author_v2 RENAME TO posts_author;
CREATE INDEX comments_commenter_v2 ON comments (commenter_did, ranked_at DESC, uri DESC)
    INCLUDE (score, root_uri) WHERE deleted_at IS NULL;
DROP INDEX comments_commenter;
ALTER INDEX comments_commenter_v2 RENAME TO comments_commenter;

-- getComments?parentRkey: a comment named by its record key within one post.
CREATE INDEX comments_root_rkey ON comments (root_uri, rkey);

-- feed.searchPosts: full-text documents of live posts (title weighted above the
-- text), in their own narrow table so that the vote counter updates of posts
-- (never HOT) do not re-insert every lexeme into a GIN index. Kept by a trigger
-- on the columns it is made of, whoever writes posts.
CREATE TABLE post_search (
    uri      text PRIMARY KEY,
    document tsvector NOT NULL
);
CREATE INDEX post_search_document ON post_search USING gin (document);

CREATE FUNCTION coves_post_document(title text, content text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A')
        || setweight(to_tsvector('english'::regconfig, coalesce(content, '')), 'B')
$$;

CREATE FUNCTION coves_post_search_row() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.deleted_at IS NOT NULL THEN
        DELETE FROM post_search WHERE uri = NEW.uri;
    ELSE
        INSERT INTO post_search (uri, document)
        VALUES (NEW.uri, coves_post_document(NEW.title, NEW.content))
        ON CONFLICT (uri) DO UPDATE SET document = EXCLUDED.document;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER posts_search_row AFTER INSERT OR UPDATE OF title, content, deleted_at ON posts
    FOR EACH ROW EXECUTE FUNCTION coves_post_search_row();

INSERT INTO post_search (uri, document)
SELECT uri, coves_post_document(title, content) FROM posts WHERE deleted_at IS NULL;
