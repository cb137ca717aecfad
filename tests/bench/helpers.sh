#!/bin/sh
# The programs bench/run needs besides siohub-bench, built by `make check`
# with the project's warnings (and -Werror when configured so) and run at
# tiny sizes, so that they do not rot between benchmark sessions:
#  - bench/peers/floor, the bare send() server: it says "ready HOST:PORT",
#    a WebSocket subscriber gets each POSTed message as one text frame, an
#    SSE subscriber as one event (a data: line per line), the POST is
#    answered with the recipient count, SIGTERM stops it with 0;
#  - bench/peers/chat_floor, the chat scenario's floor: a tiny siohub-bench
#    chat run with its tokens through a redis-server started here on a free
#    loopback port holds every check (skipped, after the rest, without
#    redis-server), and SIGTERM stops it with 0;
#  - bench/wake_cost: one WAKE line of four positive figures; bad options
#    are refused with 2;
#  - bench/report.py: the fanout bars judged at equal load, and not at all
#    on --find-max runs (each server at its own rate); for chat, the floor
#    reported as a distance, not judged as a bar.
# Environment (make check sets it): top_srcdir, top_builddir, NODE,
# REDIS_SERVER.
. "$top_srcdir/tests/lib/common.sh"

floor=$top_builddir/bench/peers/floor
chat_floor=$top_builddir/bench/peers/chat_floor
wake=$top_builddir/bench/wake_cost
bench=$top_builddir/siohub-bench
test -x "$floor" || fail "no $floor (make check builds it)"
test -x "$chat_floor" || fail "no $chat_floor (make check builds it)"
test -x "$wake" || fail "no $wake (make check builds it)"
work=$(mktemp -d "${TMPDIR:-/tmp}/siohub-bench-helpers-XXXXXX") || exit 99
pid=
rpid=
cleanup() {
    for p in $pid $rpid; do
        if kill -0 "$p" 2>/dev/null; then kill -KILL "$p"; fi
    done
    rm -rf "$work"
}
trap cleanup EXIT

# wait_ready NAME PID FILE: until FILE has the "ready HOST:PORT" line (5 s).
wait_ready() {
    i=0
    while ! grep -q '^ready ' "$3" 2>/dev/null; do
        i=$((i + 1))
        test $i -lt 100 || fail "$1 did not say ready: $(cat "$3" "$3.err" 2>/dev/null)"
        kill -0 "$2" 2>/dev/null || fail "$1 exited: $(cat "$3.err" 2>/dev/null)"
        sleep 0.05
    done
}

# stop_zero NAME PID: SIGTERM, and it must exit 0.
stop_zero() {
    kill -TERM "$2"
    wait "$2"
    status=$?
    test "$status" -eq 0 || fail "$1 exited $status after SIGTERM"
}

# ---- wake_cost
peer=1
test "$(nproc 2>/dev/null || echo 1)" -gt 1 || peer=0
line=$("$wake" --cpu 0 --peer-cpu "$peer" --rounds 5 --gap-us 200) || fail "wake_cost exited $?"
echo "wake_cost: $line"
for field in syscall_ns timer_wake_us rtt_us idle_rtt_us; do
    value=$(echo "$line" | sed -n "s/^WAKE .*$field=\\([0-9.]*\\) .*/\\1/p")
    test -n "$value" || fail "wake_cost printed no $field: $line"
    awk "BEGIN { exit !($value > 0) }" || fail "wake_cost: $field=$value is not positive"
done
"$wake" --rounds x >/dev/null 2>&1
status=$?
test "$status" -eq 2 || fail "wake_cost --rounds x exited $status, not 2"
echo "PASS: wake_cost"

# ---- report.py: the fanout bars at equal load, none after --find-max
report=$top_srcdir/bench/report.py
echo "meta" >"$work/meta.txt"
run_line() { # server run cpu [max_rate]
    extra=${4:+,\"max_rate_p99_under_50ms\":$4}
    echo "server=$1 run=$2 order=$2 bench_exit=0 server_exit=0 RESULT {\"server_cpu_us_per_delivery\":$3$extra}"
}
{ run_line siohub 1 7.0; run_line floor 1 6.0; run_line nchan 1 9.0; } >"$work/equal.txt"
python3 "$report" --scenario fanout "$work/meta.txt" "$work/equal.txt" >"$work/equal.out" ||
    fail "report.py exited $?"
grep -q "siohub / floor = 1.17 (bound 1.3): held" "$work/equal.out" ||
    fail "report.py: no held floor bar: $(cat "$work/equal.out")"
{ run_line siohub 1 8.0; run_line floor 1 6.0; run_line nchan 1 7.0; } >"$work/missed.txt"
python3 "$report" --scenario fanout "$work/meta.txt" "$work/missed.txt" >"$work/missed.out" ||
    fail "report.py exited $?"
grep -q "siohub / nchan = 1.14 (bound 1.0): NOT held" "$work/missed.out" ||
    fail "report.py: no missed nchan bar: $(cat "$work/missed.out")"
{ run_line siohub 1 1.1 960; run_line floor 1 6.5 128; run_line nchan 1 10.2 88; } >"$work/max.txt"
python3 "$report" --scenario fanout "$work/meta.txt" "$work/max.txt" >"$work/max.out" ||
    fail "report.py exited $?"
grep -q "^bars: not checked" "$work/max.out" && ! grep -q "^bar: " "$work/max.out" ||
    fail "report.py judged bars on --find-max runs: $(cat "$work/max.out")"
echo "PASS: report.py checks the fanout bars at equal load only"
{ run_line siohub 1 6.0; run_line floor 1 2.4; } >"$work/chat.txt"
python3 "$report" --scenario chat "$work/meta.txt" "$work/chat.txt" >"$work/chat.out" ||
    fail "report.py exited $?"
grep -q "^floor: siohub / floor = 2.50 " "$work/chat.out" && ! grep -q "^bar" "$work/chat.out" ||
    fail "report.py: chat's floor not reported as a distance: $(cat "$work/chat.out")"
echo "PASS: report.py gives chat's floor as a distance, not a bar"

# ---- chat_floor: a tiny chat run, its tokens through a real Redis
redis=${REDIS_SERVER:-/usr/bin/redis-server}
chat_skipped=
if test -x "$redis" && test -x "$bench"; then
    rport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') ||
        exit 99
    "$redis" --bind 127.0.0.1 --port "$rport" --save '' --appendonly no --dir "$work" \
        >"$work/redis.log" 2>&1 &
    rpid=$!
    i=0
    while ! grep -q 'Ready to accept connections' "$work/redis.log"; do
        i=$((i + 1))
        test $i -lt 100 || fail "redis-server did not start: $(cat "$work/redis.log")"
        sleep 0.05
    done
    "$chat_floor" --port 0 --redis "redis://127.0.0.1:$rport/0" >"$work/chat_floor" \
        2>"$work/chat_floor.err" &
    pid=$!
    wait_ready chat_floor "$pid" "$work/chat_floor"
    addr=$(sed -n 's/^ready //p' "$work/chat_floor")
    timeout 60 "$bench" chat --host "${addr%:*}" --port "${addr##*:}" --pid "$pid" \
        --secret helpers-secret --redis "127.0.0.1:$rport" --users 4 --tabs 1-2 \
        --tokens-per-second 20 --channel-size 2 --typing-rate 1 --duration 1 --burst 5 \
        --reply-tokens 20 >"$work/chat.run" 2>&1 ||
        fail "siohub-bench chat against chat_floor exited $?: $(cat "$work/chat.run" "$work/chat_floor.err")"
    result=$(sed -n 's/^RESULT //p' "$work/chat.run")
    for want in '"ok":true' '"errors":0' '"missing":0' '"chat_delivered":120' \
        '"typing_delivered":12'; do
        case $result in
        *"$want"*) ;;
        *) fail "chat against chat_floor: no $want in $result" ;;
        esac
    done
    stop_zero chat_floor "$pid"
    pid=
    grep -q "deliveries" "$work/chat_floor.err" ||
        fail "chat_floor printed no counts: $(cat "$work/chat_floor.err")"
    cat "$work/chat_floor.err"
    stop_zero redis-server "$rpid"
    rpid=
    echo "PASS: chat_floor served a chat run through Redis"
else
    chat_skipped="no $redis (Debian's redis-server) or no $bench"
fi

# ---- floor: one subscriber over WebSocket (Node's built-in client when
# there is one, else a raw upgrade with a fixed key), one POST.
"$floor" --port 0 >"$work/floor.out" 2>"$work/floor.out.err" &
pid=$!
wait_ready floor "$pid" "$work/floor.out"
addr=$(sed -n 's/^ready //p' "$work/floor.out")
host=${addr%:*}
port=${addr##*:}
echo "floor: ready on $addr"

test -n "${NODE:-}" || NODE=$(command -v node || true)
test -n "$NODE" || skip "no node to drive the floor's WebSocket (wake_cost passed)"
"$NODE" - "$host" "$port" <<'EOF' || fail "floor: the subscriber or the POST was not as expected (above)"
// One raw WebSocket subscriber (net + a fixed key: no npm module needed),
// then one POST; the subscriber must see exactly the posted text.
const net = require('net');
const http = require('http');
const [host, port] = process.argv.slice(2);
const body = 'floor-test-' + process.pid;
const sock = net.connect(+port, host, () => {
  sock.write('GET /sub/bench HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n' +
             'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
             'Sec-WebSocket-Version: 13\r\n\r\n');
});
let buf = Buffer.alloc(0), upgraded = false, framed = false, answered = false;
const finish = () => {
  if (framed && answered) {
    clearTimeout(timer);
    sock.end();
    process.exit(0);
  }
};
const timer = setTimeout(() => { console.error('timed out; got', buf.toString('latin1')); process.exit(1); }, 5000);
sock.on('data', (d) => {
  buf = Buffer.concat([buf, d]);
  if (!upgraded) {
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = buf.subarray(0, end).toString();
    if (!head.startsWith('HTTP/1.1 101') || !head.includes('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=')) {
      console.error('bad upgrade answer:', head);
      process.exit(1);
    }
    upgraded = true;
    buf = buf.subarray(end + 4);
    const req = http.request({ host, port: +port, method: 'POST', path: '/pub/bench',
                               headers: { 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      let answer = '';
      res.on('data', (c) => (answer += c));
      res.on('end', () => {
        if (res.statusCode !== 200 || JSON.parse(answer).recipients !== 1) {
          console.error('POST answer:', res.statusCode, answer);
          process.exit(1);
        }
        answered = true;
        finish();
      });
    });
    req.end(body);
  }
  if (upgraded && !framed && buf.length >= 2) {
    const len = buf[1] & 0x7f;
    if (buf[0] !== 0x81 || len >= 126) { console.error('unexpected frame', buf); process.exit(1); }
    if (buf.length < 2 + len) return;
    const text = buf.subarray(2, 2 + len).toString();
    if (text !== body) { console.error('frame carried', text); process.exit(1); }
    framed = true;
    finish();
  }
});
sock.on('error', (e) => { console.error(e.message); process.exit(1); });
EOF
echo "PASS: floor delivered a POSTed message to its subscriber"

"$NODE" - "$host" "$port" <<'EOF' || fail "floor: the SSE subscriber did not get the event (above)"
// An EventSource subscriber (Accept: text/event-stream), then a POST of a
// two-line body: the stream must carry it as one event, a data: line each.
const http = require('http');
const [host, port] = process.argv.slice(2);
const timer = setTimeout(() => { console.error('timed out; got', JSON.stringify(got)); process.exit(1); }, 5000);
let got = '';
const want = 'data: floor-sse-' + process.pid + '\ndata: second line\n\n';
http.get({ host, port: +port, path: '/sub/bench', headers: { Accept: 'text/event-stream' } }, (res) => {
  if (res.statusCode !== 200 || !/^text\/event-stream/.test(res.headers['content-type'] || '')) {
    console.error('stream answer:', res.statusCode, res.headers);
    process.exit(1);
  }
  res.setEncoding('utf8');
  res.on('data', (d) => {
    got += d;
    if (got.length < want.length) return;
    if (got !== want) { console.error('stream carried', JSON.stringify(got)); process.exit(1); }
    clearTimeout(timer);
    process.exit(0);
  });
  const req = http.request({ host, port: +port, method: 'POST', path: '/pub/bench' }, (r) => {
    let answer = '';
    r.on('data', (d) => { answer += d; });
    r.on('end', () => {
      if (r.statusCode !== 200 || !/"recipients":1\b/.test(answer)) {
        console.error('POST answer:', r.statusCode, answer);
        process.exit(1);
      }
    });
  });
  req.end('floor-sse-' + process.pid + '\nsecond line');
});
EOF
echo "PASS: floor delivered a POSTed message to an SSE subscriber"

stop_zero floor "$pid"
pid=
echo "PASS: floor stopped on SIGTERM"
test -z "$chat_skipped" || skip "chat_floor not run: $chat_skipped"
exit 0
