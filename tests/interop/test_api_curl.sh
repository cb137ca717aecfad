#!/bin/sh
# The openwebui app's HTTP API and Engine.IO polling driven with curl, the
# client kind of shell scripts and ops: refusals (401, 400, 404, 405, 413),
# /healthz, /metrics, a Socket.IO session made of plain HTTP requests that
# authenticates with a `siohubd token`, gets chat events and is
# disconnected through the API; then a clean SIGTERM exit.
#
# Environment (make check sets it): CURL, top_builddir, SIOHUBD (optional),
# SIOHUB_REQUIRE_INTEROP (a missing curl is then an error, not a skip).

name=test_api_curl
if test -z "$CURL"; then
    if test -n "$SIOHUB_REQUIRE_INTEROP"; then
        echo "ERROR: curl not found (configure), $name not run (SIOHUB_REQUIRE_INTEROP is set)"
        exit 99
    fi
    echo "SKIP: curl not found (configure), $name not run"
    exit 77
fi
top_builddir=${top_builddir:-.}
daemon=${SIOHUBD:-$top_builddir/siohubd}
work=$(mktemp -d "${TMPDIR:-/tmp}/siohub-curl-XXXXXX") || exit 99
logdir=$top_builddir/tests/interop
mkdir -p "$logdir"
log=$logdir/$name.daemon0.stderr
secret=curl-test-secret
key=curl-test-api-key
pid=
passed=0
failed=0

cleanup() {
    if test -n "$pid" && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

ok() {
    passed=$((passed + 1))
    echo "ok - $1"
}

not_ok() {
    failed=$((failed + 1))
    echo "not ok - $1"
    shift
    for line in "$@"; do echo "    $line"; done
}

# req METHOD PATH [curl args...]: status in $status, body in $body.
req() {
    method=$1
    path=$2
    shift 2
    status=$("$CURL" -sS --max-time 10 -o "$work/body" -w '%{http_code}' -X "$method" "$@" \
        "http://127.0.0.1:$port$path" 2>"$work/curl.err") || status="curl failed: $(cat "$work/curl.err")"
    body=$(cat "$work/body" 2>/dev/null)
}

# expect WHAT STATUS [TEXT...]: the last req answered STATUS and its body
# contains every TEXT (fixed strings).
expect() {
    what=$1
    want=$2
    shift 2
    if test "$status" != "$want"; then
        not_ok "$what" "status $status, want $want" "body: $body"
        return
    fi
    for text in "$@"; do
        case $body in
        *"$text"*) ;;
        *)
            not_ok "$what" "body lacks: $text" "body: $body"
            return
            ;;
        esac
    done
    ok "$what"
}

# ---- start the daemon on a port the kernel picks (it logs which one)
cat >"$work/users.json" <<'EOF'
{"users": [{"id": "u-curl", "name": "Curl", "role": "user"}],
 "channels": [{"id": "ch-1", "members": ["u-curl"]}]}
EOF
echo "# $daemon --app openwebui --listen 127.0.0.1:0 ..." >"$log"
WEBUI_SECRET_KEY=$secret "$daemon" --app openwebui --listen 127.0.0.1:0 \
    --directory "file:$work/users.json" --api-key "$key" --api-body-limit 1k \
    </dev/null >>"$log" 2>&1 &
pid=$!
port=
i=0
while test $i -lt 150 && kill -0 "$pid" 2>/dev/null; do
    port=$(sed -n 's/.* listening on 127\.0\.0\.1:\([0-9][0-9]*\) .*/\1/p' "$log" | head -n 1)
    if test -n "$port" && "$CURL" -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/healthz"; then
        break
    fi
    port=
    sleep 0.1
    i=$((i + 1))
done
if test -z "$port"; then
    echo "not ok - the daemon did not start; log: $log"
    sed 's/^/  | /' "$log"
    echo "$name: $passed passed, 1 failed"
    exit 1
fi

auth="Authorization: Bearer $key"
json="Content-Type: application/json"

# ---- operator endpoints and refusals
req GET /healthz
expect "/healthz answers without a key" 200 '"status":"ok"' '"app":"openwebui"'

req GET /api/v1/users
expect "401 without a key" 401 '"error":'
req GET /api/v1/users -H "Authorization: Bearer wrong-$key"
expect "401 with a wrong key" 401 '"error":'
req GET /api/v1/users -H "$auth"
expect "GET /api/v1/users with the key" 200 '{"user_ids":[]}'
req POST /api/v1/emit -H "$auth" -H "$json" --data-binary '{"event": "x", "to": {'
expect "400 for malformed JSON" 400 '"error":"invalid JSON body'
req POST /api/v1/chat-events -H "$auth" -H "$json" --data-binary '{"chat_id": "c", "message_id": "m", "data": {}}'
expect "400 for a missing user_id" 400 '"error":'
req POST /api/v1/emit -H "$auth" -H "$json" --data-binary '{"event": "x", "data": 1, "to": {"room": "nobody"}}'
expect "POST /api/v1/emit to an empty room" 200 '{"recipients":0}'
big=$(printf '%02000d' 0)
req POST /api/v1/emit -H "$auth" -H "$json" --data-binary "{\"event\": \"x\", \"data\": \"$big\", \"to\": {\"room\": \"r\"}}"
expect "413 over --api-body-limit 1k" 413 '"error":'
req GET /api/v1/nothing-here -H "$auth"
expect "404 for an unknown route" 404 '"error":'
req GET /api/v1/emit -H "$auth"
expect "405 for a wrong method" 405 '"error":'
req GET /api/v1/sessions/no-such-sid -H "$auth"
expect "404 for an unknown session" 404 '"error":'
req GET "/ws/socket.io/?EIO=3&transport=polling"
expect "Engine.IO v3 is refused" 400 '"code":5'

# ---- a Socket.IO session over polling, made of curl requests
if ! token=$(WEBUI_SECRET_KEY=$secret "$daemon" token --user u-curl --ttl 300 2>"$work/token.err"); then
    not_ok "siohubd token" "$(cat "$work/token.err")"
    token=none
fi
req GET "/ws/socket.io/?EIO=4&transport=polling"
expect "Engine.IO handshake at /ws/socket.io/" 200 '"upgrades":["websocket"]' '"maxPayload":1000000'
eio_sid=$(printf '%s' "$body" | sed -n 's/^0{"sid":"\([^"]*\)".*/\1/p')
poll="/ws/socket.io/?EIO=4&transport=polling&sid=$eio_sid"
req POST "$poll" -H "Content-Type: text/plain;charset=UTF-8" --data-binary "40{\"token\":\"$token\"}"
expect "Socket.IO CONNECT with auth {token}" 200 ok
req GET "$poll"
expect "CONNECT answered with the socket's sid" 200 '40{"sid":"'
sio_sid=$(printf '%s' "$body" | sed -n 's/^40{"sid":"\([^"]*\)".*/\1/p')
req GET /api/v1/users -H "$auth"
expect "the user is online" 200 '{"user_ids":["u-curl"]}'
req GET "/api/v1/sessions/$sio_sid" -H "$auth"
expect "SESSION_POOL holds the user dict" 200 '"id":"u-curl"' '"name":"Curl"' '"role":"user"' '"last_seen_at":'
req POST "$poll" -H "Content-Type: text/plain;charset=UTF-8" --data-binary '42["join-channels",{"auth":{"token":"'"$token"'"}}]'
expect "join-channels" 200 ok
req GET "/api/v1/rooms/channel:ch-1" -H "$auth"
expect "in room channel:ch-1" 200 "\"sids\":[\"$sio_sid\"]" '"user_ids":["u-curl"]'
req POST /api/v1/chat-events -H "$auth" -H "$json" \
    --data-binary '{"user_id": "u-curl", "chat_id": "c-1", "message_id": "m-1", "data": {"type": "status", "data": {"n": 1}}}'
expect "POST /api/v1/chat-events" 200 '{"recipients":1}'
# The presence broadcasts may come first: poll until the event shows. The
# values go out as the backend wrote them, spaces and all.
seen=
i=0
while test $i -lt 5 && test -z "$seen"; do
    req GET "$poll"
    case $body in
    *'42["chat-events",{"chat_id":"c-1","message_id":"m-1","data":{"type": "status", "data": {"n": 1}}}]'*) seen=1 ;;
    esac
    i=$((i + 1))
done
if test -n "$seen"; then ok "the chat event arrives on the poll"; else not_ok "the chat event arrives on the poll" "last poll: $body"; fi
req GET /metrics
expect "/metrics counts the socket" 200 'siohub_sockets 1' 'siohub_connections{transport="polling"}'
req DELETE /api/v1/users/u-curl/sessions -H "$auth"
expect "DELETE the user's sessions" 200 '{"disconnected":1}'
req GET "$poll"
expect "the poll gets the Socket.IO DISCONNECT" 200 '41'
req GET /api/v1/users -H "$auth"
expect "the user is offline" 200 '{"user_ids":[]}'

# ---- SIGTERM: exit 0 within 5 s
kill -TERM "$pid"
i=0
while kill -0 "$pid" 2>/dev/null && test $i -lt 50; do
    sleep 0.1
    i=$((i + 1))
done
if kill -0 "$pid" 2>/dev/null; then
    not_ok "daemon exits within 5 s of SIGTERM" "log: $log"
else
    wait "$pid"
    rc=$?
    if test $rc -eq 0; then ok "daemon exited 0 on SIGTERM"; else not_ok "daemon exited 0 on SIGTERM" "status $rc; log: $log"; fi
fi
pid=
echo "$name: $passed passed, $failed failed"
test $failed -eq 0
