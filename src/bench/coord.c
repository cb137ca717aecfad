/* bench/coord.c — the parent process (see coord.h). */
#include "bench/coord.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/ctl.h"
#include "bench/scenario.h"
#include "bench/util.h"
#include "bench/worker.h"

#define FINISH_TIMEOUT_NS (5ull * 1000000000u)

typedef struct ctl_ctx {
    sb_coord_t *co;
    unsigned index;
} ctl_ctx_t;

static void on_ctl(void *arg, uint32_t type, const char *p, size_t n)
{
    ctl_ctx_t *x = arg;
    sb_coord_t *co = x->co;
    sb_stats_t *st;
    switch (type) {
    case SB_CTL_READY:
    case SB_CTL_STATS:
        if (n != sizeof(sb_stats_t))
            sb_die("worker %u: a report of %zu bytes", x->index, n);
        /* The payload may be unaligned in the read buffer. */
        st = sb_xcalloc(1, sizeof(*st));
        memcpy(st, p, n);
        if (type == SB_CTL_READY) {
            sb_stats_merge(&co->ready, st);
            co->nready++;
        } else if (co->replies) {
            sb_stats_merge(co->replies, st);
            co->nstats++;
        }
        free(st);
        break;
    case SB_CTL_BEGUN:
        co->nbegun++;
        break;
    default:
        if (type >= SB_CTL_SCENARIO && co->o->scenario->coord_message)
            co->o->scenario->coord_message(co, x->index, type, p, n);
        break;
    }
}

static size_t ctl_data(sb_conn_t *c, const char *p, size_t n, uint64_t now)
{
    sb_peer_t *peer = c->owner;
    ctl_ctx_t x = {.co = peer->co, .index = (unsigned)(peer - peer->co->peers)};
    size_t used = sb_ctl_parse(p, n, on_ctl, &x);
    if (used == (size_t)-1)
        sb_die("worker %u: malformed control message", x.index);
    return used;
}

static void ctl_closed(sb_conn_t *c, int err)
{
    sb_peer_t *peer = c->owner;
    sb_coord_t *co = peer->co;
    peer->dead = true;
    co->dead++;
    if (!co->finishing)
        fprintf(stderr, SB_PROG ": worker %u (pid %d) is gone\n", (unsigned)(peer - co->peers),
                (int)peer->pid);
}

static const sb_conn_ops_t ctl_ops = {.data = ctl_data, .closed = ctl_closed};

void sb_coord_init(sb_coord_t *co, const sb_opts_t *o, volatile sig_atomic_t *stop)
{
    memset(co, 0, sizeof(*co));
    co->o = o;
    co->nworkers = o->procs;
    co->peers = sb_xcalloc(co->nworkers, sizeof(*co->peers));
    co->loop = sb_loop_new(sb_now_ns() ^ ((uint64_t)getpid() << 32));
    sb_loop_set_stop_flag(co->loop, stop);
}

void sb_coord_release(sb_coord_t *co)
{
    for (unsigned i = 0; i < co->nworkers; i++)
        sb_conn_release(&co->peers[i].ctl);
    free(co->peers);
    sb_loop_free(co->loop);
    memset(co, 0, sizeof(*co));
}

void sb_coord_start(sb_coord_t *co)
{
    co->started = true;
    fflush(NULL);
    for (unsigned i = 0; i < co->nworkers; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
            sb_die("socketpair: %s", strerror(errno));
        pid_t pid = fork();
        if (pid < 0)
            sb_die("fork: %s", strerror(errno));
        if (pid == 0) {
            /* Keep only stdio and this worker's control socket: the
             * parent's epoll, timer and other workers' sockets are not
             * ours. */
            if (dup2(sv[1], 3) < 0)
                _exit(1);
            close_range(4, ~0u, 0);
            /* exit, not _exit: stdio was flushed before the fork, and the
             * worker's own exit handlers (leak checks) should run. */
            exit(sb_worker_main(co->o, i, co->nworkers, 3));
        }
        close(sv[1]);
        sb_peer_t *peer = &co->peers[i];
        peer->co = co;
        peer->pid = pid;
        sb_conn_init(&peer->ctl, co->loop, &ctl_ops, peer);
        sb_conn_adopt(&peer->ctl, sv[0]);
    }
}

static bool all_ready(void *arg)
{
    sb_coord_t *co = arg;
    return co->dead || co->nready == co->nworkers;
}

int sb_coord_wait_connected(sb_coord_t *co)
{
    uint64_t deadline = sb_now_ns() + (uint64_t)(co->o->connect_timeout_s * 1e9);
    int rc = sb_loop_run(co->loop, all_ready, co, deadline);
    if (rc == 0 && co->dead)
        rc = -EPIPE;
    return rc;
}

static void broadcast(sb_coord_t *co, uint32_t type, const void *p, size_t n)
{
    for (unsigned i = 0; i < co->nworkers; i++)
        if (!co->peers[i].dead)
            sb_ctl_send(&co->peers[i].ctl, type, p, n);
}

static bool all_begun(void *arg)
{
    sb_coord_t *co = arg;
    return co->dead || co->nbegun == co->nworkers;
}

int sb_coord_begin(sb_coord_t *co, const void *arg, size_t n)
{
    co->nbegun = 0;
    broadcast(co, SB_CTL_BEGIN, arg, n);
    int rc = sb_loop_run(co->loop, all_begun, co, sb_now_ns() + 30000000000ull);
    if (rc == 0 && co->dead)
        rc = -EPIPE;
    return rc;
}

static bool all_stats(void *arg)
{
    sb_coord_t *co = arg;
    return co->dead || co->nstats == co->nworkers;
}

int sb_coord_end(sb_coord_t *co, const void *arg, size_t n, sb_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    co->replies = out;
    co->nstats = 0;
    broadcast(co, SB_CTL_END, arg, n);
    /* Workers answer by themselves after --drain-timeout without a
     * message; this bound only catches a worker that hangs. */
    uint64_t deadline = sb_now_ns() + (uint64_t)((2 * co->o->drain_timeout_s + 30) * 1e9);
    int rc = sb_loop_run(co->loop, all_stats, co, deadline);
    co->replies = NULL;
    if (rc == 0 && co->dead)
        rc = -EPIPE;
    return rc;
}

void sb_coord_broadcast(sb_coord_t *co, uint32_t type, const void *p, size_t n)
{
    broadcast(co, type, p, n);
}

typedef struct until_ctx {
    sb_coord_t *co;
    bool (*done)(void *);
    void *arg;
} until_ctx_t;

static bool until_done(void *arg)
{
    until_ctx_t *u = arg;
    return u->co->dead || (u->done && u->done(u->arg));
}

int sb_coord_run_until(sb_coord_t *co, uint64_t t, bool (*done)(void *arg), void *arg)
{
    until_ctx_t u = {.co = co, .done = done, .arg = arg};
    int rc = sb_loop_run(co->loop, until_done, &u, t);
    if (co->dead)
        return -EPIPE;
    return rc == -ETIMEDOUT ? 0 : rc;
}

static bool all_gone(void *arg)
{
    sb_coord_t *co = arg;
    return co->dead == co->nworkers;
}

void sb_coord_finish(sb_coord_t *co)
{
    if (!co->started)
        return;
    co->finishing = true;
    broadcast(co, SB_CTL_QUIT, NULL, 0);
    /* Not interrupted by the stop flag: this is the way out after Ctrl-C. */
    sb_loop_set_stop_flag(co->loop, NULL);
    sb_loop_run(co->loop, all_gone, co, sb_now_ns() + FINISH_TIMEOUT_NS);
    for (unsigned i = 0; i < co->nworkers; i++) {
        sb_peer_t *peer = &co->peers[i];
        if (peer->pid <= 0)
            continue;
        if (!peer->dead)
            kill(peer->pid, SIGKILL);
        waitpid(peer->pid, NULL, 0);
        peer->pid = 0;
    }
}
