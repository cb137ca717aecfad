#include "store/lock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "redis/redis.h"

/* Extends the lock only while it is still ours. */
static const char lua_renew[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
                                "  return redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
                                "end\n"
                                "return 0\n";
/* Deletes the lock only while it is still ours. */
static const char lua_release[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
                                  "  return redis.call('DEL', KEYS[1])\n"
                                  "end\n"
                                  "return 0\n";

/* The Redis round trip outlives the runner when it is freed meanwhile. */
typedef struct attempt {
    sh_leader_t *l; /* NULL once the runner is gone */
    bool renewal;
    uint64_t sent; /* loop time it was sent: the lock is ours ttl from here at most */
} attempt_t;

struct sh_leader {
    sh_loop_t *loop;
    sh_redis_t *redis;
    char *key;
    char *owner;
    uint64_t ttl, interval;
    uint64_t next_job; /* loop time of the next job run while held */
    sh_leader_job_cb job;
    void *data;
    bool held;
    uint64_t held_until; /* loop time the lock may expire in Redis, seen from here */
    attempt_t *inflight;
    sh_redis_script_t *renew, *release;
    sh_timer_t timer;
    sh_leader_stats_t stats;
};

/* How long a successful take or renewal keeps the lock ours, counted from
 * when it was sent: Redis counts the ttl from when it ran the command,
 * which is later, so the key cannot expire (and another node take it)
 * before this runs out. A twentieth is kept back for clock rates. */
static uint64_t validity(const sh_leader_t *l)
{
    return l->ttl - l->ttl / 20;
}

static void lose(sh_leader_t *l, const char *why)
{
    if (l->held) {
        l->stats.lost++;
        sh_warn("lock %s: %s; another node may run the job, retrying", l->key, why);
    }
    l->held = false;
}

/* Runs the job when it is due (every interval), now that the lock is
 * known to be ours. `tick` is when the tick that led here fired: the
 * cadence is counted in ticks, not in reply times, or a reply a little
 * faster than the last one would find the job not yet due and skip a
 * whole tick (a 200 ms job running every 400 ms). */
static void run_job(sh_leader_t *l, uint64_t tick)
{
    if (tick < l->next_job)
        return;
    l->next_job = tick + l->interval;
    l->stats.runs++;
    l->job(l->data);
}

static void on_attempt(int status, const redisReply *reply, void *data)
{
    attempt_t *a = data;
    sh_leader_t *l = a->l;
    bool renewal = a->renewal;
    uint64_t sent = a->sent;
    free(a);
    if (!l)
        return;
    l->inflight = NULL;
    bool ok;
    if (renewal)
        ok = status == 0 && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
    else
        ok = status == 0 && reply->type == REDIS_REPLY_STATUS && !strcmp(reply->str, "OK");
    if (!ok) {
        lose(l, status < 0 ? "renewal failed (Redis unreachable)" : "lost");
        return;
    }
    uint64_t until = sent + validity(l);
    if (sh_loop_now(l->loop) >= until) {
        /* The answer took so long that the key may have expired since. */
        lose(l, "renewal answered too late");
        return;
    }
    if (!l->held) {
        l->stats.acquired++;
        l->next_job = 0; /* a new holder runs the job at once */
        sh_info("lock %s: acquired; this node runs the job", l->key);
    }
    l->held = true;
    l->held_until = until;
    run_job(l, sent);
}

/* The lock is renewed three times per ttl, whatever the job's own
 * interval, so a slow job cadence never lets the lock lapse. */
static uint64_t tick_ms(const sh_leader_t *l)
{
    if (!l->redis)
        return l->interval;
    uint64_t t = l->ttl / 3;
    if (t > l->interval)
        t = l->interval;
    return t ? t : 1;
}

static void on_tick(sh_loop_t *loop, sh_timer_t *t)
{
    sh_leader_t *l = t->data;
    sh_timer_start(loop, t, tick_ms(l), on_tick, l);
    if (!l->redis) {
        run_job(l, sh_loop_now(loop));
        return;
    }
    if (l->held && sh_loop_now(loop) >= l->held_until)
        lose(l, "no renewal answered in time");
    if (l->inflight)
        return; /* the last round trip is still out: do not pile up */
    attempt_t *a = sh_new0(attempt_t);
    a->l = l;
    a->renewal = l->held;
    a->sent = sh_loop_now(loop);
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)l->ttl);
    int rc;
    if (l->held) {
        const char *argv[] = {l->key, l->owner, ttl};
        rc = sh_redis_eval(l->redis, l->renew, on_attempt, a, 1, 3, argv, NULL);
    } else {
        const char *argv[] = {"SET", l->key, l->owner, "NX", "PX", ttl};
        rc = sh_redis_command_argv(l->redis, on_attempt, a, 6, argv, NULL);
    }
    if (rc < 0) {
        free(a);
        if (l->held) {
            l->stats.lost++;
            sh_warn("lock %s: cannot renew (%s); another node may run the job, retrying", l->key,
                    strerror(-rc));
        }
        l->held = false;
        return;
    }
    l->inflight = a;
}

sh_leader_t *sh_leader_new(sh_loop_t *loop, struct sh_redis *redis, const char *key,
                           const char *owner, uint64_t ttl_ms, uint64_t interval_ms,
                           sh_leader_job_cb job, void *data)
{
    sh_leader_t *l = sh_new0(sh_leader_t);
    l->loop = loop;
    l->redis = redis;
    l->key = sh_strdup(key);
    l->owner = sh_strdup(owner);
    l->ttl = ttl_ms;
    l->interval = interval_ms;
    l->job = job;
    l->data = data;
    if (redis) {
        l->renew = sh_redis_script_new(lua_renew);
        l->release = sh_redis_script_new(lua_release);
    }
    l->next_job = sh_loop_now(loop) + interval_ms;
    sh_timer_start(loop, &l->timer, tick_ms(l), on_tick, l);
    return l;
}

void sh_leader_free(sh_leader_t *l)
{
    if (!l)
        return;
    sh_timer_stop(l->loop, &l->timer);
    if (l->inflight)
        l->inflight->l = NULL;
    if (l->held && l->redis) {
        /* Let another node take over at once rather than after the ttl. */
        const char *argv[] = {l->key, l->owner};
        sh_redis_eval(l->redis, l->release, NULL, NULL, 1, 2, argv, NULL);
        sh_info("lock %s: released", l->key);
    }
    sh_redis_script_free(l->renew);
    sh_redis_script_free(l->release);
    free(l->key);
    free(l->owner);
    free(l);
}

bool sh_leader_held(const sh_leader_t *l)
{
    return l->redis ? l->held && sh_loop_now(l->loop) < l->held_until : true;
}

const sh_leader_stats_t *sh_leader_stats(const sh_leader_t *l)
{
    return &l->stats;
}
