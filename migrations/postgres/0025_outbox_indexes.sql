-- A round releases a key's earliest parked rows, a bounded number at a
-- time (the rest as those are sent): the index gives them in insertion
-- order without reading the key's whole parked backlog.
DROP INDEX outbox_parked;
CREATE INDEX outbox_parked ON outbox (order_key, pos)
    WHERE sent_at IS NULL AND dropped_at IS NULL AND parked = 1;

-- Claims read `outbox_ready` (migration 0024) and nothing reads the unsent
-- rows by due time any more: one index less to keep on every event
-- written in a chat's commit and on every row sent.
DROP INDEX outbox_due;
