/* The node liveness beacon (store/beacon.c) against a real redis-server
 * started by each test on a free 127.0.0.1 port; the key is read with
 * blocking commands on a connection of the test's own. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "harness.h"
#include "redis/redis.h"
#include "redis_server.h"
#include "store/beacon.h"

#define KEY "pfx:siohub:node:n1"

typedef struct fix {
    sh_loop_t *loop;
    th_redis_t srv;
    sh_redis_t *redis;
} fix_t;

static bool is_up(void *arg)
{
    return sh_redis_up(arg);
}

static void start(fix_t *f)
{
    memset(f, 0, sizeof(*f));
    f->loop = sh_loop_new();
    th_redis_start(&f->srv, 0, false, NULL);
    char url[128];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%u/0", (unsigned)f->srv.port);
    sh_redis_options_t o = {.url = url, .reconnect_min_ms = 20, .reconnect_max_ms = 100};
    sh_buf_t err = SH_BUF_INIT;
    f->redis = sh_redis_new(f->loop, &o, &err);
    ck_assert_msg(f->redis != NULL, "%s", sh_buf_peek(&err));
    sh_buf_release(&err);
    ck_assert(th_run_until(f->loop, is_up, f->redis, 5000));
}

static void stop(fix_t *f)
{
    sh_redis_free(f->redis);
    sh_loop_run_deferred(f->loop);
    sh_loop_free(f->loop);
    th_redis_stop(&f->srv);
}

/* PTTL of the key: -2 when it does not exist. */
static long long pttl(fix_t *f)
{
    redisReply *r = th_redis_cmd(&f->srv, "PTTL %s", KEY);
    ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

typedef struct key_wait {
    fix_t *f;
    bool present;
} key_wait_t;

static bool key_is(void *arg)
{
    key_wait_t *k = arg;
    return (pttl(k->f) != -2) == k->present;
}

static bool wait_key(fix_t *f, bool present, unsigned timeout_ms)
{
    key_wait_t k = {f, present};
    return th_run_until(f->loop, key_is, &k, timeout_ms);
}

/* The key appears at once, expires after ttl, and says which process
 * wrote it. */
START_TEST(test_key_value_and_ttl)
{
    fix_t f;
    start(&f);
    sh_beacon_t *b = sh_beacon_new(f.loop, f.redis, "pfx", "n1", 600);
    ck_assert(wait_key(&f, true, 500));
    long long t = pttl(&f);
    ck_assert_int_gt(t, 0);
    ck_assert_int_le(t, 600);
    redisReply *v = th_redis_cmd(&f.srv, "GET %s", KEY);
    ck_assert_int_eq(v->type, REDIS_REPLY_STRING);
    json_t *j = json_loads(v->str, 0, NULL);
    ck_assert_msg(j != NULL, "not JSON: %s", v->str);
    freeReplyObject(v);
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    ck_assert_str_eq(json_string_value(json_object_get(j, "host")), host);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "pid")), getpid());
    json_int_t started = json_integer_value(json_object_get(j, "started"));
    ck_assert_int_le(llabs((long long)(started - time(NULL))), 5);
    json_decref(j);
    /* Nothing else under the prefix. */
    redisReply *keys = th_redis_cmd(&f.srv, "KEYS *");
    ck_assert_uint_eq(keys->elements, 1);
    freeReplyObject(keys);
    sh_beacon_free(b);
    stop(&f);
}
END_TEST

/* Rewritten every ttl/3: over 2 s (more than three ttls) the key never
 * lapses, its TTL never exceeds ttl nor falls far below ttl - ttl/3. */
START_TEST(test_refreshed)
{
    fix_t f;
    start(&f);
    sh_beacon_t *b = sh_beacon_new(f.loop, f.redis, "pfx", "n1", 600);
    ck_assert(wait_key(&f, true, 500));
    long long lo = 600, hi = 0;
    for (int i = 0; i < 40; i++) {
        th_run_for(f.loop, 50);
        long long t = pttl(&f);
        ck_assert_msg(t > 0, "the key lapsed (PTTL %lld) after %d ms", t, (i + 1) * 50);
        lo = t < lo ? t : lo;
        hi = t > hi ? t : hi;
    }
    ck_assert_int_le(hi, 600);
    /* 600 - 200 (a beat) - scheduling slack. */
    ck_assert_int_ge(lo, 250);
    sh_beacon_free(b);
    stop(&f);
}
END_TEST

/* kick writes the key now (after Redis came back), not at the next beat. */
START_TEST(test_kick)
{
    fix_t f;
    start(&f);
    sh_beacon_t *b = sh_beacon_new(f.loop, f.redis, "pfx", "n1", 30000);
    ck_assert(wait_key(&f, true, 500));
    redisReply *d = th_redis_cmd(&f.srv, "DEL %s", KEY);
    freeReplyObject(d);
    th_run_for(f.loop, 100);
    ck_assert_int_eq(pttl(&f), -2);
    sh_beacon_kick(b);
    ck_assert(wait_key(&f, true, 200));
    ck_assert_int_gt(pttl(&f), 29000);
    sh_beacon_free(b);
    stop(&f);
}
END_TEST

/* A clean shutdown deletes the key: no expiry wait for the reaper. */
START_TEST(test_free_deletes)
{
    fix_t f;
    start(&f);
    sh_beacon_t *b = sh_beacon_new(f.loop, f.redis, "pfx", "n1", 30000);
    ck_assert(wait_key(&f, true, 500));
    sh_beacon_free(b);
    ck_assert(wait_key(&f, false, 200));
    sh_beacon_free(NULL);
    stop(&f);
}
END_TEST

/* Redis restarted empty: the next beat writes the key again. Redis away at
 * start, or at free: nothing breaks. */
START_TEST(test_redis_away)
{
    fix_t f;
    start(&f);
    sh_beacon_t *b = sh_beacon_new(f.loop, f.redis, "pfx", "n1", 300);
    ck_assert(wait_key(&f, true, 500));
    th_redis_kill(&f.srv);
    th_run_for(f.loop, 400);
    th_redis_restart(&f.srv);
    ck_assert_int_eq(pttl(&f), -2);
    /* Reconnect (at most 100 ms) plus a beat (100 ms). */
    ck_assert(wait_key(&f, true, 600));
    th_redis_kill(&f.srv);
    th_run_for(f.loop, 200);
    sh_beacon_free(b);
    th_run_for(f.loop, 50);
    /* Never up at all. */
    sh_beacon_t *b2 = sh_beacon_new(f.loop, f.redis, "pfx", "n2", 300);
    th_run_for(f.loop, 250);
    sh_beacon_free(b2);
    stop(&f);
}
END_TEST

int main(void)
{
    if (!th_redis_available()) {
        printf("SKIP: REDIS_SERVER is not set (redis-server not found)\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("beacon");
    TCase *tc = tcase_create("beacon");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_key_value_and_ttl);
    tcase_add_test(tc, test_refreshed);
    tcase_add_test(tc, test_kick);
    tcase_add_test(tc, test_free_deletes);
    tcase_add_test(tc, test_redis_away);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
