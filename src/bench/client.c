/* bench/client.c — the bench client's common part: lifecycle, Engine.IO
 * and Socket.IO packets, the side connection (see client.h). */
#include "bench/client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/client_internal.h"
#include "bench/events.h"
#include "bench/util.h"

static const sb_client_transport_t *transport_of(const sb_client_cfg_t *cfg)
{
    if (cfg->protocol == SB_PROTO_RAW_WS)
        return &sb_client_websocket;
    switch (cfg->transport) {
    case SB_TRANSPORT_POLLING:
        return &sb_client_polling;
    case SB_TRANSPORT_SSE:
        return &sb_client_sse;
    case SB_TRANSPORT_WEBSOCKET:
        break;
    }
    return &sb_client_websocket;
}

void sb_client_init(sb_client_t *c, sb_loop_t *l, const sb_client_cfg_t *cfg,
                    const sb_target_t *target, uint32_t src, uint32_t id, void *owner)
{
    memset(c, 0, sizeof(*c));
    c->cfg = cfg;
    c->tp = transport_of(cfg);
    sb_conn_init(&c->conn, l, &c->tp->conn_ops, c);
    c->target = target;
    c->src = src;
    c->token = cfg->token;
    c->owner = owner;
    c->id = id;
    c->side_ack = -1;
}

void sb_client_open(sb_client_t *c)
{
    c->state = SB_CLIENT_CONNECTING;
    c->req = 0;
    c->want_pong = c->side_busy = c->reopen = c->leaving = false;
    c->side_ack = -1;
    memset(&c->chunk, 0, sizeof(c->chunk));
    /* An idle client keeps no big buffers (freed here, where nothing
     * points into them, not in a close that a callback may call). */
    if (c->text.cap > 4096)
        sb_buf_release(&c->text);
    sb_buf_reset(&c->text);
    sb_buf_reset(&c->side_q);
    c->sid[0] = '\0';
    c->t_open = sb_now_ns();
    sb_conn_open(&c->conn, &c->target->addr, c->src);
}

void sb_client_close(sb_client_t *c, bool reset)
{
    sb_conn_close(&c->conn, reset);
    if (c->side)
        sb_conn_close(c->side, reset);
    c->state = SB_CLIENT_CLOSED;
}

void sb_client_release(sb_client_t *c)
{
    sb_client_close(c, false);
    sb_conn_release(&c->conn);
    if (c->side) {
        sb_conn_release(c->side);
        free(c->side);
        c->side = NULL;
    }
    sb_buf_release(&c->text);
    sb_buf_release(&c->side_q);
}

bool sb_client_is_ready(const sb_client_t *c)
{
    return c->state == SB_CLIENT_READY;
}

void sb_client_fail(sb_client_t *c, const char *fmt, ...)
{
    char why[240];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    bool was_ready = c->state == SB_CLIENT_READY;
    sb_client_close(c, false);
    c->cfg->cbs->closed(c, was_ready, why);
}

void sb_client_set_ready(sb_client_t *c, uint64_t now)
{
    c->state = SB_CLIENT_READY;
    c->cfg->cbs->ready(c, now);
}

void sb_client_connect_packet(const sb_client_t *c, sb_buf_t *out)
{
    if (c->token)
        sb_buf_printf(out, "40{\"token\":\"%s\"}", c->token);
    else
        sb_buf_puts(out, "40");
}

void sb_client_event_packet(sb_buf_t *out, const char *name, const char *args, size_t alen,
                            int64_t ack_id)
{
    sb_buf_puts(out, "42");
    if (ack_id >= 0)
        sb_buf_printf(out, "%lld", (long long)ack_id);
    sb_buf_printf(out, "[\"%s\"%s", name, alen ? "," : "");
    sb_buf_append(out, args, alen);
    sb_buf_puts(out, "]");
}

/* A Socket.IO packet (the Engine.IO message's payload). */
static void sio_packet(sb_client_t *c, const char *p, size_t n, uint64_t now)
{
    if (!n) {
        sb_client_fail(c, "empty Socket.IO packet");
        return;
    }
    char type = p[0];
    p++;
    n--;
    if (n && p[0] == '/')
        return; /* another namespace: not ours */
    switch (type) {
    case '0':
        if (c->state == SB_CLIENT_JOINING)
            sb_client_set_ready(c, now);
        return;
    case '1':
        sb_client_fail(c, "the server disconnected the socket");
        return;
    case '4':
        sb_client_fail(c, "CONNECT refused: %.*s", (int)(n < 160 ? n : 160), p);
        return;
    case '2':
    case '3': {
        uint64_t id = 0;
        bool has_id = false;
        while (n && p[0] >= '0' && p[0] <= '9') {
            id = id * 10 + (uint64_t)(p[0] - '0');
            has_id = true;
            p++;
            n--;
        }
        if (type == '2') {
            const char *name, *args;
            size_t nlen, alen;
            if (!sb_event_split(p, n, &name, &nlen, &args, &alen)) {
                sb_client_fail(c, "malformed EVENT: %.*s", (int)(n < 160 ? n : 160), p);
                return;
            }
            c->cfg->cbs->message(c, name, nlen, args, alen, now);
        } else if (has_id && c->cfg->cbs->ack) {
            const char *args;
            size_t alen;
            if (!sb_event_array_body(p, n, &args, &alen)) {
                sb_client_fail(c, "malformed ACK");
                return;
            }
            c->cfg->cbs->ack(c, id, args, alen, now);
        }
        return;
    }
    default:
        return; /* binary events and acks: not ours */
    }
}

void sb_client_eio(sb_client_t *c, const char *p, size_t n, uint64_t now)
{
    if (!n) {
        sb_client_fail(c, "empty Engine.IO packet");
        return;
    }
    switch (p[0]) {
    case '0': {
        if (c->state != SB_CLIENT_OPENING) {
            sb_client_fail(c, "unexpected Engine.IO open packet");
            return;
        }
        if (!sb_event_sid(p, n, c->sid, sizeof(c->sid))) {
            sb_client_fail(c, "no usable sid in the Engine.IO open packet");
            return;
        }
        c->state = SB_CLIENT_JOINING;
        c->tp->opened(c);
        return;
    }
    case '1':
        sb_client_fail(c, "the server closed the Engine.IO session");
        return;
    case '2':
        c->tp->ping(c);
        return;
    case '3':
    case '6':
        return;
    case '4':
        sio_packet(c, p + 1, n - 1, now);
        return;
    case 'b':
        return; /* a binary attachment (polling): not ours */
    default:
        sb_client_fail(c, "unknown Engine.IO packet type '%c'", p[0]);
        return;
    }
}

int sb_client_emit(sb_client_t *c, const char *name, const char *args, size_t alen, int64_t ack_id)
{
    if (c->cfg->protocol != SB_PROTO_SOCKETIO)
        return -EINVAL;
    if (c->state != SB_CLIENT_READY)
        return -ENOTCONN;
    return c->tp->emit(c, name, args, alen, ack_id);
}

int sb_client_leave(sb_client_t *c)
{
    if (c->cfg->protocol != SB_PROTO_SOCKETIO || !c->tp->leave)
        return -EOPNOTSUPP;
    if (c->state != SB_CLIENT_READY)
        return -ENOTCONN;
    return c->tp->leave(c);
}

/* ---- the side connection: POSTs of polling and SSE clients ---- */

static bool side_answer(void *arg, const sb_http_head_t *h, const char *body, size_t blen,
                        uint64_t now)
{
    sb_client_t *c = arg;
    if (!c->side_busy) {
        sb_client_fail(c, "an HTTP response to no request");
        return false;
    }
    c->side_busy = false;
    bool open = !h->close;
    if (h->close)
        sb_conn_close(c->side, false); /* reopened by the next request */
    c->tp->side_answer(c, h, body, blen, now);
    return open && c->state != SB_CLIENT_CLOSED;
}

size_t sb_client_responses(sb_client_t *c, const char *p, size_t n, sb_http_response_cb fn,
                           uint64_t now)
{
    long used = sb_http_responses(p, n, fn, c, now);
    if (used < 0) {
        sb_client_fail(c, "not an HTTP response with a length");
        return n;
    }
    return (size_t)used;
}

static size_t side_data(sb_conn_t *conn, const char *p, size_t n, uint64_t now)
{
    return sb_client_responses(conn->owner, p, n, side_answer, now);
}

static void side_closed(sb_conn_t *conn, int err)
{
    sb_client_t *c = conn->owner;
    if (c->side_busy)
        sb_client_fail(c, "the POST connection closed: %s", err ? strerror(err) : "EOF");
    /* Idle: the server may close a keep-alive connection; the next
     * request reopens it. */
}

static const sb_conn_ops_t side_ops = {
    .data = side_data,
    .closed = side_closed,
};

sb_buf_t *sb_client_side_out(sb_client_t *c)
{
    if (!c->side) {
        c->side = sb_xcalloc(1, sizeof(*c->side));
        sb_conn_init(c->side, c->conn.loop, &side_ops, c);
    }
    return &c->side->out;
}

void sb_client_side_send(sb_client_t *c)
{
    c->side_busy = true;
    if (c->side->state == SB_CONN_CLOSED)
        sb_conn_open(c->side, &c->target->addr, c->src);
    else
        sb_conn_flush(c->side);
}
