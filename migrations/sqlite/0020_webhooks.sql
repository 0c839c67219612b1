-- Webhooks (desk-api.md, "Integrations"; issue 19): a tenant's endpoints,
-- and what the outbox needs to deliver to them in order.
CREATE TABLE webhooks (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    url           TEXT NOT NULL,
    -- A JSON list of event types, or ["*"].
    events        TEXT NOT NULL,
    -- The signing key, base64 (shown once as `whsec_<key>`).
    secret        TEXT NOT NULL,
    enabled       BIGINT NOT NULL DEFAULT 1,
    -- Why it was paused (failing for 24 hours), while it is.
    paused_reason TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX webhooks_tenant ON webhooks (tenant_id, created_at);

-- Delivery order: rows with the same `order_key` (an endpoint and a
-- conversation) are sent one after the other, in insertion order (the
-- rowid here, `pos` on PostgreSQL); a row still failing holds back the later
-- rows of its key only.
ALTER TABLE outbox ADD COLUMN order_key TEXT;
-- The webhook a row is delivered to (its delivery log).
ALTER TABLE outbox ADD COLUMN target TEXT;
-- The last attempt's HTTP status (NULL: no answer) and how long it took.
ALTER TABLE outbox ADD COLUMN last_status BIGINT;
ALTER TABLE outbox ADD COLUMN last_duration_ms BIGINT;
CREATE INDEX outbox_order ON outbox (order_key)
    WHERE sent_at IS NULL AND dropped_at IS NULL AND order_key IS NOT NULL;
CREATE INDEX outbox_target ON outbox (target, created_at) WHERE target IS NOT NULL;
