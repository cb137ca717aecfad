/* bench/sc_churn.c — churn: --clients slots, each connecting (through the
 * Socket.IO CONNECT answer, or the upgrade for raw-ws), closing at once
 * and starting over, for --duration. Closes with RST (SO_LINGER 0) so
 * that many thousand cycles do not exhaust the ephemeral ports with
 * TIME_WAIT; the server sees a reset instead of a FIN.
 *
 * Checks: no connect failed or hung, at least one cycle completed.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "bench/coord.h"
#include "bench/scenario.h"
#include "bench/sysstat.h"
#include "bench/util.h"
#include "bench/worker.h"

typedef struct churn {
    bool cycling;
    unsigned inflight;
} churn_t;

static void churn_init(sb_worker_t *w)
{
    w->state = sb_xcalloc(1, sizeof(churn_t));
}

static void churn_release(sb_worker_t *w)
{
    free(w->state);
}

/* This slot's attempt is over: start the next one while cycling. */
static void churn_next(sb_worker_t *w, sb_client_t *c)
{
    churn_t *ch = w->state;
    ch->inflight--;
    if (ch->cycling) {
        ch->inflight++;
        sb_client_open(c);
    }
}

static void churn_ready(sb_worker_t *w, sb_client_t *c, uint64_t now)
{
    w->st.handshakes++;
    sb_hist_add(&w->st.connect, (now - c->t_open) / 1000);
    sb_worker_close_client(w, c, true);
    churn_next(w, c);
}

static void churn_closed(sb_worker_t *w, sb_client_t *c, bool was_ready, const char *why)
{
    churn_next(w, c);
}

static void churn_begin(sb_worker_t *w, const void *arg, size_t n)
{
    churn_t *ch = w->state;
    ch->cycling = true;
    for (unsigned i = 0; i < w->nclients; i++) {
        ch->inflight++;
        sb_client_open(&w->clients[i]);
    }
}

static void churn_end(sb_worker_t *w, const void *arg, size_t n)
{
    churn_t *ch = w->state;
    ch->cycling = false;
}

static bool churn_done(sb_worker_t *w)
{
    churn_t *ch = w->state;
    return ch->inflight == 0;
}

/* Attempts still in flight after --drain-timeout are connects the server
 * left hanging (a full --max-connections, a backlog): failures. */
static void churn_stats(sb_worker_t *w)
{
    churn_t *ch = w->state;
    if (ch->inflight)
        sb_stats_error(&w->st, "%u connects still pending %.1f s after the end", ch->inflight,
                       w->o->drain_timeout_s);
    w->st.errors += ch->inflight ? ch->inflight - 1 : 0;
}

static int churn_run(sb_coord_t *co, sb_report_t *r)
{
    const sb_opts_t *o = co->o;
    sb_sample_t s0, s1;
    sb_stats_t st = {0};
    sb_coord_start(co);
    int rc = sb_coord_wait_connected(co);
    sb_sample_take(&s0, o->pids, o->npids);
    if (rc == 0)
        rc = sb_coord_begin(co, NULL, 0);
    if (rc == 0)
        rc = sb_coord_run_until(co, s0.t_ns + (uint64_t)(o->duration_s * 1e9), NULL, NULL);
    if (rc == 0)
        rc = sb_coord_end(co, NULL, 0, &st);
    sb_sample_take(&s1, o->pids, o->npids);
    double secs = (double)(s1.t_ns - s0.t_ns) / 1e9;
    sb_scenario_report_head(co, r, -1);
    sb_report_num(r, "duration_s", "cycling for", secs, 2, "s");
    sb_report_int(r, "handshakes", "connect cycles", (long long)st.handshakes, NULL);
    sb_report_num(r, "handshakes_per_s", "cycles/s", secs > 0 ? (double)st.handshakes / secs : 0, 0,
                  "/s");
    sb_report_latency(r, "connect_latency_ms", "connect latency", &st.connect);
    if (o->npids && s0.have_server && s1.have_server) {
        double cpu = s1.cpu_s - s0.cpu_s;
        sb_report_num(r, "server_cpu_s", "server CPU", cpu, 2, "s");
        sb_report_num(r, "server_sys_s", "  of which system", s1.sys_s - s0.sys_s, 2, "s");
        sb_report_num(r, "server_cpu_us_per_handshake", "server CPU per cycle",
                      st.handshakes ? cpu * 1e6 / (double)st.handshakes : NAN, 1, "us");
    }
    sb_report_num(r, "client_cpu_s", "client CPU (workers)", st.cpu_s, 2, "s");
    sb_report_int(r, "errors", NULL, (long long)st.errors, NULL);
    if (st.first_error[0])
        sb_report_note(r, "  first error: %s", st.first_error);
    bool ok = rc == 0 && st.errors == 0 && st.handshakes > 0;
    sb_report_bool(r, "ok", "no failed connect", ok);
    return ok ? 0 : 1;
}

const sb_scenario_t sb_scenario_churn = {
    .name = "churn",
    .summary = "N slots connect, close with RST and reconnect: handshakes/s, CPU per handshake",
    .raw_ws = true,
    .manual_connect = true,
    .default_clients = 64,
    .worker_init = churn_init,
    .worker_release = churn_release,
    .client_ready = churn_ready,
    .client_closed = churn_closed,
    .window_begin = churn_begin,
    .window_end = churn_end,
    .window_done = churn_done,
    .window_stats = churn_stats,
    .run = churn_run,
};
