#include "store/beacon.h"

#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "redis/redis.h"

struct sh_beacon {
    sh_loop_t *loop;
    sh_redis_t *redis;
    char *key;
    char *value;
    uint64_t ttl;
    sh_timer_t timer;
};

static void write_key(sh_beacon_t *b)
{
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)b->ttl);
    const char *argv[] = {"SET", b->key, b->value, "PX", ttl};
    /* Fire and forget: a failure is retried at the next tick, and the
     * reaper tolerates a missed beat (the ttl is three beats long). */
    sh_redis_command_argv(b->redis, NULL, NULL, 5, argv, NULL);
}

static void on_tick(sh_loop_t *loop, sh_timer_t *t)
{
    sh_beacon_t *b = t->data;
    write_key(b);
    sh_timer_start(loop, t, b->ttl / 3 ? b->ttl / 3 : 1, on_tick, b);
}

sh_beacon_t *sh_beacon_new(sh_loop_t *loop, struct sh_redis *redis, const char *prefix,
                           const char *node_id, uint64_t ttl_ms)
{
    sh_beacon_t *b = sh_new0(sh_beacon_t);
    b->loop = loop;
    b->redis = redis;
    b->ttl = ttl_ms;
    size_t n = strlen(prefix) + strlen(node_id) + 32;
    b->key = sh_malloc(n);
    snprintf(b->key, n, "%s:siohub:node:%s", prefix, node_id);
    char host[256] = "?";
    gethostname(host, sizeof(host) - 1);
    size_t m = strlen(host) + 96;
    b->value = sh_malloc(m);
    snprintf(b->value, m, "{\"host\":\"%s\",\"pid\":%d,\"started\":%lld}", host, (int)getpid(),
             (long long)time(NULL));
    sh_timer_start(loop, &b->timer, 0, on_tick, b);
    return b;
}

void sh_beacon_kick(sh_beacon_t *b)
{
    write_key(b);
}

void sh_beacon_free(sh_beacon_t *b)
{
    if (!b)
        return;
    sh_timer_stop(b->loop, &b->timer);
    const char *argv[] = {"DEL", b->key};
    sh_redis_command_argv(b->redis, NULL, NULL, 2, argv, NULL);
    free(b->key);
    free(b->value);
    free(b);
}
