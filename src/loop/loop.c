#include "loop/loop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"

#define MAX_PREPARE 8
#define MAX_SIGNALS 8
#define MAX_EVENTS  256

typedef struct {
    sh_prepare_cb cb;
    void *data;
} prepare_hook_t;

typedef struct {
    int signo;
    sh_signal_cb cb;
    void *data;
} signal_hook_t;

struct sh_loop {
    int epfd;
    bool stop;
    uint64_t now;
    /* Watches indexed by fd (as redis' ae does): an event is dispatched only
     * if the fd still has an active watch when its turn comes, so a callback
     * may stop and free other watches within one epoll batch. */
    sh_io_t **ios;
    size_t nios;
    /* Binary min-heap of timers ordered by (due, seq). */
    sh_timer_t **heap;
    size_t nheap, capheap;
    uint64_t timer_seq;
    /* Deferred calls: a FIFO list. */
    sh_defer_t *defer_head, *defer_tail;
    sh_defer_t *round_end; /* last entry of the round being run */
    prepare_hook_t prepare[MAX_PREPARE];
    size_t nprepare;
    int sigfd;
    sh_io_t sigio;
    sigset_t sigmask;
    signal_hook_t signals[MAX_SIGNALS];
    size_t nsignals;
};

uint64_t sh_time_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

sh_loop_t *sh_loop_new(void)
{
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        return NULL;
    sh_loop_t *loop = sh_new0(sh_loop_t);
    loop->epfd = epfd;
    loop->sigfd = -1;
    sigemptyset(&loop->sigmask);
    loop->now = sh_time_ms();
    return loop;
}

void sh_loop_free(sh_loop_t *loop)
{
    if (!loop)
        return;
    if (loop->sigfd >= 0) {
        sh_io_stop(loop, &loop->sigio);
        close(loop->sigfd);
    }
    close(loop->epfd);
    free(loop->ios);
    free(loop->heap);
    free(loop);
}

uint64_t sh_loop_now(const sh_loop_t *loop)
{
    return loop->now;
}

uint64_t sh_loop_update_time(sh_loop_t *loop)
{
    loop->now = sh_time_ms();
    return loop->now;
}

void sh_loop_stop(sh_loop_t *loop)
{
    loop->stop = true;
}

bool sh_loop_stopping(const sh_loop_t *loop)
{
    return loop->stop;
}

/* ---- fd watches ---- */

static uint32_t to_epoll(const sh_io_t *io, unsigned events)
{
    uint32_t ev = 0;
    if (events & SH_IO_READ)
        ev |= EPOLLIN | EPOLLRDHUP;
    if (events & SH_IO_WRITE)
        ev |= EPOLLOUT;
    if (io->edge)
        ev |= EPOLLET;
    return ev;
}

int sh_io_start(sh_loop_t *loop, sh_io_t *io, int fd, unsigned events, sh_io_cb cb, void *data)
{
    if (fd < 0)
        return -EBADF;
    if (io->active && io->fd != fd)
        sh_io_stop(loop, io);
    io->cb = cb;
    io->data = data;
    if (io->active)
        return sh_io_modify(loop, io, events);
    if ((size_t)fd >= loop->nios) {
        size_t n = loop->nios ? loop->nios : 64;
        while (n <= (size_t)fd)
            n *= 2;
        loop->ios = sh_realloc(loop->ios, n * sizeof(*loop->ios));
        memset(loop->ios + loop->nios, 0, (n - loop->nios) * sizeof(*loop->ios));
        loop->nios = n;
    }
    if (loop->ios[fd])
        return -EEXIST;
    struct epoll_event ev = {.events = to_epoll(io, events), .data.fd = fd};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -errno;
    io->fd = fd;
    io->events = events;
    io->active = true;
    loop->ios[fd] = io;
    return 0;
}

int sh_io_modify(sh_loop_t *loop, sh_io_t *io, unsigned events)
{
    if (!io->active)
        return -EINVAL;
    if (events == io->events)
        return 0;
    struct epoll_event ev = {.events = to_epoll(io, events), .data.fd = io->fd};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
        return -errno;
    io->events = events;
    return 0;
}

void sh_io_stop(sh_loop_t *loop, sh_io_t *io)
{
    if (!io->active)
        return;
    /* The fd may already be closed by its owner; EPOLL_CTL_DEL then fails
     * with EBADF and the kernel has dropped it anyway. */
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    if ((size_t)io->fd < loop->nios && loop->ios[io->fd] == io)
        loop->ios[io->fd] = NULL;
    io->active = false;
    io->events = 0;
}

/* ---- timers: a binary heap ---- */

static bool timer_before(const sh_timer_t *a, const sh_timer_t *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void heap_set(sh_loop_t *loop, size_t i, sh_timer_t *t)
{
    loop->heap[i] = t;
    t->heap_pos = i + 1;
}

static void heap_up(sh_loop_t *loop, size_t i)
{
    sh_timer_t *t = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!timer_before(t, loop->heap[parent]))
            break;
        heap_set(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_set(loop, i, t);
}

static void heap_down(sh_loop_t *loop, size_t i)
{
    sh_timer_t *t = loop->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const sh_timer_t *best = t;
        if (l < loop->nheap && timer_before(loop->heap[l], best)) {
            m = l;
            best = loop->heap[l];
        }
        if (r < loop->nheap && timer_before(loop->heap[r], best))
            m = r;
        if (m == i)
            break;
        heap_set(loop, i, loop->heap[m]);
        i = m;
    }
    heap_set(loop, i, t);
}

void sh_timer_stop(sh_loop_t *loop, sh_timer_t *t)
{
    if (!t->heap_pos)
        return;
    size_t i = t->heap_pos - 1;
    t->heap_pos = 0;
    loop->nheap--;
    if (i == loop->nheap)
        return;
    heap_set(loop, i, loop->heap[loop->nheap]);
    heap_up(loop, i);
    heap_down(loop, loop->heap[i] == NULL ? i : loop->heap[i]->heap_pos - 1);
}

void sh_timer_start(sh_loop_t *loop, sh_timer_t *t, uint64_t ms, sh_timer_cb cb, void *data)
{
    sh_timer_start_at(loop, t, loop->now + ms, cb, data);
}

void sh_timer_start_at(sh_loop_t *loop, sh_timer_t *t, uint64_t due, sh_timer_cb cb, void *data)
{
    sh_timer_stop(loop, t);
    t->cb = cb;
    t->data = data;
    t->due = due;
    t->seq = loop->timer_seq++;
    if (loop->nheap == loop->capheap) {
        loop->capheap = loop->capheap ? loop->capheap * 2 : 64;
        loop->heap = sh_realloc(loop->heap, loop->capheap * sizeof(*loop->heap));
    }
    loop->heap[loop->nheap] = t;
    t->heap_pos = ++loop->nheap;
    heap_up(loop, loop->nheap - 1);
}

static void run_timers(sh_loop_t *loop)
{
    /* Timers armed by a callback for "now" wait for the next iteration, so
     * a zero-delay timer that re-arms itself cannot starve I/O. */
    uint64_t limit = loop->timer_seq;
    while (loop->nheap > 0) {
        sh_timer_t *t = loop->heap[0];
        if (t->due > loop->now || t->seq >= limit)
            break;
        sh_timer_stop(loop, t);
        t->cb(loop, t);
    }
}

/* ---- deferred calls ---- */

/* Sets what a defer calls; false when it is already in the list. */
static bool defer_arm(sh_defer_t *d, sh_defer_cb cb, void *data)
{
    d->cb = cb;
    d->data = data;
    if (d->pending)
        return false;
    d->pending = true;
    return true;
}

void sh_defer_schedule(sh_loop_t *loop, sh_defer_t *d, sh_defer_cb cb, void *data)
{
    if (!defer_arm(d, cb, data))
        return;
    d->next = NULL;
    if (loop->defer_tail)
        loop->defer_tail->next = d;
    else
        loop->defer_head = d;
    loop->defer_tail = d;
}

void sh_defer_schedule_first(sh_loop_t *loop, sh_defer_t *d, sh_defer_cb cb, void *data)
{
    if (!defer_arm(d, cb, data))
        return;
    d->next = loop->defer_head;
    loop->defer_head = d;
    if (!loop->defer_tail)
        loop->defer_tail = d;
}

void sh_defer_cancel(sh_loop_t *loop, sh_defer_t *d)
{
    if (!d->pending)
        return;
    sh_defer_t **pp = &loop->defer_head, *prev = NULL;
    while (*pp && *pp != d) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = d->next;
        if (loop->defer_tail == d)
            loop->defer_tail = prev;
        if (loop->round_end == d)
            loop->round_end = prev;
    }
    d->pending = false;
    d->next = NULL;
}

static void run_deferred(sh_loop_t *loop)
{
    /* Calls scheduled while running are run too (a flush may close a socket,
     * which schedules its cleanup), in rounds; the round bound stops a defer
     * that keeps rescheduling itself from hanging the loop. Entries stay in
     * the loop's list until their turn, so a callback may cancel (and free)
     * any other pending defer. */
    for (int rounds = 0; loop->defer_head && rounds < 64; rounds++) {
        loop->round_end = loop->defer_tail;
        while (loop->defer_head) {
            sh_defer_t *d = loop->defer_head;
            bool last = d == loop->round_end;
            loop->defer_head = d->next;
            if (!loop->defer_head)
                loop->defer_tail = NULL;
            if (last)
                loop->round_end = NULL;
            d->next = NULL;
            d->pending = false;
            /* The next entries are fetched while this one runs: a flush's
             * entry and data are its connection, pushed out of the cache
             * by the sends since it was scheduled. The entry after this
             * one was fetched in the previous turn, so reading it costs
             * nothing; a prefetch never faults, whatever the callback then
             * frees. */
            sh_defer_t *after = loop->defer_head;
            if (after) {
                __builtin_prefetch(after->data);
                __builtin_prefetch(after->next);
            }
            d->cb(loop, d); /* d may be freed by now */
            if (last || !loop->round_end)
                break;
        }
    }
    loop->round_end = NULL;
}

void sh_loop_run_deferred(sh_loop_t *loop)
{
    loop->now = sh_time_ms();
    run_deferred(loop);
}

/* ---- prepare hooks ---- */

int sh_loop_add_prepare(sh_loop_t *loop, sh_prepare_cb cb, void *data)
{
    if (loop->nprepare == MAX_PREPARE)
        return -ENOSPC;
    loop->prepare[loop->nprepare++] = (prepare_hook_t){cb, data};
    return 0;
}

void sh_loop_remove_prepare(sh_loop_t *loop, sh_prepare_cb cb, void *data)
{
    for (size_t i = 0; i < loop->nprepare; i++) {
        if (loop->prepare[i].cb == cb && loop->prepare[i].data == data) {
            memmove(&loop->prepare[i], &loop->prepare[i + 1],
                    (loop->nprepare - i - 1) * sizeof(loop->prepare[0]));
            loop->nprepare--;
            return;
        }
    }
}

/* ---- signals ---- */

static void on_signalfd(sh_loop_t *loop, sh_io_t *io, unsigned events)
{
    (void)events;
    struct signalfd_siginfo si;
    while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        for (size_t i = 0; i < loop->nsignals; i++)
            if (loop->signals[i].signo == (int)si.ssi_signo)
                loop->signals[i].cb(loop, (int)si.ssi_signo, loop->signals[i].data);
    }
}

int sh_loop_signal(sh_loop_t *loop, int signo, sh_signal_cb cb, void *data)
{
    if (loop->nsignals == MAX_SIGNALS)
        return -ENOSPC;
    sigaddset(&loop->sigmask, signo);
    if (sigprocmask(SIG_BLOCK, &loop->sigmask, NULL) < 0)
        return -errno;
    int fd = signalfd(loop->sigfd, &loop->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (loop->sigfd < 0) {
        loop->sigfd = fd;
        int rc = sh_io_start(loop, &loop->sigio, fd, SH_IO_READ, on_signalfd, NULL);
        if (rc < 0)
            return rc;
    }
    loop->signals[loop->nsignals++] = (signal_hook_t){signo, cb, data};
    return 0;
}

/* ---- the loop ---- */

static int compute_timeout(sh_loop_t *loop)
{
    if (loop->defer_head)
        return 0;
    int64_t timeout = -1;
    if (loop->nheap > 0) {
        uint64_t due = loop->heap[0]->due;
        timeout = due <= loop->now ? 0 : (int64_t)(due - loop->now);
    }
    for (size_t i = 0; i < loop->nprepare; i++) {
        int t = loop->prepare[i].cb(loop, loop->prepare[i].data);
        if (t >= 0 && (timeout < 0 || t < timeout))
            timeout = t;
    }
    if (timeout > 60000)
        timeout = 60000;
    return (int)timeout;
}

int sh_loop_run(sh_loop_t *loop)
{
    struct epoll_event events[MAX_EVENTS];
    loop->stop = false;
    while (!loop->stop) {
        loop->now = sh_time_ms();
        run_deferred(loop);
        if (loop->stop)
            break;
        int timeout = compute_timeout(loop);
        int n = epoll_wait(loop->epfd, events, MAX_EVENTS, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int err = errno;
            sh_error("epoll_wait: %s", strerror(err));
            return -err;
        }
        loop->now = sh_time_ms();
        run_timers(loop);
        for (int pass = 0; pass < 2; pass++) {
            for (int i = 0; i < n; i++) {
                int fd = events[i].data.fd;
                if ((size_t)fd >= loop->nios || !loop->ios[fd])
                    continue;
                sh_io_t *io = loop->ios[fd];
                if (io->late != (pass == 1))
                    continue;
                unsigned ev = 0;
                if (events[i].events & (EPOLLIN | EPOLLRDHUP))
                    ev |= SH_IO_READ;
                if (events[i].events & EPOLLOUT)
                    ev |= SH_IO_WRITE;
                if (events[i].events & (EPOLLERR | EPOLLHUP))
                    ev |= SH_IO_ERROR | (io->events & (SH_IO_READ | SH_IO_WRITE));
                ev &= io->events | SH_IO_ERROR;
                if (ev)
                    io->cb(loop, io, ev);
            }
        }
        run_deferred(loop);
    }
    return 0;
}
