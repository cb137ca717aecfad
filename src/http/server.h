/* http/server.h — libmicrohttpd inside our loop: routes, request bodies,
 * responses (copied or zero-copy from messages), suspend/resume for long
 * polls, and the hand-off of upgraded connections (WebSocket) to the loop.
 *
 * Invariants (see DESIGN.md, "libmicrohttpd 0.9.75 in external-epoll mode"):
 *  - MHD runs in external-epoll mode: its epoll fd is watched by our loop
 *    and MHD_run() is only ever called from loop callbacks, never from
 *    inside an MHD callback. Resuming a request or closing an upgrade sets a
 *    "needs a run" flag served by a deferred call, because MHD without its
 *    inter-thread channel does not wake itself.
 *  - A route handler is called when a request's headers and body are
 *    complete, and again each time the request is resumed. Before returning
 *    it must respond, suspend, or start an upgrade; otherwise the layer
 *    answers 500 (a handler bug must not hang a client).
 *  - A request's memory belongs to this layer. A handler that keeps a
 *    pointer to a request (a held long-poll) registers a done callback with
 *    sh_http_req_set_owner(); the layer calls it exactly once when the
 *    request ends (answered, client gone, or shutdown), after which the
 *    pointer is invalid.
 *  - An upgraded connection's socket is dup()ed and MHD's copy closed, so
 *    the WebSocket lives on with only our own state; the upgrade callback
 *    owns the new fd.
 */
#ifndef SH_HTTP_SERVER_H
#define SH_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/msg.h"
#include "loop/loop.h"

typedef struct sh_http sh_http_t;
typedef struct sh_http_req sh_http_req_t;

typedef enum {
    SH_HTTP_GET,
    SH_HTTP_POST,
    SH_HTTP_PUT,
    SH_HTTP_DELETE,
    SH_HTTP_OPTIONS,
    SH_HTTP_HEAD,
    SH_HTTP_PATCH,
    SH_HTTP_OTHER,
} sh_http_method_t;

typedef void (*sh_http_handler_cb)(sh_http_req_t *req, void *data);
typedef void (*sh_http_done_cb)(sh_http_req_t *req, void *owner);
/* Receives the upgraded socket (owned by the callee from now on) and any
 * bytes the client sent after its request, which the callee must process
 * before reading the socket. */
typedef void (*sh_http_upgrade_cb)(int fd, const char *extra, size_t extra_len, void *data);

typedef struct sh_http_options {
    const char *host;         /* numeric IPv4/IPv6 address to bind */
    uint16_t port;            /* 0 picks a free port (tests) */
    unsigned max_connections; /* MHD's own default is 1,020 even with epoll */
    unsigned idle_timeout_ms; /* idle keep-alive connections are closed */
    size_t header_memory;     /* per-connection MHD memory (request headers) */
} sh_http_options_t;

typedef struct sh_http_stats {
    uint64_t requests;
    uint64_t upgrades;
    uint64_t responses_by_class[6]; /* index status/100 (1xx..5xx) */
} sh_http_stats_t;

/* Starts listening. Returns NULL with a reason in err on failure. */
sh_http_t *sh_http_new(sh_loop_t *loop, const sh_http_options_t *opts, sh_buf_t *err);
/* Ends every pending request (their owners' done callbacks run), stops MHD
 * and frees. NULL is a no-op. */
void sh_http_free(sh_http_t *http);
/* The bound port (useful when opts.port was 0). */
uint16_t sh_http_port(const sh_http_t *http);
const sh_http_stats_t *sh_http_stats(const sh_http_t *http);
/* Number of connections MHD currently holds. */
unsigned sh_http_connections(const sh_http_t *http);

/* Adds a route for paths equal to `path` (exact) or starting with it.
 * The longest matching route wins; unmatched requests get 404. body_limit
 * caps the accumulated request body (0: no body accepted); past it the
 * handler is still called and sh_http_req_body_too_large() is true. */
int sh_http_route(sh_http_t *http, const char *path, bool exact, size_t body_limit,
                  sh_http_handler_cb cb, void *data);

/* ---- request accessors (valid until the request ends) ---- */
sh_http_method_t sh_http_req_method(const sh_http_req_t *req);
const char *sh_http_req_method_name(const sh_http_req_t *req);
const char *sh_http_req_path(const sh_http_req_t *req);
/* Query argument, header (case-insensitive) and cookie values, or NULL. */
const char *sh_http_req_query(const sh_http_req_t *req, const char *key);
const char *sh_http_req_header(const sh_http_req_t *req, const char *name);
const char *sh_http_req_cookie(const sh_http_req_t *req, const char *name);
/* The request body (NUL-terminated; binary-safe with len). */
const char *sh_http_req_body(const sh_http_req_t *req, size_t *len);
bool sh_http_req_body_too_large(const sh_http_req_t *req);
/* The client's address as text (for logs). */
const char *sh_http_req_peer(sh_http_req_t *req);
/* True when this call of the handler follows a resume. */
bool sh_http_req_resumed(const sh_http_req_t *req);

/* Registers the request's owner: done(req, owner) runs once when the
 * request ends. Pass NULL to unregister. */
void sh_http_req_set_owner(sh_http_req_t *req, void *owner, sh_http_done_cb done);
void *sh_http_req_owner(const sh_http_req_t *req);

/* ---- answering ---- */
/* Adds a header to the response this request will get (copied). */
void sh_http_req_add_header(sh_http_req_t *req, const char *name, const char *value);
/* Queues a response with a copy of body. Returns 0 or -EIO. */
int sh_http_respond(sh_http_req_t *req, unsigned status, const char *content_type, const void *body,
                    size_t len);
/* {"code":code,"message":message} with status, as Node's engine.io does. */
int sh_http_respond_error_json(sh_http_req_t *req, unsigned status, int code, const char *message);
/* Zero-copy response: the bodies of msgs[0..n) joined by `sep` (a string
 * with static lifetime, or NULL), binary messages in their "b"+base64 form.
 * Steals the references; they are dropped when MHD is done sending. */
int sh_http_respond_msgs(sh_http_req_t *req, unsigned status, const char *content_type,
                         sh_msg_t **msgs, size_t n, const char *sep);
/* Streaming response of unknown length (an SSE stream), sent chunked.
 * libmicrohttpd calls read whenever the connection can take more: it
 * copies at most max bytes into buf and returns how many; 0 when it has
 * nothing now, and the layer then suspends the connection until
 * sh_http_req_resume() (returning "no data" unsuspended would make MHD
 * spin); -1 to end the response. read is the one copy on this path: MHD
 * has no zero-copy streaming response, so bytes go into its connection
 * buffer. read is never called once the request has ended (the owner's
 * done callback ran). Returns 0 or -EIO. */
typedef long (*sh_http_read_cb)(char *buf, size_t max, void *data);
int sh_http_respond_stream(sh_http_req_t *req, unsigned status, const char *content_type,
                           sh_http_read_cb read, void *data);
/* Holds the request until sh_http_req_resume(). */
void sh_http_req_suspend(sh_http_req_t *req);
/* Resumes a suspended request: its handler runs again shortly (from the
 * loop, not from inside this call). No-op unless suspended. */
void sh_http_req_resume(sh_http_req_t *req);
bool sh_http_req_suspended(const sh_http_req_t *req);
/* Answers 101 Switching Protocols with the headers added so far plus
 * "Upgrade: websocket"; once sent, cb gets the socket. If the request has
 * an owner, exactly one of cb and the owner's done callback runs (done
 * only when the upgrade never happened, e.g. the client left first). */
int sh_http_respond_upgrade(sh_http_req_t *req, sh_http_upgrade_cb cb, void *data);

#endif
