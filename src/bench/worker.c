/* bench/worker.c — a worker process (see worker.h). */
#include "bench/worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench/sysstat.h"
#include "bench/util.h"

const sb_target_t *sb_worker_target(const sb_worker_t *w, unsigned i)
{
    return &w->targets[i % w->o->nports];
}

uint32_t sb_worker_source(const sb_worker_t *w, unsigned i)
{
    if (!w->o->sources)
        return 0;
    return htonl(0x7f000002u + i % w->o->sources);
}

void sb_worker_close_client(sb_worker_t *w, sb_client_t *c, bool reset)
{
    if (sb_client_is_ready(c))
        w->st.connected--;
    sb_client_close(c, reset);
}

void sb_worker_send(sb_worker_t *w, uint32_t type, const void *p, size_t n)
{
    sb_ctl_send(&w->ctl, type, p, n);
}

static void send_stats(sb_worker_t *w, uint32_t type)
{
    w->st.cpu_s = sb_self_cpu_s() - w->cpu0;
    sb_ctl_send(&w->ctl, type, &w->st, sizeof(w->st));
}

/* Zeroes the window's counters; the client counts carry over. */
static void stats_restart(sb_worker_t *w)
{
    uint64_t clients = w->st.clients, connected = w->st.connected;
    memset(&w->st, 0, sizeof(w->st));
    w->st.clients = clients;
    w->st.connected = connected;
    w->cpu0 = sb_self_cpu_s();
}

/* ---- client callbacks ---- */

static void on_ready(sb_client_t *c, uint64_t now)
{
    sb_worker_t *w = c->owner;
    w->st.connected++;
    if (w->connect_phase) {
        w->connecting--;
        sb_hist_add(&w->st.connect, (now - c->t_open) / 1000);
    }
    if (w->sc->client_ready)
        w->sc->client_ready(w, c, now);
}

static void on_message(sb_client_t *c, const char *name, size_t nlen, const char *args, size_t alen,
                       uint64_t now)
{
    sb_worker_t *w = c->owner;
    w->activity_ns = now;
    if (w->sc->client_message)
        w->sc->client_message(w, c, name, nlen, args, alen, now);
}

static void on_ack(sb_client_t *c, uint64_t ack_id, const char *args, size_t alen, uint64_t now)
{
    sb_worker_t *w = c->owner;
    w->activity_ns = now;
    if (w->sc->client_ack)
        w->sc->client_ack(w, c, ack_id, args, alen, now);
}

static void on_closed(sb_client_t *c, bool was_ready, const char *why)
{
    sb_worker_t *w = c->owner;
    if (was_ready) {
        w->st.connected--;
        w->st.closed++;
    } else {
        w->st.failed++;
        if (w->connect_phase)
            w->connecting--;
    }
    sb_stats_error(&w->st, "client %u: %s", c->id, why);
    if (w->o->verbose)
        fprintf(stderr, SB_PROG ": client %u: %s\n", c->id, why);
    if (w->sc->client_closed)
        w->sc->client_closed(w, c, was_ready, why);
}

static void on_left(sb_client_t *c, uint64_t now)
{
    sb_worker_t *w = c->owner;
    w->st.connected--;
    if (w->sc->client_left)
        w->sc->client_left(w, c, now);
}

static const sb_client_cbs_t worker_cbs = {
    .ready = on_ready,
    .message = on_message,
    .ack = on_ack,
    .closed = on_closed,
    .left = on_left,
};

/* ---- control messages ---- */

static void on_ctl(void *arg, uint32_t type, const char *p, size_t n)
{
    sb_worker_t *w = arg;
    switch (type) {
    case SB_CTL_BEGIN:
        stats_restart(w);
        w->draining = false;
        if (w->sc->window_begin)
            w->sc->window_begin(w, p, n);
        sb_ctl_send(&w->ctl, SB_CTL_BEGUN, NULL, 0);
        break;
    case SB_CTL_END:
        if (w->sc->window_end)
            w->sc->window_end(w, p, n);
        w->draining = true;
        w->drain_since = sb_now_ns();
        break;
    case SB_CTL_QUIT:
        w->quit = true;
        break;
    default:
        if (type >= SB_CTL_SCENARIO && w->sc->worker_command)
            w->sc->worker_command(w, type, p, n);
        break;
    }
}

static size_t ctl_data(sb_conn_t *c, const char *p, size_t n, uint64_t now)
{
    sb_worker_t *w = c->owner;
    size_t used = sb_ctl_parse(p, n, on_ctl, w);
    if (used == (size_t)-1)
        sb_die("worker %u: malformed control message", w->index);
    return used;
}

static void ctl_closed(sb_conn_t *c, int err)
{
    sb_worker_t *w = c->owner;
    w->quit = true; /* the parent is gone */
}

static const sb_conn_ops_t ctl_ops = {.data = ctl_data, .closed = ctl_closed};

/* ---- the loop ---- */

/* Once per loop iteration: pace the connects, end the connect phase,
 * end a window when everything arrived or nothing came for a while. */
static void worker_hook(void *arg)
{
    sb_worker_t *w = arg;
    if (w->connect_phase) {
        while (w->next_start < w->nclients && w->connecting < w->o->connect_batch) {
            w->connecting++;
            sb_client_open(&w->clients[w->next_start++]);
        }
        if (w->next_start == w->nclients && !w->connecting) {
            w->connect_phase = false;
            send_stats(w, SB_CTL_READY);
            stats_restart(w);
        }
    }
    if (w->draining) {
        uint64_t now = sb_now_ns();
        uint64_t since = w->activity_ns > w->drain_since ? w->activity_ns : w->drain_since;
        bool done = w->sc->window_done ? w->sc->window_done(w) : true;
        if (done || now - since > (uint64_t)(w->o->drain_timeout_s * 1e9)) {
            w->st.stalled = done ? 0 : 1;
            w->draining = false;
            if (w->sc->window_stats)
                w->sc->window_stats(w);
            send_stats(w, SB_CTL_STATS);
        }
    }
}

static bool worker_done(void *arg)
{
    sb_worker_t *w = arg;
    return w->quit;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int sb_worker_main(const sb_opts_t *o, unsigned index, unsigned nworkers, int fd)
{
    /* Die with the parent; Ctrl-C is the parent's to handle. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGINT, SIG_IGN);
    raise_nofile();

    sb_worker_t *w = sb_xcalloc(1, sizeof(*w));
    w->o = o;
    w->sc = o->scenario;
    w->index = index;
    w->nworkers = nworkers;
    w->loop = sb_loop_new(sb_now_ns() ^ ((uint64_t)getpid() << 32) ^ index);
    sb_conn_init(&w->ctl, w->loop, &ctl_ops, w);
    sb_conn_adopt(&w->ctl, fd);

    w->targets = sb_xcalloc(o->nports, sizeof(*w->targets));
    for (unsigned i = 0; i < o->nports; i++) {
        sb_target_t *t = &w->targets[i];
        t->addr.sin_family = AF_INET;
        t->addr.sin_addr = o->host_addr;
        t->addr.sin_port = htons(o->ports[i]);
        snprintf(t->host, sizeof(t->host), "%s:%u", o->host, o->ports[i]);
    }
    w->cfg.protocol = o->protocol;
    w->cfg.transport = o->transport;
    w->cfg.path = sb_proto_raw(o->protocol) ? o->sub_path : o->path;
    w->cfg.token = o->token ? o->token : o->minted_token;
    w->cfg.cbs = &worker_cbs;

    w->first = (unsigned)((uint64_t)o->clients * index / nworkers);
    unsigned end = (unsigned)((uint64_t)o->clients * (index + 1) / nworkers);
    w->nclients = end - w->first;
    w->clients = sb_xcalloc(w->nclients ? w->nclients : 1, sizeof(*w->clients));
    for (unsigned i = 0; i < w->nclients; i++) {
        unsigned g = w->first + i;
        sb_client_init(&w->clients[i], w->loop, &w->cfg, sb_worker_target(w, g),
                       sb_worker_source(w, g), g, w);
    }
    w->st.clients = w->nclients;
    w->cpu0 = sb_self_cpu_s();
    w->start_ns = sb_now_ns();
    if (w->sc->worker_init)
        w->sc->worker_init(w);
    if (w->sc->manual_connect)
        send_stats(w, SB_CTL_READY);
    else
        w->connect_phase = true;

    sb_loop_set_hook(w->loop, worker_hook, w);
    sb_loop_run(w->loop, worker_done, w, UINT64_MAX);

    if (w->sc->worker_release)
        w->sc->worker_release(w);
    for (unsigned i = 0; i < w->nclients; i++)
        sb_client_release(&w->clients[i]);
    free(w->clients);
    free(w->targets);
    sb_conn_release(&w->ctl);
    sb_loop_free(w->loop);
    free(w);
    return 0;
}
