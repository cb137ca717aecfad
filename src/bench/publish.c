/* bench/publish.c — the publisher (see publish.h). */
#include "bench/publish.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/http.h"
#include "bench/payload.h"
#include "bench/util.h"

typedef struct pub_conn {
    sb_conn_t conn;
    sb_pub_t *pub;
    unsigned index;
    bool busy;     /* a request waits for its answer */
    bool failed;   /* could not connect */
    bool drained;  /* pull mode: nothing more in this window */
    uint32_t seq;  /* the next message's sequence number */
    uint32_t base; /* the window's first */
} pub_conn_t;

struct sb_pub {
    const sb_opts_t *o;
    sb_loop_t *loop;
    struct sockaddr_in addr;
    char host[32];
    const char *target;
    char room_json[300]; /* "to" for emit, precomputed */
    sb_pub_body_fn body_fn;
    void *body_arg;
    pub_conn_t *conns;
    unsigned nconns, next;
    sb_timer_t timer;
    /* the window */
    double rate;
    uint64_t count, issued;
    sb_pub_stats_t st;
    sb_buf_t body;
    /* pull mode (sb_pub_start_pull), NULL in a rate window */
    sb_pub_pull_fn pull;
    void *pull_arg;
};

static void pub_pump(sb_pub_t *p);

static void pub_error(sb_pub_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pub_error(sb_pub_t *p, const char *fmt, ...)
{
    p->st.errors++;
    if (p->st.first_error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->st.first_error, sizeof(p->st.first_error), fmt, ap);
    va_end(ap);
}

static bool pc_answer(void *arg, const sb_http_head_t *h, const char *body, size_t blen,
                      uint64_t now)
{
    pub_conn_t *pc = arg;
    sb_pub_t *p = pc->pub;
    if (!pc->busy) {
        pub_error(p, "publisher %u: an answer to no request", pc->index);
        sb_conn_close(&pc->conn, false);
        return false;
    }
    pc->busy = false;
    if (h->status >= 200 && h->status < 300)
        p->st.answered++;
    else
        pub_error(p, "publisher %u: HTTP %d: %.*s", pc->index, h->status,
                  (int)(blen < 160 ? blen : 160), body);
    if (h->close) {
        sb_conn_close(&pc->conn, false); /* reopened for the next message */
        return false;
    }
    return true;
}

static size_t pc_data(sb_conn_t *c, const char *d, size_t n, uint64_t now)
{
    pub_conn_t *pc = c->owner;
    long used = sb_http_responses(d, n, pc_answer, pc, now);
    if (used < 0) {
        pub_error(pc->pub, "publisher %u: not an HTTP response with a length", pc->index);
        sb_conn_close(c, false);
        if (pc->busy) {
            pc->busy = false;
            pc->pub->st.errors++;
        }
        used = (long)n;
    }
    pub_pump(pc->pub);
    return (size_t)used;
}

static void pc_closed(sb_conn_t *c, int err)
{
    pub_conn_t *pc = c->owner;
    sb_pub_t *p = pc->pub;
    if (pc->busy) {
        pub_error(p, "publisher %u: connection lost with a request in flight: %s", pc->index,
                  err ? strerror(err) : "EOF");
        pc->busy = false;
    } else if (err) {
        pub_error(p, "publisher %u: connect: %s", pc->index, strerror(err));
        pc->failed = true;
        return;
    }
    pub_pump(p);
}

static void pc_connected(sb_conn_t *c, uint64_t now)
{
    pub_conn_t *pc = c->owner;
    pc->failed = false;
}

static const sb_conn_ops_t pc_ops = {
    .connected = pc_connected,
    .data = pc_data,
    .closed = pc_closed,
};

static void pub_timer(sb_timer_t *t, uint64_t now)
{
    pub_pump(t->arg);
}

sb_pub_t *sb_pub_new(sb_loop_t *l, const sb_opts_t *o)
{
    sb_pub_t *p = sb_xcalloc(1, sizeof(*p));
    p->o = o;
    p->loop = l;
    p->addr.sin_family = AF_INET;
    p->addr.sin_addr = o->host_addr;
    p->addr.sin_port = htons(o->emit_port);
    snprintf(p->host, sizeof(p->host), "%s:%u", o->host, o->emit_port);
    if (o->protocol == SB_PROTO_RAW_WS)
        p->target = o->pub_path;
    else if (!strcmp(o->emit_api, "chat-events"))
        p->target = "/api/v1/chat-events";
    else
        p->target = "/api/v1/emit";
    snprintf(p->room_json, sizeof(p->room_json), "%s", o->room ? o->room : "");
    p->nconns = o->publishers;
    p->conns = sb_xcalloc(p->nconns, sizeof(*p->conns));
    for (unsigned i = 0; i < p->nconns; i++) {
        pub_conn_t *pc = &p->conns[i];
        sb_conn_init(&pc->conn, l, &pc_ops, pc);
        pc->pub = p;
        pc->index = i;
    }
    p->timer.cb = pub_timer;
    p->timer.arg = p;
    return p;
}

void sb_pub_set_body(sb_pub_t *p, const char *target, sb_pub_body_fn fn, void *arg)
{
    p->target = target;
    p->body_fn = fn;
    p->body_arg = arg;
}

void sb_pub_free(sb_pub_t *p)
{
    if (!p)
        return;
    sb_timer_stop(p->loop, &p->timer);
    for (unsigned i = 0; i < p->nconns; i++)
        sb_conn_release(&p->conns[i].conn);
    free(p->conns);
    sb_buf_release(&p->body);
    free(p);
}

void sb_pub_open(sb_pub_t *p)
{
    for (unsigned i = 0; i < p->nconns; i++)
        sb_conn_open(&p->conns[i].conn, &p->addr, 0);
}

bool sb_pub_is_open(void *arg)
{
    sb_pub_t *p = arg;
    for (unsigned i = 0; i < p->nconns; i++)
        if (p->conns[i].failed || !sb_conn_is_open(&p->conns[i].conn))
            return p->conns[i].failed;
    return true;
}

/* Writes the request carrying p->body on pc, made at time t. */
static void pub_post(sb_pub_t *p, pub_conn_t *pc, uint64_t t)
{
    const sb_opts_t *o = p->o;
    sb_buf_t *b = &p->body;
    sb_buf_t *out = &pc->conn.out;
    sb_buf_printf(out, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\n", p->target, p->host,
                  o->protocol == SB_PROTO_RAW_WS ? "text/plain" : "application/json");
    if (o->api_key)
        sb_buf_printf(out, "Authorization: Bearer %s\r\n", o->api_key);
    sb_buf_printf(out, "Content-Length: %zu\r\n\r\n", sb_buf_avail(b));
    sb_buf_append(out, sb_buf_head(b), sb_buf_avail(b));
    pc->busy = true;
    pc->seq++;
    p->st.sent++;
    p->st.t_last = t;
    if (pc->conn.state == SB_CONN_CLOSED)
        sb_conn_open(&pc->conn, &p->addr, 0);
    else
        sb_conn_flush(&pc->conn);
}

/* Writes message pc->seq on pc. */
static void pub_send(sb_pub_t *p, pub_conn_t *pc)
{
    const sb_opts_t *o = p->o;
    sb_buf_t *b = &p->body;
    sb_buf_reset(b);
    uint64_t t = sb_now_ns();
    if (p->body_fn) {
        p->body_fn(p->body_arg, b, pc->index, pc->seq, t);
    } else if (o->protocol == SB_PROTO_RAW_WS) {
        sb_payload_format(b, pc->seq, pc->index, t, o->size);
    } else if (!strcmp(o->emit_api, "chat-events")) {
        sb_buf_printf(
            b, "{\"user_id\":\"%s\",\"chat_id\":\"bench\",\"message_id\":\"bench\",\"data\":",
            o->user);
        sb_payload_format(b, pc->seq, pc->index, t, o->size);
        sb_buf_puts(b, "}");
    } else {
        sb_buf_puts(b, "{\"event\":\"bench\",\"data\":");
        sb_payload_format(b, pc->seq, pc->index, t, o->size);
        sb_buf_printf(b, ",\"to\":{\"room\":\"%s\"}}", p->room_json);
    }
    pub_post(p, pc, t);
}

/* Pull mode: asks for a body for each idle connection. */
static void pub_pump_pull(sb_pub_t *p)
{
    uint64_t wake = UINT64_MAX;
    for (unsigned i = 0; i < p->nconns; i++) {
        pub_conn_t *pc = &p->conns[i];
        if (pc->busy || pc->failed || pc->drained)
            continue;
        uint64_t now = sb_now_ns(), at = UINT64_MAX;
        sb_buf_reset(&p->body);
        int rc = p->pull(p->pull_arg, pc->index, &p->body, now, &at);
        if (rc > 0)
            pub_post(p, pc, now);
        else if (rc < 0)
            pc->drained = true;
        else if (at < wake)
            wake = at;
    }
    if (wake != UINT64_MAX)
        sb_timer_start(p->loop, &p->timer, wake);
}

/* Sends every message that is due, as far as idle connections allow. */
static void pub_pump(sb_pub_t *p)
{
    if (p->pull) {
        pub_pump_pull(p);
        return;
    }
    while (p->issued < p->count) {
        uint64_t now = sb_now_ns();
        uint64_t due = p->st.t_start + (uint64_t)((double)p->issued * 1e9 / p->rate);
        if (due > now) {
            sb_timer_start(p->loop, &p->timer, due);
            return;
        }
        pub_conn_t *pc = NULL;
        for (unsigned i = 0; i < p->nconns; i++) {
            pub_conn_t *c = &p->conns[(p->next + i) % p->nconns];
            if (!c->busy && !c->failed) {
                pc = c;
                p->next = (unsigned)((c - p->conns) + 1) % p->nconns;
                break;
            }
        }
        if (!pc)
            return; /* behind: the next answer pumps again */
        if (now - due > p->st.max_lag_ns)
            p->st.max_lag_ns = now - due;
        pub_send(p, pc);
        p->issued++;
    }
}

void sb_pub_bases(const sb_pub_t *p, uint32_t *base)
{
    for (unsigned i = 0; i < p->nconns; i++)
        base[i] = p->conns[i].seq;
}

void sb_pub_start(sb_pub_t *p, double rate, uint64_t count)
{
    p->pull = NULL;
    memset(&p->st, 0, sizeof(p->st));
    p->rate = rate > 0 ? rate : 1;
    p->count = count;
    p->issued = 0;
    p->st.t_start = sb_now_ns();
    for (unsigned i = 0; i < p->nconns; i++)
        p->conns[i].base = p->conns[i].seq;
    pub_pump(p);
}

void sb_pub_start_pull(sb_pub_t *p, const char *target, sb_pub_pull_fn fn, void *arg)
{
    memset(&p->st, 0, sizeof(p->st));
    p->target = target;
    p->pull = fn;
    p->pull_arg = arg;
    p->count = p->issued = 0;
    p->st.t_start = sb_now_ns();
    for (unsigned i = 0; i < p->nconns; i++) {
        p->conns[i].base = p->conns[i].seq;
        p->conns[i].drained = false;
    }
    pub_pump(p);
}

bool sb_pub_is_done(void *arg)
{
    sb_pub_t *p = arg;
    for (unsigned i = 0; p->pull && i < p->nconns; i++)
        if (!p->conns[i].drained && !p->conns[i].failed)
            return false;
    if (p->issued < p->count)
        return false;
    for (unsigned i = 0; i < p->nconns; i++)
        if (p->conns[i].busy)
            return false;
    return true;
}

void sb_pub_window(const sb_pub_t *p, sb_pub_stats_t *st, uint32_t *count)
{
    *st = p->st;
    for (unsigned i = 0; i < p->nconns; i++)
        count[i] = p->conns[i].seq - p->conns[i].base;
}
