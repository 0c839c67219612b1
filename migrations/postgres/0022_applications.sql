-- Applications (desk-api.md, "Integrations"): a tenant's API clients (bots),
-- each with its own token and scopes. To the rest of the product an
-- application is a member of kind `application`: it has a row in `agents`
-- with the same id (role `application`, an address that cannot receive
-- mail, a password hash that verifies nothing), so rooms, messages,
-- assignment and the audience of events treat it like an agent; it never
-- counts as available (no presence) and never logs in.
CREATE TABLE applications (
    id         TEXT PRIMARY KEY REFERENCES agents (id),
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    name       TEXT NOT NULL,
    -- A JSON list of scopes: conversations:read, conversations:write, messages:write.
    scopes     TEXT NOT NULL,
    -- SHA-256 (hex) of the token: the token itself is shown once, never kept.
    token_hash TEXT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    -- Set once by the revocation; the token stops working at once.
    revoked_at BIGINT
);
CREATE UNIQUE INDEX applications_token ON applications (token_hash);
CREATE INDEX applications_tenant ON applications (tenant_id, created_at);

-- The application that takes every new conversation of a channel first
-- (its `bot` setting), or NULL.
ALTER TABLE channels ADD COLUMN bot_id TEXT;

-- Whether an application wrote the message (the "Bot" marker clients show).
ALTER TABLE messages ADD COLUMN sender_bot BIGINT NOT NULL DEFAULT 0;
