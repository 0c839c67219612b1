-- The rows waiting for a retry, by their receiver: when one of a receiver's
-- retries gets through, the receiver is back, and its other waiting rows
-- are tried at once rather than at the end of their backoff.
CREATE INDEX outbox_retrying ON outbox (target)
    WHERE sent_at IS NULL AND dropped_at IS NULL AND attempts > 0 AND target IS NOT NULL;

-- A row behind a waiting row of its order key is parked until a row of
-- its key is sent or dropped.
ALTER TABLE outbox ADD COLUMN parked BIGINT NOT NULL DEFAULT 0;
-- What a claim reads, in insertion order (the index's entries are all
-- (0, rowid)): neither the sent rows nor the parked ones.
CREATE INDEX outbox_ready ON outbox (parked)
    WHERE sent_at IS NULL AND dropped_at IS NULL AND parked = 0;
CREATE INDEX outbox_parked ON outbox (order_key)
    WHERE sent_at IS NULL AND dropped_at IS NULL AND parked = 1;

-- The rows done with (sent or dropped) by when, for the housekeeping that
-- deletes them after `outbox_keep_days`.
CREATE INDEX outbox_done ON outbox ((COALESCE(sent_at, dropped_at)))
    WHERE sent_at IS NOT NULL OR dropped_at IS NOT NULL;

-- A key's unparked rows (its waiting row and those not parked yet): what
-- the park reads to find whether a row is behind a waiting one, without
-- walking the key's parked backlog.
CREATE INDEX outbox_order_ready ON outbox (order_key)
    WHERE sent_at IS NULL AND dropped_at IS NULL AND parked = 0 AND order_key IS NOT NULL;
