-- A round releases a key's earliest parked rows, a bounded number at a
-- time (the rest as those are sent). SQLite's `outbox_parked (order_key)`
-- already holds a key's entries in rowid (insertion) order, so it stays
-- (PostgreSQL's gains the insertion position).

-- Claims read `outbox_ready` (migration 0024) and nothing reads the unsent
-- rows by due time any more: one index less to keep on every event
-- written in a chat's commit and on every row sent.
DROP INDEX outbox_due;
