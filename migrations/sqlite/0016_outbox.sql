-- Durable side effects (architecture.md, "Side effects that leave the
-- process"; issue 18, "No visitor lost"): a row per email (and, later,
-- webhook delivery) to send. A worker claims due rows for a lease
-- (`claimed_until`), sends, records the attempt and marks it sent; a row
-- whose lease lapses (its instance was killed) is claimed again.
CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    -- While a row is unsent, at most one row has this key: later requests
    -- for the same thing (another reply to the same offline visitor) join it.
    dedupe_key TEXT,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    claimed_until BIGINT,
    claim_id TEXT,
    -- Set when a request joined the row while it was claimed: the worker
    -- then runs it again instead of marking it sent.
    again BIGINT NOT NULL DEFAULT 0,
    sent_at BIGINT,
    -- Set when the row gave up (too many attempts, or nothing to send).
    dropped_at BIGINT
);
CREATE INDEX outbox_due ON outbox (due_at) WHERE sent_at IS NULL AND dropped_at IS NULL;
CREATE UNIQUE INDEX outbox_pending_key ON outbox (dedupe_key)
    WHERE sent_at IS NULL AND dropped_at IS NULL AND dedupe_key IS NOT NULL;

-- The offline email and the transcript of a conversation: what was emailed
-- last (seq, time), whether its visitor unsubscribed, when a transcript was
-- last asked for.
ALTER TABLE visitor_contexts ADD COLUMN emailed_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE visitor_contexts ADD COLUMN emailed_at BIGINT;
ALTER TABLE visitor_contexts ADD COLUMN email_unsubscribed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE visitor_contexts ADD COLUMN transcript_at BIGINT;

ALTER TABLE channels ADD COLUMN email_fallback BIGINT NOT NULL DEFAULT 0;
