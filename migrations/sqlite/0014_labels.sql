-- Labels (desk-api.md, "Support desk"): a tenant's tags for conversations,
-- each with a colour. `name_key` is the name folded to lower case: names
-- are unique per tenant whatever their case.
CREATE TABLE labels (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    name       TEXT NOT NULL,
    name_key   TEXT NOT NULL,
    color      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX labels_name ON labels (tenant_id, name_key);

-- The labels on a room. Deleting a label deletes its rows here (in the
-- same transaction, by the store; no cascade is relied upon).
CREATE TABLE room_labels (
    room_id   TEXT NOT NULL REFERENCES conversations (id),
    label_id  TEXT NOT NULL REFERENCES labels (id),
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    PRIMARY KEY (room_id, label_id)
);
-- The inbox's label filter: the rooms of a label.
CREATE INDEX room_labels_label ON room_labels (label_id, room_id);
