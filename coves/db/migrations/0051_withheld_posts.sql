-- Posts the indexer keeps out of views although their record is live, and why
-- (today only 'content_rules': the post breaks its community's contentRules).
-- Such rows also carry deleted_at, so every feed, count and partial index
-- already leaves them out; this column tells them apart from author deletes.
ALTER TABLE posts ADD COLUMN withheld text;
