/* engineio/server.h — Engine.IO v4 server: sessions over HTTP long-polling
 * and WebSocket, the upgrade between them, heartbeats and CORS; and
 * sessions over SSE (transport/sse.h), which the layer above opens on a
 * route of its own once it has authenticated the client.
 *
 * Spec: socketio/engine.io-protocol README (v4). Behaviour follows Node's
 * engine.io where the spec is silent (error codes and messages, upgrade
 * probing, what a duplicate poll does).
 *
 * Invariants:
 *  - A session is created by a handshake and ends exactly once; the layer
 *    above hears on_open once and on_close once, and on_close is never
 *    called from inside a call the layer above made (it is deferred).
 *  - Sending never copies: sh_eio_send queues a reference to an encoded
 *    Engine.IO packet (text "4..." etc., or a binary message). On
 *    WebSocket each message is a frame; on polling, the queue is answered
 *    as one payload when the client's GET is (or next becomes) pending.
 *  - Each session's output is bounded by output_limit bytes; a session
 *    past it is closed ("slow client") and counted.
 *  - While a session exists its pointer is stable; after on_close returns
 *    it must not be used.
 *  - An SSE session has no Engine.IO handshake, pings or input: it is
 *    alive while its stream is, and for sse_grace ms after the stream
 *    drops (a reconnect with the same session id in Last-Event-ID takes it
 *    up again). Output queues as on polling, bounded the same way, and
 *    stays in a replay buffer after it was written (transport/sse.h).
 */
#ifndef SH_ENGINEIO_SERVER_H
#define SH_ENGINEIO_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/msg.h"
#include "http/server.h"
#include "loop/loop.h"
#include "transport/sse.h"
#include "transport/ws.h"

typedef struct sh_eio_server sh_eio_server_t;
typedef struct sh_eio_session sh_eio_session_t;

enum { SH_EIO_TRANSPORT_POLLING = 1, SH_EIO_TRANSPORT_WEBSOCKET = 2, SH_EIO_TRANSPORT_SSE = 4 };

typedef struct sh_eio_handler {
    /* A session completed its handshake. Messages may be sent from here. */
    void (*on_open)(sh_eio_session_t *s, void *data);
    /* One MESSAGE packet: text (without the "4") or binary. Borrowed. */
    void (*on_message)(sh_eio_session_t *s, const char *msg, size_t len, bool binary, void *data);
    /* The session is over (reason as Node names them: "transport close",
     * "transport error", "ping timeout", "parse error", "forced close",
     * "server shutting down"). The session is freed after this returns. */
    void (*on_close)(sh_eio_session_t *s, const char *reason, void *data);
} sh_eio_handler_t;

typedef struct sh_eio_options {
    const char *path;         /* e.g. "/socket.io/"; must end with '/' */
    unsigned transports;      /* SH_EIO_TRANSPORT_* bits */
    uint64_t ping_interval;   /* ms */
    uint64_t ping_timeout;    /* ms */
    uint64_t upgrade_timeout; /* ms */
    size_t max_payload;       /* bytes: a POST body, a WebSocket message */
    size_t output_limit;      /* bytes queued per session before dropping it */
    /* Allowed Origins: NULL or {"*"} allows any; else a NULL-terminated
     * list of exact origins. Requests without Origin are always allowed
     * (non-browser clients send none). */
    const char *const *origins;
    /* SSE sessions (sh_eio_sse_open). */
    uint64_t sse_grace;          /* ms a session outlives its dropped stream */
    size_t sse_buffer;           /* replay buffer: rendered bytes kept */
    size_t sse_buffer_events;    /* ... and events kept */
    sh_msg_render_cb sse_render; /* packet -> SSE event; NULL: no SSE */
} sh_eio_options_t;

typedef struct sh_eio_stats {
    uint64_t sessions_opened;
    uint64_t sessions_closed;
    uint64_t upgrades;
    uint64_t packets_in, packets_out;
    uint64_t bytes_in, bytes_out; /* Engine.IO payload bytes */
    uint64_t slow_dropped;        /* sessions closed for their queue size */
    uint64_t polling, websocket;  /* sessions now on each transport */
    uint64_t sse;                 /* sessions now on SSE (with or without a stream) */
    sh_ws_stats_t ws;             /* WebSocket frame counters */
    sh_sse_stats_t sse_streams;   /* SSE stream counters */
} sh_eio_stats_t;

/* Registers the server's route on http. Returns NULL (with err) on
 * failure. */
sh_eio_server_t *sh_eio_server_new(sh_loop_t *loop, sh_http_t *http, const sh_eio_options_t *opts,
                                   const sh_eio_handler_t *handler, void *data, sh_buf_t *err);
/* Closes every session as a server shutdown does (close packets, close
 * frames). on_close follows for each, from the loop. */
void sh_eio_server_close_all(sh_eio_server_t *srv);
/* Sessions still open plus WebSocket connections still closing. */
size_t sh_eio_server_active(const sh_eio_server_t *srv);
/* Frees the server; sessions still open get on_close ("server shutting
 * down") first, so free this before the layer above. */
void sh_eio_server_free(sh_eio_server_t *srv);
const sh_eio_stats_t *sh_eio_server_stats(const sh_eio_server_t *srv);

const char *sh_eio_session_sid(const sh_eio_session_t *s);
void *sh_eio_session_data(const sh_eio_session_t *s);
void sh_eio_session_set_data(sh_eio_session_t *s, void *data);
/* "polling", "websocket" or "sse". */
const char *sh_eio_session_transport(const sh_eio_session_t *s);
/* The handshake's client address, for logs. */
const char *sh_eio_session_peer(const sh_eio_session_t *s);
/* Queues one encoded Engine.IO packet; steals the reference. Returns 0,
 * or -EPIPE when the session is closing (m dropped). */
int sh_eio_send(sh_eio_session_t *s, sh_msg_t *m);
/* Step `step` (0 to SH_EIO_PREFETCH_STEPS - 1) of fetching what
 * sh_eio_send reads for s into the cache, one layer a step: step k reads
 * only what steps before it fetched. A broadcast takes a batch of
 * recipients through each step in turn, so that one layer's misses of the
 * whole batch overlap. */
#define SH_EIO_PREFETCH_STEPS 3
void sh_eio_session_prefetch(const sh_eio_session_t *s, unsigned step);
/* Closes the session from the server side (close packet on polling, close
 * frame on WebSocket); on_close follows from the loop. */
void sh_eio_close(sh_eio_session_t *s);

/* ---- SSE sessions ---- */

/* Opens a session on SSE and answers req (a GET the layer above has
 * authorised, and given CORS headers with sh_eio_server_cors) with its
 * stream, "Cache-Control: no-store" and "X-Accel-Buffering: no" added.
 * on_open runs before
 * this returns, so the layer above can queue the first events. With
 * reset the stream begins with "event: reset" (the client came back with
 * the id of a session that is gone). Returns the session, or NULL when
 * SSE is not configured (sse_render) or the response failed (req is then
 * answered with an error). */
sh_eio_session_t *sh_eio_sse_open(sh_eio_server_t *srv, sh_http_req_t *req, bool reset);
/* The open SSE session with Engine.IO sid `sid`, or NULL. */
sh_eio_session_t *sh_eio_sse_find(sh_eio_server_t *srv, const char *sid);
/* Attaches req as the stream of SSE session s, starting after after_seq
 * (the seq of the client's Last-Event-ID; see transport/sse.h for the
 * reset when the buffer no longer reaches back), replacing a live stream.
 * Headers as sh_eio_sse_open. Returns 0, or -EIO (req answered). */
int sh_eio_sse_resume(sh_eio_session_t *s, sh_http_req_t *req, uint64_t after_seq);
/* CORS for another route of the same server (the SSE endpoint): returns
 * false when req's Origin is not allowed, else adds the CORS headers
 * Engine.IO answers carry and returns true. */
bool sh_eio_server_cors(sh_eio_server_t *srv, sh_http_req_t *req);

#endif
