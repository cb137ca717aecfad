/* The Open WebUI app's SSE endpoint: EventSource clients as full sockets.
 *
 *   GET  <path>sse             the event stream (text/event-stream)
 *   POST <path>sse/<socket id>  {"event", "args", "ack"}: one event up
 *
 * Credentials, in this order: "Authorization: Bearer <jwt>", the `token`
 * query parameter, Open WebUI's `token` cookie (so a same-origin browser
 * EventSource needs no code). They are checked as a CONNECT's token is
 * (owui_check_token: signature, directory, revocation); a request without
 * valid ones gets 401 and a JSON error, and nothing else happens. Tokens
 * are never logged (libmicrohttpd hands us the path without the query,
 * and our log lines name the peer and the reason only).
 *
 * A new stream opens an Engine.IO session on SSE (engineio/server.h) and
 * attaches it to the Socket.IO server as a CONNECT to "/" with auth
 * {token}: on_connect, on_connected and the pools, rooms and presence
 * follow exactly as for a WebSocket client. Its first event is that
 * CONNECT's answer, `event: connect` with {"sid": <socket id>}, the id
 * the POST endpoint and Open WebUI's session_id take; like a WebSocket
 * client's, it comes once the session is in the pools and in user:{id},
 * so an emit made on it reaches the stream.
 *
 * Resume: a GET with Last-Event-ID (or ?lastEventId) "<session>:<seq>"
 * of a session still open (within sse_grace of its stream dropping) and
 * the same user's credentials takes that session up again: every event
 * after seq, then live ones (transport/sse.h). Another user's credentials
 * get 401. An id of a session that is gone (or not an id of ours) opens a
 * new session whose stream begins with `event: reset`.
 *
 * POST: only the stream's own user may post to its socket (401 without
 * valid credentials, 403 for another user, 404 for an unknown socket id
 * or one that is not an SSE session). The event runs through the
 * Socket.IO server's dispatch, exactly like an EVENT packet; without
 * "ack" the answer is 202 {}, with "ack": true the request is held until
 * the handler acknowledges and the body is the ack's argument array (200);
 * 410 when the session ends first, 504 after http_timeout without an ack.
 *
 * While the node shuts down a GET gets a stream holding only "retry:"
 * (see respond_come_back) and a POST 503.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app/openwebui.h"
#include "core/alloc.h"
#include "core/list.h"
#include "core/log.h"
#include "core/map.h"
#include "socketio/packet.h"
#include "transport/sse_wire.h"

/* One SSE session of this node: what resume and POST check against. */
typedef struct sse_rec {
    char eio_sid[SH_ID_LEN + 1];
    char sock_id[SH_ID_LEN + 1];
    char *user_id;
} sse_rec_t;

struct owui_sse {
    owui_app_t *app;
    char *route;      /* "<path>sse" */
    sh_map_t by_eio;  /* Engine.IO sid -> sse_rec_t */
    sh_map_t by_sock; /* socket id -> the same sse_rec_t */
    sh_list_t held;   /* sse_req_t still holding their request */
};

typedef enum { REQ_STREAM, REQ_POST } req_kind_t;

/* A request held while its token is checked, then (a POST with ack)
 * while the handler answers. Freed when nothing refers to it any more:
 * not the request (req), not the token check (checking), not the
 * dispatch's ack (acking). */
typedef struct sse_req {
    sh_list_t link; /* sse->held while req is set */
    owui_sse_t *sse;
    sh_loop_t *loop;
    sh_http_req_t *req;
    req_kind_t kind;
    bool checking;
    bool checked;  /* the check's answer is in user_id / reason */
    bool acking;   /* a dispatch's ack is awaited (timer running) */
    bool answered; /* status and answer are set */
    char *token;   /* for the CONNECT's auth; never logged */
    char *user_id; /* the checked user, NULL when refused */
    const char *reason;
    /* POST */
    char sock_id[SH_ID_LEN + 1];
    int64_t ack_id;
    unsigned status;
    json_t *answer;
    sh_timer_t timer;
} sse_req_t;

/* ---- small helpers ---- */

static void respond_json(sh_http_req_t *req, unsigned status, json_t *body)
{
    sh_buf_t b = SH_BUF_INIT;
    sh_json_append(&b, body);
    sh_buf_append_byte(&b, '\n');
    json_decref(body);
    sh_http_req_add_header(req, "Cache-Control", "no-store");
    sh_http_respond(req, status, "application/json", sh_buf_peek(&b), sh_buf_avail(&b));
    sh_buf_release(&b);
}

static void respond_error(sh_http_req_t *req, unsigned status, const char *message)
{
    if (status == 401)
        sh_http_req_add_header(req, "WWW-Authenticate", "Bearer");
    respond_json(req, status, json_pack("{s:s}", "error", message));
}

/* The request's token: Authorization: Bearer, ?token=, cookie token.
 * Another Authorization scheme is a proxy's (Basic in front of Open WebUI,
 * say) and does not hide the cookie. */
static const char *credentials(sh_http_req_t *req)
{
    const char *auth = sh_http_req_header(req, "Authorization");
    if (auth && !strncasecmp(auth, "Bearer ", 7)) {
        auth += 7;
        while (*auth == ' ')
            auth++;
        if (*auth)
            return auth;
    }
    const char *q = sh_http_req_query(req, "token");
    if (q && *q)
        return q;
    const char *c = sh_http_req_cookie(req, "token");
    return c && *c ? c : NULL;
}

/* A stream asked for while this node shuts down. Any answer but 200
 * text/event-stream makes an EventSource give up for good (the HTML
 * standard's "fail the connection"), so it gets a stream that only says
 * when to come back, and ends: by then a new process, or another node
 * behind the proxy, answers. */
static void respond_come_back(sh_http_req_t *req)
{
    static const char body[] = "retry: 2000\n\n";
    sh_http_req_add_header(req, "Cache-Control", "no-store");
    sh_http_respond(req, 200, "text/event-stream; charset=utf-8", body, sizeof(body) - 1);
}

static void rec_forget(owui_sse_t *sse, sse_rec_t *rec)
{
    sh_map_del(&sse->by_eio, rec->eio_sid);
    sh_map_del(&sse->by_sock, rec->sock_id);
    free(rec->user_id);
    free(rec);
}

/* ---- held requests ---- */

static void maybe_free(sse_req_t *r)
{
    if (r->req || r->checking || r->acking)
        return;
    sh_timer_stop(r->loop, &r->timer);
    free(r->token);
    free(r->user_id);
    json_decref(r->answer);
    free(r);
}

/* Stops holding the request (answered now, or gone). */
static void unhold(sse_req_t *r)
{
    if (!r->req)
        return;
    sh_http_req_set_owner(r->req, NULL, NULL);
    r->req = NULL;
    sh_list_remove(&r->link);
}

static void cancel_ack(sse_req_t *r)
{
    if (!r->acking)
        return;
    r->acking = false;
    sh_timer_stop(r->loop, &r->timer);
    sh_sio_socket_t *sock = sh_sio_server_socket(r->sse->app->sio, r->sock_id);
    if (sock)
        sh_sio_socket_cancel_dispatch(sock, r->ack_id);
}

static void on_held_done(sh_http_req_t *req, void *owner)
{
    sse_req_t *r = owner;
    sh_list_remove(&r->link);
    r->req = NULL;
    cancel_ack(r); /* the client left before the ack: forget it */
    maybe_free(r);
}

static sse_req_t *hold(owui_sse_t *sse, sh_http_req_t *req, req_kind_t kind)
{
    sse_req_t *r = sh_new0(sse_req_t);
    r->sse = sse;
    r->loop = sse->app->ctx->loop;
    r->req = req;
    r->kind = kind;
    sh_list_insert_tail(&sse->held, &r->link);
    sh_http_req_set_owner(req, r, on_held_done);
    sh_http_req_suspend(req);
    return r;
}

static void answer_later(sse_req_t *r, unsigned status, json_t *answer)
{
    r->answered = true;
    r->status = status;
    json_decref(r->answer);
    r->answer = answer;
    if (r->req)
        sh_http_req_resume(r->req);
}

static void on_token_checked(owui_app_t *app, json_t *user, const char *reason, void *data)
{
    sse_req_t *r = data;
    r->checking = false;
    if (!r->req) {
        maybe_free(r); /* the client left meanwhile */
        return;
    }
    r->checked = true;
    const char *id = json_string_value(json_object_get(user, "id"));
    if (id)
        r->user_id = sh_strdup(id);
    r->reason = reason ? reason : "no such user";
    sh_http_req_resume(r->req);
}

/* ---- GET: the stream ---- */

static void open_stream(owui_sse_t *sse, sse_req_t *r, sh_http_req_t *req, bool reset)
{
    owui_app_t *app = sse->app;
    sh_eio_session_t *s = sh_eio_sse_open(app->eio, req, reset);
    if (!s)
        return;
    json_t *auth = json_pack("{s:s}", "token", r->token);
    sh_sio_socket_t *sock = sh_sio_server_attach(app->sio, s, "/", auth);
    json_decref(auth);
    if (!sock) {
        sh_eio_close(s); /* the stream carries the connect_error */
        return;
    }
    sse_rec_t *rec = sh_new0(sse_rec_t);
    snprintf(rec->eio_sid, sizeof(rec->eio_sid), "%s", sh_eio_session_sid(s));
    snprintf(rec->sock_id, sizeof(rec->sock_id), "%s", sh_sio_socket_id(sock));
    rec->user_id = sh_strdup(r->user_id);
    sh_map_set(&sse->by_eio, rec->eio_sid, rec);
    sh_map_set(&sse->by_sock, rec->sock_id, rec);
    sh_debug("openwebui: SSE socket %s (session %s) is user %s", rec->sock_id, rec->eio_sid,
             rec->user_id);
}

static void finish_stream(owui_sse_t *sse, sse_req_t *r, sh_http_req_t *req)
{
    const char *last = sh_http_req_header(req, "Last-Event-ID");
    if (!last)
        last = sh_http_req_query(req, "lastEventId");
    if (!last || !*last) {
        open_stream(sse, r, req, false);
        return;
    }
    char sid[SH_SSE_MAX_SID + 1];
    uint64_t seq;
    const char *why = NULL;
    sh_eio_session_t *s = NULL;
    if (sh_sse_parse_event_id(last, strlen(last), sid, &seq, &why) == 0)
        s = sh_eio_sse_find(sse->app->eio, sid);
    sse_rec_t *rec = s ? sh_map_get(&sse->by_eio, sid) : NULL;
    if (!rec) {
        /* Gone (grace over, another node, a restart) or never ours: a new
         * session, and the client learns it missed something. */
        sh_debug("openwebui: SSE resume from %s: %s; new session", sh_http_req_peer(req),
                 why ? why : "session gone");
        open_stream(sse, r, req, true);
        return;
    }
    if (strcmp(rec->user_id, r->user_id)) {
        sh_debug("openwebui: SSE resume of %s refused: another user's credentials", sid);
        sse->app->auth_failed++;
        respond_error(req, 401, "not authenticated: the session belongs to another user");
        return;
    }
    sh_eio_sse_resume(s, req, seq);
}

/* ---- POST: one event up ---- */

static void on_post_ack(sh_sio_server_t *srv, const char *socket_id, int status,
                        const sh_sio_args_t *args, void *data)
{
    sse_req_t *r = data;
    r->acking = false;
    sh_timer_stop(r->loop, &r->timer);
    if (status < 0)
        answer_later(r, 410, json_pack("{s:s}", "error", "the session ended before its ack"));
    else
        answer_later(r, 200, json_incref(args->args));
    maybe_free(r);
}

static void on_post_timeout(sh_loop_t *loop, sh_timer_t *t)
{
    sse_req_t *r = t->data;
    cancel_ack(r);
    answer_later(r, 504, json_pack("{s:s}", "error", "no ack from the handler in time"));
}

/* Runs the event; answers the request, or holds it for the ack (returns
 * true then, the ack perhaps already in). */
static bool post_event(owui_sse_t *sse, sse_req_t *r, sh_http_req_t *req, const char *sock_id)
{
    owui_app_t *app = sse->app;
    if (sh_http_req_body_too_large(req)) {
        respond_error(req, 413, "body over max_payload");
        return false;
    }
    size_t len;
    const char *body = sh_http_req_body(req, &len);
    sh_sse_post_t post;
    const char *why = NULL;
    if (sh_sse_parse_post(body, len, &post, &why) < 0) {
        respond_error(req, 400, why);
        return false;
    }
    bool held = false;
    sse_rec_t *rec = sh_map_get(&sse->by_sock, sock_id);
    sh_sio_socket_t *sock = rec ? sh_sio_server_socket(app->sio, sock_id) : NULL;
    if (!sock) {
        respond_error(req, 404, "no such SSE session");
    } else if (strcmp(rec->user_id, r->user_id)) {
        sh_debug("openwebui: POST to SSE socket %s refused: another user's credentials", sock_id);
        respond_error(req, 403, "the session belongs to another user");
    } else if (!post.ack) {
        sh_sio_socket_dispatch(sock, post.event, post.args, NULL, NULL, NULL);
        respond_json(req, 202, json_object());
    } else {
        /* Held until the handler acks; it may do so before dispatch
         * returns, and the request is then answered on its next call. */
        snprintf(r->sock_id, sizeof(r->sock_id), "%s", sock_id);
        held = r->acking = true;
        sh_http_req_suspend(req);
        sh_timer_start(r->loop, &r->timer, (uint64_t)app->cfg->http_timeout_ms, on_post_timeout, r);
        sh_sio_socket_dispatch(sock, post.event, post.args, on_post_ack, r, &r->ack_id);
    }
    sh_sse_post_release(&post);
    return held;
}

/* ---- the route ---- */

static void handle_preflight(sh_http_req_t *req)
{
    sh_http_req_add_header(req, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    const char *want = sh_http_req_header(req, "Access-Control-Request-Headers");
    if (want)
        sh_http_req_add_header(req, "Access-Control-Allow-Headers", want);
    sh_http_req_add_header(req, "Access-Control-Max-Age", "86400");
    sh_http_respond(req, 204, NULL, "", 0);
}

/* A held request's next call: its token was checked, or its ack came (or
 * timed out, or the server is shutting down). */
static void on_resumed(owui_sse_t *sse, sse_req_t *r, sh_http_req_t *req)
{
    if (r->answered) {
        respond_json(req, r->status, json_incref(r->answer));
        unhold(r);
        maybe_free(r);
        return;
    }
    if (!r->checked || r->acking) {
        sh_http_req_suspend(req); /* a stray resume: still waiting */
        return;
    }
    r->checked = false;
    if (!r->user_id) {
        if (!sse->app->shutting_down)
            respond_error(req, 401, r->reason);
        else if (r->kind == REQ_STREAM)
            respond_come_back(req);
        else
            respond_error(req, 503, "shutting down");
    } else if (r->kind == REQ_STREAM && sse->app->shutting_down) {
        respond_come_back(req);
    } else if (r->kind == REQ_STREAM) {
        unhold(r); /* before: the stream becomes the request's owner */
        finish_stream(sse, r, req);
    } else {
        if (post_event(sse, r, req, sh_http_req_path(req) + strlen(sse->route) + 1))
            return; /* held for the ack (or answered on the next call) */
    }
    unhold(r);
    maybe_free(r);
}

static void on_request(sh_http_req_t *req, void *data)
{
    owui_sse_t *sse = data;
    owui_app_t *app = sse->app;
    sse_req_t *held = sh_http_req_owner(req);
    if (held) {
        on_resumed(sse, held, req);
        return;
    }
    if (!sh_eio_server_cors(app->eio, req)) {
        sh_debug("openwebui: SSE request from %s: origin not allowed", sh_http_req_peer(req));
        respond_error(req, 403, "origin not allowed");
        return;
    }
    const char *rest = sh_http_req_path(req) + strlen(sse->route);
    bool stream_path = !*rest || !strcmp(rest, "/");
    bool post_path =
        rest[0] == '/' && rest[1] && !strchr(rest + 1, '/') && strlen(rest + 1) <= SH_ID_LEN;
    if (!stream_path && !post_path) {
        respond_error(req, 404, "not found");
        return;
    }
    sh_http_method_t m = sh_http_req_method(req);
    if (m == SH_HTTP_OPTIONS) {
        handle_preflight(req);
        return;
    }
    if ((stream_path && m != SH_HTTP_GET) || (post_path && m != SH_HTTP_POST)) {
        sh_http_req_add_header(req, "Allow", stream_path ? "GET, OPTIONS" : "POST, OPTIONS");
        respond_error(req, 405, stream_path ? "use GET for the stream" : "use POST for events");
        return;
    }
    if (app->shutting_down) {
        if (stream_path)
            respond_come_back(req);
        else
            respond_error(req, 503, "shutting down");
        return;
    }
    const char *token = credentials(req);
    if (!token) {
        app->auth_failed++;
        sh_debug("openwebui: SSE request from %s: no credentials", sh_http_req_peer(req));
        respond_error(req, 401, "not authenticated: no token");
        return;
    }
    sse_req_t *r = hold(sse, req, stream_path ? REQ_STREAM : REQ_POST);
    if (stream_path)
        r->token = sh_strdup(token);
    /* May call back at once: the request is then resumed inside this
     * handler and answered on its next call. */
    r->checking = true;
    owui_check_token(app, token, sh_http_req_peer(req), on_token_checked, r);
}

/* ---- the app's hooks ---- */

owui_sse_t *owui_sse_new(owui_app_t *app, sh_buf_t *err)
{
    owui_sse_t *sse = sh_new0(owui_sse_t);
    sse->app = app;
    sh_list_init(&sse->held);
    const char *path = sh_config_path(app->cfg);
    size_t n = strlen(path) + 4;
    sse->route = sh_malloc(n);
    snprintf(sse->route, n, "%ssse", path);
    if (sh_http_route(app->ctx->http, sse->route, false, (size_t)app->cfg->max_payload, on_request,
                      sse) < 0) {
        sh_buf_appendf(err, "too many HTTP routes");
        owui_sse_free(sse);
        return NULL;
    }
    return sse;
}

void owui_sse_socket_gone(owui_app_t *app, sh_sio_socket_t *sock)
{
    owui_sse_t *sse = app->sse;
    sse_rec_t *rec = sse ? sh_map_get(&sse->by_sock, sh_sio_socket_id(sock)) : NULL;
    if (!rec)
        return;
    rec_forget(sse, rec);
    /* An SSE session is its one socket: without it, it is over (a no-op
     * when the session is what ended). */
    sh_eio_close(sh_sio_socket_session(sock));
}

void owui_sse_cancel(owui_sse_t *sse)
{
    if (!sse)
        return;
    sh_list_t *pos, *tmp;
    sh_list_foreach_safe (pos, tmp, &sse->held) {
        sse_req_t *r = sh_container_of(pos, sse_req_t, link);
        if (r->acking) {
            cancel_ack(r);
            answer_later(r, 503, json_pack("{s:s}", "error", "server shutting down"));
        }
    }
}

void owui_sse_free(owui_sse_t *sse)
{
    if (!sse)
        return;
    /* Held requests went with the HTTP layer (freed first); a token check
     * still out frees its record from its callback. */
    sh_map_iter_t it;
    sh_map_iter_init(&it, &sse->by_sock);
    while (sh_map_iter_next(&it)) {
        sse_rec_t *rec = sh_map_iter_remove(&it);
        free(rec->user_id);
        free(rec);
    }
    sh_map_release(&sse->by_sock);
    sh_map_release(&sse->by_eio);
    free(sse->route);
    free(sse);
}
