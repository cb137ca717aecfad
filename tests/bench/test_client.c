/* siohub-bench's clients (src/bench/client.c and its transports
 * client_ws.c, client_polling.c, client_sse.c), run on the bench's own
 * loop against two kinds of peer:
 *
 * - the real siohubd (started here on a free loopback port): over
 *   WebSocket, long-polling and SSE a client becomes ready, an emit made
 *   through the daemon's HTTP API reaches it as the right event, its own
 *   emits get their acks, a polling client leaves cleanly, and an SSE
 *   client with a bad token is refused and can then be reopened;
 * - scripted peers (a thread answering with canned bytes) for what no
 *   real server does on demand: a wrong Sec-WebSocket-Accept, every byte
 *   in its own write, a close in the middle of the handshake or after it,
 *   a refused CONNECT, Engine.IO and WebSocket pings, noise the client
 *   must skip, and the plain raw-ws / raw-sse subscribers.
 *
 * The bench's numbers are only as good as its clients: a client that
 * drops a split frame, misses its ready or reports a loss twice skews
 * every latency and count it produces. Each callback is logged in order,
 * so the tests also check that each fires exactly once and never from
 * inside the call that started it. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "bench/client.h"
#include "bench/http.h"
#include "bench/jwt.h"
#include "bench/util.h"
#include "bench/ws.h"
#include "../lib/siohubd_proc.h"

#define WAIT_NS     (5 * 1000000000ull) /* for something that must happen */
#define PEER_WAIT_S 5

/* ---- what the client reported, in order ---- */

typedef struct seen {
    /* Every callback, one line each: "ready", "NAME ARGS" (NAME "-" for
     * raw), "ack ID ARGS", "closed WAS_READY WHY", "left". */
    sb_buf_t log;
    int ready, messages, acks, closed, left;
    bool was_ready;
    char why[256];
    char name[64], args[256]; /* of the last message */
    uint64_t ack_id;
    char ack_args[256];
    bool emit_on_ready;    /* the ready callback emits "hello" 1 with ack 19 */
    int emit_rc;           /* what that emit returned */
    bool leave_on_message; /* the next message callback calls sb_client_leave */
    int leave_rc;
} seen_t;

static void copy_text(char *dst, size_t size, const char *p, size_t n)
{
    if (n >= size)
        n = size - 1;
    memcpy(dst, p, n);
    dst[n] = '\0';
}

static void on_ready(sb_client_t *c, uint64_t now)
{
    seen_t *s = c->owner;
    ck_assert(sb_client_is_ready(c));
    ck_assert_uint_ge(now, c->t_open);
    s->ready++;
    sb_buf_puts(&s->log, "ready\n");
    if (s->emit_on_ready)
        s->emit_rc = sb_client_emit(c, "hello", "1", 1, 19);
}

static void on_message(sb_client_t *c, const char *name, size_t nlen, const char *args, size_t alen,
                       uint64_t now)
{
    seen_t *s = c->owner;
    s->messages++;
    sb_buf_printf(&s->log, "%.*s %.*s\n", name ? (int)nlen : 1, name ? name : "-", (int)alen, args);
    copy_text(s->name, sizeof(s->name), name ? name : "-", name ? nlen : 1);
    copy_text(s->args, sizeof(s->args), args, alen);
    if (s->leave_on_message) {
        s->leave_on_message = false;
        s->leave_rc = sb_client_leave(c);
    }
}

static void on_ack(sb_client_t *c, uint64_t ack_id, const char *args, size_t alen, uint64_t now)
{
    seen_t *s = c->owner;
    s->acks++;
    s->ack_id = ack_id;
    copy_text(s->ack_args, sizeof(s->ack_args), args, alen);
    sb_buf_printf(&s->log, "ack %llu %.*s\n", (unsigned long long)ack_id, (int)alen, args);
}

static void on_closed(sb_client_t *c, bool was_ready, const char *why)
{
    seen_t *s = c->owner;
    ck_assert(!sb_client_is_ready(c));
    s->closed++;
    s->was_ready = was_ready;
    copy_text(s->why, sizeof(s->why), why, strlen(why));
    sb_buf_printf(&s->log, "closed %d %s\n", was_ready, why);
}

static void on_left(sb_client_t *c, uint64_t now)
{
    seen_t *s = c->owner;
    ck_assert(!sb_client_is_ready(c));
    s->left++;
    sb_buf_puts(&s->log, "left\n");
}

static const sb_client_cbs_t recording_cbs = {
    .ready = on_ready,
    .message = on_message,
    .ack = on_ack,
    .closed = on_closed,
    .left = on_left,
};

static const char *log_text(seen_t *s)
{
    sb_buf_append(&s->log, "", 1);
    s->log.len--;
    return sb_buf_head(&s->log);
}

/* ---- one client on its own loop ---- */

typedef struct rig {
    sb_loop_t *loop;
    sb_target_t target;
    sb_client_cfg_t cfg;
    sb_client_t client;
    seen_t seen;
} rig_t;

static void rig_init(rig_t *r, sb_protocol_t protocol, sb_transport_t transport, const char *path,
                     uint16_t port, const char *token)
{
    memset(r, 0, sizeof(*r));
    r->loop = sb_loop_new(0x5eed0000u + port);
    r->target.addr.sin_family = AF_INET;
    r->target.addr.sin_port = htons(port);
    r->target.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    snprintf(r->target.host, sizeof(r->target.host), "127.0.0.1:%u", (unsigned)port);
    r->cfg = (sb_client_cfg_t){
        .protocol = protocol,
        .transport = transport,
        .path = path,
        .token = token,
        .cbs = &recording_cbs,
    };
    sb_client_init(&r->client, r->loop, &r->cfg, &r->target, 0, 7, &r->seen);
}

static void rig_release(rig_t *r)
{
    sb_client_release(&r->client);
    sb_loop_free(r->loop);
    sb_buf_release(&r->seen.log);
}

static int rig_run(rig_t *r, bool (*done)(void *arg))
{
    return sb_loop_run(r->loop, done, &r->seen, sb_now_ns() + WAIT_NS);
}

static bool ready_or_closed(void *arg)
{
    seen_t *s = arg;
    return s->ready || s->closed;
}

static bool got_closed(void *arg)
{
    return ((seen_t *)arg)->closed > 0;
}

static bool got_ack_or_closed(void *arg)
{
    seen_t *s = arg;
    return s->acks || s->closed;
}

static bool got_message_or_closed(void *arg)
{
    seen_t *s = arg;
    return s->messages || s->closed;
}

static bool got_left_or_closed(void *arg)
{
    seen_t *s = arg;
    return s->left || s->closed;
}

/* ---- the real server ---- */

#define SECRET  "bench-client-test-secret"
#define API_KEY "bench-client-test-key"
#define OWUI    "/ws/socket.io/"

static th_siohubd_t siohubd;

/* A TCP socket bound to a port of 127.0.0.1 the kernel picks, *port;
 * not listening, so a connect to it is refused. */
static int bind_loopback(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static int connect_loopback(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {PEER_WAIT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static void daemon_start(void)
{
    th_siohubd_start(&siohubd, SECRET, API_KEY);
}

static void daemon_stop(void)
{
    th_siohubd_stop(&siohubd);
}

/* POSTs {"event":"bench","data":{"seq":seq},"to":{"room":"user:<user>"}}
 * to the daemon's API (blocking: the daemon is another process) and
 * returns the recipient count it reports. */
static int64_t api_emit_to_user(const char *user, int seq)
{
    char body[256], headers[128], host[32];
    snprintf(body, sizeof(body),
             "{\"event\":\"bench\",\"data\":{\"seq\":%d},\"to\":{\"room\":\"user:%s\"}}", seq,
             user);
    snprintf(headers, sizeof(headers),
             "Authorization: Bearer " API_KEY "\r\nContent-Type: application/json\r\n");
    snprintf(host, sizeof(host), "127.0.0.1:%u", (unsigned)siohubd.port);
    sb_buf_t out = {0}, in = {0}, scratch = {0};
    sb_http_request(&out, "POST", "/api/v1/emit", host, headers, body, strlen(body));
    int fd = connect_loopback(siohubd.port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(send(fd, sb_buf_head(&out), sb_buf_avail(&out), MSG_NOSIGNAL),
                     (ssize_t)sb_buf_avail(&out));
    sb_http_head_t h;
    const char *rbody;
    size_t blen, used;
    int rc;
    do {
        char *w = sb_buf_reserve(&in, 4096);
        ssize_t r = recv(fd, w, 4096, 0);
        ck_assert_msg(r > 0, "no answer from the API");
        in.len += (size_t)r;
        rc = sb_http_parse_response(sb_buf_head(&in), sb_buf_avail(&in), &h, &rbody, &blen, &used,
                                    &scratch);
    } while (rc == -EAGAIN);
    ck_assert_int_eq(rc, 0);
    ck_assert_msg(h.status == 200, "API emit: HTTP %d: %.*s", h.status, (int)blen, rbody);
    int64_t recipients = -1;
    ck_assert(sb_json_int(rbody, blen, "\"recipients\":", &recipients));
    close(fd);
    sb_buf_release(&out);
    sb_buf_release(&in);
    sb_buf_release(&scratch);
    return recipients;
}

static const sb_transport_t transports[] = {SB_TRANSPORT_WEBSOCKET, SB_TRANSPORT_POLLING,
                                            SB_TRANSPORT_SSE};
static const char *const transport_names[] = {"websocket", "polling", "sse"};

/* Ready, an ack for its own emit, a server emit as an event; polling
 * then leaves. One user per transport: a polling session the test closed
 * lingers on the server until its ping timeout. */
START_TEST(test_real_server_round_trip)
{
    sb_transport_t tp = transports[_i];
    char user[64];
    snprintf(user, sizeof(user), "bench-client-%s", transport_names[_i]);
    char *token = sb_jwt_user(SECRET, user, NULL, NULL, 0, 3600);
    rig_t r;
    rig_init(&r, SB_PROTO_SOCKETIO, tp, OWUI, siohubd.port, token);
    sb_client_t *c = &r.client;

    ck_assert_int_eq(sb_client_emit(c, "heartbeat", "", 0, -1), -ENOTCONN);
    ck_assert_int_eq(sb_client_leave(c), tp == SB_TRANSPORT_POLLING ? -ENOTCONN : -EOPNOTSUPP);
    sb_client_open(c);
    ck_assert_int_eq(r.seen.ready + r.seen.closed, 0); /* never from inside open */
    ck_assert(!sb_client_is_ready(c));
    ck_assert_int_eq(rig_run(&r, ready_or_closed), 0);
    ck_assert_msg(r.seen.ready == 1 && r.seen.closed == 0, "%s: %s", transport_names[_i],
                  log_text(&r.seen));
    ck_assert(sb_client_is_ready(c));

    /* user-join is the event siohubd's Open WebUI app acks: with the
     * user's id and name. An emit without an ack goes first, so polling
     * joins the two in one payload and SSE queues the second POST. */
    char join[1024];
    snprintf(join, sizeof(join), "{\"auth\":{\"token\":\"%s\"}}", token);
    ck_assert_int_eq(sb_client_emit(c, "heartbeat", "", 0, -1), 0);
    ck_assert_int_eq(sb_client_emit(c, "user-join", join, strlen(join), 7), 0);
    ck_assert_int_eq(r.seen.acks, 0);
    ck_assert_int_eq(rig_run(&r, got_ack_or_closed), 0);
    ck_assert_msg(r.seen.acks == 1 && r.seen.closed == 0, "%s", log_text(&r.seen));
    ck_assert_uint_eq(r.seen.ack_id, 7);
    char quoted[80];
    snprintf(quoted, sizeof(quoted), "\"%s\"", user);
    size_t alen = strlen(r.seen.ack_args);
    ck_assert_msg(alen > 2 && r.seen.ack_args[0] == '{' && r.seen.ack_args[alen - 1] == '}' &&
                      strstr(r.seen.ack_args, quoted),
                  "ack args: %s", r.seen.ack_args);

    /* The server's emit to the user's room; polling leaves from the
     * message callback (at once: its next request is the close). */
    r.seen.leave_on_message = tp == SB_TRANSPORT_POLLING;
    ck_assert_int_eq(api_emit_to_user(user, 42), 1);
    ck_assert_int_eq(rig_run(&r, got_message_or_closed), 0);
    ck_assert_msg(r.seen.messages == 1 && r.seen.closed == 0, "%s", log_text(&r.seen));
    ck_assert_str_eq(r.seen.name, "bench");
    int64_t seq = 0;
    ck_assert_msg(r.seen.args[0] == '{' &&
                      sb_json_int(r.seen.args, strlen(r.seen.args), "\"seq\":", &seq),
                  "args: %s", r.seen.args);
    ck_assert_int_eq(seq, 42);

    if (tp == SB_TRANSPORT_POLLING) {
        ck_assert_int_eq(r.seen.leave_rc, 0);
        ck_assert_int_eq(rig_run(&r, got_left_or_closed), 0);
        ck_assert_msg(r.seen.left == 1 && r.seen.closed == 0, "%s", log_text(&r.seen));
        ck_assert(!sb_client_is_ready(c));
        ck_assert_int_eq(sb_client_emit(c, "heartbeat", "", 0, -1), -ENOTCONN);
        /* The close packet was answered: the session is gone already. */
        ck_assert_int_eq(api_emit_to_user(user, 43), 0);
    } else {
        ck_assert_int_eq(sb_client_leave(c), -EOPNOTSUPP);
        sb_client_close(c, false);
        ck_assert(!sb_client_is_ready(c));
    }
    ck_assert_int_eq(r.seen.ready, 1);
    ck_assert_int_eq(r.seen.closed, 0);
    rig_release(&r);
    free(token);
}
END_TEST

/* siohubd refuses an SSE stream without valid credentials (a WebSocket
 * or polling CONNECT with a bad token is accepted as anonymous, as Open
 * WebUI does; the scripted peers cover a refused CONNECT). The closed
 * client can be opened again, with a good token this time. */
START_TEST(test_real_server_bad_token_then_reopen)
{
    char *bad = sb_jwt_user("not-the-secret", "bench-client-bad", NULL, NULL, 0, 3600);
    char *good = sb_jwt_user(SECRET, "bench-client-bad", NULL, NULL, 0, 3600);
    rig_t r;
    rig_init(&r, SB_PROTO_SOCKETIO, SB_TRANSPORT_SSE, OWUI, siohubd.port, bad);
    sb_client_open(&r.client);
    ck_assert_int_eq(rig_run(&r, ready_or_closed), 0);
    ck_assert_int_eq(r.seen.ready, 0);
    ck_assert_int_eq(r.seen.closed, 1);
    ck_assert(!r.seen.was_ready);
    ck_assert_msg(strstr(r.seen.why, "SSE stream refused (HTTP 401)"), "%s", r.seen.why);

    r.client.token = good;
    r.seen.closed = 0;
    sb_client_open(&r.client);
    ck_assert_int_eq(rig_run(&r, ready_or_closed), 0);
    ck_assert_msg(r.seen.ready == 1 && r.seen.closed == 0, "%s", log_text(&r.seen));
    ck_assert_int_eq(api_emit_to_user("bench-client-bad", 5), 1);
    ck_assert_int_eq(rig_run(&r, got_message_or_closed), 0);
    ck_assert_int_eq(r.seen.messages, 1);
    ck_assert_str_eq(r.seen.name, "bench");
    rig_release(&r);
    free(bad);
    free(good);
}
END_TEST

/* ---- scripted peers ---- */

#define PEER_TOKEN "tok"
#define OPEN_PACKET                                                                                \
    "0{\"sid\":\"peer-sid\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000,"         \
    "\"maxPayload\":1000000}"
#define TEN       "xxxxxxxxxx"
#define X20(s)    s s s s s s s s s s s s s s s s s s s s
#define BIG_TEXT  X20(TEN) /* over 125 bytes in a frame: the 16-bit length form */
#define BIG_EVENT "42[\"big\",\"" BIG_TEXT "\"]"
#define BIG_LINE  "big \"" BIG_TEXT "\"\n"
#define REFUSAL   "{\"message\":\"Not authorized\"}"

/* What the peers note of the client's requests and frames. */
#define WS_GET       "GET /t/?EIO=4&transport=websocket\n"
#define WS_CONNECT   "1 40{\"token\":\"tok\"}\n"
#define POLL_OPEN    "GET /t/?EIO=4&transport=polling\n"
#define POLL_CONNECT "POST /t/?EIO=4&transport=polling&sid=peer-sid 40{\"token\":\"tok\"}\n"
#define POLL_GET     "GET /t/?EIO=4&transport=polling&sid=peer-sid\n"
#define POLL_PONG    "POST /t/?EIO=4&transport=polling&sid=peer-sid 3\n"
#define SSE_GET      "GET /t/sse\nAuthorization: Bearer tok\n"

typedef struct peer peer_t;

struct peer {
    int lfd;
    uint16_t port;
    pthread_t thread;
    void (*script)(peer_t *p);
    bool split; /* every byte in its own write */
    int fd;     /* the connection the script serves */
    sb_buf_t in;
    sb_buf_t head, body; /* the last request's (peer_request), head NUL-terminated */
    sb_buf_t log;        /* what the script saw, read after the join */
};

static void peer_note(peer_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void peer_note(peer_t *p, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    sb_buf_puts(&p->log, line);
    sb_buf_puts(&p->log, "\n");
}

static void *peer_main(void *arg)
{
    peer_t *p = arg;
    struct pollfd pfd = {.fd = p->lfd, .events = POLLIN};
    p->fd = -1;
    if (poll(&pfd, 1, PEER_WAIT_S * 1000) == 1)
        p->fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (p->fd >= 0) {
        int one = 1;
        setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct timeval tv = {PEER_WAIT_S, 0};
        setsockopt(p->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        p->script(p);
        if (p->fd >= 0)
            close(p->fd);
    } else {
        peer_note(p, "no connection");
    }
    return NULL;
}

static void peer_start(peer_t *p, void (*script)(peer_t *p), bool split)
{
    memset(p, 0, sizeof(*p));
    p->script = script;
    p->split = split;
    p->lfd = bind_loopback(&p->port);
    ck_assert_int_eq(listen(p->lfd, 4), 0);
    ck_assert_int_eq(pthread_create(&p->thread, NULL, peer_main, p), 0);
}

/* Joins the script's thread; returns its log (valid until peer_release). */
static const char *peer_join(peer_t *p)
{
    pthread_join(p->thread, NULL);
    if (p->lfd >= 0)
        close(p->lfd);
    sb_buf_append(&p->log, "", 1);
    p->log.len--;
    return sb_buf_head(&p->log) ? sb_buf_head(&p->log) : "";
}

static void peer_release(peer_t *p)
{
    sb_buf_release(&p->in);
    sb_buf_release(&p->head);
    sb_buf_release(&p->body);
    sb_buf_release(&p->log);
}

/* Serves the client's next connection instead of the current one. */
static bool peer_accept_next(peer_t *p)
{
    close(p->fd);
    sb_buf_reset(&p->in);
    struct pollfd pfd = {.fd = p->lfd, .events = POLLIN};
    p->fd = -1;
    if (poll(&pfd, 1, PEER_WAIT_S * 1000) == 1)
        p->fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (p->fd < 0) {
        peer_note(p, "no next connection");
        return false;
    }
    struct timeval tv = {PEER_WAIT_S, 0};
    setsockopt(p->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    peer_note(p, "next connection");
    return true;
}

static bool peer_fill(peer_t *p)
{
    char *w = sb_buf_reserve(&p->in, 4096);
    ssize_t r = recv(p->fd, w, 4096, 0);
    if (r <= 0)
        return false;
    p->in.len += (size_t)r;
    return true;
}

static void peer_send(peer_t *p, const char *data, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t step = p->split ? 1 : n - i;
        ssize_t w = send(p->fd, data + i, step, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* the client went away: its callbacks tell the test */
        i += (size_t)w;
        if (p->split) {
            /* Gives the client time to read this byte on its own. */
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
        }
    }
}

static void peer_send_str(peer_t *p, const char *s)
{
    peer_send(p, s, strlen(s));
}

static void peer_send_and_release(peer_t *p, sb_buf_t *out)
{
    peer_send(p, sb_buf_head(out), sb_buf_avail(out));
    sb_buf_release(out);
}

/* Waits for the client to close: notes "eof" (or what came instead). */
static void peer_drain(peer_t *p)
{
    char tmp[512];
    for (;;) {
        ssize_t r = recv(p->fd, tmp, sizeof(tmp), 0);
        if (r == 0) {
            peer_note(p, "eof");
            return;
        }
        if (r < 0) {
            peer_note(p, "recv: %s", strerror(errno));
            return;
        }
        peer_note(p, "unexpected %zd bytes: %.*s", r, (int)r, tmp);
    }
}

/* Reads one request into p->head and p->body, the request line noted
 * without its " HTTP/1.1" (and with the body when there is one). */
static bool peer_request(peer_t *p)
{
    sb_buf_t *head = &p->head, *body = &p->body;
    const char *end;
    while (!sb_buf_avail(&p->in) ||
           !(end = memmem(sb_buf_head(&p->in), sb_buf_avail(&p->in), "\r\n\r\n", 4)))
        if (!peer_fill(p)) {
            peer_note(p, "no request");
            return false;
        }
    size_t hl = (size_t)(end - sb_buf_head(&p->in)) + 4;
    sb_buf_reset(head);
    sb_buf_append(head, sb_buf_head(&p->in), hl);
    sb_buf_append(head, "", 1);
    head->len--;
    sb_buf_consume(&p->in, hl);
    size_t blen = 0;
    const char *cl = strcasestr(sb_buf_head(head), "\r\nContent-Length:");
    if (cl)
        blen = strtoul(cl + 17, NULL, 10);
    while (sb_buf_avail(&p->in) < blen)
        if (!peer_fill(p)) {
            peer_note(p, "short body");
            return false;
        }
    sb_buf_reset(body);
    sb_buf_append(body, sb_buf_head(&p->in), blen);
    sb_buf_consume(&p->in, blen);
    const char *line = sb_buf_head(head);
    const char *eol = strstr(line, " HTTP/1.1\r\n");
    int ll = eol ? (int)(eol - line) : (int)strcspn(line, "\r");
    if (blen)
        peer_note(p, "%.*s %.*s", ll, line, (int)blen, sb_buf_head(body));
    else
        peer_note(p, "%.*s", ll, line);
    return true;
}

/* headers: extra header lines, each ending in \r\n. */
static void peer_answer(peer_t *p, const char *status, const char *headers, const char *body,
                        size_t blen)
{
    sb_buf_t out = {0};
    sb_buf_printf(&out,
                  "HTTP/1.1 %s\r\nContent-Type: text/plain; charset=UTF-8\r\n"
                  "%sContent-Length: %zu\r\n\r\n",
                  status, headers, blen);
    sb_buf_append(&out, body, blen);
    peer_send_and_release(p, &out);
}

static void peer_answer_ok(peer_t *p, const char *body)
{
    peer_answer(p, "200 OK", "", body, strlen(body));
}

/* ---- WebSocket, the server's side ---- */

static void ws_frame_out(sb_buf_t *out, unsigned opcode, const char *p, size_t n)
{
    uint8_t h[4] = {(uint8_t)(0x80 | opcode)};
    if (n < 126) {
        h[1] = (uint8_t)n;
        sb_buf_append(out, h, 2);
    } else {
        h[1] = 126;
        h[2] = (uint8_t)(n >> 8);
        h[3] = (uint8_t)n;
        sb_buf_append(out, h, 4);
    }
    sb_buf_append(out, p, n);
}

static void ws_text_out(sb_buf_t *out, const char *s)
{
    ws_frame_out(out, SB_WS_TEXT, s, strlen(s));
}

static void peer_ws_send(peer_t *p, unsigned opcode, const char *s)
{
    sb_buf_t out = {0};
    ws_frame_out(&out, opcode, s, strlen(s));
    peer_send_and_release(p, &out);
}

/* Reads one client frame (which must be masked), notes "OPCODE PAYLOAD". */
static bool peer_ws_read(peer_t *p)
{
    for (;;) {
        const uint8_t *q = (const uint8_t *)sb_buf_head(&p->in);
        size_t n = sb_buf_avail(&p->in);
        if (n >= 2) {
            size_t len = q[1] & 0x7f, hl = 2;
            if (len == 126 && n >= 4) {
                len = ((size_t)q[2] << 8) | q[3];
                hl = 4;
            }
            if (!(q[1] & 0x80)) {
                peer_note(p, "unmasked frame");
                return false;
            }
            if (len < 126 || hl == 4) {
                if (n >= hl + 4 + len) {
                    char payload[1024];
                    size_t m = len < sizeof(payload) ? len : sizeof(payload);
                    for (size_t i = 0; i < m; i++)
                        payload[i] = (char)(q[hl + 4 + i] ^ q[hl + (i & 3)]);
                    peer_note(p, "%u%s %.*s", q[0] & 0x0fu, q[0] & 0x80 ? "" : " (no fin)", (int)m,
                              payload);
                    sb_buf_consume(&p->in, hl + 4 + len);
                    return true;
                }
            }
        }
        if (!peer_fill(p)) {
            peer_note(p, "no frame");
            return false;
        }
    }
}

/* Reads the upgrade request and answers 101 with the accept its key asks
 * for (or, wrong_accept, with one changed character). */
static bool peer_ws_upgrade(peer_t *p, bool wrong_accept)
{
    bool ok = peer_request(p);
    const char *k = ok ? strcasestr(sb_buf_head(&p->head), "\r\nSec-WebSocket-Key: ") : NULL;
    if (!k) {
        if (ok)
            peer_note(p, "no Sec-WebSocket-Key");
        return false;
    }
    k += 21;
    char cat[128];
    int n = snprintf(cat, sizeof(cat), "%.*s258EAFA5-E914-47DA-95CA-C5AB0DC85B11",
                     (int)strcspn(k, "\r"), k);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    char accept[64];
    EVP_Digest(cat, (size_t)n, md, &mdlen, EVP_sha1(), NULL);
    EVP_EncodeBlock((unsigned char *)accept, md, (int)mdlen);
    if (wrong_accept)
        accept[3] = accept[3] == 'A' ? 'B' : 'A';
    sb_buf_t out = {0};
    sb_buf_printf(&out,
                  "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                  accept);
    peer_send_and_release(p, &out);
    return true;
}

/* Upgrade, Engine.IO open, the client's CONNECT read. */
static bool peer_ws_until_connect(peer_t *p)
{
    if (!peer_ws_upgrade(p, false))
        return false;
    peer_ws_send(p, SB_WS_TEXT, OPEN_PACKET);
    return peer_ws_read(p);
}

/* Open and CONNECT over polling; true once the CONNECT was answered and
 * the next GET read. */
static bool peer_polling_until_get(peer_t *p)
{
    bool ok = peer_request(p);
    if (ok)
        peer_answer_ok(p, OPEN_PACKET);
    ok = ok && peer_request(p);
    if (ok)
        peer_answer_ok(p, "ok");
    ok = ok && peer_request(p);
    return ok;
}

static bool peer_sse_head(peer_t *p, bool chunked)
{
    bool ok = peer_request(p);
    if (ok) {
        const char *auth = strcasestr(sb_buf_head(&p->head), "\r\nAuthorization: ");
        if (auth)
            peer_note(p, "%.*s", (int)strcspn(auth + 2, "\r"), auth + 2);
        peer_send_str(p, chunked ? "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                   "Transfer-Encoding: chunked\r\n\r\n"
                                 : "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n");
    }
    return ok;
}

static void chunk_out(sb_buf_t *out, const char *s)
{
    sb_buf_printf(out, "%zx\r\n%s\r\n", strlen(s), s);
}

/* Opens r's client and runs it until its closed callback, then joins
 * the peer before any assertion: a failure must not leave the thread
 * running on this frame's peer. Returns the peer's log; name says which
 * case failed. */
static const char *run_until_closed(rig_t *r, peer_t *p, const char *name)
{
    sb_client_open(&r->client);
    int rc = rig_run(r, got_closed);
    const char *peer_log = peer_join(p);
    ck_assert_msg(rc == 0, "%s: no closed callback; client:\n%speer:\n%s", name, log_text(&r->seen),
                  peer_log);
    return peer_log;
}

/* ---- scripts: whole conversations ---- */

static void script_ws_conversation(peer_t *p)
{
    if (!peer_ws_until_connect(p))
        return;
    /* One write for all: split, every frame boundary falls inside a read
     * too. Noise between the events: a noop, another namespace, a binary
     * frame. */
    sb_buf_t out = {0};
    ws_text_out(&out, "40{\"sid\":\"sock-1\"}");
    ws_text_out(&out, "42[\"bench\",{\"seq\":1}]");
    ws_text_out(&out, "6");
    ws_text_out(&out, "42/admin,[\"elsewhere\"]");
    ws_frame_out(&out, SB_WS_BINARY, "\x01\x02", 2);
    ws_text_out(&out, "42[\"two\",1,\"x\"]");
    ws_text_out(&out, "42[\"noargs\"]");
    ws_text_out(&out, BIG_EVENT);
    ws_frame_out(&out, SB_WS_PING, "hb", 2);
    ws_text_out(&out, "2");
    peer_send_and_release(p, &out);
    /* The emit from the ready callback, the WebSocket pong, the Engine.IO
     * pong, in the order their causes came. */
    for (int i = 0; i < 3; i++)
        if (!peer_ws_read(p))
            return;
    peer_ws_send(p, SB_WS_TEXT, "4319[{\"ok\":1}]");
    peer_ws_send(p, SB_WS_CLOSE, "\x03\xe8");
    peer_drain(p);
}

static void script_polling_conversation(peer_t *p)
{
    if (!peer_polling_until_get(p))
        return;
    static const char events[] = "40{\"sid\":\"sock-1\"}\x1e"
                                 "42[\"bench\",{\"seq\":1}]\x1e"
                                 "6\x1e"
                                 "2\x1e"
                                 "42/admin,[\"elsewhere\"]\x1e"
                                 "42[\"two\",1,\"x\"]\x1e"
                                 "42[\"noargs\"]";
    peer_answer_ok(p, events);
    /* After a ping, the pong goes out between two GETs. */
    if (peer_request(p)) {
        peer_answer_ok(p, "ok");
        if (peer_request(p)) {
            /* A chunked answer, ending with the Engine.IO close. */
            sb_buf_t out = {0};
            sb_buf_puts(&out, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
            chunk_out(&out, "42[\"thr");
            chunk_out(&out, "ee\",[]]\x1e");
            chunk_out(&out, "1");
            sb_buf_puts(&out, "0\r\n\r\n");
            peer_send_and_release(p, &out);
            peer_drain(p);
        }
    }
}

static void script_sse_conversation(peer_t *p)
{
    if (!peer_sse_head(p, true))
        return;
    /* A comment, a retry: block without data, an event across two chunks,
     * two events in one. */
    sb_buf_t out = {0};
    chunk_out(&out, ": hello\n\n");
    chunk_out(&out, "retry: 1000\n\nevent: connect\ndata: {\"sid\":\"sse-sock\"}\n\n");
    chunk_out(&out, "event: bench\ndata: [{\"seq\":1}]\n");
    chunk_out(&out, "\n");
    chunk_out(&out, "event: two\ndata: [1,\"x\"]\n\nevent: disconnect\ndata: {\"r\":\"bye\"}\n\n");
    peer_send_and_release(p, &out);
    peer_drain(p);
}

static void script_raw_ws_conversation(peer_t *p)
{
    if (!peer_ws_upgrade(p, false))
        return;
    sb_buf_t out = {0};
    ws_text_out(&out, "hello");
    ws_frame_out(&out, SB_WS_PING, "p", 1);
    ws_text_out(&out, "{\"seq\":2}");
    ws_frame_out(&out, SB_WS_CLOSE, "\x03\xe9", 2);
    peer_send_and_release(p, &out);
    if (peer_ws_read(p))
        peer_drain(p);
}

static void script_raw_sse_conversation(peer_t *p)
{
    /* No length and no chunking: the stream is the rest of the connection. */
    if (!peer_sse_head(p, false))
        return;
    peer_send_str(p, "data: one\n\n: comment\n\nid: 3\nevent: named\ndata: two\n\n");
}

typedef struct conversation {
    const char *name;
    sb_protocol_t protocol;
    sb_transport_t transport;
    const char *path;
    const char *token;
    void (*script)(peer_t *p);
    bool emit_on_ready;
    const char *peer_log; /* what the peer must have seen */
    const char *log;      /* what the client must have called back */
} conversation_t;

static const conversation_t conversations[] = {
    {
        .name = "websocket",
        .protocol = SB_PROTO_SOCKETIO,
        .transport = SB_TRANSPORT_WEBSOCKET,
        .path = "/t/",
        .token = PEER_TOKEN,
        .script = script_ws_conversation,
        .emit_on_ready = true,
        .peer_log = WS_GET WS_CONNECT "1 4219[\"hello\",1]\n10 hb\n1 3\neof\n",
        .log = "ready\n"
               "bench {\"seq\":1}\n"
               "two 1,\"x\"\n"
               "noargs \n" BIG_LINE "ack 19 {\"ok\":1}\n"
               "closed 1 the server sent a close frame (1000)\n",
    },
    {
        .name = "polling",
        .protocol = SB_PROTO_SOCKETIO,
        .transport = SB_TRANSPORT_POLLING,
        .path = "/t/",
        .token = PEER_TOKEN,
        .script = script_polling_conversation,
        .peer_log = POLL_OPEN POLL_CONNECT POLL_GET POLL_PONG POLL_GET "eof\n",
        .log = "ready\n"
               "bench {\"seq\":1}\n"
               "two 1,\"x\"\n"
               "noargs \n"
               "three []\n"
               "closed 1 the server closed the Engine.IO session\n",
    },
    {
        .name = "sse",
        .protocol = SB_PROTO_SOCKETIO,
        .transport = SB_TRANSPORT_SSE,
        .path = "/t/",
        .token = PEER_TOKEN,
        .script = script_sse_conversation,
        .peer_log = SSE_GET "eof\n",
        .log = "ready\n"
               "bench {\"seq\":1}\n"
               "two 1,\"x\"\n"
               "closed 1 SSE event disconnect: {\"r\":\"bye\"}\n",
    },
    {
        .name = "raw-ws",
        .protocol = SB_PROTO_RAW_WS,
        .transport = SB_TRANSPORT_WEBSOCKET,
        .path = "/sub/x",
        .script = script_raw_ws_conversation,
        .peer_log = "GET /sub/x\n"
                    "10 p\n"
                    "eof\n",
        .log = "ready\n"
               "- hello\n"
               "- {\"seq\":2}\n"
               "closed 1 the server sent a close frame (1001)\n",
    },
    {
        .name = "raw-sse",
        .protocol = SB_PROTO_RAW_SSE,
        .transport = SB_TRANSPORT_SSE,
        .path = "/sub/x",
        .script = script_raw_sse_conversation,
        .peer_log = "GET /sub/x\n",
        .log = "ready\n"
               "- one\n"
               "- two\n"
               "closed 1 the SSE stream closed\n",
    },
};

#define NCONVERSATIONS (int)(sizeof(conversations) / sizeof(conversations[0]))

/* Each conversation twice: whole, then one byte per write. */
START_TEST(test_conversation)
{
    const conversation_t *cv = &conversations[_i / 2];
    bool split = _i % 2;
    peer_t p;
    peer_start(&p, cv->script, split);
    rig_t r;
    rig_init(&r, cv->protocol, cv->transport, cv->path, p.port, cv->token);
    r.seen.emit_on_ready = cv->emit_on_ready;
    const char *peer_log = run_until_closed(&r, &p, cv->name);
    ck_assert_msg(!strcmp(log_text(&r.seen), cv->log), "%s%s: client:\n%s", cv->name,
                  split ? " (split)" : "", log_text(&r.seen));
    ck_assert_msg(!strcmp(peer_log, cv->peer_log), "%s%s: peer:\n%s", cv->name,
                  split ? " (split)" : "", peer_log);
    ck_assert_int_eq(r.seen.emit_rc, 0);
    if (sb_proto_raw(cv->protocol)) {
        ck_assert_int_eq(sb_client_emit(&r.client, "x", "", 0, -1), -EINVAL);
        ck_assert_int_eq(sb_client_leave(&r.client), -EOPNOTSUPP);
    }
    peer_release(&p);
    rig_release(&r);
}
END_TEST

/* ---- scripts: how sessions end ---- */

static void script_ws_wrong_accept(peer_t *p)
{
    if (peer_ws_upgrade(p, true))
        peer_drain(p);
}

START_TEST(test_ws_wrong_accept)
{
    peer_t p;
    peer_start(&p, script_ws_wrong_accept, false);
    rig_t r;
    rig_init(&r, SB_PROTO_SOCKETIO, SB_TRANSPORT_WEBSOCKET, "/t/", p.port, PEER_TOKEN);
    const char *peer_log = run_until_closed(&r, &p, "websocket wrong accept");
    ck_assert_str_eq(log_text(&r.seen), "closed 0 wrong Sec-WebSocket-Accept\n");
    ck_assert_str_eq(peer_log, "GET /t/?EIO=4&transport=websocket\neof\n");
    peer_release(&p);
    rig_release(&r);
}
END_TEST

/* The peer closes with part of the handshake sent. */
static void script_ws_cut(peer_t *p)
{
    if (!peer_ws_upgrade(p, false))
        return;
    sb_buf_t out = {0};
    ws_text_out(&out, OPEN_PACKET);
    peer_send(p, sb_buf_head(&out), 20);
    sb_buf_release(&out);
}

static void script_polling_cut(peer_t *p)
{
    if (peer_request(p))
        peer_send_str(p, "HTTP/1.1 200 OK\r\nContent-Length: 118\r\n\r\n0{\"sid\"");
}

static void script_sse_cut(peer_t *p)
{
    if (peer_sse_head(p, true))
        peer_send_str(p, "30\r\nevent: connect\ndata: {\"si");
}

/* The peer closes once the client is ready (polling: with its next GET
 * read). */
static void script_ws_close_when_ready(peer_t *p)
{
    if (peer_ws_until_connect(p))
        peer_ws_send(p, SB_WS_TEXT, "40{\"sid\":\"sock-1\"}");
}

static void script_polling_close_when_ready(peer_t *p)
{
    if (!peer_polling_until_get(p))
        return;
    peer_answer_ok(p, "40{\"sid\":\"sock-1\"}");
    peer_request(p);
}

static void script_sse_close_when_ready(peer_t *p)
{
    sb_buf_t out = {0};
    chunk_out(&out, "event: connect\ndata: {\"sid\":\"sse-sock\"}\n\n");
    if (peer_sse_head(p, true))
        peer_send_and_release(p, &out);
}

/* The CONNECT refused (SSE: the stream). */
static void script_ws_refuse(peer_t *p)
{
    if (!peer_ws_until_connect(p))
        return;
    peer_ws_send(p, SB_WS_TEXT, "44" REFUSAL);
    peer_drain(p);
}

static void script_polling_refuse(peer_t *p)
{
    if (!peer_polling_until_get(p))
        return;
    peer_answer_ok(p, "44" REFUSAL);
    peer_drain(p);
}

static void script_sse_refuse(peer_t *p)
{
    if (peer_request(p)) {
        static const char e[] = "{\"error\":\"bad token\"}";
        peer_answer(p, "401 Unauthorized", "", e, sizeof(e) - 1);
        peer_drain(p);
    }
}

/* The server ends keep-alive after the open packet: the CONNECT goes on a
 * new connection. */
static void script_polling_keepalive_ends(peer_t *p)
{
    if (peer_request(p)) {
        peer_answer(p, "200 OK", "Connection: close\r\n", OPEN_PACKET, strlen(OPEN_PACKET));
        if (peer_accept_next(p) && peer_request(p)) {
            peer_answer_ok(p, "ok");
            if (peer_request(p)) {
                peer_answer_ok(p, "40{\"sid\":\"sock-1\"}");
                peer_request(p);
            }
        }
    }
}

/* The same, but nothing listens any more when the client comes back. */
static void script_polling_reopen_refused(peer_t *p)
{
    if (peer_request(p)) {
        close(p->lfd);
        p->lfd = -1;
        peer_answer(p, "200 OK", "Connection: close\r\n", OPEN_PACKET, strlen(OPEN_PACKET));
        peer_drain(p);
    }
}

static void script_sse_connect_twice(peer_t *p)
{
    sb_buf_t out = {0};
    chunk_out(&out,
              "event: connect\ndata: {\"sid\":\"a\"}\n\nevent: connect\ndata: {\"sid\":\"b\"}\n\n");
    if (peer_sse_head(p, true)) {
        peer_send(p, sb_buf_head(&out), sb_buf_avail(&out));
        peer_drain(p);
    }
    sb_buf_release(&out);
}

typedef struct ending {
    const char *name;
    sb_transport_t transport;
    void (*script)(peer_t *p);
    const char *log;      /* what the client must have called back; NULL: see the test */
    const char *peer_log; /* what the peer must have seen */
} ending_t;

static const ending_t endings[] = {
    {
        .name = "websocket mid-handshake",
        .transport = SB_TRANSPORT_WEBSOCKET,
        .script = script_ws_cut,
        .log = "closed 0 connection closed by the server\n",
        .peer_log = WS_GET,
    },
    {
        .name = "polling mid-handshake",
        .transport = SB_TRANSPORT_POLLING,
        .script = script_polling_cut,
        .log = "closed 0 connection closed by the server\n",
        .peer_log = POLL_OPEN,
    },
    {
        .name = "sse mid-handshake",
        .transport = SB_TRANSPORT_SSE,
        .script = script_sse_cut,
        .log = "closed 0 the SSE stream closed\n",
        .peer_log = SSE_GET,
    },
    {
        .name = "websocket after ready",
        .transport = SB_TRANSPORT_WEBSOCKET,
        .script = script_ws_close_when_ready,
        .log = "ready\nclosed 1 connection closed by the server\n",
        .peer_log = WS_GET WS_CONNECT,
    },
    {
        .name = "polling after ready",
        .transport = SB_TRANSPORT_POLLING,
        .script = script_polling_close_when_ready,
        .log = "ready\nclosed 1 connection closed by the server\n",
        .peer_log = POLL_OPEN POLL_CONNECT POLL_GET POLL_GET,
    },
    {
        .name = "sse after ready",
        .transport = SB_TRANSPORT_SSE,
        .script = script_sse_close_when_ready,
        .log = "ready\nclosed 1 the SSE stream closed\n",
        .peer_log = SSE_GET,
    },
    {
        .name = "websocket refused",
        .transport = SB_TRANSPORT_WEBSOCKET,
        .script = script_ws_refuse,
        .log = "closed 0 CONNECT refused: " REFUSAL "\n",
        .peer_log = WS_GET WS_CONNECT "eof\n",
    },
    {
        .name = "polling refused",
        .transport = SB_TRANSPORT_POLLING,
        .script = script_polling_refuse,
        .log = "closed 0 CONNECT refused: " REFUSAL "\n",
        .peer_log = POLL_OPEN POLL_CONNECT POLL_GET "eof\n",
    },
    {
        .name = "sse refused",
        .transport = SB_TRANSPORT_SSE,
        .script = script_sse_refuse,
        .log = NULL, /* the reason quotes the whole answer, with its head */
        .peer_log = "GET /t/sse\neof\n",
    },
    {
        .name = "polling keep-alive ends",
        .transport = SB_TRANSPORT_POLLING,
        .script = script_polling_keepalive_ends,
        .log = "ready\nclosed 1 connection closed by the server\n",
        .peer_log = POLL_OPEN "next connection\n" POLL_CONNECT POLL_GET POLL_GET,
    },
    {
        .name = "polling reopen refused",
        .transport = SB_TRANSPORT_POLLING,
        .script = script_polling_reopen_refused,
        .log = "closed 0 connect: Connection refused\n",
        .peer_log = POLL_OPEN "eof\n",
    },
    {
        .name = "sse connect twice",
        .transport = SB_TRANSPORT_SSE,
        .script = script_sse_connect_twice,
        .log = "ready\nclosed 1 bad SSE connect event: {\"sid\":\"b\"}\n",
        .peer_log = SSE_GET "eof\n",
    },
};

#define NENDINGS (int)(sizeof(endings) / sizeof(endings[0]))

START_TEST(test_session_ends)
{
    const ending_t *e = &endings[_i];
    peer_t p;
    peer_start(&p, e->script, false);
    rig_t r;
    rig_init(&r, SB_PROTO_SOCKETIO, e->transport, "/t/", p.port, PEER_TOKEN);
    const char *peer_log = run_until_closed(&r, &p, e->name);
    ck_assert_msg(!strcmp(peer_log, e->peer_log), "%s: peer:\n%s", e->name, peer_log);
    /* Nothing more comes after closed. */
    ck_assert_int_eq(sb_loop_run(r.loop, NULL, NULL, sb_now_ns() + 20000000u), -ETIMEDOUT);
    if (e->log) {
        ck_assert_msg(!strcmp(log_text(&r.seen), e->log), "%s: %s", e->name, log_text(&r.seen));
    } else {
        ck_assert_int_eq(r.seen.ready, 0);
        ck_assert_int_eq(r.seen.closed, 1);
        ck_assert(!r.seen.was_ready);
        ck_assert_msg(strstr(r.seen.why, "SSE stream refused (HTTP 401)") &&
                          strstr(r.seen.why, "bad token"),
                      "%s: %s", e->name, r.seen.why);
    }
    peer_release(&p);
    rig_release(&r);
}
END_TEST

/* Nothing listens: a socket bound to a port but not listening refuses. */
START_TEST(test_connect_refused)
{
    uint16_t port;
    int fd = bind_loopback(&port);
    rig_t r;
    rig_init(&r, SB_PROTO_SOCKETIO, transports[_i], "/t/", port, PEER_TOKEN);
    sb_client_open(&r.client);
    ck_assert_int_eq(r.seen.closed, 0);
    ck_assert_int_eq(rig_run(&r, got_closed), 0);
    ck_assert_str_eq(log_text(&r.seen), "closed 0 connect: Connection refused\n");
    rig_release(&r);
    close(fd);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bench_client");

    TCase *real = tcase_create("siohubd");
    tcase_add_unchecked_fixture(real, daemon_start, daemon_stop);
    tcase_set_timeout(real, 30);
    tcase_add_loop_test(real, test_real_server_round_trip, 0, 3);
    tcase_add_test(real, test_real_server_bad_token_then_reopen);
    suite_add_tcase(s, real);

    TCase *scripted = tcase_create("scripted");
    tcase_set_timeout(scripted, 30);
    tcase_add_loop_test(scripted, test_conversation, 0, 2 * NCONVERSATIONS);
    tcase_add_test(scripted, test_ws_wrong_accept);
    tcase_add_loop_test(scripted, test_session_ends, 0, NENDINGS);
    tcase_add_loop_test(scripted, test_connect_refused, 0, 3);
    suite_add_tcase(s, scripted);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
