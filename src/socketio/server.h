/* socketio/server.h — the Socket.IO v5 server on top of Engine.IO:
 * namespaces, sockets, events, acknowledgements both ways, binary
 * attachments, the connect timeout.
 *
 * Spec: socketio/socket.io-protocol README (v5); where it is silent,
 * Node's socket.io 4.x (reasons, what an unknown namespace or a packet for
 * an unconnected namespace does).
 *
 * Invariants:
 *  - One sio client per Engine.IO session; it holds one socket per
 *    connected namespace. A socket id is random and differs from the
 *    Engine.IO sid (v5).
 *  - Namespace handlers run on the loop; none runs from inside a call the
 *    handler's own code made (disconnects and acks are deferred).
 *  - A CONNECT is answered once on_connect has finished with it: at once
 *    (on_connect returns 0 or refuses), or later when on_connect returns
 *    -EINPROGRESS and the namespace calls sh_sio_socket_accept() or
 *    sh_sio_socket_refuse(). Until then the socket is pending: not
 *    connected, unable to send, its client's packets for the namespace
 *    close the session as packets for an unconnected namespace do, and it
 *    is found by sh_sio_server_pending_socket(). A CONNECT still pending
 *    after connect_timeout closes its session (the client reconnects), as
 *    a session that connects no namespace in time is closed.
 *  - A socket ends exactly once: on_disconnect runs, then the socket is
 *    freed by the loop; after on_disconnect returns the pointer is invalid.
 *    Every socket on_connect did not refuse at once ends so, connected or
 *    pending (refused later, its session closed, its answer timed out).
 *    Code that must outlive a socket keeps its id (sh_sio_server_socket()
 *    or sh_sio_server_pending_socket() looks it up).
 *  - An ack callback registered by sh_sio_socket_emit runs exactly once:
 *    with the client's answer, or with status -ECONNRESET when the socket
 *    ends first, or never if sh_sio_socket_cancel_ack() is called first.
 *  - A session whose client sends no packets (SSE) is attached from the
 *    outside: sh_sio_server_attach() stands for its CONNECT and
 *    sh_sio_socket_dispatch() for its EVENTs, with acks handed to a
 *    callback instead of sent. Such a socket cannot be asked for acks.
 *  - Event arguments are a JSON array whose binary values are placeholders
 *    ({"_placeholder":true,"num":N}) for bins[N], the attachments. Sending
 *    takes the same pair, so binary is forwarded without re-encoding.
 */
#ifndef SH_SOCKETIO_SERVER_H
#define SH_SOCKETIO_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/json_span.h"
#include "core/msg.h"
#include "engineio/server.h"
#include "loop/loop.h"

typedef struct sh_sio_server sh_sio_server_t;
typedef struct sh_sio_socket sh_sio_socket_t;
typedef struct sh_sio_nsp sh_sio_nsp_t;

/* Borrowed event arguments: valid during the callback only (json_incref /
 * sh_msg_ref what you keep). */
typedef struct sh_sio_args {
    json_t *args; /* JSON array, never NULL */
    sh_msg_t *const *bins;
    size_t nbins;
} sh_sio_args_t;

typedef struct sh_sio_nsp_handler {
    /* A CONNECT to this namespace. Return 0 to accept; -EINPROGRESS to
     * answer later with sh_sio_socket_accept() or sh_sio_socket_refuse()
     * (authentication that needs a round trip: the answer, and so the
     * client's `connect`, then follows it); or another negative errno
     * (-EPERM) and set *error (a new JSON object or string) to refuse with
     * CONNECT_ERROR. auth is the CONNECT payload (NULL if none). The
     * socket may not be used to send here: the CONNECT answer is not out
     * yet. */
    int (*on_connect)(sh_sio_socket_t *sock, json_t *auth, json_t **error, void *data);
    /* Right after the CONNECT answer is queued, in the same loop step
     * (nothing else runs between them); sending is allowed from here.
     * auth is the CONNECT's payload, also for an answer given later. */
    void (*on_connected)(sh_sio_socket_t *sock, json_t *auth, void *data);
    /* An EVENT. ack_id >= 0 when the client wants an answer
     * (sh_sio_socket_ack). */
    void (*on_event)(sh_sio_socket_t *sock, const char *event, const sh_sio_args_t *args,
                     int64_t ack_id, void *data);
    /* Events named in text_events (a NULL-terminated list) come here
     * instead, as the text of their arguments after the name, when their
     * JSON is plain (sh_sio_event_read_args): a handler that forwards what
     * a client wrote (a channel's typing) then never builds a tree. A
     * packet of those names that is not plain still goes to on_event.
     * The list is kept by pointer: it must outlive the namespace. */
    const char *const *text_events;
    void (*on_event_text)(sh_sio_socket_t *sock, const char *event, const sh_json_span_t *args,
                          size_t nargs, int64_t ack_id, void *data);
    /* The socket is over. reason as Node's: "client namespace disconnect",
     * "server namespace disconnect", "transport close", "ping timeout",
     * "parse error", "transport error", "forced close", "server shutting
     * down"; for a pending socket also "connect refused" (its namespace
     * called sh_sio_socket_refuse) and "connect timeout". */
    void (*on_disconnect)(sh_sio_socket_t *sock, const char *reason, void *data);
} sh_sio_nsp_handler_t;

typedef void (*sh_sio_ack_cb)(sh_sio_server_t *srv, const char *socket_id, int status,
                              const sh_sio_args_t *args, void *data);

typedef struct sh_sio_options {
    uint64_t connect_timeout; /* ms a session may stay without a namespace */
} sh_sio_options_t;

typedef struct sh_sio_stats {
    uint64_t sockets;        /* connected now */
    uint64_t pending;        /* CONNECTs waiting for their answer now */
    uint64_t connects;       /* accepted CONNECTs */
    uint64_t connect_errors; /* refused or unknown namespace */
    uint64_t events_in;
    uint64_t events_out; /* packets sent to single sockets */
    uint64_t parse_errors;
} sh_sio_stats_t;

sh_sio_server_t *sh_sio_server_new(sh_loop_t *loop, const sh_sio_options_t *opts);
/* Frees the server; sockets left are dropped without callbacks. */
void sh_sio_server_free(sh_sio_server_t *srv);
/* The Engine.IO handler to give sh_eio_server_new, with the server as its
 * data. */
const sh_eio_handler_t *sh_sio_eio_handler(void);
const sh_sio_stats_t *sh_sio_server_stats(const sh_sio_server_t *srv);

/* Registers a namespace ("/" or "/name"); handler is copied. */
sh_sio_nsp_t *sh_sio_server_add_nsp(sh_sio_server_t *srv, const char *name,
                                    const sh_sio_nsp_handler_t *handler, void *data);
sh_sio_nsp_t *sh_sio_server_nsp(const sh_sio_server_t *srv, const char *name);
const char *sh_sio_nsp_name(const sh_sio_nsp_t *nsp);
/* A connected socket by id, or NULL. */
sh_sio_socket_t *sh_sio_server_socket(const sh_sio_server_t *srv, const char *id);
/* A pending socket (its CONNECT not answered yet) by id, or NULL: what a
 * completion that answers a CONNECT looks its socket up with. */
sh_sio_socket_t *sh_sio_server_pending_socket(const sh_sio_server_t *srv, const char *id);

/* ---- sockets ---- */
const char *sh_sio_socket_id(const sh_sio_socket_t *sock);
sh_sio_nsp_t *sh_sio_socket_nsp(const sh_sio_socket_t *sock);
sh_sio_server_t *sh_sio_socket_server(const sh_sio_socket_t *sock);
sh_eio_session_t *sh_sio_socket_session(const sh_sio_socket_t *sock);
bool sh_sio_socket_connected(const sh_sio_socket_t *sock);

/* Answer a pending socket's CONNECT (on_connect returned -EINPROGRESS).
 * accept: the answer is queued and on_connected runs, both from the loop
 * (never inside this call). refuse: CONNECT_ERROR with error (stolen; NULL
 * for {"message":"Not authorized"}) is queued now and on_disconnect runs
 * from the loop with "connect refused"; a session attached with
 * sh_sio_server_attach then closes (its client cannot try again). Each
 * returns 0, or -EINVAL when the socket is not pending or was already
 * accepted (error is still freed). */
int sh_sio_socket_accept(sh_sio_socket_t *sock);
int sh_sio_socket_refuse(sh_sio_socket_t *sock, json_t *error);

/* Two per-socket pointers for the layers above: slot 0 for the hub (room
 * membership), slot 1 for the application. */
enum { SH_SIO_SLOT_HUB = 0, SH_SIO_SLOT_APP = 1 };
void *sh_sio_socket_slot(const sh_sio_socket_t *sock, int slot);
void sh_sio_socket_set_slot(sh_sio_socket_t *sock, int slot, void *p);

/* Emits event with args (a JSON array, borrowed; NULL for none) and
 * attachments. With cb, the client is asked to acknowledge and cb runs
 * once (see the header comment); *ack_id_out (may be NULL) gets the id for
 * sh_sio_socket_cancel_ack. Returns 0 or -EPIPE when the socket is not
 * connected (cb will not run). */
int sh_sio_socket_emit(sh_sio_socket_t *sock, const char *event, json_t *args,
                       sh_msg_t *const *bins, size_t nbins, sh_sio_ack_cb cb, void *cb_data,
                       int64_t *ack_id_out);
/* Answers the client's ack request id with args (borrowed array or NULL). */
int sh_sio_socket_ack(sh_sio_socket_t *sock, int64_t id, json_t *args, sh_msg_t *const *bins,
                      size_t nbins);
/* Forgets a pending ack without calling its callback. Returns 0 or -ENOENT. */
int sh_sio_socket_cancel_ack(sh_sio_socket_t *sock, int64_t id);
/* Queues pre-encoded Engine.IO messages (a broadcast's; new references are
 * taken). Returns 0 or -EPIPE. */
int sh_sio_socket_send_msgs(sh_sio_socket_t *sock, sh_msg_t *const *msgs, size_t n);
/* Step `step` (0 to SH_SIO_PREFETCH_STEPS - 1) of fetching what
 * sh_sio_socket_send_msgs reads, sock itself excepted, into the cache: see
 * sh_eio_session_prefetch. */
#define SH_SIO_PREFETCH_STEPS (1 + SH_EIO_PREFETCH_STEPS)
void sh_sio_socket_prefetch(const sh_sio_socket_t *sock, unsigned step);
/* Server-side disconnect: a DISCONNECT packet, then on_disconnect from the
 * loop; with close_session, the whole Engine.IO session closes too. */
void sh_sio_socket_disconnect(sh_sio_socket_t *sock, bool close_session);

/* ---- sessions without client packets (SSE) ---- */

/* Connects session s (an Engine.IO session this server was told of by
 * on_open) to namespace nsp as if its client had sent CONNECT with auth
 * (borrowed, may be NULL): on_connect, the CONNECT answer (or
 * CONNECT_ERROR), on_connected run exactly as for a packet. From then on
 * the session's client is taken to send nothing: it cannot be asked for
 * acks (sh_sio_socket_emit with a callback returns -ENOTSUP). Returns the
 * socket, pending when on_connect deferred its answer; or NULL when the
 * namespace is unknown or refused the connection (the answer was queued)
 * or s has no Socket.IO client. */
sh_sio_socket_t *sh_sio_server_attach(sh_sio_server_t *srv, sh_eio_session_t *s, const char *nsp,
                                      json_t *auth);
/* Runs the namespace's on_event for sock as if its client had sent EVENT
 * event(args) (args a borrowed JSON array, NULL for none). With cb the
 * handler gets an ack id, and its answer (sh_sio_socket_ack) goes to cb
 * instead of the client: once, from the handler's call, or with status
 * -ECONNRESET when the socket ends first; *ack_id_out (may be NULL) gets
 * the id for sh_sio_socket_cancel_dispatch. Returns 0 or -EPIPE (not
 * connected; cb will not run). */
int sh_sio_socket_dispatch(sh_sio_socket_t *sock, const char *event, json_t *args, sh_sio_ack_cb cb,
                           void *cb_data, int64_t *ack_id_out);
/* Forgets a dispatch's ack without calling its callback. Returns 0 or
 * -ENOENT. */
int sh_sio_socket_cancel_dispatch(sh_sio_socket_t *sock, int64_t id);

/* Builds the EVENT data array [event, args...] (a new reference). */
json_t *sh_sio_event_array(const char *event, json_t *args);

#endif
