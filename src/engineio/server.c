#include "engineio/server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/list.h"
#include "core/log.h"
#include "core/map.h"
#include "core/msgq.h"
#include "core/random.h"
#include "engineio/packet.h"
#include "transport/ws_frame.h"

/* Node's engine.io error codes and messages (Server.errors). */
enum {
    ERR_UNKNOWN_TRANSPORT = 0,
    ERR_UNKNOWN_SID = 1,
    ERR_BAD_HANDSHAKE_METHOD = 2,
    ERR_BAD_REQUEST = 3,
    ERR_FORBIDDEN = 4,
    ERR_UNSUPPORTED_PROTOCOL_VERSION = 5,
};
static const char *const error_messages[] = {
    "Transport unknown", "Session ID unknown", "Bad handshake method",
    "Bad request",       "Forbidden",          "Unsupported protocol version",
};

static const char record_separator[] = "\x1e";

/* Packets per polling response at most. python-engineio (Debian's 4.3.4,
 * and later ones by default) refuses a payload of more than 16 packets and
 * drops the session; the client polls again at once for the rest. This
 * also bounds the iovec handed to libmicrohttpd. */
#define MAX_POLL_PACKETS 16

typedef struct eio_ws eio_ws_t;

typedef enum { SESSION_OPEN, SESSION_CLOSED } session_state_t;

/* What only a session that began on polling needs (it keeps it after an
 * upgrade): sessions that begin on WebSocket or SSE, most idle ones, have
 * no use for it. */
typedef struct eio_polling {
    sh_msgq_t queue;            /* polling output, and output held during an upgrade */
    sh_msgq_t ctrl;             /* polling ping/pong/noop: they overtake a backlog */
    sh_http_req_t *poll;        /* the held GET, if any */
    sh_http_req_t *second_look; /* a GET that came during a probe, see below */
    sh_timer_t look_timer;
    eio_ws_t *probe; /* a WebSocket being probed for an upgrade */
    bool probed;     /* "2probe" answered: polling now only gets noops */
} eio_polling_t;

/* How a session parts from its client. */
typedef enum {
    PART_DROP,     /* client closed or error: queue dropped, a held poll gets a noop */
    PART_CLOSE,    /* server close: queue delivered, then a close packet (on
                    * polling in a later response: see linger_start) */
    PART_SHUTDOWN, /* server going away: queue delivered, then a noop, so
                    * clients reconnect (python-socketio 5.7 does not after
                    * a close packet; socket.io-client not after DISCONNECT) */
} parting_t;

struct sh_eio_session {
    sh_list_t link; /* srv->all: open and ending sessions */
    sh_eio_server_t *srv;
    char sid[SH_ID_LEN + 1];
    unsigned refs; /* 1 while open, +1 while a GET is held */
    session_state_t state;
    int transport;
    void *data;
    eio_polling_t *pl; /* NULL unless the session began on polling */
    eio_ws_t *ws;      /* the WebSocket transport, once on it */
    bool notify_close; /* on_close owed to the layer above */
    parting_t parting;
    const char *close_reason;
    /* The next ping, then the deadline of its pong; on SSE the next
     * keep-alive comment. */
    sh_timer_t heartbeat;
    /* The one deadline of the transport's current phase, never two at
     * once: the upgrade probe's (polling, open), the wait for the close
     * packet to be collected (polling, closed: lingering), or the grace
     * period of an SSE session without a stream. */
    sh_timer_t phase_timer;
    sh_defer_t end_defer;
    /* Closed by the server over polling with packets or the close packet
     * still owed to the client: reachable through srv->closing. */
    bool lingering;
    /* SSE: the events and the stream (transport/sse.h). */
    sh_sse_t *sse;
    char peer[]; /* the client's address, for logs */
};

/* The owner of one WebSocket connection: the server tracks all of them so
 * a shutdown can reach those still closing after their session ended. */
struct eio_ws {
    sh_list_t link;
    sh_eio_server_t *srv;
    sh_ws_conn_t *conn;
    sh_eio_session_t *session; /* NULL once detached */
};

struct sh_eio_server {
    sh_loop_t *loop;
    sh_http_t *http;
    sh_eio_options_t opts;
    char *path;
    char **origins; /* NULL: any */
    sh_eio_handler_t handler;
    void *data;
    sh_map_t sessions; /* sid -> session (open ones only) */
    sh_map_t closing;  /* sid -> lingering session (closed, see linger_start) */
    bool closing_all;  /* shutting down: nothing lingers */
    sh_list_t all;     /* every session not yet freed */
    sh_list_t ws_conns;
    size_t ending; /* sessions closed but not yet freed */
    sh_eio_stats_t stats;
    sh_ws_options_t ws_opts;
    /* Refused requests and broken payloads, logged at info level at most
     * once per kind a while (core/log.h): [error code], then payloads over
     * the limit and malformed ones. */
    sh_log_limit_t refused_log[6];
    sh_log_limit_t too_large_log, malformed_log, ws_error_log;
    /* Sessions dropped for not reading, at warning level the same way: a
     * stalled proxy in front of thousands of clients drops them all at
     * once, and the log needs to say so once, not thousands of times. */
    sh_log_limit_t slow_log;
};

static const sh_ws_handler_t ws_handler;
static void session_end(sh_eio_session_t *s, const char *reason, parting_t parting);
static void session_flush(sh_eio_session_t *s);

/* ---- small helpers ---- */

static void polling_free(eio_polling_t *pl)
{
    if (!pl)
        return;
    sh_msgq_release(&pl->queue);
    sh_msgq_release(&pl->ctrl);
    free(pl);
}

static void session_unref(sh_eio_session_t *s)
{
    if (--s->refs > 0)
        return;
    sh_list_remove(&s->link);
    polling_free(s->pl);
    sh_sse_free(s->sse);
    s->srv->ending--;
    free(s);
}

static sh_msg_t *open_packet(sh_eio_server_t *srv, const char *sid, bool offer_upgrade)
{
    char body[256];
    bool ws_ok = offer_upgrade && (srv->opts.transports & SH_EIO_TRANSPORT_WEBSOCKET);
    int n = snprintf(body, sizeof(body),
                     "{\"sid\":\"%s\",\"upgrades\":[%s],\"pingInterval\":%llu,"
                     "\"pingTimeout\":%llu,\"maxPayload\":%zu}",
                     sid, ws_ok ? "\"websocket\"" : "", (unsigned long long)srv->opts.ping_interval,
                     (unsigned long long)srv->opts.ping_timeout, srv->opts.max_payload);
    return sh_eio_msg_text(SH_EIO_OPEN, body, (size_t)n);
}

static bool origin_allowed(const sh_eio_server_t *srv, const char *origin)
{
    if (!origin || !srv->origins)
        return true;
    for (char **o = srv->origins; *o; o++)
        if (!strcmp(*o, origin))
            return true;
    return false;
}

/* CORS for browsers on another origin: reflect an allowed Origin, with
 * credentials (the token cookie), as python-engineio does. */
static void add_cors_headers(sh_http_req_t *req)
{
    const char *origin = sh_http_req_header(req, "Origin");
    if (!origin)
        return;
    sh_http_req_add_header(req, "Access-Control-Allow-Origin", origin);
    sh_http_req_add_header(req, "Access-Control-Allow-Credentials", "true");
    sh_http_req_add_header(req, "Vary", "Origin");
}

/* Long-poll answers must reach the client now: no proxy buffering, no
 * caching (nginx honours X-Accel-Buffering). */
static void add_no_buffer_headers(sh_http_req_t *req)
{
    sh_http_req_add_header(req, "Cache-Control", "no-store");
    sh_http_req_add_header(req, "X-Accel-Buffering", "no");
}

static unsigned error_status(int code)
{
    return code == ERR_FORBIDDEN ? 403 : 400;
}

/* Why, for the log, is what the client did: the message alone rarely
 * tells an operator which proxy or client is at fault. */
static void log_refusal(sh_eio_server_t *srv, sh_http_req_t *req, int code, const char *why)
{
    sh_log_limited(&srv->refused_log[code], SH_LOG_INFO, "eio: refused %s from %s: %s (%u %s)",
                   sh_http_req_method_name(req), sh_http_req_peer(req), why, error_status(code),
                   error_messages[code]);
}

/* Refuses a request with Node's error code and message, logged. */
static void respond_error(sh_eio_server_t *srv, sh_http_req_t *req, int code, const char *why_fmt,
                          ...) __attribute__((format(printf, 4, 5)));
static void respond_error(sh_eio_server_t *srv, sh_http_req_t *req, int code, const char *why_fmt,
                          ...)
{
    char why[200];
    va_list ap;
    va_start(ap, why_fmt);
    vsnprintf(why, sizeof(why), why_fmt, ap);
    va_end(ap);
    log_refusal(srv, req, code, why);
    add_cors_headers(req);
    sh_http_respond_error_json(req, error_status(code), code, error_messages[code]);
}

/* ---- heartbeat ---- */

static void on_pong_timeout(sh_loop_t *loop, sh_timer_t *t)
{
    sh_eio_session_t *s = t->data;
    sh_debug("eio %s: ping timeout", s->sid);
    session_end(s, "ping timeout", PART_DROP);
}

static void on_ping_due(sh_loop_t *loop, sh_timer_t *t)
{
    sh_eio_session_t *s = t->data;
    if (s->sse) {
        /* EventSource cannot pong: a comment keeps proxies from timing the
         * stream out and finds a dead peer at the write. */
        sh_sse_keepalive(s->sse);
        sh_timer_start(loop, &s->heartbeat, s->srv->opts.ping_interval, on_ping_due, s);
        return;
    }
    sh_eio_send(s, sh_eio_msg_text(SH_EIO_PING, NULL, 0));
    /* The ping itself may pass the output limit and end the session, which
     * is then freed from the loop: no timer may be armed on it. The
     * deadline counts from when the ping was due, not when this callback
     * ran: the client gets exactly ping_interval + ping_timeout, however
     * busy the loop. */
    if (s->state == SESSION_OPEN)
        sh_timer_start_at(loop, &s->heartbeat, t->due + s->srv->opts.ping_timeout, on_pong_timeout,
                          s);
}

/* The next ping after ping_interval (any pong deadline is over). */
static void schedule_ping(sh_eio_session_t *s)
{
    sh_timer_start(s->srv->loop, &s->heartbeat, s->srv->opts.ping_interval, on_ping_due, s);
}

/* ---- sessions ---- */

static sh_eio_session_t *session_new(sh_eio_server_t *srv, int transport, const char *peer)
{
    if (!peer)
        peer = "?";
    size_t peer_size = strlen(peer) + 1;
    sh_eio_session_t *s = sh_calloc(1, sizeof(*s) + peer_size);
    memcpy(s->peer, peer, peer_size);
    s->srv = srv;
    s->refs = 1;
    s->transport = transport;
    if (transport == SH_EIO_TRANSPORT_POLLING)
        s->pl = sh_new0(eio_polling_t);
    sh_random_id(s->sid);
    sh_list_insert_tail(&srv->all, &s->link);
    sh_map_set(&srv->sessions, s->sid, s);
    srv->stats.sessions_opened++;
    if (transport == SH_EIO_TRANSPORT_POLLING)
        srv->stats.polling++;
    else if (transport == SH_EIO_TRANSPORT_SSE)
        srv->stats.sse++;
    else
        srv->stats.websocket++;
    s->notify_close = true;
    return s;
}

static void on_end_defer(sh_loop_t *loop, sh_defer_t *d)
{
    sh_eio_session_t *s = d->data;
    if (s->notify_close && s->srv->handler.on_close) {
        s->notify_close = false;
        s->srv->handler.on_close(s, s->close_reason, s->srv->data);
    }
    session_unref(s);
}

static void detach_ws(eio_ws_t *w, uint16_t code, const char *reason)
{
    if (!w)
        return;
    w->session = NULL;
    sh_ws_conn_close(w->conn, code, reason);
}

/* ---- lingering after a server close (polling) ----
 *
 * Node's engine.io closes a polling session only once its buffer has gone
 * out, and sends the close packet in a later response: so a Socket.IO
 * DISCONNECT and the close packet never share a payload. Clients depend on
 * it: socket.io-client handles the packets of one payload before the
 * Socket.IO packets they carry, so DISCONNECT + close in one answer reads
 * as a lost transport ("transport close", the reconnection logic starts)
 * and only then as the server's disconnect; and when no GET was held at
 * the close, the next one must still find the session to collect its last
 * packets instead of "Session ID unknown". A session closed by the server
 * over polling therefore stays reachable by sid (srv->closing, a reference
 * of its own) until a GET has taken the last queued packets and then the
 * close packet, the client sent its own close, or ping_interval +
 * ping_timeout passed (the time a client has to poll anyway). */

static void linger_end(sh_eio_session_t *s)
{
    if (!s->lingering)
        return;
    s->lingering = false;
    sh_timer_stop(s->srv->loop, &s->phase_timer);
    sh_map_del(&s->srv->closing, s->sid);
    session_unref(s); /* may free s */
}

static void on_linger_timeout(sh_loop_t *loop, sh_timer_t *t)
{
    sh_eio_session_t *s = t->data;
    sh_debug("eio %s: the client never collected the close packet", s->sid);
    linger_end(s);
}

static void linger_start(sh_eio_session_t *s)
{
    sh_eio_server_t *srv = s->srv;
    if (s->lingering || srv->closing_all)
        return;
    s->lingering = true;
    s->refs++;
    sh_map_set(&srv->closing, s->sid, s);
    sh_timer_start(srv->loop, &s->phase_timer, srv->opts.ping_interval + srv->opts.ping_timeout,
                   on_linger_timeout, s);
}

/* Ends a session once: it leaves the sid table at once (later requests get
 * "Session ID unknown", except on polling after a server close: see
 * linger_start), its transports are told as `parting` says, and the layer
 * above hears on_close from the loop. */
static void session_end(sh_eio_session_t *s, const char *reason, parting_t parting)
{
    if (s->state == SESSION_CLOSED)
        return;
    sh_eio_server_t *srv = s->srv;
    s->state = SESSION_CLOSED;
    s->close_reason = reason;
    s->parting = parting;
    sh_map_del(&srv->sessions, s->sid);
    srv->ending++;
    srv->stats.sessions_closed++;
    if (s->transport == SH_EIO_TRANSPORT_POLLING)
        srv->stats.polling--;
    else if (s->transport == SH_EIO_TRANSPORT_SSE)
        srv->stats.sse--;
    else
        srv->stats.websocket--;
    /* No probe, no grace period: the session is over (a polling one may
     * linger below, on this timer). */
    sh_timer_stop(srv->loop, &s->phase_timer);
    /* The stream writes what a server close or shutdown left queued (the
     * DISCONNECT, say), then ends; EventSource comes back by itself and
     * finds a new session (with a reset). */
    if (s->sse)
        sh_sse_end(s->sse, parting != PART_DROP);
    sh_timer_stop(srv->loop, &s->heartbeat);
    sh_debug("eio %s: closed (%s)", s->sid, reason);
    if (s->pl) {
        detach_ws(s->pl->probe, SH_WS_CLOSE_NORMAL, "");
        s->pl->probe = NULL;
    }
    if (s->ws) {
        if (parting == PART_CLOSE)
            sh_ws_conn_send(s->ws->conn, sh_eio_msg_text(SH_EIO_CLOSE, NULL, 0));
        detach_ws(s->ws, parting == PART_SHUTDOWN ? SH_WS_CLOSE_GOING_AWAY : SH_WS_CLOSE_NORMAL,
                  "");
        s->ws = NULL;
    }
    /* A held GET is answered by its handler once resumed; it reads the
     * parting packet from the session, which its reference keeps alive.
     * After a server close on polling, whatever that GET cannot carry
     * (the close packet after queued packets, or everything when no GET
     * is held) waits for the next one. */
    if (parting == PART_CLOSE && s->transport == SH_EIO_TRANSPORT_POLLING &&
        (!s->pl->poll || s->pl->queue.count))
        linger_start(s);
    if (s->pl) {
        if (s->pl->poll)
            sh_http_req_resume(s->pl->poll);
        sh_timer_stop(srv->loop, &s->pl->look_timer);
        if (s->pl->second_look)
            sh_http_req_resume(s->pl->second_look);
    }
    sh_defer_schedule(srv->loop, &s->end_defer, on_end_defer, s);
}

/* Heartbeat and noop packets: on polling they go ahead of queued data, so
 * a backlog cannot hold a ping past the client's timeout. */
static bool is_control(const sh_msg_t *m)
{
    return !m->binary && m->len >= 1 &&
           (m->data[0] == '0' + SH_EIO_PING || m->data[0] == '0' + SH_EIO_PONG ||
            m->data[0] == '0' + SH_EIO_NOOP);
}

/* Ends a session whose client does not read what it is sent: its queue
 * (queued bytes, as far as it is known here) passed the output limit. */
static void drop_slow(sh_eio_session_t *s, const char *transport, size_t queued)
{
    sh_eio_server_t *srv = s->srv;
    srv->stats.slow_dropped++;
    sh_log_limited(&srv->slow_log, SH_LOG_WARN,
                   "eio %s: %s client %s is not reading: %zu bytes queued, past the %zu byte "
                   "limit; dropping it",
                   s->sid, transport, s->peer, queued, srv->opts.output_limit);
    session_end(s, "transport error", PART_DROP);
}

int sh_eio_send(sh_eio_session_t *s, sh_msg_t *m)
{
    if (s->state != SESSION_OPEN) {
        sh_msg_unref(m);
        return -EPIPE;
    }
    s->srv->stats.packets_out++;
    s->srv->stats.bytes_out += m->len;
    if (s->sse) {
        if (sh_sse_push(s->sse, m) == -ENOBUFS)
            drop_slow(s, "SSE", sh_sse_unsent(s->sse));
        return 0;
    }
    if (s->ws) {
        int rc = sh_ws_conn_send(s->ws->conn, m);
        if (rc == -ENOBUFS)
            drop_slow(s, "WebSocket", sh_ws_conn_queued(s->ws->conn));
        return rc == -ENOBUFS ? 0 : rc;
    }
    if (!s->pl) {
        sh_msg_unref(m); /* a WebSocket session whose socket is gone */
        return -EPIPE;
    }
    sh_msgq_push(is_control(m) ? &s->pl->ctrl : &s->pl->queue, m);
    size_t queued = s->pl->queue.bytes + s->pl->ctrl.bytes;
    if (s->srv->opts.output_limit && queued > s->srv->opts.output_limit) {
        drop_slow(s, "polling", queued);
        return 0;
    }
    session_flush(s);
    return 0;
}

void sh_eio_close(sh_eio_session_t *s)
{
    session_end(s, "forced close", PART_CLOSE);
}

void sh_eio_session_prefetch(const sh_eio_session_t *s, unsigned step)
{
    switch (step) {
    case 0:
        __builtin_prefetch(&s->state);
        __builtin_prefetch(&s->ws);
        __builtin_prefetch(&s->sse);
        break;
    case 1:
        if (s->ws)
            __builtin_prefetch(s->ws);
        break;
    default:
        if (s->ws && s->ws->conn)
            sh_ws_conn_prefetch(s->ws->conn);
        break;
    }
}

/* Wakes the held GET when there is something for it. */
static void session_flush(sh_eio_session_t *s)
{
    if (s->pl && s->pl->poll && (s->pl->queue.count || s->pl->ctrl.count || s->pl->probed))
        sh_http_req_resume(s->pl->poll);
}

const char *sh_eio_session_sid(const sh_eio_session_t *s)
{
    return s->sid;
}

void *sh_eio_session_data(const sh_eio_session_t *s)
{
    return s->data;
}

void sh_eio_session_set_data(sh_eio_session_t *s, void *data)
{
    s->data = data;
}

const char *sh_eio_session_transport(const sh_eio_session_t *s)
{
    if (s->transport == SH_EIO_TRANSPORT_SSE)
        return "sse";
    return s->transport == SH_EIO_TRANSPORT_WEBSOCKET ? "websocket" : "polling";
}

const char *sh_eio_session_peer(const sh_eio_session_t *s)
{
    return s->peer;
}

/* ---- packets from the client (both transports) ---- */

/* Returns false when the session ended. */
static bool handle_packet(sh_eio_session_t *s, const sh_eio_packet_t *p)
{
    sh_eio_server_t *srv = s->srv;
    srv->stats.packets_in++;
    srv->stats.bytes_in += p->len + 1;
    switch (p->type) {
    case SH_EIO_PONG:
        schedule_ping(s);
        return true;
    case SH_EIO_PING:
        /* v4 servers ping, clients pong; answer a client's ping anyway
         * rather than drop a lenient client. */
        sh_eio_send(s, sh_eio_msg_text(SH_EIO_PONG, p->data, p->len));
        return true;
    case SH_EIO_MESSAGE:
        if (srv->handler.on_message)
            srv->handler.on_message(s, p->data, p->len, p->binary, srv->data);
        return s->state == SESSION_OPEN;
    case SH_EIO_CLOSE:
        session_end(s, "transport close", PART_DROP);
        return false;
    case SH_EIO_NOOP:
        return true;
    case SH_EIO_OPEN:
    case SH_EIO_UPGRADE:
    default:
        sh_debug("eio %s: unexpected packet type %d", s->sid, (int)p->type);
        session_end(s, "parse error", PART_DROP);
        return false;
    }
}

/* ---- polling ---- */

/* An upgraded session drops its polling state once no GET of it is held
 * any longer (those are answered from it). */
static void polling_release_if_done(sh_eio_session_t *s)
{
    eio_polling_t *pl = s->pl;
    if (!pl || s->transport != SH_EIO_TRANSPORT_WEBSOCKET || pl->poll || pl->second_look ||
        pl->probe)
        return;
    sh_timer_stop(s->srv->loop, &pl->look_timer);
    polling_free(pl);
    s->pl = NULL;
}

static void on_poll_done(sh_http_req_t *req, void *owner)
{
    sh_eio_session_t *s = owner;
    if (s->pl->poll == req)
        s->pl->poll = NULL;
    polling_release_if_done(s);
    session_unref(s);
}

/* Answers a GET with everything queued (or the parting packet). */
static void answer_poll(sh_eio_session_t *s, sh_http_req_t *req)
{
    sh_msg_t *msgs[MAX_POLL_PACKETS];
    size_t n = 0;
    bool closed = s->state == SESSION_CLOSED;
    if (closed && s->parting == PART_CLOSE) {
        /* Queued packets first, the close packet in a response of its own
         * (see linger_start); the session lingers until then. */
        sh_msg_t *m;
        while (n < MAX_POLL_PACKETS && (m = sh_msgq_pop(&s->pl->queue)))
            msgs[n++] = m;
        if (n > 0) {
            linger_start(s);
        } else {
            msgs[n++] = sh_eio_msg_text(SH_EIO_CLOSE, NULL, 0);
            linger_end(s); /* s lives on: our caller holds a reference */
        }
        add_cors_headers(req);
        add_no_buffer_headers(req);
        sh_http_respond_msgs(req, 200, "text/plain; charset=UTF-8", msgs, n, record_separator);
        return;
    }
    /* Upgrading: end this poll so the client can switch (Node sends noops
     * while the probe runs); data waits for the WebSocket. */
    bool upgrading = !closed && (s->pl->probed || s->transport != SH_EIO_TRANSPORT_POLLING);
    /* A shutdown still delivers what was queued before it, then a noop.
     * After a client close or an error the queue is dropped. */
    bool drain = closed ? s->parting != PART_DROP : !upgrading;
    size_t room = MAX_POLL_PACKETS - (closed ? 1 : 0);
    sh_msg_t *m;
    while (!closed && n < room && (m = sh_msgq_pop(&s->pl->ctrl)))
        msgs[n++] = m;
    while (drain && n < room && (m = sh_msgq_pop(&s->pl->queue)))
        msgs[n++] = m;
    if (closed) {
        if (s->pl->queue.count)
            sh_debug("eio %s: %zu packets queued at close not delivered", s->sid,
                     s->pl->queue.count);
        msgs[n++] = sh_eio_msg_text(SH_EIO_NOOP, NULL, 0);
    } else if (n == 0) {
        /* Upgrading, or resumed with nothing left to say. */
        msgs[n++] = sh_eio_msg_text(SH_EIO_NOOP, NULL, 0);
    }
    add_cors_headers(req);
    add_no_buffer_headers(req);
    sh_http_respond_msgs(req, 200, "text/plain; charset=UTF-8", msgs, n, record_separator);
}

static void handle_poll_get(sh_eio_session_t *s, sh_http_req_t *req, bool resumed);

static void on_second_look_done(sh_http_req_t *req, void *owner)
{
    sh_eio_session_t *s = owner;
    if (s->pl->second_look == req)
        s->pl->second_look = NULL;
    polling_release_if_done(s);
    session_unref(s);
}

static void on_look_timer(sh_loop_t *loop, sh_timer_t *t)
{
    sh_eio_session_t *s = t->data;
    if (s->pl->second_look)
        sh_http_req_resume(s->pl->second_look);
}

/* A GET that arrives while a WebSocket probe is attached but has not been
 * read yet may have been sent after the client's "2probe" and "5" (a client
 * that does not wait for its poll, or bytes that reached us in the same
 * libmicrohttpd pass as the upgrade): it gets a second look one loop
 * iteration later, after the WebSocket's pending frames, so the answer
 * follows what the client sent first (400 once upgraded). */
static bool take_second_look(sh_eio_session_t *s, sh_http_req_t *req)
{
    if (!s->pl->probe || s->pl->probed || s->pl->second_look || s->pl->poll)
        return false;
    s->pl->second_look = req;
    s->refs++;
    sh_http_req_set_owner(req, s, on_second_look_done);
    sh_http_req_suspend(req);
    sh_timer_start(s->srv->loop, &s->pl->look_timer, 0, on_look_timer, s);
    return true;
}

static void handle_poll_get(sh_eio_session_t *s, sh_http_req_t *req, bool resumed)
{
    if (resumed && req == s->pl->second_look) {
        /* The second look: decide as for a new request. */
        s->pl->second_look = NULL;
        sh_http_req_set_owner(req, NULL, NULL);
        if (s->state == SESSION_OPEN && s->transport != SH_EIO_TRANSPORT_POLLING)
            respond_error(s->srv, req, ERR_BAD_REQUEST, "a poll on a session now on websocket");
        else
            handle_poll_get(s, req, false);
        polling_release_if_done(s);
        session_unref(s);
        return;
    }
    if (resumed || s->state == SESSION_CLOSED) {
        answer_poll(s, req);
        return;
    }
    if (take_second_look(s, req))
        return;
    if (s->pl->poll) {
        /* Two GETs at once: Node treats it as a transport error. The held
         * one gets the close packet, this one an error. */
        respond_error(s->srv, req, ERR_BAD_REQUEST,
                      "a second poll while one is held; the session is closed");
        session_end(s, "transport error", PART_CLOSE);
        return;
    }
    if (s->pl->queue.count || s->pl->ctrl.count || s->pl->probed) {
        answer_poll(s, req);
        return;
    }
    s->pl->poll = req;
    s->refs++;
    sh_http_req_set_owner(req, s, on_poll_done);
    sh_http_req_suspend(req);
}

static void handle_poll_post(sh_eio_session_t *s, sh_http_req_t *req)
{
    sh_eio_server_t *srv = s->srv;
    add_cors_headers(req);
    if (sh_http_req_body_too_large(req)) {
        sh_log_limited(
            &srv->too_large_log, SH_LOG_INFO,
            "eio %s from %s: POST body over the %zu byte max payload; closing the session", s->sid,
            s->peer, srv->opts.max_payload);
        sh_http_respond_error_json(req, 413, ERR_BAD_REQUEST, "Payload too large");
        session_end(s, "transport error", PART_DROP);
        return;
    }
    size_t len;
    const char *body = sh_http_req_body(req, &len);
    /* Check the whole payload before acting on any packet: a malformed
     * payload is rejected as a unit (and closes the session). */
    sh_buf_t scratch = SH_BUF_INIT;
    size_t pos = 0;
    sh_eio_packet_t p;
    int rc;
    while ((rc = sh_eio_payload_next(body, len, &pos, &p, &scratch)) == 1)
        ;
    if (rc < 0) {
        sh_buf_release(&scratch);
        sh_log_limited(&srv->malformed_log, SH_LOG_INFO,
                       "eio %s from %s: malformed polling payload; closing the session", s->sid,
                       s->peer);
        sh_http_respond_error_json(req, 400, ERR_BAD_REQUEST, error_messages[ERR_BAD_REQUEST]);
        session_end(s, "parse error", PART_DROP);
        return;
    }
    pos = 0;
    /* The session must outlive on_message callbacks that close it. */
    s->refs++;
    while (sh_eio_payload_next(body, len, &pos, &p, &scratch) == 1)
        if (!handle_packet(s, &p))
            break;
    sh_buf_release(&scratch);
    sh_http_respond(req, 200, "text/html", "ok", 2);
    session_unref(s);
}

/* A request for a session the server closed over polling that still owes
 * its client packets (see linger_start): a GET collects them, a POST is
 * answered (its packets are not delivered: the session is over) and ends
 * the wait when it carries the client's close packet. */
static void handle_lingering(sh_eio_session_t *s, sh_http_req_t *req, int transport,
                             const char *eio)
{
    if (transport != SH_EIO_TRANSPORT_POLLING) {
        respond_error(s->srv, req, ERR_BAD_REQUEST, "a websocket request for closed session %s",
                      s->sid);
        return;
    }
    if (!eio || strcmp(eio, "4")) {
        respond_error(s->srv, req, ERR_UNSUPPORTED_PROTOCOL_VERSION, "EIO=%.16s, not 4",
                      eio ? eio : "(none)");
        return;
    }
    s->refs++; /* answer_poll and linger_end may drop the last other one */
    if (sh_http_req_method(req) == SH_HTTP_GET) {
        answer_poll(s, req);
    } else if (sh_http_req_method(req) == SH_HTTP_POST) {
        size_t len;
        const char *body = sh_http_req_body(req, &len);
        sh_buf_t scratch = SH_BUF_INIT;
        size_t pos = 0;
        sh_eio_packet_t p;
        bool client_closed = false;
        while (!sh_http_req_body_too_large(req) &&
               sh_eio_payload_next(body, len, &pos, &p, &scratch) == 1)
            client_closed |= p.type == SH_EIO_CLOSE;
        sh_buf_release(&scratch);
        add_cors_headers(req);
        sh_http_respond(req, 200, "text/html", "ok", 2);
        if (client_closed)
            linger_end(s);
    } else {
        respond_error(s->srv, req, ERR_BAD_REQUEST, "a %s on closed session %s",
                      sh_http_req_method_name(req), s->sid);
    }
    session_unref(s);
}

/* ---- WebSocket ---- */

static void ws_owner_free(eio_ws_t *w)
{
    sh_list_remove(&w->link);
    free(w);
}

static void on_ws_close(sh_ws_conn_t *conn, uint16_t code, const char *reason, void *owner)
{
    eio_ws_t *w = owner;
    sh_eio_session_t *s = w->session;
    if (s) {
        if (s->pl && s->pl->probe == w) {
            s->pl->probe = NULL;
            s->pl->probed = false;
            sh_timer_stop(s->srv->loop, &s->phase_timer);
        } else if (s->ws == w) {
            s->ws = NULL;
            session_end(s, code == SH_WS_CLOSE_POLICY ? "transport error" : "transport close",
                        false);
        }
    }
    ws_owner_free(w);
}

static void finish_upgrade(sh_eio_session_t *s)
{
    sh_eio_server_t *srv = s->srv;
    eio_ws_t *w = s->pl->probe;
    s->pl->probe = NULL;
    s->pl->probed = false;
    s->ws = w;
    s->transport = SH_EIO_TRANSPORT_WEBSOCKET;
    srv->stats.polling--;
    srv->stats.websocket++;
    srv->stats.upgrades++;
    sh_timer_stop(srv->loop, &s->phase_timer);
    sh_debug("eio %s: upgraded to websocket", s->sid);
    /* End the held GET (noop) and move what waited onto the WebSocket. */
    if (s->pl->poll)
        sh_http_req_resume(s->pl->poll);
    sh_msg_t *m;
    sh_msgq_move(&s->pl->ctrl, &s->pl->queue); /* one ordered stream from now on */
    sh_msgq_move(&s->pl->queue, &s->pl->ctrl);
    while (s->state == SESSION_OPEN && (m = sh_msgq_pop(&s->pl->queue))) {
        if (sh_ws_conn_send(w->conn, m) == -ENOBUFS)
            drop_slow(s, "WebSocket", sh_ws_conn_queued(w->conn));
    }
    /* Polling is over: its state goes now, or once the held GET has its
     * answer (it finds the queues empty either way). */
    sh_msgq_release(&s->pl->queue);
    sh_msgq_release(&s->pl->ctrl);
    polling_release_if_done(s);
}

static void on_ws_message(sh_ws_conn_t *conn, const char *data, size_t len, bool binary,
                          void *owner)
{
    eio_ws_t *w = owner;
    sh_eio_session_t *s = w->session;
    if (!s)
        return;
    sh_eio_packet_t p;
    if (binary) {
        p = (sh_eio_packet_t){.type = SH_EIO_MESSAGE, .binary = true, .data = data, .len = len};
    } else if (sh_eio_packet_decode_text(data, len, &p) < 0) {
        sh_debug("eio %s: malformed packet on websocket", s->sid);
        if (s->pl && s->pl->probe == w) {
            detach_ws(w, SH_WS_CLOSE_NORMAL, "");
            s->pl->probe = NULL;
            s->pl->probed = false;
            return;
        }
        session_end(s, "parse error", PART_DROP);
        return;
    }
    if (s->pl && s->pl->probe == w) {
        /* The upgrade handshake: "2probe" -> "3probe", then "5". */
        if (p.type == SH_EIO_PING && p.len == 5 && !memcmp(p.data, "probe", 5)) {
            sh_ws_conn_send(conn, sh_eio_msg_text(SH_EIO_PONG, "probe", 5));
            /* At once, as Node's ws writes it: the client may send "5" and
             * a poll right behind its "2probe", and the poll's answer (a
             * 400 once upgraded), written later in this iteration, must
             * not reach it before "3probe" (the official suite's "ignores
             * HTTP requests with same sid after upgrade" failed ~1 run in
             * 30 that way). */
            sh_ws_conn_flush(conn);
            s->pl->probed = true;
            session_flush(s);
        } else if (p.type == SH_EIO_UPGRADE && s->pl->probed) {
            finish_upgrade(s);
        } else {
            sh_debug("eio %s: unexpected packet during upgrade; dropping the probe", s->sid);
            detach_ws(w, SH_WS_CLOSE_NORMAL, "");
            s->pl->probe = NULL;
            s->pl->probed = false;
            sh_timer_stop(s->srv->loop, &s->phase_timer);
            session_flush(s);
        }
        return;
    }
    handle_packet(s, &p);
}

/* A broken frame, invalid UTF-8, a message over the limit: logged while
 * the session is still attached (it may end before the socket's close
 * completes). */
static void on_ws_bad_input(sh_ws_conn_t *conn, uint16_t code, const char *reason, void *owner)
{
    eio_ws_t *w = owner;
    sh_eio_session_t *s = w->session;
    sh_log_limited(&w->srv->ws_error_log, SH_LOG_INFO,
                   "eio %s from %s: %s; closing the websocket with %u", s ? s->sid : "(ended)",
                   s ? s->peer : "?", reason, (unsigned)code);
}

static const sh_ws_handler_t ws_handler = {
    .on_message = on_ws_message,
    .on_close = on_ws_close,
    .on_bad_input = on_ws_bad_input,
};

static void on_upgrade_timeout(sh_loop_t *loop, sh_timer_t *t)
{
    sh_eio_session_t *s = t->data;
    sh_debug("eio %s: upgrade timed out", s->sid);
    detach_ws(s->pl->probe, SH_WS_CLOSE_NORMAL, "");
    s->pl->probe = NULL;
    s->pl->probed = false;
    session_flush(s);
}

typedef struct upgrade_ctx {
    sh_eio_server_t *srv;
    char sid[SH_ID_LEN + 1]; /* empty: a new WebSocket-only session */
    char peer[64];
} upgrade_ctx_t;

static void on_upgrade_abandoned(sh_http_req_t *req, void *owner)
{
    free(owner);
}

static void on_upgraded(int fd, const char *extra, size_t extra_len, void *data)
{
    upgrade_ctx_t *ctx = data;
    sh_eio_server_t *srv = ctx->srv;
    if (fd < 0) {
        free(ctx);
        return;
    }
    eio_ws_t *w = sh_new0(eio_ws_t);
    w->srv = srv;
    sh_list_insert_tail(&srv->ws_conns, &w->link);
    w->conn = sh_ws_conn_new(srv->loop, fd, extra, extra_len, &srv->ws_opts, &ws_handler, w);
    if (ctx->sid[0]) {
        sh_eio_session_t *s = sh_map_get(&srv->sessions, ctx->sid);
        if (!s || s->transport != SH_EIO_TRANSPORT_POLLING || s->pl->probe) {
            /* The session ended, upgraded, or is probing another socket. */
            sh_ws_conn_close(w->conn, SH_WS_CLOSE_POLICY, "session gone");
        } else {
            w->session = s;
            s->pl->probe = w;
            sh_timer_start(srv->loop, &s->phase_timer, srv->opts.upgrade_timeout,
                           on_upgrade_timeout, s);
        }
        free(ctx);
        return;
    }
    sh_eio_session_t *s = session_new(srv, SH_EIO_TRANSPORT_WEBSOCKET, ctx->peer);
    free(ctx);
    w->session = s;
    s->ws = w;
    sh_debug("eio %s: open over websocket from %s", s->sid, s->peer);
    sh_ws_conn_send(w->conn, open_packet(srv, s->sid, false));
    schedule_ping(s);
    if (srv->handler.on_open)
        srv->handler.on_open(s, srv->data);
}

static bool header_has_token(const char *value, const char *token)
{
    /* Comma-separated, case-insensitive ("keep-alive, Upgrade"). */
    size_t tl = strlen(token);
    const char *p = value;
    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        const char *e = end;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - p) == tl && !strncasecmp(p, token, tl))
            return true;
        p = end;
    }
    return false;
}

static void handle_websocket(sh_eio_server_t *srv, sh_http_req_t *req, sh_eio_session_t *s)
{
    const char *upgrade = sh_http_req_header(req, "Upgrade");
    const char *connection = sh_http_req_header(req, "Connection");
    const char *version = sh_http_req_header(req, "Sec-WebSocket-Version");
    const char *key = sh_http_req_header(req, "Sec-WebSocket-Key");
    if (sh_http_req_method(req) != SH_HTTP_GET || !upgrade || strcasecmp(upgrade, "websocket") ||
        !connection || !header_has_token(connection, "upgrade")) {
        respond_error(srv, req, ERR_BAD_REQUEST,
                      "transport=websocket without a WebSocket upgrade (a proxy that drops the "
                      "Upgrade and Connection headers?)");
        return;
    }
    char accept[29];
    if (!version || strcmp(version, "13")) {
        sh_http_req_add_header(req, "Sec-WebSocket-Version", "13");
        respond_error(srv, req, ERR_BAD_REQUEST, "a WebSocket upgrade with version %.16s, not 13",
                      version ? version : "(none)");
        return;
    }
    if (!key || sh_ws_accept_key(key, accept) < 0) {
        sh_http_req_add_header(req, "Sec-WebSocket-Version", "13");
        respond_error(srv, req, ERR_BAD_REQUEST, "a WebSocket upgrade without a valid key");
        return;
    }
    /* A session already upgraded, or with a probe running, still gets the
     * WebSocket handshake; on_upgraded then closes the new socket (as
     * Node's engine.io does: its clients see a close, not an HTTP error). */
    upgrade_ctx_t *ctx = sh_new0(upgrade_ctx_t);
    ctx->srv = srv;
    if (s)
        snprintf(ctx->sid, sizeof(ctx->sid), "%s", s->sid);
    snprintf(ctx->peer, sizeof(ctx->peer), "%s", sh_http_req_peer(req));
    sh_http_req_add_header(req, "Sec-WebSocket-Accept", accept);
    sh_http_req_set_owner(req, ctx, on_upgrade_abandoned);
    if (sh_http_respond_upgrade(req, on_upgraded, ctx) < 0) {
        sh_http_req_set_owner(req, NULL, NULL);
        free(ctx);
        sh_http_respond(req, 500, "text/plain", "upgrade failed\n", 15);
    }
}

/* ---- SSE ---- */

static void on_grace_over(sh_loop_t *loop, sh_timer_t *t)
{
    sh_eio_session_t *s = t->data;
    sh_debug("eio %s: no SSE stream within the grace period", s->sid);
    session_end(s, "transport close", PART_DROP);
}

/* The stream dropped: the session waits sse_grace for the client to come
 * back (a timer even for 0, so the end is never inside the HTTP layer's
 * callback). */
static void on_sse_detach(sh_sse_t *sse, void *data)
{
    sh_eio_session_t *s = data;
    if (s->state != SESSION_OPEN)
        return;
    sh_debug("eio %s: SSE stream dropped; grace %llu ms", s->sid,
             (unsigned long long)s->srv->opts.sse_grace);
    sh_timer_start(s->srv->loop, &s->phase_timer, s->srv->opts.sse_grace, on_grace_over, s);
}

bool sh_eio_server_cors(sh_eio_server_t *srv, sh_http_req_t *req)
{
    if (!origin_allowed(srv, sh_http_req_header(req, "Origin")))
        return false;
    add_cors_headers(req);
    return true;
}

/* EventSource reconnects after `retry`: well within the grace period
 * (without one, a second is polite). */
static uint64_t sse_retry(const sh_eio_server_t *srv)
{
    uint64_t r = srv->opts.sse_grace / 2;
    return r == 0 || r > 1000 ? 1000 : r < 10 ? 10 : r;
}

static int sse_attach(sh_eio_session_t *s, sh_http_req_t *req, const sh_sse_from_t *from)
{
    add_no_buffer_headers(req);
    bool reset = false;
    if (sh_sse_attach(s->sse, req, from, &reset) < 0) {
        /* Any stream it had is gone too: the grace period starts. */
        sh_http_respond(req, 500, "text/plain", "stream failed\n", 14);
        sh_timer_start(s->srv->loop, &s->phase_timer, s->srv->opts.sse_grace, on_grace_over, s);
        return -EIO;
    }
    sh_timer_stop(s->srv->loop, &s->phase_timer);
    if (from->resume)
        sh_debug("eio %s: SSE stream resumed after %llu%s", s->sid,
                 (unsigned long long)from->after_seq, reset ? " (reset)" : "");
    return 0;
}

sh_eio_session_t *sh_eio_sse_open(sh_eio_server_t *srv, sh_http_req_t *req, bool reset)
{
    if (!srv->opts.sse_render) {
        sh_http_respond_error_json(req, 400, ERR_UNKNOWN_TRANSPORT,
                                   error_messages[ERR_UNKNOWN_TRANSPORT]);
        return NULL;
    }
    sh_eio_session_t *s = session_new(srv, SH_EIO_TRANSPORT_SSE, sh_http_req_peer(req));
    sh_sse_options_t so = {
        .sid = s->sid,
        .render = srv->opts.sse_render,
        .buffer_bytes = srv->opts.sse_buffer,
        .buffer_events = srv->opts.sse_buffer_events,
        .output_limit = srv->opts.output_limit,
        .retry_ms = sse_retry(srv),
        .stats = &srv->stats.sse_streams,
    };
    s->sse = sh_sse_new(&so, on_sse_detach, s);
    sh_sse_from_t from = {.reset = reset};
    if (sse_attach(s, req, &from) < 0) {
        session_end(s, "transport error", PART_DROP);
        return NULL;
    }
    sh_debug("eio %s: open over SSE from %s", s->sid, s->peer);
    schedule_ping(s);
    if (srv->handler.on_open)
        srv->handler.on_open(s, srv->data);
    return s;
}

sh_eio_session_t *sh_eio_sse_find(sh_eio_server_t *srv, const char *sid)
{
    sh_eio_session_t *s = sh_map_get(&srv->sessions, sid);
    return s && s->sse ? s : NULL;
}

int sh_eio_sse_resume(sh_eio_session_t *s, sh_http_req_t *req, uint64_t after_seq)
{
    sh_sse_from_t from = {.resume = true, .after_seq = after_seq};
    return sse_attach(s, req, &from);
}

/* ---- the route ---- */

static void handle_preflight(sh_http_req_t *req)
{
    add_cors_headers(req);
    sh_http_req_add_header(req, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    const char *want = sh_http_req_header(req, "Access-Control-Request-Headers");
    if (want)
        sh_http_req_add_header(req, "Access-Control-Allow-Headers", want);
    sh_http_req_add_header(req, "Access-Control-Max-Age", "86400");
    sh_http_respond(req, 204, NULL, "", 0);
}

static void on_request(sh_http_req_t *req, void *data)
{
    sh_eio_server_t *srv = data;
    sh_eio_session_t *owner = sh_http_req_owner(req);
    if (owner) {
        /* A held GET resumed: answer it from its session. */
        handle_poll_get(owner, req, sh_http_req_resumed(req));
        return;
    }
    const char *origin = sh_http_req_header(req, "Origin");
    if (!origin_allowed(srv, origin)) {
        /* No CORS headers on this answer: the browser is to refuse it. */
        char why[240];
        snprintf(why, sizeof(why), "Origin %.200s is not an allowed origin", origin);
        log_refusal(srv, req, ERR_FORBIDDEN, why);
        sh_http_respond_error_json(req, 403, ERR_FORBIDDEN, error_messages[ERR_FORBIDDEN]);
        return;
    }
    if (sh_http_req_method(req) == SH_HTTP_OPTIONS) {
        handle_preflight(req);
        return;
    }
    const char *transport = sh_http_req_query(req, "transport");
    int t = 0;
    if (transport && !strcmp(transport, "polling"))
        t = SH_EIO_TRANSPORT_POLLING;
    else if (transport && !strcmp(transport, "websocket"))
        t = SH_EIO_TRANSPORT_WEBSOCKET;
    if (!(t & srv->opts.transports)) {
        respond_error(srv, req, ERR_UNKNOWN_TRANSPORT, "transport=%.32s",
                      transport ? transport : "(none)");
        return;
    }
    const char *eio = sh_http_req_query(req, "EIO");
    const char *sid = sh_http_req_query(req, "sid");
    sh_eio_session_t *s = NULL;
    if (sid) {
        s = sh_map_get(&srv->sessions, sid);
        if (!s && (s = sh_map_get(&srv->closing, sid)) != NULL) {
            handle_lingering(s, req, t, eio);
            return;
        }
        if (!s) {
            respond_error(srv, req, ERR_UNKNOWN_SID,
                          "sid %.40s is no session here (it ended, or the server restarted)", sid);
            return;
        }
        if (t == SH_EIO_TRANSPORT_POLLING && s->transport != SH_EIO_TRANSPORT_POLLING) {
            respond_error(srv, req, ERR_BAD_REQUEST,
                          "a poll on session %s, which is not on polling", s->sid);
            return;
        }
    } else if (sh_http_req_method(req) != SH_HTTP_GET) {
        respond_error(srv, req, ERR_BAD_HANDSHAKE_METHOD, "a handshake must be a GET");
        return;
    }
    if (!eio || strcmp(eio, "4")) {
        respond_error(srv, req, ERR_UNSUPPORTED_PROTOCOL_VERSION,
                      "EIO=%.16s, not 4 (a Socket.IO client older than v3?)", eio ? eio : "(none)");
        return;
    }
    if (t == SH_EIO_TRANSPORT_WEBSOCKET) {
        handle_websocket(srv, req, s);
        return;
    }
    if (s) {
        switch (sh_http_req_method(req)) {
        case SH_HTTP_GET:
            handle_poll_get(s, req, false);
            return;
        case SH_HTTP_POST:
            handle_poll_post(s, req);
            return;
        default:
            respond_error(srv, req, ERR_BAD_REQUEST, "a %s on a polling session",
                          sh_http_req_method_name(req));
            return;
        }
    }
    /* A polling handshake: the open packet, plus whatever on_open sent. */
    s = session_new(srv, SH_EIO_TRANSPORT_POLLING, sh_http_req_peer(req));
    sh_debug("eio %s: open over polling from %s", s->sid, s->peer);
    sh_msgq_push(&s->pl->queue, open_packet(srv, s->sid, true));
    schedule_ping(s);
    s->refs++;
    if (srv->handler.on_open)
        srv->handler.on_open(s, srv->data);
    if (s->state == SESSION_OPEN)
        answer_poll(s, req);
    else
        respond_error(srv, req, ERR_FORBIDDEN, "the application closed the session as it opened");
    session_unref(s);
}

/* ---- the server ---- */

sh_eio_server_t *sh_eio_server_new(sh_loop_t *loop, sh_http_t *http, const sh_eio_options_t *opts,
                                   const sh_eio_handler_t *handler, void *data, sh_buf_t *err)
{
    sh_eio_server_t *srv = sh_new0(sh_eio_server_t);
    srv->loop = loop;
    srv->http = http;
    srv->opts = *opts;
    srv->path = sh_strdup(opts->path);
    srv->opts.path = srv->path;
    srv->handler = *handler;
    srv->data = data;
    sh_list_init(&srv->ws_conns);
    sh_list_init(&srv->all);
    /* Keyed by the sessions' own sid fields. */
    sh_map_borrow_keys(&srv->sessions);
    sh_map_borrow_keys(&srv->closing);
    if (opts->origins && opts->origins[0] && strcmp(opts->origins[0], "*")) {
        size_t n = 0;
        while (opts->origins[n])
            n++;
        srv->origins = sh_calloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++)
            srv->origins[i] = sh_strdup(opts->origins[i]);
    }
    srv->ws_opts = (sh_ws_options_t){
        .max_message = opts->max_payload,
        .output_limit = opts->output_limit,
        .close_linger = 1000,
        .stats = &srv->stats.ws,
    };
    /* A POST may carry max_payload of packets plus framing. */
    if (sh_http_route(http, srv->path, false, opts->max_payload + 64, on_request, srv) < 0) {
        sh_buf_appendf(err, "too many HTTP routes");
        sh_eio_server_free(srv);
        return NULL;
    }
    return srv;
}

void sh_eio_server_close_all(sh_eio_server_t *srv)
{
    /* Going away: no client waits for a close packet any longer. */
    srv->closing_all = true;
    sh_list_t *pos, *tmp;
    sh_list_foreach_safe (pos, tmp, &srv->all) {
        sh_eio_session_t *s = sh_container_of(pos, sh_eio_session_t, link);
        if (s->lingering)
            linger_end(s); /* may free s, which unlinks it: tmp stays valid */
    }
    sh_map_iter_t it;
    sh_map_iter_init(&it, &srv->sessions);
    sh_map_entry_t *e;
    /* session_end removes the entry from the table: collect first. */
    size_t n = sh_map_count(&srv->sessions), i = 0;
    sh_eio_session_t **all = sh_calloc(n ? n : 1, sizeof(*all));
    while ((e = sh_map_iter_next(&it)) && i < n)
        all[i++] = e->value;
    for (size_t j = 0; j < i; j++)
        session_end(all[j], "server shutting down", PART_SHUTDOWN);
    free(all);
}

size_t sh_eio_server_active(const sh_eio_server_t *srv)
{
    size_t n = sh_map_count(&srv->sessions) + srv->ending + srv->stats.sse_streams.draining;
    const sh_list_t *pos;
    for (pos = srv->ws_conns.next; pos != &srv->ws_conns; pos = pos->next)
        n++;
    return n;
}

void sh_eio_server_free(sh_eio_server_t *srv)
{
    if (!srv)
        return;
    /* Anything still here was not closed gracefully in time: drop it,
     * telling the layer above (which is freed after us). Held polls were already ended by the HTTP
     * layer (it is freed first), so no request still points at a session. */
    sh_list_t *pos, *tmp;
    sh_list_foreach_safe (pos, tmp, &srv->all) {
        sh_eio_session_t *s = sh_container_of(pos, sh_eio_session_t, link);
        sh_list_remove(&s->link);
        /* The layer above still exists and may hold state for it. */
        if (s->notify_close && srv->handler.on_close) {
            s->notify_close = false;
            srv->handler.on_close(s, "server shutting down", srv->data);
        }
        sh_timer_stop(srv->loop, &s->heartbeat);
        sh_timer_stop(srv->loop, &s->phase_timer);
        sh_defer_cancel(srv->loop, &s->end_defer);
        sh_sse_free(s->sse);
        if (s->pl) {
            if (s->pl->poll)
                sh_http_req_set_owner(s->pl->poll, NULL, NULL);
            if (s->pl->second_look)
                sh_http_req_set_owner(s->pl->second_look, NULL, NULL);
            sh_timer_stop(srv->loop, &s->pl->look_timer);
            polling_free(s->pl);
        }
        free(s);
    }
    sh_list_foreach_safe (pos, tmp, &srv->ws_conns) {
        eio_ws_t *w = sh_container_of(pos, eio_ws_t, link);
        sh_ws_conn_destroy(w->conn);
        ws_owner_free(w);
    }
    sh_map_release(&srv->sessions);
    sh_map_release(&srv->closing);
    if (srv->origins) {
        for (char **o = srv->origins; *o; o++)
            free(*o);
        free(srv->origins);
    }
    free(srv->path);
    free(srv);
}

const sh_eio_stats_t *sh_eio_server_stats(const sh_eio_server_t *srv)
{
    return &srv->stats;
}
