-- The agent side: rooms (a visitor conversation is a room; agents also talk
-- in rooms of their own), members with their read position, reactions, and
-- what agents need on messages (tenant, search text, read/edit/delete marks).
-- SQLite cannot drop NOT NULL from a column, so conversations and messages
-- are rebuilt (children first out, parents first in).

CREATE TABLE conversations_new (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    kind        TEXT NOT NULL,              -- visitor | agent
    channel_id  TEXT REFERENCES channels (id), -- NULL for agent rooms
    name        TEXT,
    state       TEXT NOT NULL,              -- queued | open | closed
    assignee_id TEXT,
    member_key  TEXT,                       -- agent rooms: sorted member ids
    created_at  BIGINT NOT NULL,
    queued_at   BIGINT,
    last_seq    BIGINT NOT NULL DEFAULT 0
);
INSERT INTO conversations_new (id, tenant_id, kind, channel_id, state, created_at, queued_at, last_seq)
    SELECT id, tenant_id, 'visitor', channel_id, 'queued', created_at, created_at, last_seq FROM conversations;

CREATE TABLE messages_new (
    id                TEXT PRIMARY KEY,
    conversation_id   TEXT NOT NULL REFERENCES conversations_new (id),
    channel_id        TEXT REFERENCES channels (id),
    tenant_id         TEXT NOT NULL,
    seq               BIGINT NOT NULL,
    sender_kind       TEXT NOT NULL,
    sender_id         TEXT NOT NULL,
    sender_name       TEXT,
    sender_avatar     TEXT,
    content           TEXT NOT NULL,
    state             TEXT NOT NULL,
    sent_at           BIGINT NOT NULL,
    client_message_id TEXT,
    search_text       TEXT NOT NULL,
    read_at           BIGINT,
    edited_at         BIGINT,
    deleted           BIGINT NOT NULL DEFAULT 0,
    UNIQUE (conversation_id, seq)
);
INSERT INTO messages_new (id, conversation_id, channel_id, tenant_id, seq, sender_kind, sender_id,
        sender_name, sender_avatar, content, state, sent_at, client_message_id, search_text)
    SELECT m.id, m.conversation_id, m.channel_id, c.tenant_id, m.seq, m.sender_kind, m.sender_id,
        m.sender_name, m.sender_avatar, m.content, m.state, m.sent_at, m.client_message_id, lower(m.content)
    FROM messages m JOIN conversations c ON c.id = m.conversation_id;

DROP TABLE messages;
DROP TABLE conversations;
ALTER TABLE conversations_new RENAME TO conversations;
ALTER TABLE messages_new RENAME TO messages;

CREATE UNIQUE INDEX messages_client_id ON messages (conversation_id, client_message_id)
    WHERE client_message_id IS NOT NULL;
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
