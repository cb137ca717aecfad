/* The Redis client against a real redis-server (tests/lib/redis_server.h),
 * started by each test on a free 127.0.0.1 port. Tests count callbacks and
 * check their statuses, order and that none runs from inside a call. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/msg.h"
#include "redis/reply.h"
#include "harness.h"
#include "redis/redis.h"
#include "redis_server.h"

#define WAIT_MS 5000

typedef struct ctx ctx_t;

typedef struct result {
    ctx_t *x;
    int calls;
    int status;
    int type;
    long long integer;
    size_t elements;
    char str[512]; /* string, status or error; for arrays, element 0 */
    size_t len;
    unsigned seq;      /* completion order */
    bool free_client;  /* sh_redis_free from inside the callback */
    bool was_up;       /* sh_redis_up() seen from inside the callback */
    int resend_status; /* a command issued from inside the callback */
} result_t;

typedef struct msgs {
    ctx_t *x;
    int n;
    char channel[64];
    char pattern[64];
    bool has_pattern;
    char payload[256];
    size_t len;
    bool unsubscribe_self;
    bool free_client;
} msgs_t;

struct ctx {
    sh_loop_t *loop;
    th_redis_t srv;
    sh_redis_t *r;
    int ups, downs;
    bool up;
    char reason[256];
    unsigned seq;
    bool free_on_state;
};

/* ---- callbacks ---- */

static void on_state(sh_redis_t *r, bool up, const char *reason, void *data)
{
    ctx_t *x = data;
    ck_assert_ptr_eq(r, x->r);
    /* Transitions alternate, starting with "up". */
    ck_assert(up != x->up);
    ck_assert(up == sh_redis_up(r));
    x->up = up;
    if (up)
        x->ups++;
    else
        x->downs++;
    snprintf(x->reason, sizeof(x->reason), "%s", reason);
    if (x->free_on_state) {
        sh_redis_free(r);
        x->r = NULL;
    }
}

static void on_result(int status, const redisReply *reply, void *data)
{
    result_t *res = data;
    res->calls++;
    res->status = status;
    res->seq = ++res->x->seq;
    res->was_up = res->x->r ? sh_redis_up(res->x->r) : false;
    if (reply) {
        ck_assert_int_eq(status, 0);
        res->type = reply->type;
        res->integer = reply->integer;
        res->elements = reply->elements;
        const redisReply *s = reply;
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0)
            s = reply->element[0];
        if (s->str) {
            res->len = s->len < sizeof(res->str) - 1 ? s->len : sizeof(res->str) - 1;
            memcpy(res->str, s->str, res->len);
            res->str[res->len] = '\0';
        }
    } else {
        ck_assert_int_lt(status, 0);
    }
    if (res->free_client) {
        sh_redis_free(res->x->r);
        res->x->r = NULL;
    } else if (status < 0 && res->x->r) {
        const char *argv[] = {"PING"};
        res->resend_status = sh_redis_command_argv(res->x->r, NULL, NULL, 1, argv, NULL);
    }
}

static void on_message(const char *channel, const char *pattern, const char *payload, size_t len,
                       sh_msg_t *own, void *data)
{
    (void)own;
    msgs_t *m = data;
    m->n++;
    snprintf(m->channel, sizeof(m->channel), "%s", channel);
    m->has_pattern = pattern != NULL;
    snprintf(m->pattern, sizeof(m->pattern), "%s", pattern ? pattern : "");
    m->len = len < sizeof(m->payload) ? len : sizeof(m->payload);
    memcpy(m->payload, payload, m->len);
    if (m->unsubscribe_self) {
        if (pattern)
            ck_assert_int_eq(sh_redis_punsubscribe(m->x->r, pattern, on_message, m), 0);
        else
            ck_assert_int_eq(sh_redis_unsubscribe(m->x->r, channel, on_message, m), 0);
    }
    if (m->free_client) {
        sh_redis_free(m->x->r);
        m->x->r = NULL;
    }
}

/* ---- conditions ---- */

static bool res_done(void *arg)
{
    return ((result_t *)arg)->calls > 0;
}

static bool is_up(void *arg)
{
    ctx_t *x = arg;
    return x->up;
}

static bool is_down(void *arg)
{
    ctx_t *x = arg;
    return !x->up && x->downs > 0;
}

static bool subscribed(void *arg)
{
    ctx_t *x = arg;
    return x->up && sh_redis_subscribed(x->r);
}

static bool got_msg(void *arg)
{
    return ((msgs_t *)arg)->n > 0;
}

/* ---- set-up ---- */

static void res_init(result_t *res, ctx_t *x)
{
    memset(res, 0, sizeof(*res));
    res->x = x;
    res->status = 1;
}

static void ctx_start(ctx_t *x, bool unixsocket, const char *const *extra)
{
    memset(x, 0, sizeof(*x));
    x->loop = sh_loop_new();
    ck_assert_ptr_nonnull(x->loop);
    th_redis_start(&x->srv, 0, unixsocket, extra);
}

static void ctx_stop(ctx_t *x)
{
    sh_redis_free(x->r);
    x->r = NULL;
    sh_loop_run_deferred(x->loop);
    sh_loop_free(x->loop);
    th_redis_stop(&x->srv);
}

/* A client of x's server; opts may be NULL (defaults). userinfo e.g.
 * ":pw@" or "". */
static sh_redis_t *client_url(ctx_t *x, const char *url, const sh_redis_options_t *opts)
{
    sh_redis_options_t o = {0};
    if (opts)
        o = *opts;
    o.url = url;
    o.on_state = on_state;
    o.state_data = x;
    sh_buf_t err = SH_BUF_INIT;
    sh_redis_t *r = sh_redis_new(x->loop, &o, &err);
    ck_assert_msg(r != NULL, "sh_redis_new: %s", sh_buf_peek(&err));
    sh_buf_release(&err);
    return r;
}

static sh_redis_t *client(ctx_t *x, const char *userinfo, int db, const sh_redis_options_t *opts)
{
    char url[256];
    snprintf(url, sizeof(url), "redis://%s127.0.0.1:%u/%d", userinfo, (unsigned)x->srv.port, db);
    return client_url(x, url, opts);
}

static void wait_up(ctx_t *x)
{
    ck_assert_msg(th_run_until(x->loop, is_up, x, WAIT_MS), "client did not come up: %s",
                  x->r ? sh_redis_last_error(x->r) : "(freed)");
}

static void wait_res(ctx_t *x, result_t *res)
{
    ck_assert_msg(th_run_until(x->loop, res_done, res, WAIT_MS), "no callback");
}

static int cmd(ctx_t *x, result_t *res, int argc, const char **argv)
{
    res_init(res, x);
    return sh_redis_command_argv(x->r, on_result, res, argc, argv, NULL);
}

/* ---- tests ---- */

START_TEST(test_reply_types)
{
    ctx_t x;
    ctx_start(&x, false, NULL);
    x.r = client(&x, "", 0, NULL);
    ck_assert(!sh_redis_up(x.r));
    ck_assert_int_eq(x.ups, 0);
    wait_up(&x);
    char want[64];
    snprintf(want, sizeof(want), "connected to 127.0.0.1:%u", (unsigned)x.srv.port);
    ck_assert_str_eq(x.reason, want);

    result_t set, get, nil, incr, rpush, lrange, err, fset, fget, pub;
    const char *setv[] = {"SET", "bin", "a\0b"};
    size_t setl[] = {3, 3, 3};
    res_init(&set, &x);
    ck_assert_int_eq(sh_redis_command_argv(x.r, on_result, &set, 3, setv, setl), 0);
    const char *getv[] = {"GET", "bin"};
    ck_assert_int_eq(cmd(&x, &get, 2, getv), 0);
    const char *nilv[] = {"GET", "missing"};
    ck_assert_int_eq(cmd(&x, &nil, 2, nilv), 0);
    const char *incrv[] = {"INCR", "counter"};
    ck_assert_int_eq(cmd(&x, &incr, 2, incrv), 0);
    const char *rpushv[] = {"RPUSH", "list", "a", "b", "c"};
    ck_assert_int_eq(cmd(&x, &rpush, 5, rpushv), 0);
    const char *lrangev[] = {"LRANGE", "list", "0", "-1"};
    ck_assert_int_eq(cmd(&x, &lrange, 4, lrangev), 0);
    const char *errv[] = {"NOSUCHCOMMAND", "x"};
    ck_assert_int_eq(cmd(&x, &err, 2, errv), 0);
    res_init(&fset, &x);
    ck_assert_int_eq(sh_redis_command(x.r, on_result, &fset, "SET %s %b", "k2", "xyz", (size_t)2),
                     0);
    res_init(&fget, &x);
    ck_assert_int_eq(sh_redis_command(x.r, on_result, &fget, "GET %s", "k2"), 0);
    res_init(&pub, &x);
    ck_assert_int_eq(sh_redis_publish(x.r, "nobody", "p", 1, on_result, &pub), 0);
    /* Nothing called back from inside the calls. */
    ck_assert_int_eq(set.calls + get.calls + pub.calls, 0);
    /* Bad arguments are refused at once. */
    ck_assert_int_eq(sh_redis_command_argv(x.r, on_result, &set, 0, NULL, NULL), -EINVAL);
    ck_assert_int_eq(sh_redis_command(x.r, on_result, &set, "GET %q"), -EINVAL);

    wait_res(&x, &pub);
    ck_assert_int_eq(set.calls, 1);
    ck_assert_int_eq(set.status, 0);
    ck_assert_int_eq(set.type, REDIS_REPLY_STATUS);
    ck_assert_str_eq(set.str, "OK");
    ck_assert_int_eq(get.type, REDIS_REPLY_STRING);
    ck_assert_uint_eq(get.len, 3);
    ck_assert_mem_eq(get.str, "a\0b", 3);
    ck_assert_int_eq(nil.type, REDIS_REPLY_NIL);
    ck_assert_int_eq(incr.type, REDIS_REPLY_INTEGER);
    ck_assert_int_eq(incr.integer, 1);
    ck_assert_int_eq(rpush.integer, 3);
    ck_assert_int_eq(lrange.type, REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(lrange.elements, 3);
    ck_assert_str_eq(lrange.str, "a");
    ck_assert_int_eq(err.status, 0);
    ck_assert_int_eq(err.type, REDIS_REPLY_ERROR);
    ck_assert_msg(strncmp(err.str, "ERR unknown command", 19) == 0, "%s", err.str);
    ck_assert_str_eq(fset.str, "OK");
    ck_assert_str_eq(fget.str, "xy");
    ck_assert_int_eq(pub.type, REDIS_REPLY_INTEGER);
    ck_assert_int_eq(pub.integer, 0);
    /* Each exactly once, in the order made. */
    result_t *all[] = {&set, &get, &nil, &incr, &rpush, &lrange, &err, &fset, &fget, &pub};
    for (unsigned i = 0; i < 10; i++) {
        ck_assert_int_eq(all[i]->calls, 1);
        ck_assert_uint_eq(all[i]->seq, i + 1);
    }
    sh_redis_stats_t st;
    sh_redis_stats(x.r, &st);
    ck_assert_uint_eq(st.commands, 10);
    ck_assert_uint_eq(st.errors, 1);
    ck_assert_uint_eq(st.pending, 0);
    ck_assert_uint_eq(st.timeouts, 0);
    ck_assert_uint_eq(st.reconnects, 0);
    ctx_stop(&x);
}
END_TEST

START_TEST(test_order)
{
    ctx_t x;
    ctx_start(&x, false, NULL);
    x.r = client(&x, "", 0, NULL);
    wait_up(&x);
    enum { N = 300 };
    static result_t res[N];
    for (int i = 0; i < N; i++) {
        const char *v[] = {"INCR", "n"};
        ck_assert_int_eq(cmd(&x, &res[i], 2, v), 0);
        if (i % 50 == 0) /* no callback wanted: not counted, still in line */
            ck_assert_int_eq(sh_redis_command_argv(x.r, NULL, NULL, 2, v, NULL), 0);
    }
    wait_res(&x, &res[N - 1]);
    long long expect = 0;
    for (int i = 0; i < N; i++) {
        expect += 1 + (i % 50 == 0);
        ck_assert_int_eq(res[i].calls, 1);
        ck_assert_uint_eq(res[i].seq, (unsigned)i + 1);
        ck_assert_int_eq(res[i].integer, expect - (i % 50 == 0));
    }
    ctx_stop(&x);
}
END_TEST

/* A command larger than the socket takes at once: the end-of-iteration
 * write (redis/adapter.h) cannot finish it and must fall back to waiting
 * for the fd, and the commands after it must follow in order. */
START_TEST(test_write_larger_than_socket)
{
    ctx_t x;
    ctx_start(&x, false, NULL);
    x.r = client(&x, "", 0, NULL);
    wait_up(&x);
    enum { BIG = 48 << 20 };
    char *big = malloc(BIG);
    ck_assert_ptr_nonnull(big);
    for (size_t i = 0; i < BIG; i++)
        big[i] = (char)('a' + i % 26);
    result_t set, len, tail, incr;
    const char *setv[] = {"SET", "big", big};
    size_t setl[] = {3, 3, BIG};
    res_init(&set, &x);
    ck_assert_int_eq(sh_redis_command_argv(x.r, on_result, &set, 3, setv, setl), 0);
    free(big); /* hiredis holds its own copy of the command */
    const char *lenv[] = {"STRLEN", "big"};
    ck_assert_int_eq(cmd(&x, &len, 2, lenv), 0);
    const char *tailv[] = {"GETRANGE", "big", "-3", "-1"};
    ck_assert_int_eq(cmd(&x, &tail, 4, tailv), 0);
    const char *incrv[] = {"INCR", "after"};
    ck_assert_int_eq(cmd(&x, &incr, 2, incrv), 0);
    wait_res(&x, &incr);
    ck_assert_int_eq(set.calls, 1);
    ck_assert_str_eq(set.str, "OK");
    ck_assert_int_eq(len.integer, BIG);
    char want[4];
    for (int i = 0; i < 3; i++)
        want[i] = (char)('a' + (BIG - 3 + i) % 26);
    want[3] = '\0';
    ck_assert_str_eq(tail.str, want);
    ck_assert_int_eq(incr.integer, 1);
    ck_assert_uint_lt(set.seq, len.seq);
    ck_assert_uint_lt(len.seq, tail.seq);
    ck_assert_uint_lt(tail.seq, incr.seq);
    ctx_stop(&x);
}
END_TEST

START_TEST(test_not_connected_then_up)
{
    ctx_t x;
    memset(&x, 0, sizeof(x));
    x.loop = sh_loop_new();
    uint16_t port = th_free_port();
    char url[128];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%u", (unsigned)port);
    sh_redis_options_t o = {.reconnect_min_ms = 20, .reconnect_max_ms = 80};
    x.r = client_url(&x, url, &o);
    ck_assert(!sh_redis_up(x.r));
    result_t res;
    const char *v[] = {"PING"};
    ck_assert_int_eq(cmd(&x, &res, 1, v), -ENOTCONN);
    th_run_for(x.loop, 300);
    ck_assert_int_eq(res.calls, 0); /* refused calls never call back */
    ck_assert_int_eq(x.ups + x.downs, 0);
    ck_assert_msg(strstr(sh_redis_last_error(x.r), "refused"), "%s", sh_redis_last_error(x.r));
    ck_assert_int_eq(sh_redis_publish(x.r, "c", "p", 1, NULL, NULL), -ENOTCONN);
    sh_redis_stats_t st;
    sh_redis_stats(x.r, &st);
    ck_assert_uint_eq(st.rejected, 2);
    ck_assert_uint_eq(st.commands, 0);

    /* Redis appears: the client connects by itself. */
    th_redis_start(&x.srv, port, false, NULL);
    wait_up(&x);
    ck_assert_int_eq(x.ups, 1);
    ck_assert_int_eq(x.downs, 0);
    ck_assert_int_eq(cmd(&x, &res, 1, v), 0);
    wait_res(&x, &res);
    ck_assert_str_eq(res.str, "PONG");
    ctx_stop(&x);
}
END_TEST

START_TEST(test_timeout_then_reconnect)
{
    ctx_t x;
    ctx_start(&x, false, NULL);
    sh_redis_options_t o = {
        .command_timeout_ms = 200, .reconnect_min_ms = 20, .reconnect_max_ms = 100};
    x.r = client(&x, "", 0, &o);
    wait_up(&x);
    result_t slow, behind;
    const char *sleepv[] = {"DEBUG", "SLEEP", "1"};
    const char *pingv[] = {"PING"};
    uint64_t t0 = sh_time_ms();
    ck_assert_int_eq(cmd(&x, &slow, 3, sleepv), 0);
    ck_assert_int_eq(cmd(&x, &behind, 1, pingv), 0);
    wait_res(&x, &slow);
    uint64_t took = sh_time_ms() - t0;
    ck_assert_int_eq(slow.status, -ETIMEDOUT);
    ck_assert_msg(took >= 190 && took < 800, "timed out after %llu ms", (unsigned long long)took);
    /* Down already inside the callback: a command made there is refused. */
    ck_assert(!slow.was_up);
    ck_assert_int_eq(slow.resend_status, -ENOTCONN);
    ck_assert_int_eq(behind.calls, 1);
    ck_assert_int_eq(behind.status, -ECONNRESET);
    ck_assert(!sh_redis_up(x.r));
    ck_assert(th_run_until(x.loop, is_down, &x, WAIT_MS));
    ck_assert_str_eq(x.reason, "command timed out after 200 ms");
    ck_assert_str_eq(sh_redis_last_error(x.r), "command timed out after 200 ms");

    /* It reconnects once Redis answers again (after its sleep). */
    wait_up(&x);
    ck_assert_int_eq(x.ups, 2);
    ck_assert_int_eq(x.downs, 1);
    result_t ping;
    ck_assert_int_eq(cmd(&x, &ping, 1, pingv), 0);
    wait_res(&x, &ping);
    ck_assert_str_eq(ping.str, "PONG");
    sh_redis_stats_t st;
    sh_redis_stats(x.r, &st);
    ck_assert_uint_eq(st.timeouts, 1);
    ck_assert_uint_eq(st.reconnects, 1);
    ck_assert_uint_eq(st.errors, 2);
    ctx_stop(&x);
}
END_TEST

START_TEST(test_host_names)
{
    ctx_t x;
    ctx_start(&x, false, NULL);
    char url[128];
    snprintf(url, sizeof(url), "redis://localhost:%u", (unsigned)x.srv.port);
    x.r = client_url(&x, url, NULL);
    wait_up(&x);
    char want[64];
    snprintf(want, sizeof(want), "connected to localhost:%u", (unsigned)x.srv.port);
    ck_assert_str_eq(x.reason, want);
    result_t res;
    const char *v[] = {"PING"};
    ck_assert_int_eq(cmd(&x, &res, 1, v), 0);
    wait_res(&x, &res);
    ck_assert_str_eq(res.str, "PONG");
    sh_redis_free(x.r);

    /* A name that does not resolve: down, and the reason says so. (With
     * no DNS at all the lookup times out instead; either is fine.) */
    x.up = false;
    x.ups = 0;
    sh_redis_options_t o = {.connect_timeout_ms = 3000};
    x.r = client_url(&x, "redis://siohub-no-such-host.invalid:6379", &o);
    uint64_t t0 = sh_time_ms();
    while (strncmp(sh_redis_last_error(x.r), "connecting to", 13) == 0 && sh_time_ms() - t0 < 4000)
        th_run_for(x.loop, 20);
    const char *e = sh_redis_last_error(x.r);
    ck_assert_msg(strncmp(e, "cannot resolve siohub-no-such-host.invalid: ", 44) == 0 ||
                      strcmp(e, "looking up siohub-no-such-host.invalid took over 3000 ms") == 0,
                  "%s", e);
    ck_assert_int_eq(x.ups, 0);
    /* Freed while a lookup may be running. */
    sh_redis_free(x.r);
    x.r = client_url(&x, "redis://siohub-no-such-host.invalid:6379", &o);
    th_run_once(x.loop);
    ctx_stop(&x);
}
END_TEST

START_TEST(test_connect_timeout)
{
    ctx_t x;
    ctx_start(&x, false, NULL);
    /* A stopped server: the kernel completes the TCP handshake, nobody
     * answers the handshake commands. */
    th_redis_pause(&x.srv);
    sh_redis_options_t o = {
        .connect_timeout_ms = 150, .reconnect_min_ms = 10, .reconnect_max_ms = 40};
    x.r = client(&x, "", 0, &o);
    th_run_for(x.loop, 500);
    ck_assert(!sh_redis_up(x.r));
    ck_assert_int_eq(x.ups, 0);
    ck_assert_str_eq(sh_redis_last_error(x.r), "no answer within 150 ms of connecting");
    th_redis_resume(&x.srv);
    wait_up(&x);
    ctx_stop(&x);
}
END_TEST

START_TEST(test_restart_resubscribes)
{
    ctx_t x;
    ctx_start(&x, false, NULL);
    sh_redis_options_t o = {.reconnect_min_ms = 20, .reconnect_max_ms = 100};
    x.r = client(&x, "", 0, &o);
    msgs_t chan = {.x = &x}, pat = {.x = &x};
    /* Subscribing works before the client is up: it is remembered. */
    ck_assert_int_eq(sh_redis_subscribe(x.r, "chan", on_message, &chan), 0);
    ck_assert_int_eq(sh_redis_psubscribe(x.r, "pat.*", on_message, &pat), 0);
    ck_assert_int_eq(sh_redis_subscribe(x.r, "chan", on_message, &chan), -EEXIST);
    ck_assert(!sh_redis_subscribed(x.r));
    ck_assert(th_run_until(x.loop, subscribed, &x, WAIT_MS));

    result_t pub;
    res_init(&pub, &x);
    ck_assert_int_eq(sh_redis_publish(x.r, "chan", "x\0y", 3, on_result, &pub), 0);
    ck_assert(th_run_until(x.loop, got_msg, &chan, WAIT_MS));
    wait_res(&x, &pub);
    ck_assert_int_eq(pub.integer, 1);
    ck_assert_str_eq(chan.channel, "chan");
    ck_assert(!chan.has_pattern);
    ck_assert_uint_eq(chan.len, 3);
    ck_assert_mem_eq(chan.payload, "x\0y", 3);
    res_init(&pub, &x);
    ck_assert_int_eq(sh_redis_publish(x.r, "pat.1", "hello", 5, on_result, &pub), 0);
    ck_assert(th_run_until(x.loop, got_msg, &pat, WAIT_MS));
    ck_assert_str_eq(pat.channel, "pat.1");
    ck_assert(pat.has_pattern);
    ck_assert_str_eq(pat.pattern, "pat.*");
    ck_assert_mem_eq(pat.payload, "hello", 5);
    ck_assert_int_eq(chan.n, 1);

    /* Redis dies: down, commands refused at once. */
    th_redis_kill(&x.srv);
    ck_assert(th_run_until(x.loop, is_down, &x, WAIT_MS));
    ck_assert_int_eq(x.downs, 1);
    ck_assert_int_eq(sh_redis_publish(x.r, "chan", "z", 1, NULL, NULL), -ENOTCONN);
    th_run_for(x.loop, 150); /* a few failed attempts */
    ck_assert(!sh_redis_up(x.r));

    /* Back on the same port: up again, subscriptions resumed. */
    th_redis_restart(&x.srv);
    wait_up(&x);
    ck_assert_int_eq(x.ups, 2);
    ck_assert(th_run_until(x.loop, subscribed, &x, WAIT_MS));
    chan.n = pat.n = 0;
    redisReply *rep = th_redis_cmd(&x.srv, "PUBLISH chan %b", "after\0restart", (size_t)13);
    ck_assert_int_eq(rep->integer, 1);
    freeReplyObject(rep);
    ck_assert(th_run_until(x.loop, got_msg, &chan, WAIT_MS));
    ck_assert_uint_eq(chan.len, 13);
    ck_assert_mem_eq(chan.payload, "after\0restart", 13);
    res_init(&pub, &x);
    ck_assert_int_eq(sh_redis_publish(x.r, "pat.2", "again", 5, on_result, &pub), 0);
    ck_assert(th_run_until(x.loop, got_msg, &pat, WAIT_MS));
    ck_assert_str_eq(pat.channel, "pat.2");
    sh_redis_stats_t st;
    sh_redis_stats(x.r, &st);
    ck_assert_uint_eq(st.reconnects, 2); /* the command and the subscriber connection */
    ck_assert_uint_eq(st.messages, 4);
    ctx_stop(&x);
}
END_TEST

START_TEST(test_unsubscribe)
{
    ctx_t x;
    ctx_start(&x, false, NULL);
    x.r = client(&x, "", 0, NULL);
    msgs_t a = {.x = &x}, b = {.x = &x}, once = {.x = &x, .unsubscribe_self = true};
    ck_assert_int_eq(sh_redis_subscribe(x.r, "c", on_message, &a), 0);
    ck_assert_int_eq(sh_redis_subscribe(x.r, "c", on_message, &b), 0);
    ck_assert_int_eq(sh_redis_psubscribe(x.r, "c*", on_message, &once), 0);
    ck_assert_int_eq(sh_redis_unsubscribe(x.r, "c", on_message, &once), -ENOENT);
    ck_assert_int_eq(sh_redis_punsubscribe(x.r, "nope", on_message, &a), -ENOENT);
    ck_assert(th_run_until(x.loop, subscribed, &x, WAIT_MS));

    result_t pub;
    res_init(&pub, &x);
    ck_assert_int_eq(sh_redis_publish(x.r, "c", "1", 1, on_result, &pub), 0);
    ck_assert(th_run_until(x.loop, got_msg, &b, WAIT_MS));
    wait_res(&x, &pub);
    ck_assert_int_eq(pub.integer, 2); /* the channel and the pattern */
    ck_assert_int_eq(a.n, 1);
    ck_assert_int_eq(once.n, 1);
    /* once removed itself from inside its callback; a is removed now. */
    ck_assert_int_eq(sh_redis_unsubscribe(x.r, "c", on_message, &a), 0);
    ck_assert(th_run_until(x.loop, subscribed, &x, WAIT_MS));
    b.n = 0;
    res_init(&pub, &x);
    ck_assert_int_eq(sh_redis_publish(x.r, "c", "2", 1, on_result, &pub), 0);
    ck_assert(th_run_until(x.loop, got_msg, &b, WAIT_MS));
    wait_res(&x, &pub);
    ck_assert_int_eq(pub.integer, 1);
    ck_assert_int_eq(a.n, 1);
    ck_assert_int_eq(once.n, 1);
    ck_assert_mem_eq(b.payload, "2", 1);
    /* The last one: Redis has no subscriber left. */
    ck_assert_int_eq(sh_redis_unsubscribe(x.r, "c", on_message, &b), 0);
    th_run_for(x.loop, 50);
    ck_assert(sh_redis_subscribed(x.r));
    res_init(&pub, &x);
    ck_assert_int_eq(sh_redis_publish(x.r, "c", "3", 1, on_result, &pub), 0);
    wait_res(&x, &pub);
    ck_assert_int_eq(pub.integer, 0);
    /* And subscribing again works on the same connection. */
    ck_assert_int_eq(sh_redis_subscribe(x.r, "c", on_message, &a), 0);
    ck_assert(th_run_until(x.loop, subscribed, &x, WAIT_MS));
    res_init(&pub, &x);
    ck_assert_int_eq(sh_redis_publish(x.r, "c", "4", 1, on_result, &pub), 0);
    wait_res(&x, &pub);
    ck_assert_int_eq(pub.integer, 1);
    ctx_stop(&x);
}
END_TEST

static bool subscriber_refused(void *arg)
{
    ctx_t *x = arg;
    return strncmp(sh_redis_last_error(x->r), "subscriber: NOPERM", 18) == 0;
}

/* Redis refuses a subscription (an ACL user without the channel): the
 * subscriber connection is dropped with Redis' reason, the command
 * connection stays up, and the allowed channel still works after the
 * reconnect. */
START_TEST(test_subscription_refused)
{
    ctx_t x;
    ctx_start(&x, false, NULL);
    redisReply *rep = th_redis_cmd(&x.srv, "ACL SETUSER bob on >bob-pw ~* resetchannels "
                                           "&allowed* +@all");
    ck_assert_str_eq(rep->str, "OK");
    freeReplyObject(rep);
    sh_redis_options_t o = {.reconnect_min_ms = 20, .reconnect_max_ms = 50};
    x.r = client(&x, "bob:bob-pw@", 0, &o);
    msgs_t ok = {.x = &x}, denied = {.x = &x};
    ck_assert_int_eq(sh_redis_subscribe(x.r, "allowed.1", on_message, &ok), 0);
    ck_assert(th_run_until(x.loop, subscribed, &x, WAIT_MS));
    ck_assert_int_eq(sh_redis_subscribe(x.r, "denied", on_message, &denied), 0);
    ck_assert_msg(th_run_until(x.loop, subscriber_refused, &x, WAIT_MS), "%s",
                  sh_redis_last_error(x.r));
    ck_assert(sh_redis_up(x.r));
    /* Retried with the refused one dropped by its owner: subscribed again. */
    ck_assert_int_eq(sh_redis_unsubscribe(x.r, "denied", on_message, &denied), 0);
    ck_assert(th_run_until(x.loop, subscribed, &x, WAIT_MS));
    rep = th_redis_cmd(&x.srv, "PUBLISH allowed.1 hi");
    freeReplyObject(rep);
    ck_assert(th_run_until(x.loop, got_msg, &ok, WAIT_MS));
    ck_assert_mem_eq(ok.payload, "hi", 2);
    ck_assert_int_eq(denied.n, 0);
    ctx_stop(&x);
}
END_TEST

START_TEST(test_evalsha_fallback)
{
    ctx_t x;
    ctx_start(&x, false, NULL);
    x.r = client(&x, "", 0, NULL);
    wait_up(&x);
    sh_redis_script_t *s = sh_redis_script_new("return {KEYS[1], ARGV[1], #ARGV}");
    /* The SHA-1 of the source, as SCRIPT LOAD would return it. */
    redisReply *rep = th_redis_cmd(&x.srv, "SCRIPT LOAD %s", "return {KEYS[1], ARGV[1], #ARGV}");
    ck_assert_str_eq(sh_redis_script_sha(s), rep->str);
    freeReplyObject(rep);
    rep = th_redis_cmd(&x.srv, "SCRIPT FLUSH");
    freeReplyObject(rep);

    const char *argv[] = {"key", "a\0b", "more"};
    size_t lens[] = {3, 3, 4};
    result_t res;
    sh_redis_stats_t st;
    /* The first call on the connection goes as EVAL, which loads it. */
    res_init(&res, &x);
    ck_assert_int_eq(sh_redis_eval(x.r, s, on_result, &res, 1, 3, argv, lens), 0);
    wait_res(&x, &res);
    ck_assert_int_eq(res.calls, 1);
    ck_assert_int_eq(res.type, REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(res.elements, 3);
    ck_assert_str_eq(res.str, "key");
    sh_redis_stats(x.r, &st);
    ck_assert_uint_eq(st.noscript, 0);
    /* Loaded by the EVAL: EVALSHA hits. */
    res_init(&res, &x);
    ck_assert_int_eq(sh_redis_eval(x.r, s, on_result, &res, 1, 3, argv, lens), 0);
    wait_res(&x, &res);
    ck_assert_uint_eq(res.elements, 3);
    sh_redis_stats(x.r, &st);
    ck_assert_uint_eq(st.noscript, 0);
    /* The cache flushed under a live connection: NOSCRIPT, resent as EVAL,
     * transparent to the caller, and the script may be freed by its owner
     * while it runs. */
    result_t flush;
    const char *flushv[] = {"SCRIPT", "FLUSH"};
    ck_assert_int_eq(cmd(&x, &flush, 2, flushv), 0);
    res_init(&res, &x);
    ck_assert_int_eq(sh_redis_eval(x.r, s, on_result, &res, 1, 3, argv, lens), 0);
    sh_redis_script_free(s);
    wait_res(&x, &res);
    ck_assert_int_eq(res.status, 0);
    ck_assert_int_eq(res.type, REDIS_REPLY_ARRAY);
    sh_redis_stats(x.r, &st);
    ck_assert_uint_eq(st.noscript, 1);
    ck_assert_uint_eq(st.errors, 0);

    /* A script error is the caller's reply; bad counts are refused. */
    sh_redis_script_t *bad = sh_redis_script_new("return redis.call('NOSUCH')");
    res_init(&res, &x);
    ck_assert_int_eq(sh_redis_eval(x.r, bad, on_result, &res, 0, 0, NULL, NULL), 0);
    wait_res(&x, &res);
    ck_assert_int_eq(res.type, REDIS_REPLY_ERROR);
    ck_assert_int_eq(sh_redis_eval(x.r, bad, on_result, &res, 2, 1, argv, NULL), -EINVAL);
    ck_assert_int_eq(sh_redis_eval(x.r, bad, on_result, &res, -1, 0, NULL, NULL), -EINVAL);
    sh_redis_script_free(bad);
    sh_redis_script_free(NULL);
    ctx_stop(&x);
}
END_TEST

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    sh_buf_t b = SH_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        sh_buf_append(&b, chunk, n);
    fclose(f);
    return sh_buf_steal(&b, NULL);
}

START_TEST(test_auth_select_and_logs)
{
    /* Everything logged here goes to a file the test reads back. */
    char logpath[] = "/tmp/siohub-redis-log-XXXXXX";
    int logfd = mkstemp(logpath);
    ck_assert_int_ge(logfd, 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(logfd, 2);
    sh_log_set_level(SH_LOG_DEBUG);

    ctx_t x;
    const char *extra[] = {"--requirepass", "s3cr3t!pw", NULL};
    ctx_start(&x, false, extra);
    sh_redis_options_t o = {
        .client_name = "siohub-test", .reconnect_min_ms = 10, .reconnect_max_ms = 30};
    x.r = client(&x, ":s3cr3t%21pw@", 3, &o);
    wait_up(&x);
    result_t res;
    const char *setv[] = {"SET", "authkey", "v3"};
    ck_assert_int_eq(cmd(&x, &res, 3, setv), 0);
    wait_res(&x, &res);
    ck_assert_str_eq(res.str, "OK");
    const char *infov[] = {"CLIENT", "INFO"};
    ck_assert_int_eq(cmd(&x, &res, 2, infov), 0);
    wait_res(&x, &res);
    ck_assert_msg(strstr(res.str, " name=siohub-test ") && strstr(res.str, " db=3 "), "%s",
                  res.str);
    /* The key landed in database 3. */
    redisContext *c = th_redis_connect(&x.srv);
    redisReply *rep = redisCommand(c, "SELECT 3");
    freeReplyObject(rep);
    rep = redisCommand(c, "GET authkey");
    ck_assert_str_eq(rep->str, "v3");
    freeReplyObject(rep);
    /* An ACL user. */
    rep = redisCommand(c, "ACL SETUSER alice on >alice-pw ~* &* +@all");
    ck_assert_str_eq(rep->str, "OK");
    freeReplyObject(rep);
    redisFree(c);
    sh_redis_free(x.r);
    x.r = NULL;
    x.up = false;
    x.r = client(&x, "alice:alice-pw@", 0, &o);
    wait_up(&x);
    const char *whov[] = {"ACL", "WHOAMI"};
    ck_assert_int_eq(cmd(&x, &res, 2, whov), 0);
    wait_res(&x, &res);
    ck_assert_str_eq(res.str, "alice");
    sh_redis_free(x.r);

    /* A wrong password: never up, the reason says why, retried quietly. */
    x.up = false;
    x.ups = 0;
    x.r = client(&x, ":wrong-pw@", 0, &o);
    th_run_for(x.loop, 300);
    ck_assert_int_eq(x.ups, 0);
    ck_assert_msg(strncmp(sh_redis_last_error(x.r), "AUTH failed: WRONGPASS", 22) == 0, "%s",
                  sh_redis_last_error(x.r));
    sh_redis_free(x.r);
    /* No password at all: the handshake's PING is refused. */
    o.client_name = NULL;
    x.r = client(&x, "", 0, &o);
    th_run_for(x.loop, 200);
    ck_assert_int_eq(x.ups, 0);
    ck_assert_msg(strncmp(sh_redis_last_error(x.r), "PING failed: NOAUTH", 19) == 0, "%s",
                  sh_redis_last_error(x.r));
    ctx_stop(&x);

    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(logfd);
    char *log = read_file(logpath);
    unlink(logpath);
    ck_assert_msg(strstr(log, "redis: connected to 127.0.0.1:"), "%s", log);
    ck_assert_msg(strstr(log, "AUTH failed: WRONGPASS"), "%s", log);
    ck_assert_msg(!strstr(log, "s3cr3t") && !strstr(log, "alice-pw") && !strstr(log, "wrong-pw"),
                  "a password was logged:\n%s", log);
    free(log);
}
END_TEST

START_TEST(test_unix_socket)
{
    ctx_t x;
    ctx_start(&x, true, NULL);
    char url[256];
    snprintf(url, sizeof(url), "unix://%s?db=2", x.srv.sock);
    x.r = client_url(&x, url, NULL);
    wait_up(&x);
    char want[256];
    snprintf(want, sizeof(want), "connected to unix:%s", x.srv.sock);
    ck_assert_str_eq(x.reason, want);
    result_t res;
    const char *setv[] = {"SET", "ux", "1"};
    ck_assert_int_eq(cmd(&x, &res, 3, setv), 0);
    wait_res(&x, &res);
    redisContext *c = th_redis_connect(&x.srv);
    redisReply *rep = redisCommand(c, "SELECT 2");
    freeReplyObject(rep);
    rep = redisCommand(c, "GET ux");
    ck_assert_str_eq(rep->str, "1");
    freeReplyObject(rep);
    redisFree(c);
    ctx_stop(&x);
}
END_TEST

START_TEST(test_max_pending)
{
    ctx_t x;
    ctx_start(&x, false, NULL);
    sh_redis_options_t o = {.max_pending = 3};
    x.r = client(&x, "", 0, &o);
    wait_up(&x);
    result_t res[5];
    const char *v[] = {"PING"};
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(cmd(&x, &res[i], 1, v), 0);
    ck_assert_int_eq(cmd(&x, &res[3], 1, v), -ENOBUFS);
    sh_redis_stats_t st;
    sh_redis_stats(x.r, &st);
    ck_assert_uint_eq(st.pending, 3);
    ck_assert_uint_eq(st.rejected, 1);
    wait_res(&x, &res[2]);
    ck_assert_int_eq(res[3].calls, 0);
    ck_assert_int_eq(cmd(&x, &res[4], 1, v), 0);
    wait_res(&x, &res[4]);
    ck_assert_str_eq(res[4].str, "PONG");
    ctx_stop(&x);
}
END_TEST

START_TEST(test_free_cancels)
{
    ctx_t x;
    ctx_start(&x, false, NULL);
    const char *v[] = {"PING"};
    result_t res[5];

    /* Freed with commands in flight: each called once, -ECANCELED, before
     * sh_redis_free returns; nothing afterwards. */
    x.r = client(&x, "", 0, NULL);
    wait_up(&x);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(cmd(&x, &res[i], 1, v), 0);
    sh_redis_free(x.r);
    x.r = NULL;
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(res[i].calls, 1);
        ck_assert_int_eq(res[i].status, -ECANCELED);
        ck_assert_uint_eq(res[i].seq, (unsigned)i + 1);
    }
    th_run_for(x.loop, 50);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(res[i].calls, 1);

    /* Freed from inside a reply callback: the rest are cancelled. */
    x.up = false;
    x.r = client(&x, "", 0, NULL);
    wait_up(&x);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(cmd(&x, &res[i], 1, v), 0);
    res[0].free_client = true;
    wait_res(&x, &res[4]);
    ck_assert_ptr_null(x.r);
    ck_assert_int_eq(res[0].status, 0);
    for (int i = 1; i < 5; i++) {
        ck_assert_int_eq(res[i].calls, 1);
        ck_assert_int_eq(res[i].status, -ECANCELED);
    }

    /* Freed from inside the state callback. */
    x.up = false;
    x.free_on_state = true;
    x.r = client(&x, "", 0, NULL);
    wait_up(&x);
    ck_assert_ptr_null(x.r);
    th_run_for(x.loop, 30);
    x.free_on_state = false;

    /* Freed from inside a message callback, with a command in flight. */
    x.up = false;
    x.r = client(&x, "", 0, NULL);
    msgs_t m = {.x = &x, .free_client = true};
    ck_assert_int_eq(sh_redis_subscribe(x.r, "bye", on_message, &m), 0);
    ck_assert(th_run_until(x.loop, subscribed, &x, WAIT_MS));
    redisReply *rep = th_redis_cmd(&x.srv, "PUBLISH bye now");
    freeReplyObject(rep);
    const char *sleepv[] = {"DEBUG", "SLEEP", "0.2"};
    ck_assert_int_eq(cmd(&x, &res[0], 3, sleepv), 0);
    ck_assert(th_run_until(x.loop, got_msg, &m, WAIT_MS));
    ck_assert_ptr_null(x.r);
    ck_assert_int_eq(res[0].calls, 1);
    ck_assert_int_eq(res[0].status, -ECANCELED);
    ck_assert_int_eq(m.n, 1);

    /* Freed from inside the timeout callback. */
    x.up = false;
    sh_redis_options_t o = {.command_timeout_ms = 100};
    x.r = client(&x, "", 0, &o);
    wait_up(&x);
    ck_assert_int_eq(cmd(&x, &res[0], 3, sleepv), 0);
    ck_assert_int_eq(cmd(&x, &res[1], 1, v), 0);
    res[0].free_client = true;
    wait_res(&x, &res[0]);
    ck_assert_int_eq(res[0].status, -ETIMEDOUT);
    ck_assert_int_eq(res[1].status, -ECANCELED);
    ck_assert_ptr_null(x.r);

    /* Freed while down, with a reconnect timer armed; and NULL. */
    th_redis_kill(&x.srv);
    x.r = client(&x, "", 0, NULL);
    th_run_for(x.loop, 50);
    sh_redis_free(x.r);
    x.r = NULL;
    sh_redis_free(NULL);
    ctx_stop(&x);
}
END_TEST

START_TEST(test_bad_options)
{
    sh_loop_t *loop = sh_loop_new();
    sh_buf_t err = SH_BUF_INIT;
    sh_redis_options_t o = {.url = "redis://host:0"};
    ck_assert_ptr_null(sh_redis_new(loop, &o, &err));
    ck_assert_str_eq(sh_buf_peek(&err), "invalid Redis URL: port must be a number from 1 to 65535");
    sh_buf_reset(&err);
    o.url = NULL;
    ck_assert_ptr_null(sh_redis_new(loop, &o, &err));
    sh_buf_reset(&err);
    o = (sh_redis_options_t){.url = "redis://h", .client_name = "has space"};
    ck_assert_ptr_null(sh_redis_new(loop, &o, &err));
    ck_assert_str_eq(
        sh_buf_peek(&err),
        "invalid Redis client name: 1 to 64 printable ASCII characters without spaces");
    sh_buf_reset(&err);
    o = (sh_redis_options_t){.url = "redis://h", .reconnect_min_ms = 500, .reconnect_max_ms = 100};
    ck_assert_ptr_null(sh_redis_new(loop, &o, &err));
    ck_assert_str_eq(sh_buf_peek(&err),
                     "Redis reconnect_max_ms (100) is below reconnect_min_ms (500)");
    sh_buf_release(&err);
    sh_loop_free(loop);
}
END_TEST

/* A script's first call on a new connection (a fresh or restarted Redis,
 * its script cache empty) keeps its place among the commands made after
 * it: it runs, and answers, before them. */
START_TEST(test_script_keeps_order)
{
    ctx_t x;
    ctx_start(&x, false, NULL);
    x.r = client(&x, "", 0, NULL);
    wait_up(&x);
    sh_redis_script_t *s = sh_redis_script_new("redis.call('SET', KEYS[1], ARGV[1]) return 1");
    for (int round = 0; round < 2; round++) {
        const char *setv[] = {"k", round ? "after-restart" : "first"};
        const char *getv[] = {"GET", "k"};
        result_t ev, get;
        res_init(&ev, &x);
        ck_assert_int_eq(sh_redis_eval(x.r, s, on_result, &ev, 1, 2, setv, NULL), 0);
        ck_assert_int_eq(cmd(&x, &get, 2, getv), 0);
        wait_res(&x, &get);
        ck_assert_int_eq(ev.calls, 1);
        ck_assert_int_eq(ev.type, REDIS_REPLY_INTEGER);
        ck_assert_uint_lt(ev.seq, get.seq);
        ck_assert_int_eq(get.type, REDIS_REPLY_STRING);
        ck_assert_str_eq(get.str, setv[1]);
        sh_redis_stats_t st;
        sh_redis_stats(x.r, &st);
        ck_assert_uint_eq(st.noscript, 0);
        if (round == 0) {
            th_redis_kill(&x.srv);
            ck_assert(th_run_until(x.loop, is_down, &x, WAIT_MS));
            th_redis_restart(&x.srv);
            wait_up(&x);
        }
    }
    sh_redis_script_free(s);
    ctx_stop(&x);
}
END_TEST

/* A long run of messages of every size, read 16 KiB at a time, so that
 * reads end anywhere in a message, its header included; a subscription
 * made in the middle of the run, whose confirmation comes between
 * messages; a pattern's messages among the channel's. The subscriber takes
 * messages from the reader itself and leaves the rest to hiredis
 * (adapter.c): every message must arrive once, whole, in order. */
typedef struct stream {
    unsigned next[3]; /* per channel: s, t, pattern p.* */
    unsigned bad;
} stream_t;

#define STREAM_RUN 1500

/* Message seq of channel i: "i:seq:" then filler that depends on both. */
static size_t stream_payload(char *out, size_t cap, unsigned i, unsigned seq)
{
    size_t n = (size_t)snprintf(out, cap, "%u:%u:", i, seq);
    size_t want = n + (seq * 37u + i * 101u) % 900u;
    for (; n < want && n < cap; n++)
        out[n] = (char)('a' + (seq + n) % 26);
    return n;
}

static void on_stream(const char *channel, const char *pattern, const char *payload, size_t len,
                      sh_msg_t *own, void *data)
{
    (void)own;
    stream_t *st = data;
    unsigned i = pattern ? 2 : channel[0] == 's' ? 0 : 1;
    char want[1024];
    size_t n = stream_payload(want, sizeof(want), i, st->next[i]);
    if (n != len || memcmp(want, payload, len) != 0)
        st->bad++;
    st->next[i]++;
}

static bool stream_done(void *arg)
{
    const stream_t *st = arg;
    return st->next[0] == 2 * STREAM_RUN && st->next[1] == STREAM_RUN / 2 &&
           st->next[2] == STREAM_RUN / 2;
}

static void stream_publish(redisContext *pc, unsigned i, unsigned from, unsigned count)
{
    const char *channel[] = {"s", "t", "p.x"};
    char payload[1024];
    for (unsigned seq = from; seq < from + count; seq++) {
        size_t n = stream_payload(payload, sizeof(payload), i, seq);
        redisAppendCommand(pc, "PUBLISH %s %b", channel[i], payload, n);
    }
    for (unsigned k = 0; k < count; k++) {
        redisReply *rep = NULL;
        ck_assert_int_eq(redisGetReply(pc, (void **)&rep), REDIS_OK);
        ck_assert_int_eq(rep->type, REDIS_REPLY_INTEGER);
        freeReplyObject(rep);
    }
}

/* A message far larger than a read, between small ones: whole, in order;
 * the reader's buffer grows for it and is given back after. */
#define BIG_MESSAGE (3u << 20)

typedef struct big {
    int n;
    unsigned bad;
} big_t;

/* Message seq: "0:seq:" then filler to its length (BIG_MESSAGE for 1). */
static size_t big_payload(char *out, unsigned seq)
{
    size_t n = (size_t)snprintf(out, 32, "0:%u:", seq);
    size_t want = seq == 1 ? BIG_MESSAGE : n + 100 * seq;
    for (; n < want; n++)
        out[n] = (char)('a' + (seq + n) % 26);
    return n;
}

static void on_big(const char *channel, const char *pattern, const char *payload, size_t len,
                   sh_msg_t *own, void *data)
{
    (void)own;
    (void)channel;
    (void)pattern;
    big_t *b = data;
    char *want = malloc(BIG_MESSAGE);
    ck_assert_ptr_nonnull(want);
    size_t n = big_payload(want, (unsigned)b->n);
    if (n != len || memcmp(want, payload, len) != 0)
        b->bad++;
    free(want);
    b->n++;
}

START_TEST(test_large_message)
{
    ctx_t x;
    ctx_start(&x, false, NULL);
    x.r = client(&x, "", 0, NULL);
    big_t b = {0, 0};
    ck_assert_int_eq(sh_redis_subscribe(x.r, "big", on_big, &b), 0);
    ck_assert(th_run_until(x.loop, subscribed, &x, WAIT_MS));
    redisContext *pc = th_redis_connect(&x.srv);
    char *payload = malloc(BIG_MESSAGE);
    ck_assert_ptr_nonnull(payload);
    for (unsigned seq = 0; seq < 3; seq++) {
        size_t n = big_payload(payload, seq);
        redisReply *rep = redisCommand(pc, "PUBLISH big %b", payload, n);
        ck_assert_int_eq(rep->integer, 1);
        freeReplyObject(rep);
    }
    ck_assert_msg(th_wait_count(x.loop, &b.n, 3, WAIT_MS), "got %d", b.n);
    ck_assert_uint_eq(b.bad, 0);
    free(payload);
    redisFree(pc);
    ctx_stop(&x);
}
END_TEST

/* What each callback was offered besides the payload. */
typedef struct offered {
    int n, owned;
    bool same_bytes; /* own's data is the payload itself */
    sh_msg_t *kept;  /* the last own, referenced */
} offered_t;

static void on_offered(const char *channel, const char *pattern, const char *payload, size_t len,
                       sh_msg_t *own, void *data)
{
    (void)channel;
    (void)pattern;
    offered_t *o = data;
    o->n++;
    if (!own)
        return;
    o->owned++;
    o->same_bytes = own->data == payload && own->len == len;
    sh_msg_unref(o->kept);
    o->kept = sh_msg_ref(own);
    /* Ours to rewrite: nothing reads the payload after us. */
    own->data[0] = '!';
}

/* A long payload comes as a message the one subscription it is for may
 * keep and rewrite; a short one, or one two subscriptions share, does
 * not. */
START_TEST(test_payload_offered_as_message)
{
    ctx_t x;
    ctx_start(&x, false, NULL);
    x.r = client(&x, "", 0, NULL);
    offered_t solo = {0}, a = {0}, b = {0};
    ck_assert_int_eq(sh_redis_subscribe(x.r, "solo", on_offered, &solo), 0);
    ck_assert_int_eq(sh_redis_subscribe(x.r, "duo", on_offered, &a), 0);
    ck_assert_int_eq(sh_redis_subscribe(x.r, "duo", on_offered, &b), 0);
    ck_assert(th_run_until(x.loop, subscribed, &x, WAIT_MS));
    redisContext *pc = th_redis_connect(&x.srv);
    char payload[SH_REDIS_REPLY_MSG_MIN + 100];
    memset(payload, 'p', sizeof(payload));
    const struct {
        const char *channel;
        size_t len;
    } pubs[] = {
        {"solo", sizeof(payload)}, {"solo", SH_REDIS_REPLY_MSG_MIN - 1}, {"duo", sizeof(payload)}};
    for (size_t i = 0; i < 3; i++) {
        redisReply *rep = redisCommand(pc, "PUBLISH %s %b", pubs[i].channel, payload, pubs[i].len);
        ck_assert_int_ge(rep->integer, 1);
        freeReplyObject(rep);
    }
    ck_assert(th_wait_count(x.loop, &b.n, 1, WAIT_MS));
    ck_assert_int_eq(solo.n, 2);
    ck_assert_int_eq(solo.owned, 1);
    ck_assert(solo.same_bytes);
    /* Kept past the reply: the payload's bytes, as rewritten. */
    ck_assert_uint_eq(solo.kept->len, sizeof(payload));
    ck_assert_int_eq(solo.kept->data[0], '!');
    ck_assert_int_eq(solo.kept->data[1], 'p');
    ck_assert_int_eq(a.n + b.n, 2);
    ck_assert_int_eq(a.owned + b.owned, 0);
    sh_msg_unref(solo.kept);
    redisFree(pc);
    ctx_stop(&x);
}
END_TEST

START_TEST(test_message_stream)
{
    ctx_t x;
    ctx_start(&x, false, NULL);
    x.r = client(&x, "", 0, NULL);
    stream_t st = {{0}, 0};
    ck_assert_int_eq(sh_redis_subscribe(x.r, "s", on_stream, &st), 0);
    ck_assert_int_eq(sh_redis_psubscribe(x.r, "p.*", on_stream, &st), 0);
    ck_assert(th_run_until(x.loop, subscribed, &x, WAIT_MS));
    redisContext *pc = th_redis_connect(&x.srv);
    /* Queued in the subscriber's socket before the loop reads any. */
    stream_publish(pc, 0, 0, STREAM_RUN);
    ck_assert_int_eq(sh_redis_subscribe(x.r, "t", on_stream, &st), 0);
    /* The SUBSCRIBE goes out after one iteration's reads: its confirmation
     * follows the messages Redis had queued by then. */
    th_run_once(x.loop);
    stream_publish(pc, 0, STREAM_RUN, STREAM_RUN / 2);
    ck_assert(th_run_until(x.loop, subscribed, &x, WAIT_MS));
    for (unsigned k = 0; k < STREAM_RUN / 2; k += 50) {
        stream_publish(pc, 1, k, 50);
        stream_publish(pc, 2, k, 50);
        stream_publish(pc, 0, STREAM_RUN + STREAM_RUN / 2 + k, 50);
        th_run_once(x.loop);
    }
    ck_assert_msg(th_run_until(x.loop, stream_done, &st, WAIT_MS), "got %u, %u, %u", st.next[0],
                  st.next[1], st.next[2]);
    ck_assert_uint_eq(st.bad, 0);
    sh_redis_stats_t stats;
    sh_redis_stats(x.r, &stats);
    ck_assert_uint_eq(stats.messages, 3 * STREAM_RUN);
    redisFree(pc);
    ctx_stop(&x);
}
END_TEST

/* What Redis writes while the subscriber handles a message is read in the
 * same wake, before the loop's deferred calls (where the sockets flush):
 * a publisher's tick that Redis writes in parts leaves for each tab in one
 * write. The first message's handler publishes a second and waits until
 * Redis has written it (Redis writes to its subscribers before it reads
 * the next command, so once a PING is answered the second message is in
 * the subscriber's socket); a deferred call scheduled then stands for the
 * flush. */
typedef struct same_wake {
    ctx_t *x;
    redisContext *pc;
    sh_defer_t flush;
    bool flushed;
    int n;
    bool second_before_flush;
} same_wake_t;

static void on_same_wake_flush(sh_loop_t *loop, sh_defer_t *d)
{
    (void)loop;
    ((same_wake_t *)d->data)->flushed = true;
}

static void on_same_wake(const char *channel, const char *pattern, const char *payload, size_t len,
                         sh_msg_t *own, void *data)
{
    (void)own;
    (void)channel;
    (void)pattern;
    (void)payload;
    (void)len;
    same_wake_t *w = data;
    if (++w->n == 1) {
        sh_defer_schedule(w->x->loop, &w->flush, on_same_wake_flush, w);
        redisReply *rep = redisCommand(w->pc, "PUBLISH w second");
        ck_assert_int_eq(rep->integer, 1);
        freeReplyObject(rep);
        rep = redisCommand(w->pc, "PING");
        ck_assert_int_eq(rep->type, REDIS_REPLY_STATUS);
        freeReplyObject(rep);
    } else if (w->n == 2) {
        w->second_before_flush = !w->flushed;
    }
}

START_TEST(test_written_meanwhile_is_read_in_the_same_wake)
{
    ctx_t x;
    ctx_start(&x, false, NULL);
    x.r = client(&x, "", 0, NULL);
    same_wake_t w = {.x = &x};
    ck_assert_int_eq(sh_redis_subscribe(x.r, "w", on_same_wake, &w), 0);
    ck_assert(th_run_until(x.loop, subscribed, &x, WAIT_MS));
    w.pc = th_redis_connect(&x.srv);
    redisReply *rep = redisCommand(w.pc, "PUBLISH w first");
    ck_assert_int_eq(rep->integer, 1);
    freeReplyObject(rep);
    ck_assert_msg(th_wait_count(x.loop, &w.n, 2, WAIT_MS), "got %d", w.n);
    ck_assert(w.flushed);
    ck_assert_msg(w.second_before_flush, "the second message waited for the next wake");
    redisFree(w.pc);
    ctx_stop(&x);
}
END_TEST

int main(void)
{
    if (!th_redis_available()) {
        printf("SKIP: REDIS_SERVER is not set (redis-server not found)\n");
        return 77;
    }
    /* hiredis writes with write(2): a server killed mid-test must not kill
     * the test with SIGPIPE (siohubd ignores it too). */
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("redis");
    TCase *tc = tcase_create("redis");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_bad_options);
    tcase_add_test(tc, test_reply_types);
    tcase_add_test(tc, test_order);
    tcase_add_test(tc, test_write_larger_than_socket);
    tcase_add_test(tc, test_not_connected_then_up);
    tcase_add_test(tc, test_timeout_then_reconnect);
    tcase_add_test(tc, test_host_names);
    tcase_add_test(tc, test_connect_timeout);
    tcase_add_test(tc, test_restart_resubscribes);
    tcase_add_test(tc, test_unsubscribe);
    tcase_add_test(tc, test_message_stream);
    tcase_add_test(tc, test_large_message);
    tcase_add_test(tc, test_written_meanwhile_is_read_in_the_same_wake);
    tcase_add_test(tc, test_subscription_refused);
    tcase_add_test(tc, test_evalsha_fallback);
    tcase_add_test(tc, test_script_keeps_order);
    tcase_add_test(tc, test_auth_select_and_logs);
    tcase_add_test(tc, test_unix_socket);
    tcase_add_test(tc, test_max_pending);
    tcase_add_test(tc, test_free_cancels);
    tcase_add_test(tc, test_payload_offered_as_message);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
