/* The Redis backend of the pool store: Open WebUI's keys and JSON shapes,
 *
 *   {prefix}:session_pool  hash sid     -> JSON user dict (+ last_seen_at,
 *                                          + "siohub_node", our node id)
 *   {prefix}:user_pool     hash user id -> JSON [sid, ...]
 *   {prefix}:usage_pool    hash model   -> JSON {sid: {"updated_at": n}}
 *
 * so Open WebUI's Python code (RedisDict: HGET + json.loads) reads what it
 * would have written itself. Every read-modify-write that Open WebUI does
 * in Python (append a sid to a user's list, merge a model's usage map) is
 * one Lua script here, so two nodes never lose each other's writes.
 *
 * Lua's cjson turns an empty table into {} — never [] — so a list that
 * becomes empty is deleted, never written (as Open WebUI deletes it).
 * Entries Python nodes wrote (no "siohub_node", no "last_seen_at") are
 * never reaped by age or node: only their own node knows they are gone.
 *
 * Contract: store.h. While Redis is down every call returns -ENOTCONN and
 * nothing is queued; the app rewrites this node's entries on reconnect.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/list.h"
#include "core/log.h"
#include "core/utf8.h"
#include "redis/redis.h"
#include "store/store.h"

/* ---- the scripts ---- */

/* Removes sid from user uid's list in hash KEYS[n]; deletes the user when
 * the list empties. Returns 1 when the user went. Shared by several
 * scripts (Lua source pasted in front of each). */
#define LUA_LIST_REMOVE                                                                            \
    "local function list_remove(key, uid, sid)\n"                                                  \
    "  local cur = redis.call('HGET', key, uid)\n"                                                 \
    "  if not cur then return 0 end\n"                                                             \
    "  local ok, arr = pcall(cjson.decode, cur)\n"                                                 \
    "  if not ok or type(arr) ~= 'table' then return 0 end\n"                                      \
    "  local out = {}\n"                                                                           \
    "  for _, s in ipairs(arr) do if s ~= sid then out[#out + 1] = s end end\n"                    \
    "  if #out == 0 then redis.call('HDEL', key, uid) return 1 end\n"                              \
    "  if #out ~= #arr then redis.call('HSET', key, uid, cjson.encode(out)) end\n"                 \
    "  return 0\n"                                                                                 \
    "end\n"                                                                                        \
    "local function user_of(json)\n"                                                               \
    "  local ok, u = pcall(cjson.decode, json)\n"                                                  \
    "  if ok and type(u) == 'table' and u.id ~= nil then return tostring(u.id), u end\n"           \
    "  return nil, nil\n"                                                                          \
    "end\n"                                                                                        \
    "local function usage_remove_set(key, sids)\n"                                                 \
    "  local changed = 0\n"                                                                        \
    "  local all = redis.call('HGETALL', key)\n"                                                   \
    "  for i = 1, #all, 2 do\n"                                                                    \
    "    local ok, m = pcall(cjson.decode, all[i + 1])\n"                                          \
    "    if ok and type(m) == 'table' then\n"                                                      \
    "      local hit = false\n"                                                                    \
    "      for s in pairs(m) do if sids[s] then m[s] = nil hit = true end end\n"                   \
    "      if hit then\n"                                                                          \
    "        changed = 1\n"                                                                        \
    "        if next(m) == nil then redis.call('HDEL', key, all[i])\n"                             \
    "        else redis.call('HSET', key, all[i], cjson.encode(m)) end\n"                          \
    "      end\n"                                                                                  \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "  return changed\n"                                                                           \
    "end\n"                                                                                        \
    "local function usage_remove(key, sid)\n"                                                      \
    "  return usage_remove_set(key, {[sid] = true})\n"                                             \
    "end\n"                                                                                        \
    "local function session_remove(kses, kusr, kuse, sid)\n"                                       \
    "  local prev = redis.call('HGET', kses, sid)\n"                                               \
    "  local uid = ''\n"                                                                           \
    "  local gone = 0\n"                                                                           \
    "  if prev then\n"                                                                             \
    "    redis.call('HDEL', kses, sid)\n"                                                          \
    "    local u = user_of(prev)\n"                                                                \
    "    if u then uid = u gone = list_remove(kusr, u, sid) end\n"                                 \
    "  end\n"                                                                                      \
    "  return uid, gone, usage_remove(kuse, sid)\n"                                                \
    "end\n"

/* KEYS session_pool user_pool; ARGV sid user_json uid -> new_user (0/1). */
static const char lua_session_add[] = LUA_LIST_REMOVE
    "local sid, uid = ARGV[1], ARGV[3]\n"
    "local prev = redis.call('HGET', KEYS[1], sid)\n"
    "if prev then\n"
    "  local old = user_of(prev)\n"
    "  if old and old ~= uid then list_remove(KEYS[2], old, sid) end\n"
    "end\n"
    "redis.call('HSET', KEYS[1], sid, ARGV[2])\n"
    "local arr = {}\n"
    "local cur = redis.call('HGET', KEYS[2], uid)\n"
    "if cur then local ok, a = pcall(cjson.decode, cur) if ok and type(a) == 'table' then arr = a "
    "end end\n"
    "local new_user = 0\n"
    "if #arr == 0 then new_user = 1 end\n"
    "for _, s in ipairs(arr) do if s == sid then return new_user end end\n"
    "arr[#arr + 1] = sid\n"
    "redis.call('HSET', KEYS[2], uid, cjson.encode(arr))\n"
    "return new_user\n";

/* KEYS session_pool user_pool usage_pool; ARGV sid -> {uid, gone, changed} */
static const char lua_session_remove[] = LUA_LIST_REMOVE
    "local uid, gone, changed = session_remove(KEYS[1], KEYS[2], KEYS[3], ARGV[1])\n"
    "return {uid, gone, changed}\n";

/* KEYS session_pool; ARGV sid now -> found (0/1). Our own entries end
 * with "last_seen_at": N} (session_add writes it last): only that number
 * is rewritten, so the rest of the dict stays as written (a cjson round
 * trip would turn [] into {} and round integers past 14 digits). Other
 * entries (Python's) are decoded and encoded again. */
static const char lua_session_touch[] =
    "local cur = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if not cur then return 0 end\n"
    "local head = string.match(cur, '^(.*\"last_seen_at\": ?)%-?%d+}$')\n"
    "if head then\n"
    "  redis.call('HSET', KEYS[1], ARGV[1], head .. ARGV[2] .. '}')\n"
    "  return 1\n"
    "end\n"
    "local ok, u = pcall(cjson.decode, cur)\n"
    "if not ok or type(u) ~= 'table' then return 0 end\n"
    "u.last_seen_at = tonumber(ARGV[2])\n"
    "redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(u))\n"
    "return 1\n";

/* KEYS usage_pool; ARGV model sid now -> new_model (0/1) */
static const char lua_usage_touch[] =
    "local m = {}\n"
    "local new_model = 1\n"
    "local cur = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if cur then\n"
    "  local ok, t = pcall(cjson.decode, cur)\n"
    "  if ok and type(t) == 'table' then m = t new_model = 0 end\n"
    "end\n"
    "m[ARGV[2]] = {updated_at = tonumber(ARGV[3])}\n"
    "redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(m))\n"
    "return new_model\n";

/* KEYS usage_pool; ARGV now timeout -> changed (0/1) */
static const char lua_usage_cleanup[] =
    "local now, timeout = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local changed = 0\n"
    "local all = redis.call('HGETALL', KEYS[1])\n"
    "for i = 1, #all, 2 do\n"
    "  local ok, m = pcall(cjson.decode, all[i + 1])\n"
    "  if ok and type(m) == 'table' then\n"
    "    local kept, dropped = 0, 0\n"
    "    for sid, d in pairs(m) do\n"
    "      local at = type(d) == 'table' and tonumber(d.updated_at) or nil\n"
    "      if at and now - at > timeout then m[sid] = nil dropped = dropped + 1\n"
    "      else kept = kept + 1 end\n"
    "    end\n"
    "    if kept == 0 then redis.call('HDEL', KEYS[1], all[i]) changed = 1\n"
    "    elseif dropped > 0 then redis.call('HSET', KEYS[1], all[i], cjson.encode(m)) changed = 1 "
    "end\n"
    "  end\n"
    "end\n"
    "return changed\n";

/* KEYS session_pool user_pool usage_pool; ARGV now age node_key_prefix
 * -> flat list sid, uid, sid, uid... of the sessions removed: those with a
 * last_seen_at older than age, and those tagged with a node whose liveness
 * key (node_key_prefix .. node) is gone. The usage pool is walked once for
 * all of them: a dead node can leave thousands of sessions, and a script
 * blocks every other Redis client while it runs. */
static const char lua_session_reap[] = LUA_LIST_REMOVE
    "local now, age, nodes = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]\n"
    "local alive = {}\n"
    "local gone = {}\n"
    "local out = {}\n"
    "local all = redis.call('HGETALL', KEYS[1])\n"
    "for i = 1, #all, 2 do\n"
    "  local sid = all[i]\n"
    "  local ok, u = pcall(cjson.decode, all[i + 1])\n"
    "  if ok and type(u) == 'table' then\n"
    "    local stale = false\n"
    "    local seen = tonumber(u.last_seen_at)\n"
    "    if seen and now - seen > age then stale = true end\n"
    "    local node = u.siohub_node\n"
    "    if not stale and type(node) == 'string' then\n"
    "      if alive[node] == nil then alive[node] = redis.call('EXISTS', nodes .. node) == 1 end\n"
    "      if not alive[node] then stale = true end\n"
    "    end\n"
    "    if stale then\n"
    "      redis.call('HDEL', KEYS[1], sid)\n"
    "      local uid = user_of(all[i + 1]) or ''\n"
    "      if uid ~= '' then list_remove(KEYS[2], uid, sid) end\n"
    "      gone[sid] = true\n"
    "      out[#out + 1] = sid\n"
    "      out[#out + 1] = uid\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if #out > 0 then usage_remove_set(KEYS[3], gone) end\n"
    "return out\n";

/* ---- state ---- */

typedef enum {
    OP_SESSION_ADD,
    OP_SESSION_REMOVE,
    OP_SESSION_TOUCH,
    OP_SESSION_GET,
    OP_USER_SESSIONS,
    OP_USER_IDS,
    OP_USAGE_TOUCH,
    OP_MODELS,
    OP_USAGE_CLEANUP,
    OP_SESSION_REAP,
    OP_SNAPSHOT,
} op_kind_t;

typedef struct redis_store redis_store_t;

/* One operation in flight. It outlives the store when the store is freed
 * first (then `cancelled`, and only the Redis reply frees it). */
typedef struct op {
    sh_list_t link;
    redis_store_t *rs;
    op_kind_t kind;
    sh_store_cb cb;
    void *data;
    bool cancelled;
    int parts; /* snapshot: replies still due */
    json_t *acc;
} op_t;

struct redis_store {
    sh_store_t base;
    sh_redis_t *redis;
    char *node_id;
    char *k_session, *k_user, *k_usage, *k_node_prefix;
    sh_redis_script_t *s_add, *s_remove, *s_touch, *s_usage, *s_cleanup, *s_reap;
    sh_list_t ops;
    bool closing; /* sh_store_free was called */
};

static redis_store_t *impl(sh_store_t *st)
{
    return st->impl;
}

/* ---- reply conversion ---- */

static json_t *parse_json_reply(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_STRING)
        return json_null();
    json_t *v = json_loadb(r->str, r->len, JSON_DECODE_ANY, NULL);
    return v ? v : json_null();
}

static long long int_at(const redisReply *r, size_t i)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements)
        return 0;
    const redisReply *e = r->element[i];
    if (e->type == REDIS_REPLY_INTEGER)
        return e->integer;
    if (e->type == REDIS_REPLY_STRING)
        return strtoll(e->str, NULL, 10);
    return 0;
}

static json_t *string_array(const redisReply *r)
{
    json_t *a = json_array();
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING)
            json_array_append_new(a, json_stringn(r->element[i]->str, r->element[i]->len));
    return a;
}

static json_t *hash_object(const redisReply *r)
{
    json_t *o = json_object();
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type != REDIS_REPLY_STRING)
            continue;
        char *key = sh_strndup(k->str, k->len);
        json_object_set_new(o, key, parse_json_reply(v));
        free(key);
    }
    return o;
}

static json_t *convert(op_kind_t kind, const redisReply *r)
{
    switch (kind) {
    case OP_SESSION_ADD:
        return json_pack("{s:b}", "new_user", r->type == REDIS_REPLY_INTEGER && r->integer == 1);
    case OP_SESSION_REMOVE: {
        json_t *uid = json_null();
        if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
            r->element[0]->type == REDIS_REPLY_STRING && r->element[0]->len > 0)
            uid = json_stringn(r->element[0]->str, r->element[0]->len);
        return json_pack("{s:o,s:b,s:b}", "user_id", uid, "user_gone", int_at(r, 1) == 1,
                         "models_changed", int_at(r, 2) == 1);
    }
    case OP_SESSION_TOUCH:
        return json_pack("{s:b}", "found", r->type == REDIS_REPLY_INTEGER && r->integer == 1);
    case OP_SESSION_GET:
        return parse_json_reply(r);
    case OP_USER_SESSIONS: {
        json_t *v = parse_json_reply(r);
        if (!json_is_array(v)) {
            json_decref(v);
            v = json_array();
        }
        return v;
    }
    case OP_USER_IDS:
    case OP_MODELS:
        return string_array(r);
    case OP_USAGE_TOUCH:
        return json_pack("{s:b}", "new_model", r->type == REDIS_REPLY_INTEGER && r->integer == 1);
    case OP_USAGE_CLEANUP:
        return json_pack("{s:b}", "changed", r->type == REDIS_REPLY_INTEGER && r->integer == 1);
    case OP_SESSION_REAP: {
        json_t *out = json_array();
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
            const redisReply *sid = r->element[i], *uid = r->element[i + 1];
            json_array_append_new(out, json_pack("{s:s%,s:o}", "sid", sid->str ? sid->str : "",
                                                 sid->len, "user_id",
                                                 uid->type == REDIS_REPLY_STRING && uid->len
                                                     ? json_stringn(uid->str, uid->len)
                                                     : json_null()));
        }
        return out;
    }
    case OP_SNAPSHOT:
        return hash_object(r);
    }
    return json_null();
}

/* ---- operations ---- */

static void op_done(op_t *op, int status, json_t *result)
{
    if (!op->cancelled) {
        sh_list_remove(&op->link);
        if (op->cb)
            op->cb(status, status < 0 ? NULL : result, op->data);
    }
    json_decref(result);
    json_decref(op->acc);
    free(op);
}

static void on_reply(int status, const redisReply *reply, void *data)
{
    op_t *op = data;
    if (status == 0 && reply->type == REDIS_REPLY_ERROR) {
        if (!op->cancelled)
            sh_warn("store redis: %.*s", (int)reply->len, reply->str);
        status = -EIO;
    }
    if (op->kind == OP_SNAPSHOT) {
        /* Three HGETALLs, in order: session, user, usage pools. */
        static const char *const names[] = {"session_pool", "user_pool", "usage_pool"};
        int idx = 3 - op->parts;
        if (status == 0 && op->acc)
            json_object_set_new(op->acc, names[idx], convert(OP_SNAPSHOT, reply));
        else if (status < 0) {
            json_decref(op->acc);
            op->acc = NULL;
        }
        if (--op->parts > 0)
            return;
        json_t *acc = op->acc;
        op->acc = NULL;
        op_done(op, acc ? 0 : (status < 0 ? status : -EIO), acc);
        return;
    }
    op_done(op, status, status == 0 ? convert(op->kind, reply) : NULL);
}

static op_t *op_new(redis_store_t *rs, op_kind_t kind, sh_store_cb cb, void *data)
{
    op_t *op = sh_new0(op_t);
    op->rs = rs;
    op->kind = kind;
    op->cb = cb;
    op->data = data;
    sh_list_insert_tail(&rs->ops, &op->link);
    return op;
}

/* Returns the call's status; on failure the op is gone (no callback). */
static int op_check(op_t *op, int rc)
{
    if (rc < 0) {
        sh_list_remove(&op->link);
        free(op);
    }
    return rc;
}

static int run_script(sh_store_t *st, sh_redis_script_t *s, op_kind_t kind, sh_store_cb cb,
                      void *data, int numkeys, int argc, const char **argv)
{
    redis_store_t *rs = impl(st);
    if (!sh_redis_up(rs->redis))
        return -ENOTCONN;
    op_t *op = op_new(rs, kind, cb, data);
    return op_check(op, sh_redis_eval(rs->redis, s, on_reply, op, numkeys, argc, argv, NULL));
}

static int run_command(sh_store_t *st, op_kind_t kind, sh_store_cb cb, void *data, int argc,
                       const char **argv)
{
    redis_store_t *rs = impl(st);
    if (!sh_redis_up(rs->redis))
        return -ENOTCONN;
    op_t *op = op_new(rs, kind, cb, data);
    return op_check(op, sh_redis_command_argv(rs->redis, on_reply, op, argc, argv, NULL));
}

/* Keys become JSON object keys and strings, which must be UTF-8 (cjson
 * would write the bytes as they are, and Python's json.loads would then
 * refuse the whole pool). */
static bool valid_key(const char *s)
{
    return s && s[0] && sh_utf8_valid(s, strlen(s));
}

static int r_session_add(sh_store_t *st, const char *sid, const json_t *user, int64_t now,
                         sh_store_cb cb, void *data)
{
    redis_store_t *rs = impl(st);
    if (rs->closing)
        return -ESHUTDOWN;
    const char *uid = json_string_value(json_object_get(user, "id"));
    if (!valid_key(sid) || !json_is_object(user) || !valid_key(uid))
        return -EINVAL;
    /* The dict as Open WebUI writes it (json.dumps spacing, ASCII), plus
     * our node tag, which Python ignores, and last_seen_at, written last
     * so that a touch can rewrite it alone. */
    json_t *u = json_deep_copy(user);
    json_object_del(u, "last_seen_at");
    json_object_del(u, "siohub_node");
    json_object_set_new(u, "siohub_node", json_string(rs->node_id));
    json_object_set_new(u, "last_seen_at", json_integer(now));
    char *text = json_dumps(u, JSON_ENSURE_ASCII);
    json_decref(u);
    if (!text)
        return -ENOMEM;
    const char *argv[] = {rs->k_session, rs->k_user, sid, text, uid};
    int rc = run_script(st, rs->s_add, OP_SESSION_ADD, cb, data, 2, 5, argv);
    free(text);
    return rc;
}

static int r_session_remove(sh_store_t *st, const char *sid, sh_store_cb cb, void *data)
{
    redis_store_t *rs = impl(st);
    if (rs->closing)
        return -ESHUTDOWN;
    if (!valid_key(sid))
        return -EINVAL;
    const char *argv[] = {rs->k_session, rs->k_user, rs->k_usage, sid};
    return run_script(st, rs->s_remove, OP_SESSION_REMOVE, cb, data, 3, 4, argv);
}

static int r_session_touch(sh_store_t *st, const char *sid, int64_t now, sh_store_cb cb, void *data)
{
    redis_store_t *rs = impl(st);
    if (rs->closing)
        return -ESHUTDOWN;
    if (!valid_key(sid))
        return -EINVAL;
    char n[24];
    snprintf(n, sizeof(n), "%lld", (long long)now);
    const char *argv[] = {rs->k_session, sid, n};
    return run_script(st, rs->s_touch, OP_SESSION_TOUCH, cb, data, 1, 3, argv);
}

static int r_session_get(sh_store_t *st, const char *sid, sh_store_cb cb, void *data)
{
    redis_store_t *rs = impl(st);
    if (rs->closing)
        return -ESHUTDOWN;
    if (!valid_key(sid))
        return -EINVAL;
    const char *argv[] = {"HGET", rs->k_session, sid};
    return run_command(st, OP_SESSION_GET, cb, data, 3, argv);
}

static int r_user_sessions(sh_store_t *st, const char *user_id, sh_store_cb cb, void *data)
{
    redis_store_t *rs = impl(st);
    if (rs->closing)
        return -ESHUTDOWN;
    if (!valid_key(user_id))
        return -EINVAL;
    const char *argv[] = {"HGET", rs->k_user, user_id};
    return run_command(st, OP_USER_SESSIONS, cb, data, 3, argv);
}

static int r_user_ids(sh_store_t *st, sh_store_cb cb, void *data)
{
    redis_store_t *rs = impl(st);
    if (rs->closing)
        return -ESHUTDOWN;
    const char *argv[] = {"HKEYS", rs->k_user};
    return run_command(st, OP_USER_IDS, cb, data, 2, argv);
}

static int r_usage_touch(sh_store_t *st, const char *model, const char *sid, int64_t now,
                         sh_store_cb cb, void *data)
{
    redis_store_t *rs = impl(st);
    if (rs->closing)
        return -ESHUTDOWN;
    if (!valid_key(model) || !valid_key(sid))
        return -EINVAL;
    char n[24];
    snprintf(n, sizeof(n), "%lld", (long long)now);
    const char *argv[] = {rs->k_usage, model, sid, n};
    return run_script(st, rs->s_usage, OP_USAGE_TOUCH, cb, data, 1, 4, argv);
}

static int r_models(sh_store_t *st, sh_store_cb cb, void *data)
{
    redis_store_t *rs = impl(st);
    if (rs->closing)
        return -ESHUTDOWN;
    const char *argv[] = {"HKEYS", rs->k_usage};
    return run_command(st, OP_MODELS, cb, data, 2, argv);
}

static int r_usage_cleanup(sh_store_t *st, int64_t now, int64_t timeout_s, sh_store_cb cb,
                           void *data)
{
    redis_store_t *rs = impl(st);
    if (rs->closing)
        return -ESHUTDOWN;
    char n[24], t[24];
    snprintf(n, sizeof(n), "%lld", (long long)now);
    snprintf(t, sizeof(t), "%lld", (long long)timeout_s);
    const char *argv[] = {rs->k_usage, n, t};
    return run_script(st, rs->s_cleanup, OP_USAGE_CLEANUP, cb, data, 1, 3, argv);
}

static int r_session_reap(sh_store_t *st, int64_t now, int64_t age_s, sh_store_cb cb, void *data)
{
    redis_store_t *rs = impl(st);
    if (rs->closing)
        return -ESHUTDOWN;
    char n[24], a[24];
    snprintf(n, sizeof(n), "%lld", (long long)now);
    snprintf(a, sizeof(a), "%lld", (long long)age_s);
    const char *argv[] = {rs->k_session, rs->k_user, rs->k_usage, n, a, rs->k_node_prefix};
    return run_script(st, rs->s_reap, OP_SESSION_REAP, cb, data, 3, 6, argv);
}

static int r_snapshot(sh_store_t *st, sh_store_cb cb, void *data)
{
    redis_store_t *rs = impl(st);
    if (rs->closing)
        return -ESHUTDOWN;
    if (!sh_redis_up(rs->redis))
        return -ENOTCONN;
    op_t *op = op_new(rs, OP_SNAPSHOT, cb, data);
    op->acc = json_object();
    op->parts = 0;
    const char *keys[] = {rs->k_session, rs->k_user, rs->k_usage};
    for (int i = 0; i < 3; i++) {
        const char *argv[] = {"HGETALL", keys[i]};
        /* Replies come back in order; the op completes on the last one. */
        op->parts++;
        int rc = sh_redis_command_argv(rs->redis, on_reply, op, 2, argv, NULL);
        if (rc < 0) {
            op->parts--;
            if (i == 0)
                return op_check(op, rc);
            /* Earlier parts are in flight: let them finish as a failure. */
            json_decref(op->acc);
            op->acc = NULL;
            op->parts = op->parts > 0 ? op->parts : 0;
            if (op->parts == 0)
                op_done(op, rc, NULL);
            return 0;
        }
    }
    return 0;
}

static void r_free(sh_store_t *st)
{
    redis_store_t *rs = impl(st);
    if (rs->closing)
        return; /* called again from a -ECANCELED callback */
    rs->closing = true;
    /* Every pending operation hears -ECANCELED now, in order; the Redis
     * replies that come later only free their records. Operations issued
     * from these callbacks fail with -ESHUTDOWN. */
    sh_list_t *pos, *tmp;
    sh_list_foreach_safe (pos, tmp, &rs->ops) {
        op_t *op = sh_container_of(pos, op_t, link);
        sh_list_remove(&op->link);
        op->cancelled = true;
        if (op->cb)
            op->cb(-ECANCELED, NULL, op->data);
    }
    sh_redis_script_free(rs->s_add);
    sh_redis_script_free(rs->s_remove);
    sh_redis_script_free(rs->s_touch);
    sh_redis_script_free(rs->s_usage);
    sh_redis_script_free(rs->s_cleanup);
    sh_redis_script_free(rs->s_reap);
    free(rs->k_session);
    free(rs->k_user);
    free(rs->k_usage);
    free(rs->k_node_prefix);
    free(rs->node_id);
    free(rs);
}

static const sh_store_ops_t redis_ops = {
    .name = "redis",
    .session_add = r_session_add,
    .session_remove = r_session_remove,
    .session_touch = r_session_touch,
    .session_get = r_session_get,
    .user_sessions = r_user_sessions,
    .user_ids = r_user_ids,
    .usage_touch = r_usage_touch,
    .models = r_models,
    .usage_cleanup = r_usage_cleanup,
    .session_reap = r_session_reap,
    .snapshot = r_snapshot,
    .free = r_free,
};

static char *key(const char *prefix, const char *name)
{
    size_t n = strlen(prefix) + strlen(name) + 2;
    char *k = sh_malloc(n);
    snprintf(k, n, "%s:%s", prefix, name);
    return k;
}

sh_store_t *sh_store_redis_new(sh_loop_t *loop, sh_redis_t *redis, const char *prefix,
                               const char *node_id)
{
    redis_store_t *rs = sh_new0(redis_store_t);
    rs->base.ops = &redis_ops;
    rs->base.loop = loop;
    rs->base.impl = rs;
    rs->redis = redis;
    rs->node_id = sh_strdup(node_id);
    rs->k_session = key(prefix, "session_pool");
    rs->k_user = key(prefix, "user_pool");
    rs->k_usage = key(prefix, "usage_pool");
    rs->k_node_prefix = key(prefix, "siohub:node:");
    rs->s_add = sh_redis_script_new(lua_session_add);
    rs->s_remove = sh_redis_script_new(lua_session_remove);
    rs->s_touch = sh_redis_script_new(lua_session_touch);
    rs->s_usage = sh_redis_script_new(lua_usage_touch);
    rs->s_cleanup = sh_redis_script_new(lua_usage_cleanup);
    rs->s_reap = sh_redis_script_new(lua_session_reap);
    sh_list_init(&rs->ops);
    return &rs->base;
}
