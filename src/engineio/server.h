/* engineio/server.h — Engine.IO v4 server: sessions over HTTP long-polling
 * and WebSocket, the upgrade between them, heartbeats and CORS.
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
 */
#ifndef SH_ENGINEIO_SERVER_H
#define SH_ENGINEIO_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/msg.h"
#include "http/server.h"
#include "loop/loop.h"
#include "transport/ws.h"

typedef struct sh_eio_server sh_eio_server_t;
typedef struct sh_eio_session sh_eio_session_t;

enum { SH_EIO_TRANSPORT_POLLING = 1, SH_EIO_TRANSPORT_WEBSOCKET = 2 };

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
} sh_eio_options_t;

typedef struct sh_eio_stats {
    uint64_t sessions_opened;
    uint64_t sessions_closed;
    uint64_t upgrades;
    uint64_t packets_in, packets_out;
    uint64_t bytes_in, bytes_out; /* Engine.IO payload bytes */
    uint64_t slow_dropped;        /* sessions closed for their queue size */
    uint64_t polling, websocket;  /* sessions now on each transport */
    sh_ws_stats_t ws;             /* WebSocket frame counters */
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
/* "polling" or "websocket". */
const char *sh_eio_session_transport(const sh_eio_session_t *s);
/* The handshake's client address, for logs. */
const char *sh_eio_session_peer(const sh_eio_session_t *s);
/* Queues one encoded Engine.IO packet; steals the reference. Returns 0,
 * or -EPIPE when the session is closing (m dropped). */
int sh_eio_send(sh_eio_session_t *s, sh_msg_t *m);
/* Closes the session from the server side (close packet on polling, close
 * frame on WebSocket); on_close follows from the loop. */
void sh_eio_close(sh_eio_session_t *s);

#endif
