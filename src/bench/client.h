/* bench/client.h — one bench client: a Socket.IO v5 / Engine.IO v4
 * client over WebSocket, long-polling or SSE (siohubd's /sse endpoint), or
 * a plain WebSocket subscriber (raw-ws: nchan, the floor server).
 *
 * Just enough protocol to be a well-behaved client at the lowest CPU
 * cost: the RFC 6455 handshake and masked frames, Engine.IO open, ping ->
 * pong, polling payloads split on \x1e, Socket.IO CONNECT with
 * {"token": ...}, EVENT and ACK in the main namespace. Incoming messages
 * are handed over in place (no copy, no allocation per message).
 *
 * Connections: a WebSocket client is one TCP connection. A polling client
 * does its handshake and pongs on its long-poll connection between two
 * GETs (one connection while idle, as the old load generator); an SSE
 * client holds its stream. Both open a second connection ("side") the
 * first time they emit, and POST there, one request at a time (polling
 * packets that wait are sent together in one payload).
 *
 * Callbacks (sb_client_cbs_t) run from the loop only, never from inside
 * sb_client_open / sb_client_emit. A client is never freed by this
 * module: it is embedded in its owner's array.
 */
#ifndef SB_CLIENT_H
#define SB_CLIENT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "bench/buf.h"
#include "bench/http.h"
#include "bench/loop.h"

/* raw-ws and raw-sse: plain subscribers (nchan, the floor server), every
 * WebSocket text frame or SSE data: event one message, no Socket.IO. */
typedef enum { SB_PROTO_SOCKETIO, SB_PROTO_RAW_WS, SB_PROTO_RAW_SSE } sb_protocol_t;

static inline bool sb_proto_raw(sb_protocol_t p)
{
    return p != SB_PROTO_SOCKETIO;
}

typedef enum { SB_TRANSPORT_WEBSOCKET, SB_TRANSPORT_POLLING, SB_TRANSPORT_SSE } sb_transport_t;

typedef struct sb_client sb_client_t;

typedef struct sb_client_cbs {
    /* Connected: the Socket.IO CONNECT was answered (SSE: event connect;
     * raw-ws: the upgrade; raw-sse: the stream's 200). c->t_open is when
     * sb_client_open was called. */
    void (*ready)(sb_client_t *c, uint64_t now);
    /* An event. Socket.IO (any transport): name[0..nlen) is its name and
     * args[0..alen) the JSON text of its arguments without the enclosing
     * brackets ("{...}" for one object). raw-ws: name is NULL and args the
     * text frame. Borrowed, valid during the call. */
    void (*message)(sb_client_t *c, const char *name, size_t nlen, const char *args, size_t alen,
                    uint64_t now);
    /* The answer to sb_client_emit(..., ack_id): args as above. Optional. */
    void (*ack)(sb_client_t *c, uint64_t ack_id, const char *args, size_t alen, uint64_t now);
    /* The client is closed for good (nothing is reopened): it failed to
     * connect (was_ready false) or was lost. why: valid during the call.
     * The callee may sb_client_open it again. */
    void (*closed)(sb_client_t *c, bool was_ready, const char *why);
    /* sb_client_leave is done: the server answered the close packet and
     * the client is closed (no closed callback). The callee may
     * sb_client_open it again. Optional. */
    void (*left)(sb_client_t *c, uint64_t now);
} sb_client_cbs_t;

/* One server port. */
typedef struct sb_target {
    struct sockaddr_in addr;
    char host[32]; /* Host header: "127.0.0.1:PORT" */
} sb_target_t;

/* What all clients of a process share; lives as long as they do. */
typedef struct sb_client_cfg {
    sb_protocol_t protocol;
    sb_transport_t transport;
    const char *path;  /* Engine.IO path (".../") or, raw-ws, the WebSocket target */
    const char *token; /* auth token for CONNECT (SSE: Bearer); NULL: none */
    const sb_client_cbs_t *cbs;
} sb_client_cfg_t;

struct sb_client_transport;

struct sb_client {
    sb_conn_t conn;  /* the WebSocket, the long-poll or the SSE stream */
    sb_conn_t *side; /* POSTs of polling and SSE clients; made on first use */
    const sb_client_cfg_t *cfg;
    const struct sb_client_transport *tp;
    const sb_target_t *target;
    uint32_t src;      /* source address (network order) or 0 */
    const char *token; /* borrowed; cfg->token unless the owner sets another */
    void *owner;       /* the owner's, untouched here */
    uint32_t id;       /* the owner's index for this client */
    uint8_t state;
    uint8_t req; /* polling: what the outstanding request on conn is */
    bool want_pong;
    bool side_busy;   /* a POST is in flight on side */
    bool reopen;      /* polling: conn closes after this answer: reopen it */
    bool leaving;     /* polling: the next request is the close packet */
    int64_t side_ack; /* SSE: the ack id of the POST in flight, or -1 */
    uint64_t t_open;
    sb_chunked_t chunk; /* SSE: the stream's chunked decoder */
    sb_buf_t text;      /* SSE: decoded stream text not yet a whole event */
    sb_buf_t side_q;    /* waiting to be POSTed (see the transports) */
    char sid[32];       /* Engine.IO session id; WebSocket: the expected accept */
};

/* Sets up c (closed). target and cfg are borrowed for c's life. */
void sb_client_init(sb_client_t *c, sb_loop_t *l, const sb_client_cfg_t *cfg,
                    const sb_target_t *target, uint32_t src, uint32_t id, void *owner);
/* Starts connecting; calls back ready or closed exactly once for this
 * attempt. The client must be closed (never opened, or after closed() or
 * sb_client_close). */
void sb_client_open(sb_client_t *c);
/* Closes at once, no callback; reset: RST instead of FIN (no TIME_WAIT). */
void sb_client_close(sb_client_t *c, bool reset);
/* Frees the buffers (after the last close). */
void sb_client_release(sb_client_t *c);
bool sb_client_is_ready(const sb_client_t *c);

/* Emits event name with args (JSON text of the arguments without the
 * brackets, may be empty) from a ready Socket.IO client; ack_id >= 0 asks
 * for an ack, answered through cbs->ack. 0, or -ENOTCONN (not ready),
 * -EINVAL (raw-ws). */
int sb_client_emit(sb_client_t *c, const char *name, const char *args, size_t alen, int64_t ack_id);
/* Leaves as a browser tab does: polling POSTs the Engine.IO close packet
 * "1" as the main connection's next request (at once when called from a
 * callback of this client, else after the long-poll in flight returns),
 * then closes with a reset (no TIME_WAIT) and calls back left. 0, or
 * -ENOTCONN (not ready), -EOPNOTSUPP (other transports). */
int sb_client_leave(sb_client_t *c);

#endif
