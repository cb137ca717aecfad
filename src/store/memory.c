/* store/memory.c — the in-process pool store (one node, no Redis).
 *
 * The pools are plain structs, not jansson objects: a heartbeat or a
 * disconnect then costs a hash lookup and a few pointer moves, and JSON is
 * built only for the results a caller asked for (cb != NULL). Every list
 * keeps insertion order, as Python's dicts do, so user_ids, models and
 * snapshot come out in the order Open WebUI's memory mode would give them.
 *
 *   sessions   sid -> session {user dict, last_seen_at, user}   (SESSION_POOL)
 *   users      id  -> user {[session, ...]}                     (USER_POOL)
 *   models     id  -> model {[use, ...]}                        (USAGE_POOL)
 *   usage_sids sid -> {[use, ...]}: the models a sid uses, so removing a
 *              session touches only its own models, not all of USAGE_POOL.
 *
 * A use (one USAGE_POOL[model][sid] entry) is linked into both its model
 * and its sid's index. USAGE_POOL may hold sids that are not in
 * SESSION_POOL (usage_touch does not check: the caller decides who may
 * report usage), so the index is keyed by sid on its own.
 *
 * Results are built when the operation runs and queued with the callback;
 * one deferred call drains the queue in order.
 */
#include "store/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/list.h"
#include "core/map.h"
#include "core/utf8.h"

typedef struct mem_user mem_user_t;

/* The user dict is immutable once stored and shared by reference between
 * the sessions of one user whose dicts are equal (a user's tabs): with
 * thousands of idle sessions a dict per session was most of their memory.
 * "last_seen_at" is kept beside it and added to the copies handed out. */
typedef struct mem_session {
    sh_list_t link; /* in mem_t.sessions */
    char *sid;
    json_t *user; /* the user dict (a reference), without "last_seen_at" */
    int64_t last_seen_at;
    mem_user_t *owner;
} mem_session_t;

struct mem_user {
    sh_list_t link; /* in mem_t.users */
    char *id;
    mem_session_t **sessions; /* insertion order, no duplicates, never empty */
    size_t n, cap;
};

typedef struct mem_model {
    sh_list_t link; /* in mem_t.models */
    char *id;
    sh_list_t uses; /* mem_use_t.by_model, insertion order; never empty */
} mem_model_t;

typedef struct mem_sid_usage {
    char *sid;
    sh_list_t uses; /* mem_use_t.by_sid; never empty */
} mem_sid_usage_t;

typedef struct mem_use {
    sh_list_t by_model, by_sid;
    mem_model_t *model;
    mem_sid_usage_t *owner;
    int64_t updated_at;
} mem_use_t;

typedef struct mem_done {
    struct mem_done *next;
    sh_store_cb cb;
    void *data;
    json_t *result;
} mem_done_t;

typedef struct mem {
    sh_store_t base;
    sh_map_t session_map; /* sid -> mem_session_t */
    sh_list_t sessions;
    sh_map_t user_map; /* id -> mem_user_t */
    sh_list_t users;
    sh_map_t model_map; /* id -> mem_model_t */
    sh_list_t models;
    sh_map_t usage_map; /* sid -> mem_sid_usage_t */
    mem_done_t *head, *tail;
    sh_defer_t defer;
    bool draining; /* inside on_drain: free must not release yet */
    bool closing;  /* sh_store_free was called */
} mem_t;

static mem_t *mem_of(sh_store_t *st)
{
    return (mem_t *)st;
}

/* Keys become JSON object keys and strings, which must be UTF-8. */
static bool key_ok(const char *s)
{
    return s && *s && sh_utf8_valid(s, strlen(s));
}

/* ---- completions ---- */

static void on_drain(sh_loop_t *loop, sh_defer_t *d);

/* Queues cb(0, result) for the drain; takes result. A NULL cb drops it. */
static int complete(mem_t *m, sh_store_cb cb, void *data, json_t *result)
{
    if (!cb) {
        json_decref(result);
        return 0;
    }
    mem_done_t *c = sh_new0(mem_done_t);
    c->cb = cb;
    c->data = data;
    c->result = result;
    if (m->tail)
        m->tail->next = c;
    else
        m->head = c;
    m->tail = c;
    sh_defer_schedule(m->base.loop, &m->defer, on_drain, m);
    return 0;
}

static void release(mem_t *m);

static void on_drain(sh_loop_t *loop, sh_defer_t *d)
{
    mem_t *m = d->data;
    /* Only what was queued before this drain: a callback that issues an
     * operation gets its completion in a later round, so a callback chain
     * cannot keep the loop here. */
    mem_done_t *last = m->tail;
    m->draining = true;
    while (m->head && !m->closing) {
        mem_done_t *c = m->head;
        m->head = c->next;
        if (!m->head)
            m->tail = NULL;
        bool was_last = c == last;
        c->cb(0, c->result, c->data);
        json_decref(c->result);
        free(c);
        if (was_last)
            break;
    }
    m->draining = false;
    if (m->closing)
        release(m);
    else if (m->head)
        sh_defer_schedule(loop, &m->defer, on_drain, m);
}

/* ---- sessions, users and usage ---- */

static mem_user_t *user_get_or_add(mem_t *m, const char *id, bool *created)
{
    mem_user_t *u = sh_map_get(&m->user_map, id);
    *created = !u;
    if (!u) {
        u = sh_new0(mem_user_t);
        u->id = sh_strdup(id);
        sh_map_set(&m->user_map, u->id, u);
        sh_list_insert_tail(&m->users, &u->link);
    }
    return u;
}

static void user_append(mem_user_t *u, mem_session_t *s)
{
    if (u->n == u->cap) {
        u->cap = u->cap ? 2 * u->cap : 2;
        u->sessions = sh_realloc(u->sessions, u->cap * sizeof(*u->sessions));
    }
    u->sessions[u->n++] = s;
    s->owner = u;
}

/* Takes s out of its user's list; returns true when that emptied the user,
 * which is then gone. A user has a few tabs, so the scan is short. */
static bool user_detach(mem_t *m, mem_session_t *s)
{
    mem_user_t *u = s->owner;
    s->owner = NULL;
    for (size_t i = 0; i < u->n; i++) {
        if (u->sessions[i] == s) {
            memmove(&u->sessions[i], &u->sessions[i + 1], (u->n - i - 1) * sizeof(*u->sessions));
            u->n--;
            break;
        }
    }
    if (u->n)
        return false;
    sh_map_del(&m->user_map, u->id);
    sh_list_remove(&u->link);
    free(u->sessions);
    free(u->id);
    free(u);
    return true;
}

static void use_free(mem_t *m, mem_use_t *use)
{
    mem_model_t *model = use->model;
    mem_sid_usage_t *owner = use->owner;
    sh_list_remove(&use->by_model);
    sh_list_remove(&use->by_sid);
    free(use);
    if (sh_list_empty(&model->uses)) {
        sh_map_del(&m->model_map, model->id);
        sh_list_remove(&model->link);
        free(model->id);
        free(model);
    }
    if (sh_list_empty(&owner->uses)) {
        sh_map_del(&m->usage_map, owner->sid);
        free(owner->sid);
        free(owner);
    }
}

/* Drops every USAGE_POOL entry of sid; true when there was one. */
static bool usage_drop_sid(mem_t *m, const char *sid)
{
    mem_sid_usage_t *owner = sh_map_get(&m->usage_map, sid);
    if (!owner)
        return false;
    /* use_free frees owner with its last use: stop before touching it. */
    for (bool more = true; more;) {
        mem_use_t *use = sh_container_of(owner->uses.next, mem_use_t, by_sid);
        more = use->by_sid.next != &owner->uses;
        use_free(m, use);
    }
    return true;
}

/* The dict s stores for user: a reference to an equal one another session
 * of the same user already holds, else a copy of its own. */
static json_t *shared_dict(const mem_user_t *u, const mem_session_t *s, const json_t *user)
{
    for (size_t i = u->n; i-- > 0;) {
        json_t *other = u->sessions[i]->user;
        if (u->sessions[i] != s && other) {
            if (other == user || json_equal(other, user))
                return json_incref(other);
            break; /* the latest dict differs: the user's details changed */
        }
    }
    return json_deep_copy(user);
}

/* What SESSION_POOL[sid] holds: the dict with its last_seen_at. */
static json_t *session_dict(const mem_session_t *s)
{
    json_t *d = json_deep_copy(s->user);
    json_object_set_new(d, "last_seen_at", json_integer(s->last_seen_at));
    return d;
}

static void session_free(mem_session_t *s)
{
    json_decref(s->user);
    free(s->sid);
    free(s);
}

/* Removes sid from all three pools (sid may be the session's own copy: it
 * is read last before the session goes). Fills the result fields when
 * asked. */
static void remove_sid(mem_t *m, const char *sid, json_t **user_id, bool *user_gone,
                       bool *models_changed)
{
    bool changed = usage_drop_sid(m, sid);
    mem_session_t *s = sh_map_del(&m->session_map, sid);
    bool gone = false;
    if (user_id)
        *user_id = s ? json_string(s->owner->id) : json_null();
    if (s) {
        sh_list_remove(&s->link);
        gone = user_detach(m, s);
        session_free(s);
    }
    if (user_gone)
        *user_gone = gone;
    if (models_changed)
        *models_changed = changed;
}

/* ---- operations ---- */

static int mem_session_add(sh_store_t *st, const char *sid, const json_t *user, int64_t now,
                           sh_store_cb cb, void *data)
{
    mem_t *m = mem_of(st);
    if (m->closing)
        return -ESHUTDOWN;
    if (!key_ok(sid) || !json_is_object(user))
        return -EINVAL;
    const char *uid = json_string_value(json_object_get(user, "id"));
    if (!key_ok(uid))
        return -EINVAL;

    mem_session_t *s = sh_map_get(&m->session_map, sid);
    if (s) {
        /* A new login on a live sid (user-join after CONNECT): the dict is
         * replaced in place, so the sid keeps its place in SESSION_POOL. */
        json_decref(s->user);
        s->user = NULL;
        if (strcmp(s->owner->id, uid) != 0)
            user_detach(m, s);
    } else {
        s = sh_new0(mem_session_t);
        s->sid = sh_strdup(sid);
        sh_map_set(&m->session_map, s->sid, s);
        sh_list_insert_tail(&m->sessions, &s->link);
    }
    s->last_seen_at = now;
    bool new_user = false;
    if (!s->owner)
        user_append(user_get_or_add(m, uid, &new_user), s);
    s->user = shared_dict(s->owner, s, user);
    return complete(m, cb, data, cb ? json_pack("{s:b}", "new_user", new_user) : NULL);
}

static int mem_session_remove(sh_store_t *st, const char *sid, sh_store_cb cb, void *data)
{
    mem_t *m = mem_of(st);
    if (m->closing)
        return -ESHUTDOWN;
    if (!key_ok(sid))
        return -EINVAL;
    json_t *user_id = NULL;
    bool user_gone, models_changed;
    remove_sid(m, sid, cb ? &user_id : NULL, &user_gone, &models_changed);
    return complete(m, cb, data,
                    cb ? json_pack("{s:o,s:b,s:b}", "user_id", user_id, "user_gone", user_gone,
                                   "models_changed", models_changed)
                       : NULL);
}

static int mem_session_touch(sh_store_t *st, const char *sid, int64_t now, sh_store_cb cb,
                             void *data)
{
    mem_t *m = mem_of(st);
    if (m->closing)
        return -ESHUTDOWN;
    if (!key_ok(sid))
        return -EINVAL;
    mem_session_t *s = sh_map_get(&m->session_map, sid);
    if (s)
        s->last_seen_at = now;
    return complete(m, cb, data, cb ? json_pack("{s:b}", "found", s != NULL) : NULL);
}

static int mem_session_get(sh_store_t *st, const char *sid, sh_store_cb cb, void *data)
{
    mem_t *m = mem_of(st);
    if (m->closing)
        return -ESHUTDOWN;
    if (!key_ok(sid))
        return -EINVAL;
    if (!cb)
        return 0;
    mem_session_t *s = sh_map_get(&m->session_map, sid);
    /* A copy: a touch issued before the callback runs must not show. */
    return complete(m, cb, data, s ? session_dict(s) : json_null());
}

static json_t *user_sids(const mem_user_t *u)
{
    json_t *a = json_array();
    for (size_t i = 0; u && i < u->n; i++)
        json_array_append_new(a, json_string(u->sessions[i]->sid));
    return a;
}

static int mem_user_sessions(sh_store_t *st, const char *user_id, sh_store_cb cb, void *data)
{
    mem_t *m = mem_of(st);
    if (m->closing)
        return -ESHUTDOWN;
    if (!key_ok(user_id))
        return -EINVAL;
    if (!cb)
        return 0;
    return complete(m, cb, data, user_sids(sh_map_get(&m->user_map, user_id)));
}

static int mem_user_ids(sh_store_t *st, sh_store_cb cb, void *data)
{
    mem_t *m = mem_of(st);
    if (m->closing)
        return -ESHUTDOWN;
    if (!cb)
        return 0;
    json_t *a = json_array();
    sh_list_t *pos, *tmp;
    sh_list_foreach_safe (pos, tmp, &m->users) {
        json_array_append_new(a, json_string(sh_container_of(pos, mem_user_t, link)->id));
    }
    return complete(m, cb, data, a);
}

static int mem_usage_touch(sh_store_t *st, const char *model, const char *sid, int64_t now,
                           sh_store_cb cb, void *data)
{
    mem_t *m = mem_of(st);
    if (m->closing)
        return -ESHUTDOWN;
    if (!key_ok(model) || !key_ok(sid))
        return -EINVAL;
    mem_model_t *mm = sh_map_get(&m->model_map, model);
    bool new_model = !mm;
    if (!mm) {
        mm = sh_new0(mem_model_t);
        mm->id = sh_strdup(model);
        sh_list_init(&mm->uses);
        sh_map_set(&m->model_map, mm->id, mm);
        sh_list_insert_tail(&m->models, &mm->link);
    }
    mem_sid_usage_t *owner = sh_map_get(&m->usage_map, sid);
    if (!owner) {
        owner = sh_new0(mem_sid_usage_t);
        owner->sid = sh_strdup(sid);
        sh_list_init(&owner->uses);
        sh_map_set(&m->usage_map, owner->sid, owner);
    }
    /* A sid uses one model or a few: scanning its own list beats a map per
     * model. */
    mem_use_t *use = NULL;
    sh_list_t *pos, *tmp;
    sh_list_foreach_safe (pos, tmp, &owner->uses) {
        mem_use_t *u = sh_container_of(pos, mem_use_t, by_sid);
        if (u->model == mm) {
            use = u;
            break;
        }
    }
    if (!use) {
        use = sh_new0(mem_use_t);
        use->model = mm;
        use->owner = owner;
        sh_list_insert_tail(&mm->uses, &use->by_model);
        sh_list_insert_tail(&owner->uses, &use->by_sid);
    }
    use->updated_at = now;
    return complete(m, cb, data, cb ? json_pack("{s:b}", "new_model", new_model) : NULL);
}

static int mem_models(sh_store_t *st, sh_store_cb cb, void *data)
{
    mem_t *m = mem_of(st);
    if (m->closing)
        return -ESHUTDOWN;
    if (!cb)
        return 0;
    json_t *a = json_array();
    sh_list_t *pos, *tmp;
    sh_list_foreach_safe (pos, tmp, &m->models) {
        json_array_append_new(a, json_string(sh_container_of(pos, mem_model_t, link)->id));
    }
    return complete(m, cb, data, a);
}

static int mem_usage_cleanup(sh_store_t *st, int64_t now, int64_t timeout_s, sh_store_cb cb,
                             void *data)
{
    mem_t *m = mem_of(st);
    if (m->closing)
        return -ESHUTDOWN;
    bool changed = false;
    sh_list_t *mpos, *mtmp;
    sh_list_foreach_safe (mpos, mtmp, &m->models) {
        mem_model_t *mm = sh_container_of(mpos, mem_model_t, link);
        /* use_free frees the model with its last use: stop before the list
         * head, which lives in the model, is read again. */
        sh_list_t *pos = mm->uses.next;
        while (pos != &mm->uses) {
            mem_use_t *use = sh_container_of(pos, mem_use_t, by_model);
            bool last = pos->next == &mm->uses;
            pos = pos->next;
            if (now - use->updated_at > timeout_s) {
                use_free(m, use);
                changed = true;
            }
            if (last)
                break;
        }
    }
    return complete(m, cb, data, cb ? json_pack("{s:b}", "changed", changed) : NULL);
}

static int mem_session_reap(sh_store_t *st, int64_t now, int64_t age_s, sh_store_cb cb, void *data)
{
    mem_t *m = mem_of(st);
    if (m->closing)
        return -ESHUTDOWN;
    json_t *reaped = cb ? json_array() : NULL;
    sh_list_t *pos, *tmp;
    sh_list_foreach_safe (pos, tmp, &m->sessions) {
        mem_session_t *s = sh_container_of(pos, mem_session_t, link);
        if (now - s->last_seen_at <= age_s)
            continue;
        if (reaped)
            json_array_append_new(reaped,
                                  json_pack("{s:s,s:s}", "sid", s->sid, "user_id", s->owner->id));
        remove_sid(m, s->sid, NULL, NULL, NULL);
    }
    return complete(m, cb, data, reaped);
}

static int mem_snapshot(sh_store_t *st, sh_store_cb cb, void *data)
{
    mem_t *m = mem_of(st);
    if (m->closing)
        return -ESHUTDOWN;
    if (!cb)
        return 0;
    json_t *sp = json_object(), *up = json_object(), *mp = json_object();
    sh_list_t *pos, *tmp, *upos, *utmp;
    sh_list_foreach_safe (pos, tmp, &m->sessions) {
        mem_session_t *s = sh_container_of(pos, mem_session_t, link);
        json_object_set_new(sp, s->sid, session_dict(s));
    }
    sh_list_foreach_safe (pos, tmp, &m->users) {
        mem_user_t *u = sh_container_of(pos, mem_user_t, link);
        json_object_set_new(up, u->id, user_sids(u));
    }
    sh_list_foreach_safe (pos, tmp, &m->models) {
        mem_model_t *mm = sh_container_of(pos, mem_model_t, link);
        json_t *sids = json_object();
        sh_list_foreach_safe (upos, utmp, &mm->uses) {
            mem_use_t *use = sh_container_of(upos, mem_use_t, by_model);
            json_object_set_new(sids, use->owner->sid,
                                json_pack("{s:I}", "updated_at", (json_int_t)use->updated_at));
        }
        json_object_set_new(mp, mm->id, sids);
    }
    return complete(
        m, cb, data,
        json_pack("{s:o,s:o,s:o}", "session_pool", sp, "user_pool", up, "usage_pool", mp));
}

/* ---- lifecycle ---- */

static void release(mem_t *m)
{
    sh_list_t *pos, *tmp;
    sh_list_foreach_safe (pos, tmp, &m->sessions) {
        session_free(sh_container_of(pos, mem_session_t, link));
    }
    sh_list_foreach_safe (pos, tmp, &m->users) {
        mem_user_t *u = sh_container_of(pos, mem_user_t, link);
        free(u->sessions);
        free(u->id);
        free(u);
    }
    sh_list_foreach_safe (pos, tmp, &m->models) {
        mem_model_t *mm = sh_container_of(pos, mem_model_t, link);
        sh_list_t *upos, *utmp;
        sh_list_foreach_safe (upos, utmp, &mm->uses) {
            free(sh_container_of(upos, mem_use_t, by_model));
        }
        free(mm->id);
        free(mm);
    }
    sh_map_iter_t it;
    sh_map_entry_t *e;
    sh_map_iter_init(&it, &m->usage_map);
    while ((e = sh_map_iter_next(&it))) {
        mem_sid_usage_t *owner = e->value;
        free(owner->sid);
        free(owner);
    }
    sh_map_release(&m->session_map);
    sh_map_release(&m->user_map);
    sh_map_release(&m->model_map);
    sh_map_release(&m->usage_map);
    free(m);
}

static void mem_free(sh_store_t *st)
{
    mem_t *m = mem_of(st);
    if (m->closing)
        return; /* called again from a -ECANCELED callback */
    m->closing = true;
    sh_defer_cancel(m->base.loop, &m->defer);
    /* Exactly once, even on teardown: what is still queued is cancelled
     * here, in order. Operations issued from these callbacks fail with
     * -ESHUTDOWN. */
    while (m->head) {
        mem_done_t *c = m->head;
        m->head = c->next;
        if (!m->head)
            m->tail = NULL;
        json_decref(c->result);
        c->cb(-ECANCELED, NULL, c->data);
        free(c);
    }
    /* Inside a completion callback the drain still holds m: it frees it
     * when that callback returns. */
    if (!m->draining)
        release(m);
}

static const sh_store_ops_t memory_ops = {
    .name = "memory",
    .session_add = mem_session_add,
    .session_remove = mem_session_remove,
    .session_touch = mem_session_touch,
    .session_get = mem_session_get,
    .user_sessions = mem_user_sessions,
    .user_ids = mem_user_ids,
    .usage_touch = mem_usage_touch,
    .models = mem_models,
    .usage_cleanup = mem_usage_cleanup,
    .session_reap = mem_session_reap,
    .snapshot = mem_snapshot,
    .free = mem_free,
};

sh_store_t *sh_store_memory_new(sh_loop_t *loop)
{
    mem_t *m = sh_new0(mem_t);
    m->base.ops = &memory_ops;
    m->base.loop = loop;
    m->base.impl = m;
    sh_list_init(&m->sessions);
    sh_list_init(&m->users);
    sh_list_init(&m->models);
    /* Every map is keyed by a string its value owns. */
    sh_map_borrow_keys(&m->session_map);
    sh_map_borrow_keys(&m->user_map);
    sh_map_borrow_keys(&m->model_map);
    sh_map_borrow_keys(&m->usage_map);
    return &m->base;
}
