-- feed.searchPosts documents of new posts, one statement per INSERT instead of one per row.
-- The row trigger of 0020 ran an INSERT .. ON CONFLICT for every post the indexer inserted
-- (a batch inserts many at once); from the batch's transition table it is one
-- INSERT .. SELECT. bench/ingest.py (200 000 events, 20 000 posts): 19.6 s with this,
-- 19.9-20.9 s with the row trigger, 18.2 s with none (the text search itself remains).
-- Edits and deletes (UPDATE OF title, content, deleted_at) keep the row trigger: they are
-- rare, and a trigger with a transition table cannot name columns.
DROP TRIGGER posts_search_row ON posts;

CREATE FUNCTION coves_post_search_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO post_search (uri, document)
    SELECT uri, coves_post_document(title, content) FROM inserted_posts
    WHERE deleted_at IS NULL
    ON CONFLICT (uri) DO UPDATE SET document = EXCLUDED.document;
    RETURN NULL;
END
$$;

CREATE TRIGGER posts_search_inserted AFTER INSERT ON posts
    REFERENCING NEW TABLE AS inserted_posts
    FOR EACH STATEMENT EXECUTE FUNCTION coves_post_search_inserted();

CREATE TRIGGER posts_search_row AFTER UPDATE OF title, content, deleted_at ON posts
    FOR EACH ROW EXECUTE FUNCTION coves_post_search_row();
