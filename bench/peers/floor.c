/* floor — the floor of siohub's fan-out benchmark: the least a server can
 * do to deliver a published message to N WebSocket (or SSE) subscribers,
 * so that bench/run can show how far siohubd is from it ("within 1.3x of a
 * bare send() loop to the same sockets").
 *
 * One thread, one epoll loop, libc and libcrypto (SHA-1 and base64 for the
 * WebSocket accept key) only:
 *   - an HTTP GET with "Upgrade: websocket" at any path (nchan's
 *     /sub/bench) is answered 101 and the socket becomes a subscriber;
 *     whatever a subscriber sends is read and dropped, and its end of
 *     stream closes it;
 *   - an HTTP GET without it that accepts text/event-stream (at any path)
 *     is answered 200 text/event-stream, the body ending when the
 *     connection does, and the socket becomes an SSE subscriber;
 *   - each HTTP POST to the publish path (/pub/bench) builds one unmasked
 *     text frame carrying the request body and one SSE event ("data: "
 *     before each of its lines, a blank line after), each once and only
 *     when some subscriber takes that form, then does exactly one send()
 *     of its form to each subscriber socket, and answers 200
 *     {"recipients": n}; keep-alive, Content-Length bodies only;
 *   - anything else is answered 404 (or 400 when it is not HTTP).
 * Nothing else: no Socket.IO, no auth, no queues. A subscriber whose socket
 * buffer cannot take the whole frame (a short or failed send) is closed and
 * counted, since a bare send() loop has no queue to keep the rest in; the
 * count is printed on stderr at exit and with each answer.
 *
 * Usage: floor --port P [--host 127.0.0.1] [--pub-path /pub/bench]
 * --port 0 takes a free port. Prints "ready HOST:PORT" on stdout once it
 * accepts connections. Loopback (127.0.0.0/8) only. SIGTERM or SIGINT
 * stops it; it exits 0.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peer.h"

enum {
    HEADER_MAX = 16 * 1024, /* request line and headers */
    BODY_MAX = 1024 * 1024, /* a published message */
    READ_CHUNK = 64 * 1024, /* bytes asked of one recv() */
    EVENTS_PER_WAIT = 256,
};

typedef enum { CONN_LISTENER, CONN_SIGNAL, CONN_HTTP, CONN_SUBSCRIBER, CONN_CLOSED } conn_kind_t;

typedef struct conn {
    conn_kind_t kind;
    int fd;
    size_t idx;               /* subscriber: its slot in server_t.subs */
    bool sse;                 /* subscriber: an SSE stream, not a WebSocket */
    struct conn *prev, *next; /* HTTP: the list of HTTP connections */
    char *in;                 /* HTTP: bytes read and not yet handled */
    size_t in_len, in_cap;
} conn_t;

typedef struct server {
    int epfd;
    conn_t listener, signals;
    const char *pub_path;
    conn_t *http;  /* HTTP connections (publishers, requests before an upgrade) */
    conn_t **subs; /* every subscriber, in no particular order */
    size_t nsubs, subs_cap;
    /* Closed connections an event of the current epoll batch may still
     * name: freed once the batch is done. */
    conn_t **closed;
    size_t nclosed, closed_cap;
    char *frame; /* the frame being published, built once per POST */
    size_t frame_cap;
    char *event; /* the same as an SSE event */
    size_t event_cap;
    size_t nsse; /* subscribers that are SSE streams */
    unsigned long long publishes, deliveries, dropped;
} server_t;

static void watch(server_t *s, conn_t *c)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        peer_die("epoll_ctl");
}

/* Closing the fd also takes it out of the epoll set (it is never dup()ed);
 * the memory waits for the end of the batch. */
static void conn_close(server_t *s, conn_t *c)
{
    close(c->fd);
    c->kind = CONN_CLOSED;
    s->closed = peer_grow(s->closed, s->nclosed, &s->closed_cap, sizeof(*s->closed));
    s->closed[s->nclosed++] = c;
}

static void closed_free(server_t *s)
{
    for (size_t i = 0; i < s->nclosed; i++) {
        free(s->closed[i]->in);
        free(s->closed[i]);
    }
    s->nclosed = 0;
}

static void http_link(server_t *s, conn_t *c)
{
    c->prev = NULL;
    c->next = s->http;
    if (s->http)
        s->http->prev = c;
    s->http = c;
}

static void http_unlink(server_t *s, conn_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        s->http = c->next;
    if (c->next)
        c->next->prev = c->prev;
}

static void http_close(server_t *s, conn_t *c)
{
    http_unlink(s, c);
    conn_close(s, c);
}

static void sub_add(server_t *s, conn_t *c, bool sse)
{
    http_unlink(s, c);
    c->sse = sse;
    s->nsse += sse;
    s->subs = peer_grow(s->subs, s->nsubs, &s->subs_cap, sizeof(*s->subs));
    c->idx = s->nsubs;
    s->subs[s->nsubs++] = c;
    c->kind = CONN_SUBSCRIBER;
    free(c->in);
    c->in = NULL;
    c->in_len = c->in_cap = 0;
}

/* The last subscriber takes c's slot. */
static void sub_close(server_t *s, conn_t *c)
{
    conn_t *last = s->subs[--s->nsubs];
    s->nsse -= c->sse;
    s->subs[c->idx] = last;
    last->idx = c->idx;
    conn_close(s, c);
}

/* ---- HTTP */

/* Sends a whole answer or reports that it could not (the client is not
 * reading, which no benchmark client does): the caller then closes. */
static bool send_all(int fd, const char *p, size_t n)
{
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    return w == (ssize_t)n;
}

static bool answer(int fd, int status, const char *reason, const char *body, bool close_after)
{
    char buf[512];
    int n =
        snprintf(buf, sizeof(buf),
                 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: "
                 "%zu\r\n%s\r\n%s",
                 status, reason, strlen(body), close_after ? "Connection: close\r\n" : "", body);
    return n > 0 && (size_t)n < sizeof(buf) && send_all(fd, buf, (size_t)n);
}

static bool upgrade(conn_t *c, const char *key, size_t key_len)
{
    char accept[PEER_WS_ACCEPT_SIZE];
    if (!peer_ws_accept(key, key_len, accept))
        return false;
    char buf[256];
    int n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                     "Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    return send_all(c->fd, buf, (size_t)n);
}

/* body as an SSE event in s->event: "data: " before each line, "\n\n"
 * after the last. Returns its length. */
static size_t sse_event(server_t *s, const char *body, size_t len)
{
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += body[i] == '\n';
    size_t need = len + lines * 6 + 2;
    if (need > s->event_cap) {
        s->event = peer_xrealloc(s->event, need);
        s->event_cap = need;
    }
    char *e = s->event;
    const char *p = body, *end = body + len;
    for (;;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        memcpy(e, "data: ", 6);
        memcpy(e + 6, p, n);
        e[6 + n] = '\n';
        e += 7 + n;
        if (!nl)
            break;
        p = nl + 1;
    }
    *e++ = '\n';
    return (size_t)(e - s->event);
}

/* The one loop this program exists for: one frame (and one SSE event),
 * built once, one send() per subscriber. Returns the subscribers that took
 * the whole of it. */
static size_t publish(server_t *s, const char *body, size_t len)
{
    size_t need = PEER_WS_HEADER_MAX + len;
    if (need > s->frame_cap) {
        s->frame = peer_xrealloc(s->frame, need);
        s->frame_cap = need;
    }
    size_t elen = s->nsse ? sse_event(s, body, len) : 0;
    unsigned char *f = (unsigned char *)s->frame;
    size_t h = peer_ws_text_header(f, len);
    memcpy(f + h, body, len);
    size_t flen = h + len, sent = 0;
    for (size_t i = 0; i < s->nsubs; i++) {
        conn_t *c = s->subs[i];
        const char *form = c->sse ? s->event : s->frame;
        size_t n = c->sse ? elen : flen;
        if (send(c->fd, form, n, MSG_NOSIGNAL) == (ssize_t)n) {
            s->subs[sent++] = c;
        } else {
            s->nsse -= c->sse;
            conn_close(s, c); /* its stream is broken now */
        }
    }
    if (sent < s->nsubs) {
        s->dropped += s->nsubs - sent;
        s->nsubs = sent;
        for (size_t i = 0; i < sent; i++)
            s->subs[i]->idx = i;
    }
    s->publishes++;
    s->deliveries += sent;
    return sent;
}

/* Handles every complete request in c->in. Returns false when c is to be
 * closed; c may have become a subscriber. */
static bool http_handle(server_t *s, conn_t *c)
{
    size_t off = 0;
    bool keep = true;
    while (keep && c->kind == CONN_HTTP) {
        const char *head = c->in + off;
        size_t avail = c->in_len - off;
        const char *end = memmem(head, avail, "\r\n\r\n", 4);
        if (!end) {
            if (avail <= HEADER_MAX)
                break;
            answer(c->fd, 431, "Request Header Fields Too Large", "{}", true);
            return false;
        }
        size_t head_len = (size_t)(end - head) + 4;
        const char *sp1 = memchr(head, ' ', head_len);
        const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', head_len - (size_t)(sp1 + 1 - head)) : NULL;
        if (!sp1 || !sp2) {
            answer(c->fd, 400, "Bad Request", "{}", true);
            return false;
        }
        size_t mlen = (size_t)(sp1 - head), plen = (size_t)(sp2 - sp1 - 1);
        const char *path = sp1 + 1;
        size_t cl_len, key_len;
        const char *cl = peer_header(head, head_len, "Content-Length", &cl_len);
        size_t body_len = 0;
        if (cl) {
            char num[24];
            char *num_end;
            if (cl_len == 0 || cl_len >= sizeof(num)) {
                answer(c->fd, 400, "Bad Request", "{}", true);
                return false;
            }
            memcpy(num, cl, cl_len);
            num[cl_len] = '\0';
            unsigned long long v = strtoull(num, &num_end, 10);
            if (*num_end || v > BODY_MAX) {
                answer(c->fd, 413, "Content Too Large", "{}", true);
                return false;
            }
            body_len = (size_t)v;
        } else if (peer_header(head, head_len, "Transfer-Encoding", &cl_len)) {
            answer(c->fd, 411, "Length Required", "{}", true);
            return false;
        }
        if (avail < head_len + body_len)
            break; /* the body is still coming */
        keep = !peer_header_has(head, head_len, "Connection", "close");
        const char *key = peer_header(head, head_len, "Sec-WebSocket-Key", &key_len);
        if (mlen == 3 && !memcmp(head, "GET", 3) && key &&
            peer_header_has(head, head_len, "Upgrade", "websocket")) {
            if (!upgrade(c, key, key_len))
                return false;
            sub_add(s, c, false); /* bytes after the request are frames: dropped */
            return true;
        }
        if (mlen == 3 && !memcmp(head, "GET", 3) && !key &&
            peer_header_has(head, head_len, "Accept", "text/event-stream")) {
            static const char stream_head[] =
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: "
                "no-cache\r\nConnection: close\r\n\r\n";
            if (!send_all(c->fd, stream_head, sizeof(stream_head) - 1))
                return false;
            sub_add(s, c, true);
            return true;
        }
        if (mlen == 4 && !memcmp(head, "POST", 4) && plen == strlen(s->pub_path) &&
            !memcmp(path, s->pub_path, plen)) {
            size_t n = publish(s, head + head_len, body_len);
            char reply[96];
            snprintf(reply, sizeof(reply), "{\"recipients\":%zu,\"dropped\":%llu}", n, s->dropped);
            if (!answer(c->fd, 200, "OK", reply, !keep))
                return false;
        } else if (!answer(c->fd, 404, "Not Found", "{\"error\":\"not found\"}", !keep)) {
            return false;
        }
        off += head_len + body_len;
    }
    if (c->kind == CONN_HTTP && off > 0) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    return keep;
}

static void http_read(server_t *s, conn_t *c)
{
    if (c->in_cap - c->in_len < READ_CHUNK) {
        c->in_cap = c->in_len + READ_CHUNK;
        c->in = peer_xrealloc(c->in, c->in_cap);
    }
    ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) {
        http_close(s, c);
        return;
    }
    c->in_len += (size_t)r;
    if (!http_handle(s, c))
        http_close(s, c);
}

/* ---- subscribers: read and drop until the end of the stream */

static void sub_read(server_t *s, conn_t *c)
{
    char scratch[4096];
    ssize_t r = recv(c->fd, scratch, sizeof(scratch), 0);
    if (r > 0 || (r < 0 && (errno == EAGAIN || errno == EINTR)))
        return;
    sub_close(s, c);
}

static void accept_all(server_t *s)
{
    for (int fd; (fd = peer_accept(s->listener.fd)) >= 0;) {
        conn_t *c = peer_xrealloc(NULL, sizeof(*c));
        *c = (conn_t){.kind = CONN_HTTP, .fd = fd};
        http_link(s, c);
        watch(s, c);
    }
}

/* ---- start, run, stop */

static void usage(FILE *out)
{
    fputs("usage: floor --port P [--host 127.0.0.1] [--pub-path /pub/bench]\n"
          "A WebSocket fan-out floor: GET upgrades at any path subscribe; each POST to\n"
          "the publish path is sent to every subscriber with one send() each.\n",
          out);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"pub-path", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *host = "127.0.0.1";
    long port = -1;
    server_t s = {.pub_path = "/pub/bench"};
    for (int o; (o = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        switch (o) {
        case 'H':
            host = optarg;
            break;
        case 'p':
            port = peer_port_arg(optarg);
            break;
        case 'P':
            s.pub_path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (port < 0 || optind != argc) {
        usage(stderr);
        return 2;
    }
    peer_raise_nofile(); /* each subscriber is one descriptor */
    s.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s.epfd < 0)
        peer_die("epoll_create1");
    s.signals = (conn_t){.kind = CONN_SIGNAL, .fd = peer_stop_signals()};
    s.listener = (conn_t){.kind = CONN_LISTENER, .fd = peer_listen(host, (int)port)};
    watch(&s, &s.signals);
    watch(&s, &s.listener);

    peer_say_ready(host, s.listener.fd);

    struct epoll_event evs[EVENTS_PER_WAIT];
    for (bool running = true; running;) {
        int n = epoll_wait(s.epfd, evs, EVENTS_PER_WAIT, -1);
        if (n < 0 && errno != EINTR)
            peer_die("epoll_wait");
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            switch (c->kind) {
            case CONN_SIGNAL:
                running = false;
                break;
            case CONN_LISTENER:
                accept_all(&s);
                break;
            case CONN_HTTP:
                http_read(&s, c);
                break;
            case CONN_SUBSCRIBER:
                sub_read(&s, c);
                break;
            case CONN_CLOSED: /* by a publish earlier in this batch */
                break;
            }
        }
        closed_free(&s);
    }
    fprintf(stderr,
            "floor: %llu publishes, %llu deliveries, %llu subscribers dropped (short send)\n",
            s.publishes, s.deliveries, s.dropped);
    while (s.nsubs > 0)
        sub_close(&s, s.subs[s.nsubs - 1]);
    while (s.http)
        http_close(&s, s.http);
    closed_free(&s);
    free(s.subs);
    free(s.closed);
    free(s.frame);
    free(s.event);
    close(s.listener.fd);
    close(s.signals.fd);
    close(s.epfd);
    return 0;
}
