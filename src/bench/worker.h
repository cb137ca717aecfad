/* bench/worker.h — a worker process: one epoll loop holding its share of
 * the clients (clients [first, first + nclients) of --clients), connecting
 * them at most --connect-batch at a time, answering the parent's control
 * messages and calling the scenario's worker hooks.
 *
 * What the worker counts itself, in w->st: clients, connected, failed
 * (connects that failed), closed (lost after connecting), connect latency
 * (w->st.connect, us, during the connect phase), errors with the first
 * error's text, and its own CPU time per window. Everything else is the
 * scenario's to count.
 */
#ifndef SB_WORKER_H
#define SB_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "bench/cli.h"
#include "bench/client.h"
#include "bench/ctl.h"
#include "bench/loop.h"
#include "bench/scenario.h"
#include "bench/stats.h"

struct sb_worker {
    const sb_opts_t *o;
    const sb_scenario_t *sc;
    unsigned index, nworkers;
    sb_loop_t *loop;
    sb_client_t *clients;
    unsigned nclients;
    unsigned first;       /* global index of clients[0] */
    sb_stats_t st;        /* since the last window_begin (connect phase: since start) */
    uint64_t activity_ns; /* last message or ack: the drain's stall clock */
    uint64_t start_ns;    /* when the worker started (before any connect) */
    void *state;          /* the scenario's */

    /* the worker's own */
    sb_conn_t ctl;
    sb_client_cfg_t cfg;
    sb_target_t *targets;
    unsigned next_start, connecting;
    bool connect_phase, draining, quit;
    uint64_t drain_since;
    double cpu0;
    sb_timer_t tick;
};

/* Runs worker index of nworkers on control socket fd (the child side of
 * fork). Returns the process's exit status. */
int sb_worker_main(const sb_opts_t *o, unsigned index, unsigned nworkers, int fd);

/* The client's index in w->clients. */
static inline unsigned sb_worker_client_index(const sb_worker_t *w, const sb_client_t *c)
{
    return (unsigned)(c - w->clients);
}

/* Closes a client the scenario is done with (no closed callback), keeping
 * w->st.connected right. */
void sb_worker_close_client(sb_worker_t *w, sb_client_t *c, bool reset);

/* Sends a scenario message (type >= SB_CTL_SCENARIO) to the parent. */
void sb_worker_send(sb_worker_t *w, uint32_t type, const void *p, size_t n);

/* The target and source address of global client index i (ports and
 * sources round-robin). */
const sb_target_t *sb_worker_target(const sb_worker_t *w, unsigned i);
uint32_t sb_worker_source(const sb_worker_t *w, unsigned i);

#endif
