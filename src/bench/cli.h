/* bench/cli.h — siohub-bench's command line: the options every module
 * reads, their defaults, parsing and --help.
 *
 * Parsed once in the parent before any worker is forked; read-only after
 * (workers get a copy by fork). Bad usage exits 2 with a message.
 */
#ifndef SB_CLI_H
#define SB_CLI_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/types.h>

#include "bench/client.h"

#define SB_MAX_PORTS   64
#define SB_MAX_PIDS    64
#define SB_MAX_SOURCES 250
#define SB_MAX_PUBS    64

struct sb_scenario;

typedef struct sb_opts {
    const struct sb_scenario *scenario;
    /* target */
    const char *host;
    struct in_addr host_addr;
    uint16_t ports[SB_MAX_PORTS];
    unsigned nports;
    uint16_t emit_port; /* the publisher's port: --emit-port, else ports[0] */
    const char *path;   /* Engine.IO path, ends in '/' */
    sb_protocol_t protocol;
    const char *sub_path, *pub_path; /* raw-ws */
    const char *secret;              /* mint HS256 tokens with it */
    const char *token;               /* or use this one */
    const char *user;                /* the subscribers' user id (fanout, idle, churn) */
    const char *room;                /* fanout: the room emitted to (default user:<user>) */
    const char *api_key;
    const char *emit_api; /* fanout: "emit" or "chat-events" */
    /* --redis: publish on Redis in python-socketio's pub/sub format
     * instead of POSTing (redis_port 0: POST) */
    struct in_addr redis_addr;
    uint16_t redis_port;
    const char *redis_channel;
    pid_t pids[SB_MAX_PIDS];
    unsigned npids;
    /* load */
    unsigned clients;
    unsigned procs;   /* worker processes */
    unsigned sources; /* source addresses 127.0.0.2 ... */
    sb_transport_t transport;
    double rate;       /* publishes per second */
    double duration_s; /* the measured phase */
    unsigned size;     /* bytes of each published message */
    bool pad_zh;       /* the padding Chinese, \u-escaped (--pad-language zh) */
    bool find_max;
    unsigned publishers;    /* keep-alive connections the publisher posts on */
    unsigned connect_batch; /* handshakes in flight per worker process */
    double connect_timeout_s;
    double drain_timeout_s; /* a window ends this long after the last delivery */
    double settle_s;        /* wait after connecting before measuring */
    double p99_limit_ms;    /* --find-max: the latency bound */
    double max_rate;        /* --find-max: no round above it (0: none) */
    /* chat (read by the chat scenario) */
    unsigned users, tabs_min, tabs_max, channel_size;
    double tokens_per_s, typing_rate;
    unsigned batch;        /* chat: tokens per API request at most (1: objects, not arrays) */
    unsigned burst;        /* chat: tokens of a user that come together */
    unsigned reply_tokens; /* chat: tokens per reply, content the reply so far (0: " tok") */
    bool reply_zh;         /* chat: the reply in Chinese, \u-escaped (--reply-language zh) */
    /* polling */
    unsigned concurrency; /* handshake slots */
    /* output */
    const char *json_path;
    bool verbose;
    /* derived at start-up */
    char *minted_token; /* owned: the token minted with --secret for --user */
    char *path_buf;     /* owned: path when a '/' had to be added */
    char *room_buf;     /* owned: the default room */
    /* owned: a scenario table made while completing the options (sse:
     * fanout's under its own name); scenario points to it */
    struct sb_scenario *scenario_buf;
} sb_opts_t;

/* Parses argv into o (defaults first). Exits 0 after --help, 2 on bad
 * usage. */
void sb_cli_parse(sb_opts_t *o, int argc, char **argv);
/* Frees what parsing allocated. */
void sb_cli_release(sb_opts_t *o);
/* Prints the usage text. */
void sb_cli_usage(FILE *f);
/* Reports bad usage and exits 2. */
void sb_cli_bad(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

const char *sb_protocol_name(sb_protocol_t p);
const char *sb_transport_name(sb_transport_t t);

#endif
