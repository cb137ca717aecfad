/* tests/lib/eio_client.h — a hand-driven Engine.IO long-polling client for
 * the server-layer tests (Engine.IO, Socket.IO, hub), on top of harness.h.
 *
 * One client is one session: its GETs go over one keep-alive connection and
 * its POSTs over another, as browsers do, so a held GET never blocks a
 * POST. Payloads are compared as they are on the wire ("4a\x1e4b").
 */
#ifndef SH_TESTS_EIO_CLIENT_H
#define SH_TESTS_EIO_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "harness.h"

typedef struct th_eio {
    th_env_t *env;
    char path[64]; /* the server's path, e.g. "/engine.io/" */
    char sid[64];
    th_conn_t get;
    th_conn_t post;
    bool get_out; /* a GET was sent and its answer not yet read */
    bool open;    /* connections exist */
} th_eio_t;

/* Polling handshake: GET path?EIO=4&transport=polling (plus extra_query,
 * e.g. "&x=1", may be NULL). On 200 stores the sid; r gets the response.
 * Returns the status. */
int th_eio_open(th_eio_t *c, th_env_t *env, const char *path, const char *extra_query,
                th_resp_t *r);
/* The open packet's JSON (new reference) from a handshake body, or NULL. */
json_t *th_eio_open_json(const th_resp_t *r);
/* Sends a GET for the session without waiting for it. */
void th_eio_get_send(th_eio_t *c);
/* Sends a GET and runs the loop until the server has taken it (its
 * handler ran) without answering: the GET is held. Fails the test if it
 * was answered. */
void th_eio_get_hold(th_eio_t *c);
/* Waits for the outstanding GET's answer. */
bool th_eio_get_wait(th_eio_t *c, th_resp_t *r, unsigned timeout_ms);
/* Sends a GET and waits for its answer. */
bool th_eio_poll(th_eio_t *c, th_resp_t *r, unsigned timeout_ms);
/* POSTs a payload and waits for the answer; returns the status. */
int th_eio_post(th_eio_t *c, const char *payload, size_t len, th_resp_t *r);
int th_eio_post_str(th_eio_t *c, const char *payload);
/* Closes the client's connections (the server sees them go). */
void th_eio_close(th_eio_t *c);

/* ---- Socket.IO over it ---- */

/* POSTs "40" (or "40/nsp,") with auth (JSON text or NULL), polls the
 * answer and checks it is a CONNECT; copies the socket id into sid_out
 * (SH_ID_LEN + 1 bytes at least). Returns false if the answer was not a
 * CONNECT for that namespace. */
bool th_sio_connect(th_eio_t *c, const char *nsp, const char *auth, char *sid_out, size_t sid_len);

#endif
