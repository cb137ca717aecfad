/* tests/lib/harness.h — scaffolding shared by the server-layer unit tests
 * (compiled into each test program, not into libsiohub.a).
 *
 * Tests are single-threaded, in the style of libuv's: the loop and the
 * test's clients share the main thread. A client socket is watched by the
 * loop like any other fd, and a test "steps" the loop until what it waits
 * for has arrived (th_run_until) or a deadline passed, then asserts. Every
 * server callback therefore runs between two steps, on the one thread, and
 * the test counts them without locks. Between steps the test may call the
 * server's API directly, as an application does from its callbacks.
 *
 * Everything here listens and connects on 127.0.0.1 only, on ports the
 * kernel picks; nothing has a fixed port. Helpers that cannot go on (a
 * failed socket call) fail the test with ck_abort_msg.
 */
#ifndef SH_TESTS_HARNESS_H
#define SH_TESTS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "http/server.h"
#include "loop/loop.h"

/* Default bound for one wait: far below Check's per-test timeout. */
#define TH_WAIT_MS 2000

/* ---- the loop ---- */

typedef bool (*th_cond_fn)(void *arg);

/* Runs the loop until cond(arg) is true (checked before every wait) or
 * timeout_ms passed; returns whether cond became true. cond NULL: runs for
 * timeout_ms. The iteration that sees cond true still polls once (timeout
 * 0) before sh_loop_run returns. */
bool th_run_until(sh_loop_t *loop, th_cond_fn cond, void *arg, unsigned timeout_ms);
/* Runs the loop until *p >= at_least (a callback counter) or timeout_ms
 * passed; returns whether it got there. */
bool th_wait_count(sh_loop_t *loop, const int *p, int at_least, unsigned timeout_ms);
/* Runs the loop until *p == want (a reference count) or timeout_ms passed. */
bool th_wait_refs(sh_loop_t *loop, const unsigned *p, unsigned want, unsigned timeout_ms);
/* Runs the loop for ms milliseconds. */
void th_run_for(sh_loop_t *loop, unsigned ms);
/* Runs exactly one iteration: pending deferred calls, a poll that does not
 * wait, the ready fds, due timers, deferred calls. */
void th_run_once(sh_loop_t *loop);

/* ---- a loop with an HTTP server on 127.0.0.1, port 0 ---- */

typedef struct th_env {
    sh_loop_t *loop;
    sh_http_t *http;
    uint16_t port;
} th_env_t;

void th_env_start(th_env_t *env);
/* Waits (bounded) until libmicrohttpd holds no connection; true if so. */
bool th_env_wait_idle(th_env_t *env, unsigned timeout_ms);
/* Frees the HTTP server (if still there), runs what that deferred, frees
 * the loop. */
void th_env_stop(th_env_t *env);

/* ---- sockets ---- */

/* A connected loopback TCP pair: fds[0] is the server side, fds[1] the
 * client side; both blocking. */
void th_tcp_pair(int fds[2]);

/* A client connection watched by the loop: whatever arrives is appended to
 * `in`; eof is set when the peer closed or reset the connection. */
typedef struct th_conn {
    sh_loop_t *loop;
    int fd;
    sh_io_t io;
    sh_buf_t in;
    bool eof;
    bool paused;
} th_conn_t;

/* Connects to 127.0.0.1:port. */
void th_conn_connect(th_conn_t *c, sh_loop_t *loop, uint16_t port);
/* Watches an fd this side already has (made non-blocking here). */
void th_conn_adopt(th_conn_t *c, sh_loop_t *loop, int fd);
/* Writes all of p (waiting for the socket if it must; the test fails if
 * that takes longer than TH_WAIT_MS). */
void th_conn_write(th_conn_t *c, const void *p, size_t n);
void th_conn_write_str(th_conn_t *c, const char *s);
/* Stops / restarts reading (a slow client); paused bytes stay in the
 * kernel. */
void th_conn_pause(th_conn_t *c);
void th_conn_resume(th_conn_t *c);
/* Runs the loop until `in` holds n bytes, or the peer closed. */
bool th_conn_wait_bytes(th_conn_t *c, size_t n, unsigned timeout_ms);
bool th_conn_wait_eof(th_conn_t *c, unsigned timeout_ms);
/* Stops watching, closes the socket (if open) and frees `in`. Idempotent. */
void th_conn_close(th_conn_t *c);

/* ---- HTTP/1.1 client ---- */

typedef struct th_resp {
    int status;
    sh_buf_t head; /* status line and header lines, as received */
    sh_buf_t body;
} th_resp_t;

/* Takes one whole response off the front of `in`: 1 when one was taken, 0
 * when more bytes are needed, -1 when it is malformed. Bodies are delimited
 * by Content-Length (none for 1xx, 204 and 304 responses); a response
 * without one is whole only at eof. */
int th_http_parse(sh_buf_t *in, bool eof, th_resp_t *r);
/* Runs the loop until a whole response arrived on c. */
bool th_http_read(th_conn_t *c, th_resp_t *r, unsigned timeout_ms);
/* A response header's value (case-insensitive name) copied into out; NULL
 * when absent. With several, the first. */
const char *th_resp_header(const th_resp_t *r, const char *name, char *out, size_t outlen);
/* Number of times a header appears. */
int th_resp_header_count(const th_resp_t *r, const char *name);
void th_resp_release(th_resp_t *r);
/* One exchange on a fresh connection: sends raw (a whole request), reads
 * the response, closes. Returns the status (or -1 if none came). */
int th_http_exchange(th_env_t *env, const char *raw, size_t rawlen, th_resp_t *r);
/* Writes "METHOD target HTTP/1.1" with Host, the extra header lines
 * (each ending "\r\n", may be NULL), Content-Length when body is not NULL,
 * and the body. */
void th_http_send(th_conn_t *c, const char *method, const char *target, const char *headers,
                  const char *body, size_t bodylen);

/* ---- WebSocket client ---- */

/* Appends a client frame: masked with a fixed key unless masked is false
 * (for protocol-error tests). */
void th_ws_encode(sh_buf_t *out, uint8_t opcode, bool fin, const void *p, size_t n, bool masked);
/* Takes one server frame off the front of `in`: 1 with opcode/fin/payload
 * set (payload replaced), 0 when more bytes are needed, -1 when malformed
 * (including a masked server frame). */
int th_ws_decode(sh_buf_t *in, uint8_t *opcode, bool *fin, sh_buf_t *payload);
/* Runs the loop until a whole frame arrived on c. */
bool th_ws_read(th_conn_t *c, uint8_t *opcode, sh_buf_t *payload, unsigned timeout_ms);
/* Sends one masked client frame. */
void th_ws_send(th_conn_t *c, uint8_t opcode, const void *p, size_t n);
/* Sends a WebSocket upgrade request for target on c, with `after` written
 * in the same write right behind the request's headers (may be NULL), and
 * reads the response into r. True on "101" with the right
 * Sec-WebSocket-Accept; bytes after the response stay in c->in. */
bool th_ws_handshake(th_conn_t *c, const char *target, const void *after, size_t after_len,
                     th_resp_t *r);
/* The close code of a close frame payload (1005 when empty). */
unsigned th_ws_close_code(const sh_buf_t *payload);

#endif
