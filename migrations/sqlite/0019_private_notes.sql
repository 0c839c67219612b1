-- Private notes (desk-api.md, "Support desk"): agents' notes in a visitor
-- conversation. A table of their own, so that no read the visitor's doors
-- make (history, catch-up, resume, email) can return one, and the
-- conversation's `seq` stays the visitor's gapless sequence: a note keeps
-- the seq of the message it follows (`after_seq`) and is listed after it.
CREATE TABLE notes (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    channel_id      TEXT,
    after_seq       BIGINT NOT NULL,
    author_id       TEXT NOT NULL,
    author_name     TEXT,
    author_avatar   TEXT,
    content         TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX notes_conversation ON notes (conversation_id, after_seq, created_at);
