-- Support desk (desk-api.md, "Support desk"): a channel's business hours
-- (JSON, NULL: always open), away message, pre-chat form (JSON, NULL: off)
-- and auto-close delay; a conversation's pre-chat answers (JSON) and
-- whether its away message was sent (set once, by a guarded update).
ALTER TABLE channels ADD COLUMN business_hours TEXT;
ALTER TABLE channels ADD COLUMN away_message TEXT;
ALTER TABLE channels ADD COLUMN prechat TEXT;
ALTER TABLE channels ADD COLUMN auto_close_hours BIGINT;
ALTER TABLE conversations ADD COLUMN prechat TEXT;
ALTER TABLE conversations ADD COLUMN away_sent BIGINT NOT NULL DEFAULT 0;
