-- Agent presence (agent-api.md, "Presence"): the state an agent chose, its
-- status text, and when it last changed or connected.
ALTER TABLE agents ADD COLUMN presence_state TEXT NOT NULL DEFAULT 'available';
ALTER TABLE agents ADD COLUMN presence_status TEXT;
ALTER TABLE agents ADD COLUMN last_activity BIGINT;
