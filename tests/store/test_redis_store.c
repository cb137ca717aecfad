/* The Redis pool store (store/redis.c) against a real redis-server that
 * each test starts on a free 127.0.0.1 port (tests/lib/redis_server.h):
 * first the scenarios every backend passes (store_scenarios.c), then what
 * only a fleet has: the raw keys Open WebUI's Python reads, entries Python
 * wrote itself, two nodes writing at once, the reaper of stale and
 * dead-node sessions, Redis going away. Raw contents are read with a
 * blocking hiredis connection of the test's own. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "redis/redis.h"
#include "redis_server.h"
#include "store_scenarios.h"

#define PREFIX "open-webui"
#define NODE_A "node-a"
#define NODE_B "node-b"

typedef struct backend {
    th_redis_t srv;
    sh_redis_t *redis;
    const char *node;
} backend_t;

static backend_t *be(fixture_t *f)
{
    return f->backend;
}

static void raw_set(fixture_t *f, const char *key, const char *value);

/* timeout_ms: a command's whole wait, queueing behind a pipeline of
 * thousands (test_many_sessions) included. */
static sh_redis_t *client(sh_loop_t *loop, th_redis_t *srv, unsigned timeout_ms)
{
    char url[128];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%u/0", (unsigned)srv->port);
    sh_redis_options_t o = {
        .url = url,
        .command_timeout_ms = timeout_ms,
        .reconnect_min_ms = 20,
        .reconnect_max_ms = 100,
    };
    sh_buf_t err = SH_BUF_INIT;
    sh_redis_t *r = sh_redis_new(loop, &o, &err);
    ck_assert_msg(r != NULL, "sh_redis_new: %s", sh_buf_peek(&err));
    sh_buf_release(&err);
    return r;
}

static bool is_up(void *arg)
{
    return sh_redis_up(arg);
}

static bool is_down(void *arg)
{
    return !sh_redis_up(arg);
}

static void wait_up(sh_loop_t *loop, sh_redis_t *r)
{
    ck_assert_msg(th_run_until(loop, is_up, r, 5000), "Redis client not up: %s",
                  sh_redis_last_error(r));
}

void backend_open(fixture_t *f)
{
    backend_t *b = calloc(1, sizeof(*b));
    ck_assert_ptr_nonnull(b);
    th_redis_start(&b->srv, 0, false, NULL);
    b->redis = client(f->loop, &b->srv, 5000);
    b->node = NODE_A;
    wait_up(f->loop, b->redis);
    f->st = sh_store_redis_new(f->loop, b->redis, PREFIX, NODE_A);
    ck_assert_str_eq(f->st->ops->name, "redis");
    f->backend = b;
    /* This node is alive (its beacon's key, store/beacon.c), so only age
     * reaps its sessions, as in the memory store. */
    raw_set(f, PREFIX ":siohub:node:" NODE_A, "{}");
    /* Lua's cjson keeps no key order; HKEYS of a small hash keeps
     * insertion order, which the scenarios' lists rely on. */
    f->ordered = false;
    /* Well below the client's max_pending (10,000 in flight). */
    f->many = 2000;
}

void backend_close(fixture_t *f)
{
    backend_t *b = be(f);
    sh_redis_free(b->redis);
    sh_loop_run_deferred(f->loop);
    th_redis_stop(&b->srv);
    free(b);
}

/* Session dicts carry this node's tag, which Python ignores and the
 * memory backend does not have: check it, then drop it. */
static void untag(fixture_t *f, json_t *dict)
{
    json_t *tag = json_object_get(dict, "siohub_node");
    if (!tag)
        return;
    ck_assert_msg(json_is_string(tag) && !strcmp(json_string_value(tag), be(f)->node),
                  "bad node tag");
    json_object_del(dict, "siohub_node");
}

void backend_normalize(fixture_t *f, json_t *result)
{
    if (!json_is_object(result))
        return;
    untag(f, result);
    const char *sid;
    json_t *dict;
    json_object_foreach (json_object_get(result, "session_pool"), sid, dict)
        untag(f, dict);
}

/* ---- raw Redis ---- */

/* HGETALL key as a JSON object whose values are the parsed JSON texts
 * (each must parse: Python json.loads()es them). */
static json_t *raw_hash(fixture_t *f, const char *key)
{
    redisReply *r = th_redis_cmd(&be(f)->srv, "HGETALL %s", key);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    json_t *o = json_object();
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        json_error_t err;
        json_t *v = json_loadb(r->element[i + 1]->str, r->element[i + 1]->len, 0, &err);
        ck_assert_msg(v != NULL, "%s[%s] is not JSON: %s", key, r->element[i]->str, err.text);
        json_object_set_new(o, r->element[i]->str, v);
    }
    freeReplyObject(r);
    return o;
}

static void assert_raw(fixture_t *f, const char *key, const char *want)
{
    json_t *o = raw_hash(f, key);
    assert_json(o, want);
    json_decref(o);
}

static void raw_hset(fixture_t *f, const char *key, const char *field, const char *value)
{
    redisReply *r = th_redis_cmd(&be(f)->srv, "HSET %s %s %s", key, field, value);
    ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
    freeReplyObject(r);
}

static void raw_set(fixture_t *f, const char *key, const char *value)
{
    redisReply *r = th_redis_cmd(&be(f)->srv, "SET %s %s", key, value);
    ck_assert_int_eq(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
}

#define K_SESSION PREFIX ":session_pool"
#define K_USER    PREFIX ":user_pool"
#define K_USAGE   PREFIX ":usage_pool"

/* A second node: its own client and store, on the fixture's loop. */
typedef struct node {
    sh_redis_t *redis;
    sh_store_t *st;
} node_t;

static void node_open(fixture_t *f, node_t *n, const char *prefix, const char *id)
{
    n->redis = client(f->loop, &be(f)->srv, 5000);
    wait_up(f->loop, n->redis);
    n->st = sh_store_redis_new(f->loop, n->redis, prefix, id);
}

static void node_close(fixture_t *f, node_t *n)
{
    sh_store_free(n->st);
    sh_redis_free(n->redis);
    sh_loop_run_deferred(f->loop);
}

/* ---- the keys Python reads ---- */

/* What Open WebUI's Python finds in Redis after two users connect (one
 * with two tabs) and report models: each value is JSON in the shape its
 * RedisDict json.loads()es; session dicts carry last_seen_at and our node
 * tag. No other key is written. */
START_TEST(test_raw_shapes)
{
    fixture_t *f = fx_new();
    json_t *ann = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "id", "8f1c", "email", "ann@example.com",
                            "name", "Ann", "role", "admin", "profile_image_url", "/user.png",
                            "last_active_at", (json_int_t)1700000000);
    json_t *bob = json_pack("{s:s,s:s,s:s,s:s,s:n}", "id", "2b7e", "email", "bob@example.com",
                            "name", "Bob", "role", "user", "info");
    OP(f, f->st->ops->session_add(f->st, "Xq1", ann, 1700000100, on_result, rec(f)));
    OP(f, f->st->ops->session_add(f->st, "Yw2", bob, 1700000101, on_result, rec(f)));
    OP(f, f->st->ops->session_add(f->st, "Ze3", ann, 1700000102, on_result, rec(f)));
    json_decref(ann);
    json_decref(bob);
    usage(f, "gpt-4o", "Ze3", 1700000103);
    usage(f, "llama3:8b", "Yw2", 1700000104);
    usage(f, "gpt-4o", "Yw2", 1700000105);
    touch(f, "Yw2", 1700000110);
    run(f);
    assert_raw(f, K_SESSION,
               "{\"Xq1\":{\"id\":\"8f1c\",\"email\":\"ann@example.com\",\"name\":\"Ann\","
               "\"role\":\"admin\",\"profile_image_url\":\"/user.png\","
               "\"last_active_at\":1700000000,\"last_seen_at\":1700000100,"
               "\"siohub_node\":\"node-a\"},"
               "\"Yw2\":{\"id\":\"2b7e\",\"email\":\"bob@example.com\",\"name\":\"Bob\","
               "\"role\":\"user\",\"info\":null,\"last_seen_at\":1700000110,"
               "\"siohub_node\":\"node-a\"},"
               "\"Ze3\":{\"id\":\"8f1c\",\"email\":\"ann@example.com\",\"name\":\"Ann\","
               "\"role\":\"admin\",\"profile_image_url\":\"/user.png\","
               "\"last_active_at\":1700000000,\"last_seen_at\":1700000102,"
               "\"siohub_node\":\"node-a\"}}");
    assert_raw(f, K_USER, "{\"8f1c\":[\"Xq1\",\"Ze3\"],\"2b7e\":[\"Yw2\"]}");
    assert_raw(f, K_USAGE,
               "{\"gpt-4o\":{\"Ze3\":{\"updated_at\":1700000103},"
               "\"Yw2\":{\"updated_at\":1700000105}},"
               "\"llama3:8b\":{\"Yw2\":{\"updated_at\":1700000104}}}");
    redisReply *keys = th_redis_cmd(&be(f)->srv, "KEYS *_pool");
    ck_assert_uint_eq(keys->elements, 3);
    freeReplyObject(keys);
    /* The last session of every user gone: the keys Python reads are
     * gone with them (HDEL of the last field deletes the hash), never left
     * holding an empty list. */
    rm(f, "Xq1");
    rm(f, "Yw2");
    rm(f, "Ze3");
    run(f);
    keys = th_redis_cmd(&be(f)->srv, "KEYS *_pool");
    ck_assert_uint_eq(keys->elements, 0);
    freeReplyObject(keys);
    fx_free(f);
}
END_TEST

/* A touch rewrites only last_seen_at: the rest of the user dict comes back
 * as Python wrote it, empty lists, big integers and all (Lua's cjson would
 * turn [] into {} and round integers past 14 digits). */
START_TEST(test_touch_keeps_the_dict)
{
    fixture_t *f = fx_new();
    const char *dict = "{\"id\":\"u1\",\"name\":\"Zo\\u00eb \\ud83d\\ude00\",\"groups\":[],"
                       "\"settings\":{\"ui\":{\"pins\":[],\"x\":{}}},\"big\":12345678901234567,"
                       "\"ratio\":0.1,\"path\":\"/a/b\",\"last_seen_at\":5}";
    json_t *u = json_loads(dict, 0, NULL);
    ck_assert_ptr_nonnull(u);
    rec_t *a = rec(f);
    OP(f, f->st->ops->session_add(f->st, "s1", u, 1700000000, on_result, a));
    rec_t *t1 = touch(f, "s1", 1700000030);
    rec_t *t2 = touch(f, "s1", 1700000060);
    rec_t *g = get(f, "s1");
    run(f);
    assert_ok(a, "{\"new_user\":true}");
    assert_ok(t1, "{\"found\":true}");
    assert_ok(t2, "{\"found\":true}");
    json_object_set_new(u, "last_seen_at", json_integer(1700000060));
    char *want = json_dumps(u, JSON_COMPACT);
    assert_ok(g, want);
    /* And so in Redis, for Python. */
    json_t *raw = raw_hash(f, K_SESSION);
    json_object_set_new(u, "siohub_node", json_string(NODE_A));
    ck_assert(json_equal(json_object_get(raw, "s1"), u));
    json_decref(raw);
    free(want);
    json_decref(u);
    fx_free(f);
}
END_TEST

/* Entries Open WebUI's Python wrote (json.dumps spacing, no last_seen_at,
 * no node tag) are read, extended and cleaned like ours, and the reaper
 * leaves them alone: only their own node knows when they are gone. */
START_TEST(test_python_written_entries)
{
    fixture_t *f = fx_new();
    raw_hset(f, K_SESSION, "py1",
             "{\"id\": \"u9\", \"name\": \"Py\", \"email\": \"py@example.com\", "
             "\"role\": \"user\"}");
    raw_hset(f, K_USER, "u9", "[\"py1\"]");
    raw_hset(f, K_USAGE, "gpt", "{\"py1\": {\"updated_at\": 1700000000}}");
    rec_t *g = get(f, "py1");
    rec_t *l1 = sessions_of(f, "u9");
    rec_t *a = add(f, "s2", "u9", 1700000001);
    rec_t *u = usage(f, "gpt", "s2", 1700000002);
    rec_t *ids = user_ids(f);
    rec_t *m = models(f);
    rec_t *l2 = sessions_of(f, "u9");
    rec_t *r = reap(f, 1700000010, 120);
    rec_t *gone = rm(f, "s2");
    run(f);
    assert_ok(g, "{\"id\":\"u9\",\"name\":\"Py\",\"email\":\"py@example.com\",\"role\":\"user\"}");
    assert_ok(l1, "[\"py1\"]");
    assert_ok(a, "{\"new_user\":false}");
    assert_ok(u, "{\"new_model\":false}");
    assert_ok(ids, "[\"u9\"]");
    assert_ok(m, "[\"gpt\"]");
    assert_ok(l2, "[\"py1\",\"s2\"]");
    assert_ok(r, "[]");
    assert_ok(gone, "{\"user_id\":\"u9\",\"user_gone\":false,\"models_changed\":true}");
    assert_raw(f, K_SESSION,
               "{\"py1\":{\"id\":\"u9\",\"name\":\"Py\",\"email\":\"py@example.com\","
               "\"role\":\"user\"}}");
    assert_raw(f, K_USER, "{\"u9\":[\"py1\"]}");
    assert_raw(f, K_USAGE, "{\"gpt\":{\"py1\":{\"updated_at\":1700000000}}}");
    /* Even ten years later. */
    rec_t *r2 = reap(f, 2000000000, 120);
    run(f);
    assert_ok(r2, "[]");
    fx_free(f);
}
END_TEST

/* ---- two nodes ---- */

typedef struct tally {
    int calls, failures, new_true;
} tally_t;

static void on_tally(int status, json_t *result, void *data)
{
    tally_t *t = data;
    t->calls++;
    if (status < 0) {
        t->failures++;
        return;
    }
    if (json_is_true(json_object_get(result, "new_user")) ||
        json_is_true(json_object_get(result, "new_model")))
        t->new_true++;
}

typedef struct want_calls {
    const int *calls;
    int n;
} want_calls_t;

static bool calls_reached(void *arg)
{
    want_calls_t *w = arg;
    return *w->calls >= w->n;
}

/* Two nodes (two clients, two node ids) add sessions of one user and
 * usage for one model, interleaved: every sid is kept — each
 * read-modify-write is one Lua script, atomic in Redis — and exactly one
 * add saw a new user, one touch a new model. */
START_TEST(test_two_nodes_lose_no_writes)
{
    enum { N = 200 };
    fixture_t *f = fx_new();
    node_t b;
    node_open(f, &b, PREFIX, NODE_B);
    sh_store_t *stores[2] = {f->st, b.st};
    tally_t adds = {0}, uses = {0};
    json_t *u = user("shared", "Shared");
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < 2; k++) {
            char sid[32];
            snprintf(sid, sizeof(sid), "%c-%d", k ? 'b' : 'a', i);
            ck_assert_int_eq(
                stores[k]->ops->session_add(stores[k], sid, u, 1000 + i, on_tally, &adds), 0);
            ck_assert_int_eq(
                stores[k]->ops->usage_touch(stores[k], "model-x", sid, 1000 + i, on_tally, &uses),
                0);
        }
    }
    json_decref(u);
    want_calls_t w = {&uses.calls, 2 * N};
    ck_assert(th_run_until(f->loop, calls_reached, &w, 10000));
    ck_assert_int_eq(adds.calls, 2 * N);
    ck_assert_int_eq(adds.failures, 0);
    ck_assert_int_eq(uses.failures, 0);
    ck_assert_int_eq(adds.new_true, 1);
    ck_assert_int_eq(uses.new_true, 1);
    json_t *users = raw_hash(f, K_USER);
    json_t *usage_pool = raw_hash(f, K_USAGE);
    json_t *sessions = raw_hash(f, K_SESSION);
    json_t *list = json_object_get(users, "shared");
    json_t *model = json_object_get(usage_pool, "model-x");
    ck_assert_uint_eq(json_array_size(list), 2 * N);
    ck_assert_uint_eq(json_object_size(model), 2 * N);
    ck_assert_uint_eq(json_object_size(sessions), 2 * N);
    /* Each node's sids appear in the order that node added them. */
    int next[2] = {0, 0};
    size_t i;
    json_t *v;
    json_array_foreach (list, i, v) {
        const char *sid = json_string_value(v);
        int k = sid[0] == 'b';
        char want[32];
        snprintf(want, sizeof(want), "%c-%d", k ? 'b' : 'a', next[k]++);
        ck_assert_str_eq(sid, want);
        ck_assert_ptr_nonnull(json_object_get(model, sid));
        ck_assert_str_eq(
            json_string_value(json_object_get(json_object_get(sessions, sid), "siohub_node")),
            k ? NODE_B : NODE_A);
    }
    ck_assert_int_eq(next[0], N);
    ck_assert_int_eq(next[1], N);
    json_decref(users);
    json_decref(usage_pool);
    json_decref(sessions);
    node_close(f, &b);
    fx_free(f);
}
END_TEST

/* ---- the reaper ---- */

/* Entries with an old last_seen_at go; entries tagged with a node whose
 * liveness key "{prefix}:siohub:node:{id}" is absent go; fresh entries of
 * live nodes stay, and so do entries Python wrote (no tag, no
 * last_seen_at). Whatever goes leaves the user and usage pools too. */
START_TEST(test_reaper_stale_and_dead_nodes)
{
    fixture_t *f = fx_new();
    node_t b;
    node_open(f, &b, PREFIX, NODE_B);
    raw_set(f, PREFIX ":siohub:node:" NODE_A, "{}");
    raw_hset(f, K_SESSION, "py1", "{\"id\": \"u3\", \"name\": \"Py\"}");
    raw_hset(f, K_USER, "u3", "[\"py1\"]");
    const int64_t now = 1700001000;
    add(f, "a-old", "u1", now - 500);
    add(f, "a-new", "u1", now - 5);
    usage(f, "m", "a-old", now - 500);
    usage(f, "m", "a-new", now - 5);
    json_t *u2 = user("u2", "u2");
    rec_t *b1 = rec(f);
    OP(f, b.st->ops->session_add(b.st, "b-1", u2, now - 5, on_result, b1));
    json_decref(u2);
    rec_t *ub = rec(f);
    OP(f, b.st->ops->usage_touch(b.st, "m", "b-1", now - 5, on_result, ub));
    run(f); /* two connections: nothing orders node-b's writes before the reap */
    rec_t *r1 = reap(f, now, 120);
    run(f);
    ck_assert_int_eq(b1->status, 0);
    ck_assert_int_eq(r1->status, 0);
    ck_assert_uint_eq(json_array_size(r1->result), 2);
    json_t *want = json_loads("[{\"sid\":\"a-old\",\"user_id\":\"u1\"},"
                              "{\"sid\":\"b-1\",\"user_id\":\"u2\"}]",
                              0, NULL);
    size_t i;
    json_t *v;
    json_array_foreach (want, i, v) {
        bool found = false;
        for (size_t j = 0; j < json_array_size(r1->result); j++)
            found |= json_equal(json_array_get(r1->result, j), v);
        ck_assert_msg(found, "reaped: %s missing", json_string_value(json_object_get(v, "sid")));
    }
    json_decref(want);
    json_t *sessions = raw_hash(f, K_SESSION);
    ck_assert_uint_eq(json_object_size(sessions), 2);
    ck_assert_ptr_nonnull(json_object_get(sessions, "a-new"));
    ck_assert_ptr_nonnull(json_object_get(sessions, "py1"));
    json_decref(sessions);
    assert_raw(f, K_USER, "{\"u3\":[\"py1\"],\"u1\":[\"a-new\"]}");
    assert_raw(f, K_USAGE, "{\"m\":{\"a-new\":{\"updated_at\":1700000995}}}");

    /* node-b comes alive: its next session stays. A liveness key that
     * expires takes the node's entries with it at the next reap. */
    redisReply *rr = th_redis_cmd(&be(f)->srv, "SET %s {} PX 150", PREFIX ":siohub:node:" NODE_B);
    freeReplyObject(rr);
    json_t *u4 = user("u4", "u4");
    rec_t *b2 = rec(f);
    OP(f, b.st->ops->session_add(b.st, "b-2", u4, now, on_result, b2));
    json_decref(u4);
    run(f);
    rec_t *r2 = reap(f, now, 120);
    run(f);
    assert_ok(r2, "[]");
    th_run_for(f->loop, 300);
    rec_t *r3 = reap(f, now, 120);
    run(f);
    assert_ok(r3, "[{\"sid\":\"b-2\",\"user_id\":\"u4\"}]");
    assert_raw(f, K_USER, "{\"u3\":[\"py1\"],\"u1\":[\"a-new\"]}");
    node_close(f, &b);
    fx_free(f);
}
END_TEST

/* Another prefix is another fleet: its keys, its liveness keys. */
START_TEST(test_prefix)
{
    fixture_t *f = fx_new();
    node_t b;
    node_open(f, &b, "other", NODE_B);
    raw_set(f, "other:siohub:node:" NODE_B, "{}");
    json_t *u = user("u1", "u1");
    rec_t *a = rec(f);
    OP(f, b.st->ops->session_add(b.st, "s1", u, 100, on_result, a));
    json_decref(u);
    run(f);
    rec_t *r = rec(f);
    OP(f, b.st->ops->session_reap(b.st, 110, 120, on_result, r));
    rec_t *mine = snap(f);
    run(f);
    assert_ok(a, "{\"new_user\":true}");
    assert_ok(r, "[]");
    assert_ok(mine, EMPTY_POOLS);
    assert_raw(f, "other:user_pool", "{\"u1\":[\"s1\"]}");
    redisReply *keys = th_redis_cmd(&be(f)->srv, "KEYS " PREFIX ":*_pool");
    ck_assert_uint_eq(keys->elements, 0);
    freeReplyObject(keys);
    node_close(f, &b);
    fx_free(f);
}
END_TEST

/* ---- Redis away ---- */

/* Every operation, with its arguments valid: the status the call returns. */
static int call_each(fixture_t *f, int i, rec_t *r)
{
    sh_store_t *st = f->st;
    const sh_store_ops_t *o = st->ops;
    json_t *u = user("u1", "u1");
    int rc = 0;
    switch (i) {
    case 0:
        rc = o->session_add(st, "s", u, 1, on_result, r);
        break;
    case 1:
        rc = o->session_remove(st, "s", on_result, r);
        break;
    case 2:
        rc = o->session_touch(st, "s", 1, on_result, r);
        break;
    case 3:
        rc = o->session_get(st, "s", on_result, r);
        break;
    case 4:
        rc = o->user_sessions(st, "u1", on_result, r);
        break;
    case 5:
        rc = o->user_ids(st, on_result, r);
        break;
    case 6:
        rc = o->usage_touch(st, "m", "s", 1, on_result, r);
        break;
    case 7:
        rc = o->models(st, on_result, r);
        break;
    case 8:
        rc = o->usage_cleanup(st, 1, 3, on_result, r);
        break;
    case 9:
        rc = o->session_reap(st, 1, 120, on_result, r);
        break;
    default:
        rc = o->snapshot(st, on_result, r);
        break;
    }
    json_decref(u);
    return rc;
}

enum { NOPS = 11 };

/* Operations in flight when Redis stops answering fail once each (the
 * first times out, which drops the connection; the rest are reset with
 * it). While Redis is down every call returns -ENOTCONN and never calls
 * back. After it comes back (empty, its script cache too) everything works
 * again. */
START_TEST(test_redis_down)
{
    fixture_t *f = fx_new();
    backend_t *b = be(f);
    /* A client that gives up on a command after 300 ms. */
    sh_store_free(f->st);
    sh_redis_free(b->redis);
    b->redis = client(f->loop, &b->srv, 300);
    wait_up(f->loop, b->redis);
    f->st = sh_store_redis_new(f->loop, b->redis, PREFIX, NODE_A);
    add(f, "s", "u1", 1);
    run(f);
    th_redis_pause(&b->srv);
    rec_t *inflight[NOPS];
    for (int i = 0; i < NOPS; i++) {
        inflight[i] = rec(f);
        f->issuing = true;
        ck_assert_int_eq(call_each(f, i, inflight[i]), 0);
        f->issuing = false;
    }
    run(f);
    for (int i = 0; i < NOPS; i++) {
        ck_assert_int_eq(inflight[i]->calls, 1);
        ck_assert_msg(inflight[i]->status == (i ? -ECONNRESET : -ETIMEDOUT),
                      "operation %d: status %d", i, inflight[i]->status);
        ck_assert_ptr_null(inflight[i]->result);
        ck_assert_int_eq(inflight[i]->order, 1 + i);
    }
    th_redis_kill(&b->srv);
    ck_assert(th_run_until(f->loop, is_down, b->redis, 5000));
    rec_t never = {.f = f, .order = -1};
    for (int i = 0; i < NOPS; i++)
        ck_assert_int_eq(call_each(f, i, &never), -ENOTCONN);
    /* Bad arguments are still bad arguments. */
    ck_assert_int_eq(f->st->ops->session_get(f->st, "", on_result, &never), -EINVAL);
    th_run_for(f->loop, 100);
    ck_assert_int_eq(never.calls, 0);
    /* Back, empty (no persistence), scripts unknown to it. */
    th_redis_restart(&b->srv);
    wait_up(f->loop, b->redis);
    rec_t *a = add(f, "s2", "u2", 5);
    rec_t *t = touch(f, "s2", 6);
    rec_t *sn = snap(f);
    run(f);
    assert_ok(a, "{\"new_user\":true}");
    assert_ok(t, "{\"found\":true}");
    assert_ok(sn, "{\"session_pool\":{\"s2\":{\"id\":\"u2\",\"name\":\"u2\","
                  "\"email\":\"x@example.com\",\"role\":\"user\",\"last_seen_at\":6}},"
                  "\"user_pool\":{\"u2\":[\"s2\"]},\"usage_pool\":{}}");
    fx_free(f);
}
END_TEST

/* A client that never came up: -ENOTCONN, no callback. */
START_TEST(test_never_up)
{
    sh_loop_t *loop = sh_loop_new();
    th_redis_t srv = {0};
    srv.port = th_free_port();
    sh_redis_t *r = client(loop, &srv, 5000);
    sh_store_t *st = sh_store_redis_new(loop, r, PREFIX, NODE_A);
    tally_t t = {0};
    ck_assert_int_eq(st->ops->user_ids(st, on_tally, &t), -ENOTCONN);
    ck_assert_int_eq(st->ops->snapshot(st, on_tally, &t), -ENOTCONN);
    th_run_for(loop, 100);
    ck_assert_int_eq(t.calls, 0);
    sh_store_free(st);
    sh_redis_free(r);
    sh_loop_run_deferred(loop);
    sh_loop_free(loop);
}
END_TEST

/* A key of the wrong type (someone else's data under our prefix): the
 * operation fails with -EIO and a NULL result, once; the others go on. */
START_TEST(test_error_reply)
{
    fixture_t *f = fx_new();
    raw_set(f, K_SESSION, "not a hash");
    rec_t *g = get(f, "s1");
    rec_t *a = rec(f);
    json_t *u = user("u1", "u1");
    OP(f, f->st->ops->session_add(f->st, "s1", u, 1, on_result, a));
    json_decref(u);
    rec_t *sn = snap(f);
    rec_t *m = usage(f, "m", "s1", 1);
    run(f);
    ck_assert_int_eq(g->calls, 1);
    ck_assert_int_eq(g->status, -EIO);
    ck_assert_ptr_null(g->result);
    ck_assert_int_eq(a->status, -EIO);
    ck_assert_int_eq(sn->status, -EIO);
    ck_assert_ptr_null(sn->result);
    assert_ok(m, "{\"new_model\":true}");
    fx_free(f);
}
END_TEST

static bool nothing_pending(void *arg)
{
    sh_redis_stats_t st;
    sh_redis_stats(arg, &st);
    return st.pending == 0;
}

/* sh_store_free with operations in flight: each hears -ECANCELED at once,
 * in order; the replies that come later only free their records, and the
 * client goes on serving others. */
START_TEST(test_free_with_replies_due)
{
    fixture_t *f = fx_new();
    node_t b;
    node_open(f, &b, PREFIX, NODE_B);
    rec_t *r[6];
    for (int i = 0; i < 6; i++) {
        r[i] = rec(f);
        f->issuing = true;
        ck_assert_int_eq(call_each(f, i * 2, r[i]), 0);
        f->issuing = false;
    }
    sh_store_free(f->st);
    f->st = NULL;
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(r[i]->calls, 1);
        ck_assert_int_eq(r[i]->status, -ECANCELED);
        ck_assert_int_eq(r[i]->order, i);
    }
    /* The replies arrive (and only free their records); the other store,
     * on its own client, sees what those commands did. */
    ck_assert(th_run_until(f->loop, nothing_pending, be(f)->redis, 5000));
    rec_t *ids = rec(f);
    OP(f, b.st->ops->user_ids(b.st, on_result, ids));
    run(f);
    assert_ok(ids, "[\"u1\"]");
    node_close(f, &b);
    fx_free(f);
}
END_TEST

int main(void)
{
    if (!th_redis_available()) {
        printf("SKIP: REDIS_SERVER is not set (redis-server not found)\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("store_redis");
    TCase *shared = tcase_create("scenarios");
    tcase_set_timeout(shared, 30);
    store_scenarios_add(shared);
    suite_add_tcase(s, shared);
    TCase *tc = tcase_create("redis");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_raw_shapes);
    tcase_add_test(tc, test_touch_keeps_the_dict);
    tcase_add_test(tc, test_python_written_entries);
    tcase_add_test(tc, test_two_nodes_lose_no_writes);
    tcase_add_test(tc, test_reaper_stale_and_dead_nodes);
    tcase_add_test(tc, test_prefix);
    tcase_add_test(tc, test_redis_down);
    tcase_add_test(tc, test_never_up);
    tcase_add_test(tc, test_error_reply);
    tcase_add_test(tc, test_free_with_replies_due);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
