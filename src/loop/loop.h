/* loop.h — the one event loop: epoll fd watches, a timer heap, deferred
 * calls and signals, on one thread that owns all state.
 *
 * Invariants:
 *  - Everything here is called from the loop thread only; no locks.
 *  - Handles (sh_io_t, sh_timer_t, sh_defer_t) are embedded in their owner's
 *    struct and zero-initialised; the loop never allocates or frees them. A
 *    handle must be stopped before its memory is freed.
 *  - Callbacks may start and stop any handle, including their own, and may
 *    free their owner after stopping its handles (an fd event for a stopped
 *    watch is never delivered, even later in the same epoll batch).
 *  - One iteration: wait for I/O (bounded by the next timer and by prepare
 *    hooks), run the timers now due, dispatch I/O (watches marked `late`
 *    after the others), then run deferred calls until none are pending.
 *    Timers first: a deadline that passed while waiting wins over I/O that
 *    arrived in the same instant (a ping timeout is not undone by a request
 *    that came too late). `late` lets libmicrohttpd (new requests) run
 *    after WebSocket frames that were already waiting, so what a client
 *    sent first is handled first. Deferred calls are where output is flushed, so
 *    everything queued for a socket during an iteration leaves in one write.
 *  - Time is a monotonic millisecond clock, read once per iteration
 *    (sh_loop_now) so every callback in an iteration agrees on "now".
 */
#ifndef SH_LOOP_LOOP_H
#define SH_LOOP_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sh_loop sh_loop_t;
typedef struct sh_io sh_io_t;
typedef struct sh_timer sh_timer_t;
typedef struct sh_defer sh_defer_t;

enum { SH_IO_READ = 1, SH_IO_WRITE = 2, SH_IO_ERROR = 4 };

typedef void (*sh_io_cb)(sh_loop_t *loop, sh_io_t *io, unsigned events);
typedef void (*sh_timer_cb)(sh_loop_t *loop, sh_timer_t *timer);
typedef void (*sh_defer_cb)(sh_loop_t *loop, sh_defer_t *defer);
/* Returns the longest the loop may sleep in ms (-1: no limit); 0 makes the
 * next wait a poll. Runs before every wait. */
typedef int (*sh_prepare_cb)(sh_loop_t *loop, void *data);
typedef void (*sh_signal_cb)(sh_loop_t *loop, int signo, void *data);

struct sh_io {
    int fd;
    unsigned events; /* SH_IO_READ | SH_IO_WRITE currently watched */
    bool active;
    bool edge; /* edge-triggered (EPOLLET) */
    bool late; /* dispatched after the other watches of a batch */
    sh_io_cb cb;
    void *data;
};

struct sh_timer {
    uint64_t due;    /* absolute ms on the loop clock */
    size_t heap_pos; /* 0: not scheduled; else index+1 in the heap */
    uint64_t seq;    /* FIFO order for equal due times */
    sh_timer_cb cb;
    void *data;
};

struct sh_defer {
    sh_defer_t *next;
    bool pending;
    sh_defer_cb cb;
    void *data;
};

sh_loop_t *sh_loop_new(void);
/* Frees the loop; every handle must already be stopped. NULL is a no-op. */
void sh_loop_free(sh_loop_t *loop);

/* Runs until sh_loop_stop(); returns 0, or a negative errno if epoll fails. */
int sh_loop_run(sh_loop_t *loop);
/* Runs the deferred calls that are pending (and any they schedule), without
 * waiting for I/O: for tear-down after sh_loop_run has returned. */
void sh_loop_run_deferred(sh_loop_t *loop);
/* Makes sh_loop_run return after the current iteration. */
void sh_loop_stop(sh_loop_t *loop);
bool sh_loop_stopping(const sh_loop_t *loop);

/* Monotonic ms, cached at the start of the iteration. */
uint64_t sh_loop_now(const sh_loop_t *loop);
/* Re-reads the clock (for code that measures within one iteration). */
uint64_t sh_loop_update_time(sh_loop_t *loop);
/* Monotonic ms straight from the clock. */
uint64_t sh_time_ms(void);

/* Watches fd for events (level-triggered unless io->edge is set first).
 * Restarting an active watch changes its events. Returns 0 or -errno. */
int sh_io_start(sh_loop_t *loop, sh_io_t *io, int fd, unsigned events, sh_io_cb cb, void *data);
int sh_io_modify(sh_loop_t *loop, sh_io_t *io, unsigned events);
/* Stops watching; the fd is not closed. No-op when inactive. */
void sh_io_stop(sh_loop_t *loop, sh_io_t *io);

/* (Re)arms a one-shot timer to fire after ms. */
void sh_timer_start(sh_loop_t *loop, sh_timer_t *t, uint64_t ms, sh_timer_cb cb, void *data);
/* (Re)arms a one-shot timer for an absolute time on the loop clock (a
 * deadline computed from an earlier one, without drift). */
void sh_timer_start_at(sh_loop_t *loop, sh_timer_t *t, uint64_t due, sh_timer_cb cb, void *data);
void sh_timer_stop(sh_loop_t *loop, sh_timer_t *t);
static inline bool sh_timer_active(const sh_timer_t *t)
{
    return t->heap_pos != 0;
}

/* Schedules cb to run once at the end of this iteration (or the next one,
 * when called from a deferred call). Scheduling a pending defer is a no-op. */
void sh_defer_schedule(sh_loop_t *loop, sh_defer_t *d, sh_defer_cb cb, void *data);
/* The same, but cb runs before the calls already pending (and, from a
 * deferred call, still in this round): for a write that another process
 * must act on, so that it works while this one goes on with the rest. */
void sh_defer_schedule_first(sh_loop_t *loop, sh_defer_t *d, sh_defer_cb cb, void *data);
void sh_defer_cancel(sh_loop_t *loop, sh_defer_t *d);

/* Adds a hook run before each wait. At most a few exist (libmicrohttpd's
 * timeout, hiredis); returns 0 or -ENOSPC. */
int sh_loop_add_prepare(sh_loop_t *loop, sh_prepare_cb cb, void *data);
void sh_loop_remove_prepare(sh_loop_t *loop, sh_prepare_cb cb, void *data);

/* Delivers signo through the loop (signalfd) instead of an async handler.
 * The signal is blocked for the process. Returns 0 or -errno. */
int sh_loop_signal(sh_loop_t *loop, int signo, sh_signal_cb cb, void *data);

#endif
