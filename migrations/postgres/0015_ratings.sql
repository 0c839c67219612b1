-- Satisfaction (desk-api.md, "Rating"): the visitor's rating of a closed
-- conversation, on the conversation's row so that every room shape reads it
-- without a join. NULL until rated; a conversation is rated once (the
-- update that rates it requires `rating IS NULL`).
ALTER TABLE conversations ADD COLUMN rating BIGINT;
ALTER TABLE conversations ADD COLUMN rating_comment TEXT;
ALTER TABLE conversations ADD COLUMN rated_at BIGINT;
