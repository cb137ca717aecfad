/* siohub-bench's publisher (src/bench/publish.c), run by the bench's own
 * loop against peers on 127.0.0.1: an HTTP server in a thread of the test
 * that records every request and answers from a script (200, 500, a
 * closed or reset connection, an answer in pieces, twice, or without a
 * length), a real redis-server (tests/lib/redis_server.h) with a hiredis
 * subscriber, and the same thread speaking Redis's protocol for replies a
 * real server does not send on demand.
 *
 * The publisher stands in for Open WebUI's backend, so what matters is
 * what arrives: over HTTP exactly the messages of a window, each a valid
 * request with the documented body and key, each publisher's sequence
 * numbers in order on its own connection; over Redis python-socketio's
 * pub/sub emit, read back by siohubd's own parser and router
 * (adapter/pubsub_msg.h, adapter/pubsub_route.h). And what it reports:
 * sent, answered and errors that add up whatever the peer does, and the
 * first error in words, since a benchmark result is only as good as its
 * count of failures. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "../lib/redis_server.h"
#include "adapter/pubsub_msg.h"
#include "adapter/pubsub_route.h"
#include "bench/buf.h"
#include "bench/cli.h"
#include "bench/loop.h"
#include "bench/payload.h"
#include "bench/publish.h"
#include "bench/util.h"

#define WAIT_NS    (5ull * 1000000000ull)
#define MAX_ARGS   32
#define MAX_REQS   256
#define MAX_SCONNS 64

/* ---- the peer: an HTTP (or Redis protocol) server in a thread ---- */

typedef enum {
    ANS_OK,      /* 200 with a body; Redis ":1" */
    ANS_FAIL,    /* 500 "boom"; Redis "-ERR boom" */
    ANS_CLOSE,   /* 200 with Connection: close, then FIN */
    ANS_OK_FIN,  /* 200 keep-alive, then FIN anyway */
    ANS_DROP,    /* no answer, FIN */
    ANS_RESET,   /* no answer, RST */
    ANS_SPLIT,   /* 200 (Redis ":1") in two writes */
    ANS_TWICE,   /* 200 (Redis ":1") twice */
    ANS_GARBAGE, /* a response with neither length nor chunking */
    ANS_NOBODY,  /* Redis ":0": nobody subscribes */
    ANS_MANY,    /* Redis ":12" */
} answer_t;

typedef struct req {
    unsigned conn; /* the server side connection, in accept order */
    /* HTTP: the request line's parts; Redis: command name and channel */
    char method[16], target[128], version[16];
    char host[64], ctype[64], auth[128];
    bool has_auth;
    long clen; /* Content-Length, -1: none */
    char *body;
    size_t blen;
} req_t;

typedef struct sconn {
    int fd;
    unsigned id;
    bool discard; /* answered for the last time: what comes is dropped */
    char *in;
    size_t len;
} sconn_t;

typedef struct srv {
    bool redis;
    const answer_t *script; /* answer i to request i; ANS_OK past nscript */
    unsigned nscript;
    int lfd, stopfd;
    uint16_t port;
    pthread_t th;
    bool running;
    sconn_t conns[MAX_SCONNS];
    unsigned nconns;
    /* shared with the test's thread, under mu */
    pthread_mutex_t mu;
    req_t reqs[MAX_REQS];
    unsigned nreqs;
    unsigned peer_closed; /* connections the publisher closed */
    char bad[200];        /* the first thing that was not a valid request */
} srv_t;

static void srv_bad(srv_t *s, const char *what)
{
    pthread_mutex_lock(&s->mu);
    if (!s->bad[0])
        snprintf(s->bad, sizeof(s->bad), "%s", what);
    pthread_mutex_unlock(&s->mu);
}

static void copy_field(char *dst, size_t cap, const char *p, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, p, n);
    dst[n] = '\0';
}

/* One request from c->in into r: its length, 0 while incomplete, -1 when
 * malformed. Strict about what the publisher must send. */
static long http_request(srv_t *s, sconn_t *c, req_t *r)
{
    const char *in = c->in;
    const char *end = memmem(in, c->len, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t head = (size_t)(end - in) + 4;
    const char *eol = memmem(in, head, "\r\n", 2);
    const char *sp1 = memchr(in, ' ', (size_t)(eol - in));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp2) {
        srv_bad(s, "bad request line");
        return -1;
    }
    copy_field(r->method, sizeof(r->method), in, (size_t)(sp1 - in));
    copy_field(r->target, sizeof(r->target), sp1 + 1, (size_t)(sp2 - sp1 - 1));
    copy_field(r->version, sizeof(r->version), sp2 + 1, (size_t)(eol - sp2 - 1));
    r->clen = -1;
    for (const char *line = eol + 2; line < end + 2;) {
        const char *le = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
        const char *colon = memchr(line, ':', (size_t)(le - line));
        if (!colon) {
            srv_bad(s, "header without a colon");
            return -1;
        }
        size_t nlen = (size_t)(colon - line);
        const char *v = colon + 1;
        while (v < le && *v == ' ')
            v++;
        size_t vlen = (size_t)(le - v);
        if (nlen == 4 && !strncasecmp(line, "Host", 4)) {
            copy_field(r->host, sizeof(r->host), v, vlen);
        } else if (nlen == 12 && !strncasecmp(line, "Content-Type", 12)) {
            copy_field(r->ctype, sizeof(r->ctype), v, vlen);
        } else if (nlen == 13 && !strncasecmp(line, "Authorization", 13)) {
            copy_field(r->auth, sizeof(r->auth), v, vlen);
            r->has_auth = true;
        } else if (nlen == 14 && !strncasecmp(line, "Content-Length", 14)) {
            char num[24];
            copy_field(num, sizeof(num), v, vlen);
            char *numend;
            r->clen = strtol(num, &numend, 10);
            if (!num[0] || *numend || r->clen < 0) {
                srv_bad(s, "bad Content-Length");
                return -1;
            }
        }
        line = le + 2;
    }
    if (r->clen < 0) {
        srv_bad(s, "no Content-Length");
        return -1;
    }
    if (c->len < head + (size_t)r->clen)
        return 0;
    r->blen = (size_t)r->clen;
    r->body = malloc(r->blen + 1);
    memcpy(r->body, in + head, r->blen);
    r->body[r->blen] = '\0';
    return (long)(head + r->blen);
}

/* A RESP line "<type><integer>\r\n" at *p: 1 with *val, 0 incomplete, -1
 * malformed. */
static int resp_int(const char **p, const char *end, char type, long *val)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    if (!nl)
        return 0;
    if (**p != type || nl - *p < 3 || nl[-1] != '\r')
        return -1;
    char *numend;
    *val = strtol(*p + 1, &numend, 10);
    if (numend != nl - 1 || *val < 0)
        return -1;
    *p = nl + 1;
    return 1;
}

/* One command "*3 $PUBLISH $channel $body" from c->in into r (method,
 * target, body); same returns as http_request. */
static long resp_command(srv_t *s, sconn_t *c, req_t *r)
{
    const char *p = c->in, *end = c->in + c->len;
    const char *arg[3];
    long n = 0, alen[3];
    int rc = resp_int(&p, end, '*', &n);
    if (rc == 0)
        return 0;
    if (rc < 0 || n != 3)
        goto bad;
    for (int i = 0; i < 3; i++) {
        rc = resp_int(&p, end, '$', &alen[i]);
        if (rc == 0)
            return 0;
        if (rc < 0)
            goto bad;
        if (end - p < alen[i] + 2)
            return 0;
        if (p[alen[i]] != '\r' || p[alen[i] + 1] != '\n')
            goto bad;
        arg[i] = p;
        p += alen[i] + 2;
    }
    copy_field(r->method, sizeof(r->method), arg[0], (size_t)alen[0]);
    copy_field(r->target, sizeof(r->target), arg[1], (size_t)alen[1]);
    r->clen = alen[2];
    r->blen = (size_t)alen[2];
    r->body = malloc(r->blen + 1);
    memcpy(r->body, arg[2], r->blen);
    r->body[r->blen] = '\0';
    return (long)(p - c->in);
bad:
    srv_bad(s, "not a RESP command of three bulk strings");
    return -1;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* the publisher went away: it finds out itself */
        p += w;
        n -= (size_t)w;
    }
}

static void send_str(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

/* Writes s in two pieces with a pause between, so that the publisher
 * reads the first alone. */
static void send_split(int fd, const char *s, size_t first)
{
    send_all(fd, s, first);
    usleep(20000);
    send_all(fd, s + first, strlen(s) - first);
}

static void srv_answer(srv_t *s, sconn_t *c, answer_t a)
{
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             "Content-Length: 2\r\n\r\n{}";
    const char *one = s->redis ? ":1\r\n" : ok;
    switch (a) {
    case ANS_OK:
        send_str(c->fd, one);
        break;
    case ANS_FAIL:
        send_str(c->fd, s->redis ? "-ERR boom\r\n"
                                 : "HTTP/1.1 500 Internal Server Error\r\n"
                                   "Content-Length: 4\r\n\r\nboom");
        break;
    case ANS_CLOSE:
        send_str(c->fd, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}");
        shutdown(c->fd, SHUT_WR);
        c->discard = true;
        break;
    case ANS_OK_FIN:
        send_str(c->fd, one);
        shutdown(c->fd, SHUT_WR);
        c->discard = true;
        break;
    case ANS_DROP:
        shutdown(c->fd, SHUT_WR);
        c->discard = true;
        break;
    case ANS_RESET: {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(c->fd);
        c->fd = -1;
        break;
    }
    case ANS_SPLIT:
        send_split(c->fd, one, s->redis ? 3 : 20);
        break;
    case ANS_TWICE: {
        char two[256];
        snprintf(two, sizeof(two), "%s%s", one, one);
        send_str(c->fd, two);
        break;
    }
    case ANS_GARBAGE:
        send_str(c->fd, "HTTP/1.1 200 OK\r\n\r\n");
        c->discard = true;
        break;
    case ANS_NOBODY:
        send_str(c->fd, ":0\r\n");
        break;
    case ANS_MANY:
        send_str(c->fd, ":12\r\n");
        break;
    }
}

static void srv_readable(srv_t *s, sconn_t *c)
{
    char tmp[65536];
    ssize_t r = recv(c->fd, tmp, sizeof(tmp), 0);
    if (r <= 0) {
        close(c->fd);
        c->fd = -1;
        pthread_mutex_lock(&s->mu);
        s->peer_closed++;
        pthread_mutex_unlock(&s->mu);
        return;
    }
    if (c->discard)
        return;
    c->in = realloc(c->in, c->len + (size_t)r);
    memcpy(c->in + c->len, tmp, (size_t)r);
    c->len += (size_t)r;
    while (c->fd >= 0 && !c->discard) {
        req_t rq = {.conn = c->id};
        long used = s->redis ? resp_command(s, c, &rq) : http_request(s, c, &rq);
        if (used < 0)
            c->discard = true;
        if (used <= 0)
            break;
        memmove(c->in, c->in + used, c->len - (size_t)used);
        c->len -= (size_t)used;
        pthread_mutex_lock(&s->mu);
        unsigned idx = s->nreqs;
        if (idx < MAX_REQS)
            s->reqs[s->nreqs++] = rq;
        pthread_mutex_unlock(&s->mu);
        if (idx >= MAX_REQS) {
            free(rq.body);
            srv_bad(s, "too many requests");
            c->discard = true;
            break;
        }
        srv_answer(s, c, idx < s->nscript ? s->script[idx] : ANS_OK);
    }
}

static void *srv_main(void *arg)
{
    srv_t *s = arg;
    for (;;) {
        struct pollfd pf[2 + MAX_SCONNS];
        unsigned which[MAX_SCONNS];
        nfds_t n = 0;
        pf[n++] = (struct pollfd){.fd = s->stopfd, .events = POLLIN};
        pf[n++] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
        for (unsigned i = 0; i < s->nconns; i++) {
            if (s->conns[i].fd < 0)
                continue;
            which[n - 2] = i;
            pf[n++] = (struct pollfd){.fd = s->conns[i].fd, .events = POLLIN};
        }
        if (poll(pf, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            srv_bad(s, "poll failed");
            return NULL;
        }
        if (pf[0].revents)
            return NULL;
        if (pf[1].revents & POLLIN) {
            int fd = accept(s->lfd, NULL, NULL);
            if (fd >= 0 && s->nconns < MAX_SCONNS) {
                sconn_t *c = &s->conns[s->nconns];
                c->fd = fd;
                c->id = s->nconns++;
            } else if (fd >= 0) {
                close(fd);
                srv_bad(s, "too many connections");
            }
        }
        for (nfds_t k = 2; k < n; k++)
            if (pf[k].revents)
                srv_readable(s, &s->conns[which[k - 2]]);
    }
}

static srv_t *srv_start(bool redis, const answer_t *script, unsigned nscript)
{
    srv_t *s = calloc(1, sizeof(*s));
    ck_assert_ptr_nonnull(s);
    s->redis = redis;
    s->script = script;
    s->nscript = nscript;
    pthread_mutex_init(&s->mu, NULL);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(s->lfd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(s->lfd, 64), 0);
    socklen_t al = sizeof(a);
    ck_assert_int_eq(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    s->stopfd = eventfd(0, 0);
    ck_assert_int_ge(s->stopfd, 0);
    ck_assert_int_eq(pthread_create(&s->th, NULL, srv_main, s), 0);
    s->running = true;
    return s;
}

/* Resets every connection (RST, as a server or a middlebox dropping an
 * idle keep-alive connection does) with the thread paused, so that no
 * socket is touched by two threads. */
static void srv_reset_all(srv_t *s)
{
    uint64_t one = 1;
    ck_assert_int_eq(write(s->stopfd, &one, sizeof(one)), (ssize_t)sizeof(one));
    pthread_join(s->th, NULL);
    ck_assert_int_eq(read(s->stopfd, &one, sizeof(one)), (ssize_t)sizeof(one));
    for (unsigned i = 0; i < s->nconns; i++) {
        sconn_t *c = &s->conns[i];
        if (c->fd < 0)
            continue;
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(c->fd);
        c->fd = -1;
    }
    ck_assert_int_eq(pthread_create(&s->th, NULL, srv_main, s), 0);
}

/* Stops the thread and closes every socket (the listening one too: a
 * connect then is refused); what was recorded stays. */
static void srv_stop(srv_t *s)
{
    if (!s->running)
        return;
    uint64_t one = 1;
    ck_assert_int_eq(write(s->stopfd, &one, sizeof(one)), (ssize_t)sizeof(one));
    pthread_join(s->th, NULL);
    s->running = false;
    close(s->lfd);
    close(s->stopfd);
    for (unsigned i = 0; i < s->nconns; i++) {
        if (s->conns[i].fd >= 0)
            close(s->conns[i].fd);
        free(s->conns[i].in);
    }
}

static void srv_free(srv_t *s)
{
    srv_stop(s);
    for (unsigned i = 0; i < s->nreqs; i++)
        free(s->reqs[i].body);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static unsigned srv_nreqs(srv_t *s)
{
    pthread_mutex_lock(&s->mu);
    unsigned n = s->nreqs;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Requests whose body starts with prefix. */
static unsigned srv_count_prefix(srv_t *s, const char *prefix)
{
    unsigned n = 0;
    pthread_mutex_lock(&s->mu);
    for (unsigned i = 0; i < s->nreqs; i++)
        if (!strncmp(s->reqs[i].body, prefix, strlen(prefix)))
            n++;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void srv_assert_clean(srv_t *s)
{
    ck_assert_msg(!s->bad[0], "the server saw: %s", s->bad);
}

/* ---- the publisher, built as siohub-bench builds it ---- */

typedef struct fx {
    sb_opts_t o;
    int argc;
    char *argv[MAX_ARGS + 1];
    sb_loop_t *loop;
    sb_pub_t *pub;
    /* the window's figures, as the last fx_window or fx_read_window read them */
    sb_pub_stats_t st;
    uint32_t counts[SB_MAX_PUBS];
} fx_t;

static void fx_arg(fx_t *f, const char *arg)
{
    ck_assert_int_lt(f->argc, MAX_ARGS);
    f->argv[f->argc++] = strdup(arg);
}

/* Parses "siohub-bench fanout", the arguments in head (NULL-terminated)
 * and those in ap (up to a NULL), and makes a loop and a publisher. */
static void fx_vinit(fx_t *f, const char *const *head, va_list ap)
{
    memset(f, 0, sizeof(*f));
    fx_arg(f, "siohub-bench");
    fx_arg(f, "fanout");
    for (; *head; head++)
        fx_arg(f, *head);
    for (const char *a; (a = va_arg(ap, const char *));)
        fx_arg(f, a);
    optind = 0; /* getopt_long's state is global: start over */
    sb_cli_parse(&f->o, f->argc, f->argv);
    f->loop = sb_loop_new(1);
    f->pub = sb_pub_new(f->loop, &f->o);
}

static char *port_str(char *buf, size_t cap, unsigned port)
{
    snprintf(buf, cap, "%u", port);
    return buf;
}

static const char *redis_addr(char *buf, size_t cap, unsigned port)
{
    snprintf(buf, cap, "127.0.0.1:%u", port);
    return buf;
}

/* fanout's publisher for an HTTP server on port: "--port <port>" and the
 * further arguments (NULL-terminated). Not yet open. */
static void fx_init_http(fx_t *f, unsigned port, ...)
{
    char num[8];
    const char *head[] = {"--port", port_str(num, sizeof(num), port), NULL};
    va_list ap;
    va_start(ap, port);
    fx_vinit(f, head, ap);
    va_end(ap);
}

/* fanout's publisher for the Redis on redis_port, with the further
 * arguments (NULL-terminated); its subscribers' --port has nobody. Not
 * yet open. */
static void fx_init_redis(fx_t *f, unsigned redis_port, ...)
{
    char num[8], addr[32];
    const char *head[] = {"--port", port_str(num, sizeof(num), th_free_port()), "--redis",
                          redis_addr(addr, sizeof(addr), redis_port), NULL};
    va_list ap;
    va_start(ap, redis_port);
    fx_vinit(f, head, ap);
    va_end(ap);
}

static void fx_release(fx_t *f)
{
    sb_pub_free(f->pub);
    sb_loop_free(f->loop);
    sb_cli_release(&f->o);
    for (int i = 0; i < f->argc; i++)
        free(f->argv[i]);
}

static int fx_run(fx_t *f, bool (*done)(void *arg), void *arg)
{
    return sb_loop_run(f->loop, done, arg, sb_now_ns() + WAIT_NS);
}

static void fx_open(fx_t *f)
{
    sb_pub_open(f->pub);
    ck_assert_int_eq(fx_run(f, sb_pub_is_open, f->pub), 0);
}

static void fx_read_window(fx_t *f)
{
    sb_pub_window(f->pub, &f->st, f->counts);
}

/* Runs a window of count messages at rate to its end. */
static void fx_window(fx_t *f, double rate, uint64_t count)
{
    sb_pub_start(f->pub, rate, count);
    ck_assert_int_eq(fx_run(f, sb_pub_is_done, f->pub), 0);
    fx_read_window(f);
}

/* Runs a pull window (sb_pub_start_pull) to its end. */
static void fx_pull(fx_t *f, const char *path, sb_pub_pull_fn fn, void *arg)
{
    sb_pub_start_pull(f->pub, path, fn, arg);
    ck_assert_int_eq(fx_run(f, sb_pub_is_done, f->pub), 0);
    fx_read_window(f);
}

/* For sb_loop_run: the window is over and has counted want errors. */
typedef struct errors_wait {
    sb_pub_t *pub;
    uint64_t want;
} errors_wait_t;

static bool errors_reached(void *arg)
{
    errors_wait_t *w = arg;
    sb_pub_stats_t st;
    uint32_t counts[SB_MAX_PUBS];
    sb_pub_window(w->pub, &st, counts);
    return sb_pub_is_done(w->pub) && st.errors >= w->want;
}

/* Runs the started window until it is over with want errors (an answer
 * too many may be read after the window looks done), and reads it. */
static void fx_wait_errors(fx_t *f, uint64_t want)
{
    errors_wait_t w = {.pub = f->pub, .want = want};
    ck_assert_int_eq(fx_run(f, errors_reached, &w), 0);
    fx_read_window(f);
}

typedef struct count_wait {
    srv_t *s;
    unsigned want;
} count_wait_t;

static bool peer_closed_reached(void *arg)
{
    count_wait_t *w = arg;
    pthread_mutex_lock(&w->s->mu);
    bool done = w->s->peer_closed >= w->want;
    pthread_mutex_unlock(&w->s->mu);
    return done;
}

/* fanout's publisher, publishers connections to the HTTP server s, open. */
static void fx_http(fx_t *f, const srv_t *s, const char *publishers)
{
    fx_init_http(f, s->port, "--publishers", publishers, NULL);
    fx_open(f);
}

/* ---- checks on what arrived ---- */

static sb_payload_t body_payload(const char *p, size_t n)
{
    sb_payload_t m;
    ck_assert_msg(sb_payload_parse(p, n, &m), "no bench message in '%.*s'", (int)n, p);
    return m;
}

/* The request's body, which must be a bench message alone. */
static sb_payload_t req_payload(const req_t *r)
{
    return body_payload(r->body, r->blen);
}

/* body == prefix MSG suffix with MSG a bench message of size bytes that is
 * JSON; returns MSG's fields. */
static sb_payload_t body_framed(const req_t *r, const char *prefix, const char *suffix, size_t size)
{
    size_t pl = strlen(prefix), sl = strlen(suffix);
    ck_assert_uint_eq(r->blen, pl + size + sl);
    ck_assert_msg(!memcmp(r->body, prefix, pl), "body '%s'", r->body);
    ck_assert_msg(!memcmp(r->body + r->blen - sl, suffix, sl), "body '%s'", r->body);
    json_error_t jerr;
    json_t *whole = json_loadb(r->body, r->blen, 0, &jerr);
    ck_assert_msg(whole != NULL, "body is not JSON: %s", jerr.text);
    json_decref(whole);
    return body_payload(r->body + pl, size);
}

/* Over HTTP: each publisher's messages arrive numbered from base[k] in
 * order (reqs[from..to)), all on one server connection that carries no
 * other publisher's; count[k] of them. */
static void assert_per_publisher_order(srv_t *s, unsigned from, unsigned to, size_t prefix_len,
                                       unsigned npubs, const uint32_t *base, const uint32_t *counts)
{
    uint64_t next[SB_MAX_PUBS];
    int conn_of[SB_MAX_PUBS];
    for (unsigned k = 0; k < npubs; k++) {
        next[k] = base[k];
        conn_of[k] = -1;
    }
    for (unsigned i = from; i < to; i++) {
        const req_t *r = &s->reqs[i];
        sb_payload_t m = body_payload(r->body + prefix_len, r->blen - prefix_len);
        ck_assert_uint_lt(m.pub, npubs);
        ck_assert_uint_eq(m.seq, next[m.pub]);
        next[m.pub]++;
        if (conn_of[m.pub] < 0)
            conn_of[m.pub] = (int)r->conn;
        ck_assert_int_eq(conn_of[m.pub], (int)r->conn);
    }
    for (unsigned k = 0; k < npubs; k++) {
        ck_assert_uint_eq(next[k] - base[k], counts[k]);
        for (unsigned j = 0; j < k; j++)
            ck_assert(conn_of[j] < 0 || conn_of[j] != conn_of[k]);
    }
}

/* ---- HTTP ---- */

START_TEST(test_http_emit_window)
{
    srv_t *s = srv_start(false, NULL, 0);
    fx_t f;
    fx_init_http(&f, s->port, "--publishers", "4", "--api-key", "k3y-9", "--room", "room-7",
                 "--size", "300", NULL);
    ck_assert(!sb_pub_via_redis(f.pub));
    fx_open(&f);

    uint32_t base[SB_MAX_PUBS];
    sb_pub_bases(f.pub, base);
    for (unsigned k = 0; k < 4; k++)
        ck_assert_uint_eq(base[k], 0);
    fx_window(&f, 1e9, 40);
    ck_assert_uint_eq(f.st.sent, 40);
    ck_assert_uint_eq(f.st.answered, 40);
    ck_assert_uint_eq(f.st.errors, 0);
    ck_assert_str_eq(f.st.first_error, "");
    ck_assert_uint_eq(srv_nreqs(s), 40);

    char host[32];
    snprintf(host, sizeof(host), "127.0.0.1:%u", s->port);
    uint64_t t_max = 0;
    pthread_mutex_lock(&s->mu);
    for (unsigned i = 0; i < 40; i++) {
        const req_t *r = &s->reqs[i];
        ck_assert_str_eq(r->method, "POST");
        ck_assert_str_eq(r->target, "/api/v1/emit");
        ck_assert_str_eq(r->version, "HTTP/1.1");
        ck_assert_str_eq(r->host, host);
        ck_assert_str_eq(r->ctype, "application/json");
        ck_assert(r->has_auth);
        ck_assert_str_eq(r->auth, "Bearer k3y-9");
        ck_assert_int_eq(r->clen, (long)r->blen);
        sb_payload_t m =
            body_framed(r, "{\"event\":\"bench\",\"data\":", ",\"to\":{\"room\":\"room-7\"}}", 300);
        ck_assert_uint_ge(m.t_ns, f.st.t_start);
        ck_assert_uint_le(m.t_ns, f.st.t_last);
        if (m.t_ns > t_max)
            t_max = m.t_ns;
    }
    ck_assert_uint_eq(t_max, f.st.t_last);
    assert_per_publisher_order(s, 0, 40, strlen("{\"event\":\"bench\",\"data\":"), 4, base,
                               f.counts);
    pthread_mutex_unlock(&s->mu);

    /* The next window numbers on from where this one ended, on the same
     * keep-alive connections. */
    sb_pub_bases(f.pub, base);
    for (unsigned k = 0; k < 4; k++)
        ck_assert_uint_eq(base[k], f.counts[k]);
    fx_window(&f, 1e9, 12);
    ck_assert_uint_eq(f.st.sent, 12);
    ck_assert_uint_eq(f.st.answered, 12);
    ck_assert_uint_eq(f.st.errors, 0);
    ck_assert_uint_eq(srv_nreqs(s), 52);
    pthread_mutex_lock(&s->mu);
    assert_per_publisher_order(s, 40, 52, strlen("{\"event\":\"bench\",\"data\":"), 4, base,
                               f.counts);
    pthread_mutex_unlock(&s->mu);

    /* An empty window is over at once. */
    sb_pub_start(f.pub, 1e9, 0);
    ck_assert(sb_pub_is_done(f.pub));
    fx_read_window(&f);
    ck_assert_uint_eq(f.st.sent, 0);

    srv_stop(s);
    ck_assert_uint_eq(s->nconns, 4);
    srv_assert_clean(s);
    fx_release(&f);
    srv_free(s);
}
END_TEST

START_TEST(test_http_chat_events_body)
{
    srv_t *s = srv_start(false, NULL, 0);
    char emit[8];
    fx_t f;
    /* Subscribers' --port has nobody; the publisher goes to --emit-port. */
    fx_init_http(&f, th_free_port(), "--emit-port", port_str(emit, sizeof(emit), s->port),
                 "--emit-api", "chat-events", "--user", "alice", "--publishers", "1", "--size",
                 "64", NULL);
    fx_open(&f);
    fx_window(&f, 1e9, 3);
    ck_assert_uint_eq(f.st.sent, 3);
    ck_assert_uint_eq(f.st.answered, 3);
    ck_assert_uint_eq(f.counts[0], 3);
    srv_stop(s);
    srv_assert_clean(s);
    ck_assert_uint_eq(s->nreqs, 3);
    char host[32];
    snprintf(host, sizeof(host), "127.0.0.1:%u", s->port);
    for (unsigned i = 0; i < 3; i++) {
        const req_t *r = &s->reqs[i];
        ck_assert_str_eq(r->target, "/api/v1/chat-events");
        ck_assert_str_eq(r->host, host);
        ck_assert_str_eq(r->ctype, "application/json");
        ck_assert(!r->has_auth);
        sb_payload_t m = body_framed(
            r,
            "{\"user_id\":\"alice\",\"chat_id\":\"bench\",\"message_id\":\"bench\",\"data\":", "}",
            64);
        ck_assert_uint_eq(m.seq, i);
        ck_assert_uint_eq(m.pub, 0);
    }
    fx_release(&f);
    srv_free(s);
}
END_TEST

START_TEST(test_http_raw_ws_body)
{
    srv_t *s = srv_start(false, NULL, 0);
    fx_t f;
    fx_init_http(&f, s->port, "--protocol", "raw-ws", "--pub-path", "/pub/room9", "--publishers",
                 "2", "--size", "128", "--api-key", "kk", NULL);
    fx_open(&f);
    uint32_t base[SB_MAX_PUBS] = {0};
    fx_window(&f, 1e9, 6);
    ck_assert_uint_eq(f.st.answered, 6);
    srv_stop(s);
    srv_assert_clean(s);
    ck_assert_uint_eq(s->nreqs, 6);
    for (unsigned i = 0; i < 6; i++) {
        const req_t *r = &s->reqs[i];
        ck_assert_str_eq(r->target, "/pub/room9");
        ck_assert_str_eq(r->ctype, "text/plain");
        ck_assert_str_eq(r->auth, "Bearer kk");
        body_framed(r, "", "", 128); /* the message itself */
    }
    assert_per_publisher_order(s, 0, 6, 0, 2, base, f.counts);
    fx_release(&f);
    srv_free(s);
}
END_TEST

/* One publisher, every kind of answer in turn: which count, which
 * reopen the connection, and the first error in words. */
START_TEST(test_http_answers_one_publisher)
{
    static const answer_t script[] = {ANS_OK,    ANS_FAIL,  ANS_SPLIT, ANS_DROP, ANS_OK,
                                      ANS_RESET, ANS_CLOSE, ANS_OK,    ANS_FAIL};
    /* the server connection each request arrives on */
    static const unsigned conn[] = {0, 0, 0, 0, 1, 1, 2, 3, 3};
    srv_t *s = srv_start(false, script, 9);
    fx_t f;
    fx_http(&f, s, "1");
    fx_window(&f, 1e9, 9);
    ck_assert_uint_eq(f.st.sent, 9);
    ck_assert_uint_eq(f.counts[0], 9);
    ck_assert_uint_eq(f.st.answered, 5); /* OK x3, SPLIT, CLOSE */
    ck_assert_uint_eq(f.st.errors, 4);   /* FAIL x2, DROP, RESET */
    ck_assert_str_eq(f.st.first_error, "publisher 0: HTTP 500: boom");
    srv_stop(s);
    srv_assert_clean(s);
    ck_assert_uint_eq(s->nreqs, 9);
    ck_assert_uint_eq(s->nconns, 4);
    for (unsigned i = 0; i < 9; i++) {
        sb_payload_t m = req_payload(&s->reqs[i]);
        ck_assert_uint_eq(m.seq, i);
        ck_assert_uint_eq(s->reqs[i].conn, conn[i]);
    }
    fx_release(&f);
    srv_free(s);
}
END_TEST

/* The first error of a window that loses its connection. */
START_TEST(test_http_lost_connection_message)
{
    static const answer_t script[] = {ANS_OK, ANS_DROP, ANS_RESET};
    srv_t *s = srv_start(false, script, 3);
    fx_t f;
    fx_http(&f, s, "1");
    fx_window(&f, 1e9, 2);
    ck_assert_uint_eq(f.st.answered, 1);
    ck_assert_uint_eq(f.st.errors, 1);
    ck_assert_str_eq(f.st.first_error,
                     "publisher 0: connection lost with a request in flight: EOF");
    /* A new window forgets the last one's errors. */
    fx_window(&f, 1e9, 1);
    ck_assert_uint_eq(f.st.sent, 1);
    ck_assert_uint_eq(f.st.errors, 1);
    ck_assert_str_eq(f.st.first_error, "publisher 0: connection lost with a request in flight: "
                                       "Connection reset by peer");
    srv_stop(s);
    srv_assert_clean(s);
    fx_release(&f);
    srv_free(s);
}
END_TEST

/* Several publishers through 500s and lost connections: every message
 * still arrives once, in order per publisher, and the figures add up. */
START_TEST(test_http_answers_many_publishers)
{
    enum { N = 40 };
    answer_t script[N];
    uint64_t ok = 0;
    for (unsigned i = 0; i < N; i++) {
        script[i] = i % 4 == 1    ? ANS_FAIL
                    : i % 4 == 3  ? ANS_DROP
                    : i % 10 == 6 ? ANS_RESET
                                  : ANS_OK;
        ok += script[i] == ANS_OK;
    }
    srv_t *s = srv_start(false, script, N);
    fx_t f;
    fx_http(&f, s, "3");
    fx_window(&f, 1e9, N);
    ck_assert_uint_eq(f.st.sent, N);
    ck_assert_uint_eq(f.counts[0] + f.counts[1] + f.counts[2], N);
    ck_assert_uint_eq(f.st.answered, ok);
    ck_assert_uint_eq(f.st.errors, N - ok);
    ck_assert_msg(!strncmp(f.st.first_error, "publisher ", 10), "first error '%s'",
                  f.st.first_error);
    srv_stop(s);
    srv_assert_clean(s);
    ck_assert_uint_eq(s->nreqs, N);
    uint64_t next[3] = {0, 0, 0};
    for (unsigned i = 0; i < N; i++) {
        sb_payload_t m = req_payload(&s->reqs[i]);
        ck_assert_uint_lt(m.pub, 3);
        ck_assert_uint_eq(m.seq, next[m.pub]++);
    }
    for (unsigned k = 0; k < 3; k++)
        ck_assert_uint_eq(next[k], f.counts[k]);
    fx_release(&f);
    srv_free(s);
}
END_TEST

/* An answer with no length, and one answer too many: each one error,
 * the connection dropped and opened again for the next message. */
START_TEST(test_http_bad_answers)
{
    static const answer_t script[] = {ANS_GARBAGE, ANS_OK, ANS_TWICE, ANS_OK, ANS_OK};
    srv_t *s = srv_start(false, script, 5);
    fx_t f;
    fx_http(&f, s, "1");
    fx_window(&f, 1e9, 1);
    ck_assert_uint_eq(f.st.sent, 1);
    ck_assert_uint_eq(f.st.answered, 0);
    ck_assert_uint_eq(f.st.errors, 1);
    ck_assert_str_eq(f.st.first_error, "publisher 0: not an HTTP response with a length");

    fx_window(&f, 1e9, 2);
    ck_assert_uint_eq(f.st.sent, 2);
    fx_wait_errors(&f, 1);
    ck_assert_uint_eq(f.st.answered, 2);
    ck_assert_uint_eq(f.st.errors, 1);
    ck_assert_str_eq(f.st.first_error, "publisher 0: an answer to no request");

    fx_window(&f, 1e9, 2);
    ck_assert_uint_eq(f.st.answered, 2);
    ck_assert_uint_eq(f.st.errors, 0);
    srv_stop(s);
    srv_assert_clean(s);
    ck_assert_uint_eq(s->nreqs, 5);
    static const unsigned conn[] = {0, 1, 1, 2, 2};
    for (unsigned i = 0; i < 5; i++) {
        ck_assert_uint_eq(s->reqs[i].conn, conn[i]);
        ck_assert_uint_eq(req_payload(&s->reqs[i]).seq, i);
    }
    fx_release(&f);
    srv_free(s);
}
END_TEST

/* The server ends an idle keep-alive connection between windows, with a
 * FIN or (a server's or a middlebox's idle timeout) a reset: the next
 * message opens a new one, without an error. A connection that was up is
 * not taken for one that could not connect. */
static void check_idle_loss_reopens(bool reset)
{
    static const answer_t fin[] = {ANS_OK_FIN};
    srv_t *s = reset ? srv_start(false, NULL, 0) : srv_start(false, fin, 1);
    fx_t f;
    fx_http(&f, s, "1");
    fx_window(&f, 1e9, 1);
    ck_assert_uint_eq(f.st.answered, 1);
    if (reset) {
        srv_reset_all(s);
        /* The reset is on the publisher's socket once close() returned
         * (the loopback delivers it at once): a pass of the loop takes it. */
        ck_assert_int_eq(sb_loop_run(f.loop, NULL, NULL, sb_now_ns() + 50 * 1000000ull),
                         -ETIMEDOUT);
    } else {
        count_wait_t cw = {.s = s, .want = 1}; /* the publisher saw the EOF and closed */
        ck_assert_int_eq(fx_run(&f, peer_closed_reached, &cw), 0);
    }
    fx_read_window(&f);
    ck_assert_uint_eq(f.st.errors, 0);

    fx_window(&f, 1e9, 2);
    ck_assert_uint_eq(f.st.sent, 2);
    ck_assert_uint_eq(f.st.answered, 2);
    ck_assert_uint_eq(f.st.errors, 0);
    ck_assert_str_eq(f.st.first_error, "");
    srv_stop(s);
    srv_assert_clean(s);
    ck_assert_uint_eq(s->nconns, 2);
    ck_assert_uint_eq(s->reqs[1].conn, 1);
    ck_assert_uint_eq(s->reqs[2].conn, 1);
    fx_release(&f);
    srv_free(s);
}

START_TEST(test_http_idle_close_reopens)
{
    check_idle_loss_reopens(false);
}
END_TEST

START_TEST(test_http_idle_reset_reopens)
{
    check_idle_loss_reopens(true);
}
END_TEST

/* Message i is due at start + i / rate, never earlier; a message that
 * waits for a busy connection counts as lag. */
START_TEST(test_http_pacing_and_lag)
{
    srv_t *s = srv_start(false, NULL, 0);
    fx_t f;
    fx_http(&f, s, "2");
    fx_window(&f, 200, 6); /* one every 5 ms */
    ck_assert_uint_eq(f.st.answered, 6);
    ck_assert_uint_ge(f.st.t_last - f.st.t_start, 25000000u);
    uint64_t t[6];
    pthread_mutex_lock(&s->mu);
    for (unsigned i = 0; i < 6; i++) {
        t[i] = req_payload(&s->reqs[i]).t_ns;
        for (unsigned j = i; j > 0 && t[j] < t[j - 1]; j--) {
            uint64_t x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
        }
    }
    pthread_mutex_unlock(&s->mu);
    for (unsigned i = 0; i < 6; i++)
        ck_assert_uint_ge(t[i], f.st.t_start + i * 5000000ull);
    fx_release(&f);

    /* One connection, all due at once: each waits for the last answer. */
    fx_http(&f, s, "1");
    fx_window(&f, 1e9, 5);
    ck_assert_uint_eq(f.st.answered, 5);
    ck_assert_uint_gt(f.st.max_lag_ns, 0);
    srv_stop(s);
    srv_assert_clean(s);
    fx_release(&f);
    srv_free(s);
}
END_TEST

typedef struct body_ctx {
    unsigned calls;
    uint64_t calls_of[SB_MAX_PUBS];
    uint64_t last_t;
} body_ctx_t;

static void custom_body(void *arg, sb_buf_t *out, uint32_t pub, uint64_t seq, uint64_t t_ns)
{
    body_ctx_t *b = arg;
    ck_assert_uint_lt(pub, SB_MAX_PUBS);
    ck_assert_uint_eq(seq, b->calls_of[pub]); /* numbered from 0 per publisher */
    ck_assert_uint_ge(t_ns, b->last_t);
    b->calls_of[pub]++;
    b->calls++;
    b->last_t = t_ns;
    sb_buf_printf(out, "{\"p\":%u,\"s\":%llu}", pub, (unsigned long long)seq);
}

START_TEST(test_http_set_body)
{
    srv_t *s = srv_start(false, NULL, 0);
    fx_t f;
    fx_init_http(&f, s->port, "--publishers", "2", NULL);
    body_ctx_t b = {0};
    sb_pub_set_body(f.pub, "/api/v1/custom", custom_body, &b);
    fx_open(&f);
    fx_window(&f, 1e9, 6);
    ck_assert_uint_eq(f.st.answered, 6);
    ck_assert_uint_eq(b.calls, 6);
    ck_assert_uint_eq(f.st.t_last, b.last_t);
    srv_stop(s);
    srv_assert_clean(s);
    ck_assert_uint_eq(s->nreqs, 6);
    uint64_t next[2] = {0, 0};
    for (unsigned i = 0; i < 6; i++) {
        const req_t *r = &s->reqs[i];
        ck_assert_str_eq(r->target, "/api/v1/custom");
        unsigned p;
        unsigned long long q;
        ck_assert_int_eq(sscanf(r->body, "{\"p\":%u,\"s\":%llu}", &p, &q), 2);
        ck_assert_uint_lt(p, 2);
        ck_assert_uint_eq(q, next[p]++);
    }
    ck_assert_uint_eq(next[0], f.counts[0]);
    ck_assert_uint_eq(next[1], f.counts[1]);
    fx_release(&f);
    srv_free(s);
}
END_TEST

/* The server goes away between windows: each message of the next one
 * tries to connect again and fails, an error each, and the window ends. */
START_TEST(test_http_server_gone)
{
    static const answer_t script[] = {ANS_CLOSE};
    srv_t *s = srv_start(false, script, 1);
    fx_t f;
    fx_http(&f, s, "1");
    fx_window(&f, 1e9, 1);
    ck_assert_uint_eq(f.st.answered, 1);
    srv_stop(s);
    fx_window(&f, 1e9, 3);
    ck_assert_uint_eq(f.st.sent, 3);
    ck_assert_uint_eq(f.st.answered, 0);
    ck_assert_uint_eq(f.st.errors, 3);
    ck_assert_str_eq(f.st.first_error, "publisher 0: connection lost with a request in flight: "
                                       "Connection refused");
    fx_release(&f);
    srv_free(s);
}
END_TEST

static int never_pull(void *arg, unsigned conn, sb_buf_t *out, uint64_t now, uint64_t *wake)
{
    (*(unsigned *)arg)++;
    return -1;
}

/* Nobody listens: sb_pub_is_open still ends the wait, with the reason,
 * and a pull window on connections that never came up is over at once. */
START_TEST(test_connect_refused)
{
    fx_t f;
    fx_init_http(&f, th_free_port(), "--publishers", "2", NULL);
    fx_open(&f);
    fx_read_window(&f);
    ck_assert_uint_eq(f.st.errors, 2);
    ck_assert_msg(strstr(f.st.first_error, ": connect: Connection refused") != NULL, "'%s'",
                  f.st.first_error);
    unsigned calls = 0;
    sb_pub_start_pull(f.pub, "/x", never_pull, &calls);
    ck_assert(sb_pub_is_done(f.pub));
    ck_assert_uint_eq(calls, 0);
    fx_release(&f);

    fx_init_redis(&f, th_free_port(), NULL);
    ck_assert(sb_pub_via_redis(f.pub));
    fx_open(&f);
    fx_read_window(&f);
    ck_assert_uint_eq(f.st.errors, 1);
    ck_assert_str_eq(f.st.first_error, "publisher 0: connect: Connection refused");
    fx_release(&f);
}
END_TEST

/* ---- pull mode over HTTP ---- */

typedef struct pull_ctx {
    srv_t *s;
    unsigned nconns;
    unsigned want[SB_MAX_PUBS];  /* bodies each connection gives */
    unsigned given[SB_MAX_PUBS]; /* so far */
    bool ended[SB_MAX_PUBS];
    bool waited[SB_MAX_PUBS]; /* conn 2 said "not yet" once, with a time */
    unsigned calls;
    unsigned round; /* bodies carry it, so that windows differ */
} pull_ctx_t;

/* Connection 0 gives its bodies at once; connection 1 waits for an answer
 * to connection 0 (wake UINT64_MAX); connection 2 asks to be called again
 * in 3 ms first. Each checks it is never called while its request waits
 * for its answer. */
static int http_pull(void *arg, unsigned conn, sb_buf_t *out, uint64_t now, uint64_t *wake)
{
    pull_ctx_t *x = arg;
    x->calls++;
    ck_assert_uint_lt(conn, x->nconns);
    ck_assert_msg(!x->ended[conn], "conn %u asked again after -1", conn);
    ck_assert_uint_le(now, sb_now_ns());
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "r%u c%u:", x->round, conn);
    ck_assert_uint_eq(srv_count_prefix(x->s, prefix), x->given[conn]);
    if (x->given[conn] == x->want[conn]) {
        x->ended[conn] = true;
        return -1;
    }
    if (x->round == 0 && conn == 1 && x->given[0] < 2) {
        *wake = UINT64_MAX;
        return 0;
    }
    if (x->round == 0 && conn == 2 && !x->waited[2]) {
        x->waited[2] = true;
        *wake = now + 3000000;
        return 0;
    }
    sb_buf_printf(out, "%s%u", prefix, x->given[conn]++);
    return 1;
}

START_TEST(test_http_pull)
{
    srv_t *s = srv_start(false, NULL, 0);
    fx_t f;
    fx_http(&f, s, "3");
    pull_ctx_t x = {.s = s, .nconns = 3, .want = {4, 3, 2}};
    fx_pull(&f, "/pull/x", http_pull, &x);
    ck_assert_uint_eq(f.st.sent, 9);
    ck_assert_uint_eq(f.st.answered, 9);
    ck_assert_uint_eq(f.st.errors, 0);
    ck_assert_uint_eq(f.counts[0], 4);
    ck_assert_uint_eq(f.counts[1], 3);
    ck_assert_uint_eq(f.counts[2], 2);
    ck_assert(x.ended[0] && x.ended[1] && x.ended[2]);
    ck_assert_uint_eq(srv_nreqs(s), 9);

    /* A second pull window asks every connection again. */
    pull_ctx_t y = {.s = s, .nconns = 3, .want = {1, 1, 1}, .round = 1};
    fx_pull(&f, "/pull/y", http_pull, &y);
    ck_assert_uint_eq(f.st.sent, 3);
    ck_assert_uint_eq(f.st.answered, 3);
    for (unsigned k = 0; k < 3; k++)
        ck_assert_uint_eq(f.counts[k], 1);
    ck_assert(y.ended[0] && y.ended[1] && y.ended[2]);

    /* And a rate window after pull windows is paced again. */
    fx_window(&f, 1e9, 3);
    ck_assert_uint_eq(f.st.sent, 3);
    ck_assert_uint_eq(f.st.answered, 3);
    srv_stop(s);
    srv_assert_clean(s);
    ck_assert_uint_eq(s->nreqs, 15);
    int conn_of[3] = {-1, -1, -1};
    unsigned next[3] = {0, 0, 0};
    for (unsigned i = 0; i < 9; i++) {
        const req_t *r = &s->reqs[i];
        ck_assert_str_eq(r->target, "/pull/x");
        unsigned round, c, n;
        ck_assert_int_eq(sscanf(r->body, "r%u c%u:%u", &round, &c, &n), 3);
        ck_assert_uint_eq(round, 0);
        ck_assert_uint_lt(c, 3);
        ck_assert_uint_eq(n, next[c]++);
        if (conn_of[c] < 0)
            conn_of[c] = (int)r->conn;
        ck_assert_int_eq(conn_of[c], (int)r->conn);
    }
    for (unsigned i = 9; i < 12; i++)
        ck_assert_str_eq(s->reqs[i].target, "/pull/y");
    fx_release(&f);
    srv_free(s);
}
END_TEST

/* Pull bodies over HTTP against 500s: errors counted, window still ends. */
START_TEST(test_http_pull_errors)
{
    static const answer_t script[] = {ANS_FAIL, ANS_OK, ANS_DROP, ANS_OK};
    srv_t *s = srv_start(false, script, 4);
    fx_t f;
    fx_http(&f, s, "1");
    pull_ctx_t x = {.s = s, .nconns = 1, .want = {4}};
    fx_pull(&f, "/pull/e", http_pull, &x);
    ck_assert_uint_eq(f.st.sent, 4);
    ck_assert_uint_eq(f.st.answered, 2);
    ck_assert_uint_eq(f.st.errors, 2);
    ck_assert_str_eq(f.st.first_error, "publisher 0: HTTP 500: boom");
    srv_stop(s);
    srv_assert_clean(s);
    ck_assert_uint_eq(s->nreqs, 4);
    ck_assert_uint_eq(s->reqs[3].conn, 1); /* after the drop */
    fx_release(&f);
    srv_free(s);
}
END_TEST

/* ---- pub/sub emits, read by siohubd ---- */

/* text must be a python-socketio emit of event to room in "/", with data
 * as its one argument (an object); checks it with siohubd's parser and
 * router and, for the explicit nulls, as JSON. Returns data's text. */
static sh_json_span_t assert_emit(const char *text, size_t n, const char *event, const char *room)
{
    sh_pubsub_msg_t m;
    const char *err = NULL;
    ck_assert_msg(sh_pubsub_msg_parse(text, n, &m, &err) == 0, "parse: %s: %.*s", err, (int)n,
                  text);
    ck_assert_int_eq(m.method, SH_PUBSUB_EMIT);
    ck_assert_str_eq(m.event, event);
    ck_assert_str_eq(m.nsp, "/");
    ck_assert_ptr_nonnull(m.rooms);
    ck_assert_uint_eq(json_array_size(m.rooms), 1);
    ck_assert_str_eq(json_string_value(json_array_get(m.rooms, 0)), room);
    ck_assert_ptr_null(m.skip_sids);
    ck_assert(!m.has_callback);
    ck_assert_str_eq(m.host_id, "siohub-bench");
    ck_assert_uint_eq(json_array_size(m.args), 1);
    ck_assert_uint_eq(m.nbins, 0);
    json_t *arg = json_incref(json_array_get(m.args, 0));
    sh_pubsub_msg_release(&m);

    sh_pubsub_route_t r;
    ck_assert_msg(sh_pubsub_route_read(text, n, &r, &err) == 0, "route: %s", err);
    ck_assert_int_eq(r.method, SH_PUBSUB_EMIT);
    ck_assert_str_eq(r.nsp, "/");
    ck_assert_uint_eq(r.nrooms, 1);
    ck_assert_str_eq(r.rooms[0], room);
    ck_assert_ptr_null(r.cb_room);
    ck_assert(r.text_emit);
    char quoted[128];
    snprintf(quoted, sizeof(quoted), "\"%s\"", event);
    ck_assert_uint_eq(r.event_json.len, strlen(quoted));
    ck_assert(!memcmp(r.event_json.p, quoted, r.event_json.len));
    /* the data as text is the argument the parser built */
    json_t *again = json_loadb(r.data_json.p, r.data_json.len, 0, NULL);
    ck_assert(json_equal(again, arg));
    json_decref(again);
    json_decref(arg);

    json_t *o = json_loadb(text, n, 0, NULL);
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(json_string_value(json_object_get(o, "method")), "emit");
    ck_assert(json_is_null(json_object_get(o, "skip_sid")));
    ck_assert(json_is_null(json_object_get(o, "callback")));
    ck_assert_str_eq(json_string_value(json_object_get(o, "room")), room);
    json_decref(o);
    return r.data_json; /* points into text */
}

START_TEST(test_emit_head_tail)
{
    sb_buf_t b = {0};
    sb_pub_emit_head(&b, "bench");
    sb_buf_puts(&b, "{\"seq\":1,\"s\":\"x\"}");
    sb_pub_emit_tail(&b, "user:%s-%u", "bob", 7u);
    sh_json_span_t d = assert_emit(sb_buf_head(&b), sb_buf_avail(&b), "bench", "user:bob-7");
    ck_assert_uint_eq(d.len, strlen("{\"seq\":1,\"s\":\"x\"}"));

    /* Data that is a list is python-socketio's argument list; a string is
     * one argument. */
    const struct {
        const char *data;
        const char *args;
    } cases[] = {
        {"[1,{\"a\":2}]", "[1,{\"a\":2}]"},
        {"\"text\"", "[\"text\"]"},
        {"42", "[42]"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sb_buf_reset(&b);
        sb_pub_emit_head(&b, "chat-events");
        sb_buf_puts(&b, cases[i].data);
        sb_pub_emit_tail(&b, "channel:%s", "c1");
        sh_pubsub_msg_t m;
        ck_assert_int_eq(sh_pubsub_msg_parse(sb_buf_head(&b), sb_buf_avail(&b), &m, NULL), 0);
        ck_assert_int_eq(m.method, SH_PUBSUB_EMIT);
        ck_assert_str_eq(m.event, "chat-events");
        ck_assert_str_eq(json_string_value(json_array_get(m.rooms, 0)), "channel:c1");
        json_t *want = json_loads(cases[i].args, 0, NULL);
        ck_assert_msg(json_equal(m.args, want), "data %s", cases[i].data);
        json_decref(want);
        sh_pubsub_msg_release(&m);
    }
    sb_buf_release(&b);
}
END_TEST

/* ---- Redis ---- */

/* The Redis tests' peer: a redis-server of their own and, unless the
 * channel given is NULL, a client subscribed to it that reads back what
 * the publisher sends. */
typedef struct redis_peer {
    th_redis_t srv;
    redisContext *sub;
    char channel[64]; /* the last message's channel */
    sb_buf_t msg;     /* and payload */
} redis_peer_t;

static void redis_peer_start(redis_peer_t *p, const char *channel)
{
    memset(p, 0, sizeof(*p));
    th_redis_start(&p->srv, 0, false, NULL);
    if (!channel)
        return;
    p->sub = th_redis_connect(&p->srv);
    struct timeval tv = {.tv_sec = 5};
    redisSetTimeout(p->sub, tv);
    redisReply *rep = redisCommand(p->sub, "SUBSCRIBE %s", channel);
    ck_assert_ptr_nonnull(rep);
    ck_assert_int_eq(rep->type, REDIS_REPLY_ARRAY);
    freeReplyObject(rep);
}

static void redis_peer_stop(redis_peer_t *p)
{
    sb_buf_release(&p->msg);
    if (p->sub)
        redisFree(p->sub);
    th_redis_stop(&p->srv);
}

/* Reads one pub/sub message into p->channel and p->msg. */
static void redis_peer_read(redis_peer_t *p)
{
    redisReply *rep = NULL;
    ck_assert_int_eq(redisGetReply(p->sub, (void **)&rep), REDIS_OK);
    ck_assert_int_eq(rep->type, REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(rep->elements, 3);
    ck_assert_str_eq(rep->element[0]->str, "message");
    snprintf(p->channel, sizeof(p->channel), "%s", rep->element[1]->str);
    sb_buf_reset(&p->msg);
    sb_buf_append(&p->msg, rep->element[2]->str, rep->element[2]->len);
    freeReplyObject(rep);
}

/* Reads one message, which must be an emit of event to room (assert_emit);
 * returns its data, which points into p->msg. */
static sh_json_span_t redis_peer_read_emit(redis_peer_t *p, const char *event, const char *room)
{
    redis_peer_read(p);
    return assert_emit(sb_buf_head(&p->msg), sb_buf_avail(&p->msg), event, room);
}

/* d is text, byte for byte. */
static void assert_span_eq(sh_json_span_t d, const char *text)
{
    ck_assert_uint_eq(d.len, strlen(text));
    ck_assert_msg(!memcmp(d.p, text, d.len), "'%.*s' is not '%s'", (int)d.len, d.p, text);
}

START_TEST(test_redis_emits)
{
    redis_peer_t rp;
    redis_peer_start(&rp, "socketio");
    fx_t f;
    fx_init_redis(&f, rp.srv.port, "--publishers", "4", "--room", "room-5", "--size", "256", NULL);
    ck_assert(sb_pub_via_redis(f.pub));
    ck_assert_uint_eq(f.o.publishers, 1); /* one pipelined connection */
    fx_open(&f);
    fx_window(&f, 1e9, 20);
    ck_assert_uint_eq(f.st.sent, 20);
    ck_assert_uint_eq(f.st.answered, 20);
    ck_assert_uint_eq(f.st.errors, 0);
    ck_assert_str_eq(f.st.first_error, "");
    ck_assert_uint_eq(f.counts[0], 20);

    for (unsigned i = 0; i < 20; i++) {
        sh_json_span_t d = redis_peer_read_emit(&rp, "bench", "room-5");
        ck_assert_str_eq(rp.channel, "socketio");
        ck_assert_uint_eq(d.len, 256);
        sb_payload_t m = body_payload(d.p, d.len);
        ck_assert_uint_eq(m.seq, i);
        ck_assert_uint_eq(m.pub, 0);
        ck_assert_uint_ge(m.t_ns, f.st.t_start);
        ck_assert_uint_le(m.t_ns, f.st.t_last);
    }

    /* The next window numbers on. */
    uint32_t base[SB_MAX_PUBS];
    sb_pub_bases(f.pub, base);
    ck_assert_uint_eq(base[0], 20);
    fx_window(&f, 1e9, 3);
    ck_assert_uint_eq(f.st.answered, 3);
    for (unsigned i = 0; i < 3; i++) {
        sh_json_span_t d = redis_peer_read_emit(&rp, "bench", "room-5");
        ck_assert_uint_eq(body_payload(d.p, d.len).seq, 20 + i);
    }
    fx_release(&f);
    redis_peer_stop(&rp);
}
END_TEST

START_TEST(test_redis_channel_chat_events)
{
    redis_peer_t rp;
    redis_peer_start(&rp, "bench.chan");
    redisReply *rep = redisCommand(rp.sub, "SUBSCRIBE socketio");
    ck_assert_ptr_nonnull(rep);
    freeReplyObject(rep);
    fx_t f;
    fx_init_redis(&f, rp.srv.port, "--redis-channel", "bench.chan", "--emit-api", "chat-events",
                  "--user", "alice", NULL);
    fx_open(&f);
    fx_window(&f, 1e9, 5);
    ck_assert_uint_eq(f.st.answered, 5);
    /* A marker on the default channel after them: nothing came there
     * before it. */
    rep = th_redis_cmd(&rp.srv, "PUBLISH socketio marker");
    freeReplyObject(rep);

    static const char prefix[] = "{\"chat_id\":\"bench\",\"message_id\":\"bench\",\"data\":";
    for (unsigned i = 0; i < 5; i++) {
        sh_json_span_t d = redis_peer_read_emit(&rp, "chat-events", "user:alice");
        ck_assert_str_eq(rp.channel, "bench.chan");
        ck_assert(d.len > sizeof(prefix) && !memcmp(d.p, prefix, sizeof(prefix) - 1));
        ck_assert_int_eq(d.p[d.len - 1], '}');
        sb_payload_t m = body_payload(d.p + sizeof(prefix) - 1, d.len - sizeof(prefix));
        ck_assert_uint_eq(m.seq, i);
    }
    redis_peer_read(&rp);
    ck_assert_str_eq(rp.channel, "socketio");
    ck_assert_uint_eq(sb_buf_avail(&rp.msg), 6);
    fx_release(&f);
    redis_peer_stop(&rp);
}
END_TEST

/* Each PUBLISH must reach somebody: with no subscriber, every message is
 * an error; and an error reply is one too, in Redis's words. */
START_TEST(test_redis_not_delivered)
{
    redis_peer_t rp;
    redis_peer_start(&rp, NULL);
    fx_t f;
    fx_init_redis(&f, rp.srv.port, "--redis-channel", "nobody.here", NULL);
    fx_open(&f);
    fx_window(&f, 1e9, 4);
    ck_assert_uint_eq(f.st.sent, 4);
    ck_assert_uint_eq(f.st.answered, 0);
    ck_assert_uint_eq(f.st.errors, 4);
    ck_assert_str_eq(f.st.first_error, "redis: PUBLISH reached no subscriber of 'nobody.here'");

    /* The default user may no longer publish anywhere. */
    redisReply *rep = th_redis_cmd(&rp.srv, "ACL SETUSER default resetchannels");
    ck_assert_int_eq(rep->type, REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    fx_window(&f, 1e9, 3);
    ck_assert_uint_eq(f.st.sent, 3);
    ck_assert_uint_eq(f.st.answered, 0);
    ck_assert_uint_eq(f.st.errors, 3);
    ck_assert_msg(!strncmp(f.st.first_error, "redis: -NOPERM ", 15), "'%s'", f.st.first_error);
    ck_assert_ptr_null(strpbrk(f.st.first_error, "\r\n"));
    fx_release(&f);
    redis_peer_stop(&rp);
}
END_TEST

static void probe_body(void *arg, sb_buf_t *out, uint32_t pub, uint64_t seq, uint64_t t_ns)
{
    (*(unsigned *)arg)++;
    sb_pub_emit_head(out, "bench-probe");
    sb_buf_printf(out, "{\"n\":%llu}", (unsigned long long)seq);
    sb_pub_emit_tail(out, "user:%s-%u", "bench", (unsigned)seq);
}

/* A scenario's own bodies go to Redis as they are. */
START_TEST(test_redis_set_body)
{
    redis_peer_t rp;
    redis_peer_start(&rp, "socketio");
    fx_t f;
    fx_init_redis(&f, rp.srv.port, NULL);
    unsigned calls = 0;
    sb_pub_set_body(f.pub, "/api/v1/emit", probe_body, &calls);
    fx_open(&f);
    fx_window(&f, 1e9, 4);
    ck_assert_uint_eq(f.st.answered, 4);
    ck_assert_uint_eq(calls, 4);
    char room[32], data[32];
    for (unsigned i = 0; i < 4; i++) {
        snprintf(room, sizeof(room), "user:bench-%u", i);
        snprintf(data, sizeof(data), "{\"n\":%u}", i);
        assert_span_eq(redis_peer_read_emit(&rp, "bench-probe", room), data);
    }
    fx_release(&f);
    redis_peer_stop(&rp);
}
END_TEST

typedef struct redis_pull {
    unsigned given, want, burst;
    int results[32];   /* what each call returned */
    uint64_t nows[32]; /* and the time it was given */
    unsigned calls;
} redis_pull_t;

/* "Not yet, in 2 ms" first (nothing else can wake the publisher then),
 * then bursts of burst emits with the same between them. */
static int redis_pull_fn(void *arg, unsigned conn, sb_buf_t *out, uint64_t now, uint64_t *wake)
{
    redis_pull_t *x = arg;
    ck_assert_uint_eq(conn, 0);
    ck_assert_uint_lt(x->calls, 32);
    ck_assert_uint_ge(now, x->calls ? x->nows[x->calls - 1] : 0);
    x->nows[x->calls] = now;
    int rc;
    if (x->given == x->want) {
        rc = -1;
    } else if (x->calls == 0 || (x->given % x->burst == 0 && x->results[x->calls - 1] == 1)) {
        *wake = now + 2000000;
        rc = 0;
    } else {
        sb_pub_emit_head(out, "chat-events");
        sb_buf_printf(out, "{\"i\":%u}", x->given++);
        sb_pub_emit_tail(out, "user:bench-%u", 3u);
        rc = 1;
    }
    x->results[x->calls++] = rc;
    return rc;
}

/* Pull mode on Redis: the connection is never busy, so fn is asked again
 * at once after each body until it says "not yet" (then the timer) or
 * -1. Without sb_pub_open: the first write opens the connection. */
START_TEST(test_redis_pull)
{
    redis_peer_t rp;
    redis_peer_start(&rp, "socketio");
    fx_t f;
    fx_init_redis(&f, rp.srv.port, NULL);
    redis_pull_t x = {.want = 6, .burst = 3};
    fx_pull(&f, "/ignored", redis_pull_fn, &x);
    static const int want[] = {0, 1, 1, 1, 0, 1, 1, 1, -1};
    ck_assert_uint_eq(x.calls, 9);
    for (unsigned i = 0; i < 9; i++)
        ck_assert_int_eq(x.results[i], want[i]);
    /* Each burst and the answer after it came in one go (one pump). */
    for (unsigned i = 2; i <= 4; i++)
        ck_assert_uint_eq(x.nows[i], x.nows[1]);
    for (unsigned i = 6; i <= 8; i++)
        ck_assert_uint_eq(x.nows[i], x.nows[5]);
    ck_assert_uint_eq(f.st.sent, 6);
    ck_assert_uint_eq(f.st.answered, 6);
    ck_assert_uint_eq(f.st.errors, 0);
    ck_assert_uint_eq(f.counts[0], 6);
    char data[32];
    for (unsigned i = 0; i < 6; i++) {
        snprintf(data, sizeof(data), "{\"i\":%u}", i);
        assert_span_eq(redis_peer_read_emit(&rp, "chat-events", "user:bench-3"), data);
    }
    fx_release(&f);
    redis_peer_stop(&rp);
}
END_TEST

/* Replies a real Redis does not give on demand, from the test's server:
 * a count above 9, none, an error, a reply in two pieces, one reply too
 * many. */
START_TEST(test_redis_odd_replies)
{
    static const answer_t script[] = {ANS_OK, ANS_MANY, ANS_NOBODY, ANS_FAIL, ANS_SPLIT, ANS_TWICE};
    srv_t *s = srv_start(true, script, 6);
    fx_t f;
    fx_init_redis(&f, s->port, "--room", "r1", NULL);
    fx_open(&f);
    sb_pub_start(f.pub, 1e9, 6);
    fx_wait_errors(&f, 3);
    ck_assert_uint_eq(f.st.sent, 6);
    ck_assert_uint_eq(f.st.answered, 4); /* OK, MANY, SPLIT, TWICE's first */
    ck_assert_uint_eq(f.st.errors, 3);   /* NOBODY, FAIL, TWICE's second */
    ck_assert_str_eq(f.st.first_error, "redis: PUBLISH reached no subscriber of 'socketio'");
    srv_stop(s);
    srv_assert_clean(s);
    ck_assert_uint_eq(s->nreqs, 6);
    for (unsigned i = 0; i < 6; i++) {
        const req_t *r = &s->reqs[i];
        ck_assert_str_eq(r->method, "PUBLISH");
        ck_assert_str_eq(r->target, "socketio");
        sh_json_span_t d = assert_emit(r->body, r->blen, "bench", "r1");
        ck_assert_uint_eq(body_payload(d.p, d.len).seq, i);
    }
    fx_release(&f);
    srv_free(s);
}
END_TEST

START_TEST(test_redis_errors_in_words)
{
    static const answer_t script[] = {ANS_FAIL, ANS_TWICE};
    srv_t *s = srv_start(true, script, 2);
    fx_t f;
    fx_init_redis(&f, s->port, NULL);
    fx_open(&f);
    fx_window(&f, 1e9, 1);
    ck_assert_uint_eq(f.st.errors, 1);
    ck_assert_str_eq(f.st.first_error, "redis: -ERR boom");
    sb_pub_start(f.pub, 1e9, 1);
    fx_wait_errors(&f, 1);
    ck_assert_uint_eq(f.st.answered, 1);
    ck_assert_uint_eq(f.st.errors, 1);
    ck_assert_msg(!strncmp(f.st.first_error, "redis: a reply to no command: :1", 32), "'%s'",
                  f.st.first_error);
    srv_stop(s);
    srv_assert_clean(s);
    fx_release(&f);
    srv_free(s);
}
END_TEST

/* Redis goes away with commands in flight: each of them is an error, and
 * the next window connects again. */
START_TEST(test_redis_lost_in_flight)
{
    static const answer_t script[] = {ANS_OK, ANS_OK, ANS_DROP};
    srv_t *s = srv_start(true, script, 3);
    fx_t f;
    fx_init_redis(&f, s->port, NULL);
    fx_open(&f);
    fx_window(&f, 1e9, 5);
    ck_assert_uint_eq(f.st.sent, 5);
    /* What the server answered before it dropped the connection (all five
     * were pipelined, unless the clock stood still). */
    unsigned oked = srv_nreqs(s) - 1;
    ck_assert_uint_eq(f.st.answered, oked);
    ck_assert_uint_eq(f.st.errors, 5 - oked);
    ck_assert_str_eq(f.st.first_error,
                     "publisher 0: connection lost with a request in flight: EOF");

    fx_window(&f, 1e9, 2);
    ck_assert_uint_eq(f.st.sent, 2);
    ck_assert_uint_eq(f.st.answered, 2);
    ck_assert_uint_eq(f.st.errors, 0);
    srv_stop(s);
    srv_assert_clean(s);
    ck_assert_uint_eq(s->nconns, 2);
    fx_release(&f);
    srv_free(s);
}
END_TEST

int main(void)
{
    if (!th_redis_available()) {
        printf("SKIP: REDIS_SERVER is not set (redis-server not found)\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("bench_publish");
    TCase *tc = tcase_create("publish");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_emit_head_tail);
    tcase_add_test(tc, test_http_emit_window);
    tcase_add_test(tc, test_http_chat_events_body);
    tcase_add_test(tc, test_http_raw_ws_body);
    tcase_add_test(tc, test_http_answers_one_publisher);
    tcase_add_test(tc, test_http_lost_connection_message);
    tcase_add_test(tc, test_http_answers_many_publishers);
    tcase_add_test(tc, test_http_bad_answers);
    tcase_add_test(tc, test_http_idle_close_reopens);
    tcase_add_test(tc, test_http_idle_reset_reopens);
    tcase_add_test(tc, test_http_pacing_and_lag);
    tcase_add_test(tc, test_http_set_body);
    tcase_add_test(tc, test_http_server_gone);
    tcase_add_test(tc, test_connect_refused);
    tcase_add_test(tc, test_http_pull);
    tcase_add_test(tc, test_http_pull_errors);
    tcase_add_test(tc, test_redis_emits);
    tcase_add_test(tc, test_redis_channel_chat_events);
    tcase_add_test(tc, test_redis_not_delivered);
    tcase_add_test(tc, test_redis_set_body);
    tcase_add_test(tc, test_redis_pull);
    tcase_add_test(tc, test_redis_odd_replies);
    tcase_add_test(tc, test_redis_errors_in_words);
    tcase_add_test(tc, test_redis_lost_in_flight);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
