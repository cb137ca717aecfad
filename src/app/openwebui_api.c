/* The Open WebUI app's HTTP API under /api/v1/ (bearer key), and the
 * operator endpoints /healthz and /metrics. A backend uses it to push the
 * chat event stream, call a browser and wait for its ack, and read the
 * pools. Bodies and answers are JSON; see api/api.h for errors. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/metrics.h"
#include "app/openwebui.h"
#include "core/alloc.h"
#include "core/list.h"
#include "core/log.h"
#include "socketio/packet.h"

static const char *const disconnected_msg = "Client session disconnected.";

/* ---- helpers ---- */

static const char *body_string(const sh_api_call_t *call, const char *key)
{
    const char *s = json_string_value(json_object_get(call->body, key));
    return s && s[0] ? s : NULL;
}

/* The arguments of an emit: "args" (an array) or "data" (one argument). */
static json_t *emit_args(const sh_api_call_t *call)
{
    json_t *args = json_object_get(call->body, "args");
    if (json_is_array(args))
        return json_incref(args);
    json_t *data = json_object_get(call->body, "data");
    json_t *arr = json_array();
    if (data)
        json_array_append(arr, data);
    return arr;
}

typedef struct read_ctx {
    owui_app_t *app;
    sh_api_pending_t *p;
    char key[64];
} read_ctx_t;

static void room_of_user(char *out, size_t n, const char *user_id)
{
    snprintf(out, n, "user:%s", user_id);
}

/* ---- POST /api/v1/emit ---- */

static void api_emit(sh_api_call_t *call, void *data)
{
    owui_app_t *app = data;
    const char *event = body_string(call, "event");
    json_t *to = json_object_get(call->body, "to");
    const char *nspname = body_string(call, "namespace");
    if (!event) {
        sh_api_reply_error(call, 400, "\"event\" (a non-empty string) is required");
        return;
    }
    if (!json_is_object(to)) {
        sh_api_reply_error(call, 400, "\"to\" must be an object with one of sid, user, room");
        return;
    }
    sh_hub_nsp_t *nsp = nspname ? sh_hub_nsp(app->hub, nspname) : app->nsp;
    if (!nsp) {
        sh_api_reply_error(call, 404, "no such namespace");
        return;
    }
    const char *sid = json_string_value(json_object_get(to, "sid"));
    const char *user = json_string_value(json_object_get(to, "user"));
    const char *room = json_string_value(json_object_get(to, "room"));
    if ((sid != NULL) + (user != NULL) + (room != NULL) != 1) {
        sh_api_reply_error(call, 400, "\"to\" needs exactly one of sid, user, room (strings)");
        return;
    }
    char buf[300];
    if (user) {
        room_of_user(buf, sizeof(buf), user);
        room = buf;
    } else if (sid) {
        room = sid; /* every socket is in its own sid room */
    }
    json_t *args = emit_args(call);
    const char *rooms[] = {room};
    sh_hub_target_t target = {.rooms = rooms, .nrooms = 1};
    size_t n = sh_hub_emit(nsp, &target, event, args, NULL, 0);
    json_decref(args);
    sh_api_reply(call, 200, json_pack("{s:I}", "recipients", (json_int_t)n));
}

/* ---- POST /api/v1/chat-events ---- */

static void api_chat_events(sh_api_call_t *call, void *data)
{
    owui_app_t *app = data;
    const char *user_id = body_string(call, "user_id");
    const char *session_id = body_string(call, "session_id");
    json_t *chat_id = json_object_get(call->body, "chat_id");
    json_t *message_id = json_object_get(call->body, "message_id");
    json_t *payload = json_object_get(call->body, "data");
    const char *event = body_string(call, "event");
    if (!user_id || !chat_id || !message_id || !payload) {
        sh_api_reply_error(call, 400,
                           "user_id, chat_id, message_id and data are required "
                           "(session_id and event are optional)");
        return;
    }
    if (!event)
        event = "chat-events";
    if (strcmp(event, "chat-events") && strcmp(event, "events")) {
        sh_api_reply_error(call, 400, "\"event\" must be \"chat-events\" or \"events\"");
        return;
    }
    /* Every session of the user plus the request's own session (Open
     * WebUI's get_event_emitter), each once, encoded once. */
    char room[300];
    room_of_user(room, sizeof(room), user_id);
    const char *rooms[2] = {room, session_id};
    sh_hub_target_t target = {.rooms = rooms, .nrooms = session_id ? 2 : 1};
    json_t *args =
        json_pack("[{s:O,s:O,s:O}]", "chat_id", chat_id, "message_id", message_id, "data", payload);
    size_t n = sh_hub_emit(app->nsp, &target, event, args, NULL, 0);
    json_decref(args);
    sh_api_reply(call, 200, json_pack("{s:I}", "recipients", (json_int_t)n));
}

/* ---- POST /api/v1/call ---- */

typedef struct owui_call {
    sh_list_t link; /* app->calls */
    owui_app_t *app;
    sh_api_pending_t *p;
    char sid[64];
    int64_t ack_id;
    sh_timer_t timer;
} owui_call_t;

static void call_finish(owui_call_t *c, unsigned status, json_t *body)
{
    sh_timer_stop(c->app->ctx->loop, &c->timer);
    sh_list_remove(&c->link);
    sh_api_complete(c->p, status, body);
    free(c);
}

static void on_call_ack(sh_sio_server_t *srv, const char *socket_id, int status,
                        const sh_sio_args_t *args, void *data)
{
    owui_call_t *c = data;
    if (status < 0) {
        call_finish(c, 404, json_pack("{s:s}", "error", disconnected_msg));
        return;
    }
    call_finish(c, 200, json_pack("{s:O}", "args", args->args));
}

static void on_call_timeout(sh_loop_t *loop, sh_timer_t *t)
{
    owui_call_t *c = t->data;
    sh_sio_socket_t *sock = sh_sio_server_socket(c->app->sio, c->sid);
    if (sock)
        sh_sio_socket_cancel_ack(sock, c->ack_id);
    call_finish(c, 504, json_pack("{s:s}", "error", "timed out waiting for the client's ack"));
}

static void api_call(sh_api_call_t *call, void *data)
{
    owui_app_t *app = data;
    const char *sid = body_string(call, "sid");
    const char *user_id = body_string(call, "user_id");
    const char *event = body_string(call, "event");
    json_t *timeout = json_object_get(call->body, "timeout_ms");
    if (!sid) {
        sh_api_reply_error(call, 400, "\"sid\" (a non-empty string) is required");
        return;
    }
    if (timeout && (!json_is_integer(timeout) || json_integer_value(timeout) < 0)) {
        sh_api_reply_error(call, 400, "\"timeout_ms\" must be a non-negative integer");
        return;
    }
    if (!event)
        event = "chat-events";
    /* Only an authenticated session, of the named user when one is named
     * (a backend must not reach another user's browser). */
    owui_session_t *s = owui_session_by_sid(app, sid);
    if (!s || !s->user_id || (user_id && strcmp(user_id, s->user_id))) {
        sh_api_reply_error(call, 404, disconnected_msg);
        return;
    }
    int64_t timeout_ms = timeout ? json_integer_value(timeout) : app->cfg->event_caller_timeout_ms;
    owui_call_t *c = sh_new0(owui_call_t);
    c->app = app;
    snprintf(c->sid, sizeof(c->sid), "%s", sid);
    json_t *args = emit_args(call);
    int rc = sh_sio_socket_emit(s->sock, event, args, NULL, 0, on_call_ack, c, &c->ack_id);
    json_decref(args);
    if (rc < 0) {
        free(c);
        sh_api_reply_error(call, 404, disconnected_msg);
        return;
    }
    c->p = sh_api_hold(call);
    sh_list_insert_tail(&app->calls, &c->link);
    if (timeout_ms > 0)
        sh_timer_start(app->ctx->loop, &c->timer, (uint64_t)timeout_ms, on_call_timeout, c);
}

void owui_api_cancel_calls(owui_app_t *app)
{
    sh_list_t *pos, *tmp;
    sh_list_foreach_safe (pos, tmp, &app->calls) {
        owui_call_t *c = sh_container_of(pos, owui_call_t, link);
        sh_sio_socket_t *sock = sh_sio_server_socket(app->sio, c->sid);
        if (sock)
            sh_sio_socket_cancel_ack(sock, c->ack_id);
        call_finish(c, 503, json_pack("{s:s}", "error", "server shutting down"));
    }
}

/* ---- reads from the store ---- */

static void on_list_read(int status, json_t *result, void *data)
{
    read_ctx_t *r = data;
    if (status < 0)
        sh_api_complete(r->p, 503, json_pack("{s:s}", "error", "pool store unavailable"));
    else
        sh_api_complete(r->p, 200, json_pack("{s:O}", r->key, result));
    free(r);
}

static void start_read(sh_api_call_t *call, owui_app_t *app, const char *key,
                       int (*op)(sh_store_t *, sh_store_cb, void *))
{
    read_ctx_t *r = sh_new0(read_ctx_t);
    r->app = app;
    snprintf(r->key, sizeof(r->key), "%s", key);
    r->p = sh_api_hold(call);
    if (op(app->store, on_list_read, r) < 0) {
        sh_api_complete(r->p, 503, json_pack("{s:s}", "error", "pool store unavailable"));
        free(r);
    }
}

static void api_users(sh_api_call_t *call, void *data)
{
    owui_app_t *app = data;
    start_read(call, app, "user_ids", app->store->ops->user_ids);
}

static void api_usage(sh_api_call_t *call, void *data)
{
    owui_app_t *app = data;
    start_read(call, app, "models", app->store->ops->models);
}

static void on_session_read(int status, json_t *result, void *data)
{
    read_ctx_t *r = data;
    if (status < 0)
        sh_api_complete(r->p, 503, json_pack("{s:s}", "error", "pool store unavailable"));
    else if (!json_is_object(result))
        sh_api_complete(r->p, 404, json_pack("{s:s}", "error", "no such session"));
    else
        sh_api_complete(r->p, 200, json_incref(result));
    free(r);
}

static void api_session(sh_api_call_t *call, void *data)
{
    owui_app_t *app = data;
    read_ctx_t *r = sh_new0(read_ctx_t);
    r->app = app;
    r->p = sh_api_hold(call);
    if (app->store->ops->session_get(app->store, call->params[0], on_session_read, r) < 0) {
        sh_api_complete(r->p, 503, json_pack("{s:s}", "error", "pool store unavailable"));
        free(r);
    }
}

/* ---- rooms ---- */

typedef struct room_list {
    json_t *sids;
    json_t *user_ids; /* object used as a set */
} room_list_t;

static void collect_member(sh_sio_socket_t *sock, void *data)
{
    room_list_t *rl = data;
    json_array_append_new(rl->sids, json_string(sh_sio_socket_id(sock)));
    owui_session_t *s = sh_sio_socket_slot(sock, SH_SIO_SLOT_APP);
    if (s && s->user_id)
        json_object_set_new(rl->user_ids, s->user_id, json_true());
}

static void api_room(sh_api_call_t *call, void *data)
{
    owui_app_t *app = data;
    room_list_t rl = {json_array(), json_object()};
    sh_hub_room_foreach(app->nsp, call->params[0], collect_member, &rl);
    json_t *users = json_array();
    const char *k;
    json_t *v;
    json_object_foreach (rl.user_ids, k, v) {
        json_array_append_new(users, json_string(k));
    }
    json_decref(rl.user_ids);
    sh_api_reply(
        call, 200,
        json_pack("{s:s,s:o,s:o}", "room", call->params[0], "sids", rl.sids, "user_ids", users));
}

typedef struct room_change {
    const char *room;
    bool join;
    size_t count;
} room_change_t;

static void change_membership(sh_sio_socket_t *sock, room_change_t *rc)
{
    if (rc->join == sh_hub_in_room(sock, rc->room))
        return;
    if (rc->join)
        sh_hub_join(sock, rc->room);
    else
        sh_hub_leave(sock, rc->room);
    rc->count++;
}

static void collect_socket(sh_sio_socket_t *sock, void *data)
{
    json_array_append_new(data, json_string(sh_sio_socket_id(sock)));
}

static void room_join_leave(sh_api_call_t *call, owui_app_t *app, bool join)
{
    json_t *sids = json_object_get(call->body, "sids");
    const char *user_id = body_string(call, "user_id");
    if ((!sids && !user_id) || (sids && !json_is_array(sids))) {
        sh_api_reply_error(call, 400, "give \"sids\" (an array) or \"user_id\"");
        return;
    }
    room_change_t rc = {.room = call->params[0], .join = join};
    /* Resolve the targets first: joining changes the rooms we iterate. */
    json_t *targets = json_array();
    if (user_id) {
        char room[300];
        room_of_user(room, sizeof(room), user_id);
        sh_hub_room_foreach(app->nsp, room, collect_socket, targets);
    }
    size_t i;
    json_t *v;
    json_array_foreach (sids, i, v) {
        if (json_is_string(v))
            json_array_append(targets, v);
    }
    json_array_foreach (targets, i, v) {
        sh_sio_socket_t *sock = sh_sio_server_socket(app->sio, json_string_value(v));
        if (sock && sh_hub_socket_nsp(sock) == app->nsp)
            change_membership(sock, &rc);
    }
    json_decref(targets);
    sh_api_reply(call, 200, json_pack("{s:I}", join ? "joined" : "left", (json_int_t)rc.count));
}

static void api_room_join(sh_api_call_t *call, void *data)
{
    room_join_leave(call, data, true);
}

static void api_room_leave(sh_api_call_t *call, void *data)
{
    room_join_leave(call, data, false);
}

/* ---- DELETE /api/v1/users/{id}/sessions ---- */

static void api_user_disconnect(sh_api_call_t *call, void *data)
{
    owui_app_t *app = data;
    char room[300];
    room_of_user(room, sizeof(room), call->params[0]);
    json_t *targets = json_array();
    sh_hub_room_foreach(app->nsp, room, collect_socket, targets);
    size_t i, n = 0;
    json_t *v;
    json_array_foreach (targets, i, v) {
        sh_sio_socket_t *sock = sh_sio_server_socket(app->sio, json_string_value(v));
        if (sock) {
            /* A server-side disconnect: socket.io-client does not reconnect
             * after it (reason "io server disconnect"). */
            sh_sio_socket_disconnect(sock, true);
            n++;
        }
    }
    json_decref(targets);
    sh_info("api: disconnected %zu sessions of user %s", n, call->params[0]);
    sh_api_reply(call, 200, json_pack("{s:I}", "disconnected", (json_int_t)n));
}

static const sh_api_route_t routes[] = {
    {SH_HTTP_POST, "emit", true, api_emit},
    {SH_HTTP_POST, "chat-events", true, api_chat_events},
    {SH_HTTP_POST, "call", true, api_call},
    {SH_HTTP_GET, "users", false, api_users},
    {SH_HTTP_GET, "usage", false, api_usage},
    {SH_HTTP_GET, "sessions/*", false, api_session},
    {SH_HTTP_GET, "rooms/*", false, api_room},
    {SH_HTTP_POST, "rooms/*/join", true, api_room_join},
    {SH_HTTP_POST, "rooms/*/leave", true, api_room_leave},
    {SH_HTTP_DELETE, "users/*/sessions", false, api_user_disconnect},
};

sh_api_t *owui_api_new(owui_app_t *app, sh_buf_t *err)
{
    return sh_api_new(app->ctx->http, "/api/v1/", app->cfg->api_key,
                      (size_t)app->cfg->api_body_limit, routes, sizeof(routes) / sizeof(routes[0]),
                      app, err);
}

/* ---- /healthz and /metrics (no key: they say nothing secret) ---- */

static void on_healthz(sh_http_req_t *req, void *data)
{
    owui_app_t *app = data;
    const sh_sio_stats_t *ss = sh_sio_server_stats(app->sio);
    char body[256];
    int n = snprintf(body, sizeof(body),
                     "{\"status\":\"ok\",\"ready\":true,\"app\":\"openwebui\",\"store\":\"%s\","
                     "\"sockets\":%llu}\n",
                     app->store->ops->name, (unsigned long long)ss->sockets);
    sh_http_req_add_header(req, "Cache-Control", "no-store");
    sh_http_respond(req, 200, "application/json", body, (size_t)n);
}

static void on_metrics(sh_http_req_t *req, void *data)
{
    owui_app_t *app = data;
    const sh_eio_stats_t *es = sh_eio_server_stats(app->eio);
    const sh_sio_stats_t *ss = sh_sio_server_stats(app->sio);
    const sh_hub_stats_t *hs = sh_hub_stats(app->hub);
    const sh_http_stats_t *http = sh_http_stats(app->ctx->http);
    const sh_api_stats_t *as = sh_api_stats(app->api);
    sh_buf_t b = SH_BUF_INIT;
    sh_metrics_family(&b, "siohub_connections", SH_METRIC_GAUGE, "Engine.IO sessions by transport");
    sh_metrics_sample(&b, "siohub_connections", "transport", "polling", es->polling);
    sh_metrics_sample(&b, "siohub_connections", "transport", "websocket", es->websocket);
    sh_metrics_one(&b, "siohub_http_connections", SH_METRIC_GAUGE,
                   "HTTP connections held by libmicrohttpd", sh_http_connections(app->ctx->http));
    sh_metrics_one(&b, "siohub_sockets", SH_METRIC_GAUGE, "Connected Socket.IO sockets",
                   ss->sockets);
    sh_metrics_one(&b, "siohub_rooms", SH_METRIC_GAUGE, "Rooms with members", hs->rooms);
    sh_metrics_one(&b, "siohub_sessions_opened_total", SH_METRIC_COUNTER,
                   "Engine.IO sessions opened", es->sessions_opened);
    sh_metrics_one(&b, "siohub_upgrades_total", SH_METRIC_COUNTER,
                   "Polling sessions upgraded to WebSocket", es->upgrades);
    sh_metrics_family(&b, "siohub_packets_total", SH_METRIC_COUNTER, "Engine.IO packets");
    sh_metrics_sample(&b, "siohub_packets_total", "direction", "in", es->packets_in);
    sh_metrics_sample(&b, "siohub_packets_total", "direction", "out", es->packets_out);
    sh_metrics_family(&b, "siohub_bytes_total", SH_METRIC_COUNTER, "Engine.IO payload bytes");
    sh_metrics_sample(&b, "siohub_bytes_total", "direction", "in", es->bytes_in);
    sh_metrics_sample(&b, "siohub_bytes_total", "direction", "out", es->bytes_out);
    sh_metrics_one(&b, "siohub_slow_clients_dropped_total", SH_METRIC_COUNTER,
                   "Clients dropped for passing the output queue limit", es->slow_dropped);
    sh_metrics_one(&b, "siohub_broadcasts_total", SH_METRIC_COUNTER,
                   "Broadcasts (each encoded once)", hs->broadcasts);
    sh_metrics_one(&b, "siohub_broadcast_deliveries_total", SH_METRIC_COUNTER,
                   "Sockets reached by broadcasts", hs->deliveries);
    sh_metrics_one(&b, "siohub_auth_total", SH_METRIC_COUNTER, "Successful authentications",
                   app->auth_ok);
    sh_metrics_one(&b, "siohub_auth_failures_total", SH_METRIC_COUNTER,
                   "Tokens that authenticated nobody", app->auth_failed);
    sh_metrics_one(&b, "siohub_parse_errors_total", SH_METRIC_COUNTER,
                   "Sessions closed for malformed Socket.IO packets", ss->parse_errors);
    static const char *const classes[] = {"0xx", "1xx", "2xx", "3xx", "4xx", "5xx"};
    sh_metrics_family(&b, "siohub_http_responses_total", SH_METRIC_COUNTER,
                      "HTTP responses by status class");
    for (int i = 1; i < 6; i++)
        sh_metrics_sample(&b, "siohub_http_responses_total", "class", classes[i],
                          http->responses_by_class[i]);
    sh_metrics_family(&b, "siohub_api_requests_total", SH_METRIC_COUNTER,
                      "API requests by status class");
    for (int i = 1; i < 6; i++)
        sh_metrics_sample(&b, "siohub_api_requests_total", "class", classes[i], as->by_status[i]);
    sh_metrics_one(&b, "siohub_api_unauthorized_total", SH_METRIC_COUNTER,
                   "API requests refused for a missing or wrong key", as->unauthorized);
    sh_http_req_add_header(req, "Cache-Control", "no-store");
    sh_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", sh_buf_peek(&b),
                    sh_buf_avail(&b));
    sh_buf_release(&b);
}

void owui_api_add_ops_routes(owui_app_t *app)
{
    sh_http_route(app->ctx->http, "/healthz", true, 0, on_healthz, app);
    sh_http_route(app->ctx->http, "/metrics", true, 0, on_metrics, app);
}
