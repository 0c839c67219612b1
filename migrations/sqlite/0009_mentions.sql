-- The agents a message mentions (desk-api.md, "Group rooms"): their uuids,
-- comma-separated, in the order the author gave them; NULL when it
-- mentions no one (every message stored before).
ALTER TABLE messages ADD COLUMN mentions TEXT;
