/* bench/scenario.h — what a scenario is: a const table of hooks, half of
 * them run in each worker process (which holds a share of the clients),
 * half in the parent (which drives the phases, publishes, samples the
 * server and writes the report).
 *
 * Adding a scenario: a new file sc_NAME.c defining
 *     const sb_scenario_t sb_scenario_NAME = {.name = "NAME", ...};
 * plus one line in scenarios.c and the file in Makefile.am. Every hook but
 * run is optional.
 *
 * The life of a run (worker.h and coord.h hold the calls):
 *   parent: prepare(o) -> run(co, report), which typically does
 *       sb_coord_start        fork the workers; each makes its clients,
 *                             calls worker_init, connects them (unless
 *                             manual_connect) and reports READY
 *       sb_coord_wait_connected
 *       sb_coord_begin(arg)   -> window_begin(w, arg) in every worker,
 *                             which all confirm before it returns
 *       ... the measured phase: publish, sleep (sb_coord_run_until) ...
 *       sb_coord_end(arg)     -> window_end(w, arg); each worker answers
 *                             its stats when window_done(w) holds, or
 *                             after --drain-timeout without a message
 *       sb_coord_finish
 *   workers: client_ready / client_message / client_ack / client_closed as
 *   the clients go (the worker has already counted connects, failures and
 *   losses in w->st).
 */
#ifndef SB_SCENARIO_H
#define SB_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench/cli.h"
#include "bench/client.h"
#include "bench/report.h"

typedef struct sb_worker sb_worker_t;
typedef struct sb_coord sb_coord_t;
struct sb_sample;

typedef struct sb_scenario {
    const char *name;
    const char *summary; /* one line for --help */
    bool raw_ws;         /* also runs with --protocol raw-ws */
    bool raw_sse;        /* also runs with --protocol raw-sse (SSE transport) */
    bool manual_connect; /* workers do not connect their clients at start */
    bool clients_emit;   /* clients send: polling and SSE ones hold two sockets */
    bool redis;          /* publishes on Redis with --redis */
    unsigned default_clients;

    /* Parent, once, before anything starts: check and complete o. 0, or
     * -EINVAL after printing why (the run exits 2). */
    int (*prepare)(sb_opts_t *o);
    /* Parent, while the options are completed, before --procs, --sources
     * and the descriptor check are derived from them: set what the
     * scenario decides itself (chat: the client count is users x tabs;
     * polling: the transport). o->clients is --clients or default_clients
     * (clients_set tells which). May refuse with sb_cli_bad. */
    void (*complete)(sb_opts_t *o, bool clients_set);

    /* Worker process. */
    void (*worker_init)(sb_worker_t *w); /* clients made, not connected */
    void (*worker_release)(sb_worker_t *w);
    void (*client_ready)(sb_worker_t *w, sb_client_t *c, uint64_t now);
    void (*client_message)(sb_worker_t *w, sb_client_t *c, const char *name, size_t nlen,
                           const char *args, size_t alen, uint64_t now);
    void (*client_ack)(sb_worker_t *w, sb_client_t *c, uint64_t ack_id, const char *args,
                       size_t alen, uint64_t now);
    void (*client_closed)(sb_worker_t *w, sb_client_t *c, bool was_ready, const char *why);
    /* sb_client_leave finished (polling). */
    void (*client_left)(sb_worker_t *w, sb_client_t *c, uint64_t now);
    void (*window_begin)(sb_worker_t *w, const void *arg, size_t n);
    void (*window_end)(sb_worker_t *w, const void *arg, size_t n);
    bool (*window_done)(sb_worker_t *w);
    /* Just before the window's stats go to the parent (done or stalled):
     * count what is counted at the end (missing messages). */
    void (*window_stats)(sb_worker_t *w);
    /* A SB_CTL_SCENARIO+ message from the parent (sb_coord_broadcast). */
    void (*worker_command)(sb_worker_t *w, uint32_t type, const void *p, size_t n);

    /* Parent: a SB_CTL_SCENARIO+ message from worker index (sb_worker_send). */
    void (*coord_message)(sb_coord_t *co, unsigned index, uint32_t type, const void *p, size_t n);
    /* Parent: the run. Writes its figures to r; returns 0 when every check
     * held, 1 otherwise. */
    int (*run)(sb_coord_t *co, sb_report_t *r);
} sb_scenario_t;

/* The table (scenarios.c), NULL-terminated. */
extern const sb_scenario_t *const sb_scenarios[];
const sb_scenario_t *sb_scenario_find(const char *name);

/* Report rows every scenario starts with: scenario, protocol, transport,
 * clients, connected (co->ready, or now_connected when >= 0), procs,
 * sources. */
void sb_scenario_report_head(const sb_coord_t *co, sb_report_t *r, long long now_connected);
/* After sb_coord_wait_connected returned rc: true when every client is
 * connected; else reports the head, the failures and the first error
 * ("not every <what> connected") and returns false. */
bool sb_scenario_all_connected(const sb_coord_t *co, sb_report_t *r, int rc, const char *what);
/* The server's CPU time between two samples, when --pid was given and
 * both read it: server_cpu_s, server_sys_s (prefixed "<phase>_" when
 * phase is not NULL: a run of several phases), and per_key (label
 * per_label): CPU us per one of count things. */
void sb_scenario_report_cpu(const sb_coord_t *co, sb_report_t *r, const char *phase,
                            const struct sb_sample *s0, const struct sb_sample *s1, uint64_t count,
                            const char *per_key, const char *per_label, int decimals);

#endif
