/* config.h — siohubd's settings: one declarative table drives the config
 * file parser, the environment overrides, the long command-line options,
 * --help, the shipped etc/siohub.conf and the man page (nginx's
 * ngx_command_t, without the callbacks).
 *
 * Precedence, lowest first: built-in defaults < config file < environment
 * (Open WebUI's variable names) < command-line options. Every error is
 * fatal for the caller and its text names where the bad value came from:
 *   "siohub.conf:12: unknown key 'pingintervall'"
 *   "environment WEBSOCKET_SERVER_PING_INTERVAL: 'x' is not a number"
 *   "option --ping-interval: 'abc' is not a duration (...)"
 *
 * Adding a setting: one field in sh_config_t and one entry in the table in
 * config.c. The unit tests then fail until etc/siohub.conf and
 * doc/siohubd.8 show it with the same default.
 *
 * Ownership: sh_config_t owns every string and list it holds; the values
 * are valid until sh_config_release(). Nothing here keeps global state, so
 * a config can be loaded, thrown away and loaded again (tests, fuzzing).
 * All functions are synchronous and never abort on bad input.
 */
#ifndef SH_CONFIG_CONFIG_H
#define SH_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/buf.h"
#include "core/log.h"

/* Files above these sizes are rejected, not truncated. */
#define SH_CONFIG_MAX_FILE (1024 * 1024)
#define SH_CONFIG_MAX_LINE 8192

typedef enum {
    SH_CONFIG_APP_ECHO = 0,      /* protocol conformance app */
    SH_CONFIG_APP_OPENWEBUI = 1, /* the Open WebUI contract */
} sh_config_app_t;

typedef enum {
    SH_CONFIG_JWT_HS256 = 0,
    SH_CONFIG_JWT_RS256 = 1,
    SH_CONFIG_JWT_ES256 = 2,
} sh_config_jwt_alg_t;

/* Bits of sh_config_t.transports (never 0 after a successful set). */
#define SH_CONFIG_TRANSPORT_POLLING   (1u << 0)
#define SH_CONFIG_TRANSPORT_WEBSOCKET (1u << 1)

/* "host:port", "[v6]:port" or ":port". host is "" for every address, else
 * a name or literal address without brackets; port 0 means "any free port"
 * (tests). */
typedef struct sh_config_listen {
    char *host;
    int port;
} sh_config_listen_t;

/* CORS_ALLOW_ORIGIN: any (the "*" default) or a list of exact origins,
 * each "scheme://host[:port]", lower-cased, without a trailing '/' —
 * the form a browser sends in its Origin header. */
typedef struct sh_config_origins {
    bool any;
    size_t n;
    char **v;
} sh_config_origins_t;

typedef struct sh_config {
    /* server */
    sh_config_app_t app;
    sh_config_listen_t listen;
    char *path; /* "" = the app's default; use sh_config_path() */
    unsigned transports;
    sh_config_origins_t cors_allow_origin;
    sh_log_level_t log_level;
    /* Engine.IO */
    int64_t ping_interval_ms;
    int64_t ping_timeout_ms;
    int64_t connect_timeout_ms;
    int64_t upgrade_timeout_ms;
    /* limits */
    uint64_t max_payload;
    uint64_t output_queue_limit;
    int64_t max_connections;
    int64_t http_timeout_ms;
    uint64_t api_body_limit;
    /* SSE */
    int64_t sse_grace_ms;
    uint64_t sse_buffer;
    int64_t sse_buffer_events;
    /* Open WebUI */
    char *secret; /* never printed */
    sh_config_jwt_alg_t jwt_algorithm;
    char *jwt_public_key;
    int64_t jwt_leeway_ms;
    char *directory; /* "claims" or "file:PATH"; see sh_config_directory_file() */
    char *api_key;   /* "" = HTTP API disabled; never printed */
    bool presence;
    int64_t presence_window_ms;
    int64_t event_caller_timeout_ms; /* 0 = wait until the session goes away */
    int64_t usage_cleanup_interval_ms;
    int64_t usage_timeout_ms;
    int64_t session_reap_age_ms;
    /* Redis */
    char *websocket_manager; /* "redis" selects Redis; anything else: none */
    char *redis_url;
    char *redis_key_prefix;
    char *redis_channel;
    bool room_channels;
    int64_t node_ttl_ms;
    int64_t lock_timeout_ms;

    /* Not a setting: the file the values were read from, NULL when none
     * was (defaults, environment and options only). For the start-up log. */
    char *source_path;
} sh_config_t;

/* ---- the table */

typedef enum {
    SH_CONFIG_STRING,     /* char * */
    SH_CONFIG_BOOL,       /* bool: true/false yes/no on/off 1/0 */
    SH_CONFIG_INT,        /* int64_t, decimal, within [min, max] */
    SH_CONFIG_DURATION,   /* int64_t ms: "250" = ms, or suffix ms/s/m */
    SH_CONFIG_SIZE,       /* uint64_t bytes: plain or suffix k/M/G (1024-based) */
    SH_CONFIG_ENUM,       /* int-sized enum: index into names[] */
    SH_CONFIG_LISTEN,     /* sh_config_listen_t */
    SH_CONFIG_ORIGINS,    /* sh_config_origins_t: '*' or a ';'/',' list */
    SH_CONFIG_TRANSPORTS, /* unsigned bitmask: ','-list of polling,websocket */
} sh_config_type_t;

/* Option flags. */
#define SH_CONFIG_SECRET 0x1u /* value never printed: not in errors, logs or dumps */

typedef struct sh_config_option {
    const char *key; /* file key; the long option is "--" key with '_' -> '-' */
    sh_config_type_t type;
    size_t offset;       /* of the field in sh_config_t */
    const char *def;     /* default, in the file's syntax (the shipped file shows it) */
    const char *group;   /* heading in --help, the man page and etc/siohub.conf */
    const char *metavar; /* value placeholder in --help; NULL = from the type */
    const char *help;    /* one line */
    /* Open WebUI's environment variable, or NULL; env_alt is read when env
     * is unset (Open WebUI's own fallback). An empty value counts as unset. */
    const char *env;
    const char *env_alt;
    /* > 0: the environment gives a plain integer in units of env_scale
     * (1000 = seconds for a duration in ms). 0: the file's syntax. */
    int64_t env_scale;
    /* Converts the environment's value into the file's syntax when
     * Open WebUI's variable means something else (ENABLE_WEBSOCKET_SUPPORT);
     * returns 0, or -EINVAL with a reason in err. */
    int (*env_map)(const char *value, sh_buf_t *out, sh_buf_t *err);
    int64_t min, max;         /* INT, DURATION, SIZE */
    const char *const *names; /* ENUM: NULL-terminated, index = value */
    unsigned flags;
} sh_config_option_t;

/* The table, in --help order (grouped). Static storage; *n gets its size. */
const sh_config_option_t *sh_config_options(size_t *n);
/* The option for a key (any case, '-' and '_' equivalent), or NULL. */
const sh_config_option_t *sh_config_find(const char *key);

/* ---- lifecycle */

/* Sets every field to the table's default. Never fails. */
void sh_config_init(sh_config_t *cfg);
/* Frees what cfg owns; cfg must be re-initialised before reuse. Calling
 * it twice is fine. */
void sh_config_release(sh_config_t *cfg);

/* ---- sources. Each returns 0, or a negative errno with the reason
 * appended to err (err may be NULL). On error cfg may hold some of the new
 * values, but is always valid to release. */

/* Parses a config file's body. name prefixes messages ("siohub.conf:3:
 * ..."). text need not be NUL-terminated; len > SH_CONFIG_MAX_FILE, a line
 * longer than SH_CONFIG_MAX_LINE, a NUL byte, an unknown key, a key set
 * twice or a bad value is an error. */
int sh_config_parse_text(sh_config_t *cfg, const char *name, const char *text, size_t len,
                         sh_buf_t *err);
/* Reads and parses the file at path and records it in cfg->source_path.
 * "PATH: cannot read: <strerror>" when it cannot be read. */
int sh_config_read_file(sh_config_t *cfg, const char *path, sh_buf_t *err);
/* Applies the table's environment variables from envp ("NAME=value",
 * NULL-terminated, may be NULL). The first entry for a name wins, as with
 * getenv(). */
int sh_config_apply_env(sh_config_t *cfg, char **envp, sh_buf_t *err);
/* Sets one key from a value in the file's syntax: "key: reason" on error,
 * "unknown key 'x'" for an unknown key. */
int sh_config_set(sh_config_t *cfg, const char *key, const char *value, sh_buf_t *err);
/* Cross-field checks, run once every source has been applied: path syntax,
 * max_payload <= output_queue_limit, a readable public key for RS256/ES256,
 * directory syntax, redis_url when websocket_manager is redis. */
int sh_config_validate(const sh_config_t *cfg, sh_buf_t *err);

/* ---- the whole pipeline, for main() */

/* The first non-option argument and everything after it, uninterpreted
 * (argv[0] is the subcommand's name). name is NULL when there is none.
 * Borrowed from the argv given to sh_config_load(). */
typedef struct sh_config_cmd {
    const char *name;
    int argc;
    char **argv;
} sh_config_cmd_t;

/* Parses argv (-c/--config FILE, -h/--help, -V/--version, one --long-key
 * per setting, --no-KEY for booleans), then initialises cfg and applies
 * defaults, the file, envp and the options, then validates. The file is
 * -c's (must be readable), else SYSCONFDIR "/siohub.conf" when it exists,
 * else none (cfg->source_path NULL).
 * Returns 0 (run), 1 (--help or --version was printed to stdout: exit 0),
 * or a negative errno with one line of reason in err (print it, exit 1).
 * cmd may be NULL, then a subcommand is an error. cfg is overwritten (not
 * released) and initialised on every return: release it. */
int sh_config_load(sh_config_t *cfg, int argc, char **argv, char **envp, sh_config_cmd_t *cmd,
                   sh_buf_t *err);
/* The same with another default file (tests; NULL = none). */
int sh_config_load_default(sh_config_t *cfg, const char *default_file, int argc, char **argv,
                           char **envp, sh_config_cmd_t *cmd, sh_buf_t *err);

/* ---- output */

/* --help: every option grouped, with its default, its variable and help. */
void sh_config_usage(FILE *out, const char *progname);
/* --version: "siohubd (siohub) 0.1.0". */
void sh_config_version(FILE *out, const char *progname);
/* The effective settings as a config file ("key = value" lines, values
 * quoted when needed), which sh_config_parse_text() reads back to the same
 * config. Unless show_secrets, a secret that is set shows as "(hidden)"
 * (for logs; such a dump does not read back to the same config). */
void sh_config_dump(const sh_config_t *cfg, sh_buf_t *out, bool show_secrets);

/* ---- derived values */

/* The Engine.IO path: cfg->path, else "/socket.io/" (echo) or
 * "/ws/socket.io/" (openwebui). Borrowed. */
const char *sh_config_path(const sh_config_t *cfg);
/* The PATH of a "file:PATH" directory, or NULL for "claims". Borrowed. */
const char *sh_config_directory_file(const sh_config_t *cfg);
/* websocket_manager is "redis": pools, locks and emits go through Redis. */
bool sh_config_redis(const sh_config_t *cfg);
/* origin (an Origin header's value) is allowed by cors_allow_origin. */
bool sh_config_origin_allowed(const sh_config_t *cfg, const char *origin, size_t len);

#endif
