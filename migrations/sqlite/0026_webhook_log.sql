-- The webhook events of a change (issue 19, "the chat's own p99"): on
-- SQLite they are appended here, in the change's own transaction, rather
-- than to the outbox. The table has no index but its rowid, so an event
-- costs the chat's commit one narrow row at the end of one b-tree instead
-- of a row and five index entries. The worker reads it by position on a
-- reader connection (a WAL reader never waits for the writer), delivers,
-- and records a round in one small transaction: the sent events marked
-- (with the receiver's answer), the others moved to the outbox (its
-- retries, per-conversation order and parking), the cursor moved on.
-- (PostgreSQL keeps its events in the outbox: several instances claim
-- there, and a sequence is not commit order.)
CREATE TABLE webhook_log (
    -- Commit order: SQLite's single writer hands out rowids in it. Never
    -- reused: the row at the cursor is not pruned, so a new row is always
    -- above it.
    pos INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    target TEXT NOT NULL,
    order_key TEXT,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    sent_at BIGINT,
    last_status BIGINT,
    last_duration_ms BIGINT,
    last_error TEXT,
    -- Given up (the endpoint is gone; the visitor was erased before it
    -- was sent).
    dropped_at BIGINT,
    -- Moved to the outbox (not sent at its first try, or behind an event
    -- of its conversation there): the outbox row is the delivery now.
    moved BIGINT NOT NULL DEFAULT 0
);

-- Every event at or below `pos` has been recorded (sent, dropped or moved).
CREATE TABLE webhook_log_cursor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    pos BIGINT NOT NULL
);
INSERT INTO webhook_log_cursor (id, pos) VALUES (1, 0);
