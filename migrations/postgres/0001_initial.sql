-- chatgate schema, PostgreSQL flavour. Kept column-for-column alike with
-- migrations/sqlite so that one set of SQL statements (src/store/sql.rs)
-- serves both: TEXT ids (UUIDs), BIGINT Unix milliseconds, BIGINT 0/1 flags
-- (not BOOLEAN/UUID/TIMESTAMPTZ, which SQLite lacks and which would make the
-- shared statements bind and decode differently per backend).
--
-- Tables are created unqualified, in the first schema of search_path (the
-- tests give each test its own schema that way).

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE agents (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    email         TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    avatar_url    TEXT,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
-- Logins match emails case-insensitively (`lower(email) = lower($1)`), so
-- uniqueness is on the same expression and the lookup can use this index.
CREATE UNIQUE INDEX agents_email ON agents (lower(email));

CREATE TABLE agent_sessions (
    id         TEXT PRIMARY KEY,
    agent_id   TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    revoked    BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE channels (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    name            TEXT NOT NULL,
    image_url       TEXT,
    allowed_origins TEXT NOT NULL,
    connected       BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX channels_tenant ON channels (tenant_id, created_at);

CREATE TABLE conversations (
    id         TEXT PRIMARY KEY,
    channel_id TEXT NOT NULL REFERENCES channels (id),
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    created_at BIGINT NOT NULL,
    last_seq   BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE messages (
    id                TEXT PRIMARY KEY,
    conversation_id   TEXT NOT NULL REFERENCES conversations (id),
    channel_id        TEXT NOT NULL REFERENCES channels (id),
    seq               BIGINT NOT NULL,
    sender_kind       TEXT NOT NULL,
    sender_id         TEXT NOT NULL,
    sender_name       TEXT,
    sender_avatar     TEXT,
    content           TEXT NOT NULL,
    state             TEXT NOT NULL,
    sent_at           BIGINT NOT NULL,
    client_message_id TEXT,
    UNIQUE (conversation_id, seq)
);
-- Idempotency key: at most one message per (conversation, client_message_id);
-- messages without a key are not constrained.
CREATE UNIQUE INDEX messages_client_id ON messages (conversation_id, client_message_id)
    WHERE client_message_id IS NOT NULL;
