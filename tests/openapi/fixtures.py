"""Creates what the schemathesis run of tests/openapi/run.sh works on, and
prints its config (TOML) with their ids, so that the generated requests
reach real rooms, messages, labels... and not only 404s.

Usage: fixtures.py <base url> <admin token> <demo channel id> <file>
(the token of a visitor whose conversation an agent answered is written
to <file>, for the run of the visitor API).
"""

import json
import sys
import urllib.request

BASE, TOKEN, CHANNEL, VISITOR_TOKEN_FILE = sys.argv[1:5]
API = BASE + "/api/chatd/1.0"


def call(method, url, body=None, token=TOKEN):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(request, timeout=10) as reply:
        raw = reply.read()
        return json.loads(raw) if raw else None


def visitor(text):
    """A visitor conversation with one message: (visitor token, room uuid)."""
    started = call("POST", BASE + "/chatplugin.authenticate", {"channel_id": CHANNEL}, token=None)
    call("POST", BASE + "/chatplugin.send", {"message": {"text": text}}, token=started["token"])
    return started["token"], started["conversation_id"]


me = call("GET", API + "/users/me/presences")["uuid"]
agent = call("POST", API + "/agents", {
    "email": "bo@example.com", "display_name": "Bo", "password": "correct horse battery",
})["uuid"]
# One conversation answered by the admin (open, with the admin's reply),
# one waiting in the queue, one closed, and an agent room.
visitor_token, answered = visitor("Hello, I need help")
with open(VISITOR_TOKEN_FILE, "w", encoding="utf-8") as out:
    out.write(visitor_token)
call("PUT", API + f"/queues/{answered}/answer")
reply = call("POST", API + f"/users/me/rooms/{answered}/messages", {"content": "How can I help?"})
call("POST", API + f"/users/me/rooms/{answered}/messages/{reply['uuid']}/reactions", {"emoji": "👍"})
_, queued = visitor("Anyone there?")
_, closed = visitor("Thanks, bye")
call("PUT", API + f"/queues/{closed}/answer")
call("PUT", API + f"/users/me/rooms/{closed}/state", {"state": "closed"})
group = call("POST", API + "/users/me/rooms", {"name": "Team", "users": [{"uuid": agent}]})["uuid"]
note = call("POST", API + f"/users/me/rooms/{group}/messages", {"content": "Hi Bo"})["uuid"]
label = call("POST", API + "/labels", {"name": "Billing", "color": "#2f6fde"})["uuid"]
canned = call("POST", API + "/canned_responses", {
    "shortcut": "hello", "title": "Hello", "content": "Hello! How can I help?",
})["uuid"]


def values(*items):
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


# Each path parameter is drawn from these most of the time, and generated
# the rest of it. The admin is not among the agents: a run that demoted or
# disabled it would test nothing after.
print(f"""
[dictionaries.rooms]
values = {values(answered, queued, closed, group)}
[dictionaries.messages]
values = {values(reply["uuid"], note)}
[dictionaries.agents]
values = {values(agent)}
[dictionaries.users]
values = {values("me", me, agent)}
[dictionaries.labels]
values = {values(label)}
[dictionaries.canned]
values = {values(canned)}
[dictionaries.channels]
values = {values(CHANNEL)}

[parameters]
"path.room" = {{ dictionary = "rooms", probability = 0.8 }}
"path.message" = {{ dictionary = "messages", probability = 0.8 }}
"path.agent" = {{ dictionary = "agents", probability = 0.8 }}
"path.user" = {{ dictionary = "users", probability = 0.8 }}
"path.label" = {{ dictionary = "labels", probability = 0.8 }}
"path.canned_response" = {{ dictionary = "canned", probability = 0.8 }}
"query.channel_id" = {{ dictionary = "channels", probability = 0.8 }}
"body.channel_id" = {{ dictionary = "channels", probability = 0.5 }}
"body.user_uuid" = {{ dictionary = "agents", probability = 0.8 }}
""")
