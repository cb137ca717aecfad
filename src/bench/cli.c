/* bench/cli.c — options, defaults, --help (see cli.h). */
#include "bench/cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench/payload.h"
#include "bench/scenario.h"
#include "bench/util.h"

/* Sockets one worker process may hold beside its epoll, timer, control
 * socket and stdio. */
#define FDS_PER_PROC_DEFAULT 18000
#define SOCKETS_PER_SOURCE   25000

static const char usage_text[] =
    "Usage: siohub-bench SCENARIO [OPTION]...\n"
    "Load generator for siohubd and other realtime servers (Socket.IO v5 over\n"
    "WebSocket, long-polling or SSE; or plain WebSocket). Runs on this host\n"
    "against 127.0.0.0/8 only. Prints a table, then one line RESULT {json}.\n"
    "\n"
    "Scenarios:\n"
    "%s"
    "\n"
    "Target:\n"
    "  --host ADDR            server address, in 127.0.0.0/8 (127.0.0.1)\n"
    "  --port P[,P...]        server port(s); several = a fleet: subscribers are\n"
    "                         spread round-robin over them (required)\n"
    "  --emit-port P          port the publisher posts to (the first --port)\n"
    "  --path PATH            Engine.IO path (/ws/socket.io/)\n"
    "  --protocol socketio|raw-ws|raw-sse\n"
    "                         raw-ws: plain WebSocket subscribers, each text frame\n"
    "                         one message (nchan, the floor server); fanout and idle;\n"
    "                         raw-sse: plain EventSource subscribers, each data:\n"
    "                         event one message; sse (or fanout --transport sse)\n"
    "  --sub-path PATH        raw-ws, raw-sse: subscribers' path (/sub/bench)\n"
    "  --pub-path PATH        raw-ws, raw-sse: publisher's POST path, the body is\n"
    "                         the message (/pub/bench)\n"
    "  --secret S             mint HS256 tokens with S ({\"id\",\"name\",\"role\",\n"
    "                         \"channels\",\"exp\": now + 1 day}), as siohubd's claims\n"
    "                         directory and the peers expect\n"
    "  --token T              use token T for every client instead\n"
    "  --user ID              the subscribers' user id (bench)\n"
    "  --room ROOM            fanout: room emitted to (user:<user>)\n"
    "  --api-key K            bearer key for /api/v1/emit and /api/v1/chat-events\n"
    "  --emit-api emit|chat-events\n"
    "                         fanout: POST /api/v1/emit {event,data,to:{room}}, or\n"
    "                         /api/v1/chat-events {user_id,chat_id,message_id,data}\n"
    "                         (emit)\n"
    "  --redis ADDR:PORT      publish on this Redis instead (fanout, chat): each\n"
    "                         message one PUBLISH of python-socketio's pub/sub\n"
    "                         emit {method,event,data,namespace,room,...} in\n"
    "                         JSON, the way Open WebUI's backend reaches the\n"
    "                         socket servers of a fleet; pipelined on one\n"
    "                         connection, each reply must count a subscriber\n"
    "  --redis-channel NAME   the pub/sub channel (socketio)\n"
    "  --pid PID[,PID...]     server process(es): CPU time (utime + stime of\n"
    "                         /proc/PID/stat) over the measured phase and VmRSS,\n"
    "                         summed over the PIDs\n"
    "\n"
    "Load:\n"
    "  -n, --clients N        subscribers (connections; default per scenario)\n"
    "  --procs P              client processes, each its own epoll loop with N/P\n"
    "                         clients (ceil(N / 18000))\n"
    "  --sources K            bind client sockets to 127.0.0.2 ... 127.0.0.(K+1),\n"
    "                         round-robin, ports picked at connect time\n"
    "                         (ceil(N / 25000); 0: no bind, 127.0.0.1)\n"
    "  --transport websocket|polling|sse\n"
    "                         Socket.IO transport of the clients (websocket); sse\n"
    "                         is siohubd's GET <path>sse endpoint\n"
    "  --rate R               fanout: publishes per second (100)\n"
    "  --duration S           measured phase, seconds (10)\n"
    "  --size BYTES           size of each published message, at least %d (200)\n"
    "  --pad-language L       its padding: en, ASCII (en); zh, Chinese characters\n"
    "                         as Python's json.dumps writes them, \\uXXXX each\n"
    "  --find-max             fanout: after a warm-up window at --rate, double the\n"
    "                         rate from --rate until p99 reaches --p99-limit or\n"
    "                         deliveries fall behind (a rate is tried twice before\n"
    "                         it counts as missed), then bisect; report the\n"
    "                         highest rate that held\n"
    "  --p99-limit MS         --find-max latency bound (50)\n"
    "  --max-rate R           --find-max: never above R per second (no bound)\n"
    "  --publishers K         keep-alive connections the publisher posts on, one\n"
    "                         request in flight each (8)\n"
    "  --connect-batch B      handshakes in flight per process (200)\n"
    "  --connect-timeout S    bound on connecting every client (60)\n"
    "  --drain-timeout S      after the last publish, wait this long without a\n"
    "                         delivery before counting the rest missing (5)\n"
    "  --settle S             idle, fanout: wait after connecting before measuring\n"
    "                         (1): an Open WebUI-style server answers CONNECT\n"
    "                         first and joins the user's room after checking the\n"
    "                         token (siohubd in fleet mode: a Redis round trip)\n"
    "Chat (the chat scenario):\n"
    "  --users U  --tabs A-B  --tokens-per-second T  --channel-size C\n"
    "  --typing-rate R        (100, 1-3, 20, 10, 1)\n"
    "  --burst B              a user's tokens come B at a time, every B/T s, the\n"
    "                         users' bursts spread evenly (5)\n"
    "  --batch N              tokens per API request at most: every tick (10 ms)\n"
    "                         the publisher POSTs the tokens due as one JSON\n"
    "                         array; 1: one object per request, for servers\n"
    "                         without arrays (100)\n"
    "  --reply-tokens N       each token carries the reply so far, as Open WebUI's\n"
    "                         chat:completion content does: a reply of N tokens\n"
    "                         (~5 bytes each) grows a token per event, then the\n"
    "                         next starts; the tabs check it byte for byte.\n"
    "                         0: every token is \" tok\" (0)\n"
    "  --reply-language L     en: English prose, ASCII (en); zh: Chinese, sent as\n"
    "                         Python's json.dumps (Open WebUI's backend) writes it,\n"
    "                         every character a \\uXXXX escape (~12 bytes a token)\n"
    "Polling (the polling scenario):\n"
    "  --concurrency C        handshake slots, each connecting and leaving in a\n"
    "                         loop; 0 skips that phase (64). --clients N: clients\n"
    "                         doing round trips; 0 skips that phase\n"
    "\n"
    "Output:\n"
    "  --json FILE            also write the JSON object to FILE\n"
    "  -v, --verbose          log every client error on stderr\n"
    "  -h, --help             print this help and exit\n"
    "\n"
    "JSON keys (a scenario omits what it does not measure): scenario, protocol,\n"
    "transport, clients, connected, procs, sources, sent, delivered, expected,\n"
    "duration_s, delivery_rate, latency_ms {p50, p99, p999, max}, errors,\n"
    "server_cpu_s, server_cpu_us_per_delivery, server_rss_kib_before,\n"
    "server_rss_kib_after, rss_kib_per_conn, kernel_sock_kib_before,\n"
    "kernel_sock_kib_after, kernel_kib_per_conn, handshakes_per_s,\n"
    "round_trips_per_s, max_rate_p99_under_50ms.\n"
    "\n"
    "Exit status: 0 when the run completed and every check held (each\n"
    "subscriber got each message exactly once, in order per publisher), 1 on a\n"
    "failed check or a timeout, 2 on bad usage.\n";

void sb_cli_usage(FILE *f)
{
    sb_buf_t list = {0};
    for (const sb_scenario_t *const *s = sb_scenarios; *s; s++)
        sb_buf_printf(&list, "  %-22s %s\n", (*s)->name, (*s)->summary);
    sb_buf_append(&list, "", 1);
    fprintf(f, usage_text, sb_buf_head(&list), SB_PAYLOAD_MIN);
    sb_buf_release(&list);
}

void sb_cli_bad(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(SB_PROG ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\nTry 'siohub-bench --help'.\n", stderr);
    va_end(ap);
    exit(2);
}

const char *sb_protocol_name(sb_protocol_t p)
{
    return p == SB_PROTO_RAW_WS ? "raw-ws" : p == SB_PROTO_RAW_SSE ? "raw-sse" : "socketio";
}

const char *sb_transport_name(sb_transport_t t)
{
    switch (t) {
    case SB_TRANSPORT_POLLING:
        return "polling";
    case SB_TRANSPORT_SSE:
        return "sse";
    case SB_TRANSPORT_WEBSOCKET:
        break;
    }
    return "websocket";
}

static unsigned long parse_ulong(const char *s, const char *what, unsigned long min,
                                 unsigned long max)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || !*s || *end || *s == '-' || v < min || v > max)
        sb_cli_bad("bad %s '%s' (%lu..%lu)", what, s, min, max);
    return v;
}

static double parse_double(const char *s, const char *what, double min)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || !*s || *end || !(v >= min) || v > 1e9)
        sb_cli_bad("bad %s '%s'", what, s);
    return v;
}

/* A text's language for --reply-language and --pad-language: true for zh
 * (Chinese), false for en (English). */
static bool parse_language(const char *s, const char *what)
{
    if (!strcmp(s, "en"))
        return false;
    if (!strcmp(s, "zh"))
        return true;
    sb_cli_bad("bad %s '%s' (en or zh)", what, s);
}

/* Splits a comma list of numbers into out (at most max). */
static unsigned parse_list(const char *s, const char *what, unsigned long min, unsigned long max,
                           unsigned long *out, unsigned cap)
{
    char *copy = sb_xstrdup(s), *save = NULL;
    unsigned n = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n == cap)
            sb_cli_bad("too many %ss (at most %u)", what, cap);
        out[n++] = parse_ulong(tok, what, min, max);
    }
    free(copy);
    if (!n)
        sb_cli_bad("no %s in '%s'", what, s);
    return n;
}

/* A path option: starts with '/'; with_slash: ends with one too, added
 * in *buf (owned) when missing. */
static const char *parse_path(const char *s, const char *what, char **buf)
{
    if (s[0] != '/' || strpbrk(s, " \r\n\"?#"))
        sb_cli_bad("bad %s '%s' (a path starting with '/')", what, s);
    size_t n = strlen(s);
    if (!buf || s[n - 1] == '/')
        return s;
    free(*buf);
    *buf = sb_xcalloc(n + 2, 1);
    memcpy(*buf, s, n);
    (*buf)[n] = '/';
    return *buf;
}

/* Ids and keys go into JSON and HTTP text as they are. */
static const char *parse_word(const char *s, const char *what)
{
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x21 || *p == '"' || *p == '\\' || (unsigned char)*p >= 0x7f)
            sb_cli_bad("bad %s: spaces, quotes, backslashes and control characters are not allowed",
                       what);
    if (!*s)
        sb_cli_bad("empty %s", what);
    return s;
}

enum {
    OPT_HOST = 256,
    OPT_PORT,
    OPT_EMIT_PORT,
    OPT_PATH,
    OPT_PROTOCOL,
    OPT_SUB_PATH,
    OPT_PUB_PATH,
    OPT_SECRET,
    OPT_TOKEN,
    OPT_USER,
    OPT_ROOM,
    OPT_API_KEY,
    OPT_EMIT_API,
    OPT_PID,
    OPT_PROCS,
    OPT_SOURCES,
    OPT_TRANSPORT,
    OPT_RATE,
    OPT_DURATION,
    OPT_SIZE,
    OPT_PAD_LANGUAGE,
    OPT_FIND_MAX,
    OPT_P99_LIMIT,
    OPT_MAX_RATE,
    OPT_PUBLISHERS,
    OPT_CONNECT_BATCH,
    OPT_CONNECT_TIMEOUT,
    OPT_DRAIN_TIMEOUT,
    OPT_SETTLE,
    OPT_USERS,
    OPT_TABS,
    OPT_TOKENS_PER_SECOND,
    OPT_CHANNEL_SIZE,
    OPT_TYPING_RATE,
    OPT_BATCH,
    OPT_BURST,
    OPT_REPLY_TOKENS,
    OPT_REPLY_LANGUAGE,
    OPT_REDIS,
    OPT_REDIS_CHANNEL,
    OPT_CONCURRENCY,
    OPT_JSON,
};

static const struct option longopts[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"emit-port", required_argument, NULL, OPT_EMIT_PORT},
    {"path", required_argument, NULL, OPT_PATH},
    {"protocol", required_argument, NULL, OPT_PROTOCOL},
    {"sub-path", required_argument, NULL, OPT_SUB_PATH},
    {"pub-path", required_argument, NULL, OPT_PUB_PATH},
    {"secret", required_argument, NULL, OPT_SECRET},
    {"token", required_argument, NULL, OPT_TOKEN},
    {"user", required_argument, NULL, OPT_USER},
    {"room", required_argument, NULL, OPT_ROOM},
    {"api-key", required_argument, NULL, OPT_API_KEY},
    {"emit-api", required_argument, NULL, OPT_EMIT_API},
    {"pid", required_argument, NULL, OPT_PID},
    {"clients", required_argument, NULL, 'n'},
    {"procs", required_argument, NULL, OPT_PROCS},
    {"sources", required_argument, NULL, OPT_SOURCES},
    {"transport", required_argument, NULL, OPT_TRANSPORT},
    {"rate", required_argument, NULL, OPT_RATE},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"size", required_argument, NULL, OPT_SIZE},
    {"pad-language", required_argument, NULL, OPT_PAD_LANGUAGE},
    {"find-max", no_argument, NULL, OPT_FIND_MAX},
    {"p99-limit", required_argument, NULL, OPT_P99_LIMIT},
    {"max-rate", required_argument, NULL, OPT_MAX_RATE},
    {"publishers", required_argument, NULL, OPT_PUBLISHERS},
    {"connect-batch", required_argument, NULL, OPT_CONNECT_BATCH},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"drain-timeout", required_argument, NULL, OPT_DRAIN_TIMEOUT},
    {"settle", required_argument, NULL, OPT_SETTLE},
    {"users", required_argument, NULL, OPT_USERS},
    {"tabs", required_argument, NULL, OPT_TABS},
    {"tokens-per-second", required_argument, NULL, OPT_TOKENS_PER_SECOND},
    {"channel-size", required_argument, NULL, OPT_CHANNEL_SIZE},
    {"typing-rate", required_argument, NULL, OPT_TYPING_RATE},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"burst", required_argument, NULL, OPT_BURST},
    {"reply-tokens", required_argument, NULL, OPT_REPLY_TOKENS},
    {"reply-language", required_argument, NULL, OPT_REPLY_LANGUAGE},
    {"redis", required_argument, NULL, OPT_REDIS},
    {"redis-channel", required_argument, NULL, OPT_REDIS_CHANNEL},
    {"concurrency", required_argument, NULL, OPT_CONCURRENCY},
    {"json", required_argument, NULL, OPT_JSON},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* ADDR:PORT, the address in 127.0.0.0/8 like every target. */
static void parse_redis(sb_opts_t *o, const char *s)
{
    const char *colon = strrchr(s, ':');
    char addr[INET_ADDRSTRLEN];
    size_t n = colon ? (size_t)(colon - s) : 0;
    if (!colon || n == 0 || n >= sizeof(addr))
        sb_cli_bad("bad --redis '%s' (ADDR:PORT)", s);
    memcpy(addr, s, n);
    addr[n] = '\0';
    if (inet_pton(AF_INET, addr, &o->redis_addr) != 1)
        sb_cli_bad("bad --redis address '%s' (an IPv4 address)", addr);
    if ((ntohl(o->redis_addr.s_addr) >> 24) != 127)
        sb_cli_bad("--redis %s is not in 127.0.0.0/8: siohub-bench loads this host only", addr);
    o->redis_port = (uint16_t)parse_ulong(colon + 1, "--redis port", 1, 65535);
}

static void parse_tabs(sb_opts_t *o, const char *s)
{
    unsigned long a, b;
    const char *dash = strchr(s, '-');
    if (dash) {
        char first[24];
        size_t n = (size_t)(dash - s);
        if (n == 0 || n >= sizeof(first))
            sb_cli_bad("bad tab range '%s' (A-B)", s);
        memcpy(first, s, n);
        first[n] = '\0';
        a = parse_ulong(first, "tab count", 1, 100);
        b = parse_ulong(dash + 1, "tab count", 1, 100);
    } else {
        a = b = parse_ulong(s, "tab count", 1, 100);
    }
    if (a > b)
        sb_cli_bad("bad tab range '%s' (A-B with A <= B)", s);
    o->tabs_min = (unsigned)a;
    o->tabs_max = (unsigned)b;
}

static void set_defaults(sb_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->host = "127.0.0.1";
    o->path = "/ws/socket.io/";
    o->protocol = SB_PROTO_SOCKETIO;
    o->sub_path = "/sub/bench";
    o->pub_path = "/pub/bench";
    o->user = "bench";
    o->emit_api = "emit";
    o->transport = SB_TRANSPORT_WEBSOCKET;
    o->rate = 100;
    o->duration_s = 10;
    o->size = 200;
    o->publishers = 8;
    o->connect_batch = 200;
    o->connect_timeout_s = 60;
    o->drain_timeout_s = 5;
    o->settle_s = 1;
    o->p99_limit_ms = 50;
    o->users = 100;
    o->tabs_min = 1;
    o->tabs_max = 3;
    o->tokens_per_s = 20;
    o->channel_size = 10;
    o->typing_rate = 1;
    o->batch = 100;
    o->burst = 5;
    o->redis_channel = "socketio";
    o->concurrency = 64;
}

/* Checks what depends on several options, fills the derived ones. */
static void complete(sb_opts_t *o, bool clients_set, bool procs_set, bool sources_set)
{
    const sb_scenario_t *sc = o->scenario;
    if (!o->nports)
        sb_cli_bad("--port is required");
    if (inet_pton(AF_INET, o->host, &o->host_addr) != 1)
        sb_cli_bad("bad --host '%s' (an IPv4 address)", o->host);
    if ((ntohl(o->host_addr.s_addr) >> 24) != 127)
        sb_cli_bad("--host %s is not in 127.0.0.0/8: siohub-bench loads this host only", o->host);
    if (!o->emit_port)
        o->emit_port = o->ports[0];
    if (!clients_set)
        o->clients = sc->default_clients;
    if (sc->complete)
        sc->complete(o, clients_set);
    if (o->protocol == SB_PROTO_RAW_WS) {
        if (!sc->raw_ws)
            sb_cli_bad("scenario %s does not run with --protocol raw-ws", sc->name);
        if (o->transport != SB_TRANSPORT_WEBSOCKET)
            sb_cli_bad("--protocol raw-ws is WebSocket only");
    }
    if (o->protocol == SB_PROTO_RAW_SSE) {
        if (!sc->raw_sse)
            sb_cli_bad("scenario %s does not run with --protocol raw-sse", sc->name);
        if (o->transport != SB_TRANSPORT_SSE)
            sb_cli_bad("--protocol raw-sse is SSE only (the sse scenario, or --transport sse)");
    }
    if (!procs_set)
        o->procs = (o->clients + FDS_PER_PROC_DEFAULT - 1) / FDS_PER_PROC_DEFAULT;
    if (o->procs < 1)
        o->procs = 1;
    if (o->clients && o->procs > o->clients)
        sb_cli_bad("--procs %u is more than the %u clients", o->procs, o->clients);
    if (!sources_set)
        o->sources = (o->clients + SOCKETS_PER_SOURCE - 1) / SOCKETS_PER_SOURCE;
    if (o->sources == 0 && !sources_set)
        o->sources = 1;
    /* Each client is one socket (polling and SSE clients that emit, two):
     * check the share of one process against the descriptor limit. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY) {
        unsigned long per_proc = (o->clients + o->procs - 1) / o->procs;
        bool two = sc->clients_emit && o->transport != SB_TRANSPORT_WEBSOCKET;
        unsigned long need = per_proc * (two ? 2 : 1) + 64;
        if (need > rl.rlim_max)
            sb_cli_bad("%lu sockets per process exceed the descriptor limit (%lu): raise "
                       "--procs",
                       need, (unsigned long)rl.rlim_max);
    }
    if (o->redis_port && (sb_proto_raw(o->protocol) || !sc->redis))
        sb_cli_bad("--redis publishes Socket.IO emits: the fanout and chat scenarios only");
    if (o->redis_port)
        o->publishers = 1; /* one connection, pipelined: Redis keeps the order */
    if (o->max_rate && o->max_rate < o->rate)
        sb_cli_bad("--max-rate %g is below --rate %g", o->max_rate, o->rate);
    if (!o->room) {
        size_t n = strlen(o->user) + 6;
        o->room_buf = sb_xcalloc(n, 1);
        snprintf(o->room_buf, n, "user:%s", o->user);
        o->room = o->room_buf;
    }
}

void sb_cli_release(sb_opts_t *o)
{
    free(o->minted_token);
    free(o->path_buf);
    free(o->room_buf);
    free(o->scenario_buf);
    o->minted_token = o->path_buf = o->room_buf = NULL;
    o->scenario_buf = NULL;
}

void sb_cli_parse(sb_opts_t *o, int argc, char **argv)
{
    set_defaults(o);
    bool clients_set = false, procs_set = false, sources_set = false;
    unsigned long list[SB_MAX_PORTS > SB_MAX_PIDS ? SB_MAX_PORTS : SB_MAX_PIDS];
    int opt;
    while ((opt = getopt_long(argc, argv, "n:vh", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_HOST:
            o->host = optarg;
            break;
        case OPT_PORT:
            o->nports = parse_list(optarg, "port", 1, 65535, list, SB_MAX_PORTS);
            for (unsigned i = 0; i < o->nports; i++)
                o->ports[i] = (uint16_t)list[i];
            break;
        case OPT_EMIT_PORT:
            o->emit_port = (uint16_t)parse_ulong(optarg, "port", 1, 65535);
            break;
        case OPT_PATH:
            o->path = parse_path(optarg, "--path", &o->path_buf);
            break;
        case OPT_PROTOCOL:
            if (!strcmp(optarg, "socketio"))
                o->protocol = SB_PROTO_SOCKETIO;
            else if (!strcmp(optarg, "raw-ws"))
                o->protocol = SB_PROTO_RAW_WS;
            else if (!strcmp(optarg, "raw-sse"))
                o->protocol = SB_PROTO_RAW_SSE;
            else
                sb_cli_bad("bad --protocol '%s' (socketio, raw-ws or raw-sse)", optarg);
            break;
        case OPT_SUB_PATH:
            o->sub_path = parse_path(optarg, "--sub-path", NULL);
            break;
        case OPT_PUB_PATH:
            o->pub_path = parse_path(optarg, "--pub-path", NULL);
            break;
        case OPT_SECRET:
            o->secret = optarg;
            if (!*optarg)
                sb_cli_bad("empty --secret");
            break;
        case OPT_TOKEN:
            o->token = parse_word(optarg, "--token");
            break;
        case OPT_USER:
            o->user = parse_word(optarg, "--user");
            break;
        case OPT_ROOM:
            o->room = parse_word(optarg, "--room");
            break;
        case OPT_API_KEY:
            o->api_key = parse_word(optarg, "--api-key");
            break;
        case OPT_EMIT_API:
            if (strcmp(optarg, "emit") && strcmp(optarg, "chat-events"))
                sb_cli_bad("bad --emit-api '%s' (emit or chat-events)", optarg);
            o->emit_api = optarg;
            break;
        case OPT_PID:
            o->npids = parse_list(optarg, "pid", 1, 0x7fffffff, list, SB_MAX_PIDS);
            for (unsigned i = 0; i < o->npids; i++)
                o->pids[i] = (pid_t)list[i];
            break;
        case 'n':
            o->clients = (unsigned)parse_ulong(optarg, "client count", 0, 10000000);
            clients_set = true;
            break;
        case OPT_PROCS:
            o->procs = (unsigned)parse_ulong(optarg, "process count", 1, 256);
            procs_set = true;
            break;
        case OPT_SOURCES:
            o->sources = (unsigned)parse_ulong(optarg, "source count", 0, SB_MAX_SOURCES);
            sources_set = true;
            break;
        case OPT_TRANSPORT:
            if (!strcmp(optarg, "websocket"))
                o->transport = SB_TRANSPORT_WEBSOCKET;
            else if (!strcmp(optarg, "polling"))
                o->transport = SB_TRANSPORT_POLLING;
            else if (!strcmp(optarg, "sse"))
                o->transport = SB_TRANSPORT_SSE;
            else
                sb_cli_bad("bad --transport '%s' (websocket, polling or sse)", optarg);
            break;
        case OPT_RATE:
            o->rate = parse_double(optarg, "--rate", 0.001);
            break;
        case OPT_DURATION:
            o->duration_s = parse_double(optarg, "--duration", 0.001);
            break;
        case OPT_SIZE:
            o->size = (unsigned)parse_ulong(optarg, "--size", SB_PAYLOAD_MIN, 16u << 20);
            break;
        case OPT_PAD_LANGUAGE:
            o->pad_zh = parse_language(optarg, "--pad-language");
            break;
        case OPT_FIND_MAX:
            o->find_max = true;
            break;
        case OPT_P99_LIMIT:
            o->p99_limit_ms = parse_double(optarg, "--p99-limit", 0.001);
            break;
        case OPT_MAX_RATE:
            o->max_rate = parse_double(optarg, "--max-rate", 0.001);
            break;
        case OPT_PUBLISHERS:
            o->publishers = (unsigned)parse_ulong(optarg, "--publishers", 1, SB_MAX_PUBS);
            break;
        case OPT_CONNECT_BATCH:
            o->connect_batch = (unsigned)parse_ulong(optarg, "--connect-batch", 1, 1000000);
            break;
        case OPT_CONNECT_TIMEOUT:
            o->connect_timeout_s = parse_double(optarg, "--connect-timeout", 0.001);
            break;
        case OPT_DRAIN_TIMEOUT:
            o->drain_timeout_s = parse_double(optarg, "--drain-timeout", 0.001);
            break;
        case OPT_SETTLE:
            o->settle_s = parse_double(optarg, "--settle", 0);
            break;
        case OPT_USERS:
            o->users = (unsigned)parse_ulong(optarg, "--users", 1, 10000000);
            break;
        case OPT_TABS:
            parse_tabs(o, optarg);
            break;
        case OPT_TOKENS_PER_SECOND:
            o->tokens_per_s = parse_double(optarg, "--tokens-per-second", 0);
            break;
        case OPT_CHANNEL_SIZE:
            o->channel_size = (unsigned)parse_ulong(optarg, "--channel-size", 1, 10000000);
            break;
        case OPT_TYPING_RATE:
            o->typing_rate = parse_double(optarg, "--typing-rate", 0);
            break;
        case OPT_BATCH:
            o->batch = (unsigned)parse_ulong(optarg, "--batch", 1, 100000);
            break;
        case OPT_BURST:
            o->burst = (unsigned)parse_ulong(optarg, "--burst", 1, 10000);
            break;
        case OPT_REPLY_TOKENS:
            o->reply_tokens = (unsigned)parse_ulong(optarg, "--reply-tokens", 0, 100000);
            break;
        case OPT_REPLY_LANGUAGE:
            o->reply_zh = parse_language(optarg, "--reply-language");
            break;
        case OPT_REDIS:
            parse_redis(o, optarg);
            break;
        case OPT_REDIS_CHANNEL:
            o->redis_channel = parse_word(optarg, "--redis-channel");
            break;
        case OPT_CONCURRENCY:
            o->concurrency = (unsigned)parse_ulong(optarg, "--concurrency", 0, 1000000);
            break;
        case OPT_JSON:
            o->json_path = optarg;
            break;
        case 'v':
            o->verbose = true;
            break;
        case 'h':
            sb_cli_usage(stdout);
            exit(0);
        default:
            fputs("Try 'siohub-bench --help'.\n", stderr);
            exit(2);
        }
    }
    if (optind >= argc)
        sb_cli_bad("no scenario given");
    if (optind + 1 < argc)
        sb_cli_bad("one scenario at a time ('%s' is extra)", argv[optind + 1]);
    o->scenario = sb_scenario_find(argv[optind]);
    if (!o->scenario)
        sb_cli_bad("unknown scenario '%s'", argv[optind]);
    complete(o, clients_set, procs_set, sources_set);
}
