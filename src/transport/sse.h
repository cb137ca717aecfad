/* transport/sse.h — the SSE (EventSource) transport: the output side of
 * an Engine.IO session whose client reads a text/event-stream and sends
 * nothing on it.
 *
 * One sh_sse_t per session holds the session's events in order, each
 * numbered (seq, from 1), and a stream: the HTTP response currently
 * reading them. On the wire an event is
 *
 *     id: <session id>:<seq>\n          written per client
 *     event: <name>\ndata: <json>\n\n   the rendered form, shared
 *
 * Encode once: the rendered form comes from sh_msg_form(m, render), so a
 * broadcast to N SSE clients renders one message and every client's
 * buffer holds a reference to it; per client only the id line is
 * formatted. The one copy per recipient is libmicrohttpd's: it offers no
 * zero-copy streaming response, so the reader copies each event into the
 * connection's buffer (as the kernel copies any write).
 *
 * Resume without loss: the events stay in a bounded replay buffer
 * (buffer_bytes of rendered events and at most buffer_events of them)
 * after they were written, because bytes handed to MHD are not bytes the
 * client got. A stream attached with the client's Last-Event-ID starts
 * after that seq; when the buffer no longer reaches back that far it
 * starts with "event: reset" (data {}) and then whatever the buffer still
 * holds. Every stream starts with "retry: <ms>". While no stream is
 * attached, events keep queuing into the buffer, the oldest dropped past
 * its bounds (the client then gets a reset). While a stream is attached,
 * events not yet written are never dropped: past output_limit bytes of
 * them the client is too slow and sh_sse_push says so.
 *
 * Keep-alive: sh_sse_keepalive writes ": ping" between events; a client
 * that left a stream is only noticed at a write, so this is also how a
 * dead peer is found. Nothing here has timers: the owner calls it.
 *
 * Lifetimes: the owner (the Engine.IO session) creates the sh_sse_t and
 * frees it; a stream still writing (the events a closing session owes)
 * keeps it alive until the stream ends. on_detach tells the owner that
 * its current stream ended; it runs from the loop (the HTTP layer's done
 * callback), never from inside a call the owner made, and never after
 * sh_sse_free().
 */
#ifndef SH_TRANSPORT_SSE_H
#define SH_TRANSPORT_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/msg.h"
#include "http/server.h"

typedef struct sh_sse sh_sse_t;
typedef struct sh_sse_stream sh_sse_stream_t;

typedef struct sh_sse_stats {
    uint64_t streams;  /* streams attached now (gauge) */
    uint64_t draining; /* streams still writing for an ended session (gauge) */
    uint64_t resumes;  /* streams attached with a Last-Event-ID */
    uint64_t resets;   /* streams that began with "event: reset" */
    uint64_t events;   /* events queued */
} sh_sse_stats_t;

typedef void (*sh_sse_detach_cb)(sh_sse_t *sse, void *data);
/* A stream has something to write: wake its consumer (resume the HTTP
 * request). */
typedef void (*sh_sse_wake_cb)(sh_sse_stream_t *st, void *data);

typedef struct sh_sse_options {
    const char *sid;         /* the session id of the event ids (copied) */
    sh_msg_render_cb render; /* Engine.IO message -> event; NULL form: not sent */
    size_t buffer_bytes;     /* replay buffer: rendered bytes kept */
    size_t buffer_events;    /* ... and events kept */
    size_t output_limit;     /* unwritten bytes on a live stream; 0: no limit */
    uint64_t retry_ms;       /* EventSource's reconnection delay */
    sh_sse_stats_t *stats;   /* counters to update (may be NULL) */
} sh_sse_options_t;

sh_sse_t *sh_sse_new(const sh_sse_options_t *opts, sh_sse_detach_cb on_detach, void *data);
/* The owner is done with sse: on_detach will not run again. A stream that
 * was told to drain (sh_sse_end) finishes writing first; any other ends
 * now. NULL is a no-op. */
void sh_sse_free(sh_sse_t *sse);

/* Queues one encoded Engine.IO message; steals the reference. Returns 1
 * when it became event `seq` (sh_sse_last_seq), 0 when it has no SSE form
 * or the stream was ended (dropped), or -ENOBUFS when a live stream now
 * has more than output_limit bytes unwritten (queued all the same: the
 * owner drops the client). */
int sh_sse_push(sh_sse_t *sse, sh_msg_t *m);
/* Writes a ": ping" comment on the live stream, if any. */
void sh_sse_keepalive(sh_sse_t *sse);
/* No more events: the live stream ends after the events queued (drain)
 * or at once. Later pushes are dropped. */
void sh_sse_end(sh_sse_t *sse, bool drain);

/* The seq of the newest event (0 before the first). */
uint64_t sh_sse_last_seq(const sh_sse_t *sse);
/* The oldest seq still in the replay buffer (last + 1 when empty). */
uint64_t sh_sse_first_seq(const sh_sse_t *sse);
/* Events in the replay buffer and their rendered bytes. */
size_t sh_sse_buffered(const sh_sse_t *sse, size_t *bytes);
bool sh_sse_attached(const sh_sse_t *sse);
/* Bytes of events rendered but not yet written to the live stream. */
size_t sh_sse_unsent(const sh_sse_t *sse);

/* ---- streams */

/* Where a new stream starts. */
typedef struct sh_sse_from {
    bool resume;        /* after_seq is the client's Last-Event-ID */
    uint64_t after_seq; /* with resume: the last event the client has */
    bool reset;         /* begin with "event: reset" whatever the buffer */
} sh_sse_from_t;

/* Starts a stream (pure: the caller moves its bytes), replacing the live
 * one, which ends at its next read. Without resume it starts at the oldest
 * event held (a new session's stream). Returns the stream; *was_reset
 * (may be NULL) tells whether it begins with a reset. wake runs whenever
 * the stream has bytes again after a read returned 0. */
sh_sse_stream_t *sh_sse_stream_new(sh_sse_t *sse, const sh_sse_from_t *from, sh_sse_wake_cb wake,
                                   void *wake_data, bool *was_reset);
/* Copies the stream's next bytes into buf: returns how many (> 0), 0 when
 * it has nothing now (wake follows when it has), or -1 when it is over. */
long sh_sse_stream_read(sh_sse_stream_t *st, char *buf, size_t max);
/* The consumer is gone (client left, response over). If st was the live
 * stream, the owner hears on_detach from inside this call. */
void sh_sse_stream_free(sh_sse_stream_t *st);

/* The HTTP glue: answers req (a GET whose headers the caller added) with a
 * 200 text/event-stream streaming st's bytes; the stream is freed when the
 * request ends. Returns 0, or -EIO (nothing attached). */
int sh_sse_attach(sh_sse_t *sse, sh_http_req_t *req, const sh_sse_from_t *from, bool *was_reset);

#endif
