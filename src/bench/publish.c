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
    bool busy;         /* a request waits for its answer (HTTP) */
    uint64_t inflight; /* commands waiting for their reply (Redis) */
    bool failed;       /* could not connect */
    bool was_up;       /* connected since the last open: a loss is not a failed connect */
    bool drained;      /* pull mode: nothing more in this window */
    uint32_t seq;      /* the next message's sequence number */
    uint32_t base;     /* the window's first */
} pub_conn_t;

struct sb_pub {
    const sb_opts_t *o;
    sb_loop_t *loop;
    struct sockaddr_in addr;
    char host[32];
    const char *target;
    char room_json[300]; /* "to" for emit, precomputed */
    bool redis;
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

/* Redis replies to PUBLISH: ":<receivers>\r\n", or "-<error>\r\n". */
static size_t pc_redis_replies(pub_conn_t *pc, const char *d, size_t n)
{
    sb_pub_t *p = pc->pub;
    size_t used = 0;
    while (used < n) {
        const char *line = d + used;
        const char *nl = memchr(line, '\n', n - used);
        if (!nl)
            break;
        size_t len = (size_t)(nl - line) + 1;
        used += len;
        if (!pc->inflight) {
            pub_error(p, "redis: a reply to no command: %.*s", (int)(len < 160 ? len : 160), line);
            continue;
        }
        pc->inflight--;
        if (line[0] == ':' && len > 3 && line[1] != '0')
            p->st.answered++;
        else if (line[0] == ':')
            pub_error(p, "redis: PUBLISH reached no subscriber of '%s'", p->o->redis_channel);
        else
            pub_error(p, "redis: %.*s", (int)(len < 160 ? len - 2 : 160), line);
    }
    return used;
}

static size_t pc_data(sb_conn_t *c, const char *d, size_t n, uint64_t now)
{
    pub_conn_t *pc = c->owner;
    if (pc->pub->redis) {
        size_t used = pc_redis_replies(pc, d, n);
        pub_pump(pc->pub);
        return used;
    }
    long used = sb_http_responses(d, n, pc_answer, pc, now);
    if (used < 0) {
        pub_error(pc->pub, "publisher %u: not an HTTP response with a length", pc->index);
        sb_conn_close(c, false);
        pc->busy = false; /* the error above is this request's */
        used = (long)n;
    }
    pub_pump(pc->pub);
    return (size_t)used;
}

static void pc_closed(sb_conn_t *c, int err)
{
    pub_conn_t *pc = c->owner;
    sb_pub_t *p = pc->pub;
    if (pc->busy || pc->inflight) {
        pub_error(p, "publisher %u: connection lost with a request in flight: %s", pc->index,
                  err ? strerror(err) : "EOF");
        p->st.errors += pc->inflight ? pc->inflight - 1 : 0;
        pc->busy = false;
        pc->inflight = 0;
    } else if (err && !pc->was_up) {
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
    pc->was_up = true;
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
    if (o->redis_port) {
        p->redis = true;
        p->addr.sin_addr = o->redis_addr;
        p->addr.sin_port = htons(o->redis_port);
    }
    snprintf(p->host, sizeof(p->host), "%s:%u", o->host, o->emit_port);
    if (sb_proto_raw(o->protocol))
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

bool sb_pub_via_redis(const sb_pub_t *p)
{
    return p->redis;
}

void sb_pub_emit_head(sb_buf_t *out, const char *event)
{
    sb_buf_printf(out, "{\"method\":\"emit\",\"event\":\"%s\",\"data\":", event);
}

void sb_pub_emit_tail(sb_buf_t *out, const char *room_fmt, ...)
{
    sb_buf_puts(out, ",\"namespace\":\"/\",\"room\":\"");
    va_list ap;
    va_start(ap, room_fmt);
    char room[300];
    vsnprintf(room, sizeof(room), room_fmt, ap);
    va_end(ap);
    sb_buf_puts(out, room);
    sb_buf_puts(out, "\",\"skip_sid\":null,\"callback\":null,\"host_id\":\"siohub-bench\"}");
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

static void pc_open(sb_pub_t *p, pub_conn_t *pc)
{
    pc->was_up = false;
    sb_conn_open(&pc->conn, &p->addr, 0);
}

void sb_pub_open(sb_pub_t *p)
{
    for (unsigned i = 0; i < p->nconns; i++)
        pc_open(p, &p->conns[i]);
}

bool sb_pub_is_open(void *arg)
{
    sb_pub_t *p = arg;
    for (unsigned i = 0; i < p->nconns; i++)
        if (p->conns[i].failed || !sb_conn_is_open(&p->conns[i].conn))
            return p->conns[i].failed;
    return true;
}

/* Appends PUBLISH <channel> <p->body> to pc's output (not written yet). */
static void pub_queue_redis(sb_pub_t *p, pub_conn_t *pc, uint64_t t)
{
    const char *ch = p->o->redis_channel;
    sb_buf_t *b = &p->body;
    sb_buf_printf(&pc->conn.out, "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n$%zu\r\n", strlen(ch), ch,
                  sb_buf_avail(b));
    sb_buf_append(&pc->conn.out, sb_buf_head(b), sb_buf_avail(b));
    sb_buf_puts(&pc->conn.out, "\r\n");
    pc->inflight++;
    pc->seq++;
    p->st.sent++;
    p->st.t_last = t;
}

/* Writes what pc has queued (opening it again if it was lost). */
static void pub_write(sb_pub_t *p, pub_conn_t *pc)
{
    if (pc->conn.state == SB_CONN_CLOSED)
        pc_open(p, pc);
    else
        sb_conn_flush(&pc->conn);
}

/* Writes the request carrying p->body on pc, made at time t. */
static void pub_post(sb_pub_t *p, pub_conn_t *pc, uint64_t t)
{
    const sb_opts_t *o = p->o;
    sb_buf_t *b = &p->body;
    sb_buf_t *out = &pc->conn.out;
    if (p->redis) {
        pub_queue_redis(p, pc, t);
        pub_write(p, pc);
        return;
    }
    sb_buf_printf(out, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\n", p->target, p->host,
                  sb_proto_raw(o->protocol) ? "text/plain" : "application/json");
    if (o->api_key)
        sb_buf_printf(out, "Authorization: Bearer %s\r\n", o->api_key);
    sb_buf_printf(out, "Content-Length: %zu\r\n\r\n", sb_buf_avail(b));
    sb_buf_append(out, sb_buf_head(b), sb_buf_avail(b));
    pc->busy = true;
    pc->seq++;
    p->st.sent++;
    p->st.t_last = t;
    pub_write(p, pc);
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
    } else if (sb_proto_raw(o->protocol)) {
        sb_payload_format(b, pc->seq, pc->index, t, o->size, o->pad_zh);
    } else if (p->redis) {
        bool chat = !strcmp(o->emit_api, "chat-events");
        sb_pub_emit_head(b, chat ? "chat-events" : "bench");
        if (chat)
            sb_buf_puts(b, "{\"chat_id\":\"bench\",\"message_id\":\"bench\",\"data\":");
        sb_payload_format(b, pc->seq, pc->index, t, o->size, o->pad_zh);
        if (chat) {
            sb_buf_puts(b, "}");
            sb_pub_emit_tail(b, "user:%s", o->user);
        } else {
            sb_pub_emit_tail(b, "%s", p->room_json);
        }
    } else if (!strcmp(o->emit_api, "chat-events")) {
        sb_buf_printf(
            b, "{\"user_id\":\"%s\",\"chat_id\":\"bench\",\"message_id\":\"bench\",\"data\":",
            o->user);
        sb_payload_format(b, pc->seq, pc->index, t, o->size, o->pad_zh);
        sb_buf_puts(b, "}");
    } else {
        sb_buf_puts(b, "{\"event\":\"bench\",\"data\":");
        sb_payload_format(b, pc->seq, pc->index, t, o->size, o->pad_zh);
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
        int rc;
        if (p->redis) {
            /* Everything due, in one write. */
            unsigned queued = 0;
            for (;;) {
                sb_buf_reset(&p->body);
                rc = p->pull(p->pull_arg, pc->index, &p->body, now, &at);
                if (rc <= 0)
                    break;
                pub_queue_redis(p, pc, now);
                queued++;
            }
            if (queued)
                pub_write(p, pc);
        } else {
            sb_buf_reset(&p->body);
            rc = p->pull(p->pull_arg, pc->index, &p->body, now, &at);
            if (rc > 0)
                pub_post(p, pc, now);
        }
        if (rc < 0)
            pc->drained = true;
        else if (rc == 0 && at < wake)
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
        if (p->conns[i].busy || p->conns[i].inflight)
            return false;
    return true;
}

void sb_pub_window(const sb_pub_t *p, sb_pub_stats_t *st, uint32_t *count)
{
    *st = p->st;
    for (unsigned i = 0; i < p->nconns; i++)
        count[i] = p->conns[i].seq - p->conns[i].base;
}
