/* bench/sc_fanout.c — fanout: every subscriber in one room (with
 * siohubd: tabs of one user, room user:<id>); the publisher POSTs bench
 * messages at a fixed --rate for --duration (publish.h); each subscriber
 * checks it got each message exactly once, in order per publisher, and
 * measures its latency from the stamp inside.
 *
 * --find-max repeats the window from --rate, doubling the rate until p99
 * reaches --p99-limit or the deliveries fall behind (the last delivery
 * later than 110% of the window plus the limit, or any missing), then
 * bisects three times between the last rate that held and the first that
 * did not. --max-rate caps the search: a round at the cap that holds
 * ends it. A warm-up window at --rate comes first and counts for nothing
 * (a JIT-compiled server's first window is its slowest: Node's p99 at 2
 * publishes a second to 1,000 clients was ~60 ms cold, 20 ms warm), and a
 * rate that misses is tried once more before it counts as missed (one
 * disturbed window on a shared machine ended the doubling at 4/s for a
 * server that held 1,024/s in the next run).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/coord.h"
#include "bench/payload.h"
#include "bench/publish.h"
#include "bench/scenario.h"
#include "bench/sysstat.h"
#include "bench/util.h"
#include "bench/worker.h"

#define MAX_ROUNDS   40
#define BISECT_STEPS 3

/* ---- worker side ---- */

static void fanout_worker_init(sb_worker_t *w)
{
    sb_tracker_t *t = sb_xcalloc(1, sizeof(*t));
    sb_tracker_init(t, w->nclients, w->o->publishers);
    w->state = t;
}

static void fanout_worker_release(sb_worker_t *w)
{
    sb_tracker_release(w->state);
    free(w->state);
}

static void fanout_message(sb_worker_t *w, sb_client_t *c, const char *name, size_t nlen,
                           const char *args, size_t alen, uint64_t now)
{
    sb_payload_t m;
    /* Socket.IO: our event only ("bench" from emit, "chat-events" from
     * the chat-events API); presence and other events are not ours. */
    if (name && !(nlen == 5 && !memcmp(name, "bench", 5)) &&
        !(nlen == 11 && !memcmp(name, "chat-events", 11))) {
        w->st.unexpected++;
        return;
    }
    /* Stamped before this run began: a server that replays its buffer to
     * new subscribers (nchan) hands over an earlier run's messages. */
    if (!sb_payload_parse(args, alen, &m) || m.t_ns < w->start_ns) {
        w->st.unexpected++;
        return;
    }
    sb_tracker_add(w->state, &w->st, sb_worker_client_index(w, c), &m, alen, now);
}

static void fanout_begin(sb_worker_t *w, const void *arg, size_t n)
{
    sb_tracker_t *t = w->state;
    uint32_t base[SB_MAX_PUBS] = {0};
    memcpy(base, arg, n < sizeof(base) ? n : sizeof(base));
    sb_tracker_begin(t, base);
}

static void fanout_end(sb_worker_t *w, const void *arg, size_t n)
{
    sb_tracker_t *t = w->state;
    uint32_t count[SB_MAX_PUBS] = {0};
    memcpy(count, arg, n < sizeof(count) ? n : sizeof(count));
    uint64_t want = sb_tracker_end(t, count);
    w->st.expected = want * w->st.connected;
}

static bool fanout_done(sb_worker_t *w)
{
    sb_tracker_t *t = w->state;
    return t->complete >= w->st.connected;
}

static void fanout_stats(sb_worker_t *w)
{
    sb_tracker_t *t = w->state;
    unsigned shown = 0;
    for (unsigned i = 0; i < w->nclients; i++) {
        if (!sb_client_is_ready(&w->clients[i]) || t->got[i] >= t->want)
            continue;
        w->st.missing += t->want - t->got[i];
        if (w->o->verbose && shown++ < 20)
            fprintf(stderr, SB_PROG ": client %u (port %u): %u of %llu messages\n",
                    w->clients[i].id, ntohs(w->clients[i].target->addr.sin_port), t->got[i],
                    (unsigned long long)t->want);
    }
}

/* ---- parent side ---- */

typedef struct round {
    double rate;
    sb_stats_t st;
    sb_pub_stats_t pub;
    sb_sample_t s0, s1;
    double window_s; /* first publish to last delivery, at least --duration */
    bool complete, behind, pass;
    bool warmup; /* --find-max's first window, not part of the search */
    int rc;
} round_t;

static uint64_t round_errors(const round_t *rd)
{
    return rd->pub.errors + rd->st.errors + rd->st.disordered + rd->st.late;
}

/* One window at rate; the workers are connected, the publisher open. */
static void run_round(sb_coord_t *co, sb_pub_t *pub, double rate, round_t *rd)
{
    const sb_opts_t *o = co->o;
    memset(rd, 0, sizeof(*rd));
    rd->rate = rate;
    uint64_t count = (uint64_t)(rate * o->duration_s + 0.5);
    if (!count)
        count = 1;
    uint32_t base[SB_MAX_PUBS] = {0}, sent[SB_MAX_PUBS] = {0};
    sb_pub_bases(pub, base);
    rd->rc = sb_coord_begin(co, base, o->publishers * sizeof(uint32_t));
    if (rd->rc < 0)
        return;
    sb_sample_take(&rd->s0, o->pids, o->npids);
    sb_pub_start(pub, rate, count);
    /* Bound: the window, and as long again for a publisher held back. */
    uint64_t bound = sb_now_ns() + (uint64_t)((2 * o->duration_s + o->drain_timeout_s) * 1e9);
    rd->rc = sb_coord_run_until(co, bound, sb_pub_is_done, pub);
    sb_pub_window(pub, &rd->pub, sent);
    if (rd->rc == 0 && !sb_pub_is_done(pub))
        sb_stats_error(&rd->st, "the publisher did not finish in time");
    int rc = sb_coord_end(co, sent, o->publishers * sizeof(uint32_t), &rd->st);
    sb_sample_take(&rd->s1, o->pids, o->npids);
    if (rd->rc == 0)
        rd->rc = rc;
    /* The last message leaves 1/rate before the window's end: a server
     * that keeps up delivers rate x clients per second over --duration. */
    uint64_t last = rd->st.last_ns > rd->pub.t_start ? rd->st.last_ns : rd->pub.t_start;
    double took = (double)(last - rd->pub.t_start) / 1e9;
    rd->window_s = took > o->duration_s ? took : o->duration_s;
    rd->complete = rd->rc == 0 && rd->st.connected == o->clients &&
                   rd->st.delivered == rd->st.expected && !rd->st.missing && !rd->st.stalled &&
                   round_errors(rd) == 0 && rd->pub.sent == count;
    rd->behind = took > 1.1 * o->duration_s + o->p99_limit_ms / 1e3;
    rd->pass = rd->complete && !rd->behind &&
               (double)sb_hist_pct(&rd->st.latency, 99) / 1e3 < o->p99_limit_ms;
}

static void round_line(const sb_opts_t *o, const round_t *rd, sb_buf_t *table, sb_buf_t *json)
{
    double p99 = (double)sb_hist_pct(&rd->st.latency, 99) / 1e3;
    double drate = rd->window_s > 0 ? (double)rd->st.delivered / rd->window_s : 0;
    sb_buf_printf(
        table, "  rate %10.1f/s: %12.0f deliveries/s, p99 %9.3f ms, %llu of %llu delivered%s%s\n",
        rd->rate, drate, p99, (unsigned long long)rd->st.delivered,
        (unsigned long long)rd->st.expected, rd->behind ? ", behind" : "",
        rd->warmup ? " (warm-up)"
        : rd->pass ? ""
                   : " -> no");
    sb_buf_printf(json,
                  "%s{\"rate\":%.1f,\"delivery_rate\":%.0f,\"p99_ms\":%.3f,\"delivered\":%llu,"
                  "\"expected\":%llu,\"pass\":%s%s}",
                  json->len > 1 ? "," : "", rd->rate, drate, p99,
                  (unsigned long long)rd->st.delivered, (unsigned long long)rd->st.expected,
                  rd->pass ? "true" : "false", rd->warmup ? ",\"warmup\":true" : "");
}

static void report_round(sb_coord_t *co, sb_report_t *r, const round_t *rd)
{
    const sb_opts_t *o = co->o;
    const sb_stats_t *st = &rd->st;
    sb_scenario_report_head(co, r, rd->rc == -EPIPE ? -1 : (long long)st->connected);
    sb_report_num(r, "rate", "publish rate", rd->rate, 1, "/s");
    sb_report_int(r, "size", "message size", o->size, "bytes");
    sb_report_str(r, "pad_language", "padding", o->pad_zh ? "zh" : "en");
    sb_report_int(r, "publishers", NULL, o->publishers, NULL);
    sb_report_num(r, "duration_s", "publishing for", o->duration_s, 2, "s");
    sb_report_int(r, "sent", "messages sent", (long long)rd->pub.sent, NULL);
    sb_report_int(r, "delivered", NULL, (long long)st->delivered, NULL);
    sb_report_int(r, "expected", NULL, (long long)st->expected, NULL);
    sb_report_num(r, "delivery_rate", "deliveries/s",
                  rd->window_s > 0 ? (double)st->delivered / rd->window_s : 0, 0, "/s");
    sb_report_latency(r, "latency_ms", "latency publish -> client", &st->latency);
    /* What the server sent of each message, as the client read it: the
     * published bytes, or fewer when the server writes \u escapes as
     * characters (--pad-language zh). */
    sb_report_num(r, "data_bytes_per_delivery", "event data per delivery",
                  st->delivered ? (double)st->bytes / (double)st->delivered : 0, 1, "bytes");
    sb_report_int(r, "errors", NULL, (long long)round_errors(rd), NULL);
    sb_report_int(r, "missing", NULL, (long long)st->missing, NULL);
    sb_report_int(r, "disordered", "repeated or out of order", (long long)st->disordered, NULL);
    sb_report_int(r, "unexpected", "other messages", (long long)st->unexpected, NULL);
    sb_report_num(r, "publish_lag_ms_max", "publisher lag, max", (double)rd->pub.max_lag_ns / 1e6,
                  3, "ms");
    if (o->npids && rd->s0.have_server && rd->s1.have_server) {
        double cpu = rd->s1.cpu_s - rd->s0.cpu_s;
        sb_report_num(r, "server_cpu_s", "server CPU", cpu, 2, "s");
        sb_report_num(r, "server_sys_s", "  of which system", rd->s1.sys_s - rd->s0.sys_s, 2, "s");
        sb_report_num(r, "server_cpu_us_per_delivery", "server CPU per delivery",
                      st->delivered ? cpu * 1e6 / (double)st->delivered : NAN, 3, "us");
    }
    sb_report_num(r, "client_cpu_s", "client CPU (workers)", st->cpu_s, 2, "s");
    if (st->first_error[0] || rd->pub.first_error[0])
        sb_report_note(r, "  first error: %s",
                       rd->pub.first_error[0] ? rd->pub.first_error : st->first_error);
    if (st->stalled)
        sb_report_note(r, "  deliveries stopped before every message arrived");
}

/* Whether rate holds, for --find-max: 1 (the last of rounds[0..*n)
 * held), 0 (missed twice in a row), or -1 when the search must stop: no
 * room for more rounds, or clients lost (later rounds would not compare
 * with the earlier ones). */
static int try_rate(sb_coord_t *co, sb_pub_t *pub, double rate, round_t *rounds, unsigned *n)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (*n >= MAX_ROUNDS)
            return -1;
        round_t *rd = &rounds[(*n)++];
        run_round(co, pub, rate, rd);
        if (rd->pass)
            return 1;
        if (rd->rc < 0 || rd->st.connected != co->o->clients)
            return -1;
    }
    return 0;
}

static int fanout_run(sb_coord_t *co, sb_report_t *r)
{
    const sb_opts_t *o = co->o;
    sb_coord_start(co);
    int rc = sb_coord_wait_connected(co);
    if (rc < 0 || co->ready.connected != o->clients) {
        sb_scenario_report_head(co, r, -1);
        sb_report_int(r, "errors", NULL, (long long)co->ready.failed, NULL);
        sb_report_note(r, "  not every client connected%s%s", co->ready.first_error[0] ? ": " : "",
                       co->ready.first_error);
        return 1;
    }
    sb_pub_t *pub = sb_pub_new(co->loop, o);
    sb_pub_open(pub);
    /* --settle: the server may still be finishing what the last connects
     * started (fleet pools, room joins). */
    uint64_t settled = sb_now_ns() + (uint64_t)(o->settle_s * 1e9);
    rc = sb_coord_run_until(co, sb_now_ns() + (uint64_t)(o->connect_timeout_s * 1e9),
                            sb_pub_is_open, pub);
    if (rc == 0)
        rc = sb_coord_run_until(co, settled, NULL, NULL);
    round_t *rounds = sb_xcalloc(MAX_ROUNDS, sizeof(*rounds));
    unsigned n = 0;
    int best = -1;
    if (rc == 0 && !o->find_max) {
        run_round(co, pub, o->rate, &rounds[n++]);
        best = 0;
    } else if (rc == 0) {
        round_t *warm = &rounds[n++];
        run_round(co, pub, o->rate, warm);
        warm->warmup = true;
        double rate = o->rate, fail = 0;
        int held = warm->rc < 0 || warm->st.connected != o->clients ? -1 : 1;
        while (held > 0 && (held = try_rate(co, pub, rate, rounds, &n)) != 0) {
            if (held < 0)
                break;
            best = (int)n - 1;
            if (o->max_rate && rate >= o->max_rate)
                break;
            rate = o->max_rate && rate * 2 > o->max_rate ? o->max_rate : rate * 2;
        }
        if (held == 0)
            fail = rate;
        /* Bisect between the best rate that held and the first that did
         * not. */
        for (int step = 0; best >= 0 && fail > 0 && step < BISECT_STEPS; step++) {
            double mid = (rounds[best].rate + fail) / 2;
            held = try_rate(co, pub, mid, rounds, &n);
            if (held < 0)
                break;
            if (held)
                best = (int)n - 1;
            else
                fail = mid;
        }
    }
    int exit_rc;
    if (n == 0) {
        sb_scenario_report_head(co, r, -1);
        sb_report_note(r, "  the publisher could not connect to port %u", o->emit_port);
        exit_rc = 1;
    } else if (!o->find_max) {
        report_round(co, r, &rounds[0]);
        sb_report_bool(r, "ok", "each message once, in order", rounds[0].complete);
        exit_rc = rounds[0].complete ? 0 : 1;
    } else {
        /* With no rate held: the first searched round, the warm-up's
         * only when the search never began. */
        const round_t *shown = &rounds[best >= 0 ? best : n > 1 ? 1 : 0];
        report_round(co, r, shown);
        sb_buf_t table = {0}, json = {0};
        sb_buf_puts(&table, "find-max rounds:\n");
        sb_buf_puts(&json, "[");
        for (unsigned i = 0; i < n; i++)
            round_line(o, &rounds[i], &table, &json);
        sb_buf_puts(&json, "]");
        sb_buf_append(&table, "", 1);
        sb_buf_append(&json, "", 1);
        sb_report_json(r, "rounds", sb_buf_head(&json), sb_buf_head(&table));
        sb_report_num(r, "max_rate_p99_under_50ms", "highest rate that held",
                      best >= 0 ? rounds[best].rate : 0, 1, "/s");
        if (o->p99_limit_ms != 50)
            sb_report_num(r, "p99_limit_ms", "latency bound", o->p99_limit_ms, 3, "ms");
        sb_buf_release(&table);
        sb_buf_release(&json);
        exit_rc = best >= 0 ? 0 : 1;
        if (best < 0)
            sb_report_note(r, "  no rate held: start lower (--rate)");
    }
    free(rounds);
    sb_pub_free(pub);
    return exit_rc;
}

const sb_scenario_t sb_scenario_fanout = {
    .name = "fanout",
    .summary = "one room, messages POSTed at --rate: delivery rate, latency, CPU per delivery",
    .raw_ws = true,
    .raw_sse = true,
    .default_clients = 1000,
    .redis = true,
    .worker_init = fanout_worker_init,
    .worker_release = fanout_worker_release,
    .client_message = fanout_message,
    .window_begin = fanout_begin,
    .window_end = fanout_end,
    .window_done = fanout_done,
    .window_stats = fanout_stats,
    .run = fanout_run,
};
