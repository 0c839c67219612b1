-- The system messages stored before notices existed were all "<agent>
-- joined" (an answer, an assignment or a transfer): give them their
-- agent_joined notice, so that clients render old conversations in their
-- own language too. (The agent's name is the content without " joined".)
UPDATE messages
SET notice = json_object(
    'type', 'agent_joined',
    'params', json_object('agent', substr(content, 1, length(content) - 7))
)
WHERE sender_kind = 'system' AND notice IS NULL AND content LIKE '% joined';
