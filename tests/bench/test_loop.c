/* siohub-bench's I/O loop (src/bench/loop.c) and control channel
 * (src/bench/ctl.c), over real sockets: socketpairs made the way the
 * coordinator makes them, and a loopback TCP listener. Every client,
 * publisher and worker of the bench rides on this layer, so its promises
 * in loop.h are checked as stated: timers fire once, in time order; the
 * run ends for the three stated reasons; bytes a callback leaves come back
 * first; no callback runs inside the call that caused it or after its conn
 * was closed in the same batch; big output gets through the EPOLLOUT path
 * intact; and control frames parse the same whatever pieces they arrive
 * in. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/ctl.h"
#include "bench/loop.h"
#include "bench/util.h"

#define MS          1000000ull
#define BOUND_NS    (5000 * MS) /* a bound for what must happen, never a speed claim */
#define LOOPBACK_IP 0x7f000001u /* 127.0.0.1, host order */

/* ---- helpers ---- */

/* Blocking, like the coordinator's control socketpairs. */
static void make_pair(int sv[2])
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

/* A TCP socket on 127.0.0.1 and a port the kernel picks; listening or
 * only bound (a port that refuses connections while we hold it). */
static int tcp_socket(struct sockaddr_in *addr, bool listening)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(LOOPBACK_IP);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)addr, sizeof(*addr)), 0);
    socklen_t len = sizeof(*addr);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)addr, &len), 0);
    if (listening)
        ck_assert_int_eq(listen(fd, 16), 0);
    return fd;
}

static int accept_one(int lfd)
{
    struct pollfd pfd = {.fd = lfd, .events = POLLIN};
    ck_assert_int_eq(poll(&pfd, 1, (int)(BOUND_NS / MS)), 1);
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    return fd;
}

/* Reads exactly n bytes from a blocking fd, within the bound. */
static void read_exactly(int fd, char *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ck_assert_int_eq(poll(&pfd, 1, (int)(BOUND_NS / MS)), 1);
        ssize_t r = recv(fd, p + got, n - got, 0);
        ck_assert_int_gt(r, 0);
        got += (size_t)r;
    }
}

/* Bytes nothing repeats in: a misplaced or doubled block shows. */
static void fill_pattern(char *p, size_t n, uint64_t seed)
{
    uint64_t x = seed | 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (char)(x >> 32);
    }
}

typedef struct wait_for {
    const int *count;
    int want;
} wait_for_t;

static bool reached(void *arg)
{
    const wait_for_t *w = arg;
    return *w->count >= w->want;
}

/* Runs l until *count reaches want; fails if the bound passes first. */
static void run_until(sb_loop_t *l, const int *count, int want)
{
    wait_for_t w = {count, want};
    ck_assert_int_eq(sb_loop_run(l, reached, &w, sb_now_ns() + BOUND_NS), 0);
}

/* Runs l a little longer, to give a callback that must not come a chance
 * to come anyway. */
static void run_idle(sb_loop_t *l, uint64_t ns)
{
    ck_assert_int_eq(sb_loop_run(l, NULL, NULL, sb_now_ns() + ns), -ETIMEDOUT);
}

/* ---- a conn owner that counts its callbacks ---- */

typedef struct probe {
    sb_conn_t c;
    int connected, data_calls, closed;
    int err;           /* of the last closed */
    sb_buf_t used;     /* the bytes data() used, in order */
    char last[64];     /* what the last data() call saw (its start) */
    size_t last_n;     /* and its whole length */
    const size_t *use; /* how many bytes each call uses; past the end: all */
    size_t nuse;
    size_t expect_total;         /* use half of each call until this many arrived */
    struct probe *close_on_data; /* this conn is closed by our data() */
    /* where close_on_data's conn is then reopened; without close_on_data,
     * where closed() reopens this conn, once */
    const struct sockaddr_in *reopen;
    const int *iterations;         /* the loop's, counted by a hook */
    int iter_data, iter_connected; /* when the last data() / connected() ran */
} probe_t;

static void count_iteration(void *arg)
{
    int *iterations = arg;
    (*iterations)++;
}

static void probe_connected(sb_conn_t *c, uint64_t now)
{
    probe_t *pr = c->owner;
    ck_assert_uint_gt(now, 0);
    pr->connected++;
    if (pr->iterations)
        pr->iter_connected = *pr->iterations;
}

static size_t probe_data(sb_conn_t *c, const char *p, size_t n, uint64_t now)
{
    probe_t *pr = c->owner;
    (void)now;
    ck_assert_uint_gt(n, 0);
    size_t i = (size_t)pr->data_calls++;
    if (pr->iterations)
        pr->iter_data = *pr->iterations;
    pr->last_n = n;
    memcpy(pr->last, p, n < sizeof(pr->last) ? n : sizeof(pr->last));
    size_t use = n;
    if (i < pr->nuse)
        use = pr->use[i];
    else if (pr->expect_total && sb_buf_avail(&pr->used) + n < pr->expect_total)
        use = n / 2;
    sb_buf_append(&pr->used, p, use);
    if (pr->close_on_data) {
        sb_conn_close(&pr->close_on_data->c, false);
        if (pr->reopen)
            sb_conn_open(&pr->close_on_data->c, pr->reopen, 0);
    }
    return use;
}

static void probe_closed(sb_conn_t *c, int err)
{
    probe_t *pr = c->owner;
    ck_assert_int_lt(c->fd, 0);
    ck_assert(!sb_conn_is_open(c));
    pr->closed++;
    pr->err = err;
    if (pr->reopen) {
        const struct sockaddr_in *dst = pr->reopen;
        pr->reopen = NULL;
        sb_conn_open(c, dst, 0);
    }
}

static const sb_conn_ops_t probe_ops = {
    .connected = probe_connected,
    .data = probe_data,
    .closed = probe_closed,
};

static void probe_init(probe_t *pr, sb_loop_t *l)
{
    memset(pr, 0, sizeof(*pr));
    sb_conn_init(&pr->c, l, &probe_ops, pr);
}

static void probe_release(probe_t *pr)
{
    sb_conn_release(&pr->c);
    sb_buf_release(&pr->used);
}

/* A probe on l owning one end of a new socketpair; returns the other end,
 * the test's to write to and close. */
static int probe_on_pair(probe_t *pr, sb_loop_t *l)
{
    int sv[2];
    make_pair(sv);
    probe_init(pr, l);
    sb_conn_adopt(&pr->c, sv[0]);
    return sv[1];
}

static bool probe_used_is(const probe_t *pr, const char *s)
{
    size_t n = strlen(s);
    return sb_buf_avail(&pr->used) == n && !memcmp(sb_buf_head(&pr->used), s, n);
}

/* ---- timers ---- */

typedef struct tick_log {
    int fired;
    unsigned order[512];
} tick_log_t;

typedef struct tick {
    sb_timer_t t;
    sb_loop_t *l;
    tick_log_t *log;
    unsigned id;
    uint64_t want_at; /* the time it was last armed to */
    int fired;
    uint64_t fired_now;
    struct tick *arm;   /* a timer this one arms when it fires */
    uint64_t arm_delay; /* at now + this */
    int rearm_self;     /* times it re-arms itself */
} tick_t;

static void tick_cb(sb_timer_t *t, uint64_t now)
{
    tick_t *k = t->arg;
    ck_assert_uint_eq(t->slot, 0); /* disarmed before its callback */
    ck_assert_uint_ge(now, k->want_at);
    k->fired++;
    k->fired_now = now;
    if (k->log->fired < 512)
        k->log->order[k->log->fired] = k->id;
    k->log->fired++;
    if (k->arm) {
        k->arm->want_at = now + k->arm_delay;
        sb_timer_start(k->l, &k->arm->t, k->arm->want_at);
    }
    if (k->rearm_self > 0) {
        k->rearm_self--;
        k->want_at = now + 2 * MS;
        sb_timer_start(k->l, &k->t, k->want_at);
    }
}

static void tick_init(tick_t *k, sb_loop_t *l, tick_log_t *log, unsigned id)
{
    memset(k, 0, sizeof(*k));
    k->t.cb = tick_cb;
    k->t.arg = k;
    k->l = l;
    k->log = log;
    k->id = id;
}

/* tick_init for each tick given, up to a NULL: ids 0, 1, 2... in order. */
static void tick_init_each(sb_loop_t *l, tick_log_t *log, ...)
{
    va_list ap;
    va_start(ap, log);
    unsigned id = 0;
    for (tick_t *k; (k = va_arg(ap, tick_t *));)
        tick_init(k, l, log, id++);
    va_end(ap);
}

static void tick_start(tick_t *k, uint64_t at)
{
    k->want_at = at;
    sb_timer_start(k->l, &k->t, at);
}

START_TEST(test_timers_fire_in_time_order)
{
    sb_loop_t *l = sb_loop_new(1);
    tick_log_t log = {0};
    tick_t k[40];
    unsigned perm[40];
    for (unsigned i = 0; i < 40; i++) {
        tick_init(&k[i], l, &log, i);
        perm[i] = i;
    }
    /* Armed in a shuffled order, 20 us apart: most fall due together, so
     * the heap, not the clock, orders them. */
    uint64_t rng = 7;
    for (unsigned i = 39; i > 0; i--) {
        unsigned j = (unsigned)(sb_rand_next(&rng) % (i + 1));
        unsigned x = perm[i];
        perm[i] = perm[j];
        perm[j] = x;
    }
    uint64_t base = sb_now_ns() + 20 * MS;
    for (unsigned i = 0; i < 40; i++)
        tick_start(&k[perm[i]], base + perm[i] * 20000);
    run_until(l, &log.fired, 40);
    for (unsigned i = 0; i < 40; i++) {
        ck_assert_uint_eq(log.order[i], i);
        ck_assert_int_eq(k[i].fired, 1);
    }
    run_idle(l, 20 * MS);
    ck_assert_int_eq(log.fired, 40);
    sb_loop_free(l);
}
END_TEST

START_TEST(test_timers_rearm_and_stop_in_a_big_heap)
{
    enum { N = 300 };
    sb_loop_t *l = sb_loop_new(2);
    tick_log_t log = {0};
    tick_t *k = calloc(N, sizeof(*k));
    unsigned *slot = calloc(2 * N, sizeof(*slot)); /* distinct times, shuffled */
    uint64_t rng = 11;
    for (unsigned i = 0; i < 2 * N; i++)
        slot[i] = i;
    for (unsigned i = 2 * N - 1; i > 0; i--) {
        unsigned j = (unsigned)(sb_rand_next(&rng) % (i + 1));
        unsigned x = slot[i];
        slot[i] = slot[j];
        slot[j] = x;
    }
    uint64_t base = sb_now_ns() + 30 * MS;
    for (unsigned i = 0; i < N; i++) {
        tick_init(&k[i], l, &log, i);
        tick_start(&k[i], base + slot[i] * 10000);
    }
    /* Re-arm a third to other times (earlier or later), stop a fifth,
     * some of them re-armed first: heap removals from every position. */
    int want = N;
    for (unsigned i = 0; i < N; i++) {
        if (i % 3 == 0)
            tick_start(&k[i], base + slot[N + i] * 10000);
        if (i % 5 == 1) {
            sb_timer_stop(l, &k[i].t);
            ck_assert_uint_eq(k[i].t.slot, 0);
            sb_timer_stop(l, &k[i].t); /* twice is harmless */
            want--;
        }
    }
    wait_for_t w = {&log.fired, want};
    ck_assert_int_eq(sb_loop_run(l, reached, &w, sb_now_ns() + BOUND_NS), 0);
    run_idle(l, 20 * MS);
    ck_assert_int_eq(log.fired, want);
    for (unsigned i = 0; i < N; i++)
        ck_assert_int_eq(k[i].fired, i % 5 == 1 ? 0 : 1);
    /* Fired in the order of the times they were last armed to, each at or
     * after it (tick_cb checks the latter). */
    uint64_t prev = 0;
    for (int i = 0; i < want; i++) {
        const tick_t *t = &k[log.order[i]];
        ck_assert_uint_gt(t->want_at, prev);
        prev = t->want_at;
    }
    free(slot);
    free(k);
    sb_loop_free(l);
}
END_TEST

START_TEST(test_timer_rearm_moves_it)
{
    sb_loop_t *l = sb_loop_new(3);
    tick_log_t log = {0};
    tick_t later, earlier, marker;
    tick_init_each(l, &log, &later, &earlier, &marker, NULL);
    uint64_t now = sb_now_ns();
    /* Moved later: it must not fire at its first time. */
    tick_start(&later, now + 10 * MS);
    tick_start(&later, now + 60 * MS);
    /* Moved earlier: it fires at the new time, once. */
    tick_start(&earlier, now + 500 * MS);
    tick_start(&earlier, now + 20 * MS);
    tick_start(&marker, now + 40 * MS);
    run_until(l, &log.fired, 3);
    ck_assert_uint_eq(log.order[0], 1);
    ck_assert_uint_eq(log.order[1], 2);
    ck_assert_uint_eq(log.order[2], 0);
    ck_assert_uint_ge(later.fired_now, now + 60 * MS);
    run_idle(l, 550 * MS);
    ck_assert_int_eq(later.fired, 1);
    ck_assert_int_eq(earlier.fired, 1);
    ck_assert_int_eq(log.fired, 3);
    sb_loop_free(l);
}
END_TEST

static void stop_other_cb(sb_timer_t *t, uint64_t now)
{
    tick_t *k = t->arg;
    tick_cb(t, now);
    sb_timer_stop(k->l, &k->arm->t);
}

START_TEST(test_stopped_timer_never_fires)
{
    sb_loop_t *l = sb_loop_new(4);
    tick_log_t log = {0};
    tick_t a, b, c, victim;
    tick_init_each(l, &log, &a, &b, &c, &victim, NULL);
    uint64_t now = sb_now_ns();
    tick_start(&a, now + 10 * MS);
    tick_start(&b, now + 5 * MS);
    tick_start(&c, now + 30 * MS);
    sb_timer_stop(l, &b.t); /* stopped before the run */
    /* Due just after its stopper, most likely in the same pass over the
     * heap: stopped from a callback of the batch that would run it. */
    c.t.cb = stop_other_cb;
    c.arm = &victim;
    tick_start(&victim, now + 30 * MS + 1000);
    ck_assert_uint_gt(victim.t.slot, 0);
    run_until(l, &log.fired, 2);
    run_idle(l, 60 * MS);
    ck_assert_int_eq(a.fired, 1);
    ck_assert_int_eq(b.fired, 0);
    ck_assert_int_eq(c.fired, 1);
    ck_assert_int_eq(victim.fired, 0);
    ck_assert_int_eq(log.fired, 2);
    sb_loop_free(l);
}
END_TEST

START_TEST(test_timer_callback_arms_timers)
{
    sb_loop_t *l = sb_loop_new(5);
    tick_log_t log = {0};
    tick_t self, first, soon, now_due;
    tick_init_each(l, &log, &self, &first, &soon, &now_due, NULL);
    self.rearm_self = 4;
    tick_start(&self, sb_now_ns() + 2 * MS);
    /* first arms soon 5 ms on, which arms now_due at its own now: already
     * due, it runs from the same pass over the heap. */
    first.arm = &soon;
    first.arm_delay = 5 * MS;
    soon.arm = &now_due;
    soon.arm_delay = 0;
    tick_start(&first, sb_now_ns() + 3 * MS);
    run_until(l, &log.fired, 5 + 3);
    run_idle(l, 30 * MS);
    ck_assert_int_eq(self.fired, 5);
    ck_assert_int_eq(first.fired, 1);
    ck_assert_int_eq(soon.fired, 1);
    ck_assert_int_eq(now_due.fired, 1);
    ck_assert_uint_eq(now_due.fired_now, soon.fired_now);
    ck_assert_uint_ge(soon.fired_now, first.fired_now + 5 * MS);
    ck_assert_int_eq(log.fired, 8);
    sb_loop_free(l);
}
END_TEST

/* ---- sb_loop_run ---- */

typedef struct run_ctx {
    sb_loop_t *l;
    int hooks;
    int hooks_seen[8]; /* the hook count when each timer fired */
    int fired;
    int chain; /* run_timer_cb re-arms until it fired this often */
    bool done;
    volatile sig_atomic_t stop;
} run_ctx_t;

static void count_hook(void *arg)
{
    run_ctx_t *r = arg;
    r->hooks++;
}

static bool is_done(void *arg)
{
    const run_ctx_t *r = arg;
    return r->done;
}

static bool three_hooks(void *arg)
{
    const run_ctx_t *r = arg;
    return r->hooks >= 3;
}

static void run_timer_cb(sb_timer_t *t, uint64_t now)
{
    run_ctx_t *r = t->arg;
    if (r->fired < 8)
        r->hooks_seen[r->fired] = r->hooks;
    r->fired++;
    /* A chain: due after this pass's now, so never in the same pass. */
    if (r->fired < r->chain)
        sb_timer_start(r->l, t, now + MS);
}

static void finish_cb(sb_timer_t *t, uint64_t now)
{
    run_ctx_t *r = t->arg;
    (void)now;
    r->fired++;
    r->done = true;
}

static void stop_cb(sb_timer_t *t, uint64_t now)
{
    run_ctx_t *r = t->arg;
    (void)now;
    r->fired++;
    r->stop = 1;
}

START_TEST(test_run_returns_0_when_done)
{
    run_ctx_t r = {.l = sb_loop_new(6)};
    r.done = true;
    ck_assert_int_eq(sb_loop_run(r.l, is_done, &r, sb_now_ns() + BOUND_NS), 0);
    r.done = false;
    sb_timer_t t = {.cb = finish_cb, .arg = &r};
    sb_timer_start(r.l, &t, sb_now_ns() + 10 * MS);
    ck_assert_int_eq(sb_loop_run(r.l, is_done, &r, sb_now_ns() + BOUND_NS), 0);
    ck_assert_int_eq(r.fired, 1);
    sb_loop_free(r.l);
}
END_TEST

START_TEST(test_run_times_out_at_the_deadline)
{
    run_ctx_t r = {.l = sb_loop_new(7)};
    uint64_t deadline = sb_now_ns() + 30 * MS;
    ck_assert_int_eq(sb_loop_run(r.l, is_done, &r, deadline), -ETIMEDOUT);
    ck_assert_uint_ge(sb_now_ns(), deadline);
    /* A timer past the deadline does not fire in this run. */
    sb_timer_t t = {.cb = run_timer_cb, .arg = &r};
    sb_timer_start(r.l, &t, sb_now_ns() + 400 * MS);
    deadline = sb_now_ns() + 20 * MS;
    ck_assert_int_eq(sb_loop_run(r.l, NULL, NULL, deadline), -ETIMEDOUT);
    ck_assert_uint_ge(sb_now_ns(), deadline);
    ck_assert_int_eq(r.fired, 0);
    ck_assert_int_eq(sb_loop_run(r.l, NULL, NULL, 1), -ETIMEDOUT);
    sb_timer_stop(r.l, &t);
    sb_loop_free(r.l);
}
END_TEST

START_TEST(test_run_stops_on_the_flag)
{
    run_ctx_t r = {.l = sb_loop_new(8)};
    sb_loop_set_stop_flag(r.l, &r.stop);
    sb_timer_t t = {.cb = stop_cb, .arg = &r};
    sb_timer_start(r.l, &t, sb_now_ns() + 20 * MS);
    ck_assert_int_eq(sb_loop_run(r.l, is_done, &r, sb_now_ns() + BOUND_NS), -EINTR);
    ck_assert_int_eq(r.fired, 1);
    /* Still set: the next run stops at once, with no deadline at all. */
    ck_assert_int_eq(sb_loop_run(r.l, NULL, NULL, UINT64_MAX), -EINTR);
    sb_loop_free(r.l);
}
END_TEST

START_TEST(test_run_calls_the_hook_each_iteration)
{
    run_ctx_t r = {.l = sb_loop_new(9)};
    sb_loop_set_hook(r.l, count_hook, &r);
    /* Nothing to wake for: each iteration waits its full slice, and done
     * sees the hooks of all iterations before it. */
    ck_assert_int_eq(sb_loop_run(r.l, three_hooks, &r, sb_now_ns() + BOUND_NS), 0);
    ck_assert_int_eq(r.hooks, 3);
    /* A timer chain wakes one iteration per link, each after a hook. */
    r.chain = 5;
    sb_timer_t t = {.cb = run_timer_cb, .arg = &r};
    sb_timer_start(r.l, &t, sb_now_ns() + MS);
    wait_for_t w = {&r.fired, 5};
    ck_assert_int_eq(sb_loop_run(r.l, reached, &w, sb_now_ns() + BOUND_NS), 0);
    ck_assert_int_gt(r.hooks_seen[0], 3);
    for (int i = 1; i < 5; i++)
        ck_assert_int_gt(r.hooks_seen[i], r.hooks_seen[i - 1]);
    ck_assert_int_gt(r.hooks, r.hooks_seen[4]);
    sb_loop_set_hook(r.l, NULL, NULL);
    int hooks = r.hooks;
    run_idle(r.l, 20 * MS);
    ck_assert_int_eq(r.hooks, hooks);
    sb_loop_free(r.l);
}
END_TEST

/* ---- connections ---- */

START_TEST(test_conn_data_then_eof)
{
    sb_loop_t *l = sb_loop_new(10);
    probe_t a;
    int peer = probe_on_pair(&a, l);
    ck_assert(sb_conn_is_open(&a.c));
    ck_assert_int_eq(write(peer, "hello", 5), 5);
    run_until(l, &a.data_calls, 1);
    ck_assert(probe_used_is(&a, "hello"));
    /* Our output reaches the peer. */
    sb_conn_send(&a.c, "ping", 4);
    char buf[4];
    read_exactly(peer, buf, 4);
    ck_assert(!memcmp(buf, "ping", 4));
    ck_assert_int_eq(write(peer, " world", 6), 6);
    close(peer);
    run_until(l, &a.closed, 1);
    ck_assert_int_eq(a.err, 0);
    ck_assert(probe_used_is(&a, "hello world"));
    ck_assert_int_eq(a.c.fd, -1);
    run_idle(l, 20 * MS);
    ck_assert_int_eq(a.closed, 1);
    probe_release(&a);
    sb_loop_free(l);
}
END_TEST

START_TEST(test_conn_unused_bytes_come_back_first)
{
    sb_loop_t *l = sb_loop_new(11);
    probe_t a;
    int peer = probe_on_pair(&a, l);
    static const size_t use[] = {2, 0, 3};
    a.use = use;
    a.nuse = 3;
    static const char *const sends[] = {"hello ", "world", "!", "x"};
    static const char *const seen[] = {"hello ", "llo world", "llo world!", " world!x"};
    for (int i = 0; i < 4; i++) {
        ssize_t n = (ssize_t)strlen(sends[i]);
        ck_assert_int_eq(write(peer, sends[i], (size_t)n), n);
        run_until(l, &a.data_calls, i + 1);
        ck_assert_uint_eq(a.last_n, strlen(seen[i]));
        ck_assert(!memcmp(a.last, seen[i], a.last_n));
    }
    ck_assert(probe_used_is(&a, "hello world!x"));
    close(peer);
    run_until(l, &a.closed, 1);
    probe_release(&a);
    sb_loop_free(l);
}
END_TEST

START_TEST(test_conn_stream_with_leftovers)
{
    /* Megabytes through a conn whose owner uses half of each call: many
     * full reads per wake, leftovers growing and shrinking. */
    enum { TOTAL = 3 << 20 };
    sb_loop_t *l = sb_loop_new(12);
    probe_t rx, tx;
    int tx_end = probe_on_pair(&rx, l);
    rx.expect_total = TOTAL;
    probe_init(&tx, l);
    sb_conn_adopt(&tx.c, tx_end);
    char *stream = malloc(TOTAL);
    fill_pattern(stream, TOTAL, 12);
    sb_conn_send(&tx.c, stream, TOTAL);
    for (int i = 0; i < 100 && sb_buf_avail(&rx.used) < TOTAL; i++)
        run_until(l, &rx.data_calls, rx.data_calls + 1);
    ck_assert_uint_eq(sb_buf_avail(&rx.used), TOTAL);
    ck_assert(!memcmp(sb_buf_head(&rx.used), stream, TOTAL));
    ck_assert_int_gt(rx.data_calls, 5);
    free(stream);
    probe_release(&rx);
    probe_release(&tx);
    sb_loop_free(l);
}
END_TEST

START_TEST(test_conn_open_connects_once_and_writes_queued_output)
{
    sb_loop_t *l = sb_loop_new(13);
    struct sockaddr_in addr;
    int lfd = tcp_socket(&addr, true);
    probe_t a;
    probe_init(&a, l);
    sb_conn_send(&a.c, "queued ", 7); /* before the open: kept */
    sb_conn_open(&a.c, &addr, htonl(LOOPBACK_IP));
    sb_conn_send(&a.c, "while connecting", 16);
    ck_assert_int_eq(a.connected + a.closed, 0);
    run_until(l, &a.connected, 1);
    ck_assert(sb_conn_is_open(&a.c));
    int peer = accept_one(lfd);
    struct sockaddr_in from;
    socklen_t len = sizeof(from);
    ck_assert_int_eq(getpeername(peer, (struct sockaddr *)&from, &len), 0);
    ck_assert_uint_eq(from.sin_addr.s_addr, htonl(LOOPBACK_IP));
    char buf[23];
    read_exactly(peer, buf, 23);
    ck_assert(!memcmp(buf, "queued while connecting", 23));
    ck_assert_int_eq(write(peer, "back", 4), 4);
    run_until(l, &a.data_calls, 1);
    ck_assert(probe_used_is(&a, "back"));
    run_idle(l, 20 * MS);
    ck_assert_int_eq(a.connected, 1);
    ck_assert_int_eq(a.closed, 0);
    close(peer);
    run_until(l, &a.closed, 1);
    ck_assert_int_eq(a.err, 0);
    ck_assert_int_eq(a.connected, 1);
    close(lfd);
    probe_release(&a);
    sb_loop_free(l);
}
END_TEST

START_TEST(test_conn_open_refused_is_reported_from_the_loop)
{
    sb_loop_t *l = sb_loop_new(14);
    struct sockaddr_in addr;
    int bound = tcp_socket(&addr, false); /* held, never listening */
    probe_t a;
    probe_init(&a, l);
    sb_conn_send(&a.c, "lost", 4);
    sb_conn_open(&a.c, &addr, 0);
    ck_assert_int_eq(a.closed + a.connected, 0);
    run_until(l, &a.closed, 1);
    ck_assert_int_eq(a.err, ECONNREFUSED);
    ck_assert_int_eq(a.connected, 0);
    ck_assert(!sb_conn_is_open(&a.c));
    /* A failure found before any connect (a source address we do not
     * have: the bind fails) waits for the loop just the same. */
    struct sockaddr_in here;
    int lfd = tcp_socket(&here, true);
    sb_conn_open(&a.c, &here, htonl(0xc0000201u)); /* 192.0.2.1, TEST-NET-1 */
    ck_assert_int_eq(a.closed, 1);
    run_until(l, &a.closed, 2);
    ck_assert_int_eq(a.err, EADDRNOTAVAIL);
    /* closed may reopen its conn. */
    a.reopen = &addr;
    sb_conn_open(&a.c, &here, htonl(0xc0000201u));
    run_until(l, &a.closed, 4);
    ck_assert_int_eq(a.err, ECONNREFUSED);
    ck_assert_int_eq(a.connected, 0);
    run_idle(l, 20 * MS);
    ck_assert_int_eq(a.closed, 4);
    close(lfd);
    close(bound);
    probe_release(&a);
    sb_loop_free(l);
}
END_TEST

START_TEST(test_conn_write_error_is_reported_from_the_loop)
{
    sb_loop_t *l = sb_loop_new(15);
    probe_t a;
    close(probe_on_pair(&a, l));
    sb_conn_send(&a.c, "to nobody", 9);
    ck_assert_int_eq(a.closed, 0);
    run_until(l, &a.closed, 1);
    ck_assert_int_eq(a.err, EPIPE);
    run_idle(l, 20 * MS);
    ck_assert_int_eq(a.closed, 1);
    ck_assert_int_eq(a.data_calls, 0);
    probe_release(&a);
    sb_loop_free(l);
}
END_TEST

START_TEST(test_conn_closed_in_batch_gets_no_more_callbacks)
{
    sb_loop_t *l = sb_loop_new(16);
    probe_t a, b;
    int peer_a = probe_on_pair(&a, l);
    int peer_b = probe_on_pair(&b, l);
    a.close_on_data = &b;
    b.close_on_data = &a;
    /* Both readable, and hung up, before the wait: one batch holds both
     * events, and whichever runs first closes the other. */
    ck_assert_int_eq(write(peer_a, "a", 1), 1);
    ck_assert_int_eq(write(peer_b, "b", 1), 1);
    close(peer_a);
    close(peer_b);
    run_idle(l, 50 * MS);
    ck_assert_int_eq(a.data_calls + b.data_calls, 1);
    probe_t *live = a.data_calls ? &a : &b;
    probe_t *dead = a.data_calls ? &b : &a;
    ck_assert_int_eq(dead->closed, 0);
    ck_assert_int_eq(dead->c.fd, -1);
    ck_assert(!sb_conn_is_open(&dead->c));
    /* The survivor still sees its EOF. */
    ck_assert_int_eq(live->closed, 1);
    ck_assert_int_eq(live->err, 0);
    probe_release(&a);
    probe_release(&b);
    sb_loop_free(l);
}
END_TEST

START_TEST(test_conn_closing_itself_mid_read_ends_the_batch)
{
    sb_loop_t *l = sb_loop_new(17);
    probe_t a;
    int peer = probe_on_pair(&a, l);
    a.close_on_data = &a;
    /* More than one read's worth queued, then EOF: a conn that kept
     * reading after closing would come back with more data or a close. */
    int big = 4 << 20;
    setsockopt(peer, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    static char chunk[64 * 1024];
    size_t queued = 0;
    while (queued <= SB_SCRATCH_SIZE + sizeof(chunk)) {
        ssize_t w = send(peer, chunk, sizeof(chunk), MSG_DONTWAIT);
        ck_assert_int_gt(w, 0);
        queued += (size_t)w;
    }
    close(peer);
    run_until(l, &a.data_calls, 1);
    ck_assert_uint_eq(a.last_n, SB_SCRATCH_SIZE);
    run_idle(l, 30 * MS);
    ck_assert_int_eq(a.data_calls, 1);
    ck_assert_int_eq(a.closed, 0);
    ck_assert_int_eq(a.c.fd, -1);
    probe_release(&a);
    sb_loop_free(l);
}
END_TEST

START_TEST(test_conn_reopened_in_batch_connects_after_it)
{
    sb_loop_t *l = sb_loop_new(18);
    struct sockaddr_in addr;
    int lfd = tcp_socket(&addr, true);
    probe_t a, b;
    int peer_a = probe_on_pair(&a, l);
    int peer_b = probe_on_pair(&b, l);
    a.close_on_data = &b;
    a.reopen = &addr;
    int iterations = 0;
    sb_loop_set_hook(l, count_iteration, &iterations);
    a.iterations = b.iterations = &iterations;
    /* epoll hands out ready fds in the order they became ready: a's event
     * leads the batch, b's old socket follows, readable and hung up. a
     * replaces b's socket by a TCP connect (likely on the same fd number),
     * which must not take that stale event for its own. */
    ck_assert_int_eq(write(peer_a, "go", 2), 2);
    ck_assert_int_eq(write(peer_b, "stale", 5), 5);
    close(peer_b);
    run_until(l, &b.connected, 1);
    ck_assert_int_eq(a.data_calls, 1);
    ck_assert_int_eq(b.data_calls, 0);
    ck_assert_int_gt(b.iter_connected, a.iter_data);
    int peer = accept_one(lfd);
    ck_assert_int_eq(write(peer, "fresh", 5), 5);
    run_until(l, &b.data_calls, 1);
    ck_assert_uint_eq(b.last_n, 5);
    ck_assert(!memcmp(b.last, "fresh", 5));
    ck_assert_int_eq(b.connected, 1);
    ck_assert_int_eq(b.closed, 0);
    close(peer);
    close(lfd);
    close(peer_a);
    probe_release(&a);
    probe_release(&b);
    sb_loop_free(l);
}
END_TEST

typedef struct late_reader {
    probe_t *rx;
    int fd;
} late_reader_t;

static void adopt_later_cb(sb_timer_t *t, uint64_t now)
{
    late_reader_t *lr = t->arg;
    (void)now;
    sb_conn_adopt(&lr->rx->c, lr->fd);
}

START_TEST(test_conn_large_send_waits_for_epollout)
{
    enum { TOTAL = 8 << 20 };
    sb_loop_t *l = sb_loop_new(19);
    probe_t tx, rx;
    int rx_end = probe_on_pair(&tx, l);
    probe_init(&rx, l);
    char *stream = malloc(TOTAL);
    fill_pattern(stream, TOTAL, 19);
    /* The reader starts 50 ms on: until then the socket fills and the
     * rest waits in tx's buffer for EPOLLOUT. */
    sb_conn_send(&tx.c, stream, TOTAL / 2);
    sb_conn_send(&tx.c, stream + TOTAL / 2, TOTAL - TOTAL / 2);
    ck_assert_uint_gt(sb_buf_avail(&tx.c.out), 0);
    ck_assert(tx.c.watching_out);
    late_reader_t lr = {&rx, rx_end};
    sb_timer_t t = {.cb = adopt_later_cb, .arg = &lr};
    sb_timer_start(l, &t, sb_now_ns() + 50 * MS);
    for (int i = 0; i < 10000 && sb_buf_avail(&rx.used) < TOTAL; i++)
        run_until(l, &rx.data_calls, rx.data_calls + 1);
    ck_assert_uint_eq(sb_buf_avail(&rx.used), TOTAL);
    ck_assert(!memcmp(sb_buf_head(&rx.used), stream, TOTAL));
    ck_assert_uint_eq(sb_buf_avail(&tx.c.out), 0);
    ck_assert(!tx.c.watching_out);
    ck_assert_int_eq(tx.closed + rx.closed, 0);
    free(stream);
    probe_release(&tx);
    probe_release(&rx);
    sb_loop_free(l);
}
END_TEST

START_TEST(test_conn_close_reset_and_orderly)
{
    sb_loop_t *l = sb_loop_new(20);
    struct sockaddr_in addr;
    int lfd = tcp_socket(&addr, true);
    probe_t a[2], p[2];
    for (int i = 0; i < 2; i++) {
        probe_init(&a[i], l);
        probe_init(&p[i], l);
        sb_conn_open(&a[i].c, &addr, 0);
        run_until(l, &a[i].connected, 1);
        sb_conn_adopt(&p[i].c, accept_one(lfd));
        sb_conn_send(&a[i].c, "hi", 2);
        run_until(l, &p[i].data_calls, 1);
    }
    sb_conn_close(&a[0].c, true);
    sb_conn_close(&a[1].c, false);
    run_until(l, &p[0].closed, 1);
    run_until(l, &p[1].closed, 1);
    ck_assert_int_eq(p[0].err, ECONNRESET);
    ck_assert_int_eq(p[1].err, 0);
    /* Closing calls no callback of its own. */
    ck_assert_int_eq(a[0].closed + a[1].closed, 0);
    for (int i = 0; i < 2; i++) {
        probe_release(&a[i]);
        probe_release(&p[i]);
    }
    close(lfd);
    sb_loop_free(l);
}
END_TEST

/* ---- control channel ---- */

typedef struct ctl_msg {
    uint32_t type;
    size_t n;
    char *p;
} ctl_msg_t;

typedef struct ctl_log {
    const ctl_msg_t *expect;
    size_t nexpect;
    size_t next;  /* index of the next message expected */
    int got;      /* messages delivered */
    int messages; /* the same, for run_until */
} ctl_log_t;

static void ctl_check(void *arg, uint32_t type, const char *p, size_t n)
{
    ctl_log_t *log = arg;
    ck_assert_uint_lt(log->next, log->nexpect);
    const ctl_msg_t *m = &log->expect[log->next++];
    ck_assert_uint_eq(type, m->type);
    ck_assert_uint_eq(n, m->n);
    ck_assert(n == 0 || !memcmp(p, m->p, n));
    log->got++;
    log->messages++;
}

typedef struct ctl_end {
    sb_conn_t c;
    ctl_log_t log;
} ctl_end_t;

static size_t ctl_data(sb_conn_t *c, const char *p, size_t n, uint64_t now)
{
    ctl_end_t *e = c->owner;
    (void)now;
    size_t used = sb_ctl_parse(p, n, ctl_check, &e->log);
    ck_assert_uint_ne(used, (size_t)-1);
    ck_assert_uint_le(used, n);
    return used;
}

static void ctl_closed(sb_conn_t *c, int err)
{
    (void)c;
    ck_abort_msg("control channel closed: %s", strerror(err));
}

static const sb_conn_ops_t ctl_ops = {.data = ctl_data, .closed = ctl_closed};

/* A control channel end on l over fd, expecting the messages expect[0..n)
 * in order (none when n is 0). */
static void ctl_end_adopt(ctl_end_t *e, sb_loop_t *l, int fd, const ctl_msg_t *expect, size_t n)
{
    memset(e, 0, sizeof(*e));
    sb_conn_init(&e->c, l, &ctl_ops, e);
    sb_conn_adopt(&e->c, fd);
    e->log.expect = expect;
    e->log.nexpect = n;
}

static void ctl_msgs_make(ctl_msg_t *m, size_t count, const size_t *sizes)
{
    for (size_t i = 0; i < count; i++) {
        m[i].type = i % 2 ? SB_CTL_SCENARIO + (uint32_t)i : SB_CTL_READY + (uint32_t)(i % 6);
        m[i].n = sizes[i];
        m[i].p = malloc(sizes[i] + 1);
        fill_pattern(m[i].p, sizes[i], i + 1);
    }
}

static void ctl_msgs_free(ctl_msg_t *m, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(m[i].p);
}

/* The wire format, by hand: {u32 type, u32 length} in host order. */
static void frame_append(sb_buf_t *b, const ctl_msg_t *m)
{
    uint32_t hdr[2] = {m->type, (uint32_t)m->n};
    sb_buf_append(b, hdr, sizeof(hdr));
    sb_buf_append(b, m->p, m->n);
}

START_TEST(test_ctl_round_trip)
{
    static const size_t sizes[] = {0, 1, 3 << 20, 7, 0, 65536, 300000, 0};
    enum { COUNT = sizeof(sizes) / sizeof(sizes[0]) };
    ctl_msg_t m[COUNT];
    ctl_msgs_make(m, COUNT, sizes);
    sb_loop_t *l = sb_loop_new(21);
    int sv[2];
    make_pair(sv);
    ctl_end_t a, b;
    ctl_end_adopt(&a, l, sv[0], m, COUNT);
    ctl_end_adopt(&b, l, sv[1], m, COUNT);
    /* Both ways at once: the big one outgrows the socket on either side. */
    for (size_t i = 0; i < COUNT; i++) {
        sb_ctl_send(&a.c, m[i].type, m[i].p, m[i].n);
        sb_ctl_send(&b.c, m[i].type, m[i].p, m[i].n);
    }
    run_until(l, &b.log.messages, COUNT);
    run_until(l, &a.log.messages, COUNT);
    run_idle(l, 20 * MS);
    ck_assert_int_eq(a.log.got, COUNT);
    ck_assert_int_eq(b.log.got, COUNT);
    sb_conn_release(&a.c);
    sb_conn_release(&b.c);
    sb_loop_free(l);
    ctl_msgs_free(m, COUNT);
}
END_TEST

START_TEST(test_ctl_parse_any_split)
{
    static const size_t sizes[] = {0, 1, 5000, 0, 7, 8, 0};
    enum { COUNT = sizeof(sizes) / sizeof(sizes[0]) };
    ctl_msg_t m[COUNT];
    ctl_msgs_make(m, COUNT, sizes);
    sb_buf_t stream = {0};
    size_t ends[COUNT]; /* where each frame ends in the stream */
    for (size_t i = 0; i < COUNT; i++) {
        frame_append(&stream, &m[i]);
        ends[i] = sb_buf_avail(&stream);
    }
    const size_t total = sb_buf_avail(&stream);
    const char *s = sb_buf_head(&stream);

    /* sb_ctl_send writes exactly that stream. */
    {
        sb_loop_t *l = sb_loop_new(22);
        int sv[2];
        make_pair(sv);
        ctl_end_t a;
        ctl_end_adopt(&a, l, sv[0], NULL, 0);
        for (size_t i = 0; i < COUNT; i++)
            sb_ctl_send(&a.c, m[i].type, m[i].p, m[i].n);
        char *wire = malloc(total);
        read_exactly(sv[1], wire, total);
        ck_assert(!memcmp(wire, s, total));
        free(wire);
        close(sv[1]);
        sb_conn_release(&a.c);
        sb_loop_free(l);
    }

    /* Two pieces, cut at every position. */
    for (size_t k = 0; k <= total; k++) {
        ctl_log_t log = {.expect = m, .nexpect = COUNT};
        size_t whole = 0, boundary = 0;
        while (whole < COUNT && ends[whole] <= k)
            boundary = ends[whole++];
        size_t used = sb_ctl_parse(s, k, ctl_check, &log);
        ck_assert_uint_eq(used, boundary);
        ck_assert_uint_eq(log.got, whole);
        used = sb_ctl_parse(s + boundary, total - boundary, ctl_check, &log);
        ck_assert_uint_eq(used, total - boundary);
        ck_assert_uint_eq(log.got, COUNT);
    }

    /* Byte by byte into a receive buffer, as a conn would keep it. */
    ctl_log_t log = {.expect = m, .nexpect = COUNT};
    sb_buf_t rx = {0};
    size_t consumed = 0, whole = 0;
    for (size_t k = 0; k < total; k++) {
        sb_buf_append(&rx, s + k, 1);
        size_t used = sb_ctl_parse(sb_buf_head(&rx), sb_buf_avail(&rx), ctl_check, &log);
        ck_assert_uint_ne(used, (size_t)-1);
        sb_buf_consume(&rx, used);
        consumed += used;
        while (whole < COUNT && ends[whole] <= k + 1)
            whole++;
        ck_assert_uint_eq(consumed, whole ? ends[whole - 1] : 0);
        ck_assert_uint_eq(log.got, whole);
    }
    ck_assert_uint_eq(log.got, COUNT);
    ck_assert_uint_eq(sb_buf_avail(&rx), 0);
    sb_buf_release(&rx);
    sb_buf_release(&stream);
    ctl_msgs_free(m, COUNT);
}
END_TEST

static void ctl_never(void *arg, uint32_t type, const char *p, size_t n)
{
    (void)arg;
    (void)p;
    ck_abort_msg("message delivered: type %u, %zu bytes", type, n);
}

START_TEST(test_ctl_parse_refuses_oversized_frames)
{
    char frame[8 + 16] = {0};
    uint32_t hdr[2] = {SB_CTL_SCENARIO, SB_CTL_MAX + 1};
    memcpy(frame, hdr, sizeof(hdr));
    /* Refused from the header alone: no waiting for 64 MiB to arrive. */
    ck_assert_uint_eq(sb_ctl_parse(frame, 8, ctl_never, NULL), (size_t)-1);
    ck_assert_uint_eq(sb_ctl_parse(frame, sizeof(frame), ctl_never, NULL), (size_t)-1);
    hdr[1] = UINT32_MAX;
    memcpy(frame, hdr, sizeof(hdr));
    ck_assert_uint_eq(sb_ctl_parse(frame, sizeof(frame), ctl_never, NULL), (size_t)-1);
    /* The largest allowed length is a frame still to complete. */
    hdr[1] = SB_CTL_MAX;
    memcpy(frame, hdr, sizeof(hdr));
    ck_assert_uint_eq(sb_ctl_parse(frame, sizeof(frame), ctl_never, NULL), 0);
    /* Behind a good message, the bad frame still fails the stream. */
    static char abc[] = "abc";
    ctl_msg_t good = {.type = SB_CTL_BEGUN, .n = 3, .p = abc};
    sb_buf_t b = {0};
    frame_append(&b, &good);
    hdr[1] = SB_CTL_MAX + 1;
    sb_buf_append(&b, hdr, sizeof(hdr));
    ctl_log_t log = {.expect = &good, .nexpect = 1};
    ck_assert_uint_eq(sb_ctl_parse(sb_buf_head(&b), sb_buf_avail(&b), ctl_check, &log), (size_t)-1);
    sb_buf_release(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bench_loop");
    TCase *tc = tcase_create("loop");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_timers_fire_in_time_order);
    tcase_add_test(tc, test_timers_rearm_and_stop_in_a_big_heap);
    tcase_add_test(tc, test_timer_rearm_moves_it);
    tcase_add_test(tc, test_stopped_timer_never_fires);
    tcase_add_test(tc, test_timer_callback_arms_timers);
    tcase_add_test(tc, test_run_returns_0_when_done);
    tcase_add_test(tc, test_run_times_out_at_the_deadline);
    tcase_add_test(tc, test_run_stops_on_the_flag);
    tcase_add_test(tc, test_run_calls_the_hook_each_iteration);
    tcase_add_test(tc, test_conn_data_then_eof);
    tcase_add_test(tc, test_conn_unused_bytes_come_back_first);
    tcase_add_test(tc, test_conn_stream_with_leftovers);
    tcase_add_test(tc, test_conn_open_connects_once_and_writes_queued_output);
    tcase_add_test(tc, test_conn_open_refused_is_reported_from_the_loop);
    tcase_add_test(tc, test_conn_write_error_is_reported_from_the_loop);
    tcase_add_test(tc, test_conn_closed_in_batch_gets_no_more_callbacks);
    tcase_add_test(tc, test_conn_closing_itself_mid_read_ends_the_batch);
    tcase_add_test(tc, test_conn_reopened_in_batch_connects_after_it);
    tcase_add_test(tc, test_conn_large_send_waits_for_epollout);
    tcase_add_test(tc, test_conn_close_reset_and_orderly);
    tcase_add_test(tc, test_ctl_round_trip);
    tcase_add_test(tc, test_ctl_parse_any_split);
    tcase_add_test(tc, test_ctl_parse_refuses_oversized_frames);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
