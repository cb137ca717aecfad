#include "harness.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/ws_frame.h"

/* ---- the loop ---- */

typedef struct until {
    th_cond_fn cond;
    void *arg;
    uint64_t deadline;
    bool met;
    bool once;
} until_t;

static int until_prepare(sh_loop_t *loop, void *data)
{
    until_t *u = data;
    if (u->once) {
        sh_loop_stop(loop);
        return 0;
    }
    if (u->cond && u->cond(u->arg)) {
        u->met = true;
        sh_loop_stop(loop);
        return 0;
    }
    uint64_t now = sh_time_ms();
    if (now >= u->deadline) {
        sh_loop_stop(loop);
        return 0;
    }
    return (int)(u->deadline - now);
}

bool th_run_until(sh_loop_t *loop, th_cond_fn cond, void *arg, unsigned timeout_ms)
{
    until_t u = {.cond = cond, .arg = arg, .deadline = sh_time_ms() + timeout_ms};
    ck_assert_int_eq(sh_loop_add_prepare(loop, until_prepare, &u), 0);
    ck_assert_int_eq(sh_loop_run(loop), 0);
    sh_loop_remove_prepare(loop, until_prepare, &u);
    /* The condition may have come true in the last iteration. */
    if (!u.met && cond && cond(arg))
        u.met = true;
    return u.met;
}

typedef struct want_int {
    const int *p;
    int at_least;
} want_int_t;

static bool int_reached(void *arg)
{
    want_int_t *w = arg;
    return *w->p >= w->at_least;
}

bool th_wait_count(sh_loop_t *loop, const int *p, int at_least, unsigned timeout_ms)
{
    want_int_t w = {p, at_least};
    return th_run_until(loop, int_reached, &w, timeout_ms);
}

typedef struct want_uint {
    const unsigned *p;
    unsigned want;
} want_uint_t;

static bool uint_equal(void *arg)
{
    want_uint_t *w = arg;
    return *w->p == w->want;
}

bool th_wait_refs(sh_loop_t *loop, const unsigned *p, unsigned want, unsigned timeout_ms)
{
    want_uint_t w = {p, want};
    return th_run_until(loop, uint_equal, &w, timeout_ms);
}

void th_run_for(sh_loop_t *loop, unsigned ms)
{
    th_run_until(loop, NULL, NULL, ms);
}

void th_run_once(sh_loop_t *loop)
{
    until_t u = {.once = true};
    ck_assert_int_eq(sh_loop_add_prepare(loop, until_prepare, &u), 0);
    ck_assert_int_eq(sh_loop_run(loop), 0);
    sh_loop_remove_prepare(loop, until_prepare, &u);
}

/* ---- env ---- */

void th_env_start(th_env_t *env)
{
    memset(env, 0, sizeof(*env));
    env->loop = sh_loop_new();
    ck_assert_ptr_nonnull(env->loop);
    sh_http_options_t o = {
        .host = "127.0.0.1",
        .port = 0,
        /* Room for a broadcast test's 150 polling clients (two
         * connections each). */
        .max_connections = 512,
        .idle_timeout_ms = 0,
        .header_memory = 16384,
    };
    sh_buf_t err = SH_BUF_INIT;
    env->http = sh_http_new(env->loop, &o, &err);
    ck_assert_msg(env->http != NULL, "sh_http_new: %s", sh_buf_peek(&err));
    sh_buf_release(&err);
    env->port = sh_http_port(env->http);
    ck_assert_uint_ne(env->port, 0);
}

static bool http_idle(void *arg)
{
    th_env_t *env = arg;
    return sh_http_connections(env->http) == 0;
}

bool th_env_wait_idle(th_env_t *env, unsigned timeout_ms)
{
    return th_run_until(env->loop, http_idle, env, timeout_ms);
}

void th_env_stop(th_env_t *env)
{
    sh_http_free(env->http);
    env->http = NULL;
    sh_loop_run_deferred(env->loop);
    sh_loop_free(env->loop);
    env->loop = NULL;
}

/* ---- sockets ---- */

void th_tcp_pair(int fds[2])
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(lfd, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sin);
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(listen(lfd, 1), 0);
    ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sin, &sl), 0);
    int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(cfd, 0);
    ck_assert_int_eq(connect(cfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    int sfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    ck_assert_int_ge(sfd, 0);
    close(lfd);
    int one = 1;
    setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fds[0] = sfd;
    fds[1] = cfd;
}

static void on_conn_io(sh_loop_t *loop, sh_io_t *io, unsigned events)
{
    th_conn_t *c = io->data;
    for (;;) {
        char *w = sh_buf_reserve(&c->in, 65536);
        ssize_t n = read(c->fd, w, 65536);
        if (n > 0) {
            sh_buf_commit(&c->in, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        /* EOF or an error (ECONNRESET): the peer is gone. */
        c->eof = true;
        sh_io_stop(loop, &c->io);
        return;
    }
}

void th_conn_adopt(th_conn_t *c, sh_loop_t *loop, int fd)
{
    memset(c, 0, sizeof(*c));
    c->loop = loop;
    c->fd = fd;
    int flags = fcntl(fd, F_GETFL);
    ck_assert_int_ge(flags, 0);
    ck_assert_int_eq(fcntl(fd, F_SETFL, flags | O_NONBLOCK), 0);
    ck_assert_int_eq(sh_io_start(loop, &c->io, fd, SH_IO_READ, on_conn_io, c), 0);
}

void th_conn_connect(th_conn_t *c, sh_loop_t *loop, uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sin = {
        .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = htons(port)};
    /* Loopback connects complete at once (the kernel's backlog accepts
     * before libmicrohttpd does). */
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    th_conn_adopt(c, loop, fd);
}

void th_conn_write(th_conn_t *c, const void *p, size_t n)
{
    const char *s = p;
    uint64_t deadline = sh_time_ms() + TH_WAIT_MS;
    while (n) {
        ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
        if (w > 0) {
            s += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        ck_assert_msg(w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK), "client write: %s",
                      strerror(errno));
        ck_assert_msg(sh_time_ms() < deadline, "client write: peer does not read");
        struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
        poll(&pfd, 1, 10);
    }
}

void th_conn_write_str(th_conn_t *c, const char *s)
{
    th_conn_write(c, s, strlen(s));
}

void th_conn_pause(th_conn_t *c)
{
    if (!c->paused && !c->eof)
        sh_io_stop(c->loop, &c->io);
    c->paused = true;
}

void th_conn_resume(th_conn_t *c)
{
    if (c->paused && !c->eof)
        ck_assert_int_eq(sh_io_start(c->loop, &c->io, c->fd, SH_IO_READ, on_conn_io, c), 0);
    c->paused = false;
}

typedef struct want_bytes {
    th_conn_t *c;
    size_t n;
} want_bytes_t;

static bool have_bytes(void *arg)
{
    want_bytes_t *w = arg;
    return sh_buf_avail(&w->c->in) >= w->n || w->c->eof;
}

bool th_conn_wait_bytes(th_conn_t *c, size_t n, unsigned timeout_ms)
{
    want_bytes_t w = {c, n};
    th_run_until(c->loop, have_bytes, &w, timeout_ms);
    return sh_buf_avail(&c->in) >= n;
}

static bool is_eof(void *arg)
{
    return ((th_conn_t *)arg)->eof;
}

bool th_conn_wait_eof(th_conn_t *c, unsigned timeout_ms)
{
    return th_run_until(c->loop, is_eof, c, timeout_ms);
}

void th_conn_close(th_conn_t *c)
{
    if (c->loop)
        sh_io_stop(c->loop, &c->io);
    if (c->fd > 0)
        close(c->fd);
    c->fd = -1;
    sh_buf_release(&c->in);
}

/* ---- HTTP ---- */

static const char *find_crlfcrlf(const char *p, size_t n)
{
    for (size_t i = 0; i + 4 <= n; i++)
        if (!memcmp(p + i, "\r\n\r\n", 4))
            return p + i;
    return NULL;
}

/* Looks a header up in a raw head (lines after the status line). */
static const char *head_header(const char *head, size_t headlen, const char *name, int index,
                               size_t *vlen)
{
    size_t nl = strlen(name);
    const char *p = memchr(head, '\n', headlen);
    const char *end = head + headlen;
    int seen = 0;
    while (p && p + 1 < end) {
        const char *line = p + 1;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            eol = end;
        size_t ll = (size_t)(eol - line);
        if (ll && line[ll - 1] == '\r')
            ll--;
        if (ll > nl && line[nl] == ':' && !strncasecmp(line, name, nl)) {
            if (seen++ == index) {
                const char *v = line + nl + 1;
                while (v < line + ll && (*v == ' ' || *v == '\t'))
                    v++;
                *vlen = (size_t)(line + ll - v);
                return v;
            }
        }
        p = eol < end ? eol : NULL;
    }
    return NULL;
}

int th_http_parse(sh_buf_t *in, bool eof, th_resp_t *r)
{
    const char *p = sh_buf_peek(in);
    size_t n = sh_buf_avail(in);
    const char *hend = find_crlfcrlf(p, n);
    if (!hend)
        return eof && n ? -1 : 0;
    size_t headlen = (size_t)(hend - p) + 2; /* keep the last line's CRLF */
    int status = 0;
    if (headlen < 12 || memcmp(p, "HTTP/1.", 7) || sscanf(p + 9, "%3d", &status) != 1)
        return -1;
    size_t vlen;
    const char *te = head_header(p, headlen, "Transfer-Encoding", 0, &vlen);
    if (te)
        ck_abort_msg("chunked responses are not expected from these servers");
    const char *cl = head_header(p, headlen, "Content-Length", 0, &vlen);
    size_t bodylen = 0;
    size_t start = headlen + 2;
    bool delimited = true;
    if (status / 100 == 1 || status == 204 || status == 304) {
        bodylen = 0;
    } else if (cl) {
        bodylen = (size_t)strtoull(cl, NULL, 10);
    } else {
        delimited = false;
        if (!eof)
            return 0;
        bodylen = n - start;
    }
    if (delimited && n - start < bodylen)
        return 0;
    sh_buf_reset(&r->head);
    sh_buf_reset(&r->body);
    sh_buf_append(&r->head, p, headlen);
    sh_buf_append(&r->body, p + start, bodylen);
    r->status = status;
    sh_buf_consume(in, start + bodylen);
    return 1;
}

typedef struct want_resp {
    th_conn_t *c;
    th_resp_t *r;
    int rc;
} want_resp_t;

static bool have_resp(void *arg)
{
    want_resp_t *w = arg;
    if (w->rc == 0)
        w->rc = th_http_parse(&w->c->in, w->c->eof, w->r);
    return w->rc != 0 || w->c->eof;
}

bool th_http_read(th_conn_t *c, th_resp_t *r, unsigned timeout_ms)
{
    want_resp_t w = {c, r, 0};
    th_run_until(c->loop, have_resp, &w, timeout_ms);
    if (w.rc == 0)
        have_resp(&w);
    ck_assert_msg(w.rc >= 0, "malformed HTTP response: %s", sh_buf_peek(&c->in));
    return w.rc == 1;
}

const char *th_resp_header(const th_resp_t *r, const char *name, char *out, size_t outlen)
{
    size_t vlen;
    const char *v = head_header(sh_buf_peek(&r->head), sh_buf_avail(&r->head), name, 0, &vlen);
    if (!v)
        return NULL;
    snprintf(out, outlen, "%.*s", (int)vlen, v);
    return out;
}

int th_resp_header_count(const th_resp_t *r, const char *name)
{
    size_t vlen;
    int n = 0;
    while (head_header(sh_buf_peek(&r->head), sh_buf_avail(&r->head), name, n, &vlen))
        n++;
    return n;
}

void th_resp_release(th_resp_t *r)
{
    sh_buf_release(&r->head);
    sh_buf_release(&r->body);
    r->status = 0;
}

int th_http_exchange(th_env_t *env, const char *raw, size_t rawlen, th_resp_t *r)
{
    th_conn_t c;
    th_conn_connect(&c, env->loop, env->port);
    th_conn_write(&c, raw, rawlen);
    bool ok = th_http_read(&c, r, TH_WAIT_MS);
    th_conn_close(&c);
    return ok ? r->status : -1;
}

void th_http_send(th_conn_t *c, const char *method, const char *target, const char *headers,
                  const char *body, size_t bodylen)
{
    sh_buf_t b = SH_BUF_INIT;
    sh_buf_appendf(&b, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s", method, target,
                   headers ? headers : "");
    if (body)
        sh_buf_appendf(&b, "Content-Length: %zu\r\n", bodylen);
    sh_buf_append_str(&b, "\r\n");
    if (body)
        sh_buf_append(&b, body, bodylen);
    th_conn_write(c, sh_buf_peek(&b), sh_buf_avail(&b));
    sh_buf_release(&b);
}

/* ---- WebSocket ---- */

void th_ws_encode(sh_buf_t *out, uint8_t opcode, bool fin, const void *p, size_t n, bool masked)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint8_t hdr[SH_WS_MAX_SERVER_HEADER];
    size_t hl = sh_ws_frame_header_encode(hdr, opcode, fin, n);
    if (masked)
        hdr[1] |= 0x80;
    sh_buf_append(out, hdr, hl);
    if (masked)
        sh_buf_append(out, key, 4);
    char *w = sh_buf_reserve(out, n);
    for (size_t i = 0; i < n; i++)
        w[i] = (char)(((const uint8_t *)p)[i] ^ (masked ? key[i & 3] : 0));
    sh_buf_commit(out, n);
}

int th_ws_decode(sh_buf_t *in, uint8_t *opcode, bool *fin, sh_buf_t *payload)
{
    sh_ws_frame_header_t h;
    int rc = sh_ws_frame_parse_header(sh_buf_peek(in), sh_buf_avail(in), false, &h);
    if (rc == -EAGAIN)
        return 0;
    if (rc < 0 || h.masked)
        return -1;
    if (sh_buf_avail(in) - h.header_len < h.payload_len)
        return 0;
    *opcode = h.opcode;
    if (fin)
        *fin = h.fin;
    sh_buf_reset(payload);
    sh_buf_append(payload, sh_buf_peek(in) + h.header_len, (size_t)h.payload_len);
    sh_buf_consume(in, h.header_len + (size_t)h.payload_len);
    return 1;
}

typedef struct want_frame {
    th_conn_t *c;
    uint8_t *opcode;
    sh_buf_t *payload;
    int rc;
} want_frame_t;

static bool have_frame(void *arg)
{
    want_frame_t *w = arg;
    if (w->rc == 0)
        w->rc = th_ws_decode(&w->c->in, w->opcode, NULL, w->payload);
    return w->rc != 0 || w->c->eof;
}

bool th_ws_read(th_conn_t *c, uint8_t *opcode, sh_buf_t *payload, unsigned timeout_ms)
{
    want_frame_t w = {c, opcode, payload, 0};
    th_run_until(c->loop, have_frame, &w, timeout_ms);
    if (w.rc == 0)
        have_frame(&w);
    ck_assert_msg(w.rc >= 0, "malformed frame from the server");
    return w.rc == 1;
}

void th_ws_send(th_conn_t *c, uint8_t opcode, const void *p, size_t n)
{
    sh_buf_t b = SH_BUF_INIT;
    th_ws_encode(&b, opcode, true, p, n, true);
    th_conn_write(c, sh_buf_peek(&b), sh_buf_avail(&b));
    sh_buf_release(&b);
}

bool th_ws_handshake(th_conn_t *c, const char *target, const void *after, size_t after_len,
                     th_resp_t *r)
{
    static const char key[] = "dGhlIHNhbXBsZSBub25jZQ==";
    sh_buf_t b = SH_BUF_INIT;
    sh_buf_appendf(&b,
                   "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n",
                   target, key);
    if (after_len)
        sh_buf_append(&b, after, after_len);
    th_conn_write(c, sh_buf_peek(&b), sh_buf_avail(&b));
    sh_buf_release(&b);
    if (!th_http_read(c, r, TH_WAIT_MS) || r->status != 101)
        return false;
    char want[29], got[64];
    ck_assert_int_eq(sh_ws_accept_key(key, want), 0);
    return th_resp_header(r, "Sec-WebSocket-Accept", got, sizeof(got)) && !strcmp(got, want);
}

unsigned th_ws_close_code(const sh_buf_t *payload)
{
    if (sh_buf_avail(payload) < 2)
        return 1005;
    const uint8_t *p = (const uint8_t *)sh_buf_peek(payload);
    return (unsigned)p[0] << 8 | p[1];
}
