/* bench/client_sse.c — the SSE transport of the bench client, for
 * siohubd's Socket.IO-over-SSE endpoint (GET <path>sse with a Bearer
 * token; see siohubd's src/socketio/sse.h for the wire format):
 *
 *   event: connect\ndata: {"sid":"S"}\n\n      -> ready
 *   event: NAME\ndata: [args]\n\n              -> an event
 *   event: disconnect | connect_error | reset -> closed
 *
 * Emits are POSTs of {"event","args","ack"} to <path>sse/<sid> on the side
 * connection, one at a time; an ack comes back in the POST's answer.
 *
 * raw-sse: a plain EventSource subscriber of <sub-path> (nchan, the floor
 * server): ready at the stream's 200, and the data of every event (named
 * or not) is one message; comments and id/retry lines are skipped.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "bench/client_internal.h"
#include "bench/events.h"

enum { STREAM_CHUNKED = 1, STREAM_RAW = 2 };

static bool sse_raw(const sb_client_t *c)
{
    return c->cfg->protocol == SB_PROTO_RAW_SSE;
}

static void sse_connected(sb_conn_t *conn, uint64_t now)
{
    sb_client_t *c = conn->owner;
    sb_buf_printf(&conn->out,
                  "GET %s%s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n"
                  "Cache-Control: no-cache\r\n",
                  c->cfg->path, sse_raw(c) ? "" : "sse", c->target->host);
    if (c->token)
        sb_buf_printf(&conn->out, "Authorization: Bearer %s\r\n", c->token);
    sb_buf_puts(&conn->out, "\r\n");
    c->state = SB_CLIENT_UPGRADING;
    sb_conn_flush(conn);
}

static void sse_event(sb_client_t *c, const char *p, size_t n, uint64_t now)
{
    const char *name = "message", *data = "";
    size_t nlen = 7, dlen = 0;
    sb_sse_field(p, n, "event", &name, &nlen);
    if (!sb_sse_field(p, n, "data", &data, &dlen))
        return; /* retry:, comments: nothing to dispatch */
    if (sse_raw(c)) {
        c->cfg->cbs->message(c, NULL, 0, data, dlen, now);
        return;
    }
    if (nlen == 7 && !memcmp(name, "connect", 7)) {
        if (c->state != SB_CLIENT_JOINING || !sb_event_sid(data, dlen, c->sid, sizeof(c->sid))) {
            sb_client_fail(c, "bad SSE connect event: %.*s", (int)(dlen < 160 ? dlen : 160), data);
            return;
        }
        sb_client_set_ready(c, now);
        return;
    }
    if ((nlen == 10 && !memcmp(name, "disconnect", 10)) ||
        (nlen == 13 && !memcmp(name, "connect_error", 13)) ||
        (nlen == 5 && !memcmp(name, "reset", 5))) {
        sb_client_fail(c, "SSE event %.*s: %.*s", (int)nlen, name, (int)(dlen < 160 ? dlen : 160),
                       data);
        return;
    }
    const char *args;
    size_t alen;
    if (!sb_event_array_body(data, dlen, &args, &alen)) {
        args = data;
        alen = dlen;
    }
    c->cfg->cbs->message(c, name, nlen, args, alen, now);
}

/* Dispatches the whole events in c->text. */
static void sse_events(sb_client_t *c, int fd, uint64_t now)
{
    sb_buf_t *t = &c->text;
    while (c->conn.fd == fd) {
        const char *p = sb_buf_head(t);
        size_t n = sb_buf_avail(t);
        const char *e = n >= 2 ? memmem(p, n, "\n\n", 2) : NULL;
        if (!e)
            return;
        sb_buf_consume(t, (size_t)(e - p) + 2);
        /* consume() never moves bytes: p stays valid until the next append. */
        sse_event(c, p, (size_t)(e - p), now);
    }
}

static size_t sse_data(sb_conn_t *conn, const char *p, size_t n, uint64_t now)
{
    sb_client_t *c = conn->owner;
    int fd = conn->fd;
    size_t used = 0;
    if (c->state == SB_CLIENT_UPGRADING) {
        sb_http_head_t h;
        int rc = sb_http_parse_head(p, n, &h);
        if (rc == -EAGAIN)
            return 0;
        if (rc < 0 || h.status != 200) {
            sb_client_fail(c, "SSE stream refused (HTTP %d): %.*s", rc < 0 ? 0 : h.status,
                           (int)(n < 200 ? n : 200), p);
            return n;
        }
        c->req = h.chunked ? STREAM_CHUNKED : STREAM_RAW;
        c->state = SB_CLIENT_JOINING;
        used = h.head_len;
        if (sse_raw(c)) {
            sb_client_set_ready(c, now); /* no connect event: the 200 is all */
            if (conn->fd != fd)
                return n;
        }
    }
    if (c->req == STREAM_CHUNKED) {
        size_t u = 0;
        int rc = sb_chunked_feed(&c->chunk, p + used, n - used, &u, &c->text);
        if (rc != 0) {
            sb_client_fail(c, rc < 0 ? "bad chunked encoding" : "the SSE stream ended");
            return n;
        }
    } else {
        sb_buf_append(&c->text, p + used, n - used);
    }
    sse_events(c, fd, now);
    if (conn->fd == fd && !sb_buf_avail(&c->text) && c->text.cap > 16384)
        sb_buf_release(&c->text);
    return n;
}

static void sse_closed(sb_conn_t *conn, int err)
{
    sb_client_t *c = conn->owner;
    if (c->state == SB_CLIENT_CONNECTING)
        sb_client_fail(c, "connect: %s", strerror(err ? err : ECONNRESET));
    else
        sb_client_fail(c, "the SSE stream closed%s%s", err ? ": " : "", err ? strerror(err) : "");
}

static void sse_opened(sb_client_t *c)
{
    /* SSE has no Engine.IO open packet. */
}

static void sse_ping(sb_client_t *c)
{
    /* Nor pings: the stream's comments keep it alive. */
}

/* Each waiting POST in side_q: its ack id (int64), its body length
 * (uint32), its body. */
static void sse_side_flush(sb_client_t *c)
{
    sb_buf_t *q = &c->side_q;
    if (c->side_busy || sb_buf_avail(q) < 12)
        return;
    int64_t ack;
    uint32_t len;
    memcpy(&ack, sb_buf_head(q), 8);
    memcpy(&len, sb_buf_head(q) + 8, 4);
    sb_buf_t *out = sb_client_side_out(c);
    sb_buf_printf(out,
                  "POST %ssse/%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                  "Content-Length: %u\r\n",
                  c->cfg->path, c->sid, c->target->host, len);
    if (c->token)
        sb_buf_printf(out, "Authorization: Bearer %s\r\n", c->token);
    sb_buf_puts(out, "\r\n");
    sb_buf_append(out, sb_buf_head(q) + 12, len);
    sb_buf_consume(q, 12 + (size_t)len);
    c->side_ack = ack;
    sb_client_side_send(c);
}

static int sse_emit(sb_client_t *c, const char *name, const char *args, size_t alen, int64_t ack_id)
{
    sb_buf_t *q = &c->side_q;
    size_t at = q->len;
    char hdr[12] = {0};
    sb_buf_append(q, hdr, sizeof(hdr));
    size_t body = q->len;
    sb_buf_printf(q, "{\"event\":\"%s\",\"args\":[", name);
    sb_buf_append(q, args, alen);
    sb_buf_printf(q, "],\"ack\":%s}", ack_id >= 0 ? "true" : "false");
    uint32_t len = (uint32_t)(q->len - body);
    memcpy(q->data + at, &ack_id, 8);
    memcpy(q->data + at + 8, &len, 4);
    sse_side_flush(c);
    return 0;
}

static void sse_side_answer(sb_client_t *c, const sb_http_head_t *h, const char *body, size_t blen,
                            uint64_t now)
{
    int64_t ack = c->side_ack;
    c->side_ack = -1;
    if (h->status != 200 && h->status != 202) {
        sb_client_fail(c, "HTTP %d for an SSE POST: %.*s", h->status,
                       (int)(blen < 160 ? blen : 160), body);
        return;
    }
    int fd = c->conn.fd;
    if (ack >= 0 && c->cfg->cbs->ack) {
        const char *args;
        size_t alen;
        if (!sb_event_array_body(body, blen, &args, &alen)) {
            sb_client_fail(c, "the ack of an SSE POST is not an array");
            return;
        }
        c->cfg->cbs->ack(c, (uint64_t)ack, args, alen, now);
    }
    if (c->conn.fd == fd)
        sse_side_flush(c);
}

const sb_client_transport_t sb_client_sse = {
    .name = "sse",
    .conn_ops = {.connected = sse_connected, .data = sse_data, .closed = sse_closed},
    .opened = sse_opened,
    .ping = sse_ping,
    .emit = sse_emit,
    .side_answer = sse_side_answer,
};
