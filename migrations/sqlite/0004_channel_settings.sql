-- Channel settings (agent-api.md, "Channels"): what the widget shows, and
-- how new visitors reach agents. Agents remember when round robin last gave
-- them a room (ties go to the one who waited longest).
ALTER TABLE channels ADD COLUMN welcome_message TEXT;
ALTER TABLE channels ADD COLUMN color TEXT;
ALTER TABLE channels ADD COLUMN assignment TEXT NOT NULL DEFAULT 'manual';
ALTER TABLE channels ADD COLUMN max_open_per_agent BIGINT NOT NULL DEFAULT 5;
ALTER TABLE agents ADD COLUMN last_assigned_at BIGINT;
