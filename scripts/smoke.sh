#!/usr/bin/env bash
# A smoke test after a deploy: sends a start event through the public edge, reads the count
# back through the badge, sends a stop and reads again. Exits non-zero, naming the step, when a
# request is refused or a count is not what it should be within its deadline.
#
#   scripts/smoke.sh EDGE_URL BADGE_URL
#
#   EDGE_URL   the stack output EdgeUrl / edge_url (…/events), or http://127.0.0.1:8080/events
#   BADGE_URL  the stack output BadgeUrl / badge_url (the CDN in front of the read function), or
#              http://127.0.0.1:8080 for `livecount dev`
#
# Environment: SMOKE_TOKEN_SECRET signs the session when the deployment requires signed sessions
# (same format as `livecount token`); SMOKE_DEADLINE_SECONDS (default 30) bounds each wait.
set -euo pipefail

edge="${1:?usage: scripts/smoke.sh EDGE_URL BADGE_URL}"
read_url="${2:?usage: scripts/smoke.sh EDGE_URL BADGE_URL}"
read_url="${read_url%/}"
deadline="${SMOKE_DEADLINE_SECONDS:-30}"
stream="smoke-$(date +%s)-$$"
session="smoke-session-$$"

token_field=""
if [[ -n "${SMOKE_TOKEN_SECRET:-}" ]]; then
  expiry=$(($(date +%s) + 3600))
  signature=$(printf '%s\n%s\n%s' "$stream" "$session" "$expiry" \
    | openssl dgst -sha256 -hmac "$SMOKE_TOKEN_SECRET" -binary | openssl base64 -A | tr '+/' '-_' | tr -d '=')
  token_field=",\"token\":\"v1.$expiry.$signature\""
fi

send() { # send TYPE SEQ
  local body="{\"streamId\":\"$stream\",\"sessionId\":\"$session\",\"type\":\"$1\",\"ts\":$(date +%s000),\"seq\":$2$token_field}"
  local status answer
  answer=$(mktemp)
  status=$(curl -sS -o "$answer" -w '%{http_code}' -X POST -H 'content-type: text/plain' --data "$body" "$edge")
  [[ "$status" == 2* ]] || { echo "smoke: POST $edge answered $status: $(cat "$answer")" >&2; rm -f "$answer"; exit 1; }
  rm -f "$answer"
}

viewers() {
  curl -sS "$read_url/api/streams/$stream/viewers" | python3 -c 'import json, sys; print(json.load(sys.stdin)["viewers"])'
}

expect() { # expect COUNT STEP
  local start now seen
  start=$(date +%s)
  while :; do
    seen=$(viewers || echo "?")
    [[ "$seen" == "$1" ]] && { echo "smoke: $2: $1 viewer(s) after $(($(date +%s) - start)) s"; return; }
    now=$(date +%s)
    if ((now - start >= deadline)); then
      echo "smoke: $2: expected $1 viewer(s) within ${deadline} s, read $seen" >&2
      exit 1
    fi
    sleep 0.5
  done
}

send start 0
expect 1 "start"
send stop 1
expect 0 "stop"
echo "smoke: ok (stream $stream)"
