/* transport/ws.h — a WebSocket connection on a socket the loop owns.
 *
 * Created after the HTTP upgrade has been answered (http/server.h hands over
 * the fd). It reads frames with the ws_frame reader, answers pings, and
 * writes messages: each queued sh_msg_t becomes one frame (text or binary
 * by msg->binary) whose header is built here and whose payload is the
 * message's own bytes. Everything queued during one loop iteration leaves
 * in one writev at the end of the iteration (a deferred flush).
 *
 * Lifecycle: on_close runs exactly once, when the connection is over for
 * any reason (peer closed, protocol error, our close completed, output
 * queue limit passed, socket error); the connection is freed by the loop
 * after on_close returns, so the owner must forget the pointer there. No
 * callback runs from inside a call made by the owner.
 *
 * The output queue has a byte limit: a peer that does not read is dropped
 * (on_close with code 1008 and reason "output queue limit") instead of
 * growing memory.
 */
#ifndef SH_TRANSPORT_WS_H
#define SH_TRANSPORT_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/msg.h"
#include "loop/loop.h"

typedef struct sh_ws_conn sh_ws_conn_t;

typedef struct sh_ws_stats {
    uint64_t frames_in, frames_out;
    uint64_t bytes_in, bytes_out;
    uint64_t slow_dropped; /* closed for passing the output limit */
} sh_ws_stats_t;

typedef struct sh_ws_handler {
    /* A whole message (text is valid UTF-8). data is borrowed. */
    void (*on_message)(sh_ws_conn_t *ws, const char *data, size_t len, bool binary, void *owner);
    /* The connection is over; code is what was sent or received (1006 when
     * the socket died without a close frame). */
    void (*on_close)(sh_ws_conn_t *ws, uint16_t code, const char *reason, void *owner);
    /* The peer broke the protocol: code and reason are what the close frame
     * now queued says. Optional; for the log, since only the owner knows
     * who the peer is. */
    void (*on_bad_input)(sh_ws_conn_t *ws, uint16_t code, const char *reason, void *owner);
} sh_ws_handler_t;

typedef struct sh_ws_options {
    size_t max_message;    /* larger messages close with 1009 */
    size_t output_limit;   /* bytes queued before the peer is dropped */
    uint64_t close_linger; /* ms to wait for the peer's close frame */
    sh_ws_stats_t *stats;  /* shared counters, may be NULL */
} sh_ws_options_t;

/* Takes ownership of fd (non-blocking is set here) and processes `extra`
 * (bytes read with the HTTP request) first, from the loop, not inside this
 * call. Never returns NULL. */
sh_ws_conn_t *sh_ws_conn_new(sh_loop_t *loop, int fd, const char *extra, size_t extra_len,
                             const sh_ws_options_t *opts, const sh_ws_handler_t *handler,
                             void *owner);

/* Queues m as one frame; steals the reference. Returns 0, or -EPIPE when
 * the connection is closing (m is dropped), or -ENOBUFS when this passed
 * the output limit (the connection is being dropped). */
int sh_ws_conn_send(sh_ws_conn_t *ws, sh_msg_t *m);
/* Asks the cache for what sh_ws_conn_send and the flush after it read of
 * ws (a broadcast does so for a batch of recipients at once, so that
 * their misses overlap). Reads nothing: only a hint. */
void sh_ws_conn_prefetch(const sh_ws_conn_t *ws);
/* Writes what is queued now instead of at the end of the loop iteration:
 * for a frame that an answer on another connection, written later in
 * this iteration, must not overtake. */
void sh_ws_conn_flush(sh_ws_conn_t *ws);
/* Sends a close frame after what is queued and ends the connection once
 * the peer answers or close_linger passes. on_close follows later. */
void sh_ws_conn_close(sh_ws_conn_t *ws, uint16_t code, const char *reason);
/* Ends the connection now, without a close frame and without on_close:
 * for owners that are going away themselves. */
void sh_ws_conn_destroy(sh_ws_conn_t *ws);
/* Changes who gets the callbacks (an upgrade probe becoming a session's
 * transport). */
void sh_ws_conn_set_owner(sh_ws_conn_t *ws, const sh_ws_handler_t *handler, void *owner);
/* Bytes queued and not yet written. */
size_t sh_ws_conn_queued(const sh_ws_conn_t *ws);
/* Frees the output rings kept for reuse (at exit, once no connection is
 * left, so a leak checker sees none). */
void sh_ws_ring_pool_drain(void);
bool sh_ws_conn_closing(const sh_ws_conn_t *ws);

#endif
