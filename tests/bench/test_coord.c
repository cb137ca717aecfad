/* siohub-bench's coordinator and worker processes (src/bench/coord.c,
 * src/bench/worker.c): the real coordinator forks real workers that run a
 * scenario table defined here, whose hooks report what ran in each worker
 * back over the control channel (sb_worker_send -> coord_message), the
 * only way a forked worker can tell the parent anything.
 *
 * Checked as coord.h, worker.h and scenario.h promise them:
 * - against the real siohubd (started here on a free loopback port), with
 *   1, 2 and 3 workers: each holds its share of the clients (first index
 *   and count), every client is connected by the worker that holds it,
 *   every worker reports READY and co->ready adds them up; begin returns
 *   only once every window_begin ran, a broadcast reaches every worker,
 *   and end adds up the workers' window stats;
 * - clients spread round-robin over --port and --sources, directly and in
 *   a run where every other port refuses;
 * - a connect that fails still ends in READY, with the failures counted;
 *   one that never completes ends the wait at --connect-timeout;
 * - a worker that dies makes the waits return -EPIPE, the stop flag makes
 *   them return -EINTR, a window that never drains ends stalled after
 *   --drain-timeout; and sb_coord_finish reaps every worker in all cases.
 *
 * Every figure a scenario reports goes through this machinery: a share
 * counted twice, a worker's stats dropped or a phase opened before every
 * worker is ready skews the whole report; a worker left behind keeps load
 * on the server after the run. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/cli.h"
#include "bench/coord.h"
#include "bench/ctl.h"
#include "bench/jwt.h"
#include "bench/loop.h"
#include "bench/scenario.h"
#include "bench/util.h"
#include "bench/worker.h"
#include "../lib/siohubd_proc.h"

#define MS          1000000ull
#define WAIT_NS     (5000 * MS) /* a bound for what must happen, never a speed claim */
#define MAX_PROCS   4
#define MAX_CLIENTS 16
#define MAX_ARGS    32

/* ---- the test's scenario: what runs in the workers, told to the parent ---- */

enum {
    MSG_SHARE = SB_CTL_SCENARIO, /* worker_init: share_msg_t */
    MSG_CLIENT,                  /* worker_init, one per client: client_msg_t */
    MSG_CLIENT_READY,            /* client_ready: client_msg_t */
    MSG_CLIENT_CLOSED,           /* client_closed: client_msg_t */
    MSG_WINDOW_OPEN,             /* window_begin: tag_msg_t with BEGIN's argument */
    MSG_PING,                    /* parent -> workers: uint32_t value */
    MSG_PONG,                    /* the answer: tag_msg_t with that value */
    MSG_DIE,                     /* parent -> workers: uint32_t index of the one to _exit */
};

typedef struct share_msg {
    uint32_t index, nworkers, first, nclients;
} share_msg_t;

typedef struct client_msg {
    uint32_t worker, id, port, src, was_ready;
} client_msg_t;

typedef struct tag_msg {
    uint32_t index, tag;
} tag_msg_t;

static uint32_t payload_u32(const void *p, size_t n)
{
    uint32_t v = UINT32_MAX;
    if (n == sizeof(v))
        memcpy(&v, p, n);
    return v;
}

static void send_client(sb_worker_t *w, uint32_t type, const sb_client_t *c, bool was_ready)
{
    client_msg_t m = {
        .worker = w->index,
        .id = c->id,
        .port = ntohs(c->target->addr.sin_port),
        .src = c->src,
        .was_ready = was_ready,
    };
    sb_worker_send(w, type, &m, sizeof(m));
}

static void w_init(sb_worker_t *w)
{
    share_msg_t m = {
        .index = w->index, .nworkers = w->nworkers, .first = w->first, .nclients = w->nclients};
    sb_worker_send(w, MSG_SHARE, &m, sizeof(m));
    for (unsigned i = 0; i < w->nclients; i++)
        send_client(w, MSG_CLIENT, &w->clients[i], false);
}

/* Worker 1 dies before it could report READY. */
static void w_init_die(sb_worker_t *w)
{
    w_init(w);
    if (w->index == 1)
        _exit(3);
}

static void w_client_ready(sb_worker_t *w, sb_client_t *c, uint64_t now)
{
    send_client(w, MSG_CLIENT_READY, c, true);
}

static void w_client_closed(sb_worker_t *w, sb_client_t *c, bool was_ready, const char *why)
{
    send_client(w, MSG_CLIENT_CLOSED, c, was_ready);
}

/* What each worker counts in the window, so that the parent can check
 * the sum: sent = its client count, extra[0] = END's tag x (index + 1),
 * round_trips = the pings it answered. */
static void w_window_begin(sb_worker_t *w, const void *arg, size_t n)
{
    w->st.sent += w->nclients;
    tag_msg_t m = {.index = w->index, .tag = payload_u32(arg, n)};
    sb_worker_send(w, MSG_WINDOW_OPEN, &m, sizeof(m));
}

static void w_window_end(sb_worker_t *w, const void *arg, size_t n)
{
    w->st.extra[0] += (uint64_t)payload_u32(arg, n) * (w->index + 1);
}

static bool w_never_done(sb_worker_t *w)
{
    return false;
}

static void w_window_stats(sb_worker_t *w)
{
    w->st.missing += w->nclients;
}

static void w_command(sb_worker_t *w, uint32_t type, const void *p, size_t n)
{
    if (type == MSG_PING) {
        w->st.round_trips++;
        tag_msg_t m = {.index = w->index, .tag = payload_u32(p, n)};
        sb_worker_send(w, MSG_PONG, &m, sizeof(m));
    } else if (type == MSG_DIE && payload_u32(p, n) == w->index) {
        _exit(0);
    }
}

/* ---- what the parent saw ---- */

typedef struct seen {
    unsigned nshares;
    share_msg_t shares[MAX_PROCS];
    unsigned reported[MAX_CLIENTS]; /* MSG_CLIENT per client id */
    client_msg_t clients[MAX_CLIENTS];
    unsigned ready[MAX_CLIENTS], closed[MAX_CLIENTS];
    bool closed_was_ready;
    unsigned nopen;
    uint32_t open_tag[MAX_PROCS];
    unsigned npongs;
    uint32_t pong[MAX_PROCS];
} seen_t;

static void take(void *dst, size_t size, const void *p, size_t n)
{
    ck_assert_uint_eq(n, size);
    memcpy(dst, p, size);
}

static unsigned client_id(const client_msg_t *m, unsigned index)
{
    ck_assert_uint_eq(m->worker, index);
    ck_assert_uint_lt(m->id, MAX_CLIENTS);
    return m->id;
}

static void c_message(sb_coord_t *co, unsigned index, uint32_t type, const void *p, size_t n)
{
    seen_t *s = co->state;
    ck_assert_uint_lt(index, MAX_PROCS);
    share_msg_t share;
    client_msg_t cm;
    tag_msg_t tm;
    switch (type) {
    case MSG_SHARE:
        take(&share, sizeof(share), p, n);
        ck_assert_uint_eq(share.index, index);
        s->shares[index] = share;
        s->nshares++;
        break;
    case MSG_CLIENT:
        take(&cm, sizeof(cm), p, n);
        s->reported[client_id(&cm, index)]++;
        s->clients[cm.id] = cm;
        break;
    case MSG_CLIENT_READY:
        take(&cm, sizeof(cm), p, n);
        s->ready[client_id(&cm, index)]++;
        break;
    case MSG_CLIENT_CLOSED:
        take(&cm, sizeof(cm), p, n);
        s->closed[client_id(&cm, index)]++;
        s->closed_was_ready |= cm.was_ready;
        break;
    case MSG_WINDOW_OPEN:
        take(&tm, sizeof(tm), p, n);
        ck_assert_uint_eq(tm.index, index);
        s->open_tag[index] = tm.tag;
        s->nopen++;
        break;
    case MSG_PONG:
        take(&tm, sizeof(tm), p, n);
        ck_assert_uint_eq(tm.index, index);
        s->pong[index] = tm.tag;
        s->npongs++;
        break;
    default:
        ck_abort_msg("worker %u: unexpected message %u", index, (unsigned)type);
    }
}

/* Clients connect and hold (idle-like). */
static const sb_scenario_t sc_hold = {
    .name = "test-hold",
    .worker_init = w_init,
    .client_ready = w_client_ready,
    .client_closed = w_client_closed,
    .window_begin = w_window_begin,
    .window_end = w_window_end,
    .worker_command = w_command,
    .coord_message = c_message,
};

/* No client connects: the control paths alone. */
static const sb_scenario_t sc_manual = {
    .name = "test-manual",
    .manual_connect = true,
    .worker_init = w_init,
    .window_begin = w_window_begin,
    .window_end = w_window_end,
    .worker_command = w_command,
    .coord_message = c_message,
};

static const sb_scenario_t sc_die_at_init = {
    .name = "test-die-at-init",
    .manual_connect = true,
    .worker_init = w_init_die,
    .coord_message = c_message,
};

/* A window that never drains by itself. */
static const sb_scenario_t sc_stall = {
    .name = "test-stall",
    .manual_connect = true,
    .worker_init = w_init,
    .window_done = w_never_done,
    .window_stats = w_window_stats,
    .coord_message = c_message,
};

/* ---- one run: options, coordinator, what it saw ---- */

static volatile sig_atomic_t interrupted;

typedef struct run {
    char args[512]; /* argv's strings: the options point into them */
    char *argv[MAX_ARGS];
    sb_opts_t o;
    sb_coord_t co;
    seen_t seen;
    pid_t pids[MAX_PROCS];
} run_t;

/* The run in progress, for the teardown to kill its workers when a test
 * failed midway (without fork mode; with it, the workers' parent-death
 * signal does). */
static run_t *current;

/* Parses "siohub-bench ARGS idle" and sets up a coordinator that runs sc. */
static run_t *run_new(const sb_scenario_t *sc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static run_t *run_new(const sb_scenario_t *sc, const char *fmt, ...)
{
    run_t *r = calloc(1, sizeof(*r));
    ck_assert_ptr_nonnull(r);
    int len = snprintf(r->args, sizeof(r->args), "siohub-bench ");
    va_list ap;
    va_start(ap, fmt);
    len += vsnprintf(r->args + len, sizeof(r->args) - (size_t)len, fmt, ap);
    va_end(ap);
    ck_assert_int_lt(len + (int)sizeof(" idle"), (int)sizeof(r->args));
    strcat(r->args, " idle");
    int argc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(r->args, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        ck_assert_int_lt(argc, MAX_ARGS - 1);
        r->argv[argc++] = tok;
    }
    optind = 0;
    sb_cli_parse(&r->o, argc, r->argv);
    ck_assert_uint_le(r->o.procs, MAX_PROCS);
    ck_assert_uint_le(r->o.clients, MAX_CLIENTS);
    r->o.scenario = sc;
    interrupted = 0;
    sb_coord_init(&r->co, &r->o, &interrupted);
    r->co.state = &r->seen;
    current = r;
    return r;
}

static void run_start(run_t *r)
{
    sb_coord_start(&r->co);
    for (unsigned i = 0; i < r->co.nworkers; i++) {
        r->pids[i] = r->co.peers[i].pid;
        ck_assert_int_gt(r->pids[i], 0);
    }
}

/* sb_coord_finish, then: no worker is left, not even as a zombie. */
static void run_finish(run_t *r)
{
    sb_coord_finish(&r->co);
    for (unsigned i = 0; i < r->co.nworkers; i++) {
        ck_assert_int_eq(r->co.peers[i].pid, 0);
        errno = 0;
        ck_assert_int_eq(waitpid(r->pids[i], NULL, WNOHANG), -1);
        ck_assert_int_eq(errno, ECHILD);
    }
}

static void run_free(run_t *r)
{
    sb_coord_release(&r->co);
    sb_cli_release(&r->o);
    free(r);
    current = NULL;
}

static void teardown(void)
{
    signal(SIGINT, SIG_DFL);
    run_t *r = current;
    if (!r)
        return;
    for (unsigned i = 0; i < r->co.nworkers; i++) {
        if (r->co.peers[i].pid > 0) {
            kill(r->co.peers[i].pid, SIGKILL);
            waitpid(r->co.peers[i].pid, NULL, 0);
        }
    }
    run_free(r);
}

static bool all_pongs(void *arg)
{
    run_t *r = arg;
    return r->seen.npongs == r->co.nworkers;
}

static uint32_t source_of(unsigned id, unsigned sources)
{
    return htonl(0x7f000002u + id % sources);
}

/* A port on 127.0.0.1 that refuses connections while *fd stays open
 * (bound, not listening); with backlog >= 0 it listens instead. */
static uint16_t hold_port(int *fd, int backlog)
{
    *fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(*fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    ck_assert_int_eq(bind(*fd, (struct sockaddr *)&a, sizeof(a)), 0);
    if (backlog >= 0)
        ck_assert_int_eq(listen(*fd, backlog), 0);
    ck_assert_int_eq(getsockname(*fd, (struct sockaddr *)&a, &len), 0);
    return ntohs(a.sin_port);
}

/* ---- the real server ---- */

#define SECRET  "bench-coord-test-secret"
#define API_KEY "bench-coord-test-key"

static th_siohubd_t siohubd;

static void daemon_start(void)
{
    th_siohubd_start(&siohubd, SECRET, API_KEY);
}

static void daemon_stop(void)
{
    th_siohubd_stop(&siohubd);
}

static void mint_token(run_t *r)
{
    r->o.minted_token = sb_jwt_user(SECRET, r->o.user, NULL, NULL, 0, 3600);
    ck_assert_ptr_nonnull(r->o.minted_token);
}

/* ---- tests ---- */

#define NCLIENTS 7 /* divides by neither 2 nor 3 */

/* Worker k of P holds clients [first, first + count): N/P each, the last
 * ones one more when P does not divide N. */
static const unsigned share_first[MAX_PROCS][MAX_PROCS] = {{0}, {0}, {0, 3}, {0, 2, 4}};
static const unsigned share_count[MAX_PROCS][MAX_PROCS] = {{0}, {7}, {3, 4}, {2, 2, 3}};

START_TEST(test_run_against_siohubd)
{
    unsigned procs = (unsigned)_i;
    run_t *r = run_new(
        &sc_hold, "--port %u -n %u --procs %u --sources 2 --user bench-coord --connect-timeout 5",
        (unsigned)siohubd.port, NCLIENTS, procs);
    mint_token(r);
    sb_coord_t *co = &r->co;
    seen_t *s = &r->seen;
    ck_assert_uint_eq(co->nworkers, procs);
    run_start(r);

    ck_assert_int_eq(sb_coord_wait_connected(co), 0);
    ck_assert_uint_eq(co->nready, procs);
    ck_assert_uint_eq(co->dead, 0);
    ck_assert_msg(co->ready.errors == 0, "first error: %s", co->ready.first_error);
    ck_assert_uint_eq(co->ready.clients, NCLIENTS);
    ck_assert_uint_eq(co->ready.connected, NCLIENTS);
    ck_assert_uint_eq(co->ready.failed, 0);
    ck_assert_uint_eq(co->ready.closed, 0);
    ck_assert_uint_eq(co->ready.connect.n, NCLIENTS);

    ck_assert_uint_eq(s->nshares, procs);
    for (unsigned k = 0; k < procs; k++) {
        ck_assert_uint_eq(s->shares[k].nworkers, procs);
        ck_assert_uint_eq(s->shares[k].first, share_first[procs][k]);
        ck_assert_uint_eq(s->shares[k].nclients, share_count[procs][k]);
    }
    /* Each client made once, by the worker whose share holds it, and
     * connected there. */
    for (unsigned id = 0; id < NCLIENTS; id++) {
        ck_assert_uint_eq(s->reported[id], 1);
        const share_msg_t *owner = &s->shares[s->clients[id].worker];
        ck_assert_uint_ge(id, owner->first);
        ck_assert_uint_lt(id, owner->first + owner->nclients);
        ck_assert_uint_eq(s->clients[id].port, siohubd.port);
        ck_assert_uint_eq(s->clients[id].src, source_of(id, 2));
        ck_assert_uint_eq(s->ready[id], 1);
        ck_assert_uint_eq(s->closed[id], 0);
    }

    /* Every window_begin ran, and its message arrived, before BEGUN. */
    uint32_t tag = 0xbe9;
    ck_assert_int_eq(sb_coord_begin(co, &tag, sizeof(tag)), 0);
    ck_assert_uint_eq(co->nbegun, procs);
    ck_assert_uint_eq(s->nopen, procs);
    for (unsigned k = 0; k < procs; k++)
        ck_assert_uint_eq(s->open_tag[k], tag);

    uint32_t ping = 77;
    sb_coord_broadcast(co, MSG_PING, &ping, sizeof(ping));
    ck_assert_int_eq(sb_coord_run_until(co, sb_now_ns() + WAIT_NS, all_pongs, r), 0);
    ck_assert_uint_eq(s->npongs, procs);
    for (unsigned k = 0; k < procs; k++)
        ck_assert_uint_eq(s->pong[k], ping);

    uint32_t end_tag = 5;
    sb_stats_t st;
    memset(&st, 0xff, sizeof(st)); /* end zeroes it first */
    ck_assert_int_eq(sb_coord_end(co, &end_tag, sizeof(end_tag), &st), 0);
    ck_assert_uint_eq(co->nstats, procs);
    ck_assert_uint_eq(st.clients, NCLIENTS);
    ck_assert_uint_eq(st.connected, NCLIENTS);
    ck_assert_uint_eq(st.sent, NCLIENTS);
    ck_assert_uint_eq(st.extra[0], end_tag * procs * (procs + 1) / 2);
    ck_assert_uint_eq(st.round_trips, procs);
    ck_assert_uint_eq(st.stalled, 0);
    ck_assert_uint_eq(st.failed, 0);
    ck_assert_uint_eq(st.errors, 0);
    ck_assert_uint_eq(st.delivered, 0);

    run_finish(r);
    ck_assert_uint_eq(co->dead, procs);
    run_free(r);
}
END_TEST

/* Every other port refuses: the round-robin decides which clients
 * connect. */
START_TEST(test_ports_round_robin_against_siohubd)
{
    int refusing;
    uint16_t closed_port = hold_port(&refusing, -1);
    run_t *r = run_new(
        &sc_hold, "--port %u,%u -n 6 --procs 2 --sources 3 --user bench-coord --connect-timeout 5",
        (unsigned)siohubd.port, (unsigned)closed_port);
    mint_token(r);
    sb_coord_t *co = &r->co;
    seen_t *s = &r->seen;
    run_start(r);
    ck_assert_int_eq(sb_coord_wait_connected(co), 0);
    ck_assert_uint_eq(co->nready, 2);
    ck_assert_uint_eq(co->ready.clients, 6);
    ck_assert_uint_eq(co->ready.connected, 3);
    ck_assert_uint_eq(co->ready.failed, 3);
    ck_assert_uint_eq(co->ready.errors, 3);
    for (unsigned id = 0; id < 6; id++) {
        bool to_daemon = id % 2 == 0;
        ck_assert_uint_eq(s->reported[id], 1);
        ck_assert_uint_eq(s->clients[id].port, to_daemon ? siohubd.port : closed_port);
        ck_assert_uint_eq(s->clients[id].src, source_of(id, 3));
        ck_assert_uint_eq(s->ready[id], to_daemon);
        ck_assert_uint_eq(s->closed[id], !to_daemon);
    }
    ck_assert(!s->closed_was_ready);
    run_finish(r);
    run_free(r);
    close(refusing);
}
END_TEST

START_TEST(test_target_and_source)
{
    sb_opts_t o;
    memset(&o, 0, sizeof(o));
    o.nports = 3;
    o.sources = 4;
    sb_target_t targets[3];
    sb_worker_t w;
    memset(&w, 0, sizeof(w));
    w.o = &o;
    w.targets = targets;
    for (unsigned i = 0; i < 40; i++) {
        ck_assert_ptr_eq(sb_worker_target(&w, i), &targets[i % 3]);
        ck_assert_uint_eq(sb_worker_source(&w, i), htonl(0x7f000002u + i % 4));
    }
    o.nports = 1;
    o.sources = 0; /* --sources 0: the kernel picks */
    for (unsigned i = 0; i < 10; i++) {
        ck_assert_ptr_eq(sb_worker_target(&w, i), &targets[0]);
        ck_assert_uint_eq(sb_worker_source(&w, i), 0);
    }
}
END_TEST

/* Nothing listens on either port: every connect fails, READY comes all
 * the same with the failures counted, from the right addresses. */
START_TEST(test_connect_refused)
{
    int fd_a, fd_b;
    uint16_t port_a = hold_port(&fd_a, -1), port_b = hold_port(&fd_b, -1);
    run_t *r = run_new(&sc_hold, "--port %u,%u -n 5 --procs 2 --sources 3 --connect-timeout 3",
                       (unsigned)port_a, (unsigned)port_b);
    sb_coord_t *co = &r->co;
    seen_t *s = &r->seen;
    run_start(r);
    ck_assert_int_eq(sb_coord_wait_connected(co), 0);
    ck_assert_uint_eq(co->nready, 2);
    ck_assert_uint_eq(co->ready.clients, 5);
    ck_assert_uint_eq(co->ready.connected, 0);
    ck_assert_uint_eq(co->ready.failed, 5);
    ck_assert_uint_eq(co->ready.closed, 0);
    ck_assert_uint_eq(co->ready.errors, 5);
    ck_assert_msg(strstr(co->ready.first_error, "Connection refused"), "first error: %s",
                  co->ready.first_error);
    for (unsigned id = 0; id < 5; id++) {
        ck_assert_uint_eq(s->reported[id], 1);
        ck_assert_uint_eq(s->clients[id].port, id % 2 ? port_b : port_a);
        ck_assert_uint_eq(s->clients[id].src, source_of(id, 3));
        ck_assert_uint_eq(s->ready[id], 0);
        ck_assert_uint_eq(s->closed[id], 1);
    }
    ck_assert(!s->closed_was_ready);
    run_finish(r);
    run_free(r);
    close(fd_a);
    close(fd_b);
}
END_TEST

/* A listener that never accepts: connects stall (the accept queue is
 * full) or get no answer, no client ever becomes ready, and the wait
 * ends at --connect-timeout. */
START_TEST(test_connect_never_completes)
{
    int fd;
    uint16_t port = hold_port(&fd, 0);
    run_t *r = run_new(&sc_hold, "--port %u -n 3 --procs 1 --connect-timeout 0.3", (unsigned)port);
    sb_coord_t *co = &r->co;
    run_start(r);
    uint64_t t0 = sb_now_ns();
    ck_assert_int_eq(sb_coord_wait_connected(co), -ETIMEDOUT);
    ck_assert_uint_ge(sb_now_ns() - t0, 300 * MS);
    ck_assert_uint_eq(co->nready, 0);
    ck_assert_uint_eq(co->dead, 0);
    ck_assert_uint_eq(co->ready.clients, 0);
    for (unsigned id = 0; id < 3; id++)
        ck_assert_uint_eq(r->seen.ready[id] + r->seen.closed[id], 0);
    run_finish(r);
    run_free(r);
    close(fd);
}
END_TEST

START_TEST(test_worker_dies_at_start)
{
    int fd;
    uint16_t port = hold_port(&fd, -1);
    run_t *r =
        run_new(&sc_die_at_init, "--port %u -n 3 --procs 3 --connect-timeout 5", (unsigned)port);
    sb_coord_t *co = &r->co;
    run_start(r);
    ck_assert_int_eq(sb_coord_wait_connected(co), -EPIPE);
    ck_assert(co->peers[1].dead);
    run_finish(r);
    run_free(r);
    close(fd);
}
END_TEST

START_TEST(test_worker_dies_in_window)
{
    int fd;
    uint16_t port = hold_port(&fd, -1);
    run_t *r = run_new(&sc_manual, "--port %u -n 3 --procs 3 --connect-timeout 5", (unsigned)port);
    sb_coord_t *co = &r->co;
    run_start(r);
    ck_assert_int_eq(sb_coord_wait_connected(co), 0);
    ck_assert_uint_eq(co->nready, 3);
    ck_assert_uint_eq(co->ready.clients, 3);
    ck_assert_int_eq(sb_coord_begin(co, NULL, 0), 0);

    uint32_t victim = 2;
    sb_coord_broadcast(co, MSG_DIE, &victim, sizeof(victim));
    ck_assert_int_eq(sb_coord_run_until(co, sb_now_ns() + WAIT_NS, NULL, NULL), -EPIPE);
    ck_assert_uint_eq(co->dead, 1);
    ck_assert(co->peers[2].dead);
    ck_assert(!co->peers[0].dead && !co->peers[1].dead);
    sb_stats_t st;
    ck_assert_int_eq(sb_coord_end(co, NULL, 0, &st), -EPIPE);
    ck_assert_int_eq(sb_coord_begin(co, NULL, 0), -EPIPE);
    /* The survivors are still running; finish ends and reaps them all. */
    ck_assert_int_eq(kill(r->pids[0], 0), 0);
    ck_assert_int_eq(kill(r->pids[1], 0), 0);
    run_finish(r);
    run_free(r);
    close(fd);
}
END_TEST

static void on_signal(int signo)
{
    (void)signo;
    interrupted = 1;
}

static void raise_sigint(sb_timer_t *t, uint64_t now)
{
    raise(SIGINT);
}

/* As siohub-bench's main: SIGINT sets the stop flag, the waits return
 * -EINTR, finish still ends the workers. */
START_TEST(test_stop_flag)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    ck_assert_int_eq(sigaction(SIGINT, &sa, NULL), 0);
    int fd;
    uint16_t port = hold_port(&fd, -1);
    run_t *r = run_new(&sc_manual, "--port %u -n 2 --procs 2 --connect-timeout 5", (unsigned)port);
    sb_coord_t *co = &r->co;
    run_start(r);
    ck_assert_int_eq(sb_coord_wait_connected(co), 0);

    sb_timer_t timer = {.cb = raise_sigint};
    sb_timer_start(co->loop, &timer, sb_now_ns() + 50 * MS);
    ck_assert_int_eq(sb_coord_run_until(co, sb_now_ns() + WAIT_NS, NULL, NULL), -EINTR);
    ck_assert_int_eq(interrupted, 1);
    ck_assert_int_eq(sb_coord_begin(co, NULL, 0), -EINTR);
    sb_stats_t st;
    ck_assert_int_eq(sb_coord_end(co, NULL, 0, &st), -EINTR);
    ck_assert_uint_eq(co->dead, 0);
    run_finish(r);
    ck_assert_uint_eq(co->dead, 2);
    run_free(r);
    close(fd);
    signal(SIGINT, SIG_DFL);
}
END_TEST

/* window_done never holds: each worker gives up after --drain-timeout,
 * marks itself stalled, and still counts its end-of-window figures. */
START_TEST(test_window_stalls)
{
    int fd;
    uint16_t port = hold_port(&fd, -1);
    run_t *r =
        run_new(&sc_stall, "--port %u -n 5 --procs 2 --connect-timeout 5 --drain-timeout 0.2",
                (unsigned)port);
    sb_coord_t *co = &r->co;
    run_start(r);
    ck_assert_int_eq(sb_coord_wait_connected(co), 0);
    ck_assert_int_eq(sb_coord_begin(co, NULL, 0), 0);
    sb_stats_t st;
    ck_assert_int_eq(sb_coord_end(co, NULL, 0, &st), 0);
    ck_assert_uint_eq(co->nstats, 2);
    ck_assert_uint_eq(st.stalled, 2);
    ck_assert_uint_eq(st.missing, 5);
    ck_assert_uint_eq(st.clients, 5);
    run_finish(r);
    run_free(r);
    close(fd);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bench_coord");

    TCase *real = tcase_create("siohubd");
    tcase_add_unchecked_fixture(real, daemon_start, daemon_stop);
    tcase_add_checked_fixture(real, NULL, teardown);
    tcase_set_timeout(real, 60);
    tcase_add_loop_test(real, test_run_against_siohubd, 1, 4);
    tcase_add_test(real, test_ports_round_robin_against_siohubd);
    suite_add_tcase(s, real);

    TCase *alone = tcase_create("alone");
    tcase_add_checked_fixture(alone, NULL, teardown);
    tcase_set_timeout(alone, 60);
    tcase_add_test(alone, test_target_and_source);
    tcase_add_test(alone, test_connect_refused);
    tcase_add_test(alone, test_connect_never_completes);
    tcase_add_test(alone, test_worker_dies_at_start);
    tcase_add_test(alone, test_worker_dies_in_window);
    tcase_add_test(alone, test_stop_flag);
    tcase_add_test(alone, test_window_stalls);
    suite_add_tcase(s, alone);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
