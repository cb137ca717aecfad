/* bench/client_ws.c — the WebSocket transport of the bench client, for
 * Socket.IO (Engine.IO packets in text frames) and raw-ws (each text
 * frame is one message). */
#include <errno.h>
#include <string.h>

#include "bench/client_internal.h"
#include "bench/util.h"
#include "bench/ws.h"

static void ws_send(sb_client_t *c, unsigned opcode, const char *p, size_t n)
{
    sb_ws_frame(&c->conn.out, opcode, p, n, (uint32_t)sb_loop_rand(c->conn.loop));
    sb_conn_flush(&c->conn);
}

static void ws_connected(sb_conn_t *conn, uint64_t now)
{
    sb_client_t *c = conn->owner;
    sb_loop_t *l = conn->loop;
    sb_buf_t target = {0};
    if (c->cfg->protocol == SB_PROTO_RAW_WS)
        sb_buf_puts(&target, c->cfg->path);
    else
        sb_buf_printf(&target, "%s?EIO=4&transport=websocket", c->cfg->path);
    sb_buf_append(&target, "", 1);
    /* The expected Sec-WebSocket-Accept waits in sid until the 101. */
    sb_ws_request(&conn->out, sb_buf_head(&target), c->target->host, sb_loop_rand(l),
                  sb_loop_rand(l), c->sid);
    sb_buf_release(&target);
    c->state = SB_CLIENT_UPGRADING;
    sb_conn_flush(conn);
}

static size_t ws_upgrade(sb_client_t *c, const char *p, size_t n, uint64_t now)
{
    sb_http_head_t h;
    int rc = sb_http_parse_head(p, n, &h);
    if (rc == -EAGAIN)
        return 0;
    if (rc < 0 || h.status != 101) {
        sb_client_fail(c, "WebSocket upgrade refused (HTTP %d)", rc < 0 ? 0 : h.status);
        return n;
    }
    if (h.accept_len != SB_WS_ACCEPT_LEN || memcmp(h.accept, c->sid, SB_WS_ACCEPT_LEN)) {
        sb_client_fail(c, "wrong Sec-WebSocket-Accept");
        return n;
    }
    c->sid[0] = '\0';
    if (c->cfg->protocol == SB_PROTO_RAW_WS)
        sb_client_set_ready(c, now);
    else
        c->state = SB_CLIENT_OPENING;
    return h.head_len;
}

static size_t ws_data(sb_conn_t *conn, const char *p, size_t n, uint64_t now)
{
    sb_client_t *c = conn->owner;
    int fd = conn->fd;
    size_t used = 0;
    if (c->state == SB_CLIENT_UPGRADING) {
        used = ws_upgrade(c, p, n, now);
        if (!used || conn->fd != fd)
            return used;
    }
    bool raw = c->cfg->protocol == SB_PROTO_RAW_WS;
    while (used < n) {
        sb_ws_frame_t f;
        const char *why = NULL;
        int rc = sb_ws_parse(p + used, n - used, &f, &why);
        if (rc == -EAGAIN)
            break;
        if (rc < 0) {
            sb_client_fail(c, "bad frame: %s", why);
            return n;
        }
        used += f.size;
        if (!f.fin || f.opcode == 0) {
            sb_client_fail(c, "fragmented frames are not supported");
            return n;
        }
        switch (f.opcode) {
        case SB_WS_TEXT:
            if (raw)
                c->cfg->cbs->message(c, NULL, 0, f.payload, f.len, now);
            else
                sb_client_eio(c, f.payload, f.len, now);
            break;
        case SB_WS_BINARY:
            break; /* binary attachments: not ours */
        case SB_WS_CLOSE:
            sb_client_fail(
                c, "the server sent a close frame (%u)",
                f.len >= 2 ? ((unsigned)(uint8_t)f.payload[0] << 8) | (uint8_t)f.payload[1] : 0u);
            return n;
        case SB_WS_PING:
            ws_send(c, SB_WS_PONG, f.payload, f.len);
            break;
        case SB_WS_PONG:
            break;
        default:
            sb_client_fail(c, "unknown opcode %u", f.opcode);
            return n;
        }
        if (conn->fd != fd)
            return n; /* a callback closed or reopened the client */
    }
    return used;
}

static void ws_closed(sb_conn_t *conn, int err)
{
    sb_client_t *c = conn->owner;
    if (c->state == SB_CLIENT_CONNECTING)
        sb_client_fail(c, "connect: %s", strerror(err ? err : ECONNRESET));
    else
        sb_client_fail(c, "connection closed by the server%s%s", err ? ": " : "",
                       err ? strerror(err) : "");
}

static void ws_opened(sb_client_t *c)
{
    sb_buf_t *pkt = &c->text; /* unused by WebSocket clients otherwise */
    sb_buf_reset(pkt);
    sb_client_connect_packet(c, pkt);
    ws_send(c, SB_WS_TEXT, sb_buf_head(pkt), sb_buf_avail(pkt));
    sb_buf_reset(pkt);
}

static void ws_ping(sb_client_t *c)
{
    ws_send(c, SB_WS_TEXT, "3", 1);
}

static int ws_emit(sb_client_t *c, const char *name, const char *args, size_t alen, int64_t ack_id)
{
    /* One copy through a reused buffer: no allocation per emit once warm. */
    sb_buf_t *pkt = &c->text;
    sb_buf_reset(pkt);
    sb_client_event_packet(pkt, name, args, alen, ack_id);
    ws_send(c, SB_WS_TEXT, sb_buf_head(pkt), sb_buf_avail(pkt));
    sb_buf_reset(pkt);
    return 0;
}

const sb_client_transport_t sb_client_websocket = {
    .name = "websocket",
    .conn_ops = {.connected = ws_connected, .data = ws_data, .closed = ws_closed},
    .opened = ws_opened,
    .ping = ws_ping,
    .emit = ws_emit,
};
