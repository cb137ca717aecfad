/* bench/coord.h — the parent process: forks the workers (--procs, each
 * with N/P of the clients and a socketpair to talk), moves them through
 * the phases, adds up what they report, and runs its own loop meanwhile
 * (for the publisher and the scenario's timers).
 *
 * Calls that wait run the parent's loop; all are bounded (--connect-timeout,
 * the drain bound) and return -ETIMEDOUT, -EPIPE when a worker died, or
 * -EINTR on SIGINT.
 */
#ifndef SB_COORD_H
#define SB_COORD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "bench/cli.h"
#include "bench/loop.h"
#include "bench/stats.h"

typedef struct sb_coord sb_coord_t;

typedef struct sb_peer {
    sb_coord_t *co;
    pid_t pid;
    sb_conn_t ctl;
    bool replied; /* answered the message waited for */
    bool dead;
} sb_peer_t;

struct sb_coord {
    const sb_opts_t *o;
    sb_loop_t *loop;
    unsigned nworkers;
    sb_peer_t *peers;
    sb_stats_t ready; /* the workers' READY reports, added up */
    void *state;      /* the scenario's */

    /* the coordinator's own */
    unsigned nready;     /* READY reports received */
    unsigned nbegun;     /* BEGUN confirmations of the last BEGIN */
    unsigned nstats;     /* STATS replies to the last END */
    sb_stats_t *replies; /* where STATS replies are added up */
    unsigned dead;       /* workers gone (their control socket closed) */
    bool started, finishing;
};

void sb_coord_init(sb_coord_t *co, const sb_opts_t *o, volatile sig_atomic_t *stop);
void sb_coord_release(sb_coord_t *co);

/* Forks the workers; each connects its clients (unless the scenario
 * connects them itself) and reports READY. */
void sb_coord_start(sb_coord_t *co);
/* Waits for every READY (co->ready). 0 or a negative errno. */
int sb_coord_wait_connected(sb_coord_t *co);
/* window_begin(arg) in every worker; returns when all confirmed it (so
 * nothing sent afterwards can reach a client before its window opened).
 * 0 or a negative errno. */
int sb_coord_begin(sb_coord_t *co, const void *arg, size_t n);
/* window_end(arg) in every worker, then waits for their stats, added up
 * into *out (zeroed first). 0 or a negative errno. */
int sb_coord_end(sb_coord_t *co, const void *arg, size_t n, sb_stats_t *out);
/* A scenario message to every worker. */
void sb_coord_broadcast(sb_coord_t *co, uint32_t type, const void *p, size_t n);
/* Runs the parent's loop until time t (sb_now_ns clock), or until done(arg)
 * when done is not NULL. 0 (time reached or done), -EINTR, -EPIPE. */
int sb_coord_run_until(sb_coord_t *co, uint64_t t, bool (*done)(void *arg), void *arg);
/* Tells the workers to quit and reaps them. */
void sb_coord_finish(sb_coord_t *co);

#endif
