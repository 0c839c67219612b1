-- Data rights (desk-api.md, "Integrations"; issue 19): export, erase,
-- retention, audit.
--
-- A tenant's retention: conversations closed more than `retention_days`
-- days ago are erased by the hourly housekeeping (NULL: never, the default).
ALTER TABLE tenants ADD COLUMN retention_days BIGINT;

-- When a visitor room was last closed (NULL while queued or open), what
-- retention counts from; rooms closed before this migration count from
-- their last message (the close notice) or, without one, their creation.
-- `erased_at` is set once, by the guarded update that erases the visitor's
-- data: the row stays as an anonymous shell (state, times, channel,
-- assignee, labels) so that counts and reports still add up.
ALTER TABLE conversations ADD COLUMN closed_at BIGINT;
ALTER TABLE conversations ADD COLUMN erased_at BIGINT;
UPDATE conversations SET closed_at = COALESCE(last_message_at, created_at)
    WHERE kind = 'visitor' AND state = 'closed';
CREATE INDEX conversations_retention ON conversations (tenant_id, closed_at)
    WHERE state = 'closed' AND erased_at IS NULL;
-- An identified visitor's conversations on the tenant, whatever the
-- channel (an export or erasure covers them all); an erasure's files.
CREATE INDEX conversations_identified ON conversations (tenant_id, visitor_key)
    WHERE verified = 1;
CREATE INDEX attachments_conversation ON attachments (conversation_id);

-- The visitor tokens an erasure ended: a token of this channel whose key
-- (`c:<conversation>` for each erased conversation, and the identity key
-- `i:<id>` of an identified visitor) hashes to `key_hash` (SHA-256, hex, so
-- that the identity itself is not kept) and that was issued at or before
-- `erased_at` is refused.
CREATE TABLE visitor_erasures (
    channel_id TEXT NOT NULL REFERENCES channels (id),
    key_hash   TEXT NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    erased_at  BIGINT NOT NULL,
    PRIMARY KEY (channel_id, key_hash)
);

-- Who did what to visitors' data, and when, for the tenant's admins:
-- `action` is `visitor.erased` or `visitor.exported`; `actor_kind` is
-- `agent` (with its id and name as they were) or `retention` (the
-- schedule); `conversations` the ids concerned, comma-separated; `detail`
-- a JSON object of counts.
CREATE TABLE audit_log (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    at            BIGINT NOT NULL,
    actor_kind    TEXT NOT NULL,
    actor_id      TEXT,
    actor_name    TEXT,
    action        TEXT NOT NULL,
    conversations TEXT NOT NULL,
    detail        TEXT NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, at);
