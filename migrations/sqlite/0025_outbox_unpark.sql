-- A round releases a key's earliest parked rows, a bounded number at a
-- time (the rest as those are sent). On PostgreSQL `outbox_parked` gains
-- the insertion position; SQLite's `outbox_parked (order_key)` already
-- holds a key's entries in rowid (insertion) order, so nothing changes.
SELECT 1;
