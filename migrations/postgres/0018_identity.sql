-- Identified visitors, several conversations per visitor, blocking
-- (desk-api.md, "Support desk").
--
-- A visitor conversation records which visitor it belongs to: `visitor_key`
-- is `i:<id>` for a visitor whose identity the site signed (then `verified`
-- is 1), or `a:<uuid>` for an anonymous visitor, the uuid being the first
-- conversation of its chain of resume tokens. NULL for conversations from
-- before this migration (read as `a:<their own id>`). `blocked` mirrors
-- `visitor_blocks` on every conversation of a blocked visitor, so that every
-- room shape reads it without a join.
ALTER TABLE conversations ADD COLUMN visitor_key TEXT;
ALTER TABLE conversations ADD COLUMN verified BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN blocked BIGINT NOT NULL DEFAULT 0;
CREATE INDEX conversations_visitor ON conversations (channel_id, visitor_key, created_at);

-- The visitors agents blocked, per channel: their sends and new
-- conversations are refused with 403 `blocked`.
CREATE TABLE visitor_blocks (
    channel_id  TEXT NOT NULL REFERENCES channels (id),
    visitor_key TEXT NOT NULL,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    blocked_at  BIGINT NOT NULL,
    PRIMARY KEY (channel_id, visitor_key)
);

-- Each channel's secret for signing visitor identities (HMAC-SHA256), made
-- on first use; after a rotation the previous one is accepted for a grace
-- period from `rotated_at`.
CREATE TABLE channel_identity_secrets (
    channel_id      TEXT PRIMARY KEY REFERENCES channels (id),
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    secret          TEXT NOT NULL,
    previous_secret TEXT,
    rotated_at      BIGINT
);
