#!/bin/sh
# The openwebui app's SSE endpoint driven with curl, the EventSource of
# shell scripts: refusals (401 and nothing else), a stream that gets chat
# events posted to the API, a dropped stream resumed with Last-Event-ID
# (every event once, in order), a POST with ack, the server-side
# DISCONNECT, the token (given as a query parameter) absent from the debug
# log; then a clean SIGTERM exit.
#
# Environment (make check sets it): CURL, top_builddir, SIOHUBD (optional),
# SIOHUB_REQUIRE_INTEROP (a missing curl is then an error, not a skip).

name=test_sse_curl
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
work=$(mktemp -d "${TMPDIR:-/tmp}/siohub-sse-curl-XXXXXX") || exit 99
logdir=$top_builddir/tests/interop
mkdir -p "$logdir"
log=$logdir/$name.daemon0.stderr
secret=sse-curl-secret
key=sse-curl-api-key
pid=
streams=
passed=0
failed=0

cleanup() {
    for s in $streams; do kill "$s" 2>/dev/null; done
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

# req METHOD PATH [curl args...]: status in $status, body in $body,
# response headers in $work/headers.
req() {
    method=$1
    path=$2
    shift 2
    status=$("$CURL" -sS --max-time 10 -D "$work/headers" -o "$work/body" -w '%{http_code}' \
        -X "$method" "$@" "http://127.0.0.1:$port$path" 2>"$work/curl.err") ||
        status="curl failed: $(cat "$work/curl.err")"
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

# stream FILE QUERY [curl args...]: an SSE stream (QUERY appended to its
# URL) into FILE, in the background ($stream is its pid).
stream() {
    out=$1
    query=$2
    shift 2
    "$CURL" -sS -N --max-time 60 -H 'Accept: text/event-stream' "$@" \
        "http://127.0.0.1:$port/ws/socket.io/sse$query" >"$out" 2>"$out.err" &
    stream=$!
    streams="$streams $stream"
}

# wait_for FILE TEXT: until FILE holds TEXT (10 s at most).
wait_for() {
    i=0
    while test $i -lt 100; do
        if grep -qF -- "$2" "$1" 2>/dev/null; then return 0; fi
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# chat N...: one chat event per N for u-curl, data {"n": N}.
chat() {
    for n in "$@"; do
        "$CURL" -sS --max-time 10 -o /dev/null -H "Authorization: Bearer $key" \
            -H "Content-Type: application/json" --data-binary \
            "{\"user_id\": \"u-curl\", \"chat_id\": \"c\", \"message_id\": \"m\", \"data\": {\"n\": $n}}" \
            "http://127.0.0.1:$port/api/v1/chat-events"
    done
}

# The n values of the chat events in FILE, one per line.
chat_ns() {
    sed -n 's/^data: \[{"chat_id":"c","message_id":"m","data":{"n":\([0-9]*\)}}\]$/\1/p' "$1"
}

# ---- start the daemon on a port the kernel picks (it logs which one)
cat >"$work/users.json" <<'EOF'
{"users": [{"id": "u-curl", "name": "Curl", "role": "user"},
           {"id": "u-other", "name": "Other", "role": "user"}]}
EOF
echo "# $daemon --app openwebui --listen 127.0.0.1:0 ..." >"$log"
WEBUI_SECRET_KEY=$secret "$daemon" --app openwebui --listen 127.0.0.1:0 \
    --directory "file:$work/users.json" --api-key "$key" --log-level debug \
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
token=$(WEBUI_SECRET_KEY=$secret "$daemon" token --user u-curl --ttl 300 2>"$work/token.err") || {
    not_ok "siohubd token" "$(cat "$work/token.err")"
    token=none
}
other=$(WEBUI_SECRET_KEY=$secret "$daemon" token --user u-other --ttl 300 2>/dev/null) || other=none
bad=$(WEBUI_SECRET_KEY=not-$secret "$daemon" token --user u-curl --ttl 300 2>/dev/null) || bad=none

# ---- refusals: 401, a JSON error, no stream, no session
req GET /ws/socket.io/sse
expect "no credentials: 401" 401 '"error":"not authenticated'
req GET /ws/socket.io/sse -H "Authorization: Bearer $bad"
expect "a token signed with another secret: 401" 401 '"error":'
req GET /ws/socket.io/sse -H "Cookie: token=$bad"
expect "a bad token cookie: 401" 401 '"error":'
if grep -qi '^content-type: application/json' "$work/headers" && ! grep -q 'event:' "$work/body"; then
    ok "the 401 is JSON and nothing else"
else
    not_ok "the 401 is JSON and nothing else" "$(cat "$work/headers")" "$body"
fi
req GET /api/v1/users -H "Authorization: Bearer $key"
expect "no session was opened" 200 '{"user_ids":[]}'

# ---- a stream (token as a query parameter) gets chat events, in order
stream "$work/s1" "?token=$token"
if wait_for "$work/s1" 'event: connect'; then ok "the stream opens with event: connect"; else not_ok "the stream opens with event: connect" "$(cat "$work/s1" "$work/s1.err")"; fi
sid=$(sed -n 's/^data: {"sid":"\([^"]*\)"}$/\1/p' "$work/s1" | head -n 1)
case $(head -n 1 "$work/s1") in
retry:*) ok "retry: first" ;;
*) not_ok "retry: first" "$(head -n 3 "$work/s1")" ;;
esac
chat 1 2 3 4 5
if wait_for "$work/s1" '"n":5}'; then
    got=$(chat_ns "$work/s1" | tr '\n' ' ')
    if test "$got" = "1 2 3 4 5 "; then ok "five chat events, in order"; else not_ok "five chat events, in order" "got: $got"; fi
else
    not_ok "five chat events arrive" "$(cat "$work/s1")"
fi

# ---- drop it, post more, resume with Last-Event-ID
kill "$stream" 2>/dev/null
wait "$stream" 2>/dev/null
last=$(sed -n 's/^id: //p' "$work/s1" | tail -n 1)
chat 6 7 8 9 10
stream "$work/s2" "" -H "Authorization: Bearer $token" -H "Last-Event-ID: $last"
if wait_for "$work/s2" '"n":10}'; then
    got=$(chat_ns "$work/s2" | tr '\n' ' ')
    if test "$got" = "6 7 8 9 10 " && ! grep -q '^event: connect' "$work/s2" && ! grep -q '^event: reset' "$work/s2"; then
        ok "resumed after $last: the five missed events once, in order, same session"
    else
        not_ok "resumed: the missed events once, in order" "got: $got" "$(cat "$work/s2")"
    fi
else
    not_ok "resumed stream gets the missed events" "$(cat "$work/s2" "$work/s2.err")"
fi
req GET /ws/socket.io/sse -H "Authorization: Bearer $other" -H "Last-Event-ID: $last"
expect "another user cannot resume the session: 401" 401 '"error":'

# ---- POST: an event up, with and without ack
req POST "/ws/socket.io/sse/$sid" -H "Authorization: Bearer $token" \
    --data-binary "{\"event\": \"user-join\", \"args\": [{\"auth\": {\"token\": \"$token\"}}], \"ack\": true}"
expect "POST user-join with ack: the ack's args" 200 '[{"id":"u-curl","name":"Curl"}]'
req POST "/ws/socket.io/sse/$sid" -H "Authorization: Bearer $token" --data-binary '{"event": "heartbeat"}'
expect "POST heartbeat: 202" 202 '{}'
req POST "/ws/socket.io/sse/$sid" -H "Authorization: Bearer $other" --data-binary '{"event": "heartbeat"}'
expect "POST with another user's token: 403" 403 '"error":'
req POST "/ws/socket.io/sse/$sid" --data-binary '{"event": "heartbeat"}'
expect "POST without a token: 401" 401 '"error":'
req POST "/ws/socket.io/sse/nosuchsid" -H "Authorization: Bearer $token" --data-binary '{"event": "heartbeat"}'
expect "POST to an unknown sid: 404" 404 '"error":'
req GET /metrics
expect "/metrics counts the SSE session" 200 'siohub_connections{transport="sse"} 1'

# ---- the server disconnects the user: the stream ends with the DISCONNECT
req DELETE /api/v1/users/u-curl/sessions -H "Authorization: Bearer $key"
expect "DELETE the user's sessions" 200 '{"disconnected":1}'
if wait_for "$work/s2" 'event: disconnect'; then
    i=0
    while kill -0 "$stream" 2>/dev/null && test $i -lt 50; do
        sleep 0.1
        i=$((i + 1))
    done
    if kill -0 "$stream" 2>/dev/null; then not_ok "the stream ends after event: disconnect"; else ok "event: disconnect, and the stream ends"; fi
else
    not_ok "event: disconnect" "$(cat "$work/s2")"
fi
req GET /api/v1/users -H "Authorization: Bearer $key"
expect "the user is offline" 200 '{"user_ids":[]}'

# ---- nothing secret in the debug log
if grep -qF -- "$token" "$log" || grep -qF -- "$(printf '%s' "$token" | cut -d. -f3)" "$log"; then
    not_ok "the token is not in the log" "log: $log"
else
    ok "the token is not in the log"
fi

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
