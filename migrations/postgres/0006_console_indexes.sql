-- The console's room lists (and GET /users/me/rooms) order an agent's rooms
-- by their newest message. Reading that time from each room's newest
-- message row cost one lookup in messages per room the agent is in, every
-- time a list was shown: thousands for an agent with a long history. The
-- time is kept on the room instead (written in the transaction that
-- appends messages), next to last_seq; NULL while the room has none.
ALTER TABLE conversations ADD COLUMN last_message_at BIGINT;
UPDATE conversations SET last_message_at = (
    SELECT m.sent_at FROM messages m
    WHERE m.conversation_id = conversations.id AND m.seq = conversations.last_seq
);
