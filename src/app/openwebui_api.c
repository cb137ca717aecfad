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

/* A span of a string literal. */
#define SPAN_LIT(s)                                                                                \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }

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

/* "user:<id>", cut to fit n (as snprintf would: a per-token path, so
 * without its format parsing). */
static void room_of_user_text(char *out, size_t n, const char *user_id, size_t len)
{
    static const char prefix[] = "user:";
    const size_t plen = sizeof(prefix) - 1;
    if (len > n - plen - 1)
        len = n - plen - 1;
    memcpy(out, prefix, plen);
    memcpy(out + plen, user_id, len);
    out[plen + len] = '\0';
}

static void room_of_user(char *out, size_t n, const char *user_id)
{
    room_of_user_text(out, n, user_id, strlen(user_id));
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
    size_t n = sh_adapter_emit(app->adapter, nsp, &target, event, args, NULL, 0);
    json_decref(args);
    sh_api_reply_count(call, "recipients", n);
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
    size_t n = sh_adapter_emit(app->adapter, app->nsp, &target, event, args, NULL, 0);
    json_decref(args);
    sh_api_reply_count(call, "recipients", n);
}

/* The same, from the item's JSON text: chat_id, message_id and data go to
 * the browsers as the backend wrote them (whitespace too), without a tree
 * or a re-encoding, which were most of an event's cost. Only the plain
 * case comes here; anything else returns -EAGAIN untouched and takes the
 * way above, errors included: a key or a name (user_id, session_id,
 * event) with escapes, a missing field, an unknown event. In fleet mode
 * the message for the other nodes is written from the same text
 * (sh_adapter_emit_text). */
static int api_chat_events_raw(sh_api_call_t *call, sh_json_span_t item,
                               const sh_json_member_t *members, size_t nmembers, void *data)
{
    owui_app_t *app = data;
    sh_json_span_t user = {0}, session = {0}, event = {0}, chat_id = {0}, message_id = {0},
                   payload = {0};
    for (size_t i = 0; i < nmembers; i++) {
        sh_json_span_t key = members[i].key, value = members[i].value;
        if (memchr(key.p, '\\', key.len))
            return -EAGAIN;
        if (sh_json_span_eq(key, "user_id"))
            user = value;
        else if (sh_json_span_eq(key, "session_id"))
            session = value;
        else if (sh_json_span_eq(key, "event"))
            event = value;
        else if (sh_json_span_eq(key, "chat_id"))
            chat_id = value;
        else if (sh_json_span_eq(key, "message_id"))
            message_id = value;
        else if (sh_json_span_eq(key, "data"))
            payload = value;
    }
    if (!user.p || !chat_id.p || !message_id.p || !payload.p)
        return -EAGAIN;
    sh_json_span_t user_text, session_text = {0}, event_text = {0};
    if (!sh_json_plain_string(user, &user_text) || user_text.len == 0)
        return -EAGAIN;
    /* As body_string: a non-string or empty session_id or event is none. */
    if (session.p && session.p[0] == '"' && !sh_json_plain_string(session, &session_text))
        return -EAGAIN;
    if (event.p && event.p[0] == '"' && !sh_json_plain_string(event, &event_text))
        return -EAGAIN;
    const char *event_name = "chat-events";
    if (event_text.len) {
        if (sh_json_span_eq(event_text, "events"))
            event_name = "events";
        else if (!sh_json_span_eq(event_text, "chat-events"))
            return -EAGAIN;
    }
    char room[300], session_room[300];
    room_of_user_text(room, sizeof(room), user_text.p, user_text.len);
    if (session_text.len >= sizeof(session_room))
        return -EAGAIN;
    if (session_text.len) /* .p is NULL when there is none */
        memcpy(session_room, session_text.p, session_text.len);
    session_room[session_text.len] = '\0';
    /* The argument as the tree way writes it: these keys, in this order. */
    const sh_json_span_t parts[] = {
        SPAN_LIT("{\"chat_id\":"),
        chat_id,
        SPAN_LIT(",\"message_id\":"),
        message_id,
        SPAN_LIT(",\"data\":"),
        payload,
        SPAN_LIT("}"),
    };
    const char *rooms[2] = {room, session_room};
    size_t n;
    if (sh_adapter_emit_text(app->adapter, app->nsp, rooms, session_text.len ? 2 : 1, event_name,
                             parts, sizeof(parts) / sizeof(parts[0]), call->text_unicode_escapes,
                             &n) < 0)
        return -EAGAIN;
    sh_api_reply_count(call, "recipients", n);
    return 0;
}

/* ---- POST /api/v1/call ----
 *
 * Open WebUI's get_event_call: emit to one session and wait for its ack.
 * The session must be in SESSION_POOL (on any node) and, when user_id is
 * given, belong to that user; else "Client session disconnected.". The
 * emit goes through the adapter, so a session on another node answers
 * through Redis.
 *
 * A call ends with "Client session disconnected." when its session
 * leaves, also without a timeout ("until the session leaves"). For a
 * session of this node the socket's end fails the ack; for another
 * node's, no message says so (python-socketio has none), so the call
 * watches the pool: every CALL_WATCH_MS it reads the session's entry and
 * its node's liveness key in one script. A missing entry means the
 * session is gone once a second look CALL_CONFIRM_MS later still misses
 * it (the session left, or its node died and the reaper removed it),
 * unless the entry may just not be back yet: when Redis returns empty,
 * each node writes its liveness key and then its entries as soon as it
 * reconnects, so after this node saw Redis come back a miss counts only
 * while that node's key is there, or once Redis has been back for longer
 * than a node can take to reconnect (CALL_REJOIN_MS: the Redis client's
 * 5 s backoff cap plus its 2 s connect timeout, with room). While Redis
 * is away nothing is decided. */

#define CALL_WATCH_MS   1000
#define CALL_CONFIRM_MS 250
#define CALL_REJOIN_MS  10000

static const char lua_call_watch[] =
    "local u = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "local alive = 0\n"
    "if ARGV[2] ~= '' then alive = redis.call('EXISTS', ARGV[2]) end\n"
    "return {u or '', alive}\n";

sh_redis_script_t *owui_call_watch_script(void)
{
    return sh_redis_script_new(lua_call_watch);
}

typedef struct owui_call {
    sh_list_t link; /* app->calls */
    owui_app_t *app;
    sh_api_pending_t *p;
    char sid[64];
    char *user_id; /* NULL: any */
    char *event;
    json_t *args;
    int64_t timeout_ms;
    bool sent;
    bool awaiting_store; /* a pool read is out: its callback frees us */
    bool answered;       /* the HTTP answer went (shutdown, timeout) */
    uint64_t handle;     /* the adapter's, once sent */
    sh_timer_t timer;
    /* Another node's session: watched (see above). */
    char *node;      /* its siohub_node, NULL when unknown */
    unsigned misses; /* looks in a row that found no entry */
    sh_timer_t watch;
} owui_call_t;

static void call_free(owui_call_t *c)
{
    free(c->node);
    free(c->user_id);
    free(c->event);
    json_decref(c->args);
    free(c);
}

/* Answers the held request once; the record lives on while a store read
 * still holds it. */
static void call_finish(owui_call_t *c, unsigned status, json_t *body)
{
    if (c->answered) {
        json_decref(body);
        return;
    }
    c->answered = true;
    sh_timer_stop(c->app->ctx->loop, &c->timer);
    sh_timer_stop(c->app->ctx->loop, &c->watch);
    sh_list_remove(&c->link);
    sh_api_complete(c->p, status, body);
    if (!c->awaiting_store)
        call_free(c);
}

static void on_call_answer(int status, const sh_sio_args_t *args, void *data)
{
    owui_call_t *c = data;
    if (status < 0) {
        call_finish(c, status == -ECANCELED ? 503 : 404,
                    json_pack("{s:s}", "error",
                              status == -ECANCELED ? "server shutting down" : disconnected_msg));
        return;
    }
    call_finish(c, 200, json_pack("{s:O}", "args", args->args));
}

static void on_call_timeout(sh_loop_t *loop, sh_timer_t *t)
{
    owui_call_t *c = t->data;
    if (c->sent)
        sh_adapter_cancel_call(c->app->adapter, c->handle);
    call_finish(c, 504, json_pack("{s:s}", "error", "timed out waiting for the client's ack"));
}

static void on_call_watch_timer(sh_loop_t *loop, sh_timer_t *t);

static void on_call_watch(int status, const redisReply *reply, void *data)
{
    owui_call_t *c = data;
    c->awaiting_store = false;
    if (c->answered) {
        call_free(c);
        return;
    }
    owui_app_t *app = c->app;
    sh_loop_t *loop = app->ctx->loop;
    uint64_t next = CALL_WATCH_MS;
    if (status == 0 && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
        const redisReply *entry = reply->element[0], *alive = reply->element[1];
        if (entry->type == REDIS_REPLY_STRING && entry->len > 0) {
            c->misses = 0;
        } else {
            bool node_up = alive->type == REDIS_REPLY_INTEGER && alive->integer == 1;
            bool settled =
                !app->redis_back_at || sh_loop_now(loop) - app->redis_back_at >= CALL_REJOIN_MS;
            c->misses++;
            if (node_up || settled) {
                if (c->misses >= 2) {
                    sh_adapter_cancel_call(app->adapter, c->handle);
                    call_finish(c, 404, json_pack("{s:s}", "error", disconnected_msg));
                    return;
                }
                next = CALL_CONFIRM_MS;
            }
        }
    }
    sh_timer_start(loop, &c->watch, next, on_call_watch_timer, c);
}

static void on_call_watch_timer(sh_loop_t *loop, sh_timer_t *t)
{
    owui_call_t *c = t->data;
    owui_app_t *app = c->app;
    const char *prefix = app->cfg->redis_key_prefix;
    size_t n = strlen(prefix) + (c->node ? strlen(c->node) : 0) + 32;
    char *skey = sh_malloc(n), *nkey = sh_malloc(n);
    snprintf(skey, n, "%s:session_pool", prefix);
    snprintf(nkey, n, "%s%s%s", c->node ? prefix : "", c->node ? ":siohub:node:" : "",
             c->node ? c->node : "");
    const char *argv[] = {skey, c->sid, nkey};
    int rc = sh_redis_eval(app->redis, app->call_watch, on_call_watch, c, 1, 3, argv, NULL);
    free(skey);
    free(nkey);
    if (rc < 0) {
        /* Redis away: nothing can be told; look again later. */
        sh_timer_start(loop, t, CALL_WATCH_MS, on_call_watch_timer, c);
        return;
    }
    c->awaiting_store = true;
}

/* The session's pool entry decides whether the call may go. */
static void on_call_session(int status, json_t *user, void *data)
{
    owui_call_t *c = data;
    owui_app_t *app = c->app;
    if (c->awaiting_store) {
        c->awaiting_store = false;
        if (c->answered) {
            /* Timed out or shut down while the pool was read. */
            call_free(c);
            return;
        }
    }
    if (status < 0 && status != -ENOTCONN) {
        call_finish(c, 503, json_pack("{s:s}", "error", "pool store unavailable"));
        return;
    }
    const char *owner = json_string_value(json_object_get(user, "id"));
    if (status == 0 && (!owner || (c->user_id && strcmp(c->user_id, owner)))) {
        call_finish(c, 404, json_pack("{s:s}", "error", disconnected_msg));
        return;
    }
    int rc = sh_adapter_call(app->adapter, app->nsp, c->sid, c->event, c->args, NULL, 0,
                             on_call_answer, c, &c->handle);
    if (rc == -ENOTSUP) {
        /* An SSE client: it sends nothing back, so no ack would ever come. */
        call_finish(
            c, 409,
            json_pack("{s:s}", "error", "the session is an SSE client: it cannot answer calls"));
        return;
    }
    if (rc < 0) {
        call_finish(c, 404, json_pack("{s:s}", "error", disconnected_msg));
        return;
    }
    c->sent = true;
    if (app->redis && !owui_session_by_sid(app, c->sid)) {
        const char *node = json_string_value(json_object_get(user, "siohub_node"));
        c->node = node && node[0] ? sh_strdup(node) : NULL;
        sh_timer_start(app->ctx->loop, &c->watch, CALL_WATCH_MS, on_call_watch_timer, c);
    }
}

static void api_call(sh_api_call_t *call, void *data)
{
    owui_app_t *app = data;
    const char *sid = body_string(call, "sid");
    const char *user_id = body_string(call, "user_id");
    const char *event = body_string(call, "event");
    json_t *timeout = json_object_get(call->body, "timeout_ms");
    if (!sid || strlen(sid) >= 64) {
        sh_api_reply_error(call, 400, "\"sid\" (a non-empty string) is required");
        return;
    }
    if (timeout && (!json_is_integer(timeout) || json_integer_value(timeout) < 0)) {
        sh_api_reply_error(call, 400, "\"timeout_ms\" must be a non-negative integer");
        return;
    }
    owui_call_t *c = sh_new0(owui_call_t);
    c->app = app;
    snprintf(c->sid, sizeof(c->sid), "%s", sid);
    c->user_id = user_id ? sh_strdup(user_id) : NULL;
    c->event = sh_strdup(event ? event : "chat-events");
    c->args = emit_args(call);
    c->timeout_ms = timeout ? json_integer_value(timeout) : app->cfg->event_caller_timeout_ms;
    /* A session of this node is checked here and now; another node's
     * through the pool. */
    owui_session_t *s = owui_session_by_sid(app, sid);
    c->p = sh_api_hold(call);
    sh_list_insert_tail(&app->calls, &c->link);
    if (c->timeout_ms > 0)
        sh_timer_start(app->ctx->loop, &c->timer, (uint64_t)c->timeout_ms, on_call_timeout, c);
    if (s) {
        if (!s->user) {
            call_finish(c, 404, json_pack("{s:s}", "error", disconnected_msg));
            return;
        }
        on_call_session(0, s->user->dict, c);
        return;
    }
    if (!app->redis) {
        call_finish(c, 404, json_pack("{s:s}", "error", disconnected_msg));
        return;
    }
    if (app->store->ops->session_get(app->store, sid, on_call_session, c) < 0) {
        call_finish(c, 503, json_pack("{s:s}", "error", "pool store unavailable"));
        return;
    }
    c->awaiting_store = true;
}

void owui_api_cancel_calls(owui_app_t *app)
{
    sh_list_t *pos, *tmp;
    sh_list_foreach_safe (pos, tmp, &app->calls) {
        owui_call_t *c = sh_container_of(pos, owui_call_t, link);
        if (c->sent)
            sh_adapter_cancel_call(app->adapter, c->handle);
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
    if (s && s->user)
        json_object_set_new(rl->user_ids, s->user->id, json_true());
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

/* ---- rooms/{room}/join|leave and DELETE users/{id}/sessions ----
 *
 * Both act on sids wherever they live: this node's sockets at once, the
 * others' through the adapter (python-socketio's enter_room, leave_room
 * and disconnect messages). A user's sessions are read from USER_POOL, so
 * they are the fleet's; this node's own user room is added in case a pool
 * write has not landed yet. */

typedef enum { ACT_JOIN, ACT_LEAVE, ACT_DISCONNECT } sid_action_t;

typedef struct sid_job {
    owui_app_t *app;
    sh_api_pending_t *p;
    sid_action_t action;
    char *room;
    char *user_id;
    json_t *sids; /* explicit targets */
} sid_job_t;

static void collect_socket(sh_sio_socket_t *sock, void *data)
{
    json_array_append_new(data, json_string(sh_sio_socket_id(sock)));
}

static void add_unique(json_t *set, json_t *arr)
{
    size_t i;
    json_t *v;
    json_array_foreach (arr, i, v) {
        if (json_is_string(v))
            json_object_set(set, json_string_value(v), json_true());
    }
}

/* Applies the action to every target; returns {"joined"|"left"|
 * "disconnected": N}, N counting the sessions acted on, on any node. */
static json_t *apply_action(sid_job_t *j, json_t *pool_sids)
{
    owui_app_t *app = j->app;
    json_t *set = json_object();
    add_unique(set, j->sids);
    add_unique(set, pool_sids);
    if (j->user_id) {
        char room[300];
        room_of_user(room, sizeof(room), j->user_id);
        json_t *local = json_array();
        sh_hub_room_foreach(app->nsp, room, collect_socket, local);
        add_unique(set, local);
        json_decref(local);
    }
    size_t total = 0, here = 0;
    const char *sid;
    json_t *v;
    json_object_foreach (set, sid, v) {
        int r;
        if (j->action == ACT_DISCONNECT) {
            /* A server-side disconnect: socket.io-client does not reconnect
             * after it (reason "io server disconnect"). */
            r = sh_adapter_disconnect(app->adapter, app->nsp, sid);
        } else {
            sh_sio_socket_t *sock = sh_sio_server_socket(app->sio, sid);
            if (sock && sh_hub_socket_nsp(sock) == app->nsp &&
                sh_hub_in_room(sock, j->room) == (j->action == ACT_JOIN))
                continue; /* already so here: nothing to change */
            if (!sock && !app->redis)
                continue; /* not a session of ours, and no fleet */
            r = sh_adapter_room(app->adapter, app->nsp, sid, j->room, j->action == ACT_JOIN);
        }
        total++;
        here += r == 1;
    }
    json_decref(set);
    static const char *const names[] = {"joined", "left", "disconnected"};
    sh_debug("api: %s %zu sessions (%zu on this node)", names[j->action], total, here);
    return json_pack("{s:I}", names[j->action], (json_int_t)total);
}

static void sid_job_free(sid_job_t *j)
{
    free(j->room);
    free(j->user_id);
    json_decref(j->sids);
    free(j);
}

static void on_user_sessions(int status, json_t *result, void *data)
{
    sid_job_t *j = data;
    if (status < 0 && status != -ECANCELED) {
        sh_api_complete(j->p, 503, json_pack("{s:s}", "error", "pool store unavailable"));
    } else if (status == -ECANCELED || j->app->shutting_down) {
        sh_api_complete(j->p, 503, json_pack("{s:s}", "error", "server shutting down"));
    } else {
        json_t *body = apply_action(j, result);
        if (j->action == ACT_DISCONNECT)
            sh_info("api: disconnecting the sessions of user %s", j->user_id);
        sh_api_complete(j->p, 200, body);
    }
    sid_job_free(j);
}

static void start_sid_job(sh_api_call_t *call, owui_app_t *app, sid_action_t action,
                          const char *room, const char *user_id, json_t *sids)
{
    sid_job_t *j = sh_new0(sid_job_t);
    j->app = app;
    j->action = action;
    j->room = room ? sh_strdup(room) : NULL;
    j->user_id = user_id ? sh_strdup(user_id) : NULL;
    j->sids = sids ? json_incref(sids) : json_array();
    if (!user_id) {
        sh_api_reply(call, 200, apply_action(j, NULL));
        sid_job_free(j);
        return;
    }
    j->p = sh_api_hold(call);
    if (app->store->ops->user_sessions(app->store, user_id, on_user_sessions, j) < 0) {
        /* Redis away: this node's sessions of the user still count. */
        sh_api_complete(j->p, 200, apply_action(j, NULL));
        sid_job_free(j);
    }
}

static void room_join_leave(sh_api_call_t *call, owui_app_t *app, bool join)
{
    json_t *sids = json_object_get(call->body, "sids");
    const char *user_id = body_string(call, "user_id");
    if ((!sids && !user_id) || (sids && !json_is_array(sids))) {
        sh_api_reply_error(call, 400, "give \"sids\" (an array) or \"user_id\"");
        return;
    }
    start_sid_job(call, app, join ? ACT_JOIN : ACT_LEAVE, call->params[0], user_id, sids);
}

static void api_room_join(sh_api_call_t *call, void *data)
{
    room_join_leave(call, data, true);
}

static void api_room_leave(sh_api_call_t *call, void *data)
{
    room_join_leave(call, data, false);
}

static void api_user_disconnect(sh_api_call_t *call, void *data)
{
    start_sid_job(call, data, ACT_DISCONNECT, NULL, call->params[0], NULL);
}

static const sh_api_route_t routes[] = {
    /* A backend streaming many tokens at once sends them as one array. */
    {.method = SH_HTTP_POST, .pattern = "emit", .needs_body = true, .cb = api_emit, .batch = true},
    {.method = SH_HTTP_POST,
     .pattern = "chat-events",
     .needs_body = true,
     .cb = api_chat_events,
     .raw = api_chat_events_raw,
     .batch = true},
    {.method = SH_HTTP_POST, .pattern = "call", .needs_body = true, .cb = api_call},
    {.method = SH_HTTP_GET, .pattern = "users", .cb = api_users},
    {.method = SH_HTTP_GET, .pattern = "usage", .cb = api_usage},
    {.method = SH_HTTP_GET, .pattern = "sessions/*", .cb = api_session},
    {.method = SH_HTTP_GET, .pattern = "rooms/*", .cb = api_room},
    {.method = SH_HTTP_POST, .pattern = "rooms/*/join", .needs_body = true, .cb = api_room_join},
    {.method = SH_HTTP_POST, .pattern = "rooms/*/leave", .needs_body = true, .cb = api_room_leave},
    {.method = SH_HTTP_DELETE, .pattern = "users/*/sessions", .cb = api_user_disconnect},
};

sh_api_t *owui_api_new(owui_app_t *app, sh_buf_t *err)
{
    return sh_api_new(app->ctx->http, "/api/v1/", app->cfg->api_key,
                      (size_t)app->cfg->api_body_limit, routes, sizeof(routes) / sizeof(routes[0]),
                      app, err);
}

/* ---- /healthz and /metrics (no key: they say nothing secret) ---- */

/* Ready means this node can do everything it promises: with Redis, that
 * Redis answers and the pub/sub subscription stands. Not ready is 503, so
 * a load balancer's health check can act on it; the body says why. */
static void on_healthz(sh_http_req_t *req, void *data)
{
    owui_app_t *app = data;
    const sh_sio_stats_t *ss = sh_sio_server_stats(app->sio);
    bool ready = !app->shutting_down;
    const char *why = app->shutting_down ? "shutting down" : NULL;
    if (ready && app->redis && !sh_redis_up(app->redis)) {
        ready = false;
        why = sh_redis_last_error(app->redis);
    } else if (ready && app->redis && !sh_redis_subscribed(app->redis)) {
        ready = false;
        why = "Redis pub/sub subscription not confirmed yet";
    }
    json_t *body = json_pack("{s:s,s:b,s:s,s:s,s:s,s:I}", "status", ready ? "ok" : "degraded",
                             "ready", ready, "app", "openwebui", "node", app->node_id, "store",
                             app->store->ops->name, "sockets", (json_int_t)ss->sockets);
    if (why)
        json_object_set_new(body, "reason", json_string(why));
    if (app->redis)
        json_object_set_new(body, "redis", json_string(sh_redis_up(app->redis) ? "up" : "down"));
    sh_buf_t b = SH_BUF_INIT;
    sh_json_append(&b, body);
    sh_buf_append_byte(&b, '\n');
    json_decref(body);
    sh_http_req_add_header(req, "Cache-Control", "no-store");
    sh_http_respond(req, ready ? 200 : 503, "application/json", sh_buf_peek(&b), sh_buf_avail(&b));
    sh_buf_release(&b);
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
    sh_metrics_sample(&b, "siohub_connections", "transport", "sse", es->sse);
    sh_metrics_one(&b, "siohub_http_connections", SH_METRIC_GAUGE,
                   "HTTP connections held by libmicrohttpd", sh_http_connections(app->ctx->http));
    sh_metrics_one(&b, "siohub_sockets", SH_METRIC_GAUGE, "Connected Socket.IO sockets",
                   ss->sockets);
    sh_metrics_one(&b, "siohub_sockets_pending", SH_METRIC_GAUGE,
                   "Socket.IO CONNECTs waiting for authentication to answer them", ss->pending);
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
    sh_metrics_one(&b, "siohub_sse_resumes_total", SH_METRIC_COUNTER,
                   "SSE streams that came back with a Last-Event-ID", es->sse_streams.resumes);
    sh_metrics_one(&b, "siohub_sse_resets_total", SH_METRIC_COUNTER,
                   "SSE streams that began with a reset (events lost)", es->sse_streams.resets);
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
    const sh_adapter_stats_t *ad = sh_adapter_stats(app->adapter);
    sh_metrics_family(&b, "siohub_pubsub_messages_total", SH_METRIC_COUNTER,
                      "Fleet pub/sub messages by outcome");
    sh_metrics_sample(&b, "siohub_pubsub_messages_total", "outcome", "published", ad->published);
    sh_metrics_sample(&b, "siohub_pubsub_messages_total", "outcome", "received", ad->received);
    sh_metrics_sample(&b, "siohub_pubsub_messages_total", "outcome", "own", ad->skipped_own);
    sh_metrics_sample(&b, "siohub_pubsub_messages_total", "outcome", "not_here",
                      ad->skipped_not_here);
    sh_metrics_sample(&b, "siohub_pubsub_messages_total", "outcome", "dropped", ad->dropped);
    sh_metrics_sample(&b, "siohub_pubsub_messages_total", "outcome", "ignored", ad->ignored);
    sh_metrics_sample(&b, "siohub_pubsub_messages_total", "outcome", "publish_failed",
                      ad->publish_fails);
    sh_metrics_one(&b, "siohub_pubsub_decoded_total", SH_METRIC_COUNTER,
                   "Fleet pub/sub messages decoded in full, data and all (the others were "
                   "skipped after reading their routing fields, or delivered from their text)",
                   ad->decoded);
    sh_metrics_one(&b, "siohub_pubsub_from_text_total", SH_METRIC_COUNTER,
                   "Fleet emits delivered from their JSON text, validated but not decoded",
                   ad->from_text);
    sh_metrics_one(&b, "siohub_pubsub_in_place_total", SH_METRIC_COUNTER,
                   "Of the emits delivered from their text, those whose packet was written "
                   "where the message arrived rather than copied",
                   ad->in_place);
    if (app->redis) {
        sh_redis_stats_t rs;
        sh_redis_stats(app->redis, &rs);
        sh_metrics_one(&b, "siohub_redis_up", SH_METRIC_GAUGE, "1 when Redis answers",
                       sh_redis_up(app->redis));
        sh_metrics_one(&b, "siohub_redis_commands_total", SH_METRIC_COUNTER, "Redis commands",
                       rs.commands);
        sh_metrics_one(&b, "siohub_redis_errors_total", SH_METRIC_COUNTER,
                       "Redis commands that failed", rs.errors);
        sh_metrics_one(&b, "siohub_redis_reconnects_total", SH_METRIC_COUNTER,
                       "Redis connections made again", rs.reconnects);
        sh_metrics_one(&b, "siohub_redis_pending", SH_METRIC_GAUGE, "Redis commands in flight",
                       rs.pending);
    }
    sh_metrics_family(&b, "siohub_lock_held", SH_METRIC_GAUGE,
                      "1 while this node runs the job of the lock");
    if (app->usage_leader)
        sh_metrics_sample(&b, "siohub_lock_held", "lock", "usage_cleanup",
                          sh_leader_held(app->usage_leader));
    if (app->reap_leader)
        sh_metrics_sample(&b, "siohub_lock_held", "lock", "session_cleanup",
                          sh_leader_held(app->reap_leader));
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
