-- A system message's meaning ("Ana joined", "Conversation closed") beside
-- its English content, so that clients render it in their own language
-- (desk-api.md, "Notices"): the JSON {"type", "params"}; NULL for every
-- message that is not a system notice, and for notices stored before.
ALTER TABLE messages ADD COLUMN notice TEXT;
