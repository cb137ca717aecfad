#include "transport/ws.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"
#include "transport/ws_frame.h"

#define READ_CHUNK     16384
#define READS_PER_WAKE 16 /* bound one peer's share of an iteration */
#define MAX_IOV        128

_Static_assert(SH_WS_MAX_SERVER_HEADER <= SH_MSG_HEAD_ROOM, "a frame header fits a message's head");

/* A queued frame: the message carries its own frame header in front of
 * its data (sh_msg_set_head), written once for all recipients, so a frame
 * is one contiguous span. */
typedef struct out_frame {
    sh_msg_t *m;
    size_t sent; /* bytes of header + payload written so far */
} out_frame_t;

/* Frames a connection queues inside itself (a power of two): a broadcast
 * with one frame for each of its recipients then allocates no ring, where
 * with rings only, all but the pool's 128 recipients of a fan-out to
 * 1,000 took one from malloc and freed it at the flush (_int_malloc and
 * _int_free were 13% of siohubd's user-space samples in the fan-out
 * shape). 32 bytes a connection. */
#define OUT_INLINE 2

typedef enum {
    WS_OPEN,
    WS_CLOSING, /* our close frame is queued or sent */
    WS_DEAD,    /* socket closed; waiting for the reap */
} ws_state_t;

/* Most connections are idle most of the time, so what an idle one holds
 * is kept small: no read buffer, no output ring, no close reason until
 * they are needed (each is allocated when used and freed when done). */
struct sh_ws_conn {
    sh_loop_t *loop;
    int fd;
    ws_state_t state;
    sh_io_t io;
    const sh_ws_handler_t *handler;
    void *owner;
    /* the options that matter after set-up (max_message is the reader's) */
    size_t output_limit;
    sh_ws_stats_t *stats;
    uint32_t close_linger;
    uint16_t close_code;
    bool destroyed; /* owner asked for no callback */
    bool close_received;
    bool reading_stopped;
    char *close_reason; /* NULL: none */
    /* input */
    sh_ws_reader_t reader;
    sh_buf_t rbuf;
    /* output: a ring of frames, out_inline until more are queued at once,
     * given back when drained */
    out_frame_t *out;
    uint32_t out_cap, out_head, out_count;
    size_t out_bytes;
    out_frame_t out_inline[OUT_INLINE];
    /* deferred work: the flush, and (one at a time) the bytes that came
     * with the handshake, then the reap */
    sh_defer_t flush_defer;
    sh_defer_t defer;
    sh_timer_t linger;
};

/* The reason to report ("" when none). */
static const char *close_reason(const sh_ws_conn_t *ws)
{
    return ws->close_reason ? ws->close_reason : "";
}

/* Records the code and reason on_close will report (at most 123 bytes of
 * reason, what a close frame can carry). */
static void set_close(sh_ws_conn_t *ws, uint16_t code, const char *reason, size_t len)
{
    ws->close_code = code;
    if (reason == ws->close_reason)
        return;
    free(ws->close_reason);
    ws->close_reason = NULL;
    if (reason && len)
        ws->close_reason = sh_strndup(reason, len < 123 ? len : 123);
}

static void flush_now(sh_ws_conn_t *ws);
static void process_input(sh_ws_conn_t *ws);

static inline out_frame_t *out_at(sh_ws_conn_t *ws, size_t i)
{
    return &ws->out[(ws->out_head + i) & (ws->out_cap - 1)];
}

/* Rings of RING_FIRST frames a connection drained, kept for the next one
 * to send: a user's burst of tokens fills a ring at each of its tabs and
 * the flush at the end of the iteration drains it, so without them every
 * burst paid a malloc per doubling (8, 16, 32) and the frees, per tab.
 * Bounded like msg.c's pool: at most RING_POOL_DEPTH (64 KiB); one loop
 * per process, so no lock. A ring that grew past RING_FIRST is freed. */
#define RING_FIRST      32
#define RING_POOL_DEPTH 128
static struct {
    out_frame_t *rings[RING_POOL_DEPTH];
    unsigned n;
} ring_pool;

static out_frame_t *ring_take(void)
{
    if (ring_pool.n)
        return ring_pool.rings[--ring_pool.n];
    return sh_malloc(RING_FIRST * sizeof(out_frame_t));
}

/* Takes a connection's ring back (its own inline one stays). */
static void ring_give(sh_ws_conn_t *ws, out_frame_t *ring, uint32_t cap)
{
    if (ring == ws->out_inline)
        return;
    if (cap == RING_FIRST && ring_pool.n < RING_POOL_DEPTH)
        ring_pool.rings[ring_pool.n++] = ring;
    else
        free(ring);
}

void sh_ws_ring_pool_drain(void)
{
    while (ring_pool.n)
        free(ring_pool.rings[--ring_pool.n]);
}

/* ---- ending ---- */

static void on_reap(sh_loop_t *loop, sh_defer_t *d)
{
    sh_ws_conn_t *ws = d->data;
    if (!ws->destroyed && ws->handler && ws->handler->on_close)
        ws->handler->on_close(ws, ws->close_code, close_reason(ws), ws->owner);
    sh_defer_cancel(loop, &ws->flush_defer);
    sh_timer_stop(loop, &ws->linger);
    while (ws->out_count) {
        sh_msg_unref(out_at(ws, 0)->m);
        ws->out_head = (ws->out_head + 1) & (ws->out_cap - 1);
        ws->out_count--;
    }
    ring_give(ws, ws->out, ws->out_cap);
    sh_ws_reader_release(&ws->reader);
    sh_buf_release(&ws->rbuf);
    free(ws->close_reason);
    free(ws);
}

/* Closes the socket now and schedules on_close + free from the loop. */
static void finish(sh_ws_conn_t *ws, uint16_t code, const char *reason)
{
    if (ws->state == WS_DEAD)
        return;
    if (ws->state == WS_OPEN || !ws->close_code)
        set_close(ws, code, reason, reason ? strlen(reason) : 0);
    ws->state = WS_DEAD;
    sh_io_stop(ws->loop, &ws->io);
    close(ws->fd);
    ws->fd = -1;
    sh_timer_stop(ws->loop, &ws->linger);
    sh_defer_cancel(ws->loop, &ws->flush_defer);
    sh_defer_cancel(ws->loop, &ws->defer); /* input not yet processed */
    sh_defer_schedule(ws->loop, &ws->defer, on_reap, ws);
}

static void on_linger(sh_loop_t *loop, sh_timer_t *t)
{
    sh_ws_conn_t *ws = t->data;
    finish(ws, ws->close_code, ws->close_reason);
}

/* ---- output ---- */

static void on_flush_defer(sh_loop_t *loop, sh_defer_t *d)
{
    flush_now(d->data);
}

void sh_ws_conn_prefetch(const sh_ws_conn_t *ws)
{
    __builtin_prefetch(&ws->state);
    __builtin_prefetch(&ws->output_limit);
    __builtin_prefetch(&ws->out_count);
    __builtin_prefetch(&ws->flush_defer);
}

static void schedule_flush(sh_ws_conn_t *ws)
{
    sh_defer_schedule(ws->loop, &ws->flush_defer, on_flush_defer, ws);
}

void sh_ws_conn_flush(sh_ws_conn_t *ws)
{
    if (ws->out_count) {
        sh_defer_cancel(ws->loop, &ws->flush_defer);
        flush_now(ws);
    }
}

static size_t frame_len(const out_frame_t *f)
{
    return f->m->head_len + f->m->len;
}

/* Gives m its frame header (once per message: a server frame's header
 * depends only on the opcode and the length) and queues it. */
static void push_frame(sh_ws_conn_t *ws, uint8_t opcode, sh_msg_t *m)
{
    if (!m->head_len || m->head_tag != opcode) {
        uint8_t hdr[SH_WS_MAX_SERVER_HEADER];
        size_t hlen = sh_ws_frame_header_encode(hdr, opcode, true, m->len);
        if (sh_msg_set_head(m, opcode, hdr, hlen) < 0) {
            /* Framed before as another opcode: this connection's copy. */
            sh_msg_t *own = sh_msg_new(m->data, m->len, m->binary);
            sh_msg_unref(m);
            m = own;
            sh_msg_set_head(m, opcode, hdr, hlen);
        }
    }
    if (ws->out_count == ws->out_cap) {
        bool inline_ring = ws->out == ws->out_inline;
        uint32_t cap = inline_ring ? RING_FIRST : ws->out_cap * 2;
        out_frame_t *ring = inline_ring ? ring_take() : sh_malloc(cap * sizeof(*ring));
        for (uint32_t i = 0; i < ws->out_count; i++)
            ring[i] = *out_at(ws, i);
        ring_give(ws, ws->out, ws->out_cap);
        ws->out = ring;
        ws->out_cap = cap;
        ws->out_head = 0;
    }
    out_frame_t *f = out_at(ws, ws->out_count);
    f->m = m;
    f->sent = 0;
    ws->out_count++;
    ws->out_bytes += frame_len(f);
    if (ws->stats)
        ws->stats->frames_out++;
    schedule_flush(ws);
}

static void queue_close_frame(sh_ws_conn_t *ws, uint16_t code, const char *reason)
{
    uint8_t body[125];
    size_t n = sh_ws_close_payload(body, code, reason);
    push_frame(ws, SH_WS_OP_CLOSE, sh_msg_new(body, n, true));
    ws->state = WS_CLOSING;
    set_close(ws, code ? code : SH_WS_CLOSE_NO_STATUS, reason, reason ? strlen(reason) : 0);
}

static void update_watch(sh_ws_conn_t *ws)
{
    unsigned ev = 0;
    if (!ws->reading_stopped)
        ev |= SH_IO_READ;
    if (ws->out_count)
        ev |= SH_IO_WRITE;
    if (ev != ws->io.events) {
        if (ev)
            sh_io_modify(ws->loop, &ws->io, ev);
        else
            sh_io_modify(ws->loop, &ws->io, 0);
    }
}

static void flush_now(sh_ws_conn_t *ws)
{
    if (ws->state == WS_DEAD)
        return;
    while (ws->out_count) {
        struct iovec iov[MAX_IOV];
        int n = 0;
        for (size_t i = 0; i < ws->out_count && n < MAX_IOV; i++) {
            out_frame_t *f = out_at(ws, i);
            iov[n].iov_base = (char *)sh_msg_framed(f->m) + f->sent;
            iov[n].iov_len = frame_len(f) - f->sent;
            n++;
        }
        /* One frame (a fan-out's usual flush) goes by send(): the kernel
         * then copies no msghdr and imports no iovec, ~2% of a fan-out
         * delivery's CPU (perf), which is what a bare send() loop, the
         * fan-out bar's floor, does not pay. Redis writes so too. */
        ssize_t w;
        if (n == 1) {
            w = send(ws->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
        } else {
            struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
            w = sendmsg(ws->fd, &mh, MSG_NOSIGNAL);
        }
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            finish(ws, 1006, strerror(errno));
            return;
        }
        if (ws->stats)
            ws->stats->bytes_out += (uint64_t)w;
        size_t left = (size_t)w;
        while (left && ws->out_count) {
            out_frame_t *f = out_at(ws, 0);
            size_t need = frame_len(f) - f->sent;
            if (left < need) {
                f->sent += left;
                ws->out_bytes -= left;
                left = 0;
                break;
            }
            left -= need;
            ws->out_bytes -= need;
            sh_msg_unref(f->m);
            ws->out_head = (ws->out_head + 1) & (ws->out_cap - 1);
            ws->out_count--;
        }
    }
    if (!ws->out_count && ws->out != ws->out_inline) {
        /* Drained: an idle connection keeps no ring; the pool does. */
        ring_give(ws, ws->out, ws->out_cap);
        ws->out = ws->out_inline;
        ws->out_cap = OUT_INLINE;
        ws->out_head = 0;
    }
    if (ws->state == WS_CLOSING && !ws->out_count) {
        /* Our close frame is out. If the peer's close already came the
         * handshake is done; else give it close_linger to answer. */
        if (ws->close_received) {
            finish(ws, ws->close_code, ws->close_reason);
            return;
        }
        if (!sh_timer_active(&ws->linger))
            sh_timer_start(ws->loop, &ws->linger, ws->close_linger, on_linger, ws);
    }
    update_watch(ws);
}

int sh_ws_conn_send(sh_ws_conn_t *ws, sh_msg_t *m)
{
    if (ws->state != WS_OPEN) {
        sh_msg_unref(m);
        return -EPIPE;
    }
    push_frame(ws, m->binary ? SH_WS_OP_BINARY : SH_WS_OP_TEXT, m);
    if (ws->output_limit && ws->out_bytes > ws->output_limit) {
        if (ws->stats)
            ws->stats->slow_dropped++;
        /* The session above says so, once a while (a mass drop would
         * flood the log); here the detail. */
        sh_debug("ws: fd %d: peer is not reading: %zu bytes queued, past the %zu byte limit; "
                 "dropping it",
                 ws->fd, ws->out_bytes, ws->output_limit);
        finish(ws, SH_WS_CLOSE_POLICY, "output queue limit");
        return -ENOBUFS;
    }
    return 0;
}

void sh_ws_conn_close(sh_ws_conn_t *ws, uint16_t code, const char *reason)
{
    if (ws->state != WS_OPEN)
        return;
    queue_close_frame(ws, code, reason);
}

void sh_ws_conn_destroy(sh_ws_conn_t *ws)
{
    ws->destroyed = true;
    finish(ws, SH_WS_CLOSE_GOING_AWAY, "destroyed");
}

void sh_ws_conn_set_owner(sh_ws_conn_t *ws, const sh_ws_handler_t *handler, void *owner)
{
    ws->handler = handler;
    ws->owner = owner;
}

size_t sh_ws_conn_queued(const sh_ws_conn_t *ws)
{
    return ws->out_bytes;
}

bool sh_ws_conn_closing(const sh_ws_conn_t *ws)
{
    return ws->state != WS_OPEN;
}

/* ---- input ---- */

static void protocol_error(sh_ws_conn_t *ws, uint16_t code, const char *reason)
{
    sh_debug("ws: fd %d: closing with %u: %s", ws->fd, (unsigned)code, reason);
    if (ws->handler && ws->handler->on_bad_input)
        ws->handler->on_bad_input(ws, code, reason, ws->owner);
    ws->reading_stopped = true;
    if (ws->state == WS_OPEN)
        queue_close_frame(ws, code, reason);
    else
        finish(ws, code, reason);
    update_watch(ws);
}

static void process_input(sh_ws_conn_t *ws)
{
    while (ws->state != WS_DEAD && !ws->close_received) {
        sh_ws_event_t ev;
        uint16_t code = 0;
        int rc = sh_ws_reader_next(&ws->reader, &ws->rbuf, &ev, &code);
        if (rc == -EAGAIN)
            return;
        if (rc < 0) {
            const char *why = rc == -EMSGSIZE ? "message too big"
                              : rc == -EILSEQ ? "invalid UTF-8"
                                              : "protocol error";
            protocol_error(ws, code, why);
            return;
        }
        if (ws->stats)
            ws->stats->frames_in++;
        switch (ev.type) {
        case SH_WS_EV_TEXT:
        case SH_WS_EV_BINARY:
            /* After our close frame, data is discarded (RFC 6455 §5.5.1). */
            if (ws->state == WS_OPEN && ws->handler && ws->handler->on_message)
                ws->handler->on_message(ws, ev.data, ev.len, ev.type == SH_WS_EV_BINARY, ws->owner);
            break;
        case SH_WS_EV_PING:
            if (ws->state == WS_OPEN)
                push_frame(ws, SH_WS_OP_PONG, sh_msg_new(ev.data, ev.len, true));
            break;
        case SH_WS_EV_PONG:
            break;
        case SH_WS_EV_CLOSE:
            ws->close_received = true;
            ws->reading_stopped = true;
            if (ws->state == WS_OPEN) {
                /* Echo the peer's code, then close once it is flushed. */
                uint16_t echo = ev.close_code == SH_WS_CLOSE_NO_STATUS ? 0 : ev.close_code;
                queue_close_frame(ws, echo, "");
                set_close(ws, ev.close_code, ev.data, ev.len);
            } else if (!ws->out_count) {
                finish(ws, ws->close_code, ws->close_reason);
                return;
            }
            update_watch(ws);
            return;
        }
    }
}

static void on_input_defer(sh_loop_t *loop, sh_defer_t *d)
{
    process_input(d->data);
}

/* A drained read buffer is freed, not kept: most WebSockets are idle most
 * of the time, and a kept READ_CHUNK buffer (32 KiB once rounded up) was
 * most of an idle connection's memory. Only a partial frame stays; nothing
 * points into a buffer with no readable bytes (events are borrowed only
 * during on_message). */
static void release_drained_input(sh_ws_conn_t *ws)
{
    if (!sh_buf_avail(&ws->rbuf))
        sh_buf_release(&ws->rbuf);
}

/* Where a connection that holds no input reads: the loop is one thread
 * and handles one socket at a time, so one buffer serves them all, and a
 * read that leaves nothing behind (the common case: whole frames) costs
 * no allocation. A 16 KiB malloc per read was no small cost either: a
 * request that large makes glibc consolidate its fast bins each time. */
static char shared_input[READ_CHUNK + 1];

/* Lends shared_input to ws when it holds no input of its own. */
static void borrow_shared_input(sh_ws_conn_t *ws)
{
    if (ws->rbuf.cap)
        return;
    ws->rbuf.data = shared_input;
    ws->rbuf.cap = sizeof(shared_input);
    ws->rbuf.off = ws->rbuf.len = 0;
}

/* Gives shared_input back, copying what is left of it (a partial frame,
 * or input left for later when reading stopped) into a buffer of ws's
 * own. */
static void return_shared_input(sh_ws_conn_t *ws)
{
    if (ws->rbuf.data != shared_input)
        return;
    const char *rest = sh_buf_peek(&ws->rbuf);
    size_t n = sh_buf_avail(&ws->rbuf);
    memset(&ws->rbuf, 0, sizeof(ws->rbuf));
    if (n)
        sh_buf_append(&ws->rbuf, rest, n);
}

static void on_io(sh_loop_t *loop, sh_io_t *io, unsigned events)
{
    sh_ws_conn_t *ws = io->data;
    if (events & SH_IO_WRITE)
        flush_now(ws);
    if (ws->state == WS_DEAD || !(events & (SH_IO_READ | SH_IO_ERROR)))
        return;
    if (ws->reading_stopped) {
        /* Only a hang-up matters now. */
        if (events & SH_IO_ERROR)
            finish(ws, ws->close_code ? ws->close_code : 1006, "connection lost");
        return;
    }
    for (int i = 0; i < READS_PER_WAKE; i++) {
        borrow_shared_input(ws);
        char *w = sh_buf_reserve(&ws->rbuf, READ_CHUNK);
        ssize_t n = read(ws->fd, w, READ_CHUNK);
        if (n > 0) {
            sh_buf_commit(&ws->rbuf, (size_t)n);
            if (ws->stats)
                ws->stats->bytes_in += (uint64_t)n;
            process_input(ws);
            return_shared_input(ws);
            if (ws->state == WS_DEAD || ws->reading_stopped)
                return;
            if ((size_t)n < READ_CHUNK)
                break;
            continue;
        }
        return_shared_input(ws);
        if (n == 0) {
            finish(ws, 1006, "connection closed by peer");
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            finish(ws, 1006, strerror(errno));
            return;
        }
        break;
    }
    release_drained_input(ws);
}

sh_ws_conn_t *sh_ws_conn_new(sh_loop_t *loop, int fd, const char *extra, size_t extra_len,
                             const sh_ws_options_t *opts, const sh_ws_handler_t *handler,
                             void *owner)
{
    sh_ws_conn_t *ws = sh_new0(sh_ws_conn_t);
    ws->loop = loop;
    ws->fd = fd;
    ws->output_limit = opts->output_limit;
    ws->stats = opts->stats;
    ws->close_linger = !opts->close_linger               ? 1000
                       : opts->close_linger > UINT32_MAX ? UINT32_MAX
                                                         : (uint32_t)opts->close_linger;
    ws->handler = handler;
    ws->owner = owner;
    ws->flush_defer.data = ws;
    ws->out = ws->out_inline;
    ws->out_cap = OUT_INLINE;
    sh_ws_reader_init(&ws->reader, opts->max_message, true);
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    if (sh_io_start(loop, &ws->io, fd, SH_IO_READ, on_io, ws) < 0) {
        finish(ws, 1006, "cannot watch socket");
        return ws;
    }
    if (extra_len) {
        sh_buf_append(&ws->rbuf, extra, extra_len);
        sh_defer_schedule(loop, &ws->defer, on_input_defer, ws);
    }
    return ws;
}
