/* bench/client_polling.c — the HTTP long-polling transport of the bench
 * client.
 *
 * The main connection carries one request at a time: the handshake GET,
 * the CONNECT POST, then GETs, with a POST "3" (pong) between two GETs
 * after a ping: an idle client holds one connection, as the old load
 * generator did. Emits go out on the side connection, the packets that
 * wait for the answer to the previous POST joined with \x1e in one
 * payload (as socket.io-client does).
 */
#include <errno.h>
#include <string.h>

#include "bench/client_internal.h"

enum { REQ_NONE, REQ_OPEN, REQ_CONNECT, REQ_GET, REQ_PONG, REQ_CLOSE };

static void poll_target(const sb_client_t *c, sb_buf_t *out)
{
    sb_buf_printf(out, "%s?EIO=4&transport=polling", c->cfg->path);
    if (c->sid[0])
        sb_buf_printf(out, "&sid=%s", c->sid);
}

/* Queues the next request on the main connection (written at once when
 * it is open, else when it comes up). */
static void poll_request(sb_client_t *c, int what)
{
    sb_buf_t *out = &c->conn.out;
    c->req = (uint8_t)what;
    sb_buf_puts(out, what == REQ_OPEN || what == REQ_GET ? "GET " : "POST ");
    poll_target(c, out);
    sb_buf_printf(out, " HTTP/1.1\r\nHost: %s\r\n", c->target->host);
    if (what == REQ_OPEN || what == REQ_GET) {
        sb_buf_puts(out, "\r\n");
    } else {
        sb_buf_t *body = &c->text;
        sb_buf_reset(body);
        if (what == REQ_PONG)
            sb_buf_puts(body, "3");
        else if (what == REQ_CLOSE)
            sb_buf_puts(body, "1");
        else
            sb_client_connect_packet(c, body);
        sb_buf_printf(out, "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: %zu\r\n\r\n",
                      sb_buf_avail(body));
        sb_buf_append(out, sb_buf_head(body), sb_buf_avail(body));
        sb_buf_reset(body);
    }
    sb_conn_flush(&c->conn);
}

static void poll_connected(sb_conn_t *conn, uint64_t now)
{
    sb_client_t *c = conn->owner;
    if (c->reopen) {
        c->reopen = false; /* the next request was queued before the reopen */
        return;
    }
    c->state = SB_CLIENT_OPENING;
    poll_request(c, REQ_OPEN);
}

/* The answer to the request in flight; false when the connection was
 * closed meanwhile (by the server's answer or by the owner). */
static bool poll_answer(void *arg, const sb_http_head_t *h, const char *body, size_t blen,
                        uint64_t now)
{
    sb_client_t *c = arg;
    int fd = c->conn.fd;
    if (h->status != 200) {
        sb_client_fail(c, "HTTP %d for a polling request: %.*s", h->status,
                       (int)(blen < 160 ? blen : 160), body);
        return false;
    }
    int next = REQ_GET;
    switch (c->req) {
    case REQ_OPEN:
        sb_client_eio(c, body, blen, now);
        next = REQ_CONNECT;
        if (c->conn.fd != fd)
            return false;
        break;
    case REQ_CONNECT:
    case REQ_PONG:
        break;
    case REQ_CLOSE:
        c->leaving = false;
        sb_client_close(c, true);
        if (c->cfg->cbs->left)
            c->cfg->cbs->left(c, now);
        return false;
    case REQ_GET: {
        const char *p = body, *end = body + blen;
        while (p < end && c->conn.fd == fd) {
            const char *sep = memchr(p, 0x1e, (size_t)(end - p));
            const char *e = sep ? sep : end;
            sb_client_eio(c, p, (size_t)(e - p), now);
            p = sep ? sep + 1 : end;
        }
        if (c->want_pong) {
            c->want_pong = false;
            next = REQ_PONG;
        }
        break;
    }
    default:
        sb_client_fail(c, "an HTTP response to no request");
        return false;
    }
    if (c->conn.fd != fd)
        return false;
    if (c->leaving)
        next = REQ_CLOSE;
    if (h->close) {
        /* The server ends keep-alive: the next request goes on a new
         * connection (opened after this batch of events). */
        sb_conn_close(&c->conn, false);
        c->reopen = true;
        poll_request(c, next);
        sb_conn_open(&c->conn, &c->target->addr, c->src);
        return false;
    }
    poll_request(c, next);
    return true;
}

static size_t poll_data(sb_conn_t *conn, const char *p, size_t n, uint64_t now)
{
    return sb_client_responses(conn->owner, p, n, poll_answer, now);
}

static void poll_closed(sb_conn_t *conn, int err)
{
    sb_client_t *c = conn->owner;
    if (c->state == SB_CLIENT_CONNECTING || c->reopen)
        sb_client_fail(c, "connect: %s", strerror(err ? err : ECONNRESET));
    else
        sb_client_fail(c, "connection closed by the server%s%s", err ? ": " : "",
                       err ? strerror(err) : "");
}

static void poll_opened(sb_client_t *c)
{
    /* CONNECT goes out as the next request (poll_answer). */
}

static void poll_ping(sb_client_t *c)
{
    c->want_pong = true;
}

static int poll_leave(sb_client_t *c)
{
    c->leaving = true;
    return 0;
}

/* POSTs the packets that wait. */
static void poll_side_flush(sb_client_t *c)
{
    if (c->side_busy || !sb_buf_avail(&c->side_q))
        return;
    sb_buf_t *out = sb_client_side_out(c);
    sb_buf_puts(out, "POST ");
    poll_target(c, out);
    sb_buf_printf(out,
                  " HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain;charset=UTF-8\r\n"
                  "Content-Length: %zu\r\n\r\n",
                  c->target->host, sb_buf_avail(&c->side_q));
    sb_buf_append(out, sb_buf_head(&c->side_q), sb_buf_avail(&c->side_q));
    sb_buf_reset(&c->side_q);
    sb_client_side_send(c);
}

static int poll_emit(sb_client_t *c, const char *name, const char *args, size_t alen,
                     int64_t ack_id)
{
    if (sb_buf_avail(&c->side_q))
        sb_buf_append(&c->side_q, "\x1e", 1);
    sb_client_event_packet(&c->side_q, name, args, alen, ack_id);
    poll_side_flush(c);
    return 0;
}

static void poll_side_answer(sb_client_t *c, const sb_http_head_t *h, const char *body, size_t blen,
                             uint64_t now)
{
    if (h->status != 200) {
        sb_client_fail(c, "HTTP %d for a polling POST: %.*s", h->status,
                       (int)(blen < 160 ? blen : 160), body);
        return;
    }
    poll_side_flush(c);
}

const sb_client_transport_t sb_client_polling = {
    .name = "polling",
    .conn_ops = {.connected = poll_connected, .data = poll_data, .closed = poll_closed},
    .opened = poll_opened,
    .ping = poll_ping,
    .emit = poll_emit,
    .leave = poll_leave,
    .side_answer = poll_side_answer,
};
