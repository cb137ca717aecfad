/* app/openwebui.h — internals shared by the Open WebUI app's Socket.IO
 * handlers (openwebui.c) and its HTTP API (openwebui_api.c). Not an
 * interface for other modules: they see only sh_app_openwebui (app.h).
 *
 * The contract is ../shared/openwebui-contract.md in the project notes;
 * both of its shapes are served at once (seed: USER_POOL, user-list and
 * usage broadcasts, chat-events, channel-events; current: user:{id} rooms,
 * events, events:channel, heartbeat, last_seen_at, the reaper).
 */
#ifndef SH_APP_OPENWEBUI_H
#define SH_APP_OPENWEBUI_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "api/api.h"
#include "app/app.h"
#include "auth/directory.h"
#include "auth/token.h"
#include "core/list.h"
#include "core/map.h"
#include "engineio/server.h"
#include "hub/hub.h"
#include "adapter/adapter.h"
#include "core/random.h"
#include "redis/redis.h"
#include "socketio/server.h"
#include "store/beacon.h"
#include "store/lock.h"
#include "store/store.h"

/* An authenticated user as the directory described it. One record is
 * shared by the sockets of that user whose dicts are equal (a user's
 * tabs), so an idle socket does not carry a dict of its own. The dict is
 * immutable; a user whose details change gets a new record, and the old
 * one lives on while sockets that authenticated before hold it. */
typedef struct owui_user {
    unsigned refs;
    json_t *dict;   /* the user dict, as in SESSION_POOL */
    const char *id; /* dict["id"] */
    /* {"id","name","role"} of dict as JSON text, the "user" of the
     * channel events this user sends; written at the first one */
    char *brief_json;
} owui_user_t;

/* What the app knows of one of its sockets (in the socket's app slot). */
typedef struct owui_session {
    sh_sio_socket_t *sock;
    owui_user_t *user; /* a reference; NULL until authenticated */
} owui_session_t;

enum { OWUI_PRESENCE_USERS = 1, OWUI_PRESENCE_USAGE = 2 };

typedef struct owui_sse owui_sse_t;

typedef struct owui_app {
    sh_ctx_t *ctx;
    const sh_config_t *cfg;
    char **origins;
    sh_eio_server_t *eio;
    sh_sio_server_t *sio;
    sh_hub_t *hub;
    sh_hub_nsp_t *nsp; /* "/" */
    sh_store_t *store;
    /* The fleet (all NULL without Redis except the adapter and leaders,
     * which then act on this process alone). */
    char node_id[SH_ID_LEN + 1];
    sh_redis_t *redis;
    sh_adapter_t *adapter;
    sh_beacon_t *beacon;
    sh_leader_t *usage_leader;
    sh_leader_t *reap_leader;
    sh_redis_script_t *revocation;
    sh_redis_script_t *call_watch; /* is a called session still there? */
    /* Loop time Redis came back after an outage (0: never lost); its data
     * may then be missing until every node has rewritten its entries. */
    uint64_t redis_back_at;
    bool redis_was_up;
    char *k_token_revoked_prefix; /* "{prefix}:auth:token:" */
    char *k_user_revoked_prefix;  /* "{prefix}:auth:user:" */
    sh_token_verifier_t *tokens;
    sh_directory_t *dir;
    sh_api_t *api;
    owui_sse_t *sse; /* the SSE endpoint (openwebui_sse.c) */
    /* Presence broadcasts: dirty bits flushed at most once per window,
     * each only when its list changed since the last one sent. */
    unsigned presence_dirty;
    sh_timer_t presence_timer;
    json_t *last_user_ids;
    json_t *last_models;
    /* User id -> the latest owui_user_t of that id (borrowed: a record
     * leaves when its last socket does). */
    sh_map_t users;
    /* This node refreshes its sessions' last_seen_at before the reaper
     * (which runs on one node) looks. */
    sh_timer_t refresh_timer;
    /* Pending /api/v1/call requests, failed at shutdown. */
    sh_list_t calls;
    bool shutting_down;
    uint64_t auth_ok, auth_failed, auth_revoked;
} owui_app_t;

/* Unix seconds (pool timestamps are wall clock, as Open WebUI's). */
int64_t owui_now(void);
/* Marks presence lists as changed; a broadcast follows within the window. */
void owui_presence_mark(owui_app_t *app, unsigned which);
/* The local session record of a connected socket id, or NULL. */
owui_session_t *owui_session_by_sid(owui_app_t *app, const char *sid);

/* Checks a token as a CONNECT's is (signature and times, the directory,
 * with Redis the revocation keys) for a request that is no socket (the SSE
 * endpoint). cb runs exactly once, possibly before this returns, with the
 * user dict (borrowed) or NULL and a reason (never the token). peer names
 * the client in the debug log. */
typedef void (*owui_check_cb)(owui_app_t *app, json_t *user, const char *reason, void *data);
void owui_check_token(owui_app_t *app, const char *token, const char *peer, owui_check_cb cb,
                      void *data);

/* The SSE endpoint (openwebui_sse.c): <path>sse. */
owui_sse_t *owui_sse_new(owui_app_t *app, sh_buf_t *err);
/* A socket of the namespace ended: if it was an SSE one, its session ends
 * too and its record goes. */
void owui_sse_socket_gone(owui_app_t *app, sh_sio_socket_t *sock);
/* Answers the POSTs still waiting for an ack (shutdown). */
void owui_sse_cancel(owui_sse_t *sse);
void owui_sse_free(owui_sse_t *sse);

/* The HTTP API (openwebui_api.c). */
sh_api_t *owui_api_new(owui_app_t *app, sh_buf_t *err);
/* The script a call to another node's session watches it with (Redis
 * mode; the caller frees it). */
sh_redis_script_t *owui_call_watch_script(void);
/* Fails every held /api/v1/call (shutdown). */
void owui_api_cancel_calls(owui_app_t *app);
/* /healthz and /metrics. */
void owui_api_add_ops_routes(owui_app_t *app);

#endif
