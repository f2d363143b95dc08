-- Read API (coves/db/queries/feeds.py): feeds hide posts by deactivated
-- authors with an anti-join against this tiny partial index, so no feed
-- query has to scan or hash the whole users table.
CREATE INDEX users_inactive ON users (did) WHERE NOT active;
