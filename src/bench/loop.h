/* bench/loop.h — one epoll loop per process, with non-blocking TCP
 * connections and timers: the whole I/O layer of siohub-bench.
 *
 * Invariants:
 * - A sb_conn_t is embedded in its owner (a client, a publisher, a control
 *   channel) and never freed by the loop. The loop holds a pointer to a
 *   conn only while it has an fd, or while an open or a failure is pending.
 * - No callback runs from inside the call that caused it: sb_conn_open and
 *   sb_conn_flush report failures through ops->closed from the loop.
 * - A conn closed while the loop dispatches a batch of events gets no
 *   further callback from that batch, and an sb_conn_open made during a
 *   batch takes effect after it, so a stale event of the old socket never
 *   reaches the new one.
 * - Reads are batched: up to SB_READS_PER_WAKE recv() calls of up to
 *   SB_SCRATCH_SIZE bytes into one buffer shared by the loop's conns.
 *   ops->data sees those bytes in place (no copy) unless earlier bytes are
 *   still unused, which then wait in c->in.
 * - Level-triggered epoll; EPOLLOUT is watched only while output waits.
 */
#ifndef SB_LOOP_H
#define SB_LOOP_H

#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench/buf.h"

#define SB_SCRATCH_SIZE   (256 * 1024)
#define SB_READS_PER_WAKE 4

typedef struct sb_loop sb_loop_t;
typedef struct sb_conn sb_conn_t;
typedef struct sb_timer sb_timer_t;

typedef struct sb_conn_ops {
    /* The TCP connection is up; output queued before it has been written
     * (or is being written). Optional. */
    void (*connected)(sb_conn_t *c, uint64_t now);
    /* Bytes arrived: p[0..n) (borrowed, valid during the call). Returns
     * how many it used; the rest come back first in the next call. The
     * callee may close or reopen c. */
    size_t (*data)(sb_conn_t *c, const char *p, size_t n, uint64_t now);
    /* The connection failed, or the peer closed it: err is 0 for an
     * orderly close (EOF), else a positive errno. The fd is closed already;
     * the callee may reopen c. */
    void (*closed)(sb_conn_t *c, int err);
} sb_conn_ops_t;

enum { SB_CONN_CLOSED, SB_CONN_CONNECTING, SB_CONN_OPEN };

struct sb_conn {
    const sb_conn_ops_t *ops;
    sb_loop_t *loop;
    void *owner; /* the embedding object, for the callbacks */
    int fd;
    uint8_t state;
    bool watching_out;
    bool pending; /* on the loop's list of opens / failures to run */
    int pending_err;
    const struct sockaddr_in *dst; /* borrowed: lives as long as the run */
    uint32_t src;                  /* source address (network order) or 0 */
    sb_buf_t in, out;
};

typedef void (*sb_timer_cb)(sb_timer_t *t, uint64_t now);

struct sb_timer {
    sb_timer_cb cb;
    void *arg; /* the owner's */
    uint64_t at;
    unsigned slot; /* 0: not armed; else index + 1 in the loop's heap */
};

/* A new loop; seed makes its random numbers (WebSocket keys and masks)
 * differ between processes. */
sb_loop_t *sb_loop_new(uint64_t seed);
/* Frees the loop (NULL is a no-op); the caller closed its conns first. */
void sb_loop_free(sb_loop_t *l);
/* sb_loop_run returns -EINTR once *flag is non-zero (a signal handler's
 * sig_atomic_t). */
void sb_loop_set_stop_flag(sb_loop_t *l, volatile sig_atomic_t *flag);
/* Called once per iteration before the loop waits (connect pacing, phase
 * checks). One hook per loop; NULL removes it. */
void sb_loop_set_hook(sb_loop_t *l, void (*hook)(void *arg), void *arg);
uint64_t sb_loop_rand(sb_loop_t *l);

/* Runs the loop until done(arg) is true (0), the deadline passes
 * (-ETIMEDOUT; UINT64_MAX: none) or the stop flag is set (-EINTR). done
 * is checked before each wait; it may be NULL (run to the deadline). */
int sb_loop_run(sb_loop_t *l, bool (*done)(void *arg), void *arg, uint64_t deadline);

/* Arms t to fire once at time at (sb_now_ns clock); re-arming moves it. */
void sb_timer_start(sb_loop_t *l, sb_timer_t *t, uint64_t at);
void sb_timer_stop(sb_loop_t *l, sb_timer_t *t);

/* Sets up an embedded conn (closed). */
void sb_conn_init(sb_conn_t *c, sb_loop_t *l, const sb_conn_ops_t *ops, void *owner);
/* Connects to dst from src (network order; 0: the kernel's choice; with a
 * source the port is still picked at connect time, IP_BIND_ADDRESS_NO_PORT).
 * Calls back exactly once: ops->connected, or ops->closed with the error.
 * c->in is emptied, c->out is kept (it is written once connected). */
void sb_conn_open(sb_conn_t *c, const struct sockaddr_in *dst, uint32_t src);
/* Takes an fd that is already connected (a socketpair end): c is open at
 * once, no connected callback. The fd is made non-blocking here (the
 * callers' socketpairs are blocking, and a blocking write to a full one
 * would stall every conn of the loop). */
void sb_conn_adopt(sb_conn_t *c, int fd);
/* Writes what the socket takes of c->out; the rest waits for EPOLLOUT.
 * A write error closes c and calls ops->closed from the loop. */
void sb_conn_flush(sb_conn_t *c);
/* Appends p[0..n) to c->out and flushes. */
void sb_conn_send(sb_conn_t *c, const void *p, size_t n);
/* Closes now, no callback (safe inside this conn's callbacks). reset:
 * an abortive close (SO_LINGER 0: RST, no TIME_WAIT). Buffers are emptied
 * but kept; sb_conn_release frees them. */
void sb_conn_close(sb_conn_t *c, bool reset);
void sb_conn_release(sb_conn_t *c);

static inline bool sb_conn_is_open(const sb_conn_t *c)
{
    return c->state == SB_CONN_OPEN;
}

#endif
