-- Quick replies (desk-api.md, "Quick replies"): the buttons an agent's
-- message offers, as the JSON list [{"title", "payload"}] (NULL when it
-- offers none), and the payload of the button a visitor's message chose
-- (NULL when the visitor typed it).
ALTER TABLE messages ADD COLUMN quick_replies TEXT;
ALTER TABLE messages ADD COLUMN postback TEXT;
