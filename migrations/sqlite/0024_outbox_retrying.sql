-- The rows waiting for a retry, by their receiver: when one of a receiver's
-- retries gets through, the receiver is back, and its other waiting rows
-- are tried at once rather than at the end of their backoff.
CREATE INDEX outbox_retrying ON outbox (target)
    WHERE sent_at IS NULL AND dropped_at IS NULL AND attempts > 0 AND target IS NOT NULL;
