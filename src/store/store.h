/* store/store.h — Open WebUI's three pools behind an ops table:
 *
 *   SESSION_POOL  sid     -> user dict (+ "last_seen_at", Unix seconds)
 *   USER_POOL     user id -> [sid, ...]
 *   USAGE_POOL    model   -> {sid: {"updated_at": Unix seconds}}
 *
 * Backends: memory (one process; the default) and redis (the fleet: the
 * same JSON shapes in `{prefix}:session_pool` etc., which Open WebUI's own
 * Python code reads).
 *
 * Every operation is asynchronous so the Redis backend never blocks the
 * loop: it returns 0 and later calls cb exactly once (status 0 and a
 * borrowed result, or a negative errno and NULL), or returns a negative
 * errno and never calls cb. cb is never called from inside the call that
 * started the operation (the memory backend defers it to the loop). cb may
 * be NULL: fire and forget. Operations complete in the order they were
 * issued.
 *
 * The store never sends anything to clients: callers decide what a change
 * means (a presence broadcast, say).
 *
 * Arguments: a sid, user id or model that is NULL, empty or not UTF-8 (it
 * becomes a JSON key) is -EINVAL, and so is a user that is not an object
 * with a string "id". The store copies what it keeps; the caller keeps its
 * arguments.
 *
 * Teardown: sh_store_free calls every callback still pending with
 * -ECANCELED and a NULL result, in order, before it returns (so "exactly
 * once" holds on teardown too); an operation issued from such a callback
 * returns -ESHUTDOWN. sh_store_free may be called from a store callback;
 * the memory goes when that callback returns. Free the store before its
 * loop.
 */
#ifndef SH_STORE_STORE_H
#define SH_STORE_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "core/buf.h"
#include "loop/loop.h"

typedef struct sh_store sh_store_t;

/* result is borrowed for the duration of the callback. */
typedef void (*sh_store_cb)(int status, json_t *result, void *data);

typedef struct sh_store_ops {
    const char *name;
    /* SESSION_POOL[sid] = user + last_seen_at=now; sid appended to
     * USER_POOL[user.id] unless there. Result {"new_user": bool}: the user
     * had no session before. */
    int (*session_add)(sh_store_t *st, const char *sid, const json_t *user, int64_t now,
                       sh_store_cb cb, void *data);
    /* Removes sid from SESSION_POOL, from its user's USER_POOL list (the
     * user goes when the list is empty) and from every USAGE_POOL model
     * (empty models go). Result {"user_id": id or null, "user_gone": bool,
     * "models_changed": bool}. */
    int (*session_remove)(sh_store_t *st, const char *sid, sh_store_cb cb, void *data);
    /* SESSION_POOL[sid].last_seen_at = now, if the session exists. Result
     * {"found": bool}. */
    int (*session_touch)(sh_store_t *st, const char *sid, int64_t now, sh_store_cb cb, void *data);
    /* The user dict of sid, or JSON null. */
    int (*session_get)(sh_store_t *st, const char *sid, sh_store_cb cb, void *data);
    /* USER_POOL[user_id] (array of sids, empty when none). */
    int (*user_sessions)(sh_store_t *st, const char *user_id, sh_store_cb cb, void *data);
    /* The keys of USER_POOL: array of user ids. */
    int (*user_ids)(sh_store_t *st, sh_store_cb cb, void *data);
    /* USAGE_POOL[model][sid] = {"updated_at": now}. Result {"new_model":
     * bool}. */
    int (*usage_touch)(sh_store_t *st, const char *model, const char *sid, int64_t now,
                       sh_store_cb cb, void *data);
    /* The keys of USAGE_POOL: array of model ids. */
    int (*models)(sh_store_t *st, sh_store_cb cb, void *data);
    /* Drops usage entries with now - updated_at > timeout_s, and models
     * left empty. Result {"changed": bool}. */
    int (*usage_cleanup)(sh_store_t *st, int64_t now, int64_t timeout_s, sh_store_cb cb,
                         void *data);
    /* Removes sessions whose last_seen_at is older than now - age_s (the
     * orphans of a node that died), as session_remove would. Result: array
     * of {"sid","user_id"} removed. */
    int (*session_reap)(sh_store_t *st, int64_t now, int64_t age_s, sh_store_cb cb, void *data);
    /* Every pool as one JSON object {"session_pool":{},"user_pool":{},
     * "usage_pool":{}}: for /api/v1 and tests. */
    int (*snapshot)(sh_store_t *st, sh_store_cb cb, void *data);
    void (*free)(sh_store_t *st);
} sh_store_ops_t;

struct sh_store {
    const sh_store_ops_t *ops;
    sh_loop_t *loop;
    void *impl; /* the backend's state */
};

/* The in-process backend. Each operation takes effect when it is called
 * (a session_get issued after a session_add sees the session); only the
 * callback waits, for a deferred call on loop, and results describe the
 * pools as they were when the operation was issued. Lists (user_ids,
 * models, a user's sids, snapshot keys) keep insertion order, as Python's
 * dicts do. */
sh_store_t *sh_store_memory_new(sh_loop_t *loop);

struct sh_redis;
/* The Redis backend on a client the caller owns (and frees after the
 * store): keys "{prefix}:session_pool" etc.; session entries carry
 * "siohub_node": node_id, so the reaper can drop the entries of a node
 * whose liveness key "{prefix}:siohub:node:{id}" expired. */
sh_store_t *sh_store_redis_new(sh_loop_t *loop, struct sh_redis *redis, const char *prefix,
                               const char *node_id);

static inline void sh_store_free(sh_store_t *st)
{
    if (st)
        st->ops->free(st);
}

#endif
