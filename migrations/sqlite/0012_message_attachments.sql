-- Messages carry files (desk-api.md, "Attachments"): what a message shows
-- of each (id, name, size, type, pixel size), as a JSON list (NULL when it
-- carries none), so that reading a message needs no join. The attachments
-- table stays the record of whose each file is; a deleted message's rows
-- there and its bytes are removed.
ALTER TABLE messages ADD COLUMN attachments TEXT;
-- When a message claimed the file. A claim whose message was never stored
-- (a crash between the claim and the commit) is found by it, a day later,
-- and cleaned like an upload never sent.
ALTER TABLE attachments ADD COLUMN claimed_at BIGINT;
CREATE INDEX attachments_claimed ON attachments (claimed_at) WHERE claimed_at IS NOT NULL;
