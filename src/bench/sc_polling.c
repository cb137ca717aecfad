/* bench/sc_polling.c — polling: what HTTP long-polling costs a server, in
 * two phases of --duration each, over the polling transport only.
 *
 * 1. Handshakes (--concurrency C slots; 0 skips the phase): each slot
 *    does what a browser tab does to come and go: the Engine.IO handshake
 *    (GET), the Socket.IO CONNECT with the token (POST, then a GET for its
 *    answer), then leaves with the close packet (POST "1"), all on one
 *    keep-alive connection, closed with a reset (no TIME_WAIT), and starts
 *    over. Reported: handshakes/s, connect latency (first byte to the
 *    CONNECT answer), server CPU per handshake.
 * 2. Round trips (--clients N connected polling clients, connected before
 *    the first phase; 0 skips the phase): each client emits user-join
 *    {auth: {token}} asking for an ack, which Open WebUI's socket server
 *    and the peers all answer with the user, and sends the next one when
 *    the ack comes. The emit is a POST on the client's second connection;
 *    the ack comes back on its long-poll. Reported: round trips/s, their
 *    latency, server CPU per round trip.
 *
 * Checks: no connect failed or was lost, every ack names a user, every
 * round trip came back, at least one cycle of each phase that ran.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/coord.h"
#include "bench/scenario.h"
#include "bench/sysstat.h"
#include "bench/util.h"
#include "bench/worker.h"

enum { PHASE_HANDSHAKES = 1, PHASE_ROUND_TRIPS };

typedef struct poll_worker {
    sb_client_t *slots; /* the handshake phase's, this worker's share of C */
    unsigned nslots;
    int phase;
    bool running;
    unsigned inflight; /* slots in a cycle, or clients waiting for an ack */
    uint64_t *t_emit;  /* [client]: when its user-join went out */
    uint32_t *ack_id;  /* [client]: the ack it waits for */
    bool *waiting;     /* [client] */
    sb_buf_t args;
} poll_worker_t;

static bool is_slot(const poll_worker_t *pw, const sb_client_t *c)
{
    return c >= pw->slots && c < pw->slots + pw->nslots;
}

static void poll_init(sb_worker_t *w)
{
    const sb_opts_t *o = w->o;
    poll_worker_t *pw = sb_xcalloc(1, sizeof(*pw));
    unsigned first = (unsigned)((uint64_t)o->concurrency * w->index / w->nworkers);
    unsigned end = (unsigned)((uint64_t)o->concurrency * (w->index + 1) / w->nworkers);
    pw->nslots = end - first;
    pw->slots = sb_xcalloc(pw->nslots ? pw->nslots : 1, sizeof(*pw->slots));
    /* Slots are numbered after the clients, so their addresses spread on. */
    for (unsigned i = 0; i < pw->nslots; i++) {
        unsigned g = o->clients + first + i;
        sb_client_init(&pw->slots[i], w->loop, &w->cfg, sb_worker_target(w, g),
                       sb_worker_source(w, g), g, w);
    }
    pw->t_emit = sb_xcalloc(w->nclients, sizeof(uint64_t));
    pw->ack_id = sb_xcalloc(w->nclients, sizeof(uint32_t));
    pw->waiting = sb_xcalloc(w->nclients, sizeof(bool));
    w->state = pw;
}

static void poll_release(sb_worker_t *w)
{
    poll_worker_t *pw = w->state;
    for (unsigned i = 0; i < pw->nslots; i++)
        sb_client_release(&pw->slots[i]);
    free(pw->slots);
    free(pw->t_emit);
    free(pw->ack_id);
    free(pw->waiting);
    sb_buf_release(&pw->args);
    free(pw);
}

/* ---- handshakes ---- */

/* A slot's cycle ended (left, or failed): the next one, while running. */
static void slot_next(sb_worker_t *w, sb_client_t *c)
{
    poll_worker_t *pw = w->state;
    if (pw->running && pw->phase == PHASE_HANDSHAKES)
        sb_client_open(c);
    else
        pw->inflight--;
}

static void slot_ready(sb_worker_t *w, sb_client_t *c, uint64_t now)
{
    w->st.handshakes++;
    sb_hist_add(&w->st.connect, (now - c->t_open) / 1000);
    if (sb_client_leave(c) < 0) {
        sb_stats_error(&w->st, "client %u: cannot leave", c->id);
        sb_worker_close_client(w, c, true);
        slot_next(w, c);
    }
}

/* ---- round trips ---- */

/* Emits client i's next user-join; false when it could not. */
static bool emit_join(sb_worker_t *w, unsigned i)
{
    poll_worker_t *pw = w->state;
    sb_client_t *c = &w->clients[i];
    sb_buf_reset(&pw->args);
    sb_buf_printf(&pw->args, "{\"auth\":{\"token\":\"%s\"}}", c->token ? c->token : "");
    pw->ack_id[i]++;
    pw->t_emit[i] = sb_now_ns();
    if (sb_client_emit(c, "user-join", sb_buf_head(&pw->args), sb_buf_avail(&pw->args),
                       pw->ack_id[i]) < 0)
        return false;
    pw->waiting[i] = true;
    w->st.sent++;
    return true;
}

static void poll_ack(sb_worker_t *w, sb_client_t *c, uint64_t ack_id, const char *args, size_t alen,
                     uint64_t now)
{
    poll_worker_t *pw = w->state;
    if (is_slot(pw, c))
        return;
    unsigned i = sb_worker_client_index(w, c);
    if (!pw->waiting[i] || ack_id != pw->ack_id[i]) {
        sb_stats_error(&w->st, "client %u: an ack (%llu) it did not ask for", c->id,
                       (unsigned long long)ack_id);
        return;
    }
    pw->waiting[i] = false;
    if (!memmem(args, alen, "\"id\"", 4)) {
        sb_stats_error(&w->st, "client %u: a user-join ack without the user: %.*s", c->id,
                       (int)(alen < 160 ? alen : 160), args);
    } else {
        w->st.round_trips++;
        sb_hist_add(&w->st.connect, (now - pw->t_emit[i]) / 1000);
    }
    if (!pw->running || !emit_join(w, i))
        pw->inflight--;
}

/* ---- both ---- */

static void poll_ready(sb_worker_t *w, sb_client_t *c, uint64_t now)
{
    poll_worker_t *pw = w->state;
    if (is_slot(pw, c))
        slot_ready(w, c, now);
}

static void poll_left(sb_worker_t *w, sb_client_t *c, uint64_t now)
{
    slot_next(w, c);
}

static void poll_closed(sb_worker_t *w, sb_client_t *c, bool was_ready, const char *why)
{
    poll_worker_t *pw = w->state;
    if (is_slot(pw, c)) {
        slot_next(w, c);
        return;
    }
    unsigned i = sb_worker_client_index(w, c);
    if (pw->waiting[i]) {
        pw->waiting[i] = false;
        pw->inflight--;
    }
}

static void poll_begin(sb_worker_t *w, const void *arg, size_t n)
{
    poll_worker_t *pw = w->state;
    pw->phase = 0;
    memcpy(&pw->phase, arg, n < sizeof(pw->phase) ? n : sizeof(pw->phase));
    pw->running = true;
    pw->inflight = 0;
    if (pw->phase == PHASE_HANDSHAKES) {
        for (unsigned i = 0; i < pw->nslots; i++) {
            pw->inflight++;
            sb_client_open(&pw->slots[i]);
        }
        return;
    }
    for (unsigned i = 0; i < w->nclients; i++) {
        if (!sb_client_is_ready(&w->clients[i]))
            continue;
        if (emit_join(w, i))
            pw->inflight++;
        else
            sb_stats_error(&w->st, "client %u: user-join could not be sent", w->clients[i].id);
    }
}

static void poll_end(sb_worker_t *w, const void *arg, size_t n)
{
    poll_worker_t *pw = w->state;
    pw->running = false;
}

static bool poll_done(sb_worker_t *w)
{
    poll_worker_t *pw = w->state;
    return pw->inflight == 0;
}

/* ---- parent side ---- */

typedef struct phase_result {
    sb_stats_t st;
    sb_sample_t s0, s1;
    double secs;
    int rc;
} phase_result_t;

static void run_phase(sb_coord_t *co, int phase, phase_result_t *pr)
{
    const sb_opts_t *o = co->o;
    pr->rc = sb_coord_begin(co, &phase, sizeof(phase));
    sb_sample_take(&pr->s0, o->pids, o->npids);
    if (pr->rc == 0)
        pr->rc = sb_coord_run_until(co, pr->s0.t_ns + (uint64_t)(o->duration_s * 1e9), NULL, NULL);
    /* The window is what ran: what finishes during the drain is counted
     * too, so the time to it is. */
    int rc = sb_coord_end(co, NULL, 0, &pr->st);
    sb_sample_take(&pr->s1, o->pids, o->npids);
    if (pr->rc == 0)
        pr->rc = rc;
    pr->secs = (double)(pr->s1.t_ns - pr->s0.t_ns) / 1e9;
}

static void poll_complete(sb_opts_t *o, bool clients_set)
{
    if (o->transport == SB_TRANSPORT_SSE)
        sb_cli_bad("the polling scenario is Socket.IO over long-polling, not SSE");
    o->transport = SB_TRANSPORT_POLLING;
    if (!o->concurrency && !o->clients)
        sb_cli_bad("polling: --concurrency 0 and --clients 0 leave nothing to do");
}

/* How a phase is reported: keys from its name ("handshake": handshakes,
 * handshakes_per_s, handshake_errors, server_cpu_us_per_handshake...). */
typedef struct phase_desc {
    const char *heading;
    const char *name, *plural; /* keys: "round_trip", "round_trips" */
    const char *word, *words;  /* the table's: "round trip", "round trips" */
    const char *latency_key, *latency_label;
} phase_desc_t;

static const phase_desc_t handshake_desc = {
    .heading = "handshakes: GET open, POST CONNECT, GET, POST close; again",
    .name = "handshake",
    .plural = "handshakes",
    .word = "handshake",
    .words = "handshakes",
    .latency_key = "connect_latency_ms",
    .latency_label = "  connect latency",
};

static const phase_desc_t round_trip_desc = {
    .heading = "round trips: user-join with an ack, one at a time per client",
    .name = "round_trip",
    .plural = "round_trips",
    .word = "round trip",
    .words = "round trips",
    .latency_key = "round_trip_latency_ms",
    .latency_label = "  latency",
};

static void report_phase(const sb_coord_t *co, sb_report_t *r, const phase_desc_t *d,
                         const phase_result_t *pr, uint64_t count)
{
    char key[80], label[80];
    sb_report_note(r, "%s", d->heading);
    snprintf(label, sizeof(label), "  %s", d->words);
    sb_report_int(r, d->plural, label, (long long)count, NULL);
    snprintf(key, sizeof(key), "%s_per_s", d->plural);
    snprintf(label, sizeof(label), "  %s/s", d->words);
    sb_report_num(r, key, label, pr->secs > 0 ? (double)count / pr->secs : 0, 0, "/s");
    sb_report_latency(r, d->latency_key, d->latency_label, &pr->st.connect);
    snprintf(key, sizeof(key), "%s_errors", d->name);
    sb_report_int(r, key, "  errors", (long long)(pr->st.errors + pr->st.stalled), NULL);
    snprintf(key, sizeof(key), "server_cpu_us_per_%s", d->name);
    snprintf(label, sizeof(label), "  server CPU per %s", d->word);
    sb_scenario_report_cpu(co, r, d->name, &pr->s0, &pr->s1, count, key, label, 1);
    snprintf(key, sizeof(key), "%s_client_cpu_s", d->name);
    sb_report_num(r, key, "  client CPU (workers)", pr->st.cpu_s, 2, "s");
    if (pr->st.first_error[0])
        sb_report_note(r, "  first error: %s", pr->st.first_error);
}

static int poll_run(sb_coord_t *co, sb_report_t *r)
{
    const sb_opts_t *o = co->o;
    phase_result_t hs = {0}, rt = {0};
    sb_coord_start(co);
    int rc = sb_coord_wait_connected(co);
    if (!sb_scenario_all_connected(co, r, rc, "client"))
        return 1;
    if (o->concurrency)
        run_phase(co, PHASE_HANDSHAKES, &hs);
    if (o->clients && hs.rc == 0)
        run_phase(co, PHASE_ROUND_TRIPS, &rt);

    uint64_t errors = hs.st.errors + rt.st.errors + hs.st.stalled + rt.st.stalled;
    bool ok = hs.rc == 0 && rt.rc == 0 && errors == 0;
    sb_scenario_report_head(co, r, o->clients ? (long long)rt.st.connected : 0);
    sb_report_num(r, "duration_s", "each phase", o->duration_s, 2, "s");
    if (o->concurrency) {
        ok = ok && hs.st.handshakes > 0;
        sb_report_int(r, "concurrency", "handshake slots", o->concurrency, NULL);
        report_phase(co, r, &handshake_desc, &hs, hs.st.handshakes);
    }
    if (o->clients) {
        ok = ok && rt.st.round_trips > 0 && rt.st.connected == o->clients;
        report_phase(co, r, &round_trip_desc, &rt, rt.st.round_trips);
    }
    sb_report_int(r, "errors", NULL, (long long)errors, NULL);
    if (hs.rc < 0 || rt.rc < 0)
        sb_report_note(r, "  a phase did not end: %s", strerror(-(hs.rc < 0 ? hs.rc : rt.rc)));
    sb_report_bool(r, "ok", "no failed connect or round trip", ok);
    return ok ? 0 : 1;
}

const sb_scenario_t sb_scenario_polling = {
    .name = "polling",
    .summary = "long-polling: handshakes/s of --concurrency slots, then round trips/s of N clients",
    .clients_emit = true,
    .default_clients = 100,
    .complete = poll_complete,
    .worker_init = poll_init,
    .worker_release = poll_release,
    .client_ready = poll_ready,
    .client_ack = poll_ack,
    .client_closed = poll_closed,
    .client_left = poll_left,
    .window_begin = poll_begin,
    .window_end = poll_end,
    .window_done = poll_done,
    .run = poll_run,
};
