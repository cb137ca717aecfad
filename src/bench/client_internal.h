/* bench/client_internal.h — what client.c shares with its transports
 * (client_ws.c, client_polling.c, client_sse.c). Not for scenarios.
 *
 * A transport is a const table: the ops of the client's main connection
 * (connected starts the transport's handshake; data parses what comes)
 * and the few places where the common Engine.IO / Socket.IO code needs
 * the transport to act.
 */
#ifndef SB_CLIENT_INTERNAL_H
#define SB_CLIENT_INTERNAL_H

#include "bench/client.h"

enum {
    SB_CLIENT_CLOSED,
    SB_CLIENT_CONNECTING, /* TCP */
    SB_CLIENT_UPGRADING,  /* waiting for the 101 (WebSocket) or the stream's head (SSE) */
    SB_CLIENT_OPENING,    /* waiting for the Engine.IO open packet */
    SB_CLIENT_JOINING,    /* waiting for the Socket.IO CONNECT answer */
    SB_CLIENT_READY,
};

typedef struct sb_client_transport {
    const char *name;
    sb_conn_ops_t conn_ops;
    /* The Engine.IO open packet arrived (c->sid is set): send CONNECT. */
    void (*opened)(sb_client_t *c);
    /* An Engine.IO ping arrived. */
    void (*ping)(sb_client_t *c);
    int (*emit)(sb_client_t *c, const char *name, const char *args, size_t alen, int64_t ack_id);
    /* sb_client_leave (polling); NULL: not supported. */
    int (*leave)(sb_client_t *c);
    /* An answer on the side connection (polling and SSE). */
    void (*side_answer)(sb_client_t *c, const sb_http_head_t *h, const char *body, size_t blen,
                        uint64_t now);
} sb_client_transport_t;

extern const sb_client_transport_t sb_client_websocket;
extern const sb_client_transport_t sb_client_polling;
extern const sb_client_transport_t sb_client_sse;

/* Closes c and reports it lost (or failed to connect) to the owner. */
void sb_client_fail(sb_client_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_client_set_ready(sb_client_t *c, uint64_t now);
/* One Engine.IO packet in text form (open, ping, message...). */
void sb_client_eio(sb_client_t *c, const char *p, size_t n, uint64_t now);
/* Appends the Socket.IO CONNECT packet with c's token. */
void sb_client_connect_packet(const sb_client_t *c, sb_buf_t *out);
/* Appends an EVENT packet: 42[ack_id]["name",args]. */
void sb_client_event_packet(sb_buf_t *out, const char *name, const char *args, size_t alen,
                            int64_t ack_id);
/* Hands the whole HTTP responses in p[0..n) to fn(c, ...) (a conn's data
 * callback); a malformed one fails c. Returns the bytes used. */
size_t sb_client_responses(sb_client_t *c, const char *p, size_t n, sb_http_response_cb fn,
                           uint64_t now);
/* The output buffer of the side connection (made on first use), for the
 * caller to append one whole HTTP request to, then sb_client_side_send.
 * The caller checked !c->side_busy; the answer goes to tp->side_answer. */
sb_buf_t *sb_client_side_out(sb_client_t *c);
void sb_client_side_send(sb_client_t *c);

#endif
