-- Fewer index entries per indexed vote and comment.
--
-- votes_voter_subject indexed every vote by (voter, subject) so the indexer
-- could find the live votes of a pair; the effective one is already in
-- votes_one_effective, so only live votes waiting behind it (a voter with two
-- live votes on one subject, rare) need their own, partial, index.
-- comments_parent_live duplicated comments_parent_new's leading column for
-- the indexer's reply recount, which reads the parent's few replies anyway.
DROP INDEX votes_voter_subject;
CREATE INDEX votes_standby ON votes (voter_did, subject_uri)
    WHERE deleted_at IS NULL AND NOT effective;
DROP INDEX comments_parent_live;
