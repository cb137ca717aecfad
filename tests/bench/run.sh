#!/bin/sh
# tests/bench/run.sh — siohub's benchmarks: runs tests/bench/loadgen against
# siohubd (and, on request, the reference servers) on 127.0.0.1 and prints a
# results table. Not a test: nothing here passes or fails on a timing.
# See tests/bench/README.md for what each number means.
#
# Run it from a build directory after `make bench`:
#     sh ../tests/bench/run.sh [options]
set -u

usage() {
    cat <<'EOF'
usage: run.sh [options]
  --build DIR          build directory holding siohubd and tests/bench/loadgen
                       (default: $top_builddir, else the current directory)
  --scenarios LIST     comma-separated: fanout,paced,idle,churn (default: all)
  --ref LIST           also measure references: python, node, or python,node
                       (default: none). python needs Debian's python3-socketio,
                       python3-aiohttp and python3-jwt; node needs the socket.io
                       module on NODE_PATH (e.g. npm install --prefix /tmp/x
                       socket.io@4; NODE_PATH=/tmp/x/node_modules)
  --runs R             runs of each scenario; the table shows the median (3)
  --clients N          fan-out and paced: WebSocket clients, tabs of one user (1000)
  --fanout-polling P   fan-out and paced: polling clients as well (0)
  --events M           fan-out: events posted as fast as possible (2000)
  --size BYTES         approximate size of each event's data (200)
  --posters K          keep-alive connections posting events (8)
  --rate R             paced: events per second (20)
  --paced-seconds S    paced: how long (10)
  --idle-clients N     idle: WebSocket clients (5000)
  --idle-polling P     idle: polling clients (5000)
  --churn-seconds S    churn: how long (5)
  --churn-concurrency C  churn: connections in flight (64)
  --timeout S          bound on each scenario run (60)
  --keep               keep the work directory (logs, raw RESULT lines)
Only 127.0.0.1 is ever used.
EOF
}

BUILD=${top_builddir:-.}
SCENARIOS=fanout,paced,idle,churn
REFS=none
RUNS=3
CLIENTS=1000
FANOUT_POLLING=0
EVENTS=2000
SIZE=200
POSTERS=8
RATE=20
PACED_SECONDS=10
IDLE_CLIENTS=5000
IDLE_POLLING=5000
CHURN_SECONDS=5
CHURN_CONCURRENCY=64
TIMEOUT=60
KEEP=no

while [ $# -gt 0 ]; do
    opt=$1
    case $opt in
    -h | --help) usage; exit 0 ;;
    --keep) KEEP=yes; shift; continue ;;
    esac
    if [ $# -lt 2 ]; then
        echo "run.sh: $opt needs a value" >&2
        exit 2
    fi
    val=$2
    shift 2
    case $opt in
    --build) BUILD=$val ;;
    --scenarios) SCENARIOS=$val ;;
    --ref) REFS=$val ;;
    --runs) RUNS=$val ;;
    --clients) CLIENTS=$val ;;
    --fanout-polling) FANOUT_POLLING=$val ;;
    --events) EVENTS=$val ;;
    --size) SIZE=$val ;;
    --posters) POSTERS=$val ;;
    --rate) RATE=$val ;;
    --paced-seconds) PACED_SECONDS=$val ;;
    --idle-clients) IDLE_CLIENTS=$val ;;
    --idle-polling) IDLE_POLLING=$val ;;
    --churn-seconds) CHURN_SECONDS=$val ;;
    --churn-concurrency) CHURN_CONCURRENCY=$val ;;
    --timeout) TIMEOUT=$val ;;
    *) echo "run.sh: unknown option $opt" >&2; usage >&2; exit 2 ;;
    esac
done

here=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "$BUILD" && pwd)
SIOHUBD=$BUILD/siohubd
LOADGEN=$BUILD/tests/bench/loadgen
if [ ! -x "$SIOHUBD" ]; then
    echo "run.sh: no siohubd in $BUILD (use --build DIR)" >&2
    exit 2
fi
if [ ! -x "$LOADGEN" ]; then
    echo "run.sh: no $LOADGEN: run 'make bench' in the build directory first" >&2
    exit 2
fi

# Every client is a socket on both sides (the two processes have their own
# limits); the hard limit is as far as we may go without privileges.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
need=$((IDLE_CLIENTS + IDLE_POLLING))
[ $((CLIENTS + FANOUT_POLLING)) -gt $need ] && need=$((CLIENTS + FANOUT_POLLING))
if [ "$nofile" != unlimited ] && [ $((need + 200)) -gt "$nofile" ]; then
    echo "run.sh: $need clients need more than the $nofile file descriptors allowed (ulimit -n)" >&2
    exit 2
fi
MAXCONN=$((need * 2 + 1000))

WORK=$(mktemp -d "${TMPDIR:-/tmp}/siohub-bench.XXXXXX")
SPID=
cleanup() {
    if [ -n "$SPID" ]; then
        kill -KILL "$SPID" 2>/dev/null
        wait "$SPID" 2>/dev/null
    fi
    if [ "$KEEP" = yes ]; then
        echo "run.sh: logs and raw results kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rand_hex() { od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; }
SECRET=$(rand_hex)
API_KEY=$(rand_hex)
cat >"$WORK/users.json" <<EOF
{"users": [{"id": "bench", "name": "Bench User", "email": "bench@example.org", "role": "user"}]}
EOF
cat >"$WORK/siohub.conf" <<EOF
app = openwebui
listen = 127.0.0.1:0
secret = $SECRET
api_key = $API_KEY
directory = file:$WORK/users.json
max_connections = $MAXCONN
EOF
chmod 600 "$WORK/siohub.conf"
TOKEN=$("$SIOHUBD" -c "$WORK/siohub.conf" token --user bench --ttl 3600) || {
    echo "run.sh: siohubd token failed" >&2
    exit 1
}

# ---- the servers

PYTHON=
find_python() {
    for p in ${PYTHON_SOCKETIO:-} /usr/bin/python3 python3; do
        if "$p" -c 'import socketio, aiohttp, jwt' 2>/dev/null; then
            PYTHON=$p
            return 0
        fi
    done
    return 1
}

# start_server NAME PRESENCE(yes|no) LOG: sets SPID and SPORT, or returns 1.
start_server() {
    name=$1 presence=$2 log=$3
    SPORT=
    case $name in
    siohub)
        if [ "$presence" = yes ]; then p=--presence; else p=--no-presence; fi
        "$SIOHUBD" -c "$WORK/siohub.conf" $p 2>"$log" &
        ;;
    python)
        "$PYTHON" "$here/ref_python_socketio.py" --secret "$SECRET" --api-key "$API_KEY" 2>"$log" &
        ;;
    node)
        node "$here/ref_node_socketio.js" --secret "$SECRET" --api-key "$API_KEY" 2>"$log" &
        ;;
    esac
    SPID=$!
    i=0
    while [ $i -lt 150 ]; do
        SPORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$log" | head -n 1)
        [ -n "$SPORT" ] && return 0
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
    done
    echo "run.sh: $name did not start; its log:" >&2
    sed 's/^/    /' "$log" >&2
    kill -KILL "$SPID" 2>/dev/null
    wait "$SPID" 2>/dev/null
    SPID=
    return 1
}

# Stops the server with SIGTERM; siohubd must exit 0 within 10 s.
stop_server() {
    kill -TERM "$SPID" 2>/dev/null
    i=0
    while kill -0 "$SPID" 2>/dev/null && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if kill -0 "$SPID" 2>/dev/null; then
        echo "run.sh: server $SPID did not stop within 10 s after SIGTERM; killing it" >&2
        kill -KILL "$SPID" 2>/dev/null
    fi
    wait "$SPID" 2>/dev/null
    status=$?
    SPID=
    return $status
}

metric() { # metric NAME: a sample from siohubd's /metrics
    curl -s "http://127.0.0.1:$SPORT/metrics" 2>/dev/null | awk -v n="$1" '$1 == n { print $2 }'
}

# ---- one scenario run

RESULTS=$WORK/results
: >"$RESULTS"

# run_one SERVER SCENARIO RUN
run_one() {
    server=$1 scen=$2 run=$3
    log=$WORK/$server.$scen.$run.log
    out=$WORK/$server.$scen.$run.out
    presence=no
    case $scen in idle | churn) presence=yes ;; esac
    start_server "$server" "$presence" "$log" || return 1
    common="--port $SPORT --pid $SPID --token $TOKEN --timeout $TIMEOUT"
    case $scen in
    fanout)
        # shellcheck disable=SC2086
        "$LOADGEN" fanout $common --api-key "$API_KEY" -n "$CLIENTS" -p "$FANOUT_POLLING" \
            -m "$EVENTS" --size "$SIZE" --posters "$POSTERS" >"$out" 2>&1
        ;;
    paced)
        m=$(awk -v r="$RATE" -v s="$PACED_SECONDS" 'BEGIN { printf "%d", r * s }')
        # shellcheck disable=SC2086
        "$LOADGEN" fanout $common --api-key "$API_KEY" -n "$CLIENTS" -p "$FANOUT_POLLING" \
            -m "$m" --size "$SIZE" --posters "$POSTERS" --rate "$RATE" >"$out" 2>&1
        ;;
    idle)
        # shellcheck disable=SC2086
        "$LOADGEN" idle $common -n "$IDLE_CLIENTS" -p "$IDLE_POLLING" >"$out" 2>&1
        ;;
    churn)
        # shellcheck disable=SC2086
        "$LOADGEN" churn $common -c "$CHURN_CONCURRENCY" --duration "$CHURN_SECONDS" >"$out" 2>&1
        ;;
    esac
    lg_status=$?
    extra=
    if [ "$server" = siohub ]; then
        # The hub's own count: one broadcast (one encoded message) per event.
        b=$(metric siohub_broadcasts_total)
        d=$(metric siohub_broadcast_deliveries_total)
        s=$(metric siohub_sockets)
        extra="broadcasts=${b:-?} hub_deliveries=${d:-?}"
        if [ "$scen" = churn ]; then
            # Every churned socket must be gone once the clients are.
            i=0
            while [ "${s:-0}" != 0 ] && [ $i -lt 30 ]; do
                sleep 0.1
                s=$(metric siohub_sockets)
                i=$((i + 1))
            done
            extra="$extra sockets_left=${s:-?}"
        fi
    fi
    stop_server
    stop_status=$?
    res=$(grep '^RESULT ' "$out" | tail -n 1)
    if [ -z "$res" ]; then
        echo "run.sh: $server $scen run $run: loadgen gave no result (exit $lg_status):" >&2
        sed 's/^/    /' "$out" >&2
        return 1
    fi
    echo "server=$server run=$run $res $extra stop_status=$stop_status" >>"$RESULTS"
    echo "$server $scen, run $run:"
    grep -v '^RESULT' "$out" | sed 's/^[a-z]*: /    /'
    if [ "$server" = siohub ] && [ "$stop_status" != 0 ]; then
        echo "run.sh: siohubd exited $stop_status after SIGTERM (log: $log)" >&2
    fi
    return 0
}

# ---- main

servers=siohub
for r in $(echo "$REFS" | tr ',' ' '); do
    case $r in
    none) ;;
    python)
        if find_python; then
            servers="$servers python"
        else
            echo "run.sh: skipping python: no python3 with socketio, aiohttp and jwt" >&2
        fi
        ;;
    node)
        if command -v node >/dev/null 2>&1 && node -e 'require("socket.io")' 2>/dev/null; then
            servers="$servers node"
        else
            echo "run.sh: skipping node: no node, or no socket.io module on NODE_PATH" >&2
        fi
        ;;
    *) echo "run.sh: unknown reference '$r'" >&2; exit 2 ;;
    esac
done

commit=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)
cflags=$(sed -n "s/^CFLAGS = //p" "$BUILD/Makefile" 2>/dev/null)
echo "siohub benchmarks: $(date -u +%Y-%m-%dT%H:%MZ), commit $commit, CFLAGS '$cflags'," \
    "$(nproc) CPUs, $(uname -sr)"
load=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
echo "load average before the runs: $load (other work on this machine skews every timing)"
echo "servers: $servers; runs: $RUNS; fan-out N=$CLIENTS (+$FANOUT_POLLING polling) M=$EVENTS" \
    "size=$SIZE posters=$POSTERS; paced $RATE/s for ${PACED_SECONDS}s; idle $IDLE_CLIENTS ws +" \
    "$IDLE_POLLING polling; churn ${CHURN_SECONDS}s x $CHURN_CONCURRENCY"
echo

for scen in $(echo "$SCENARIOS" | tr ',' ' '); do
    case $scen in
    fanout | paced | idle | churn) ;;
    *) echo "run.sh: unknown scenario '$scen'" >&2; exit 2 ;;
    esac
    for server in $servers; do
        run=1
        while [ $run -le "$RUNS" ]; do
            run_one "$server" "$scen" "$run"
            run=$((run + 1))
        done
    done
done

# ---- the table: per server and scenario, the run with the median key value

echo
awk -v runs="$RUNS" '
function val(line, key,    i, n, kv, f) {
    n = split(line, f, " ")
    for (i = 1; i <= n; i++) {
        split(f[i], kv, "=")
        if (kv[1] == key) return substr(f[i], length(key) + 2)
    }
    return ""
}
{
    server = val($0, "server"); mode = val($0, "mode")
    if (mode == "fanout" && val($0, "rate") + 0 > 0) mode = "paced"
    k = server SUBSEP mode
    if (!(k in cnt)) { order[++norder] = k }
    line[k, ++cnt[k]] = $0
}
function median_line(k,    n, i, j, t, key, v, idx) {
    n = cnt[k]; split(k, parts, SUBSEP)
    key = parts[2] == "fanout" ? "dps" : parts[2] == "paced" ? "p99_us" : parts[2] == "idle" ? "ws_bytes_per_conn" : "cps"
    for (i = 1; i <= n; i++) { v[i] = val(line[k, i], key) + 0; idx[i] = i }
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[idx[j]] < v[idx[i]]) { t = idx[i]; idx[i] = idx[j]; idx[j] = t }
    lo = v[idx[1]]; hi = v[idx[n]]
    return line[k, idx[int((n + 1) / 2)]]
}
function complete(l,    ok) {
    if (val(l, "ok") == "1") return "yes"
    return sprintf("no: %d of %d deliveries", val(l, "deliveries"), val(l, "expected"))
}
END {
    for (pass = 1; pass <= 4; pass++) {
        want = pass == 1 ? "fanout" : pass == 2 ? "paced" : pass == 3 ? "idle" : "churn"
        header = 0
        for (o = 1; o <= norder; o++) {
            k = order[o]; split(k, parts, SUBSEP)
            if (parts[2] != want) continue
            l = median_line(k)
            if (!header) {
                header = 1
                if (want == "fanout") {
                    printf "fan-out (median of %d runs; events posted as fast as the server takes them)\n", runs
                    printf "| server | deliveries/s (range) | MiB/s | p50 ms | p99 ms | max ms | server CPU s (system) | CPU us/delivery | all delivered in order |\n"
                    printf "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
                } else if (want == "paced") {
                    printf "\npaced fan-out (median of %d runs by p99)\n", runs
                    printf "| server | events/s x clients | p50 ms | p90 ms | p99 ms (range) | max ms | server CPU s | all delivered in order |\n"
                    printf "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
                } else if (want == "idle") {
                    printf "\nidle memory (median of %d runs)\n", runs
                    printf "| server | RSS empty KiB | bytes per WebSocket (range) | bytes per polling client | RSS with all KiB | connect CPU s (ws / polling) |\n"
                    printf "| --- | --- | --- | --- | --- | --- |\n"
                } else {
                    printf "\nconnection churn (median of %d runs)\n", runs
                    printf "| server | connects+disconnects/s (range) | connect p50 ms | p99 ms | server CPU us per cycle (system share) | errors |\n"
                    printf "| --- | --- | --- | --- | --- | --- |\n"
                }
            }
            if (want == "fanout")
                printf "| %s | %.0f (%.0f-%.0f) | %.1f | %.2f | %.2f | %.2f | %.2f (%.2f) | %.2f | %s |\n", parts[1],
                    val(l, "dps"), lo, hi, val(l, "bytes_per_s") / 1048576, val(l, "p50_us") / 1000,
                    val(l, "p99_us") / 1000, val(l, "max_us") / 1000, val(l, "server_cpu_s"), val(l, "server_sys_s"),
                    (val(l, "deliveries") > 0 ? val(l, "server_cpu_s") * 1e6 / val(l, "deliveries") : 0), complete(l)
            else if (want == "paced")
                printf "| %s | %s x %d | %.2f | %.2f | %.2f (%.2f-%.2f) | %.2f | %.2f | %s |\n", parts[1],
                    val(l, "rate"), val(l, "ws") + val(l, "polling"), val(l, "p50_us") / 1000, val(l, "p90_us") / 1000,
                    val(l, "p99_us") / 1000, lo / 1000, hi / 1000, val(l, "max_us") / 1000, val(l, "server_cpu_s"), complete(l)
            else if (want == "idle")
                printf "| %s | %d | %.0f (%.0f-%.0f) | %.0f | %d | %.2f / %.2f |\n", parts[1], val(l, "rss_base_kib"),
                    val(l, "ws_bytes_per_conn"), lo, hi, val(l, "polling_bytes_per_conn"), val(l, "rss_all_kib"),
                    val(l, "ws_connect_cpu_s"), val(l, "polling_connect_cpu_s")
            else
                printf "| %s | %.0f (%.0f-%.0f) | %.2f | %.2f | %.0f (%.0f%%) | %d |\n", parts[1], val(l, "cps"), lo, hi,
                    val(l, "p50_us") / 1000, val(l, "p99_us") / 1000, val(l, "server_us_per_cycle"),
                    (val(l, "server_cpu_s") > 0 ? 100 * val(l, "server_sys_s") / val(l, "server_cpu_s") : 0), val(l, "errors")
        }
    }
}' "$RESULTS"

if grep -q '^server=siohub .*mode=fanout' "$RESULTS"; then
    echo
    echo "siohub hub counters (first fan-out run):" \
        "$(grep '^server=siohub .*mode=fanout' "$RESULTS" | head -n 1 | grep -o 'broadcasts=[^ ]* hub_deliveries=[^ ]*')"
fi
if grep -q '^server=siohub .*mode=churn' "$RESULTS"; then
    echo "siohub sockets left after churn: $(grep '^server=siohub .*mode=churn' "$RESULTS" |
        grep -o 'sockets_left=[^ ]*' | cut -d= -f2 | tr '\n' ' ')"
fi
