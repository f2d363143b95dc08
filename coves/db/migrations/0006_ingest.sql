-- Ingestion: leave room on post and comment pages so counter updates that
-- change no indexed column (comment_count, reply_count) can be HOT updates
-- (no new entry in any of the tables' indexes). Applies to pages written
-- from now on.
ALTER TABLE posts SET (fillfactor = 80);
ALTER TABLE comments SET (fillfactor = 80);
