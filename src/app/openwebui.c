/* The Open WebUI app: the realtime contract of Open WebUI's socket tier
 * (backend/open_webui/socket/main.py) served from siohub. See
 * app/openwebui.h for how it is split and which shapes it serves. */
#include "app/openwebui.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/list.h"
#include "core/log.h"
#include "core/random.h"
#include "socketio/packet.h"

static const char *const user_list_event = "user-list";
static const char *const usage_event = "usage";

int64_t owui_now(void)
{
    return (int64_t)time(NULL);
}

static owui_session_t *session_of(const sh_sio_socket_t *sock)
{
    return sh_sio_socket_slot(sock, SH_SIO_SLOT_APP);
}

owui_session_t *owui_session_by_sid(owui_app_t *app, const char *sid)
{
    sh_sio_socket_t *sock = sh_sio_server_socket(app->sio, sid);
    return sock ? session_of(sock) : NULL;
}

/* ---- presence: user-list and usage broadcasts, coalesced ---- */

typedef struct presence_read {
    owui_app_t *app;
    unsigned which;
} presence_read_t;

/* Sorted copy of a JSON array of strings, so that set equality is array
 * equality. */
static int cmp_json_str(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

static json_t *sorted_strings(const json_t *arr)
{
    size_t n = json_array_size(arr);
    json_t **v = sh_calloc(n ? n : 1, sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (json_is_string(json_array_get(arr, i)))
            v[k++] = json_array_get(arr, i);
    qsort(v, k, sizeof(*v), cmp_json_str);
    json_t *out = json_array();
    for (size_t i = 0; i < k; i++)
        json_array_append(out, v[i]);
    free(v);
    return out;
}

static void on_presence_list(int status, json_t *result, void *data)
{
    presence_read_t *pr = data;
    owui_app_t *app = pr->app;
    unsigned which = pr->which;
    free(pr);
    if (status < 0 || !app || app->shutting_down)
        return;
    json_t **last = which == OWUI_PRESENCE_USERS ? &app->last_user_ids : &app->last_models;
    json_t *now = sorted_strings(result);
    if (*last && json_equal(*last, now)) {
        json_decref(now);
        return;
    }
    json_decref(*last);
    *last = now;
    /* One encode, a reference per socket (hub.h). */
    json_t *args = json_pack("[{s:O}]", which == OWUI_PRESENCE_USERS ? "user_ids" : "models", now);
    size_t n = sh_adapter_emit(app->adapter, app->nsp, NULL,
                               which == OWUI_PRESENCE_USERS ? user_list_event : usage_event, args,
                               NULL, 0);
    json_decref(args);
    sh_debug("presence: %s broadcast to %zu sockets (%zu entries)",
             which == OWUI_PRESENCE_USERS ? user_list_event : usage_event, n, json_array_size(now));
}

static void read_presence(owui_app_t *app, unsigned which)
{
    presence_read_t *pr = sh_new0(presence_read_t);
    pr->app = app;
    pr->which = which;
    int rc = which == OWUI_PRESENCE_USERS
                 ? app->store->ops->user_ids(app->store, on_presence_list, pr)
                 : app->store->ops->models(app->store, on_presence_list, pr);
    if (rc < 0)
        free(pr);
}

static void on_presence_timer(sh_loop_t *loop, sh_timer_t *t)
{
    owui_app_t *app = t->data;
    unsigned dirty = app->presence_dirty;
    app->presence_dirty = 0;
    if (dirty & OWUI_PRESENCE_USERS)
        read_presence(app, OWUI_PRESENCE_USERS);
    if (dirty & OWUI_PRESENCE_USAGE)
        read_presence(app, OWUI_PRESENCE_USAGE);
}

void owui_presence_mark(owui_app_t *app, unsigned which)
{
    if (!app->cfg->presence || app->shutting_down)
        return;
    app->presence_dirty |= which;
    /* The first change opens a window; later ones ride along. So at most
     * one broadcast of each list per window, whatever the churn. */
    if (!sh_timer_active(&app->presence_timer))
        sh_timer_start(app->ctx->loop, &app->presence_timer, (uint64_t)app->cfg->presence_window_ms,
                       on_presence_timer, app);
}

/* ---- store completions that matter for presence ---- */

static void on_session_removed(int status, json_t *result, void *data)
{
    owui_app_t *app = data;
    if (status < 0)
        return;
    if (json_is_true(json_object_get(result, "user_gone")))
        owui_presence_mark(app, OWUI_PRESENCE_USERS);
    if (json_is_true(json_object_get(result, "models_changed")))
        owui_presence_mark(app, OWUI_PRESENCE_USAGE);
}

static void on_usage_touched(int status, json_t *result, void *data)
{
    owui_app_t *app = data;
    if (status == 0 && json_is_true(json_object_get(result, "new_model")))
        owui_presence_mark(app, OWUI_PRESENCE_USAGE);
}

/* ---- authentication ----
 *
 * A token is checked in steps: signature and times (auth/token.c), then
 * the user (auth/directory.c), then, with Redis, Open WebUI's revocation
 * keys. The last step is a round trip, so a token that passes the first
 * two completes from the loop, always (without Redis too: one path, and
 * no callback from inside the call that started it), and finds its socket
 * again by id (it may have gone meanwhile). Failures are logged at debug
 * level with the reason, never the token.
 *
 * A CONNECT or user-join that authenticates someone is answered (the
 * CONNECT answer, the ack) only once the session is in the pools and in
 * user:{id}, as python-socketio answers once Open WebUI's handler has
 * written SESSION_POOL and entered the room: an emit made the moment the
 * client hears the answer finds it, and so does a reader of the pools.
 */

typedef enum { AUTH_CONNECT, AUTH_USER_JOIN, AUTH_JOIN_CHANNELS, AUTH_CHECK } auth_purpose_t;

typedef struct auth_req {
    owui_app_t *app;
    char sock_id[SH_ID_LEN + 1];
    auth_purpose_t purpose;
    int64_t ack_id;
    json_t *user;
    json_t *channels;
    double iat;             /* -1 when the token has none */
    owui_check_cb check_cb; /* AUTH_CHECK: no socket, a callback */
    void *check_data;
    sh_defer_t no_redis; /* the outcome without a revocation round trip */
} auth_req_t;

static void enter_pools(owui_app_t *app, sh_sio_socket_t *sock, auth_req_t *r);
static void join_user_room(sh_sio_socket_t *sock);
static void join_channels(sh_sio_socket_t *sock, const json_t *channels);

static void auth_req_free(auth_req_t *r)
{
    json_decref(r->user);
    json_decref(r->channels);
    free(r);
}

/* The socket a request is for: a CONNECT's is pending (its answer waits
 * for the request), the others' connected. NULL when it went away. */
static sh_sio_socket_t *auth_socket(const auth_req_t *r)
{
    owui_app_t *app = r->app;
    if (app->shutting_down)
        return NULL;
    sh_sio_socket_t *sock = r->purpose == AUTH_CONNECT
                                ? sh_sio_server_pending_socket(app->sio, r->sock_id)
                                : sh_sio_server_socket(app->sio, r->sock_id);
    return sock && sh_sio_socket_slot(sock, SH_SIO_SLOT_APP) ? sock : NULL;
}

static void auth_finish(auth_req_t *r, bool revoked)
{
    owui_app_t *app = r->app;
    if (r->purpose == AUTH_CHECK) {
        bool ok = !revoked && !app->shutting_down;
        if (revoked)
            app->auth_revoked++;
        else if (ok)
            app->auth_ok++;
        r->check_cb(app, ok ? r->user : NULL,
                    ok        ? NULL
                    : revoked ? "token revoked"
                              : "shutting down",
                    r->check_data);
        auth_req_free(r);
        return;
    }
    sh_sio_socket_t *sock = auth_socket(r);
    if (!sock) {
        auth_req_free(r);
        return;
    }
    if (revoked) {
        app->auth_revoked++;
        sh_debug("openwebui: socket %s: not authenticated: token revoked", r->sock_id);
        /* always_connect: the socket joins nothing. */
        if (r->purpose == AUTH_CONNECT)
            sh_sio_socket_accept(sock);
        auth_req_free(r);
        return;
    }
    app->auth_ok++;
    if (r->purpose == AUTH_JOIN_CHANNELS) {
        join_channels(sock, r->channels);
        auth_req_free(r);
        return;
    }
    enter_pools(app, sock, r);
}

/* Open WebUI's revocation keys: the token's jti marked revoked, or a
 * revoked_at for the user at or after the token was issued. */
static const char lua_revocation[] = "local t = 0\n"
                                     "if ARGV[1] ~= '' then t = redis.call('EXISTS', ARGV[1]) end\n"
                                     "local at = redis.call('GET', ARGV[2])\n"
                                     "return {t, at or ''}\n";

static void on_revocation(int status, const redisReply *reply, void *data)
{
    auth_req_t *r = data;
    bool revoked = false;
    if (status == 0 && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
        const redisReply *t = reply->element[0], *at = reply->element[1];
        if (t->type == REDIS_REPLY_INTEGER && t->integer == 1)
            revoked = true;
        if (at->type == REDIS_REPLY_STRING && at->len > 0 && r->iat >= 0) {
            char buf[64];
            snprintf(buf, sizeof(buf), "%.*s", (int)at->len, at->str);
            char *end;
            double when = strtod(buf, &end);
            if (end != buf && when >= r->iat)
                revoked = true;
        }
    } else if (status < 0 || reply->type == REDIS_REPLY_ERROR) {
        /* Redis unreachable: signature and expiry still hold, and a fleet
         * that loses Redis keeps serving; revocation waits for it. */
        sh_debug("openwebui: revocation check unavailable for socket %s", r->sock_id);
    }
    auth_finish(r, revoked);
}

static void on_no_revocation(sh_loop_t *loop, sh_defer_t *d)
{
    auth_finish(d->data, false);
}

/* The checks every purpose shares. Returns the request for the last
 * (revocation) step, or NULL with *reason set when the token
 * authenticates nobody. */
static auth_req_t *auth_start(owui_app_t *app, const json_t *token, auth_purpose_t purpose,
                              json_t **claims_out, const char **reason)
{
    *reason = "no token";
    json_t *claims = NULL, *user = NULL, *channels = NULL;
    bool want_channels = purpose == AUTH_USER_JOIN || purpose == AUTH_JOIN_CHANNELS;
    if (json_is_string(token)) {
        if (sh_token_verify(app->tokens, json_string_value(token), owui_now(), &claims, reason) ==
            0)
            sh_directory_lookup(app->dir, claims, &user, want_channels ? &channels : NULL, reason);
    }
    if (!user) {
        json_decref(claims);
        app->auth_failed++;
        return NULL;
    }
    auth_req_t *r = sh_new0(auth_req_t);
    r->app = app;
    r->purpose = purpose;
    r->user = user;
    r->channels = channels;
    *claims_out = claims;
    return r;
}

/* The last step: with Redis, Open WebUI's revocation keys; without (or
 * with Redis away: fail open), nothing to ask, and the outcome comes from
 * the loop all the same. */
static void auth_revocation(owui_app_t *app, auth_req_t *r, json_t *claims)
{
    json_t *user = r->user;
    json_t *iat = json_object_get(claims, "iat");
    r->iat = json_is_number(iat) ? json_number_value(iat) : -1;
    if (app->redis && sh_redis_up(app->redis)) {
        char tkey[512] = "", ukey[512];
        const char *jti = json_string_value(json_object_get(claims, "jti"));
        if (jti && strlen(jti) < 256)
            snprintf(tkey, sizeof(tkey), "%s%s:revoked", app->k_token_revoked_prefix, jti);
        snprintf(ukey, sizeof(ukey), "%s%s:revoked_at", app->k_user_revoked_prefix,
                 json_string_value(json_object_get(user, "id")));
        const char *argv[] = {tkey, ukey};
        if (sh_redis_eval(app->redis, app->revocation, on_revocation, r, 0, 2, argv, NULL) == 0) {
            json_decref(claims);
            return;
        }
    }
    json_decref(claims);
    sh_defer_schedule(app->ctx->loop, &r->no_redis, on_no_revocation, r);
}

void owui_check_token(owui_app_t *app, const char *token, const char *peer, owui_check_cb cb,
                      void *data)
{
    const char *reason;
    json_t *claims = NULL;
    json_t *tok = token ? json_string(token) : NULL;
    auth_req_t *r = app->shutting_down ? NULL : auth_start(app, tok, AUTH_CHECK, &claims, &reason);
    json_decref(tok);
    if (!r) {
        if (app->shutting_down)
            reason = "shutting down";
        sh_debug("openwebui: request from %s: not authenticated: %s", peer, reason);
        cb(app, NULL, reason, data);
        return;
    }
    r->check_cb = cb;
    r->check_data = data;
    auth_revocation(app, r, claims);
}

/* Starts authenticating sock with token; returns false when the token
 * authenticates nobody (checked at once, nothing follows). */
static bool authenticate(owui_app_t *app, sh_sio_socket_t *sock, const json_t *token,
                         auth_purpose_t purpose, int64_t ack_id)
{
    const char *reason;
    json_t *claims = NULL;
    auth_req_t *r = auth_start(app, token, purpose, &claims, &reason);
    if (!r) {
        sh_debug("openwebui: socket %s from %s: not authenticated: %s", sh_sio_socket_id(sock),
                 sh_eio_session_peer(sh_sio_socket_session(sock)), reason);
        return false;
    }
    snprintf(r->sock_id, sizeof(r->sock_id), "%s", sh_sio_socket_id(sock));
    r->ack_id = ack_id;
    auth_revocation(app, r, claims);
    return true;
}

/* The record for user dict (stolen): the latest one of its id when the
 * dicts are equal, else a new one that becomes the latest. */
static owui_user_t *user_intern(owui_app_t *app, json_t *dict)
{
    const char *id = json_string_value(json_object_get(dict, "id"));
    owui_user_t *u = sh_map_get(&app->users, id);
    if (u && json_equal(u->dict, dict)) {
        json_decref(dict);
        u->refs++;
        return u;
    }
    u = sh_new0(owui_user_t);
    u->refs = 1;
    u->dict = dict;
    u->id = id;
    sh_map_set(&app->users, u->id, u);
    return u;
}

static void user_release(owui_app_t *app, owui_user_t *u)
{
    if (!u || --u->refs > 0)
        return;
    if (sh_map_get(&app->users, u->id) == u)
        sh_map_del(&app->users, u->id);
    json_decref(u->dict);
    free(u->brief_json);
    free(u);
}

/* The pool write is in (or failed: Redis away, the pools wait for its
 * return, delivery does not): the rooms, then the answer. */
static void on_pools_entered(int status, json_t *result, void *data)
{
    auth_req_t *r = data;
    owui_app_t *app = r->app;
    if (status == 0)
        owui_presence_mark(app, OWUI_PRESENCE_USERS | OWUI_PRESENCE_USAGE);
    sh_sio_socket_t *sock = auth_socket(r);
    if (!sock) {
        auth_req_free(r); /* its on_disconnect removed the pool entry */
        return;
    }
    if (r->purpose == AUTH_CONNECT) {
        /* on_connected joins user:{id} right after the answer is queued
         * (the hub makes the socket a room member only then). */
        sh_sio_socket_accept(sock);
    } else {
        join_user_room(sock);
        join_channels(sock, r->channels);
        if (r->ack_id >= 0) {
            json_t *reply = json_pack("[{s:O,s:O}]", "id", json_object_get(r->user, "id"), "name",
                                      json_object_get(r->user, "name"));
            sh_sio_socket_ack(sock, r->ack_id, reply, NULL, 0);
            json_decref(reply);
        }
    }
    auth_req_free(r);
}

/* Makes the socket a session of r's user: the session record at once (so
 * an end from now on removes the pool entry: the removal is ordered after
 * the write), then SESSION_POOL / USER_POOL; on_pools_entered goes on. A
 * socket re-authenticating as another user leaves the first one's room and
 * pool entries first. A user's tabs share one record (user_intern). */
static void enter_pools(owui_app_t *app, sh_sio_socket_t *sock, auth_req_t *r)
{
    owui_session_t *s = session_of(sock);
    owui_user_t *u = user_intern(app, json_incref(r->user));
    if (s->user && strcmp(s->user->id, u->id)) {
        char room[300];
        snprintf(room, sizeof(room), "user:%s", s->user->id);
        sh_hub_leave(sock, room);
        app->store->ops->session_remove(app->store, sh_sio_socket_id(sock), on_session_removed,
                                        app);
    }
    user_release(app, s->user);
    s->user = u;
    sh_debug("openwebui: socket %s is user %s", sh_sio_socket_id(sock), u->id);
    if (app->store->ops->session_add(app->store, sh_sio_socket_id(sock), u->dict, owui_now(),
                                     on_pools_entered, r) < 0)
        on_pools_entered(-EIO, NULL, r);
}

static void join_user_room(sh_sio_socket_t *sock)
{
    owui_session_t *s = session_of(sock);
    if (!s->user)
        return;
    char room[300];
    snprintf(room, sizeof(room), "user:%s", s->user->id);
    sh_hub_join(sock, room);
}

static void join_channels(sh_sio_socket_t *sock, const json_t *channels)
{
    size_t i;
    json_t *c;
    json_array_foreach (channels, i, c) {
        if (!json_is_string(c))
            continue;
        char room[300];
        snprintf(room, sizeof(room), "channel:%s", json_string_value(c));
        sh_hub_join(sock, room);
    }
}

/* ---- Socket.IO handlers ---- */

/* always_connect: every CONNECT is accepted; a bad token only means the
 * socket joins nothing and is in no pool. A token that passes the checks
 * done at once defers the answer until the session is in the pools (see
 * "authentication" above). */
static int on_connect(sh_sio_socket_t *sock, json_t *auth, json_t **error, void *data)
{
    owui_app_t *app = data;
    owui_session_t *s = sh_new0(owui_session_t);
    s->sock = sock;
    sh_sio_socket_set_slot(sock, SH_SIO_SLOT_APP, s);
    json_t *token = json_object_get(auth, "token");
    if (token && authenticate(app, sock, token, AUTH_CONNECT, -1))
        return -EINPROGRESS;
    return 0;
}

static void on_connected(sh_sio_socket_t *sock, json_t *auth, void *data)
{
    join_user_room(sock);
}

static const json_t *first_arg_object(const sh_sio_args_t *args)
{
    json_t *a = json_array_get(args->args, 0);
    return json_is_object(a) ? a : NULL;
}

/* Open WebUI answers nothing for a bad token: no ack, no error. */
static void handle_user_join(owui_app_t *app, sh_sio_socket_t *sock, const sh_sio_args_t *args,
                             int64_t ack_id)
{
    const json_t *d = first_arg_object(args);
    json_t *token = json_object_get(json_object_get(d, "auth"), "token");
    if (token)
        authenticate(app, sock, token, AUTH_USER_JOIN, ack_id);
}

static void handle_join_channels(owui_app_t *app, sh_sio_socket_t *sock, const sh_sio_args_t *args)
{
    const json_t *d = first_arg_object(args);
    json_t *token = json_object_get(json_object_get(d, "auth"), "token");
    if (token)
        authenticate(app, sock, token, AUTH_JOIN_CHANNELS, -1);
}

/* The "user" of a channel event: what Open WebUI's UserNameResponse
 * keeps of the sender. New reference; NULL when the dict lacks id or
 * name. */
static json_t *user_brief(const owui_user_t *u)
{
    json_t *role = json_object_get(u->dict, "role");
    return json_pack("{s:O,s:O,s:O}", "id", json_object_get(u->dict, "id"), "name",
                     json_object_get(u->dict, "name"), "role", role ? role : json_null());
}

/* The room of a channel, or false when the id does not fit. */
static bool channel_room(char *room, size_t size, const char *id, size_t len)
{
    return len < size - sizeof("channel:") && memchr(id, '\0', len) == NULL &&
           snprintf(room, size, "channel:%.*s", (int)len, id) > 0;
}

/* channel-events (seed) and events:channel (current), Open WebUI's
 * channel_events: typing from an authenticated member goes to the
 * channel's room, sender included, under the same event name, with who
 * typed; anything from a non-member is dropped, and other types
 * (last_read_at) touch Open WebUI's database, not us. */
static void handle_channel_event(owui_app_t *app, sh_sio_socket_t *sock, const char *event,
                                 const sh_sio_args_t *args)
{
    owui_session_t *s = session_of(sock);
    const json_t *d = first_arg_object(args);
    json_t *cid = json_object_get(d, "channel_id");
    json_t *ev = json_object_get(d, "data");
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (!s->user || !json_is_string(cid) || !json_is_object(ev) || !type)
        return;
    char room[300];
    if (!channel_room(room, sizeof(room), json_string_value(cid), json_string_length(cid)))
        return;
    if (!sh_hub_in_room(sock, room)) {
        sh_debug("openwebui: %s from non-member %s of %s dropped", event, s->user->id, room);
        return;
    }
    if (strcmp(type, "typing"))
        return;
    json_t *message_id = json_object_get(d, "message_id");
    json_t *payload =
        json_pack("[{s:O,s:O,s:O,s:o}]", "channel_id", cid, "message_id",
                  message_id ? message_id : json_null(), "data", ev, "user", user_brief(s->user));
    if (!payload)
        return;
    const char *rooms[] = {room};
    sh_hub_target_t to = {.rooms = rooms, .nrooms = 1};
    sh_adapter_emit(app->adapter, app->nsp, &to, event, payload, NULL, 0);
    json_decref(payload);
}

/* The tree way for a text event the text way below does not take: its
 * arguments decoded (valid JSON: the server checked). */
static void channel_event_from_tree(owui_app_t *app, sh_sio_socket_t *sock, const char *event,
                                    const sh_json_span_t *args, size_t nargs)
{
    json_t *list = json_array();
    for (size_t i = 0; i < nargs; i++)
        json_array_append_new(
            list, json_loadb(args[i].p, args[i].len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL));
    sh_sio_args_t a = {.args = list, .bins = NULL, .nbins = 0};
    handle_channel_event(app, sock, event, &a);
    json_decref(list);
}

/* handle_channel_event from the event's text (the server's text_events):
 * a typing event goes out with the sender's channel_id, message_id and
 * data as they wrote them, so it is never decoded or dumped, only read
 * once here (the server validated it as plain JSON: no escaped or repeated
 * keys). What it cannot read as plain text (a channel id or type with
 * escapes) goes the tree way. */
static void on_event_text(sh_sio_socket_t *sock, const char *event, const sh_json_span_t *args,
                          size_t nargs, int64_t ack_id, void *data)
{
    owui_app_t *app = data;
    owui_session_t *s = session_of(sock);
    (void)ack_id; /* Open WebUI answers channel events with nothing */
    sh_json_cursor_t c;
    if (!s->user || nargs == 0 || !sh_json_object_begin(&c, args[0]))
        return;
    sh_json_span_t key, value, cid = {NULL, 0}, ev = {NULL, 0}, message_id = {"null", 4};
    while (sh_json_object_next(&c, &key, &value)) {
        if (sh_json_span_eq(key, "channel_id"))
            cid = value;
        else if (sh_json_span_eq(key, "data"))
            ev = value;
        else if (sh_json_span_eq(key, "message_id"))
            message_id = value;
    }
    sh_json_cursor_t ec;
    if (!cid.p || !ev.p || !sh_json_object_begin(&ec, ev))
        return; /* not a string id or an object: the tree way drops it too */
    sh_json_span_t type = {NULL, 0}, id;
    while (sh_json_object_next(&ec, &key, &value))
        if (sh_json_span_eq(key, "type"))
            type = value;
    if (!type.p || type.p[0] != '"' || cid.p[0] != '"')
        return;
    if (!sh_json_plain_string(cid, &id) || !sh_json_plain_string(type, &type)) {
        channel_event_from_tree(app, sock, event, args, nargs);
        return;
    }
    char room[300];
    if (!channel_room(room, sizeof(room), id.p, id.len))
        return;
    if (!sh_hub_in_room(sock, room)) {
        sh_debug("openwebui: %s from non-member %s of %s dropped", event, s->user->id, room);
        return;
    }
    if (!sh_json_span_eq(type, "typing"))
        return;
    owui_user_t *u = s->user;
    if (!u->brief_json) {
        json_t *brief = user_brief(u);
        sh_buf_t b = SH_BUF_INIT;
        if (brief && sh_json_append(&b, brief) == 0)
            u->brief_json = sh_strndup(sh_buf_peek(&b), sh_buf_avail(&b));
        sh_buf_release(&b);
        json_decref(brief);
        if (!u->brief_json)
            return; /* no id or name: the tree way has no payload either */
    }
    sh_buf_t b = SH_BUF_INIT;
    sh_buf_append_str(&b, "{\"channel_id\":");
    sh_buf_append(&b, cid.p, cid.len);
    sh_buf_append_str(&b, ",\"message_id\":");
    sh_buf_append(&b, message_id.p, message_id.len);
    sh_buf_append_str(&b, ",\"data\":");
    sh_buf_append(&b, ev.p, ev.len);
    sh_buf_append_str(&b, ",\"user\":");
    sh_buf_append_str(&b, u->brief_json);
    sh_buf_append_str(&b, "}");
    sh_json_span_t part = {sh_buf_peek(&b), sh_buf_avail(&b)};
    const char *rooms[] = {room};
    size_t n;
    /* The sender's text may hold \u escapes (not told apart here: typing
     * events are small). */
    if (sh_adapter_emit_text(app->adapter, app->nsp, rooms, 1, event, &part, 1, true, &n) < 0)
        channel_event_from_tree(app, sock, event, args, nargs);
    sh_buf_release(&b);
}

static void handle_usage(owui_app_t *app, sh_sio_socket_t *sock, const sh_sio_args_t *args)
{
    owui_session_t *s = session_of(sock);
    const char *model = json_string_value(json_object_get(first_arg_object(args), "model"));
    if (!s->user || !model || !model[0])
        return;
    app->store->ops->usage_touch(app->store, model, sh_sio_socket_id(sock), owui_now(),
                                 on_usage_touched, app);
}

static void on_event(sh_sio_socket_t *sock, const char *event, const sh_sio_args_t *args,
                     int64_t ack_id, void *data)
{
    owui_app_t *app = data;
    owui_session_t *s = session_of(sock);
    if (!strcmp(event, "user-join")) {
        handle_user_join(app, sock, args, ack_id);
    } else if (!strcmp(event, "join-channels")) {
        handle_join_channels(app, sock, args);
    } else if (!strcmp(event, "heartbeat")) {
        if (s->user)
            app->store->ops->session_touch(app->store, sh_sio_socket_id(sock), owui_now(), NULL,
                                           NULL);
    } else if (!strcmp(event, "usage")) {
        handle_usage(app, sock, args);
    } else if (!strcmp(event, "user-list")) {
        /* The asker always gets the list (the broadcast path only sends
         * changes); everyone else hears of changes through it. */
        owui_presence_mark(app, OWUI_PRESENCE_USERS);
        if (app->last_user_ids) {
            json_t *reply = json_pack("[{s:O}]", "user_ids", app->last_user_ids);
            sh_sio_socket_emit(sock, user_list_event, reply, NULL, 0, NULL, NULL, NULL);
            json_decref(reply);
        }
    } else if (!strcmp(event, "channel-events") || !strcmp(event, "events:channel")) {
        handle_channel_event(app, sock, event, args);
    }
}

static void on_disconnect(sh_sio_socket_t *sock, const char *reason, void *data)
{
    owui_app_t *app = data;
    owui_session_t *s = session_of(sock);
    if (!s)
        return;
    if (s->user)
        app->store->ops->session_remove(app->store, sh_sio_socket_id(sock), on_session_removed,
                                        app);
    sh_debug("openwebui: socket %s (%s) disconnected: %s", sh_sio_socket_id(sock),
             s->user ? s->user->id : "anonymous", reason);
    owui_sse_socket_gone(app, sock);
    sh_sio_socket_set_slot(sock, SH_SIO_SLOT_APP, NULL);
    user_release(app, s->user);
    free(s);
}

static const char *const text_events[] = {"channel-events", "events:channel", NULL};

static const sh_sio_nsp_handler_t nsp_handler = {
    .on_connect = on_connect,
    .on_connected = on_connected,
    .on_event = on_event,
    .text_events = text_events,
    .on_event_text = on_event_text,
    .on_disconnect = on_disconnect,
};

/* ---- periodic jobs ---- */

static void on_usage_cleaned(int status, json_t *result, void *data)
{
    owui_app_t *app = data;
    if (status == 0 && json_is_true(json_object_get(result, "changed")))
        owui_presence_mark(app, OWUI_PRESENCE_USAGE);
}

/* Under usage_cleanup_lock: on one node of the fleet at a time. */
static void usage_job(void *data)
{
    owui_app_t *app = data;
    app->store->ops->usage_cleanup(app->store, owui_now(), app->cfg->usage_timeout_ms / 1000,
                                   on_usage_cleaned, app);
}

static void on_reaped(int status, json_t *result, void *data)
{
    owui_app_t *app = data;
    if (status == 0 && json_array_size(result) > 0) {
        sh_info("openwebui: reaped %zu stale sessions", json_array_size(result));
        owui_presence_mark(app, OWUI_PRESENCE_USERS | OWUI_PRESENCE_USAGE);
    }
}

static void touch_local(sh_sio_socket_t *sock, void *data)
{
    owui_app_t *app = data;
    owui_session_t *s = session_of(sock);
    if (s && s->user)
        app->store->ops->session_touch(app->store, sh_sio_socket_id(sock), owui_now(), NULL, NULL);
}

/* How often the reaper runs: a quarter of the reap age, and with Redis at
 * least every node_ttl, so a dead node's sessions go within about
 * 2 x node_ttl of its key expiring. */
static uint64_t reap_interval(const owui_app_t *app)
{
    uint64_t every = (uint64_t)app->cfg->session_reap_age_ms / 4;
    if (app->redis && every > (uint64_t)app->cfg->node_ttl_ms)
        every = (uint64_t)app->cfg->node_ttl_ms;
    return every < 1000 ? 1000 : every;
}

/* The reaper's lock lifetime: lock_timeout, but never longer than
 * node_ttl. node_ttl promises that a dead node's sessions leave within
 * 3 x node_ttl; when the dead node held this lock, the reaper first has to
 * move, and a longer lock (the default 6 s against --node-ttl 2000) would
 * break the promise. With both at most node_ttl, the lock and the dead
 * node's key expire within node_ttl, the next holder reaps at once, and a
 * reap that came too early is followed by another within reap_interval
 * (<= node_ttl). */
static uint64_t reap_lock_ttl(const owui_app_t *app)
{
    uint64_t ttl = (uint64_t)app->cfg->lock_timeout_ms;
    if (app->redis && ttl > (uint64_t)app->cfg->node_ttl_ms)
        ttl = (uint64_t)app->cfg->node_ttl_ms;
    return ttl;
}

/* Under session_cleanup_lock: removes the sessions whose last_seen_at is
 * older than session_reap_age, and with Redis those of dead nodes. */
static void reap_job(void *data)
{
    owui_app_t *app = data;
    app->store->ops->session_reap(app->store, owui_now(), app->cfg->session_reap_age_ms / 1000,
                                  on_reaped, app);
}

/* Every node refreshes its own live sessions, so only orphans grow old,
 * even for clients that never send "heartbeat" (the seed shape has none). */
static void on_refresh_timer(sh_loop_t *loop, sh_timer_t *t)
{
    owui_app_t *app = t->data;
    sh_hub_foreach(app->nsp, touch_local, app);
    sh_timer_start(loop, t, reap_interval(app), on_refresh_timer, app);
}

/* ---- Redis coming and going ---- */

static void rewrite_local(sh_sio_socket_t *sock, void *data)
{
    owui_app_t *app = data;
    owui_session_t *s = session_of(sock);
    if (s && s->user)
        app->store->ops->session_add(app->store, sh_sio_socket_id(sock), s->user->dict, owui_now(),
                                     NULL, NULL);
}

/* After an outage (or a Redis restart that lost its data) this node writes
 * its own pool entries again, so the pools are whole once every node is
 * back; while Redis is away local delivery goes on and the pools wait. */
static void on_redis_state(sh_redis_t *r, bool up, const char *reason, void *data)
{
    owui_app_t *app = data;
    if (!up) {
        sh_warn("openwebui: Redis unavailable (%s): serving local clients only", reason);
        return;
    }
    if (app->redis_was_up)
        app->redis_back_at = sh_loop_now(app->ctx->loop);
    app->redis_was_up = true;
    sh_info("openwebui: Redis up (%s): rewriting this node's pool entries", reason);
    if (app->beacon)
        sh_beacon_kick(app->beacon);
    sh_hub_foreach(app->nsp, rewrite_local, app);
    owui_presence_mark(app, OWUI_PRESENCE_USERS | OWUI_PRESENCE_USAGE);
}

/* Another node broadcast a presence list: remember it as the last one the
 * clients saw, so this node's next broadcast is sent only on a real
 * change. */
static void on_remote_broadcast(const char *nsp, const char *event, json_t *args, void *data)
{
    owui_app_t *app = data;
    if (strcmp(nsp, "/"))
        return;
    json_t *first = json_array_get(args, 0);
    json_t **last = NULL;
    json_t *list = NULL;
    if (!strcmp(event, user_list_event)) {
        last = &app->last_user_ids;
        list = json_object_get(first, "user_ids");
    } else if (!strcmp(event, usage_event)) {
        last = &app->last_models;
        list = json_object_get(first, "models");
    }
    if (!last || !json_is_array(list))
        return;
    json_decref(*last);
    *last = sorted_strings(list);
}

/* ---- the app ---- */

static void owui_destroy(void *p)
{
    owui_app_t *app = p;
    app->shutting_down = true;
    sh_loop_t *loop = app->ctx->loop;
    sh_timer_stop(loop, &app->presence_timer);
    sh_timer_stop(loop, &app->refresh_timer);
    sh_leader_free(app->usage_leader);
    sh_leader_free(app->reap_leader);
    app->usage_leader = app->reap_leader = NULL;
    owui_api_cancel_calls(app);
    owui_sse_cancel(app->sse);
    /* Engine.IO first: its sessions' ends reach the sockets, the hub and
     * our on_disconnect; the deferred socket ends run before the hub and
     * the Socket.IO server go. */
    sh_eio_server_free(app->eio);
    sh_loop_run_deferred(loop);
    /* Calls still waiting get -ECANCELED from the adapter. */
    sh_adapter_free(app->adapter);
    sh_hub_free(app->hub);
    sh_sio_server_free(app->sio);
    sh_api_free(app->api);
    owui_sse_free(app->sse);
    /* Store completions still queued name the app: run them now (they see
     * shutting_down) before the store goes. */
    sh_loop_run_deferred(loop);
    sh_store_free(app->store);
    sh_beacon_free(app->beacon);
    sh_redis_script_free(app->revocation);
    sh_redis_script_free(app->call_watch);
    /* Last: everything above may still have sent a command. */
    sh_redis_free(app->redis);
    free(app->k_token_revoked_prefix);
    free(app->k_user_revoked_prefix);
    sh_token_verifier_free(app->tokens);
    sh_directory_free(app->dir);
    json_decref(app->last_user_ids);
    json_decref(app->last_models);
    sh_map_release(&app->users);
    sh_app_origins_free(app->origins);
    free(app);
}

static void *owui_create(sh_ctx_t *ctx, sh_buf_t *err)
{
    const sh_config_t *cfg = ctx->cfg;
    owui_app_t *app = sh_new0(owui_app_t);
    app->ctx = ctx;
    app->cfg = cfg;
    sh_list_init(&app->calls);
    sh_map_borrow_keys(&app->users); /* keyed by the records' own ids */
    app->origins = sh_app_origins(cfg);

    char random_secret[SH_ID_LEN * 2 + 1];
    const char *secret = cfg->secret;
    if (cfg->jwt_algorithm == SH_CONFIG_JWT_HS256 && (!secret || !secret[0])) {
        /* The README's first command must start: a random secret makes
         * every token invalid (nobody is authenticated), which is safe. */
        sh_random_id(random_secret);
        sh_random_id(random_secret + SH_ID_LEN);
        secret = random_secret;
        sh_warn("openwebui: no secret configured (WEBUI_SECRET_KEY or `secret`): using a random "
                "one, so no Open WebUI token will authenticate");
    }
    sh_token_options_t topts = {
        .alg = cfg->jwt_algorithm,
        .secret = secret,
        .public_key_path = cfg->jwt_public_key,
        .leeway_ms = cfg->jwt_leeway_ms,
    };
    app->tokens = sh_token_verifier_new(&topts, err);
    if (!app->tokens)
        goto fail;
    app->dir = sh_directory_new(cfg->directory, err);
    if (!app->dir)
        goto fail;
    sh_random_id(app->node_id);
    if (sh_config_redis(cfg)) {
        char name[64];
        snprintf(name, sizeof(name), "siohub-%s", app->node_id);
        sh_redis_options_t ro = {
            .url = cfg->redis_url,
            .client_name = name,
            .on_state = on_redis_state,
            .state_data = app,
        };
        app->redis = sh_redis_new(ctx->loop, &ro, err);
        if (!app->redis)
            goto fail;
        app->store = sh_store_redis_new(ctx->loop, app->redis, cfg->redis_key_prefix, app->node_id);
        app->beacon = sh_beacon_new(ctx->loop, app->redis, cfg->redis_key_prefix, app->node_id,
                                    (uint64_t)cfg->node_ttl_ms);
        app->revocation = sh_redis_script_new(lua_revocation);
        app->call_watch = owui_call_watch_script();
        size_t n = strlen(cfg->redis_key_prefix) + 16;
        app->k_token_revoked_prefix = sh_malloc(n);
        snprintf(app->k_token_revoked_prefix, n, "%s:auth:token:", cfg->redis_key_prefix);
        app->k_user_revoked_prefix = sh_malloc(n);
        snprintf(app->k_user_revoked_prefix, n, "%s:auth:user:", cfg->redis_key_prefix);
    } else {
        app->store = sh_store_memory_new(ctx->loop);
    }

    sh_sio_options_t so = {.connect_timeout = (uint64_t)cfg->connect_timeout_ms};
    app->sio = sh_sio_server_new(ctx->loop, &so);
    app->hub = sh_hub_new(app->sio);
    app->nsp = sh_hub_add_nsp(app->hub, "/", &nsp_handler, app);
    sh_adapter_options_t ao = {
        .loop = ctx->loop,
        .sio = app->sio,
        .hub = app->hub,
        .redis = app->redis,
        .channel = cfg->redis_channel,
        .room_channels = cfg->room_channels,
        .on_remote_broadcast = on_remote_broadcast,
        .data = app,
    };
    app->adapter = sh_adapter_new(&ao);
    sh_eio_options_t eo;
    sh_app_eio_options(cfg, app->origins, &eo, sh_config_path(cfg));
    app->eio = sh_eio_server_new(ctx->loop, ctx->http, &eo, sh_sio_eio_handler(), app->sio, err);
    if (!app->eio)
        goto fail;
    app->api = owui_api_new(app, err);
    if (!app->api)
        goto fail;
    app->sse = owui_sse_new(app, err);
    if (!app->sse)
        goto fail;
    owui_api_add_ops_routes(app);
    char key[512];
    snprintf(key, sizeof(key), "%s:usage_cleanup_lock", cfg->redis_key_prefix);
    app->usage_leader =
        sh_leader_new(ctx->loop, app->redis, key, app->node_id, (uint64_t)cfg->lock_timeout_ms,
                      (uint64_t)cfg->usage_cleanup_interval_ms, usage_job, app);
    snprintf(key, sizeof(key), "%s:session_cleanup_lock", cfg->redis_key_prefix);
    app->reap_leader = sh_leader_new(ctx->loop, app->redis, key, app->node_id, reap_lock_ttl(app),
                                     reap_interval(app), reap_job, app);
    sh_timer_start(ctx->loop, &app->refresh_timer, reap_interval(app), on_refresh_timer, app);
    sh_info(
        "openwebui app: Socket.IO at %s (SSE at %ssse), node %s, directory %s, store %s, API %s",
        eo.path, eo.path, app->node_id, sh_directory_name(app->dir), app->store->ops->name,
        cfg->api_key && cfg->api_key[0] ? "enabled at /api/v1/" : "disabled (no api_key)");
    return app;
fail:
    owui_destroy(app);
    return NULL;
}

static void owui_begin_shutdown(void *p)
{
    owui_app_t *app = p;
    app->shutting_down = true;
    owui_api_cancel_calls(app);
    owui_sse_cancel(app->sse);
    /* Hand the locks over now and drop the liveness key, while the loop
     * still runs to send the commands. */
    sh_leader_free(app->usage_leader);
    sh_leader_free(app->reap_leader);
    app->usage_leader = app->reap_leader = NULL;
    sh_beacon_free(app->beacon);
    app->beacon = NULL;
    sh_eio_server_close_all(app->eio);
}

static size_t owui_active(void *p)
{
    owui_app_t *app = p;
    size_t n = sh_eio_server_active(app->eio);
    if (app->redis && sh_redis_up(app->redis)) {
        /* Commands still in flight: this node's last pool updates. */
        sh_redis_stats_t rs;
        sh_redis_stats(app->redis, &rs);
        n += (size_t)rs.pending;
    }
    return n;
}

static void owui_reload(void *p)
{
    owui_app_t *app = p;
    sh_buf_t err = SH_BUF_INIT;
    if (sh_directory_reload(app->dir, &err) < 0)
        sh_warn("openwebui: directory reload failed, keeping the previous one: %s",
                sh_buf_peek(&err));
    else
        sh_info("openwebui: directory %s reloaded", sh_directory_name(app->dir));
    sh_buf_release(&err);
}

const sh_app_ops_t sh_app_openwebui = {
    .name = "openwebui",
    .create = owui_create,
    .begin_shutdown = owui_begin_shutdown,
    .active = owui_active,
    .destroy = owui_destroy,
    .reload = owui_reload,
};
