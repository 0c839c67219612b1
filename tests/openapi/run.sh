#!/usr/bin/env bash
# Checks /api/openapi.json against the running server with schemathesis
# (PyPI), a property-based API tester: it generates requests from the
# description and fails on a 5xx, a status the description does not list,
# a body that does not match its schema, a wrong content type, or a method
# a path does not take answered otherwise than 405 with `Allow`.
#
# Usage: tests/openapi/run.sh [path to the chatgate binary]
#   (default target/debug/chatgate; build it first with
#   `cargo build --bin chatgate`). ST_MAX_EXAMPLES (default 12) bounds the
#   examples per operation, ST_SEED (default 1) makes the run repeatable;
#   JUnit reports go to target/schemathesis/ (ST_REPORT_DIR).
#
# It starts the binary on port 0 with a fresh SQLite database, logs in as
# the admin its first start creates, creates what the requests work on
# (fixtures.py: conversations, rooms, messages, a label, an agent...) and
# runs the passes below. Installs schemathesis when missing.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${1:-${CHATGATE_BIN:-$REPO_ROOT/target/debug/chatgate}}"
[ -x "$BIN" ] || { echo "no chatgate binary at $BIN (cargo build --bin chatgate)" >&2; exit 1; }

if ! command -v st >/dev/null; then
  echo "installing schemathesis (PyPI)"
  python3 -m pip install --quiet schemathesis || pip install --quiet schemathesis
  # pyenv makes a new script reachable through its shims only after a rehash.
  if command -v pyenv >/dev/null; then pyenv rehash || true; fi
  hash -r
fi
command -v st >/dev/null || { echo "schemathesis (st) is not on PATH after installing it" >&2; exit 1; }

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Limits high enough that the generated traffic (one client IP) measures
# the API, not the rate limiter; 429s stay documented where they apply.
CHATGATE_LISTEN=127.0.0.1:0 \
CHATGATE_DATABASE_URL="$work/openapi.db" \
CHATGATE_AUTHENTICATE_PER_MINUTE=6000 CHATGATE_AUTHENTICATE_BURST=1000 \
RUST_LOG="${RUST_LOG:-warn}" \
  "$BIN" >"$work/out" 2>&1 &
server_pid=$!

url() { grep -o 'listening on http://[^ ]*' "$work/out" | head -1 | sed 's/^listening on //'; }
deadline=$((SECONDS + 60))
until [ -n "$(url)" ] && grep -q 'admin password:' "$work/out"; do
  if ! kill -0 "$server_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
    echo "chatgate did not start:" >&2
    cat "$work/out" >&2
    exit 1
  fi
  sleep 0.5
done
BASE="$(url)"
email="$(grep -o 'admin login:[[:space:]]*[^[:space:]]*' "$work/out" | awk '{print $NF}')"
password="$(grep -o 'admin password:[[:space:]]*[^[:space:]]*' "$work/out" | awk '{print $NF}')"
token="$(curl -sf -u "$email:$password" -H 'Content-Type: application/json' -d '{"expiration": 3600}' \
  "$BASE/api/auth/0.1/token" | python3 -c 'import json, sys; print(json.load(sys.stdin)["data"]["token"])')"
[ -n "$token" ] || { echo "cannot log in as the admin" >&2; exit 1; }
channel="$(grep -o 'demo channel:[[:space:]]*[^[:space:]]*' "$work/out" | awk '{print $NF}')"
python3 "$REPO_ROOT/tests/openapi/fixtures.py" "$BASE" "$token" "$channel" "$work/visitor_token" \
  >"$work/schemathesis.toml"
echo "chatgate at $BASE; testing $BASE/api/openapi.json"

# Three passes, each door with its own credentials: the visitor API with a
# visitor's token; the login with the admin's email and password; then
# the rest with the admin's token (it may disconnect the channel, hence
# last), the file downloads among them with the parts of a signed link
# (fixtures.py). A door's refusal of another's credentials (401) is
# tested in tests/api, not here. Not tested here: the two sockets
# (schemathesis speaks HTTP, not WebSocket; tests/api/stomp.rs and
# events_api.rs test them), and the logout, which would revoke the token
# the run uses.
status=0
run_schemathesis() {
  local name="$1"
  shift
  echo "--- schemathesis: $name"
  # From the scratch directory: schemathesis keeps a cache where it runs.
  # One worker: with two, hypothesis's lambda descriptions parse source in
  # both threads and CPython 3.11's ast can fail with "AST constructor
  # recursion depth mismatch" (an error of the tester, not of the server).
  (cd "$work" && st --config-file "$work/schemathesis.toml" run "$BASE/api/openapi.json" \
    --url "$BASE" \
    "$@" \
    --checks "${ST_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,unsupported_method}" \
    --phases coverage,fuzzing,stateful \
    --mode "${ST_MODE:-all}" \
    --max-examples "${ST_MAX_EXAMPLES:-12}" \
    --seed "${ST_SEED:-1}" \
    --workers 1 \
    --request-timeout 10 \
    --suppress-health-check all \
    --exclude-path /ws.chatplugin \
    --exclude-path /api/websocketd/ \
    --exclude-path '/api/auth/0.1/token/{token}' \
    --generation-database none \
    --no-color \
    --report junit --report-dir "${ST_REPORT_DIR:-$REPO_ROOT/target/schemathesis}/$name") || status=1
}
run_schemathesis visitor --header "Authorization: Bearer $(cat "$work/visitor_token")" --include-tag visitor
run_schemathesis login --auth "$email:$password" --include-path /api/auth/0.1/token
run_schemathesis agent --header "Authorization: Bearer $token" \
  --exclude-tag visitor --exclude-path /api/auth/0.1/token
exit "$status"
