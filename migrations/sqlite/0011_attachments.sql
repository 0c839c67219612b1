-- Files uploaded into a conversation (desk-api.md, "Attachments"). The
-- bytes live in the file store (a directory beside the database, or S3),
-- under attachments/<id>; this row says whose they are. `message_id` is
-- NULL until a message carries the file: an upload never sent is removed
-- after a while (see `files`), so that index lists them.
CREATE TABLE attachments (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    uploader_kind   TEXT NOT NULL,
    uploader_id     TEXT NOT NULL,
    name            TEXT NOT NULL,
    size            BIGINT NOT NULL,
    content_type    TEXT NOT NULL,
    width           BIGINT,
    height          BIGINT,
    message_id      TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX attachments_of_messages ON attachments (message_id);
CREATE INDEX attachments_unsent ON attachments (created_at) WHERE message_id IS NULL;
