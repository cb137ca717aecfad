/* bench/sc_chat.c — chat: the shape of Open WebUI's traffic.
 *
 * --users U users, user u with A + u mod (B - A + 1) tabs for --tabs A-B
 * (a fixed spread, so runs compare), each tab one client; the users are
 * grouped in order into channels of --channel-size (user u is in channel
 * u / size). Users are "<user>-<u>" (--user, "bench"), channels
 * "<user>-c<n>"; each user's token (minted with --secret) carries its
 * channel in the "channels" claim. After CONNECT every tab emits
 * join-channels {auth: {token}}.
 *
 * Before the window the run makes sure every tab is where it should be:
 * it emits a probe (POST /api/v1/emit, event bench-probe) to each room
 * user:<id> and channel:<cid> and waits until every tab got both of its
 * own, repeating the probes until --connect-timeout. A probe that reaches
 * a tab of another user or channel is an error.
 *
 * The window (--duration):
 * - chat: every user gets --tokens-per-second T tokens a second, in
 *   bursts of --burst B (a model's stream reaches Open WebUI's backend in
 *   chunks, and several tokens reach the socket server at once): burst m
 *   of user u is due at t0 + (m U + u) B / (U T), so the users' bursts
 *   interleave evenly and the load is smooth. What is due goes out at the
 *   next tick (10 ms): per tick and publisher connection, one POST
 *   /api/v1/chat-events whose body is the JSON array of every token due,
 *   a user's burst together (at most --batch; --batch 1 posts single
 *   objects). So a tab gets several events in one server loop iteration,
 *   as it does behind Open WebUI. Each token is
 *       {user_id, chat_id, message_id,
 *        data: {type: "chat:completion", data: {seq: k, pub: u, ts, content}}}
 *   ts being CLOCK_MONOTONIC ns when the request is written; content is
 *   " tok", or with --reply-tokens N the reply so far (reply.h): token k
 *   carries tokens 0 .. k mod N of a fixed reply, as Open WebUI's
 *   chat:completion events do, and the tab checks it byte for byte. A user's
 *   tokens always use the same connection (u mod --publishers), one
 *   request at a time, so the server sees them in order.
 *   With --redis each token is instead one PUBLISH of python-socketio's
 *   pub/sub emit of "chat-events" {chat_id, message_id, data} to room
 *   user:<id> (what Open WebUI's event emitter publishes in a fleet),
 *   everything due in a tick pipelined in one write; the probes go the
 *   same way.
 * - typing: the first tab of each user emits channel-events
 *   {channel_id, message_id: null,
 *    data: {type: "typing", data: {typing: true, seq: n, pub: u, ts}}}
 *   --typing-rate times a second (interleaved the same way); the server
 *   sends it to every tab in the channel, the sender's own included.
 *
 * Checks, per tab: each token of its user exactly once and in order
 * (seq 0, 1, 2...), none of another user's; each typing event of each
 * channel member exactly once and in order, none from another channel.
 * Reported: deliveries (chat, typing, both), delivery rate, chat and
 * typing latency, server CPU per delivery, errors.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/coord.h"
#include "bench/http.h"
#include "bench/jwt.h"
#include "bench/payload.h"
#include "bench/publish.h"
#include "bench/reply.h"
#include "bench/scenario.h"
#include "bench/sysstat.h"
#include "bench/util.h"
#include "bench/worker.h"

#define TICK_NS          10000000ull /* the publisher's tick: 10 ms */
#define LEAD_NS          20000000ull /* the window opens this long after BEGIN */
#define PROBE_WAIT_NS    1000000000ull
#define TOKEN_TTL_S      86400
#define MAX_CHANNEL_SIZE 1000
#define CHAT_MSG_JOINED  (SB_CTL_SCENARIO + 0) /* worker -> parent: every tab joined */
#define JOINED_USER_ROOM 1
#define JOINED_CHANNEL   2
#define JOINED_ALL       (JOINED_USER_ROOM | JOINED_CHANNEL)

/* What the extra counters of sb_stats_t hold. */
enum {
    X_CHAT_DELIVERED,
    X_TYPING_DELIVERED,
    X_CHAT_EXPECTED,
    X_TYPING_EXPECTED,
    X_CHAT_MISSING,
    X_TYPING_MISSING,
};

/* ---- who is who: users, tabs, channels ---- */

typedef struct geom {
    unsigned users, tabs_min, span, csize;
} geom_t;

static geom_t geom_of(const sb_opts_t *o)
{
    geom_t g = {.users = o->users,
                .tabs_min = o->tabs_min,
                .span = o->tabs_max - o->tabs_min + 1,
                .csize = o->channel_size};
    return g;
}

/* The global index of user u's first tab (u may be g->users: the total);
 * user u has tabs_min + u mod span tabs. */
static uint64_t first_tab(const geom_t *g, uint64_t u)
{
    uint64_t full = u / g->span, rem = u % g->span;
    return u * g->tabs_min + full * g->span * (g->span - 1) / 2 + (rem ? rem * (rem - 1) / 2 : 0);
}

/* The user of global client index i. */
static unsigned user_of(const geom_t *g, uint64_t i)
{
    unsigned lo = 0, hi = g->users; /* first_tab(lo) <= i < first_tab(hi) */
    while (hi - lo > 1) {
        unsigned mid = lo + (hi - lo) / 2;
        if (first_tab(g, mid) <= i)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

static unsigned channels_of(const geom_t *g)
{
    return (g->users + g->csize - 1) / g->csize;
}

/* How many of the first `total` items of a stream interleaving all users
 * (item j is user j mod U's) belong to user u. */
static uint64_t share_of(uint64_t total, unsigned users, unsigned u)
{
    return total / users + (u < total % users ? 1 : 0);
}

/* Items of a per-user stream at rate per user per second that fall in a
 * window of d seconds (item j due at j / (U rate)). */
static uint64_t stream_total(unsigned users, double rate, double d)
{
    double n = ceil((double)users * rate * d - 1e-9);
    return n > 0 ? (uint64_t)n : 0;
}

/* The window, as the parent opens it in every worker. */
typedef struct window_arg {
    uint64_t t0, end; /* sb_now_ns */
    uint64_t bursts;  /* chat bursts in the window, all users */
    uint64_t typing_total;
    unsigned burst; /* tokens per burst */
} window_arg_t;

/* ---- worker side ---- */

typedef struct tab {
    uint32_t user;
    uint32_t last_seq; /* the last token seen, SB_SEQ_NONE */
    uint32_t chat_got, typing_got;
    uint32_t chat_want, typing_want;
    uint8_t tab;
    uint8_t joined; /* JOINED_*: the probes seen */
    bool complete;
} tab_t;

typedef struct chat_worker {
    geom_t g;
    tab_t *tabs;           /* [client] */
    uint32_t *typing_last; /* [client * csize + member]: last seq seen, SB_SEQ_NONE */
    char **tokens;         /* [user - first_user] */
    unsigned first_user, nusers;
    unsigned joined; /* tabs that got both probes */
    bool joined_told;
    sb_buf_t args; /* scratch for emits */
    /* the window */
    window_arg_t win;
    unsigned complete;
    uint64_t typing_n; /* next typing: round n ... */
    unsigned typing_u; /* ... of user typing_u */
    sb_timer_t typing_timer;
    sb_reply_t reply; /* --reply-tokens: what each token's content must be */
} chat_worker_t;

static void typing_tick(sb_timer_t *t, uint64_t now);

static void chat_worker_init(sb_worker_t *w)
{
    const sb_opts_t *o = w->o;
    chat_worker_t *cw = sb_xcalloc(1, sizeof(*cw));
    cw->g = geom_of(o);
    cw->tabs = sb_xcalloc(w->nclients, sizeof(*cw->tabs));
    cw->typing_last = sb_xcalloc((size_t)w->nclients * cw->g.csize, sizeof(uint32_t));
    memset(cw->typing_last, 0xff, (size_t)w->nclients * cw->g.csize * sizeof(uint32_t));
    cw->typing_timer.cb = typing_tick;
    cw->typing_timer.arg = w;
    w->state = cw;
    if (o->reply_tokens)
        sb_reply_init(&cw->reply, o->reply_tokens, o->reply_zh ? SB_REPLY_ZH : SB_REPLY_EN);
    if (!w->nclients)
        return;
    cw->first_user = user_of(&cw->g, w->first);
    cw->nusers = user_of(&cw->g, w->first + w->nclients - 1) - cw->first_user + 1;
    cw->tokens = sb_xcalloc(cw->nusers, sizeof(char *));
    for (unsigned k = 0; k < cw->nusers; k++) {
        unsigned u = cw->first_user + k;
        char id[160], channel[160];
        snprintf(id, sizeof(id), "%s-%u", o->user, u);
        snprintf(channel, sizeof(channel), "%s-c%u", o->user, u / cw->g.csize);
        const char *channels[] = {channel};
        cw->tokens[k] = sb_jwt_user(o->secret, id, NULL, channels, 1, TOKEN_TTL_S);
    }
    unsigned u = cw->first_user;
    for (unsigned i = 0; i < w->nclients; i++) {
        uint64_t g = w->first + i;
        while (first_tab(&cw->g, u + 1) <= g)
            u++;
        tab_t *t = &cw->tabs[i];
        t->user = u;
        t->tab = (uint8_t)(g - first_tab(&cw->g, u));
        t->last_seq = SB_SEQ_NONE;
        w->clients[i].token = cw->tokens[u - cw->first_user];
    }
}

static void chat_worker_release(sb_worker_t *w)
{
    chat_worker_t *cw = w->state;
    sb_timer_stop(w->loop, &cw->typing_timer);
    for (unsigned k = 0; k < cw->nusers; k++)
        free(cw->tokens[k]);
    free(cw->tokens);
    free(cw->tabs);
    free(cw->typing_last);
    sb_buf_release(&cw->args);
    sb_reply_release(&cw->reply);
    free(cw);
}

static void chat_ready(sb_worker_t *w, sb_client_t *c, uint64_t now)
{
    chat_worker_t *cw = w->state;
    sb_buf_reset(&cw->args);
    sb_buf_printf(&cw->args, "{\"auth\":{\"token\":\"%s\"}}", c->token);
    if (sb_client_emit(c, "join-channels", sb_buf_head(&cw->args), sb_buf_avail(&cw->args), -1) < 0)
        sb_stats_error(&w->st, "client %u: join-channels could not be sent", c->id);
}

/* Counts a tab complete once it has everything the window owes it. */
static void check_complete(chat_worker_t *cw, tab_t *t)
{
    if (!t->complete && t->chat_got >= t->chat_want && t->typing_got >= t->typing_want &&
        cw->win.t0) {
        t->complete = true;
        cw->complete++;
    }
}

static void on_probe(sb_worker_t *w, tab_t *t, const char *args, size_t alen)
{
    chat_worker_t *cw = w->state;
    int64_t n;
    bool channel = memmem(args, alen, "\"channel\"", 9) != NULL;
    if (!sb_json_int(args, alen, "\"n\":", &n)) {
        w->st.unexpected++;
        return;
    }
    unsigned want = channel ? t->user / cw->g.csize : t->user;
    if ((uint64_t)n != want) {
        sb_stats_error(&w->st, "a tab of user %u got the probe of %s %lld", t->user,
                       channel ? "channel" : "user", (long long)n);
        return;
    }
    uint8_t before = t->joined;
    t->joined |= channel ? JOINED_CHANNEL : JOINED_USER_ROOM;
    if (before != JOINED_ALL && t->joined == JOINED_ALL && ++cw->joined == w->nclients &&
        !cw->joined_told) {
        cw->joined_told = true;
        sb_worker_send(w, CHAT_MSG_JOINED, NULL, 0);
    }
}

/* Reads the stamp every chat and typing event carries; false after
 * counting an error. */
static bool read_stamp(sb_worker_t *w, const char *what, const char *args, size_t alen,
                       int64_t *seq, int64_t *pub, int64_t *ts)
{
    if (sb_json_int(args, alen, "\"seq\":", seq) && sb_json_int(args, alen, "\"pub\":", pub) &&
        sb_json_int(args, alen, "\"ts\":", ts) && *seq >= 0 && *pub >= 0 && *ts >= 0)
        return true;
    sb_stats_error(&w->st, "a %s event without seq, pub and ts: %.*s", what,
                   (int)(alen < 160 ? alen : 160), args);
    return false;
}

/* Checks seq against *last (the last one seen, SB_SEQ_NONE: none yet) and
 * counts a delivery of kind (X_*_DELIVERED) into w->st and hist. A seq at
 * or below the last is a repeat and not counted; one past a gap counts,
 * with the gap as disorder (its messages end up missing). */
static bool count_delivery(sb_worker_t *w, uint32_t *last, int64_t seq, int64_t ts, int kind,
                           sb_hist_t *hist, size_t alen, uint64_t now)
{
    chat_worker_t *cw = w->state;
    if (!cw->win.t0 || (uint64_t)ts < cw->win.t0) {
        w->st.late++;
        return false;
    }
    if (*last != SB_SEQ_NONE && (uint64_t)seq <= *last) {
        w->st.disordered++;
        return false;
    }
    if ((uint64_t)seq != (*last == SB_SEQ_NONE ? 0 : (uint64_t)*last + 1))
        w->st.disordered++;
    *last = (uint32_t)seq;
    w->st.delivered++;
    w->st.extra[kind]++;
    w->st.bytes += alen;
    if (!w->st.first_ns)
        w->st.first_ns = now;
    w->st.last_ns = now;
    sb_hist_add(hist, now > (uint64_t)ts ? (now - (uint64_t)ts) / 1000 : 0);
    return true;
}

static void on_token(sb_worker_t *w, tab_t *t, const char *args, size_t alen, uint64_t now)
{
    chat_worker_t *cw = w->state;
    int64_t seq, pub, ts;
    if (!read_stamp(w, "chat", args, alen, &seq, &pub, &ts))
        return;
    if ((uint64_t)pub != t->user) {
        sb_stats_error(&w->st, "a tab of user %u got a token of user %lld", t->user,
                       (long long)pub);
        return;
    }
    if (cw->reply.tokens && !sb_reply_check(&cw->reply, (uint64_t)seq, args, alen)) {
        sb_stats_error(&w->st, "token %lld of user %u does not carry the reply so far: %.*s",
                       (long long)seq, t->user, (int)(alen < 160 ? alen : 160), args);
        return;
    }
    if (count_delivery(w, &t->last_seq, seq, ts, X_CHAT_DELIVERED, &w->st.latency, alen, now)) {
        t->chat_got++;
        check_complete(cw, t);
    }
}

static void on_typing(sb_worker_t *w, unsigned i, const char *args, size_t alen, uint64_t now)
{
    chat_worker_t *cw = w->state;
    tab_t *t = &cw->tabs[i];
    int64_t seq, pub, ts;
    if (!read_stamp(w, "typing", args, alen, &seq, &pub, &ts))
        return;
    unsigned channel = t->user / cw->g.csize;
    if ((uint64_t)pub / cw->g.csize != channel || (uint64_t)pub >= cw->g.users) {
        sb_stats_error(&w->st, "a tab in channel %u got typing from user %lld", channel,
                       (long long)pub);
        return;
    }
    uint32_t *last = &cw->typing_last[(size_t)i * cw->g.csize + (unsigned)pub % cw->g.csize];
    if (count_delivery(w, last, seq, ts, X_TYPING_DELIVERED, &w->st.latency2, alen, now)) {
        t->typing_got++;
        check_complete(cw, t);
    }
}

static bool is_event(const char *name, size_t nlen, const char *want)
{
    return nlen == strlen(want) && !memcmp(name, want, nlen);
}

static void chat_message(sb_worker_t *w, sb_client_t *c, const char *name, size_t nlen,
                         const char *args, size_t alen, uint64_t now)
{
    chat_worker_t *cw = w->state;
    unsigned i = sb_worker_client_index(w, c);
    if (is_event(name, nlen, "chat-events"))
        on_token(w, &cw->tabs[i], args, alen, now);
    else if (is_event(name, nlen, "channel-events"))
        on_typing(w, i, args, alen, now);
    else if (is_event(name, nlen, "bench-probe"))
        on_probe(w, &cw->tabs[i], args, alen);
    else
        w->st.unexpected++; /* presence and the like: not ours */
}

/* Emits the typing events that are due: user u's n-th at
 * t0 + (n U + u) / (U rate), from its first tab, for the users whose
 * first tab this worker holds. */
static void typing_tick(sb_timer_t *tm, uint64_t now)
{
    sb_worker_t *w = tm->arg;
    chat_worker_t *cw = w->state;
    const geom_t *g = &cw->g;
    double ns_per = 1e9 / ((double)g->users * w->o->typing_rate);
    unsigned ua = cw->first_user, ub = cw->first_user + cw->nusers;
    /* Users whose first tab is another worker's are not ours to type. */
    if (ua < ub && first_tab(g, ua) < w->first)
        ua++;
    while (ua < ub) {
        uint64_t j = cw->typing_n * g->users + cw->typing_u;
        if (j >= cw->win.typing_total)
            return;
        uint64_t due = cw->win.t0 + (uint64_t)((double)j * ns_per);
        if (due > now) {
            sb_timer_start(w->loop, tm, due);
            return;
        }
        unsigned u = cw->typing_u;
        sb_client_t *c = &w->clients[first_tab(g, u) - w->first];
        sb_buf_reset(&cw->args);
        sb_buf_printf(
            &cw->args,
            "{\"channel_id\":\"%s-c%u\",\"message_id\":null,\"data\":{\"type\":\"typing\","
            "\"data\":{\"typing\":true,\"seq\":%llu,\"pub\":%u,\"ts\":%llu}}}",
            w->o->user, u / g->csize, (unsigned long long)cw->typing_n, u,
            (unsigned long long)sb_now_ns());
        if (sb_client_emit(c, "channel-events", sb_buf_head(&cw->args), sb_buf_avail(&cw->args),
                           -1) == 0)
            w->st.sent++;
        else
            sb_stats_error(&w->st, "user %u: typing not sent: its first tab is not connected", u);
        if (++cw->typing_u == ub) {
            cw->typing_u = ua;
            cw->typing_n++;
        }
    }
}

static void chat_begin(sb_worker_t *w, const void *arg, size_t n)
{
    chat_worker_t *cw = w->state;
    const geom_t *g = &cw->g;
    memset(&cw->win, 0, sizeof(cw->win));
    memcpy(&cw->win, arg, n < sizeof(cw->win) ? n : sizeof(cw->win));
    cw->complete = 0;
    for (unsigned i = 0; i < w->nclients; i++) {
        tab_t *t = &cw->tabs[i];
        unsigned channel = t->user / g->csize;
        unsigned m0 = channel * g->csize, m1 = m0 + g->csize < g->users ? m0 + g->csize : g->users;
        t->chat_got = t->typing_got = 0;
        t->complete = false;
        t->chat_want = (uint32_t)(share_of(cw->win.bursts, g->users, t->user) * cw->win.burst);
        t->typing_want = 0;
        for (unsigned m = m0; m < m1; m++)
            t->typing_want += (uint32_t)share_of(cw->win.typing_total, g->users, m);
        check_complete(cw, t);
    }
    cw->typing_n = 0;
    cw->typing_u = cw->first_user;
    if (cw->nusers && first_tab(g, cw->first_user) < w->first)
        cw->typing_u++;
    if (cw->win.typing_total && w->o->typing_rate > 0)
        sb_timer_start(w->loop, &cw->typing_timer, cw->win.t0);
}

static void chat_end(sb_worker_t *w, const void *arg, size_t n)
{
    chat_worker_t *cw = w->state;
    sb_timer_stop(w->loop, &cw->typing_timer);
    for (unsigned i = 0; i < w->nclients; i++) {
        if (!sb_client_is_ready(&w->clients[i]))
            continue;
        const tab_t *t = &cw->tabs[i];
        w->st.extra[X_CHAT_EXPECTED] += t->chat_want;
        w->st.extra[X_TYPING_EXPECTED] += t->typing_want;
    }
    w->st.expected = w->st.extra[X_CHAT_EXPECTED] + w->st.extra[X_TYPING_EXPECTED];
}

static bool chat_done(sb_worker_t *w)
{
    chat_worker_t *cw = w->state;
    return cw->complete >= w->st.connected;
}

static void chat_stats(sb_worker_t *w)
{
    chat_worker_t *cw = w->state;
    for (unsigned i = 0; i < w->nclients; i++) {
        const tab_t *t = &cw->tabs[i];
        if (!sb_client_is_ready(&w->clients[i]))
            continue;
        if (t->chat_got < t->chat_want)
            w->st.extra[X_CHAT_MISSING] += t->chat_want - t->chat_got;
        if (t->typing_got < t->typing_want)
            w->st.extra[X_TYPING_MISSING] += t->typing_want - t->typing_got;
    }
    w->st.missing = w->st.extra[X_CHAT_MISSING] + w->st.extra[X_TYPING_MISSING];
}

/* ---- parent side ---- */

/* The bodies: probes (rate mode) and tokens (pull mode). */
typedef struct chat_run {
    const sb_opts_t *o;
    geom_t g;
    unsigned joined_workers;
    bool *joined; /* [worker] */
    uint64_t probe_next;
    /* tokens */
    uint64_t t0, bursts;
    unsigned burst;
    double ns_per_burst;
    uint64_t *next; /* [publisher connection]: its next burst ... */
    unsigned *pos;  /* ... and the next token in it */
    uint64_t tokens_sent, requests, max_lag_ns;
    bool redis;       /* the publisher is on Redis: one pub/sub emit per call */
    sb_reply_t reply; /* --reply-tokens: the content tokens carry */
} chat_run_t;

static void chat_coord_message(sb_coord_t *co, unsigned index, uint32_t type, const void *p,
                               size_t n)
{
    chat_run_t *cr = co->state;
    if (type == CHAT_MSG_JOINED && !cr->joined[index]) {
        cr->joined[index] = true;
        cr->joined_workers++;
    }
}

static bool all_joined(void *arg)
{
    sb_coord_t *co = arg;
    chat_run_t *cr = co->state;
    return cr->joined_workers == co->nworkers;
}

/* Probe i: channel i first, then user i - channels. */
static void probe_body(void *arg, sb_buf_t *out, uint32_t pub, uint64_t seq, uint64_t t_ns)
{
    chat_run_t *cr = arg;
    uint64_t i = cr->probe_next++;
    unsigned nch = channels_of(&cr->g);
    bool channel = i < nch;
    unsigned n = (unsigned)(channel ? i : i - nch);
    if (cr->redis) {
        sb_pub_emit_head(out, "bench-probe");
        sb_buf_printf(out, "{\"kind\":\"%s\",\"n\":%u}", channel ? "channel" : "user", n);
        if (channel)
            sb_pub_emit_tail(out, "channel:%s-c%u", cr->o->user, n);
        else
            sb_pub_emit_tail(out, "user:%s-%u", cr->o->user, n);
    } else if (channel)
        sb_buf_printf(out,
                      "{\"event\":\"bench-probe\",\"data\":{\"kind\":\"channel\",\"n\":%u},"
                      "\"to\":{\"room\":\"channel:%s-c%u\"}}",
                      n, cr->o->user, n);
    else
        sb_buf_printf(out,
                      "{\"event\":\"bench-probe\",\"data\":{\"kind\":\"user\",\"n\":%u},"
                      "\"to\":{\"room\":\"user:%s-%u\"}}",
                      n, cr->o->user, n);
}

/* The tick at or after burst j's due time. */
static uint64_t burst_due(const chat_run_t *cr, uint64_t j)
{
    double ticks = ceil((double)j * cr->ns_per_burst / (double)TICK_NS - 1e-9);
    return cr->t0 + (uint64_t)ticks * TICK_NS;
}

/* The burst after j on the same publisher connection (user u mod K). */
static uint64_t burst_after(const chat_run_t *cr, uint64_t j)
{
    unsigned users = cr->g.users, k = cr->o->publishers;
    uint64_t u = j % users;
    if (u + k < users)
        return j + k;
    return (j / users + 1) * users + u % k;
}

/* Appends token seq of user u's event data, {type, data}: the stamp, then
 * the content, last, so that a tab reads the stamp without scanning the
 * text. */
static void token_data(sb_buf_t *out, const chat_run_t *cr, uint64_t seq, unsigned u, uint64_t now)
{
    sb_buf_printf(out,
                  "{\"type\":\"chat:completion\",\"data\":{\"seq\":%llu,\"pub\":%u,\"ts\":%llu,"
                  "\"content\":\"",
                  (unsigned long long)seq, u, (unsigned long long)now);
    if (cr->reply.tokens) {
        const char *text;
        size_t n = sb_reply_content(&cr->reply, seq, &text);
        sb_buf_append(out, text, n);
    } else {
        sb_buf_puts(out, " tok");
    }
    sb_buf_puts(out, "\"}}");
}

static int token_pull(void *arg, unsigned conn, sb_buf_t *out, uint64_t now, uint64_t *wake)
{
    chat_run_t *cr = arg;
    const sb_opts_t *o = cr->o;
    uint64_t j = cr->next[conn];
    unsigned pos = cr->pos[conn];
    if (j >= cr->bursts)
        return -1;
    uint64_t due = burst_due(cr, j);
    if (due > now) {
        *wake = due;
        return 0;
    }
    if (now - due > cr->max_lag_ns)
        cr->max_lag_ns = now - due;
    if (cr->redis) {
        /* One token, one emit, as a backend's emitter publishes it. */
        unsigned u = (unsigned)(j % cr->g.users);
        uint64_t seq = j / cr->g.users * cr->burst + pos;
        sb_pub_emit_head(out, "chat-events");
        sb_buf_printf(out, "{\"chat_id\":\"chat-%u\",\"message_id\":\"msg-%u\",\"data\":", u, u);
        token_data(out, cr, seq, u, now);
        sb_buf_puts(out, "}");
        sb_pub_emit_tail(out, "user:%s-%u", o->user, u);
        if (++pos == cr->burst) {
            pos = 0;
            j = burst_after(cr, j);
        }
        cr->next[conn] = j;
        cr->pos[conn] = pos;
        cr->tokens_sent++;
        cr->requests++;
        return 1;
    }
    bool array = o->batch > 1;
    unsigned items = 0;
    if (array)
        sb_buf_puts(out, "[");
    while (j < cr->bursts && items < o->batch && burst_due(cr, j) <= now) {
        unsigned u = (unsigned)(j % cr->g.users);
        uint64_t seq = j / cr->g.users * cr->burst + pos;
        sb_buf_printf(out,
                      "%s{\"user_id\":\"%s-%u\",\"chat_id\":\"chat-%u\",\"message_id\":\"msg-%u\","
                      "\"data\":",
                      items ? "," : "", o->user, u, u, u);
        token_data(out, cr, seq, u, now);
        sb_buf_puts(out, "}");
        items++;
        if (++pos == cr->burst) {
            pos = 0;
            j = burst_after(cr, j);
        }
    }
    if (array)
        sb_buf_puts(out, "]");
    cr->next[conn] = j;
    cr->pos[conn] = pos;
    cr->tokens_sent += items;
    cr->requests++;
    return 1;
}

static void chat_complete(sb_opts_t *o, bool clients_set)
{
    if (!o->secret || o->token)
        sb_cli_bad("chat mints a token per user: give --secret (and no --token)");
    if (o->channel_size > MAX_CHANNEL_SIZE)
        sb_cli_bad("chat: --channel-size %u is over %u", o->channel_size, MAX_CHANNEL_SIZE);
    geom_t g = geom_of(o);
    uint64_t n = first_tab(&g, g.users);
    if (n > 10000000)
        sb_cli_bad("chat: %llu tabs are too many", (unsigned long long)n);
    if (clients_set && o->clients != n)
        sb_cli_bad("chat: the clients are --users x --tabs (%llu here); leave --clients out",
                   (unsigned long long)n);
    o->clients = (unsigned)n;
}

/* Emits the probes until every tab got its two, or the connect bound. */
static int join_all(sb_coord_t *co, sb_pub_t *pub, chat_run_t *cr, unsigned *rounds)
{
    const sb_opts_t *o = co->o;
    uint64_t deadline = sb_now_ns() + (uint64_t)(o->connect_timeout_s * 1e9);
    sb_pub_set_body(pub, "/api/v1/emit", probe_body, cr);
    *rounds = 0;
    while (!all_joined(co) && sb_now_ns() < deadline) {
        cr->probe_next = 0;
        (*rounds)++;
        sb_pub_start(pub, 1e9, channels_of(&cr->g) + (uint64_t)cr->g.users);
        int rc = sb_coord_run_until(co, deadline, sb_pub_is_done, pub);
        if (rc == 0)
            rc = sb_coord_run_until(co, sb_now_ns() + PROBE_WAIT_NS, all_joined, co);
        if (rc < 0)
            return rc;
    }
    return all_joined(co) ? 0 : -ETIMEDOUT;
}

static void report_counts(sb_report_t *r, const char *what, uint64_t delivered, uint64_t expected,
                          uint64_t missing)
{
    char key[40], label[60];
    snprintf(key, sizeof(key), "%s_delivered", what);
    snprintf(label, sizeof(label), "  %s delivered", what);
    sb_report_int(r, key, label, (long long)delivered, NULL);
    snprintf(key, sizeof(key), "%s_expected", what);
    snprintf(label, sizeof(label), "  %s expected", what);
    sb_report_int(r, key, label, (long long)expected, NULL);
    snprintf(key, sizeof(key), "%s_missing", what);
    snprintf(label, sizeof(label), "  %s missing", what);
    sb_report_int(r, key, label, (long long)missing, NULL);
}

static int chat_run(sb_coord_t *co, sb_report_t *r)
{
    const sb_opts_t *o = co->o;
    chat_run_t cr = {.o = o, .g = geom_of(o)};
    cr.joined = sb_xcalloc(o->procs, sizeof(bool));
    cr.next = sb_xcalloc(o->publishers, sizeof(uint64_t));
    cr.pos = sb_xcalloc(o->publishers, sizeof(unsigned));
    co->state = &cr;
    if (o->reply_tokens)
        sb_reply_init(&cr.reply, o->reply_tokens, o->reply_zh ? SB_REPLY_ZH : SB_REPLY_EN);
    sb_pub_t *pub = NULL;
    int exit_rc = 1;
    sb_coord_start(co);
    int rc = sb_coord_wait_connected(co);
    if (!sb_scenario_all_connected(co, r, rc, "tab")) {
        sb_report_bool(r, "ok", NULL, false);
        goto out;
    }
    pub = sb_pub_new(co->loop, o);
    cr.redis = sb_pub_via_redis(pub);
    sb_pub_open(pub);
    rc = sb_coord_run_until(co, sb_now_ns() + (uint64_t)(o->connect_timeout_s * 1e9),
                            sb_pub_is_open, pub);
    unsigned probe_rounds = 0;
    if (rc == 0)
        rc = join_all(co, pub, &cr, &probe_rounds);
    if (rc < 0) {
        sb_scenario_report_head(co, r, -1);
        sb_report_int(r, "errors", NULL, 1, NULL);
        sb_report_note(r, "  %s",
                       rc == -ETIMEDOUT ? "not every tab got its probes (user and channel room)"
                                        : "the publisher could not connect, or a worker died");
        sb_report_bool(r, "ok", NULL, false);
        goto out;
    }

    /* The window. */
    double burst_rate = o->tokens_per_s / o->burst; /* per user */
    window_arg_t win = {.t0 = sb_now_ns() + LEAD_NS,
                        .bursts = stream_total(cr.g.users, burst_rate, o->duration_s),
                        .typing_total = stream_total(cr.g.users, o->typing_rate, o->duration_s),
                        .burst = o->burst};
    win.end = win.t0 + (uint64_t)(o->duration_s * 1e9);
    cr.t0 = win.t0;
    cr.bursts = win.bursts;
    cr.burst = o->burst;
    cr.ns_per_burst = burst_rate > 0 ? 1e9 / ((double)cr.g.users * burst_rate) : 0;
    for (unsigned k = 0; k < o->publishers; k++)
        cr.next[k] = k;
    sb_sample_t s0, s1;
    sb_stats_t st;
    sb_pub_stats_t ps;
    uint32_t counts[SB_MAX_PUBS];
    rc = sb_coord_begin(co, &win, sizeof(win));
    sb_sample_take(&s0, o->pids, o->npids);
    if (rc == 0) {
        sb_pub_start_pull(pub, "/api/v1/chat-events", token_pull, &cr);
        uint64_t bound = win.end + (uint64_t)((o->duration_s + o->drain_timeout_s) * 1e9);
        rc = sb_coord_run_until(co, bound, sb_pub_is_done, pub);
        if (rc == 0)
            rc = sb_coord_run_until(co, win.end, NULL, NULL);
    }
    sb_pub_window(pub, &ps, counts);
    bool pub_done = sb_pub_is_done(pub);
    int erc = sb_coord_end(co, NULL, 0, &st);
    sb_sample_take(&s1, o->pids, o->npids);
    if (rc == 0)
        rc = erc;
    if (rc == 0 && !pub_done)
        sb_stats_error(&st, "the publisher did not finish in time");

    uint64_t last = st.last_ns > win.t0 ? st.last_ns : win.t0;
    double took = (double)(last - win.t0) / 1e9;
    double window_s = took > o->duration_s ? took : o->duration_s;
    /* A window that did not end (a worker gone, or still receiving after
     * the bound) has no stats: that is an error of its own. */
    uint64_t errors = ps.errors + st.errors + st.disordered + st.late + (rc < 0 ? 1 : 0);
    bool ok = rc == 0 && pub_done && st.delivered == st.expected && !st.missing && !st.stalled &&
              errors == 0 && cr.tokens_sent == win.bursts * win.burst &&
              st.connected == (uint64_t)o->clients;

    sb_scenario_report_head(co, r, rc < 0 ? -1 : (long long)st.connected);
    char tabs[32];
    snprintf(tabs, sizeof(tabs), "%u-%u", o->tabs_min, o->tabs_max);
    sb_report_int(r, "users", NULL, cr.g.users, NULL);
    sb_report_str(r, "tabs", "tabs per user", tabs);
    sb_report_int(r, "channel_size", "users per channel", cr.g.csize, NULL);
    sb_report_int(r, "channels", NULL, channels_of(&cr.g), NULL);
    sb_report_num(r, "tokens_per_s", "tokens per user per s", o->tokens_per_s, 2, "/s");
    sb_report_num(r, "typing_rate", "typing per user per s", o->typing_rate, 2, "/s");
    sb_report_int(r, "burst", "tokens per burst", o->burst, NULL);
    if (cr.reply.tokens) {
        sb_report_int(r, "reply_tokens", "tokens per reply (content: the reply so far)",
                      cr.reply.tokens, NULL);
        sb_report_int(r, "reply_bytes", "bytes of a whole reply", cr.reply.end[cr.reply.tokens - 1],
                      NULL);
        sb_report_str(r, "reply_language", "language of the reply", o->reply_zh ? "zh" : "en");
    }
    sb_report_str(r, "publish_via", "tokens published via",
                  cr.redis ? "redis (one pub/sub emit each)" : "HTTP (chat-events arrays)");
    if (!cr.redis) {
        sb_report_int(r, "batch", "tokens per request, at most", o->batch, NULL);
        sb_report_int(r, "publishers", NULL, o->publishers, NULL);
    }
    sb_report_num(r, "duration_s", "window", o->duration_s, 2, "s");
    sb_report_int(r, "probe_rounds", "probe rounds before the window", probe_rounds, NULL);
    sb_report_int(r, "requests", cr.redis ? "PUBLISH commands" : "chat-events requests",
                  (long long)cr.requests, NULL);
    sb_report_int(r, "chat_sent", "tokens sent", (long long)cr.tokens_sent, NULL);
    sb_report_int(r, "typing_sent", "typing events sent", (long long)st.sent, NULL);
    sb_report_int(r, "sent", "messages sent", (long long)(cr.tokens_sent + st.sent), NULL);
    sb_report_int(r, "delivered", NULL, (long long)st.delivered, NULL);
    sb_report_int(r, "expected", NULL, (long long)st.expected, NULL);
    report_counts(r, "chat", st.extra[X_CHAT_DELIVERED], st.extra[X_CHAT_EXPECTED],
                  st.extra[X_CHAT_MISSING]);
    report_counts(r, "typing", st.extra[X_TYPING_DELIVERED], st.extra[X_TYPING_EXPECTED],
                  st.extra[X_TYPING_MISSING]);
    sb_report_num(r, "delivery_rate", "deliveries/s", (double)st.delivered / window_s, 0, "/s");
    sb_report_latency(r, "latency_ms", "chat latency publish -> tab", &st.latency);
    sb_report_latency(r, "typing_latency_ms", "typing latency emit -> tab", &st.latency2);
    sb_report_int(r, "errors", NULL, (long long)errors, NULL);
    sb_report_int(r, "missing", NULL, (long long)st.missing, NULL);
    sb_report_int(r, "disordered", "repeated or out of order", (long long)st.disordered, NULL);
    sb_report_int(r, "unexpected", "other messages", (long long)st.unexpected, NULL);
    sb_report_num(r, "publish_lag_ms_max", "publisher lag, max", (double)cr.max_lag_ns / 1e6, 3,
                  "ms");
    sb_scenario_report_cpu(co, r, NULL, &s0, &s1, st.delivered, "server_cpu_us_per_delivery",
                           "server CPU per delivery", 3);
    sb_report_num(r, "client_cpu_s", "client CPU (workers)", st.cpu_s, 2, "s");
    if (st.first_error[0] || ps.first_error[0])
        sb_report_note(r, "  first error: %s", ps.first_error[0] ? ps.first_error : st.first_error);
    if (rc < 0)
        sb_report_note(r, "  the window did not end: %s",
                       rc == -ETIMEDOUT ? "the tabs were still receiving at the bound"
                                        : strerror(-rc));
    if (st.stalled)
        sb_report_note(r, "  deliveries stopped before every message arrived");
    sb_report_bool(r, "ok", "each token and typing event once, in order", ok);
    exit_rc = ok ? 0 : 1;
out:
    sb_pub_free(pub);
    free(cr.joined);
    free(cr.next);
    free(cr.pos);
    sb_reply_release(&cr.reply);
    co->state = NULL;
    return exit_rc;
}

const sb_scenario_t sb_scenario_chat = {
    .name = "chat",
    .summary =
        "users x tabs, tokens POSTed per tick as arrays, channel typing: deliveries, latency",
    .clients_emit = true,
    .redis = true,
    .default_clients = 0,
    .complete = chat_complete,
    .worker_init = chat_worker_init,
    .worker_release = chat_worker_release,
    .client_ready = chat_ready,
    .client_message = chat_message,
    .window_begin = chat_begin,
    .window_end = chat_end,
    .window_done = chat_done,
    .window_stats = chat_stats,
    .coord_message = chat_coord_message,
    .run = chat_run,
};
