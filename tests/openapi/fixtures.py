"""Creates what the schemathesis run of tests/openapi/run.sh works on, and
prints its config (TOML) with their ids, so that the generated requests
reach real rooms, messages, labels... and not only 404s.

Usage: fixtures.py <base url> <admin token> <demo channel id> <file>
(the token of a visitor whose conversation an agent answered is written
to <file>, for the run of the visitor API).
"""

import json
import sys
import urllib.parse
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


def upload(token, name, data):
    """A visitor's upload (multipart, one part `file`): its attachment."""
    boundary = "chatgate-fixture-boundary"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
        f"Content-Type: text/plain\r\n\r\n"
    ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(BASE + "/chatplugin.upload", data=body, method="POST")
    request.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
    request.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())


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
# A file the visitor uploaded: its signed URL's parts, so that the file
# download is tested with a link that works, not only with forged ones.
attachment = upload(visitor_token, "notes.txt", b"Order 1234: two items\n")
file_path, _, file_query = attachment["url"].partition("?")
file_id, file_name = file_path.rstrip("/").split("/")[-2:]
file_params = urllib.parse.parse_qs(file_query)
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
[dictionaries.file_ids]
values = {values(file_id)}
[dictionaries.file_names]
values = {values(file_name, "thumbnail")}
[dictionaries.file_expiries]
values = {values(int(file_params["expires"][0]))}
[dictionaries.file_signatures]
values = {values(file_params["signature"][0])}

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
"path.id" = {{ dictionary = "file_ids", probability = 0.8 }}
"path.name" = {{ dictionary = "file_names", probability = 0.8 }}
"query.expires" = {{ dictionary = "file_expiries", probability = 0.8 }}
"query.signature" = {{ dictionary = "file_signatures", probability = 0.8 }}
""")
