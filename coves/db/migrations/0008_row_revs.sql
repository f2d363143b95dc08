-- Each indexed row carries the rev of the commit that wrote it.
--
-- Until now every commit also upserted a record_state row (a second heap
-- row and index entry per event) and every batch read them back: an eighth
-- of the indexer's database time. Rows keyed by URI now keep their own rev;
-- record_state keeps what no such row can: tombstones of deletes (a delete
-- may arrive before, or instead of, its record) and the revs of records
-- stored per repo (community profile, aggregator service, actor profile).
-- The stored rev of a record is the newer of the two.
ALTER TABLE posts ADD COLUMN rev text;
ALTER TABLE comments ADD COLUMN rev text;
ALTER TABLE subscriptions ADD COLUMN rev text;
ALTER TABLE blocks ADD COLUMN rev text;
ALTER TABLE aggregator_authorizations ADD COLUMN rev text;

UPDATE posts t SET rev = rs.rev FROM record_state rs
WHERE rs.did = t.community_did AND rs.collection = 'social.coves.community.post'
  AND rs.rkey = t.rkey;
UPDATE comments t SET rev = rs.rev FROM record_state rs
WHERE rs.did = t.commenter_did AND rs.collection = 'social.coves.community.comment'
  AND rs.rkey = t.rkey;
UPDATE subscriptions t SET rev = rs.rev FROM record_state rs
WHERE rs.did = t.user_did AND rs.collection = 'social.coves.community.subscription'
  AND rs.rkey = t.rkey;
UPDATE blocks t SET rev = rs.rev FROM record_state rs
WHERE rs.did = t.user_did AND rs.collection = 'social.coves.community.block'
  AND rs.rkey = t.rkey;
UPDATE aggregator_authorizations t SET rev = rs.rev FROM record_state rs
WHERE rs.did = t.community_did AND rs.collection = 'social.coves.aggregator.authorization'
  AND rs.rkey = t.rkey;

-- Posts and comments that votes or replies referenced before they existed.
-- A post or comment the indexer writes for the first time starts from zero
-- and takes its batch's counter changes, unless it is listed here: then its
-- counters are recounted from the rows that were waiting for it.
CREATE TABLE awaited_subjects (
    uri text PRIMARY KEY
);
INSERT INTO awaited_subjects (uri)
SELECT v.subject_uri FROM votes v
WHERE v.effective
  AND NOT EXISTS (SELECT 1 FROM posts p WHERE p.uri = v.subject_uri)
  AND NOT EXISTS (SELECT 1 FROM comments c WHERE c.uri = v.subject_uri)
UNION
SELECT c.root_uri FROM comments c
WHERE c.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM posts p WHERE p.uri = c.root_uri)
UNION
SELECT c.parent_uri FROM comments c
WHERE c.deleted_at IS NULL AND c.parent_uri <> c.root_uri
  AND NOT EXISTS (SELECT 1 FROM comments p WHERE p.uri = c.parent_uri);
