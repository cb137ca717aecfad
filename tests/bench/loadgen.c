/* loadgen — a lean Socket.IO load generator for siohub's benchmarks.
 *
 * One thread, one epoll loop, non-blocking sockets, and 127.0.0.1 only: the
 * benchmarks run the server and this program on the same (small) machine,
 * so the generator must cost as little CPU as it can. It speaks just enough
 * of the protocols to be a well-behaved client: the RFC 6455 client
 * handshake and masked frames, Engine.IO v4 (open, ping -> pong, polling
 * payloads split on \x1e), Socket.IO v5 (CONNECT with {"token": ...},
 * EVENT). It links only libc and libcrypto (SHA-1 and base64 for
 * Sec-WebSocket-Accept), not libsiohub: the same binary measures other
 * servers (tests/bench/ref_*).
 *
 * Modes (tests/bench/README.md says what each number means):
 *   fanout  N WebSocket clients (and P polling ones), all tabs of one user;
 *           M events POSTed to the chat-events endpoint over a few
 *           keep-alive connections. Counts every delivery, checks that each
 *           client got each event exactly once and, per posting connection,
 *           in order, and measures end-to-end latency from the
 *           CLOCK_MONOTONIC stamp the poster puts in each payload.
 *   idle    N idle WebSocket clients, then P idle polling clients; the
 *           server's VmRSS before and after each group.
 *   churn   C slots that each connect (through the Socket.IO CONNECT
 *           answer), close at once, and start over, for D seconds.
 *
 * Output: human-readable lines, then one "RESULT key=value ..." line for
 * scripts. With --pid the server's CPU time for the measured phase comes
 * from /proc/PID/stat and its memory from /proc/PID/status.
 *
 * Exit status: 0 when the scenario completed and every check held, 1 when
 * a check failed or the time bound passed, 2 for bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define SCRATCH_SIZE   (256 * 1024)
#define READS_PER_WAKE 4
#define MAX_POSTERS    64
#define MAX_FRAME      (16u * 1024 * 1024)
#define MAX_HEADER     65536
#define HIST_BUCKETS   2560
#define STALL_NS       (5ull * 1000000000u)
#define WS_GUID        "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* ---- small helpers ---- */

static volatile sig_atomic_t interrupted;

static void on_sigint(int signo)
{
    (void)signo;
    interrupted = 1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        die("out of memory");
    return q;
}

static void *xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        die("out of memory");
    return p;
}

/* A byte buffer: data[off..len) is pending; the zero value is empty. */
typedef struct lg_buf {
    char *data;
    size_t off, len, cap;
} lg_buf_t;

static size_t buf_avail(const lg_buf_t *b)
{
    return b->len - b->off;
}

static char *buf_reserve(lg_buf_t *b, size_t n)
{
    if (b->off == b->len)
        b->off = b->len = 0;
    if (b->len + n > b->cap && b->off) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
    }
    return b->data + b->len;
}

static void buf_append(lg_buf_t *b, const void *p, size_t n)
{
    memcpy(buf_reserve(b, n), p, n);
    b->len += n;
}

static void buf_appendf(lg_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_appendf(lg_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        die("bad format");
    char *w = buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(w, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void buf_consume(lg_buf_t *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len)
        b->off = b->len = 0;
}

static void buf_release(lg_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* xorshift64*: WebSocket masks and keys need no cryptographic strength
 * against our own server. */
static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Du;
}

/* ---- latency histogram: log-linear, ~1.6% resolution, microseconds ---- */

typedef struct hist {
    uint64_t count[HIST_BUCKETS];
    uint64_t n, max, sum;
} hist_t;

static unsigned hist_index(uint64_t v)
{
    if (v < 128)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - 6;
    unsigned idx = 128 + (shift - 1) * 64 + (unsigned)((v >> shift) - 64);
    return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/* The middle of bucket idx. */
static uint64_t hist_value(unsigned idx)
{
    if (idx < 128)
        return idx;
    unsigned shift = (idx - 128) / 64 + 1;
    uint64_t sub = (idx - 128) % 64 + 64;
    return (sub << shift) + ((1ull << shift) >> 1);
}

static void hist_add(hist_t *h, uint64_t v)
{
    h->count[hist_index(v)]++;
    h->n++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
}

static uint64_t hist_pct(const hist_t *h, double pct)
{
    if (!h->n)
        return 0;
    uint64_t want = (uint64_t)((double)h->n * pct / 100.0 + 0.5);
    if (want == 0)
        want = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen >= want) {
            uint64_t v = hist_value(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}

/* ---- /proc ---- */

/* utime + stime of pid in clock ticks (and stime alone in *sys when not
 * NULL), or -1. */
static long long proc_cpu_split(pid_t pid, long long *sys)
{
    char path[64], text[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    /* Field 2 (comm) may hold spaces: count fields after its ')'. */
    char *p = strrchr(text, ')');
    if (!p)
        return -1;
    p++;
    unsigned long long ut = 0, st = 0;
    /* After ')': state(3) ppid(4) pgrp(5) session(6) tty(7) tpgid(8)
     * flags(9) minflt(10) cminflt(11) majflt(12) cmajflt(13) utime(14)
     * stime(15). */
    if (sscanf(p, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    if (sys)
        *sys = (long long)st;
    return (long long)(ut + st);
}

static long long proc_cpu_ticks(pid_t pid)
{
    return proc_cpu_split(pid, NULL);
}

static double ticks_to_s(long long ticks)
{
    static long hz;
    if (!hz)
        hz = sysconf(_SC_CLK_TCK);
    return (double)ticks / (double)(hz > 0 ? hz : 100);
}

/* A "VmRSS:"-style field of /proc/PID/status in KiB, or -1. */
static long long proc_status_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long long kb = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, field, fl)) {
            kb = strtoll(line + fl, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- connections ---- */

typedef enum { KIND_WS, KIND_POLL, KIND_POST } kind_t;

typedef enum {
    ST_IDLE,       /* no socket */
    ST_CONNECTING, /* TCP connect in progress */
    ST_HANDSHAKE,  /* WS: waiting for 101 */
    ST_EIO_OPEN,   /* waiting for the Engine.IO open packet */
    ST_SIO,        /* waiting for the Socket.IO CONNECT answer */
    ST_READY,      /* connected (posters: the TCP connection is up) */
    ST_DEAD,       /* socket closed */
} state_t;

/* What a polling client's outstanding request is. */
typedef enum { PR_NONE, PR_OPEN, PR_CONNECT, PR_GET, PR_PONG } poll_req_t;

typedef struct lg lg_t;

typedef struct conn {
    lg_t *lg;
    int fd;
    uint8_t kind, state, preq;
    uint8_t resume; /* state to go back to after a reopen (ST_IDLE: none) */
    bool want_pong;
    bool watching_out;
    bool queued_reopen;
    uint32_t id;
    lg_buf_t in, out;
    char accept[32]; /* expected Sec-WebSocket-Accept */
    char sid[64];    /* polling: the Engine.IO session id */
    uint64_t t_open; /* when the TCP connect started */
    /* receiving clients */
    uint64_t events, bytes, dups, disorder;
    uint8_t *seen; /* fanout: bitmap of sequence numbers received */
    int64_t *last; /* fanout: last seq per poster connection */
    /* posters: sequence numbers in flight, oldest first */
    uint32_t *inflight;
    uint32_t ihead, icount;
} conn_t;

typedef struct opts {
    const char *mode;
    unsigned port;
    const char *path;
    const char *token;
    const char *api_path;
    const char *api_key;
    const char *user;
    pid_t pid;
    unsigned n_ws, n_poll, m, size, posters, depth, connect_batch, window, concurrency;
    double rate, timeout_s, settle_s, duration_s;
    bool verbose;
} opts_t;

struct lg {
    opts_t o;
    int ep;
    struct sockaddr_in addr;
    uint64_t t_start, deadline;
    char *scratch;
    char host[32];
    /* receiving clients: WebSocket ones first, then polling ones */
    conn_t *clients;
    unsigned nclients;
    unsigned started, connecting, ready, failed;
    hist_t connect_lat;
    /* posters */
    conn_t *posts;
    unsigned next_post;
    /* reopen queue (connections closed by the server between requests) */
    conn_t **reopen;
    size_t nreopen, reopen_cap;
    /* fanout */
    char *pad;
    lg_buf_t body;
    uint32_t *dcount; /* per seq: clients that got it */
    uint64_t posted, answered, completed;
    uint64_t deliveries, bytes, unexpected, post_errors, recipients_bad, resent;
    long long recipients_last;
    uint64_t t_first_post, t_last_post_answer, t_last_delivery;
    bool stalled;
    hist_t lat;
    /* churn */
    bool churning;
    uint64_t cycles, churn_errors;
    /* errors */
    uint64_t closed_unexpectedly;
    char first_error[256];
};

static void note_error(lg_t *lg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_error(lg_t *lg, const char *fmt, ...)
{
    if (lg->first_error[0] && !lg->o.verbose)
        return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!lg->first_error[0])
        snprintf(lg->first_error, sizeof(lg->first_error), "%s", msg);
    if (lg->o.verbose)
        fprintf(stderr, "loadgen: %s\n", msg);
}

static void conn_watch(conn_t *c, bool want_out)
{
    if (c->watching_out == want_out || c->fd < 0)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(c->lg->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    c->watching_out = want_out;
}

static void conn_kill(conn_t *c, bool reset)
{
    if (c->fd >= 0) {
        if (reset) {
            /* An abortive close: no TIME_WAIT, so churn cannot run out of
             * ephemeral ports. */
            struct linger lin = {.l_onoff = 1, .l_linger = 0};
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
        }
        epoll_ctl(c->lg->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    c->state = ST_DEAD;
    c->watching_out = false;
}

/* A receiving client or a poster failed for good. */
static void conn_fail(conn_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_fail(conn_t *c, const char *fmt, ...)
{
    lg_t *lg = c->lg;
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    uint8_t logical = c->state == ST_CONNECTING && c->resume ? c->resume : c->state;
    bool was_connecting = logical != ST_READY;
    const char *what = c->kind == KIND_WS ? "websocket" : c->kind == KIND_POLL ? "polling" : "post";
    note_error(lg, "%s client %u: %s", what, c->id, msg);
    conn_kill(c, false);
    if (c->kind == KIND_POST) {
        lg->post_errors++;
        return;
    }
    if (lg->churning) {
        lg->churn_errors++;
        lg->connecting--;
        return;
    }
    if (was_connecting) {
        lg->connecting--;
        lg->failed++;
    } else {
        lg->closed_unexpectedly++;
    }
}

static void conn_flush(conn_t *c)
{
    while (buf_avail(&c->out)) {
        ssize_t w = send(c->fd, c->out.data + c->out.off, buf_avail(&c->out), MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_fail(c, "write: %s", strerror(errno));
            return;
        }
        buf_consume(&c->out, (size_t)w);
    }
    conn_watch(c, buf_avail(&c->out) > 0);
}

/* Opens the TCP connection; the state machine starts when it is up. */
static void conn_open(conn_t *c)
{
    lg_t *lg = c->lg;
    c->in.off = c->in.len = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket: %s (raise ulimit -n?)", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = fd;
    c->state = ST_CONNECTING;
    c->watching_out = true;
    c->t_open = now_ns();
    if (connect(fd, (struct sockaddr *)&lg->addr, sizeof(lg->addr)) < 0 && errno != EINPROGRESS)
        die("connect: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(lg->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
}

/* Reopens after the loop iteration (events of this batch may still name
 * the old socket). */
static void conn_queue_reopen(conn_t *c)
{
    lg_t *lg = c->lg;
    c->resume = c->state;
    conn_kill(c, false);
    if (c->queued_reopen)
        return;
    if (lg->nreopen == lg->reopen_cap) {
        lg->reopen_cap = lg->reopen_cap ? lg->reopen_cap * 2 : 64;
        lg->reopen = xrealloc(lg->reopen, lg->reopen_cap * sizeof(*lg->reopen));
    }
    lg->reopen[lg->nreopen++] = c;
    c->queued_reopen = true;
}

/* ---- HTTP/1.1 responses ---- */

typedef struct http_resp {
    int status;
    size_t hlen;
    long long clen; /* -1: none */
    bool close, chunked;
    const char *accept;
    size_t accept_len;
} http_resp_t;

/* 1: the header is complete; 0: need more bytes; -1: not HTTP. */
static int http_parse(const char *p, size_t n, http_resp_t *r)
{
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end)
        return n > MAX_HEADER ? -1 : 0;
    memset(r, 0, sizeof(*r));
    r->hlen = (size_t)(end - p) + 4;
    r->clen = -1;
    if (r->hlen < 16 || memcmp(p, "HTTP/1.", 7) || p[8] != ' ')
        return -1;
    r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    const char *line = (const char *)memchr(p, '\n', r->hlen) + 1;
    while (line < end) {
        const char *eol = memchr(line, '\r', (size_t)(end + 2 - line));
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon) {
            size_t nl = (size_t)(colon - line);
            const char *v = colon + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            size_t vl = (size_t)(eol - v);
            if (nl == 14 && !strncasecmp(line, "content-length", 14))
                r->clen = strtoll(v, NULL, 10);
            else if (nl == 10 && !strncasecmp(line, "connection", 10))
                r->close = vl >= 5 && !strncasecmp(v, "close", 5);
            else if (nl == 17 && !strncasecmp(line, "transfer-encoding", 17))
                r->chunked = vl >= 7 && !strncasecmp(v, "chunked", 7);
            else if (nl == 20 && !strncasecmp(line, "sec-websocket-accept", 20)) {
                r->accept = v;
                r->accept_len = vl;
            }
        }
        line = eol + 2;
    }
    return 1;
}

/* Finds "key" (with quotes and colon) and reads the integer after it. */
static bool json_int_after(const char *p, size_t n, const char *key, int64_t *out)
{
    size_t kl = strlen(key);
    const char *k = memmem(p, n, key, kl);
    if (!k)
        return false;
    const char *q = k + kl, *end = p + n;
    while (q < end && *q == ' ')
        q++;
    bool neg = q < end && *q == '-';
    if (neg)
        q++;
    if (q >= end || *q < '0' || *q > '9')
        return false;
    int64_t v = 0;
    while (q < end && *q >= '0' && *q <= '9')
        v = v * 10 + (*q++ - '0');
    *out = neg ? -v : v;
    return true;
}

/* ---- Socket.IO and Engine.IO, common to both transports ---- */

static void client_ready(conn_t *c, uint64_t now)
{
    lg_t *lg = c->lg;
    c->state = ST_READY;
    lg->connecting--;
    hist_add(&lg->connect_lat, (now - c->t_open) / 1000);
    if (lg->churning) {
        lg->cycles++;
        conn_kill(c, true);
        return;
    }
    lg->ready++;
}

/* An EVENT packet's data ("[\"name\",{...}]"). */
static void on_event(conn_t *c, const char *p, size_t n, size_t wire_len, uint64_t now)
{
    lg_t *lg = c->lg;
    int64_t seq, ts, k;
    if (!lg->dcount || !json_int_after(p, n, "\"seq\":", &seq) ||
        !json_int_after(p, n, "\"ts\":", &ts) || !json_int_after(p, n, "\"k\":", &k) || seq < 0 ||
        seq >= lg->o.m || k < 0 || k >= (int64_t)lg->o.posters) {
        lg->unexpected++;
        return;
    }
    c->events++;
    c->bytes += wire_len;
    lg->deliveries++;
    lg->bytes += wire_len;
    lg->t_last_delivery = now;
    uint8_t bit = (uint8_t)(1u << (seq & 7));
    if (c->seen[seq >> 3] & bit) {
        c->dups++;
        return;
    }
    c->seen[seq >> 3] |= bit;
    if (seq <= c->last[k])
        c->disorder++;
    else
        c->last[k] = seq;
    if (++lg->dcount[seq] == lg->nclients)
        lg->completed++;
    hist_add(&lg->lat, now > (uint64_t)ts ? (now - (uint64_t)ts) / 1000 : 0);
}

static void ws_send(conn_t *c, uint8_t opcode, const char *p, size_t n);

/* One Engine.IO packet in text form. */
static void eio_packet(conn_t *c, const char *p, size_t n, uint64_t now)
{
    lg_t *lg = c->lg;
    if (n == 0) {
        conn_fail(c, "empty Engine.IO packet");
        return;
    }
    switch (p[0]) {
    case '0': /* open */
        if (c->state != ST_EIO_OPEN) {
            conn_fail(c, "unexpected Engine.IO open");
            return;
        }
        if (c->kind == KIND_POLL) {
            const char *s = memmem(p, n, "\"sid\":\"", 7);
            const char *e = s ? memchr(s + 7, '"', (size_t)(p + n - s - 7)) : NULL;
            if (!e || (size_t)(e - s - 7) >= sizeof(c->sid)) {
                conn_fail(c, "no sid in the open packet");
                return;
            }
            memcpy(c->sid, s + 7, (size_t)(e - s - 7));
            c->sid[e - s - 7] = '\0';
        }
        c->state = ST_SIO;
        if (c->kind == KIND_WS) {
            lg_buf_t b = {0};
            if (lg->o.token)
                buf_appendf(&b, "40{\"token\":\"%s\"}", lg->o.token);
            else
                buf_appendf(&b, "40");
            ws_send(c, 0x1, b.data, b.len);
            buf_release(&b);
        }
        return;
    case '2': /* ping */
        if (c->kind == KIND_WS)
            ws_send(c, 0x1, "3", 1);
        else
            c->want_pong = true;
        return;
    case '1': /* close */
        conn_fail(c, "server closed the Engine.IO session");
        return;
    case '6': /* noop */
    case '3': /* pong */
        return;
    case '4':
        break;
    default:
        conn_fail(c, "unexpected Engine.IO packet type '%c'", p[0]);
        return;
    }
    /* A Socket.IO packet for the main namespace (no "/nsp," prefix). */
    if (n < 2) {
        conn_fail(c, "empty Socket.IO packet");
        return;
    }
    switch (p[1]) {
    case '0':
        if (c->state == ST_SIO)
            client_ready(c, now);
        return;
    case '2':
        if (c->state == ST_READY)
            on_event(c, p + 2, n - 2, n, now);
        return;
    case '4':
        conn_fail(c, "CONNECT refused: %.*s", (int)(n < 120 ? n : 120), p);
        return;
    case '1':
        conn_fail(c, "server disconnected the socket");
        return;
    default:
        lg->unexpected++;
        return;
    }
}

/* ---- WebSocket ---- */

static void ws_make_key(conn_t *c, char key[25])
{
    unsigned char raw[16];
    uint64_t a = rng_next(), b = rng_next();
    memcpy(raw, &a, 8);
    memcpy(raw + 8, &b, 8);
    EVP_EncodeBlock((unsigned char *)key, raw, 16);
    char cat[64];
    int n = snprintf(cat, sizeof(cat), "%s%s", key, WS_GUID);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (!EVP_Digest(cat, (size_t)n, md, &mdlen, EVP_sha1(), NULL))
        die("SHA-1 failed");
    EVP_EncodeBlock((unsigned char *)c->accept, md, (int)mdlen);
}

/* Queues one masked frame and writes what the socket takes. */
static void ws_send(conn_t *c, uint8_t opcode, const char *p, size_t n)
{
    uint8_t h[14];
    size_t hl = 2;
    h[0] = (uint8_t)(0x80 | opcode);
    if (n < 126) {
        h[1] = (uint8_t)(0x80 | n);
    } else if (n <= 0xffff) {
        h[1] = 0x80 | 126;
        h[2] = (uint8_t)(n >> 8);
        h[3] = (uint8_t)n;
        hl = 4;
    } else {
        h[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
        hl = 10;
    }
    uint32_t mask32 = (uint32_t)rng_next();
    uint8_t mask[4];
    memcpy(mask, &mask32, 4);
    memcpy(h + hl, mask, 4);
    hl += 4;
    buf_append(&c->out, h, hl);
    char *w = buf_reserve(&c->out, n);
    for (size_t i = 0; i < n; i++)
        w[i] = (char)(p[i] ^ mask[i & 3]);
    c->out.len += n;
    conn_flush(c);
}

static void ws_start(conn_t *c)
{
    lg_t *lg = c->lg;
    char key[25];
    ws_make_key(c, key);
    buf_appendf(&c->out,
                "GET %s?EIO=4&transport=websocket HTTP/1.1\r\nHost: %s\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n",
                lg->o.path, lg->host, key);
    c->state = ST_HANDSHAKE;
    conn_flush(c);
}

/* Returns the bytes used. */
static size_t ws_process(conn_t *c, const char *p, size_t n, uint64_t now)
{
    size_t used = 0;
    if (c->state == ST_HANDSHAKE) {
        http_resp_t r;
        int rc = http_parse(p, n, &r);
        if (rc == 0)
            return 0;
        if (rc < 0 || r.status != 101) {
            conn_fail(c, "WebSocket handshake refused (HTTP %d)", rc < 0 ? 0 : r.status);
            return n;
        }
        if (r.accept_len != 28 || memcmp(r.accept, c->accept, 28)) {
            conn_fail(c, "wrong Sec-WebSocket-Accept");
            return n;
        }
        used = r.hlen;
        c->state = ST_EIO_OPEN;
    }
    while (c->state != ST_DEAD && c->state != ST_IDLE) {
        const uint8_t *q = (const uint8_t *)p + used;
        size_t left = n - used;
        if (left < 2)
            break;
        uint8_t op = q[0] & 0x0f;
        bool fin = q[0] & 0x80;
        if (q[1] & 0x80) {
            conn_fail(c, "masked frame from the server");
            return n;
        }
        uint64_t len = q[1] & 0x7f;
        size_t h = 2;
        if (len == 126) {
            if (left < 4)
                break;
            len = ((uint64_t)q[2] << 8) | q[3];
            h = 4;
        } else if (len == 127) {
            if (left < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = (len << 8) | q[2 + i];
            h = 10;
        }
        if (len > MAX_FRAME) {
            conn_fail(c, "frame of %" PRIu64 " bytes", len);
            return n;
        }
        if (left - h < len)
            break;
        const char *pl = (const char *)q + h;
        used += h + (size_t)len;
        if (!fin || op == 0) {
            conn_fail(c, "fragmented frames are not supported");
            return n;
        }
        switch (op) {
        case 0x1:
            eio_packet(c, pl, (size_t)len, now);
            break;
        case 0x2:
            c->lg->unexpected++;
            break;
        case 0x8:
            conn_fail(c, "server sent a close frame");
            return n;
        case 0x9:
            ws_send(c, 0xA, pl, (size_t)len);
            break;
        case 0xA:
            break;
        default:
            conn_fail(c, "unknown opcode %u", op);
            return n;
        }
    }
    return used;
}

/* ---- HTTP long-polling ---- */

static void poll_request(conn_t *c, poll_req_t what)
{
    lg_t *lg = c->lg;
    c->preq = (uint8_t)what;
    switch (what) {
    case PR_OPEN:
        buf_appendf(&c->out, "GET %s?EIO=4&transport=polling HTTP/1.1\r\nHost: %s\r\n\r\n",
                    lg->o.path, lg->host);
        break;
    case PR_GET:
        buf_appendf(&c->out, "GET %s?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: %s\r\n\r\n",
                    lg->o.path, c->sid, lg->host);
        break;
    case PR_CONNECT:
    case PR_PONG: {
        char body[600];
        int bl;
        if (what == PR_PONG)
            bl = snprintf(body, sizeof(body), "3");
        else if (lg->o.token)
            bl = snprintf(body, sizeof(body), "40{\"token\":\"%s\"}", lg->o.token);
        else
            bl = snprintf(body, sizeof(body), "40");
        if (bl < 0 || (size_t)bl >= sizeof(body))
            die("token too long");
        buf_appendf(&c->out,
                    "POST %s?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: %s\r\n"
                    "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: %d\r\n\r\n%s",
                    lg->o.path, c->sid, lg->host, bl, body);
        break;
    }
    case PR_NONE:
        break;
    }
    if (c->state == ST_READY || c->state == ST_SIO || c->state == ST_EIO_OPEN)
        conn_flush(c);
}

static void poll_response(conn_t *c, const http_resp_t *r, const char *body, size_t blen,
                          uint64_t now)
{
    if (r->status != 200) {
        conn_fail(c, "HTTP %d for a polling request: %.*s", r->status,
                  (int)(blen < 120 ? blen : 120), body);
        return;
    }
    poll_req_t next = PR_GET;
    switch ((poll_req_t)c->preq) {
    case PR_OPEN:
        eio_packet(c, body, blen, now);
        next = PR_CONNECT;
        break;
    case PR_CONNECT:
    case PR_PONG:
        break;
    case PR_GET: {
        const char *p = body, *end = body + blen;
        while (p < end && c->state != ST_DEAD && c->state != ST_IDLE) {
            const char *sep = memchr(p, 0x1e, (size_t)(end - p));
            const char *e = sep ? sep : end;
            if (e > p && p[0] == 'b')
                c->lg->unexpected++;
            else
                eio_packet(c, p, (size_t)(e - p), now);
            p = sep ? sep + 1 : end;
        }
        if (c->want_pong) {
            c->want_pong = false;
            next = PR_PONG;
        }
        break;
    }
    case PR_NONE:
        conn_fail(c, "response to no request");
        return;
    }
    if (c->state == ST_DEAD || c->state == ST_IDLE)
        return;
    poll_request(c, next);
    if (r->close)
        conn_queue_reopen(c); /* c->out keeps the next request */
}

/* ---- posting events ---- */

static void post_queue(lg_t *lg, conn_t *c, uint32_t seq, uint64_t ts)
{
    lg_buf_t *b = &lg->body;
    b->off = b->len = 0;
    buf_appendf(b,
                "{\"user_id\":\"%s\",\"chat_id\":\"bench\",\"message_id\":\"m%u\",\"data\":"
                "{\"type\":\"bench\",\"seq\":%u,\"ts\":%" PRIu64 ",\"k\":%u,\"pad\":\"%s\"}}",
                lg->o.user, seq, seq, ts, c->id, lg->pad);
    buf_appendf(&c->out,
                "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                lg->o.api_path, lg->host, lg->o.api_key ? lg->o.api_key : "", buf_avail(b));
    buf_append(&c->out, b->data + b->off, buf_avail(b));
}

static bool post_allowed(lg_t *lg, uint64_t now)
{
    if (lg->posted >= lg->o.m)
        return false;
    if (lg->o.window && lg->posted - lg->completed >= lg->o.window)
        return false;
    if (lg->o.rate > 0 && lg->t_first_post) {
        double due = (double)(now - lg->t_first_post) / 1e9 * lg->o.rate + 1.0;
        if ((double)lg->posted >= due)
            return false;
    }
    return true;
}

/* Posts as many events as the pacing, the window and the pipelines allow. */
static void post_fill(lg_t *lg)
{
    uint64_t now = now_ns();
    for (unsigned tries = 0; tries < lg->o.posters && post_allowed(lg, now);) {
        conn_t *c = &lg->posts[lg->next_post];
        if (c->state != ST_READY || c->icount >= lg->o.depth) {
            lg->next_post = (lg->next_post + 1) % lg->o.posters;
            tries++;
            continue;
        }
        if (!lg->t_first_post)
            lg->t_first_post = now;
        uint32_t seq = (uint32_t)lg->posted++;
        c->inflight[(c->ihead + c->icount) % lg->o.depth] = seq;
        c->icount++;
        post_queue(lg, c, seq, now_ns());
        conn_flush(c);
        if (c->icount >= lg->o.depth) {
            lg->next_post = (lg->next_post + 1) % lg->o.posters;
            tries = 0;
        }
    }
}

static void post_response(conn_t *c, const http_resp_t *r, const char *body, size_t blen,
                          uint64_t now)
{
    lg_t *lg = c->lg;
    if (!c->icount) {
        conn_fail(c, "response to no request");
        return;
    }
    c->ihead = (c->ihead + 1) % lg->o.depth;
    c->icount--;
    lg->answered++;
    lg->t_last_post_answer = now;
    if (r->status != 200) {
        lg->post_errors++;
        note_error(lg, "POST %s: HTTP %d: %.*s", lg->o.api_path, r->status,
                   (int)(blen < 160 ? blen : 160), body);
    } else {
        int64_t rc;
        if (json_int_after(body, blen, "\"recipients\":", &rc)) {
            lg->recipients_last = rc;
            if (rc != (int64_t)lg->nclients)
                lg->recipients_bad++;
        }
    }
    if (r->close)
        conn_queue_reopen(c);
}

/* After a reconnect: send again what got no answer. */
static void post_resend(conn_t *c)
{
    lg_t *lg = c->lg;
    for (uint32_t i = 0; i < c->icount; i++) {
        post_queue(lg, c, c->inflight[(c->ihead + i) % lg->o.depth], now_ns());
        lg->resent++;
    }
}

/* ---- dispatch ---- */

/* Handles HTTP responses on a polling client or a poster. */
static size_t http_process(conn_t *c, const char *p, size_t n, uint64_t now)
{
    size_t used = 0;
    while (used < n && c->state != ST_DEAD && c->state != ST_IDLE) {
        http_resp_t r;
        int rc = http_parse(p + used, n - used, &r);
        if (rc == 0)
            break;
        if (rc < 0 || r.chunked || r.clen < 0) {
            conn_fail(c, rc < 0 ? "not an HTTP response" : "responses need a Content-Length");
            return n;
        }
        if (n - used - r.hlen < (size_t)r.clen)
            break;
        const char *body = p + used + r.hlen;
        used += r.hlen + (size_t)r.clen;
        if (c->kind == KIND_POLL)
            poll_response(c, &r, body, (size_t)r.clen, now);
        else
            post_response(c, &r, body, (size_t)r.clen, now);
    }
    return used;
}

static size_t conn_process(conn_t *c, const char *p, size_t n, uint64_t now)
{
    return c->kind == KIND_WS ? ws_process(c, p, n, now) : http_process(c, p, n, now);
}

static void on_tcp_up(conn_t *c)
{
    int err = 0;
    socklen_t el = sizeof(err);
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
        conn_fail(c, "connect: %s", strerror(err));
        return;
    }
    switch ((kind_t)c->kind) {
    case KIND_WS:
        ws_start(c);
        break;
    case KIND_POLL:
        if (c->resume) {
            /* A reopened keep-alive connection: its next request waits in
             * c->out. */
            c->state = c->resume;
            c->resume = ST_IDLE;
            conn_flush(c);
        } else {
            c->state = ST_EIO_OPEN;
            poll_request(c, PR_OPEN);
        }
        break;
    case KIND_POST:
        c->state = ST_READY;
        c->resume = ST_IDLE;
        c->out.off = c->out.len = 0;
        post_resend(c);
        conn_flush(c);
        break;
    }
}

static void on_readable(conn_t *c, uint64_t now)
{
    lg_t *lg = c->lg;
    for (int i = 0; i < READS_PER_WAKE && c->fd >= 0; i++) {
        ssize_t r = recv(c->fd, lg->scratch, SCRATCH_SIZE, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_fail(c, "read: %s", strerror(errno));
            return;
        }
        if (r == 0) {
            if (c->kind == KIND_POST)
                conn_queue_reopen(c); /* resends what got no answer */
            else
                conn_fail(c, "connection closed by the server");
            return;
        }
        size_t n = (size_t)r;
        if (buf_avail(&c->in)) {
            buf_append(&c->in, lg->scratch, n);
            size_t used = conn_process(c, c->in.data + c->in.off, buf_avail(&c->in), now);
            if (c->fd >= 0)
                buf_consume(&c->in, used);
        } else {
            size_t used = conn_process(c, lg->scratch, n, now);
            if (c->fd >= 0 && used < n)
                buf_append(&c->in, lg->scratch + used, n - used);
        }
        if ((size_t)r < SCRATCH_SIZE)
            return;
    }
}

static void on_event_ready(conn_t *c, uint32_t events, uint64_t now)
{
    if (c->fd < 0)
        return; /* closed earlier in this batch */
    if (c->state == ST_CONNECTING) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            on_tcp_up(c);
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        on_readable(c, now);
    if (c->fd >= 0 && (events & EPOLLOUT))
        conn_flush(c);
}

static void run_reopens(lg_t *lg)
{
    for (size_t i = 0; i < lg->nreopen; i++) {
        conn_t *c = lg->reopen[i];
        c->queued_reopen = false;
        conn_open(c);
    }
    lg->nreopen = 0;
}

/* Starts client connections, at most connect_batch handshakes at a time. */
static void start_clients(lg_t *lg)
{
    while (lg->started < lg->nclients && lg->connecting < lg->o.connect_batch) {
        conn_t *c = &lg->clients[lg->started++];
        lg->connecting++;
        conn_open(c);
    }
}

/* Runs the loop until done(lg) is true or the deadline passes; false on
 * timeout or interruption. */
static bool loop_until(lg_t *lg, bool (*done)(lg_t *), uint64_t until)
{
    struct epoll_event evs[512];
    for (;;) {
        start_clients(lg);
        if (lg->posts)
            post_fill(lg);
        if (done(lg))
            return true;
        uint64_t now = now_ns();
        if (now >= until || now >= lg->deadline || interrupted)
            return false;
        int timeout = 100;
        if (lg->o.rate > 0 && lg->posts && lg->posted < lg->o.m)
            timeout = 1;
        int n = epoll_wait(lg->ep, evs, 512, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait: %s", strerror(errno));
        }
        now = now_ns();
        for (int i = 0; i < n; i++)
            on_event_ready(evs[i].data.ptr, evs[i].events, now);
        run_reopens(lg);
    }
}

static bool all_settled(lg_t *lg)
{
    return lg->started == lg->nclients && lg->connecting == 0;
}

static bool never(lg_t *lg)
{
    return false;
}

/* Done when every delivery came, or nothing came for STALL_NS after the
 * last answer (a lost event must not hold the run to its time bound). */
static bool all_delivered(lg_t *lg)
{
    if (lg->posted < lg->o.m || lg->answered < lg->o.m)
        return false;
    if (lg->deliveries >= (uint64_t)lg->nclients * lg->o.m)
        return true;
    uint64_t last =
        lg->t_last_delivery > lg->t_last_post_answer ? lg->t_last_delivery : lg->t_last_post_answer;
    if (now_ns() - last > STALL_NS) {
        lg->stalled = true;
        return true;
    }
    return false;
}

/* ---- scenarios ---- */

static void make_clients(lg_t *lg, unsigned n_ws, unsigned n_poll, bool fanout)
{
    lg->nclients = n_ws + n_poll;
    lg->clients = xcalloc(lg->nclients, sizeof(conn_t));
    for (unsigned i = 0; i < lg->nclients; i++) {
        conn_t *c = &lg->clients[i];
        c->lg = lg;
        c->fd = -1;
        c->id = i;
        c->kind = i < n_ws ? KIND_WS : KIND_POLL;
        if (fanout) {
            c->seen = xcalloc((lg->o.m + 7) / 8, 1);
            c->last = xcalloc(lg->o.posters, sizeof(int64_t));
            for (unsigned k = 0; k < lg->o.posters; k++)
                c->last[k] = -1;
        }
    }
}

static void free_clients(lg_t *lg)
{
    for (unsigned i = 0; i < lg->nclients; i++) {
        conn_t *c = &lg->clients[i];
        conn_kill(c, false);
        buf_release(&c->in);
        buf_release(&c->out);
        free(c->seen);
        free(c->last);
    }
    free(lg->clients);
    lg->clients = NULL;
    lg->nclients = 0;
}

static void report_connects(lg_t *lg, const char *what, double secs, double cpu)
{
    printf("%s: %u of %u clients connected in %.2f s (server CPU %.2f s); connect latency "
           "p50 %.2f ms, p99 %.2f ms\n",
           what, lg->ready, lg->nclients, secs, cpu, (double)hist_pct(&lg->connect_lat, 50) / 1e3,
           (double)hist_pct(&lg->connect_lat, 99) / 1e3);
    if (lg->failed)
        printf("%s: %u clients failed to connect: %s\n", what, lg->failed, lg->first_error);
}

static int run_fanout(lg_t *lg)
{
    opts_t *o = &lg->o;
    make_clients(lg, o->n_ws, o->n_poll, true);
    lg->dcount = xcalloc(o->m, sizeof(uint32_t));
    size_t padlen = o->size > 70 ? o->size - 70 : 0;
    lg->pad = xcalloc(padlen + 1, 1);
    memset(lg->pad, 'x', padlen);

    long long cpu0 = o->pid ? proc_cpu_ticks(o->pid) : -1;
    uint64_t t0 = now_ns();
    loop_until(lg, all_settled, UINT64_MAX);
    double conn_s = (double)(now_ns() - t0) / 1e9;
    long long cpu1 = o->pid ? proc_cpu_ticks(o->pid) : -1;
    report_connects(lg, "fanout", conn_s, cpu0 >= 0 ? ticks_to_s(cpu1 - cpu0) : 0);
    if (lg->ready != lg->nclients) {
        printf("RESULT mode=fanout ok=0 error=connect\n");
        return 1;
    }

    /* Posters connect now, so the connect storm is not part of the
     * measured phase. */
    lg->posts = xcalloc(o->posters, sizeof(conn_t));
    for (unsigned k = 0; k < o->posters; k++) {
        conn_t *c = &lg->posts[k];
        c->lg = lg;
        c->fd = -1;
        c->id = k;
        c->kind = KIND_POST;
        c->inflight = xcalloc(o->depth, sizeof(uint32_t));
        conn_open(c);
    }
    double lgcpu0 = self_cpu_s();
    long long sys0 = 0, sys1 = 0;
    long long scpu0 = o->pid ? proc_cpu_split(o->pid, &sys0) : -1;
    bool done = loop_until(lg, all_delivered, UINT64_MAX);
    /* Whatever was still on its way when time ran out is not waited for. */
    long long scpu1 = o->pid ? proc_cpu_split(o->pid, &sys1) : -1;
    double ssys = scpu0 >= 0 && scpu1 >= 0 ? ticks_to_s(sys1 - sys0) : -1;
    double lgcpu = self_cpu_s() - lgcpu0;
    uint64_t t_end = lg->t_last_delivery > lg->t_first_post ? lg->t_last_delivery : now_ns();
    double wall = lg->t_first_post ? (double)(t_end - lg->t_first_post) / 1e9 : 0;
    double post_wall = lg->t_last_post_answer > lg->t_first_post
                           ? (double)(lg->t_last_post_answer - lg->t_first_post) / 1e9
                           : 0;
    double scpu = scpu0 >= 0 && scpu1 >= 0 ? ticks_to_s(scpu1 - scpu0) : -1;

    unsigned clients_ok = 0;
    uint64_t dups = 0, disorder = 0, missing = 0;
    for (unsigned i = 0; i < lg->nclients; i++) {
        conn_t *c = &lg->clients[i];
        uint64_t unique = c->events - c->dups;
        dups += c->dups;
        disorder += c->disorder;
        missing += o->m - unique;
        if (unique == o->m && !c->dups && !c->disorder && c->state == ST_READY)
            clients_ok++;
    }
    uint64_t expected = (uint64_t)lg->nclients * o->m;
    double dps = wall > 0 ? (double)lg->deliveries / wall : 0;
    double bps = wall > 0 ? (double)lg->bytes / wall : 0;
    done &= !lg->stalled;
    bool ok = done && clients_ok == lg->nclients && !lg->post_errors && !lg->closed_unexpectedly;

    printf("fanout: %" PRIu64 " events x %u clients (%u websocket, %u polling): %" PRIu64
           " of %" PRIu64 " deliveries in %.3f s\n",
           lg->posted, lg->nclients, o->n_ws, o->n_poll, lg->deliveries, expected, wall);
    printf("fanout: %.0f deliveries/s, %.1f MiB/s of Engine.IO payload (%.0f bytes each); "
           "events posted and answered at %.0f/s\n",
           dps, bps / 1048576.0, lg->deliveries ? (double)lg->bytes / (double)lg->deliveries : 0,
           post_wall > 0 ? (double)lg->answered / post_wall : 0);
    printf("fanout: latency post -> client: p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms\n",
           (double)hist_pct(&lg->lat, 50) / 1e3, (double)hist_pct(&lg->lat, 90) / 1e3,
           (double)hist_pct(&lg->lat, 99) / 1e3, (double)lg->lat.max / 1e3);
    if (scpu >= 0)
        printf("fanout: server CPU %.2f s (%.2f user + %.2f system; %.0f%% of one core over the "
               "run, %.2f us per delivery); loadgen CPU %.2f s\n",
               scpu, scpu - ssys, ssys, wall > 0 ? 100.0 * scpu / wall : 0,
               lg->deliveries ? scpu * 1e6 / (double)lg->deliveries : 0, lgcpu);
    printf("fanout: check: %u of %u clients got all %u events exactly once and in order "
           "(duplicates %" PRIu64 ", out of order %" PRIu64 ", missing %" PRIu64 ", closed %" PRIu64
           ", POST errors %" PRIu64 ", recipients mismatches %" PRIu64 ")%s\n",
           clients_ok, lg->nclients, o->m, dups, disorder, missing, lg->closed_unexpectedly,
           lg->post_errors, lg->recipients_bad,
           lg->stalled ? " [STALLED: deliveries stopped]"
           : done      ? ""
                       : " [TIME BOUND REACHED]");
    if (lg->first_error[0])
        printf("fanout: first error: %s\n", lg->first_error);
    printf(
        "RESULT mode=fanout ok=%d ws=%u polling=%u events=%u size=%u posters=%u depth=%u "
        "rate=%.0f deliveries=%" PRIu64 " expected=%" PRIu64
        " wall_s=%.3f dps=%.0f bytes_per_s=%.0f "
        "bytes_per_delivery=%.0f p50_us=%" PRIu64 " p90_us=%" PRIu64 " p99_us=%" PRIu64
        " max_us=%" PRIu64 " server_cpu_s=%.2f server_sys_s=%.2f loadgen_cpu_s=%.2f connect_s=%.2f "
        "clients_ok=%u dups=%" PRIu64 " disorder=%" PRIu64 " missing=%" PRIu64
        " post_errors=%" PRIu64 " unexpected=%" PRIu64 "\n",
        ok, o->n_ws, o->n_poll, o->m, o->size, o->posters, o->depth, o->rate, lg->deliveries,
        expected, wall, dps, bps, lg->deliveries ? (double)lg->bytes / (double)lg->deliveries : 0,
        hist_pct(&lg->lat, 50), hist_pct(&lg->lat, 90), hist_pct(&lg->lat, 99), lg->lat.max, scpu,
        ssys, lgcpu, conn_s, clients_ok, dups, disorder, missing, lg->post_errors, lg->unexpected);
    for (unsigned k = 0; k < o->posters; k++) {
        conn_kill(&lg->posts[k], false);
        buf_release(&lg->posts[k].in);
        buf_release(&lg->posts[k].out);
        free(lg->posts[k].inflight);
    }
    free(lg->posts);
    lg->posts = NULL;
    free_clients(lg);
    free(lg->dcount);
    free(lg->pad);
    buf_release(&lg->body);
    return ok ? 0 : 1;
}

/* Connects one group and measures the server's RSS growth. */
static bool idle_group(lg_t *lg, unsigned n_ws, unsigned n_poll, const char *what,
                       long long *rss_delta, double *secs, double *cpu)
{
    opts_t *o = &lg->o;
    unsigned before_ready = lg->ready, before_failed = lg->failed;
    unsigned first = lg->nclients;
    lg->nclients += n_ws + n_poll;
    lg->clients = xrealloc(lg->clients, lg->nclients * sizeof(conn_t));
    /* The epoll data pointers of earlier clients moved: re-register. */
    for (unsigned i = 0; i < first; i++) {
        conn_t *c = &lg->clients[i];
        if (c->fd >= 0) {
            struct epoll_event ev = {.events = EPOLLIN | (c->watching_out ? EPOLLOUT : 0),
                                     .data.ptr = c};
            epoll_ctl(lg->ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
    }
    for (unsigned i = first; i < lg->nclients; i++) {
        conn_t *c = &lg->clients[i];
        memset(c, 0, sizeof(*c));
        c->lg = lg;
        c->fd = -1;
        c->id = i;
        c->kind = i - first < n_ws ? KIND_WS : KIND_POLL;
    }
    long long rss0 = proc_status_kb(o->pid, "VmRSS:");
    long long cpu0 = proc_cpu_ticks(o->pid);
    uint64_t t0 = now_ns();
    loop_until(lg, all_settled, UINT64_MAX);
    *secs = (double)(now_ns() - t0) / 1e9;
    *cpu = ticks_to_s(proc_cpu_ticks(o->pid) - cpu0);
    /* Let the server finish what the last connects started (pool entries,
     * logs) before reading its memory. */
    loop_until(lg, never, now_ns() + (uint64_t)(o->settle_s * 1e9));
    long long rss1 = proc_status_kb(o->pid, "VmRSS:");
    *rss_delta = rss0 >= 0 && rss1 >= 0 ? (rss1 - rss0) * 1024 : -1;
    unsigned got = lg->ready - before_ready;
    printf("idle: %u of %u %s clients connected in %.2f s (server CPU %.2f s); server RSS "
           "%lld -> %lld KiB: %.0f bytes per connection\n",
           got, n_ws + n_poll, what, *secs, *cpu, rss0, rss1,
           got ? (double)*rss_delta / (double)got : 0);
    if (lg->failed > before_failed)
        printf("idle: %u %s clients failed: %s\n", lg->failed - before_failed, what,
               lg->first_error);
    return got == n_ws + n_poll;
}

static int run_idle(lg_t *lg)
{
    opts_t *o = &lg->o;
    if (!o->pid)
        die("idle needs --pid (the server's process id)");
    long long base = proc_status_kb(o->pid, "VmRSS:");
    long long ws_delta = 0, poll_delta = 0;
    double ws_s = 0, poll_s = 0, ws_cpu = 0, poll_cpu = 0;
    bool ok = true;
    double lg0 = self_cpu_s();
    if (o->n_ws)
        ok &= idle_group(lg, o->n_ws, 0, "websocket", &ws_delta, &ws_s, &ws_cpu);
    if (o->n_poll)
        ok &= idle_group(lg, 0, o->n_poll, "polling", &poll_delta, &poll_s, &poll_cpu);
    long long total = proc_status_kb(o->pid, "VmRSS:");
    long long hwm = proc_status_kb(o->pid, "VmHWM:");
    ok &= lg->closed_unexpectedly == 0;
    long long self_rss = proc_status_kb(getpid(), "VmRSS:");
    printf("idle: server RSS %lld KiB with no clients, %lld KiB with all (peak %lld KiB); "
           "loadgen RSS %lld KiB, CPU %.2f s\n",
           base, total, hwm, self_rss, self_cpu_s() - lg0);
    printf("RESULT mode=idle ok=%d ws=%u polling=%u rss_base_kib=%lld rss_all_kib=%lld "
           "ws_bytes_per_conn=%.0f polling_bytes_per_conn=%.0f ws_connect_s=%.2f "
           "polling_connect_s=%.2f ws_connect_cpu_s=%.2f polling_connect_cpu_s=%.2f "
           "closed=%" PRIu64 "\n",
           ok, o->n_ws, o->n_poll, base, total, o->n_ws ? (double)ws_delta / o->n_ws : 0,
           o->n_poll ? (double)poll_delta / o->n_poll : 0, ws_s, poll_s, ws_cpu, poll_cpu,
           lg->closed_unexpectedly);
    free_clients(lg);
    return ok ? 0 : 1;
}

static void churn_refill(lg_t *lg, uint64_t until)
{
    if (now_ns() >= until) {
        lg->churning = lg->connecting > 0; /* let the last attempts finish */
        return;
    }
    for (unsigned i = 0; i < lg->nclients; i++) {
        conn_t *c = &lg->clients[i];
        if (c->state == ST_DEAD || c->state == ST_IDLE) {
            c->out.off = c->out.len = 0;
            lg->connecting++;
            conn_open(c);
        }
    }
}

static int run_churn(lg_t *lg)
{
    opts_t *o = &lg->o;
    make_clients(lg, o->concurrency, 0, false);
    lg->started = lg->nclients; /* churn_refill opens them, not start_clients */
    lg->churning = true;
    long long sys0 = 0, sys1 = 0;
    long long cpu0 = o->pid ? proc_cpu_split(o->pid, &sys0) : -1;
    double lg0 = self_cpu_s();
    uint64_t t0 = now_ns();
    uint64_t until = t0 + (uint64_t)(o->duration_s * 1e9);
    struct epoll_event evs[512];
    while (lg->churning && !interrupted && now_ns() < lg->deadline) {
        churn_refill(lg, until);
        if (!lg->churning)
            break;
        int n = epoll_wait(lg->ep, evs, 512, 50);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        uint64_t now = now_ns();
        for (int i = 0; i < n; i++)
            on_event_ready(evs[i].data.ptr, evs[i].events, now);
    }
    double wall = (double)(now_ns() - t0) / 1e9;
    long long cpu1 = o->pid ? proc_cpu_split(o->pid, &sys1) : -1;
    double scpu = cpu0 >= 0 && cpu1 >= 0 ? ticks_to_s(cpu1 - cpu0) : -1;
    double ssys = cpu0 >= 0 && cpu1 >= 0 ? ticks_to_s(sys1 - sys0) : -1;
    double rate = wall > 0 ? (double)lg->cycles / wall : 0;
    bool ok = lg->churn_errors == 0 && lg->cycles > 0;
    printf("churn: %" PRIu64 " connect+disconnect cycles in %.2f s with %u at a time: %.0f/s; "
           "connect latency p50 %.2f ms, p99 %.2f ms; errors %" PRIu64 "\n",
           lg->cycles, wall, o->concurrency, rate, (double)hist_pct(&lg->connect_lat, 50) / 1e3,
           (double)hist_pct(&lg->connect_lat, 99) / 1e3, lg->churn_errors);
    if (scpu >= 0)
        printf("churn: server CPU %.2f s (%.2f user + %.2f system; %.0f us per cycle); loadgen "
               "CPU %.2f s\n",
               scpu, scpu - ssys, ssys, lg->cycles ? scpu * 1e6 / (double)lg->cycles : 0,
               self_cpu_s() - lg0);
    if (lg->first_error[0])
        printf("churn: first error: %s\n", lg->first_error);
    printf("RESULT mode=churn ok=%d concurrency=%u cycles=%" PRIu64 " wall_s=%.2f cps=%.0f "
           "p50_us=%" PRIu64 " p99_us=%" PRIu64 " server_cpu_s=%.2f server_sys_s=%.2f "
           "server_us_per_cycle=%.0f errors=%" PRIu64 "\n",
           ok, o->concurrency, lg->cycles, wall, rate, hist_pct(&lg->connect_lat, 50),
           hist_pct(&lg->connect_lat, 99), scpu, ssys,
           lg->cycles && scpu >= 0 ? scpu * 1e6 / (double)lg->cycles : 0, lg->churn_errors);
    free_clients(lg);
    return ok ? 0 : 1;
}

/* ---- main ---- */

static void usage(FILE *f)
{
    fputs("usage: loadgen fanout|idle|churn --port PORT [options]\n"
          "Connects to 127.0.0.1 only.\n"
          "  --path PATH          Engine.IO path (default /ws/socket.io/)\n"
          "  --token TOKEN        auth token sent in the Socket.IO CONNECT\n"
          "  --pid PID            the server's process id (CPU and RSS from /proc)\n"
          "  -n, --clients N      WebSocket clients (fanout 1000, idle 5000)\n"
          "  -p, --polling P      polling clients (default 0)\n"
          "  --connect-batch B    handshakes in progress at once (default 200)\n"
          "  --timeout SECONDS    bound on the whole run (default 60)\n"
          "  -v, --verbose        log every error\n"
          "fanout:\n"
          "  -m, --events M       events to post (default 2000)\n"
          "  --size BYTES         approximate size of each event's data (default 200)\n"
          "  --api-path PATH      (default /api/v1/chat-events)\n"
          "  --api-key KEY        bearer key for the API\n"
          "  --user ID            user_id the events go to (default bench)\n"
          "  --posters K          keep-alive connections posting (default 8)\n"
          "  --pipeline D         requests in flight per connection (default 1)\n"
          "  --rate R             events per second (default 0: as fast as possible)\n"
          "  --window W           at most W events not yet delivered to everyone (0: no limit)\n"
          "idle:\n"
          "  --settle SECONDS     wait before reading the RSS (default 1)\n"
          "churn:\n"
          "  -c, --concurrency C  connections in flight (default 64)\n"
          "  --duration SECONDS   (default 5)\n",
          f);
}

static unsigned parse_uint(const char *s, const char *what)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || !*s || *end || v > 100000000ul) {
        fprintf(stderr, "loadgen: bad %s '%s'\n", what, s);
        exit(2);
    }
    return (unsigned)v;
}

static double parse_double(const char *s, const char *what)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || v < 0) {
        fprintf(stderr, "loadgen: bad %s '%s'\n", what, s);
        exit(2);
    }
    return v;
}

enum {
    OPT_PATH = 256,
    OPT_TOKEN,
    OPT_PID,
    OPT_PORT,
    OPT_BATCH,
    OPT_TIMEOUT,
    OPT_SIZE,
    OPT_API_PATH,
    OPT_API_KEY,
    OPT_USER,
    OPT_POSTERS,
    OPT_PIPELINE,
    OPT_RATE,
    OPT_WINDOW,
    OPT_SETTLE,
    OPT_DURATION,
};

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"port", required_argument, NULL, OPT_PORT},
        {"path", required_argument, NULL, OPT_PATH},
        {"token", required_argument, NULL, OPT_TOKEN},
        {"pid", required_argument, NULL, OPT_PID},
        {"clients", required_argument, NULL, 'n'},
        {"polling", required_argument, NULL, 'p'},
        {"connect-batch", required_argument, NULL, OPT_BATCH},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"verbose", no_argument, NULL, 'v'},
        {"events", required_argument, NULL, 'm'},
        {"size", required_argument, NULL, OPT_SIZE},
        {"api-path", required_argument, NULL, OPT_API_PATH},
        {"api-key", required_argument, NULL, OPT_API_KEY},
        {"user", required_argument, NULL, OPT_USER},
        {"posters", required_argument, NULL, OPT_POSTERS},
        {"pipeline", required_argument, NULL, OPT_PIPELINE},
        {"rate", required_argument, NULL, OPT_RATE},
        {"window", required_argument, NULL, OPT_WINDOW},
        {"settle", required_argument, NULL, OPT_SETTLE},
        {"concurrency", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    lg_t *lg = xcalloc(1, sizeof(*lg));
    opts_t *o = &lg->o;
    *o = (opts_t){
        .path = "/ws/socket.io/",
        .api_path = "/api/v1/chat-events",
        .user = "bench",
        .n_ws = (unsigned)-1,
        .m = 2000,
        .size = 200,
        .posters = 8,
        .depth = 1,
        .connect_batch = 200,
        .concurrency = 64,
        .timeout_s = 60,
        .settle_s = 1,
        .duration_s = 5,
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "n:p:m:c:vh", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_PORT:
            o->port = parse_uint(optarg, "port");
            break;
        case OPT_PATH:
            o->path = optarg;
            break;
        case OPT_TOKEN:
            o->token = optarg;
            break;
        case OPT_PID:
            o->pid = (pid_t)parse_uint(optarg, "pid");
            break;
        case 'n':
            o->n_ws = parse_uint(optarg, "client count");
            break;
        case 'p':
            o->n_poll = parse_uint(optarg, "polling client count");
            break;
        case OPT_BATCH:
            o->connect_batch = parse_uint(optarg, "connect batch");
            break;
        case OPT_TIMEOUT:
            o->timeout_s = parse_double(optarg, "timeout");
            break;
        case 'v':
            o->verbose = true;
            break;
        case 'm':
            o->m = parse_uint(optarg, "event count");
            break;
        case OPT_SIZE:
            o->size = parse_uint(optarg, "size");
            break;
        case OPT_API_PATH:
            o->api_path = optarg;
            break;
        case OPT_API_KEY:
            o->api_key = optarg;
            break;
        case OPT_USER:
            o->user = optarg;
            break;
        case OPT_POSTERS:
            o->posters = parse_uint(optarg, "poster count");
            break;
        case OPT_PIPELINE:
            o->depth = parse_uint(optarg, "pipeline depth");
            break;
        case OPT_RATE:
            o->rate = parse_double(optarg, "rate");
            break;
        case OPT_WINDOW:
            o->window = parse_uint(optarg, "window");
            break;
        case OPT_SETTLE:
            o->settle_s = parse_double(optarg, "settle time");
            break;
        case 'c':
            o->concurrency = parse_uint(optarg, "concurrency");
            break;
        case OPT_DURATION:
            o->duration_s = parse_double(optarg, "duration");
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind + 1 != argc || !o->port || o->port > 65535) {
        usage(stderr);
        return 2;
    }
    o->mode = argv[optind];
    if (o->posters == 0 || o->posters > MAX_POSTERS || o->depth == 0 || o->connect_batch == 0 ||
        o->concurrency == 0) {
        fprintf(stderr,
                "loadgen: posters must be 1..%d; pipeline, connect batch and "
                "concurrency at least 1\n",
                MAX_POSTERS);
        return 2;
    }
    if (o->n_ws == (unsigned)-1)
        o->n_ws = !strcmp(o->mode, "idle") ? 5000 : 1000;
    if (o->token && strlen(o->token) > 512) {
        fprintf(stderr, "loadgen: token too long\n");
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_sigint);
    rng_state ^= now_ns() ^ ((uint64_t)getpid() << 32);
    lg->ep = epoll_create1(EPOLL_CLOEXEC);
    if (lg->ep < 0)
        die("epoll_create1: %s", strerror(errno));
    lg->scratch = xcalloc(SCRATCH_SIZE, 1);
    lg->addr.sin_family = AF_INET;
    lg->addr.sin_port = htons((uint16_t)o->port);
    lg->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    snprintf(lg->host, sizeof(lg->host), "127.0.0.1:%u", o->port);
    lg->t_start = now_ns();
    lg->deadline = lg->t_start + (uint64_t)(o->timeout_s * 1e9);

    int rc;
    if (!strcmp(o->mode, "fanout"))
        rc = run_fanout(lg);
    else if (!strcmp(o->mode, "idle"))
        rc = run_idle(lg);
    else if (!strcmp(o->mode, "churn"))
        rc = run_churn(lg);
    else {
        usage(stderr);
        rc = 2;
    }
    free(lg->reopen);
    free(lg->scratch);
    close(lg->ep);
    free(lg);
    return rc;
}
