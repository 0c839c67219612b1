-- The agent side: rooms (a visitor conversation is a room; agents also talk
-- in rooms of their own), members with their read position, reactions, and
-- what agents need on messages (tenant, search text, read/edit/delete marks).
-- Column for column alike with migrations/sqlite/0002_agents.sql.

ALTER TABLE conversations
    ADD COLUMN kind TEXT NOT NULL DEFAULT 'visitor',
    ADD COLUMN name TEXT,
    ADD COLUMN state TEXT NOT NULL DEFAULT 'queued',
    ADD COLUMN assignee_id TEXT,
    ADD COLUMN member_key TEXT,
    ADD COLUMN queued_at BIGINT,
    ALTER COLUMN channel_id DROP NOT NULL;
UPDATE conversations SET queued_at = created_at;
ALTER TABLE conversations ALTER COLUMN kind DROP DEFAULT, ALTER COLUMN state DROP DEFAULT;

ALTER TABLE messages
    ADD COLUMN tenant_id TEXT,
    ADD COLUMN search_text TEXT,
    ADD COLUMN read_at BIGINT,
    ADD COLUMN edited_at BIGINT,
    ADD COLUMN deleted BIGINT NOT NULL DEFAULT 0,
    ALTER COLUMN channel_id DROP NOT NULL;
UPDATE messages m SET tenant_id = c.tenant_id, search_text = lower(m.content)
    FROM conversations c WHERE c.id = m.conversation_id;
ALTER TABLE messages ALTER COLUMN tenant_id SET NOT NULL, ALTER COLUMN search_text SET NOT NULL;

CREATE INDEX conversations_queue ON conversations (tenant_id, state, queued_at);
CREATE UNIQUE INDEX conversations_members ON conversations (tenant_id, member_key)
    WHERE member_key IS NOT NULL;

CREATE TABLE room_members (
    room_id       TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    member_id     TEXT NOT NULL,
    tenant_id     TEXT NOT NULL,
    joined_at     BIGINT NOT NULL,
    last_read_seq BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, member_id)
);
CREATE INDEX room_members_member ON room_members (member_id, room_id);

CREATE TABLE reactions (
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    emoji      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (message_id, user_id, emoji)
);

ALTER TABLE agents ADD COLUMN disabled BIGINT NOT NULL DEFAULT 0;
