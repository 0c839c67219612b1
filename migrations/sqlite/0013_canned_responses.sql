-- Canned responses (desk-api.md, "Support desk"): a tenant's prepared
-- answers, found by shortcut or title. `search_text` is the shortcut and
-- title folded in Rust (lowercase, no accents; see domain::search), so the
-- same LIKE matches on both backends. A shortcut is unique per tenant, as
-- typed (the console's picker finds it whatever its case).
CREATE TABLE canned_responses (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    shortcut    TEXT NOT NULL,
    title       TEXT NOT NULL,
    content     TEXT NOT NULL,
    search_text TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX canned_responses_shortcut ON canned_responses (tenant_id, shortcut);
