/* bench/loop.c — epoll loop, connections and timers (see loop.h). */
#include "bench/loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "bench/util.h"

#define MAX_EVENTS 512

struct sb_loop {
    int ep;
    int tfd;             /* timerfd armed to the earliest timer */
    uint64_t tfd_at;     /* what tfd is armed to (0: disarmed) */
    char tfd_tag;        /* its epoll data pointer */
    bool dispatching;    /* inside a batch of events */
    sb_conn_t **pending; /* opens and failures to run after the batch */
    size_t npending, pending_cap;
    sb_timer_t **heap; /* min-heap on at */
    size_t nheap, heap_cap;
    void (*hook)(void *);
    void *hook_arg;
    volatile sig_atomic_t *stop;
    uint64_t rng;
    char *scratch;
};

sb_loop_t *sb_loop_new(uint64_t seed)
{
    sb_loop_t *l = sb_xcalloc(1, sizeof(*l));
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    if (l->ep < 0)
        sb_die("epoll_create1: %s", strerror(errno));
    l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (l->tfd < 0)
        sb_die("timerfd_create: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->tfd_tag};
    if (epoll_ctl(l->ep, EPOLL_CTL_ADD, l->tfd, &ev) < 0)
        sb_die("epoll_ctl: %s", strerror(errno));
    l->rng = seed ? seed : 0x9E3779B97F4A7C15u;
    l->scratch = sb_xcalloc(SB_SCRATCH_SIZE, 1);
    return l;
}

void sb_loop_free(sb_loop_t *l)
{
    if (!l)
        return;
    close(l->tfd);
    close(l->ep);
    free(l->pending);
    free(l->heap);
    free(l->scratch);
    free(l);
}

void sb_loop_set_stop_flag(sb_loop_t *l, volatile sig_atomic_t *flag)
{
    l->stop = flag;
}

void sb_loop_set_hook(sb_loop_t *l, void (*hook)(void *arg), void *arg)
{
    l->hook = hook;
    l->hook_arg = arg;
}

uint64_t sb_loop_rand(sb_loop_t *l)
{
    return sb_rand_next(&l->rng);
}

/* ---- timers: a binary min-heap of armed timers ---- */

static void heap_set(sb_loop_t *l, size_t i, sb_timer_t *t)
{
    l->heap[i] = t;
    t->slot = (unsigned)i + 1;
}

static void heap_up(sb_loop_t *l, size_t i)
{
    sb_timer_t *t = l->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (l->heap[parent]->at <= t->at)
            break;
        heap_set(l, i, l->heap[parent]);
        i = parent;
    }
    heap_set(l, i, t);
}

static void heap_down(sb_loop_t *l, size_t i)
{
    sb_timer_t *t = l->heap[i];
    for (;;) {
        size_t kid = 2 * i + 1;
        if (kid >= l->nheap)
            break;
        if (kid + 1 < l->nheap && l->heap[kid + 1]->at < l->heap[kid]->at)
            kid++;
        if (l->heap[kid]->at >= t->at)
            break;
        heap_set(l, i, l->heap[kid]);
        i = kid;
    }
    heap_set(l, i, t);
}

void sb_timer_stop(sb_loop_t *l, sb_timer_t *t)
{
    if (!t->slot)
        return;
    size_t i = t->slot - 1;
    t->slot = 0;
    sb_timer_t *last = l->heap[--l->nheap];
    if (i == l->nheap)
        return;
    heap_set(l, i, last);
    heap_down(l, i);
    heap_up(l, last->slot - 1);
}

void sb_timer_start(sb_loop_t *l, sb_timer_t *t, uint64_t at)
{
    sb_timer_stop(l, t);
    if (l->nheap == l->heap_cap) {
        l->heap_cap = l->heap_cap ? l->heap_cap * 2 : 16;
        l->heap = sb_xrealloc(l->heap, l->heap_cap * sizeof(*l->heap));
    }
    t->at = at;
    heap_set(l, l->nheap++, t);
    heap_up(l, l->nheap - 1);
}

/* Points the timerfd at the earliest timer (if it moved). */
static void timers_arm(sb_loop_t *l)
{
    uint64_t at = l->nheap ? l->heap[0]->at : 0;
    if (at == l->tfd_at)
        return;
    struct itimerspec its = {0};
    if (at) {
        /* An absolute time in the past fires at once; 0 disarms. */
        its.it_value.tv_sec = (time_t)(at / 1000000000u);
        its.it_value.tv_nsec = (long)(at % 1000000000u);
    }
    if (timerfd_settime(l->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
        sb_die("timerfd_settime: %s", strerror(errno));
    l->tfd_at = at;
}

static void timers_run(sb_loop_t *l)
{
    uint64_t now = sb_now_ns();
    while (l->nheap && l->heap[0]->at <= now) {
        sb_timer_t *t = l->heap[0];
        sb_timer_stop(l, t);
        t->cb(t, now);
    }
}

/* ---- connections ---- */

static void conn_watch(sb_conn_t *c, bool out)
{
    if (c->watching_out == out || c->fd < 0)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(c->loop->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        sb_die("epoll_ctl: %s", strerror(errno));
    c->watching_out = out;
}

static void pending_add(sb_conn_t *c, int err)
{
    sb_loop_t *l = c->loop;
    c->pending_err = err;
    if (c->pending)
        return;
    c->pending = true;
    if (l->npending == l->pending_cap) {
        l->pending_cap = l->pending_cap ? l->pending_cap * 2 : 64;
        l->pending = sb_xrealloc(l->pending, l->pending_cap * sizeof(*l->pending));
    }
    l->pending[l->npending++] = c;
}

void sb_conn_init(sb_conn_t *c, sb_loop_t *l, const sb_conn_ops_t *ops, void *owner)
{
    memset(c, 0, sizeof(*c));
    c->ops = ops;
    c->loop = l;
    c->owner = owner;
    c->fd = -1;
}

static void fd_close(sb_conn_t *c, bool reset)
{
    if (c->fd < 0)
        return;
    if (reset) {
        struct linger lin = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
    }
    epoll_ctl(c->loop->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->watching_out = false;
}

void sb_conn_close(sb_conn_t *c, bool reset)
{
    fd_close(c, reset);
    c->state = SB_CONN_CLOSED;
    c->pending = false; /* a stale list entry is skipped */
    sb_buf_reset(&c->in);
    sb_buf_reset(&c->out);
}

void sb_conn_release(sb_conn_t *c)
{
    sb_conn_close(c, false);
    sb_buf_release(&c->in);
    sb_buf_release(&c->out);
}

/* Closes the fd now and reports err from the loop. */
static void conn_fail_later(sb_conn_t *c, int err)
{
    fd_close(c, false);
    c->state = SB_CONN_CLOSED;
    pending_add(c, err ? err : EPIPE);
}

static void conn_open_now(sb_conn_t *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        pending_add(c, errno);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (c->src) {
        /* Without IP_BIND_ADDRESS_NO_PORT, bind() would reserve a port for
         * every socket on its own and the 4-tuple could not share it. */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = c->src};
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            int err = errno;
            close(fd);
            pending_add(c, err);
            return;
        }
    }
    if (connect(fd, (const struct sockaddr *)c->dst, sizeof(*c->dst)) < 0 && errno != EINPROGRESS) {
        int err = errno;
        close(fd);
        pending_add(c, err);
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(c->loop->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        sb_die("epoll_ctl: %s", strerror(errno));
    c->fd = fd;
    c->watching_out = true;
    c->state = SB_CONN_CONNECTING;
}

void sb_conn_open(sb_conn_t *c, const struct sockaddr_in *dst, uint32_t src)
{
    fd_close(c, false);
    sb_buf_reset(&c->in);
    c->dst = dst;
    c->src = src;
    c->pending = false;            /* drops a failure not yet reported */
    c->state = SB_CONN_CONNECTING; /* logically: the socket comes soon */
    if (c->loop->dispatching)
        pending_add(c, 0);
    else
        conn_open_now(c);
}

void sb_conn_adopt(sb_conn_t *c, int fd)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        sb_die("fcntl: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(c->loop->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        sb_die("epoll_ctl: %s", strerror(errno));
    c->fd = fd;
    c->state = SB_CONN_OPEN;
}

void sb_conn_flush(sb_conn_t *c)
{
    if (c->state != SB_CONN_OPEN || c->fd < 0)
        return;
    while (sb_buf_avail(&c->out)) {
        ssize_t w = send(c->fd, sb_buf_head(&c->out), sb_buf_avail(&c->out), MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_fail_later(c, errno);
            return;
        }
        sb_buf_consume(&c->out, (size_t)w);
    }
    conn_watch(c, sb_buf_avail(&c->out) > 0);
}

void sb_conn_send(sb_conn_t *c, const void *p, size_t n)
{
    sb_buf_append(&c->out, p, n);
    sb_conn_flush(c);
}

static void conn_lost(sb_conn_t *c, int err)
{
    fd_close(c, false);
    c->state = SB_CONN_CLOSED;
    sb_buf_reset(&c->in);
    sb_buf_reset(&c->out);
    c->ops->closed(c, err);
}

/* Hands bytes to the owner, keeping what it did not use. */
static void conn_feed(sb_conn_t *c, const char *p, size_t n, uint64_t now)
{
    int fd = c->fd;
    if (sb_buf_avail(&c->in)) {
        sb_buf_append(&c->in, p, n);
        size_t used = c->ops->data(c, sb_buf_head(&c->in), sb_buf_avail(&c->in), now);
        if (c->fd == fd)
            sb_buf_consume(&c->in, used);
    } else {
        size_t used = c->ops->data(c, p, n, now);
        if (c->fd == fd && used < n)
            sb_buf_append(&c->in, p + used, n - used);
    }
    /* Idle clients by the thousand: do not keep a big drained buffer. */
    if (c->fd == fd && !sb_buf_avail(&c->in) && c->in.cap > 16384)
        sb_buf_release(&c->in);
}

static void conn_readable(sb_conn_t *c, uint64_t now)
{
    sb_loop_t *l = c->loop;
    int fd = c->fd;
    for (int i = 0; i < SB_READS_PER_WAKE; i++) {
        ssize_t r = recv(fd, l->scratch, SB_SCRATCH_SIZE, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_lost(c, errno);
            return;
        }
        if (r == 0) {
            conn_lost(c, 0);
            return;
        }
        conn_feed(c, l->scratch, (size_t)r, now);
        if (c->fd != fd || (size_t)r < SB_SCRATCH_SIZE)
            return;
    }
}

static void conn_event(sb_conn_t *c, uint32_t events, uint64_t now)
{
    if (c->fd < 0)
        return; /* closed earlier in this batch */
    if (c->state == SB_CONN_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = 0;
        socklen_t el = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            conn_lost(c, err);
            return;
        }
        c->state = SB_CONN_OPEN;
        int fd = c->fd;
        sb_conn_flush(c);
        if (c->fd == fd && c->ops->connected)
            c->ops->connected(c, now);
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        conn_readable(c, now);
    if (c->fd >= 0 && (events & EPOLLOUT))
        sb_conn_flush(c);
}

static void pending_run(sb_loop_t *l)
{
    /* Callbacks may add entries: index, do not cache the count. */
    for (size_t i = 0; i < l->npending; i++) {
        sb_conn_t *c = l->pending[i];
        if (!c->pending)
            continue;
        c->pending = false;
        if (c->pending_err) {
            int err = c->pending_err;
            c->pending_err = 0;
            c->state = SB_CONN_CLOSED;
            sb_buf_reset(&c->in);
            sb_buf_reset(&c->out);
            c->ops->closed(c, err);
        } else {
            conn_open_now(c);
        }
    }
    l->npending = 0;
}

int sb_loop_run(sb_loop_t *l, bool (*done)(void *arg), void *arg, uint64_t deadline)
{
    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        pending_run(l);
        if (l->hook)
            l->hook(l->hook_arg);
        pending_run(l);
        if (done && done(arg))
            return 0;
        if (l->stop && *l->stop)
            return -EINTR;
        uint64_t now = sb_now_ns();
        if (now >= deadline)
            return -ETIMEDOUT;
        timers_arm(l);
        /* The timerfd carries the precise wake-up; the timeout bounds a
         * wait for the deadline and the stop flag. */
        uint64_t wait_ns = deadline - now;
        int timeout = wait_ns > 100000000u ? 100 : (int)((wait_ns + 999999) / 1000000);
        int n = epoll_wait(l->ep, evs, MAX_EVENTS, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            sb_die("epoll_wait: %s", strerror(errno));
        }
        now = sb_now_ns();
        bool timers_due = false;
        l->dispatching = true;
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == &l->tfd_tag) {
                uint64_t expirations;
                if (read(l->tfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
                    sb_die("timerfd read: %s", strerror(errno));
                l->tfd_at = 0;
                timers_due = true;
                continue;
            }
            conn_event(evs[i].data.ptr, evs[i].events, now);
        }
        if (timers_due || (l->nheap && l->heap[0]->at <= sb_now_ns()))
            timers_run(l);
        l->dispatching = false;
    }
}
