-- Reports (the console's Reports page, GET /reports): when an agent (or
-- application) first answered each visitor conversation. Written once, by
-- the group commit of messages: the batch's UPDATE of conversations sets it
-- with COALESCE when the batch holds the room's first reply, so the
-- visitor's messages cost no extra statement. Rooms from before: their
-- first non-visitor, non-system message.
ALTER TABLE conversations ADD COLUMN first_response_at BIGINT;
UPDATE conversations SET first_response_at = (
    SELECT MIN(m.sent_at) FROM messages m
    WHERE m.conversation_id = conversations.id
      AND m.sender_kind NOT IN ('visitor', 'system')
) WHERE kind = 'visitor';

-- A report reads the tenant's visitor conversations started in a period:
-- every column it needs is in the index, so it never reads the table
-- (`kind` is a column of it rather than a partial index's condition:
-- SQLite reads the table for a condition's column).
CREATE INDEX conversations_reports ON conversations
    (tenant_id, kind, created_at, channel_id, assignee_id, first_response_at, closed_at, rating);
