/* options.c — the settings table: one entry per setting, in the order of
 * --help, the man page and etc/siohub.conf. Adding a setting is one entry
 * here and one field in sh_config_t; the unit tests then insist on its line
 * in etc/siohub.conf and doc/siohubd.8. */
#include <stddef.h>

#include "config/internal.h"

static const char *const app_names[] = {"echo", "openwebui", NULL};
/* Same order as sh_log_level_t. */
static const char *const log_level_names[] = {"debug", "info", "warn", "error", NULL};
static const char *const jwt_alg_names[] = {"HS256", "RS256", "ES256", NULL};

#define FIELD(name) offsetof(sh_config_t, name)

/* The table. Order is --help's, the man page's and etc/siohub.conf's.
 * Defaults follow Open WebUI where it has the same knob. */
static const sh_config_option_t options[] = {
    /* ---- server */
    {
        .key = "app",
        .type = SH_CONFIG_ENUM,
        .offset = FIELD(app),
        .def = "openwebui",
        .names = app_names,
        .group = "Server",
        .help = "openwebui (the Open WebUI contract) or echo (protocol tests)",
    },
    {
        .key = "listen",
        .type = SH_CONFIG_LISTEN,
        .offset = FIELD(listen),
        .def = "127.0.0.1:8090",
        .group = "Server",
        .metavar = "HOST:PORT",
        .help = "HOST:PORT, [IPV6]:PORT, or :PORT for every address",
    },
    {
        .key = "path",
        .type = SH_CONFIG_STRING,
        .offset = FIELD(path),
        .def = "",
        .group = "Server",
        .metavar = "PATH",
        .help = "Engine.IO path; empty: /ws/socket.io/ (openwebui), /socket.io/ (echo)",
    },
    {
        .key = "transports",
        .type = SH_CONFIG_TRANSPORTS,
        .offset = FIELD(transports),
        .def = "polling,websocket",
        .group = "Server",
        .metavar = "LIST",
        .help = "transports offered, a subset of polling,websocket",
        /* Open WebUI's flag picks websocket-only or polling-only for its
         * own client; serving polling too is what socket.io-client's
         * default expects, and harmless for a websocket-only client. */
        .env = "ENABLE_WEBSOCKET_SUPPORT",
        .env_map = sh_config_env_websocket_support,
    },
    {
        .key = "cors_allow_origin",
        .type = SH_CONFIG_ORIGINS,
        .offset = FIELD(cors_allow_origin),
        .def = "*",
        .group = "Server",
        .metavar = "ORIGINS",
        .help = "allowed origins: * or a ';'-separated list of scheme://host[:port]",
        .env = "CORS_ALLOW_ORIGIN",
    },
    {
        .key = "log_level",
        .type = SH_CONFIG_ENUM,
        .offset = FIELD(log_level),
        .def = "info",
        .names = log_level_names,
        .group = "Server",
        .help = "least severe level logged",
    },
    /* ---- Engine.IO */
    {
        .key = "ping_interval",
        .type = SH_CONFIG_DURATION,
        .offset = FIELD(ping_interval_ms),
        .def = "25000",
        .min = 1,
        .max = MS_DAY,
        .group = "Engine.IO",
        .help = "time between the server's pings",
        .env = "WEBSOCKET_SERVER_PING_INTERVAL",
        .env_scale = MS_SECOND,
    },
    {
        .key = "ping_timeout",
        .type = SH_CONFIG_DURATION,
        .offset = FIELD(ping_timeout_ms),
        .def = "20000",
        .min = 1,
        .max = MS_DAY,
        .group = "Engine.IO",
        .help = "time a client has to answer a ping before its session is closed",
        .env = "WEBSOCKET_SERVER_PING_TIMEOUT",
        .env_scale = MS_SECOND,
    },
    {
        .key = "connect_timeout",
        .type = SH_CONFIG_DURATION,
        .offset = FIELD(connect_timeout_ms),
        .def = "45000",
        .min = 1,
        .max = MS_DAY,
        .group = "Engine.IO",
        .help = "time a new session has to send a CONNECT and get it answered",
    },
    {
        .key = "upgrade_timeout",
        .type = SH_CONFIG_DURATION,
        .offset = FIELD(upgrade_timeout_ms),
        .def = "10000",
        .min = 1,
        .max = MS_DAY,
        .group = "Engine.IO",
        .help = "time a polling to websocket upgrade has to complete",
    },
    /* ---- limits */
    {
        .key = "max_payload",
        .type = SH_CONFIG_SIZE,
        .offset = FIELD(max_payload),
        .def = "1000000",
        .min = 1,
        .max = GIB,
        .group = "Limits",
        .help = "largest packet or polling payload a client may send",
    },
    {
        .key = "output_queue_limit",
        .type = SH_CONFIG_SIZE,
        .offset = FIELD(output_queue_limit),
        .def = "4M",
        .min = 1,
        .max = 64 * GIB,
        .group = "Limits",
        .help = "bytes queued for one client; past it the client is disconnected",
    },
    {
        .key = "max_connections",
        .type = SH_CONFIG_INT,
        .offset = FIELD(max_connections),
        .def = "10000",
        .min = 1,
        .max = 1000000,
        .group = "Limits",
        .metavar = "N",
        .help = "most simultaneous connections (HTTP and WebSocket)",
    },
    {
        .key = "http_timeout",
        .type = SH_CONFIG_DURATION,
        .offset = FIELD(http_timeout_ms),
        .def = "60000",
        /* libmicrohttpd counts whole seconds. */
        .min = MS_SECOND,
        .max = MS_DAY,
        .group = "Limits",
        .help = "idle time after which a keep-alive HTTP connection is closed",
    },
    {
        .key = "api_body_limit",
        .type = SH_CONFIG_SIZE,
        .offset = FIELD(api_body_limit),
        .def = "1M",
        .min = 1,
        .max = GIB,
        .group = "Limits",
        .help = "largest request body the HTTP API accepts",
    },
    /* ---- SSE */
    {
        .key = "sse_grace",
        .type = SH_CONFIG_DURATION,
        .offset = FIELD(sse_grace_ms),
        .def = "30000",
        .min = 0,
        .max = MS_DAY,
        .group = "SSE",
        .help = "time an SSE session outlives its dropped stream, for a resume",
    },
    {
        .key = "sse_buffer",
        .type = SH_CONFIG_SIZE,
        .offset = FIELD(sse_buffer),
        .def = "1M",
        .min = 0,
        .max = GIB,
        .group = "SSE",
        .help = "bytes of recent events an SSE session keeps to replay on a resume",
    },
    {
        .key = "sse_buffer_events",
        .type = SH_CONFIG_INT,
        .offset = FIELD(sse_buffer_events),
        .def = "4096",
        .min = 0,
        .max = 1000000,
        .group = "SSE",
        .metavar = "N",
        .help = "most recent events an SSE session keeps to replay on a resume",
    },
    /* ---- Open WebUI */
    {
        .key = "secret",
        .type = SH_CONFIG_STRING,
        .offset = FIELD(secret),
        .def = "",
        .group = "Open WebUI",
        .metavar = "KEY",
        .help = "secret that signs HS256 tokens (Open WebUI's WEBUI_SECRET_KEY)",
        .env = "WEBUI_SECRET_KEY",
        .env_alt = "WEBUI_JWT_SECRET_KEY", /* Open WebUI's deprecated name */
        .flags = SH_CONFIG_SECRET,
    },
    {
        .key = "jwt_algorithm",
        .type = SH_CONFIG_ENUM,
        .offset = FIELD(jwt_algorithm),
        .def = "HS256",
        .names = jwt_alg_names,
        .group = "Open WebUI",
        .help = "token signature: HS256 (secret), or RS256 or ES256 (jwt_public_key)",
    },
    {
        .key = "jwt_public_key",
        .type = SH_CONFIG_STRING,
        .offset = FIELD(jwt_public_key),
        .def = "",
        .group = "Open WebUI",
        .metavar = "FILE",
        .help = "PEM public key file that checks RS256 and ES256 tokens",
    },
    {
        .key = "jwt_leeway",
        .type = SH_CONFIG_DURATION,
        .offset = FIELD(jwt_leeway_ms),
        .def = "30000",
        .min = 0,
        .max = MS_DAY,
        .group = "Open WebUI",
        .help = "clock skew tolerated when checking a token's exp, nbf and iat",
    },
    {
        .key = "directory",
        .type = SH_CONFIG_STRING,
        .offset = FIELD(directory),
        .def = "claims",
        .group = "Open WebUI",
        .metavar = "claims|file:PATH",
        .help = "where users come from: the token's own claims, or a JSON file",
    },
    {
        .key = "api_key",
        .type = SH_CONFIG_STRING,
        .offset = FIELD(api_key),
        .def = "",
        .group = "Open WebUI",
        .metavar = "KEY",
        .help = "bearer key of the HTTP API under /api/v1; empty disables the API",
        .flags = SH_CONFIG_SECRET,
    },
    {
        .key = "presence",
        .type = SH_CONFIG_BOOL,
        .offset = FIELD(presence),
        .def = "true",
        .group = "Open WebUI",
        .help = "broadcast user-list and usage events (Open WebUI's seed shape)",
    },
    {
        .key = "presence_window",
        .type = SH_CONFIG_DURATION,
        .offset = FIELD(presence_window_ms),
        .def = "250",
        .min = 1,
        .max = MS_MINUTE,
        .group = "Open WebUI",
        .help = "at most one user-list and one usage broadcast per window",
    },
    {
        .key = "event_caller_timeout",
        .type = SH_CONFIG_DURATION,
        .offset = FIELD(event_caller_timeout_ms),
        /* Open WebUI's backend/open_webui/env.py: an unset
         * WEBSOCKET_EVENT_CALLER_TIMEOUT is None, so sio.call() waits with
         * no timeout (only an unparsable value means 300 s). We default to
         * the same "no timeout", spelled 0; the call still fails when the
         * session goes away. */
        .def = "0",
        .min = 0,
        .max = 7 * MS_DAY,
        .group = "Open WebUI",
        .help = "wait for the browser's ack to a call; 0: until the session leaves",
        .env = "WEBSOCKET_EVENT_CALLER_TIMEOUT",
        .env_scale = MS_SECOND,
    },
    {
        .key = "usage_cleanup_interval",
        .type = SH_CONFIG_DURATION,
        .offset = FIELD(usage_cleanup_interval_ms),
        .def = "3000",
        .min = 1,
        .max = MS_DAY,
        .group = "Open WebUI",
        .help = "how often stale model-usage entries are dropped",
    },
    {
        .key = "usage_timeout",
        .type = SH_CONFIG_DURATION,
        .offset = FIELD(usage_timeout_ms),
        .def = "3000",
        .min = 1,
        .max = MS_DAY,
        .group = "Open WebUI",
        .help = "age at which a model-usage entry is stale",
    },
    {
        .key = "session_reap_age",
        .type = SH_CONFIG_DURATION,
        .offset = FIELD(session_reap_age_ms),
        .def = "120000",
        .min = 1,
        .max = 7 * MS_DAY,
        .group = "Open WebUI",
        .help = "age of last_seen_at at which a session-pool entry is removed",
    },
    /* ---- Redis */
    {
        .key = "websocket_manager",
        .type = SH_CONFIG_STRING,
        .offset = FIELD(websocket_manager),
        .def = "",
        .group = "Redis",
        .metavar = "NAME",
        .help = "redis: share pools and emits with other nodes; else this process only",
        .env = "WEBSOCKET_MANAGER",
    },
    {
        .key = "redis_url",
        .type = SH_CONFIG_STRING,
        .offset = FIELD(redis_url),
        .def = "",
        .group = "Redis",
        .metavar = "URL",
        .help = "Redis URL for websocket_manager=redis, e.g. redis://localhost:6379/0",
        .env = "WEBSOCKET_REDIS_URL",
        .env_alt = "REDIS_URL",    /* Open WebUI's fallback */
        .flags = SH_CONFIG_SECRET, /* may carry a password */
    },
    {
        .key = "redis_key_prefix",
        .type = SH_CONFIG_STRING,
        .offset = FIELD(redis_key_prefix),
        .def = "open-webui",
        .group = "Redis",
        .metavar = "PREFIX",
        .help = "prefix of the Redis keys shared with Open WebUI",
        .env = "REDIS_KEY_PREFIX",
    },
    {
        .key = "redis_channel",
        .type = SH_CONFIG_STRING,
        .offset = FIELD(redis_channel),
        .def = "socketio",
        .group = "Redis",
        .metavar = "CHANNEL",
        .help = "pub/sub channel shared with python-socketio's Redis manager",
    },
    {
        .key = "room_channels",
        .type = SH_CONFIG_BOOL,
        .offset = FIELD(room_channels),
        .def = "false",
        .group = "Redis",
        .help = "also publish room emits on CHANNEL#/#ROOM (Open WebUI 0.11.5+)",
    },
    {
        .key = "node_ttl",
        .type = SH_CONFIG_DURATION,
        .offset = FIELD(node_ttl_ms),
        .def = "10000",
        .min = 1000,
        .max = MS_DAY,
        .group = "Redis",
        .help = "liveness key lifetime; a dead node's sessions leave within 3x this",
    },
    {
        .key = "lock_timeout",
        .type = SH_CONFIG_DURATION,
        .offset = FIELD(lock_timeout_ms),
        .def = "6000",
        .min = 1000,
        .max = MS_DAY,
        .group = "Redis",
        .help = "cleanup lock lifetime; a dead holder's job moves within it",
        .env = "WEBSOCKET_REDIS_LOCK_TIMEOUT",
        .env_scale = 1000,
    },
};

#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

_Static_assert(sizeof(options) / sizeof(options[0]) <= SH_CONFIG_MAX_OPTIONS,
               "raise SH_CONFIG_MAX_OPTIONS");

const sh_config_option_t *sh_config_options(size_t *n)
{
    if (n)
        *n = N_OPTIONS;
    return options;
}
