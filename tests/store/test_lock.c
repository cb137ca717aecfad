/* Leader locks (store/lock.c) against a real redis-server started by each
 * test on a free 127.0.0.1 port: two runners, each on its own Redis client
 * as two nodes would be, compete for one key with a small ttl (600 ms) and
 * job interval (200 ms). A sampler timer checks every few milliseconds
 * that at most one runner believes it holds the lock; every job run checks
 * that the other does not, and that Redis holds the runner's own value
 * under the key (a blocking GET on a connection of the test's own). */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "redis/redis.h"
#include "redis_server.h"
#include "store/lock.h"

#define KEY      "open-webui:usage_cleanup_lock"
#define TTL      600
#define INTERVAL 200
#define TICK     200 /* min(ttl / 3, interval) */
/* Scheduling and round trips on a loaded machine (sanitizers, make -j). */
#define SLACK 300

typedef struct world world_t;

typedef struct runner {
    world_t *w;
    int idx;
    char owner[32];
    sh_redis_t *redis;
    sh_leader_t *l;
    int runs;              /* by this runner's current leader */
    int total_runs;        /* by all its leaders */
    uint64_t last_run;     /* loop time, 0: none yet */
    int short_gaps;        /* runs closer than half the interval */
    uint64_t max_gap;      /* longest wait between two runs of one leader */
    uint64_t last_gap;     /* before the last run (0 for a first run) */
    uint64_t first_run_at; /* of the current leader */
} runner_t;

struct world {
    sh_loop_t *loop;
    th_redis_t srv;
    runner_t r[2];
    sh_timer_t sampler;
    int samples;
    int both;                    /* samples where both believed they held the lock */
    bool check_value;            /* the sampler also compares the key with the holder */
    int value_checks;            /* samples that did */
    int last_runner;             /* -1: none yet */
    void (*on_run)(runner_t *r); /* after each job run, when set */
    int switches;                /* job runs by a runner other than the last one */
};

static world_t W;

/* ---- the job and the sampler ---- */

static runner_t *other(runner_t *me)
{
    return &me->w->r[!me->idx];
}

static bool holds(const runner_t *r)
{
    return r->l && sh_leader_held(r->l);
}

static void assert_key_is(world_t *w, const char *owner)
{
    redisReply *v = th_redis_cmd(&w->srv, "GET %s", KEY);
    ck_assert_msg(v->type == REDIS_REPLY_STRING && !strcmp(v->str, owner),
                  "the lock key holds %s, not %s", v->type == REDIS_REPLY_STRING ? v->str : "nil",
                  owner);
    freeReplyObject(v);
}

static void job(void *data)
{
    runner_t *me = data;
    world_t *w = me->w;
    uint64_t now = sh_loop_now(w->loop);
    ck_assert_msg(holds(me), "%s runs the job without believing it holds the lock", me->owner);
    ck_assert_msg(!holds(other(me)), "%s runs the job while %s holds the lock", me->owner,
                  other(me)->owner);
    /* A renewal answered just before the test killed Redis may still be
     * dispatched after: the key cannot be read then. */
    if (w->srv.pid > 0)
        assert_key_is(w, me->owner);
    /* Runs happen on ticks, every interval, but each when its reply
     * comes: round trips make the gaps between them vary a little. */
    if (me->runs == 0)
        me->first_run_at = now;
    else if (now - me->last_run < INTERVAL / 2)
        me->short_gaps++;
    me->last_gap = me->runs > 0 ? now - me->last_run : 0;
    if (me->last_gap > me->max_gap)
        me->max_gap = me->last_gap;
    me->runs++;
    me->total_runs++;
    me->last_run = now;
    if (w->last_runner >= 0 && w->last_runner != me->idx)
        w->switches++;
    w->last_runner = me->idx;
    if (w->on_run)
        w->on_run(me);
}

static void on_sample(sh_loop_t *loop, sh_timer_t *t)
{
    world_t *w = t->data;
    w->samples++;
    int n = holds(&w->r[0]) + holds(&w->r[1]);
    if (n > 1)
        w->both++;
    if (n == 1 && w->check_value && w->samples % 10 == 0) {
        assert_key_is(w, holds(&w->r[0]) ? w->r[0].owner : w->r[1].owner);
        w->value_checks++;
    }
    sh_timer_start(loop, t, 5, on_sample, w);
}

/* ---- set-up ---- */

static void world_start(void)
{
    memset(&W, 0, sizeof(W));
    W.loop = sh_loop_new();
    W.last_runner = -1;
    th_redis_start(&W.srv, 0, false, NULL);
    for (int i = 0; i < 2; i++) {
        W.r[i].w = &W;
        W.r[i].idx = i;
    }
    sh_timer_start(W.loop, &W.sampler, 5, on_sample, &W);
}

static bool client_up(void *arg)
{
    return sh_redis_up(arg);
}

static bool client_down(void *arg)
{
    return !sh_redis_up(arg);
}

/* Runner i's Redis client, named "lock-a" / "lock-b" on the server. */
static void runner_connect(int i, unsigned reconnect_min_ms, unsigned reconnect_max_ms)
{
    runner_t *r = &W.r[i];
    char url[128];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%u/0", (unsigned)W.srv.port);
    sh_redis_options_t o = {
        .url = url,
        .command_timeout_ms = 5000,
        .reconnect_min_ms = reconnect_min_ms,
        .reconnect_max_ms = reconnect_max_ms,
        .client_name = i ? "lock-b" : "lock-a",
    };
    sh_buf_t err = SH_BUF_INIT;
    r->redis = sh_redis_new(W.loop, &o, &err);
    ck_assert_msg(r->redis != NULL, "%s", sh_buf_peek(&err));
    sh_buf_release(&err);
    ck_assert(th_run_until(W.loop, client_up, r->redis, 5000));
}

/* A new leader for runner i (a new owner value each time, as a restarted
 * node would have). */
static void runner_lead(int i)
{
    static int generation;
    runner_t *r = &W.r[i];
    snprintf(r->owner, sizeof(r->owner), "%s-%d", i ? "node-b" : "node-a", ++generation);
    r->runs = 0;
    r->last_run = 0;
    r->l = sh_leader_new(W.loop, r->redis, KEY, r->owner, TTL, INTERVAL, job, r);
    ck_assert_ptr_nonnull(r->l);
}

static void runner_unlead(int i)
{
    sh_leader_free(W.r[i].l);
    W.r[i].l = NULL;
}

static void world_stop(void)
{
    for (int i = 0; i < 2; i++) {
        runner_unlead(i);
        sh_redis_free(W.r[i].redis);
    }
    sh_timer_stop(W.loop, &W.sampler);
    sh_loop_run_deferred(W.loop);
    sh_loop_free(W.loop);
    th_redis_stop(&W.srv);
    ck_assert_int_eq(W.both, 0);
    ck_assert_int_eq(W.r[0].short_gaps, 0);
    ck_assert_int_eq(W.r[1].short_gaps, 0);
}

static bool has_runs(void *arg)
{
    runner_t *r = arg;
    return r->runs > 0;
}

static bool someone_holds(void *arg)
{
    (void)arg;
    return holds(&W.r[0]) || holds(&W.r[1]);
}

static bool nobody_holds(void *arg)
{
    (void)arg;
    return !holds(&W.r[0]) && !holds(&W.r[1]);
}

/* Runs the loop until runner i's current leader has run the job; returns
 * the loop time that took. */
static uint64_t wait_runs(int i, unsigned timeout_ms)
{
    uint64_t t0 = sh_loop_now(W.loop);
    ck_assert_msg(th_run_until(W.loop, has_runs, &W.r[i], timeout_ms),
                  "%s did not run the job within %u ms", W.r[i].owner, timeout_ms);
    return sh_loop_now(W.loop) - t0;
}

static int holder(void)
{
    ck_assert_msg(holds(&W.r[0]) != holds(&W.r[1]), "not exactly one holder");
    return holds(&W.r[0]) ? 0 : 1;
}

/* ---- tests ---- */

/* Six tenures: each holder runs the job every interval while the other
 * only watches; freed (which releases the key), it hands the job to the
 * other within a tick; then it comes back as a new node and waits its
 * turn. Never two believers, never a run closer than the interval. */
START_TEST(test_one_at_a_time)
{
    world_start();
    runner_connect(0, 20, 200);
    runner_connect(1, 20, 200);
    runner_lead(0);
    runner_lead(1);
    W.check_value = true;
    ck_assert(th_run_until(W.loop, someone_holds, NULL, TTL + TICK + SLACK));
    for (int round = 0; round < 6; round++) {
        int h = holder();
        runner_t *r = &W.r[h];
        th_run_for(W.loop, 1000);
        ck_assert_int_eq(holder(), h);
        /* About one run per interval, and nothing from the other. */
        ck_assert_msg(r->runs >= 4 && r->runs <= 8, "%d runs in about 1 s", r->runs);
        ck_assert_int_eq(other(r)->runs, 0);
        ck_assert_uint_eq(sh_leader_stats(r->l)->acquired, 1);
        ck_assert_uint_eq(sh_leader_stats(r->l)->lost, 0);
        ck_assert_uint_eq(sh_leader_stats(r->l)->runs, (uint64_t)r->runs);
        ck_assert_uint_eq(sh_leader_stats(other(r)->l)->acquired, 0);
        redisReply *ttl = th_redis_cmd(&W.srv, "PTTL %s", KEY);
        ck_assert_int_gt(ttl->integer, 0);
        ck_assert_int_le(ttl->integer, TTL);
        freeReplyObject(ttl);
        /* Freed: the key goes with it, and the other takes over at its
         * next tick. */
        runner_unlead(h);
        uint64_t took = wait_runs(!h, TICK + SLACK);
        ck_assert_uint_le(took, TICK + SLACK);
        runner_lead(h);
    }
    ck_assert_int_eq(W.switches, 6);
    ck_assert_int_gt(W.value_checks, 50);
    world_stop();
}
END_TEST

/* The holder's connection stalls (a command that blocks it for 1.5 s, as
 * a congested link would) with a renewal stuck behind it: the key expires
 * and the other node takes it, but the stalled holder stops believing it
 * holds the lock ttl after its last successful renewal was sent — before
 * the key can expire — and when its renewal finally comes back it finds
 * the lock lost. */
START_TEST(test_stalled_holder)
{
    world_start();
    runner_connect(0, 20, 200);
    runner_connect(1, 20, 200);
    runner_lead(0);
    wait_runs(0, TTL + TICK + SLACK);
    runner_lead(1);
    th_run_for(W.loop, 500);
    ck_assert_int_eq(holder(), 0);
    int runs_before = W.r[0].runs;
    const char *argv[] = {"BLPOP", "nothing-ever", "1.5"};
    ck_assert_int_eq(sh_redis_command_argv(W.r[0].redis, NULL, NULL, 3, argv, NULL), 0);
    uint64_t took = wait_runs(1, TTL + 2 * TICK + SLACK);
    ck_assert_uint_ge(took, TTL - TICK);
    ck_assert(!holds(&W.r[0]));
    th_run_for(W.loop, 1500);
    ck_assert_int_eq(holder(), 1);
    ck_assert_int_le(W.r[0].runs, runs_before + 1);
    ck_assert_uint_eq(sh_leader_stats(W.r[0].l)->lost, 1);
    ck_assert_int_ge(W.r[1].runs, 5);
    world_stop();
}
END_TEST

/* The id of the connection named name, from CLIENT LIST. */
static long long client_id(const char *name)
{
    redisReply *list = th_redis_cmd(&W.srv, "CLIENT LIST");
    ck_assert_int_eq(list->type, REDIS_REPLY_STRING);
    char want[64];
    snprintf(want, sizeof(want), " name=%s ", name);
    long long id = -1;
    for (char *line = list->str; line && *line;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        if (strstr(line, want))
            id = strtoll(line + 3, NULL, 10); /* "id=N ..." */
        line = end ? end + 1 : NULL;
    }
    freeReplyObject(list);
    ck_assert_msg(id >= 0, "no connection named %s", name);
    return id;
}

/* The holder loses Redis (its connection is killed) and is freed while
 * cut off, so it cannot release the key: the other node takes the job
 * when the key expires, within ttl plus a tick. */
START_TEST(test_holder_cut_off)
{
    world_start();
    runner_connect(0, 1000, 2000);
    runner_connect(1, 20, 200);
    runner_lead(0);
    wait_runs(0, TTL + TICK + SLACK);
    runner_lead(1);
    th_run_for(W.loop, 300);
    ck_assert_int_eq(holder(), 0);
    char owner[32];
    snprintf(owner, sizeof(owner), "%s", W.r[0].owner);
    redisReply *k = th_redis_cmd(&W.srv, "CLIENT KILL ID %lld", client_id("lock-a"));
    freeReplyObject(k);
    ck_assert(th_run_until(W.loop, client_down, W.r[0].redis, 2000));
    runner_unlead(0);
    ck_assert(!sh_redis_up(W.r[0].redis));
    /* Not released: the key still names the holder that is gone. */
    assert_key_is(&W, owner);
    uint64_t took = wait_runs(1, TTL + TICK + SLACK);
    ck_assert_uint_le(took, TTL + TICK + SLACK);
    ck_assert_uint_eq(sh_leader_stats(W.r[1].l)->acquired, 1);
    world_stop();
}
END_TEST

/* Redis goes away and comes back (empty: no persistence), three times:
 * nobody holds the lock or runs the job while it is away, and each time
 * the job resumes on one node. */
START_TEST(test_redis_restarts)
{
    world_start();
    runner_connect(0, 20, 200);
    runner_connect(1, 20, 200);
    runner_lead(0);
    runner_lead(1);
    ck_assert(th_run_until(W.loop, someone_holds, NULL, TTL + TICK + SLACK));
    for (int round = 0; round < 3; round++) {
        th_run_for(W.loop, 400);
        th_redis_kill(&W.srv);
        ck_assert(th_run_until(W.loop, nobody_holds, NULL, TICK + SLACK));
        int before = W.r[0].total_runs + W.r[1].total_runs;
        th_run_for(W.loop, 500);
        ck_assert_int_eq(W.r[0].total_runs + W.r[1].total_runs, before);
        ck_assert(!holds(&W.r[0]) && !holds(&W.r[1]));
        th_redis_restart(&W.srv);
        ck_assert(th_run_until(W.loop, someone_holds, NULL, 200 + 2 * TICK + SLACK));
        th_run_for(W.loop, 1000);
        ck_assert_int_ge(W.r[0].total_runs + W.r[1].total_runs, before + 4);
    }
    world_stop();
}
END_TEST

/* Renewals answered late (Redis busy across the tick: DEBUG SLEEP from the
 * runner's own connection after every other run): each late run must be
 * followed by a run on the very next tick, not one tick later because the
 * late reply pushed the job's next due time past it. */
typedef struct cadence {
    sh_timer_t timer;
    int provoked;
    int late;  /* runs more than 30 ms past the interval */
    int skips; /* a late run followed by a gap of two ticks */
    bool last_late;
} cadence_t;

static cadence_t C;

static void on_sleep_timer(sh_loop_t *loop, sh_timer_t *t)
{
    runner_t *r = t->data;
    const char *argv[] = {"DEBUG", "SLEEP", "0.15"};
    ck_assert_int_eq(sh_redis_command_argv(r->redis, NULL, NULL, 3, argv, NULL), 0);
    C.provoked++;
}

static void watch_cadence(runner_t *r)
{
    if (r->runs < 2)
        return;
    if (C.last_late && r->last_gap > INTERVAL + 100)
        C.skips++;
    C.last_late = r->last_gap > INTERVAL + 30;
    C.late += C.last_late;
    /* From an on-time run, Redis sleeps from 120 ms to 270 ms after it,
     * across the next tick (200 ms). */
    if (r->runs >= 3 && !C.last_late && C.provoked < 6)
        sh_timer_start(r->w->loop, &C.timer, 120, on_sleep_timer, r);
}

START_TEST(test_cadence_despite_late_replies)
{
    memset(&C, 0, sizeof(C));
    world_start();
    runner_connect(0, 20, 200);
    W.on_run = watch_cadence;
    runner_lead(0);
    th_run_for(W.loop, TTL + TICK + 2400);
    sh_timer_stop(W.loop, &C.timer);
    ck_assert_msg(C.skips <= 1, "%d of %d late runs were followed by a skipped tick", C.skips,
                  C.late);
    ck_assert_int_ge(C.provoked, 4);
    ck_assert_int_ge(C.late, 4);
    world_stop();
}
END_TEST

static void count_job(void *data)
{
    int *n = data;
    (*n)++;
}

/* Without Redis (one process) the job simply runs every interval, and
 * stops with its runner. */
START_TEST(test_without_redis)
{
    sh_loop_t *loop = sh_loop_new();
    int n = 0;
    sh_leader_t *l = sh_leader_new(loop, NULL, KEY, "solo", TTL, 100, count_job, &n);
    ck_assert(sh_leader_held(l));
    th_run_for(loop, 1050);
    ck_assert_msg(n >= 8 && n <= 11, "%d runs in 1 s at a 100 ms interval", n);
    ck_assert_uint_eq(sh_leader_stats(l)->runs, (uint64_t)n);
    ck_assert_uint_eq(sh_leader_stats(l)->acquired, 0);
    ck_assert(sh_leader_held(l));
    sh_leader_free(l);
    int after = n;
    th_run_for(loop, 300);
    ck_assert_int_eq(n, after);
    sh_leader_free(NULL);
    sh_loop_free(loop);
}
END_TEST

/* A runner freed while its first attempt is still out (Redis stopped):
 * the answer that comes later finds nothing (ASan watches), runs no job,
 * and the lock that SET took is left to expire. */
START_TEST(test_free_with_attempt_out)
{
    world_start();
    runner_connect(0, 20, 200);
    th_redis_pause(&W.srv);
    runner_lead(0);
    th_run_for(W.loop, TICK + 50);
    runner_unlead(0);
    th_redis_resume(&W.srv);
    th_run_for(W.loop, 100);
    ck_assert_int_eq(W.r[0].total_runs, 0);
    redisReply *ttl = th_redis_cmd(&W.srv, "PTTL %s", KEY);
    ck_assert_int_gt(ttl->integer, 0);
    ck_assert_int_le(ttl->integer, TTL);
    freeReplyObject(ttl);
    world_stop();
}
END_TEST

int main(void)
{
    if (!th_redis_available()) {
        printf("SKIP: REDIS_SERVER is not set (redis-server not found)\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("lock");
    TCase *tc = tcase_create("lock");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_one_at_a_time);
    tcase_add_test(tc, test_stalled_holder);
    tcase_add_test(tc, test_holder_cut_off);
    tcase_add_test(tc, test_redis_restarts);
    tcase_add_test(tc, test_cadence_despite_late_replies);
    tcase_add_test(tc, test_without_redis);
    tcase_add_test(tc, test_free_with_attempt_out);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
