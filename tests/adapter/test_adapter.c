/* The fleet adapter (adapter/adapter.c): two complete siohub nodes in one
 * loop — each an HTTP server on 127.0.0.1 port 0, Engine.IO, Socket.IO, a
 * hub with namespace "/" and an adapter on its own Redis client — and a
 * real redis-server each test starts on a free port. Long-polling test
 * clients (tests/lib/eio_client.h) connect to either node, joining the
 * rooms their CONNECT auth names, and what they receive is checked on the
 * wire, exactly once. Messages python-socketio 5.7.2 published (the pickle
 * vectors in tests/data/pubsub/) are PUBLISHed with their sids and host
 * ids retargeted to this test's sockets. An observer client records what
 * goes over Redis. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/adapter.h"
#include "adapter/pubsub_msg.h"
#include "core/msg.h"
#include "eio_client.h"
#include "engineio/server.h"
#include "harness.h"
#include "hub/hub.h"
#include "redis/redis.h"
#include "redis_server.h"
#include "socketio/packet.h"
#include "socketio/server.h"

#define PATH     "/socket.io/"
#define NCLIENTS 6
#define PY_HOST  "5f3c9a7e1b2d4c6f8a9b0c1d2e3f4a5b" /* in the vectors */
#define PY_SID1  "Xb1mfXyM5B9OWc2yAAAB"
#define PY_SID2  "k2T0n4Zz8RrQWw9eAAAC"

typedef struct node {
    int idx;
    th_env_t env; /* env.loop is the shared loop */
    sh_eio_server_t *eio;
    sh_sio_server_t *sio;
    sh_hub_t *hub;
    sh_hub_nsp_t *nsp;
    sh_redis_t *redis;
    sh_adapter_t *ad;
    int connected, disconnects;
    sh_sio_socket_t *last;
    int remote_broadcasts;
    char remote_event[64];
} node_t;

typedef struct client {
    th_eio_t c;
    node_t *node;
    char sid[64];
} client_t;

typedef struct observed {
    int n;
    char channel[128];
    char payload[2048];
} observed_t;

typedef struct world {
    sh_loop_t *loop;
    th_redis_t srv;
    node_t n[2];
    client_t cl[NCLIENTS];
    sh_redis_t *observer;
    observed_t on_main;    /* messages on "socketio" */
    observed_t on_pattern; /* on "socketio#*" */
} world_t;

static world_t W;

/* ---- the application: joins the rooms its CONNECT auth names ---- */

static void app_connected(sh_sio_socket_t *sock, json_t *auth, void *data)
{
    node_t *n = data;
    n->connected++;
    n->last = sock;
    size_t i;
    json_t *v;
    json_array_foreach (json_object_get(auth, "rooms"), i, v)
        sh_hub_join(sock, json_string_value(v));
}

static void app_disconnect(sh_sio_socket_t *sock, const char *reason, void *data)
{
    node_t *n = data;
    n->disconnects++;
}

static const sh_sio_nsp_handler_t app = {
    .on_connected = app_connected,
    .on_disconnect = app_disconnect,
};

static void on_remote_broadcast(const char *nsp, const char *event, json_t *args, void *data)
{
    node_t *n = data;
    ck_assert_str_eq(nsp, "/");
    n->remote_broadcasts++;
    snprintf(n->remote_event, sizeof(n->remote_event), "%s", event);
}

/* ---- set-up ---- */

static void on_observe(const char *channel, const char *pattern, const char *payload, size_t len,
                       sh_msg_t *own, void *data)
{
    (void)own;
    observed_t *o = data;
    o->n++;
    snprintf(o->channel, sizeof(o->channel), "%s", channel);
    size_t n = len < sizeof(o->payload) - 1 ? len : sizeof(o->payload) - 1;
    memcpy(o->payload, payload, n);
    o->payload[n] = '\0';
}

static sh_redis_t *redis_client(const char *name)
{
    char url[128];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%u/0", (unsigned)W.srv.port);
    sh_redis_options_t o = {
        .url = url,
        .reconnect_min_ms = 20,
        .reconnect_max_ms = 100,
        .client_name = name,
    };
    sh_buf_t err = SH_BUF_INIT;
    sh_redis_t *r = sh_redis_new(W.loop, &o, &err);
    ck_assert_msg(r != NULL, "%s", sh_buf_peek(&err));
    sh_buf_release(&err);
    return r;
}

static bool ready(void *arg)
{
    sh_redis_t *r = arg;
    return sh_redis_up(r) && sh_redis_subscribed(r);
}

static void wait_ready(sh_redis_t *r)
{
    ck_assert_msg(th_run_until(W.loop, ready, r, 5000), "Redis client not ready: %s",
                  sh_redis_last_error(r));
}

static void node_start(int i, bool room_channels)
{
    node_t *n = &W.n[i];
    memset(n, 0, sizeof(*n));
    n->idx = i;
    n->env.loop = W.loop;
    sh_http_options_t ho = {
        .host = "127.0.0.1",
        .max_connections = 64,
        .header_memory = 16384,
    };
    sh_buf_t err = SH_BUF_INIT;
    n->env.http = sh_http_new(W.loop, &ho, &err);
    ck_assert_msg(n->env.http != NULL, "%s", sh_buf_peek(&err));
    n->env.port = sh_http_port(n->env.http);
    sh_sio_options_t so = {.connect_timeout = 5000};
    n->sio = sh_sio_server_new(W.loop, &so);
    n->hub = sh_hub_new(n->sio);
    n->nsp = sh_hub_add_nsp(n->hub, "/", &app, n);
    sh_eio_options_t eo = {
        .path = PATH,
        .transports = SH_EIO_TRANSPORT_POLLING,
        .ping_interval = 10000,
        .ping_timeout = 5000,
        .upgrade_timeout = 1000,
        .max_payload = 100000,
        .output_limit = 1000000,
    };
    n->eio = sh_eio_server_new(W.loop, n->env.http, &eo, sh_sio_eio_handler(), n->sio, &err);
    ck_assert_msg(n->eio != NULL, "%s", sh_buf_peek(&err));
    sh_buf_release(&err);
    n->redis = redis_client(i ? "node-b" : "node-a");
    sh_adapter_options_t ao = {
        .loop = W.loop,
        .sio = n->sio,
        .hub = n->hub,
        .redis = n->redis,
        .channel = "socketio",
        .room_channels = room_channels,
        .on_remote_broadcast = on_remote_broadcast,
        .data = n,
    };
    n->ad = sh_adapter_new(&ao);
    ck_assert_uint_eq(strlen(sh_adapter_host_id(n->ad)), 32);
    wait_ready(n->redis);
}

static void start(bool room_channels)
{
    memset(&W, 0, sizeof(W));
    W.loop = sh_loop_new();
    th_redis_start(&W.srv, 0, false, NULL);
    node_start(0, room_channels);
    node_start(1, room_channels);
    ck_assert_str_ne(sh_adapter_host_id(W.n[0].ad), sh_adapter_host_id(W.n[1].ad));
    W.observer = redis_client("observer");
    ck_assert_int_eq(sh_redis_subscribe(W.observer, "socketio", on_observe, &W.on_main), 0);
    ck_assert_int_eq(sh_redis_psubscribe(W.observer, "socketio#*", on_observe, &W.on_pattern), 0);
    wait_ready(W.observer);
}

static bool none_active(void *arg)
{
    node_t *n = arg;
    return sh_eio_server_active(n->eio) == 0;
}

static bool http_idle(void *arg)
{
    node_t *n = arg;
    return sh_http_connections(n->env.http) == 0;
}

/* The application's teardown order per node: Engine.IO (the sessions'
 * ends reach the sockets and the hub), the adapter, the hub, Socket.IO;
 * the Redis clients last. */
static void stop(void)
{
    for (int i = 0; i < 2; i++)
        sh_eio_server_close_all(W.n[i].eio);
    for (int i = 0; i < 2; i++)
        ck_assert(th_run_until(W.loop, none_active, &W.n[i], TH_WAIT_MS));
    for (int i = 0; i < NCLIENTS; i++)
        th_eio_close(&W.cl[i].c);
    for (int i = 0; i < 2; i++) {
        node_t *n = &W.n[i];
        ck_assert(th_run_until(W.loop, http_idle, n, TH_WAIT_MS));
        sh_http_free(n->env.http);
        sh_loop_run_deferred(W.loop);
        sh_eio_server_free(n->eio);
        sh_loop_run_deferred(W.loop);
        ck_assert_int_eq(n->disconnects, n->connected);
        sh_adapter_free(n->ad);
        sh_hub_free(n->hub);
        sh_sio_server_free(n->sio);
        sh_redis_free(n->redis);
    }
    sh_redis_free(W.observer);
    sh_loop_run_deferred(W.loop);
    sh_loop_free(W.loop);
    th_redis_stop(&W.srv);
}

/* Connects client i to node `node` with auth (JSON text or NULL). */
static sh_sio_socket_t *connect_client(int i, int node, const char *auth)
{
    client_t *c = &W.cl[i];
    node_t *n = &W.n[node];
    c->node = n;
    th_resp_t r = {0};
    ck_assert_int_eq(th_eio_open(&c->c, &n->env, PATH, NULL, &r), 200);
    th_resp_release(&r);
    ck_assert(th_sio_connect(&c->c, "/", auth, c->sid, sizeof(c->sid)));
    ck_assert_uint_eq(strlen(c->sid), 20);
    sh_sio_socket_t *sock = sh_sio_server_socket(n->sio, c->sid);
    ck_assert_ptr_nonnull(sock);
    return sock;
}

static sh_sio_socket_t *sock_of(int i)
{
    return sh_sio_server_socket(W.cl[i].node->sio, W.cl[i].sid);
}

static void expect_poll(int i, const char *want)
{
    th_resp_t r = {0};
    ck_assert_msg(th_eio_poll(&W.cl[i].c, &r, TH_WAIT_MS), "client %d: no answer", i);
    ck_assert_msg(!strcmp(sh_buf_peek(&r.body), want), "client %d: got '%s', want '%s'", i,
                  sh_buf_peek(&r.body), want);
    th_resp_release(&r);
}

/* Nothing waits for client i: its GET is held. Ends the GET with a local
 * marker, which it must then receive alone. */
static void expect_nothing(int i)
{
    th_resp_t r = {0};
    th_eio_get_hold(&W.cl[i].c);
    ck_assert_int_eq(sh_sio_socket_emit(sock_of(i), "marker", NULL, NULL, 0, NULL, NULL, NULL), 0);
    ck_assert(th_eio_get_wait(&W.cl[i].c, &r, TH_WAIT_MS));
    ck_assert_msg(!strcmp(sh_buf_peek(&r.body), "42[\"marker\"]"), "client %d: got '%s'", i,
                  sh_buf_peek(&r.body));
    th_resp_release(&r);
}

typedef struct counter_wait {
    const uint64_t *p;
    uint64_t want;
} counter_wait_t;

static bool counter_reached(void *arg)
{
    counter_wait_t *w = arg;
    return *w->p >= w->want;
}

/* Runs the loop until *p >= want (a stats counter). */
static void wait_stat(const uint64_t *p, uint64_t want)
{
    counter_wait_t w = {p, want};
    ck_assert_msg(th_run_until(W.loop, counter_reached, &w, TH_WAIT_MS),
                  "counter at %llu, not %llu", (unsigned long long)*p, (unsigned long long)want);
}

static const sh_adapter_stats_t *st(int node)
{
    return sh_adapter_stats(W.n[node].ad);
}

/* ---- calls ---- */

typedef struct answer {
    int calls;
    int status;
    char args[256]; /* compact JSON */
    int nbins;
} answer_t;

static void on_answer(int status, const sh_sio_args_t *args, void *data)
{
    answer_t *a = data;
    a->calls++;
    a->status = status;
    a->args[0] = '\0';
    if (args) {
        char *s = json_dumps(args->args, JSON_COMPACT);
        snprintf(a->args, sizeof(a->args), "%s", s);
        free(s);
        a->nbins = (int)args->nbins;
    }
}

static bool answered(void *arg)
{
    return ((answer_t *)arg)->calls > 0;
}

/* ---- python-socketio's messages ---- */

static void replace_all(sh_buf_t *b, const char *from, const char *to)
{
    size_t n = strlen(from);
    ck_assert_uint_eq(strlen(to), n);
    char *p = (char *)sh_buf_peek(b);
    size_t len = sh_buf_avail(b);
    for (char *q = p; (q = memmem(q, len - (size_t)(q - p), from, n)) != NULL; q += n)
        memcpy(q, to, n);
}

/* Reads a vector from tests/data/pubsub/, retargets python-socketio's sids
 * and host id (the same lengths: pickle strings keep their length byte)
 * and PUBLISHes it on "socketio" like python-socketio would. */
static void publish_vector(const char *name, const char *sid1, const char *sid2, const char *host)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/pubsub/%s", TESTS_DATADIR, name);
    FILE *fp = fopen(path, "rb");
    ck_assert_msg(fp != NULL, "cannot open %s", path);
    sh_buf_t b = SH_BUF_INIT;
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        sh_buf_append(&b, chunk, got);
    fclose(fp);
    if (sid1)
        replace_all(&b, PY_SID1, sid1);
    if (sid2)
        replace_all(&b, PY_SID2, sid2);
    if (host)
        replace_all(&b, PY_HOST, host);
    redisReply *r =
        th_redis_cmd(&W.srv, "PUBLISH socketio %b", sh_buf_peek(&b), (size_t)sh_buf_avail(&b));
    ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
    ck_assert_int_eq(r->integer, 3); /* both nodes and the observer */
    freeReplyObject(r);
    sh_buf_release(&b);
}

static void publish_json(const char *json)
{
    redisReply *r = th_redis_cmd(&W.srv, "PUBLISH socketio %s", json);
    ck_assert_int_eq(r->integer, 3);
    freeReplyObject(r);
}

/* The observer's last message on "socketio" is a "callback". */
static bool observed_callback(void *arg)
{
    (void)arg;
    return strstr(W.on_main.payload, "\"method\":\"callback\"") != NULL;
}

/* ---- tests: emits ---- */

/* An emit to a room on node A reaches its members on A and on B exactly
 * once; a broadcast to the namespace reaches everyone; except rooms are
 * honoured on both nodes; each node skips its own messages. */
START_TEST(test_emit_across_nodes)
{
    start(false);
    connect_client(0, 0, "{\"rooms\":[\"r\"]}");
    connect_client(1, 0, NULL);
    connect_client(2, 1, "{\"rooms\":[\"r\",\"y\"]}");
    connect_client(3, 1, "{\"rooms\":[\"x\"]}");
    static const char *const r[] = {"r"};
    static const char *const x[] = {"x"};
    static const char *const y[] = {"y"};
    json_t *args = json_pack("[i,s]", 1, "two");
    sh_hub_target_t to = {.rooms = r, .nrooms = 1};
    ck_assert_uint_eq(sh_adapter_emit(W.n[0].ad, W.n[0].nsp, &to, "ev", args, NULL, 0), 1);
    wait_stat(&st(1)->received, 1);
    wait_stat(&st(0)->skipped_own, 1);
    expect_poll(0, "42[\"ev\",1,\"two\"]");
    expect_poll(2, "42[\"ev\",1,\"two\"]");
    /* The whole namespace from B, except room x. */
    to = (sh_hub_target_t){.except = x, .nexcept = 1};
    ck_assert_uint_eq(sh_adapter_emit(W.n[1].ad, W.n[1].nsp, &to, "all-not-x", NULL, NULL, 0), 1);
    /* The whole namespace from A: the other node's observer hook hears it. */
    ck_assert_uint_eq(sh_adapter_emit(W.n[0].ad, W.n[0].nsp, NULL, "all", args, NULL, 0), 2);
    /* Room r except y, from A: y is on B. */
    to = (sh_hub_target_t){.rooms = r, .nrooms = 1, .except = y, .nexcept = 1};
    ck_assert_uint_eq(sh_adapter_emit(W.n[0].ad, W.n[0].nsp, &to, "r-not-y", NULL, NULL, 0), 1);
    wait_stat(&st(1)->received, 3);
    wait_stat(&st(0)->received, 1);
    wait_stat(&st(0)->skipped_own, 3);
    wait_stat(&st(1)->skipped_own, 1);
    json_decref(args);
    /* A's own emits were queued at once, B's came through Redis after. */
    expect_poll(0, "42[\"all\",1,\"two\"]\x1e"
                   "42[\"r-not-y\"]\x1e"
                   "42[\"all-not-x\"]");
    expect_poll(1, "42[\"all\",1,\"two\"]\x1e"
                   "42[\"all-not-x\"]");
    expect_poll(2, "42[\"all-not-x\"]\x1e"
                   "42[\"all\",1,\"two\"]");
    expect_poll(3, "42[\"all\",1,\"two\"]");
    for (int i = 0; i < 4; i++)
        expect_nothing(i);
    ck_assert_int_eq(W.n[1].remote_broadcasts, 1);
    ck_assert_str_eq(W.n[1].remote_event, "all");
    ck_assert_int_eq(W.n[0].remote_broadcasts, 1);
    ck_assert_str_eq(W.n[0].remote_event, "all-not-x");
    ck_assert_uint_eq(st(0)->published, 3);
    ck_assert_uint_eq(st(1)->published, 1);
    ck_assert_uint_eq(st(0)->dropped + st(1)->dropped, 0);
    stop();
}
END_TEST

/* An emit of one argument to a room is written once: the local members
 * get the frame the tree encoder makes, the fleet gets the bytes
 * sh_pubsub_msg_encode makes, and the other node delivers it from its
 * text. */
START_TEST(test_one_argument_written_once)
{
    start(false);
    connect_client(0, 0, "{\"rooms\":[\"r\"]}");
    connect_client(2, 1, "{\"rooms\":[\"r\"]}");
    static const char *const r[] = {"r"};
    json_t *args = json_pack("[{s:[i,f,s],s:n,s:b}]", "a", 1, 2.5, "\xc3\xa9 \"q\"", "b", "c", 1);
    sh_hub_target_t to = {.rooms = r, .nrooms = 1};
    int before = W.on_main.n;
    ck_assert_uint_eq(sh_adapter_emit(W.n[0].ad, W.n[0].nsp, &to, "ev", args, NULL, 0), 1);
    wait_stat(&st(1)->received, 1);
    ck_assert_uint_eq(st(1)->from_text, 1);
    ck_assert_uint_eq(st(1)->decoded, 0);
    /* What the tree encoder makes of the same emit. */
    json_t *packet = json_pack("[sO]", "ev", json_array_get(args, 0));
    sh_msg_t *msgs[1];
    ck_assert_int_eq(sh_sio_packet_encode(SH_SIO_EVENT, "/", -1, packet, NULL, 0, msgs, 1), 1);
    char want[256];
    /* the message holds the Engine.IO type ('4') already */
    snprintf(want, sizeof(want), "%.*s", (int)msgs[0]->len, msgs[0]->data);
    sh_msg_unref(msgs[0]);
    json_decref(packet);
    expect_poll(0, want);
    expect_poll(2, want);
    ck_assert(th_wait_count(W.loop, &W.on_main.n, before + 1, TH_WAIT_MS));
    sh_pubsub_msg_t m = {
        .method = SH_PUBSUB_EMIT,
        .host_id = (char *)sh_adapter_host_id(W.n[0].ad),
        .nsp = "/",
        .event = "ev",
        .rooms = json_pack("[s]", "r"),
        .args = args,
    };
    sh_buf_t b = SH_BUF_INIT;
    ck_assert_int_eq(sh_pubsub_msg_encode(&m, &b), 0);
    ck_assert_str_eq(W.on_main.payload, sh_buf_peek(&b));
    sh_buf_release(&b);
    json_decref(m.rooms);
    json_decref(args);
    stop();
}
END_TEST

/* Attachments cross nodes as python-socketio >= 5.14.2 sends them (base64
 * in JSON) and reach the client as binary. */
START_TEST(test_binary_across_nodes)
{
    start(false);
    connect_client(0, 1, "{\"rooms\":[\"r\"]}");
    static const char *const r[] = {"r"};
    sh_hub_target_t to = {.rooms = r, .nrooms = 1};
    sh_msg_t *bin = sh_msg_new("\x01\x02\x03", 3, true);
    json_t *args = json_pack("[{s:b,s:i}]", "_placeholder", 1, "num", 0);
    ck_assert_uint_eq(sh_adapter_emit(W.n[0].ad, W.n[0].nsp, &to, "file", args, &bin, 1), 0);
    json_decref(args);
    sh_msg_unref(bin);
    expect_poll(0, "451-[\"file\",{\"_placeholder\":true,\"num\":0}]\x1e"
                   "bAQID");
    stop();
}
END_TEST

/* ---- tests: calls ---- */

/* A call from A to a socket on B returns B's client's ack (and the other
 * way); a call to a local socket is answered locally. */
START_TEST(test_call_across_nodes)
{
    start(false);
    connect_client(0, 0, NULL);
    connect_client(1, 1, NULL);
    answer_t ab = {0}, ba = {0}, aa = {0};
    uint64_t h = 0;
    json_t *q = json_pack("[s]", "q");
    ck_assert_int_eq(
        sh_adapter_call(W.n[0].ad, W.n[0].nsp, W.cl[1].sid, "ask", q, NULL, 0, on_answer, &ab, &h),
        0);
    ck_assert_uint_gt(h, 0);
    ck_assert_int_eq(ab.calls, 0);
    ck_assert_uint_eq(st(0)->remote_calls, 1);
    expect_poll(1, "420[\"ask\",\"q\"]");
    ck_assert_int_eq(th_eio_post_str(&W.cl[1].c, "430[\"yes\",{\"n\":1}]"), 200);
    ck_assert(th_run_until(W.loop, answered, &ab, TH_WAIT_MS));
    ck_assert_int_eq(ab.status, 0);
    ck_assert_str_eq(ab.args, "[\"yes\",{\"n\":1}]");
    /* B to A. */
    ck_assert_int_eq(sh_adapter_call(W.n[1].ad, W.n[1].nsp, W.cl[0].sid, "ask", NULL, NULL, 0,
                                     on_answer, &ba, NULL),
                     0);
    expect_poll(0, "420[\"ask\"]");
    ck_assert_int_eq(th_eio_post_str(&W.cl[0].c, "430[]"), 200);
    ck_assert(th_run_until(W.loop, answered, &ba, TH_WAIT_MS));
    ck_assert_int_eq(ba.status, 0);
    ck_assert_str_eq(ba.args, "[]");
    /* A to its own socket: no Redis round trip. */
    uint64_t published = st(0)->published;
    ck_assert_int_eq(sh_adapter_call(W.n[0].ad, W.n[0].nsp, W.cl[0].sid, "ask", q, NULL, 0,
                                     on_answer, &aa, NULL),
                     0);
    ck_assert_int_eq(aa.calls, 0);
    expect_poll(0, "421[\"ask\",\"q\"]");
    ck_assert_int_eq(th_eio_post_str(&W.cl[0].c, "431[\"local\"]"), 200);
    ck_assert(th_run_until(W.loop, answered, &aa, TH_WAIT_MS));
    ck_assert_str_eq(aa.args, "[\"local\"]");
    ck_assert_uint_eq(st(0)->published, published);
    json_decref(q);
    th_run_for(W.loop, 50);
    ck_assert_int_eq(ab.calls, 1);
    ck_assert_int_eq(ba.calls, 1);
    ck_assert_int_eq(aa.calls, 1);
    stop();
}
END_TEST

/* A call to a sid that is on no node never calls back until cancelled;
 * one still pending when the adapter goes gets -ECANCELED. Without Redis
 * such a call is refused at once. */
START_TEST(test_call_to_nowhere)
{
    start(false);
    answer_t a = {0}, b = {0};
    uint64_t h = 0;
    ck_assert_int_eq(
        sh_adapter_call(W.n[0].ad, W.n[0].nsp, PY_SID1, "ask", NULL, NULL, 0, on_answer, &a, &h),
        0);
    th_run_for(W.loop, 300);
    ck_assert_int_eq(a.calls, 0);
    sh_adapter_cancel_call(W.n[0].ad, h);
    sh_adapter_cancel_call(W.n[0].ad, h); /* twice: nothing */
    ck_assert_int_eq(
        sh_adapter_call(W.n[0].ad, W.n[0].nsp, PY_SID2, "ask", NULL, NULL, 0, on_answer, &b, NULL),
        0);
    th_run_for(W.loop, 100);
    sh_adapter_free(W.n[0].ad);
    W.n[0].ad = NULL;
    ck_assert_int_eq(a.calls, 0);
    ck_assert_int_eq(b.calls, 1);
    ck_assert_int_eq(b.status, -ECANCELED);
    /* A node without Redis. */
    sh_adapter_options_t ao = {.loop = W.loop, .sio = W.n[0].sio, .hub = W.n[0].hub};
    W.n[0].ad = sh_adapter_new(&ao);
    ck_assert_int_eq(
        sh_adapter_call(W.n[0].ad, W.n[0].nsp, PY_SID1, "ask", NULL, NULL, 0, on_answer, &a, NULL),
        -EPIPE);
    ck_assert_int_eq(sh_adapter_disconnect(W.n[0].ad, W.n[0].nsp, PY_SID1), 0);
    ck_assert_uint_eq(st(0)->published, 0);
    th_run_for(W.loop, 50);
    ck_assert_int_eq(a.calls, 0);
    stop();
}
END_TEST

/* ---- tests: disconnects and rooms ---- */

static bool disconnected(void *arg)
{
    node_t *n = arg;
    return n->disconnects > 0;
}

START_TEST(test_rooms_and_disconnect_across_nodes)
{
    start(false);
    connect_client(0, 0, "{\"rooms\":[\"cr\"]}");
    connect_client(1, 0, NULL);
    sh_sio_socket_t *b0 = connect_client(2, 1, "{\"rooms\":[\"cr\"]}");
    connect_client(3, 1, NULL);
    /* enter_room / leave_room for a socket on B, from A. */
    ck_assert_int_eq(sh_adapter_room(W.n[0].ad, W.n[0].nsp, W.cl[2].sid, "late", true), 0);
    wait_stat(&st(1)->received, 1);
    ck_assert(sh_hub_in_room(b0, "late"));
    static const char *const late[] = {"late"};
    sh_hub_target_t to = {.rooms = late, .nrooms = 1};
    ck_assert_uint_eq(sh_adapter_emit(W.n[0].ad, W.n[0].nsp, &to, "to-late", NULL, NULL, 0), 0);
    expect_poll(2, "42[\"to-late\"]");
    ck_assert_int_eq(sh_adapter_room(W.n[0].ad, W.n[0].nsp, W.cl[2].sid, "late", false), 0);
    wait_stat(&st(1)->received, 3);
    ck_assert(!sh_hub_in_room(b0, "late"));
    /* For a socket of its own a node acts at once. */
    ck_assert_int_eq(sh_adapter_room(W.n[0].ad, W.n[0].nsp, W.cl[1].sid, "mine", true), 1);
    ck_assert(sh_hub_in_room(sock_of(1), "mine"));
    ck_assert_int_eq(sh_adapter_room(W.n[0].ad, W.n[0].nsp, W.cl[1].sid, "mine", false), 1);
    ck_assert(!sh_hub_in_room(sock_of(1), "mine"));
    /* close_room empties the room on every node. */
    ck_assert_uint_eq(sh_hub_room_size(W.n[0].nsp, "cr"), 1);
    ck_assert_uint_eq(sh_hub_room_size(W.n[1].nsp, "cr"), 1);
    sh_adapter_close_room(W.n[0].ad, W.n[0].nsp, "cr");
    ck_assert_uint_eq(sh_hub_room_size(W.n[0].nsp, "cr"), 0);
    wait_stat(&st(1)->received, 4);
    ck_assert_uint_eq(sh_hub_room_size(W.n[1].nsp, "cr"), 0);
    /* disconnect: a socket on B from A, and one of A's own. */
    ck_assert_int_eq(sh_adapter_disconnect(W.n[0].ad, W.n[0].nsp, W.cl[3].sid), 0);
    ck_assert(th_run_until(W.loop, disconnected, &W.n[1], TH_WAIT_MS));
    ck_assert_ptr_null(sh_sio_server_socket(W.n[1].sio, W.cl[3].sid));
    ck_assert_ptr_nonnull(sh_sio_server_socket(W.n[1].sio, W.cl[2].sid));
    ck_assert_int_eq(sh_adapter_disconnect(W.n[0].ad, W.n[0].nsp, W.cl[1].sid), 1);
    ck_assert(th_run_until(W.loop, disconnected, &W.n[0], TH_WAIT_MS));
    ck_assert_ptr_null(sh_sio_server_socket(W.n[0].sio, W.cl[1].sid));
    ck_assert_int_eq(W.n[0].disconnects, 1);
    ck_assert_int_eq(W.n[1].disconnects, 1);
    /* The others still get emits. */
    ck_assert_uint_eq(sh_adapter_emit(W.n[1].ad, W.n[1].nsp, NULL, "still", NULL, NULL, 0), 1);
    expect_poll(0, "42[\"still\"]");
    expect_poll(2, "42[\"still\"]");
    stop();
}
END_TEST

/* ---- tests: python-socketio 5.7.2 (pickle) ---- */

START_TEST(test_python_pickles)
{
    start(false);
    connect_client(0, 0, "{\"rooms\":[\"user:42\",\"r1\"]}");
    connect_client(1, 0, NULL);
    connect_client(2, 1, "{\"rooms\":[\"user:42\",\"r2\"]}");
    connect_client(3, 1, "{\"rooms\":[\"r1\"]}");
    const char *const dict = "42[\"chat-events\",{\"chat_id\":\"c1\",\"message_id\":\"m1\","
                             "\"data\":{\"type\":\"status\",\"data\":{\"done\":true,\"n\":3}}}]";
    /* A plain emit to a room: its members on both nodes, once. */
    publish_vector("emit_dict.pkl", NULL, NULL, NULL);
    expect_poll(0, dict);
    expect_poll(2, dict);
    /* A tuple is the argument list. */
    publish_vector("emit_tuple.pkl", NULL, NULL, NULL);
    expect_poll(0, "42[\"events\",\"a\",1,2.5,null,true,false]");
    expect_poll(3, "42[\"events\",\"a\",1,2.5,null,true,false]");
    /* Rooms r1 and r2, skipping client 3 (and a sid on no node). */
    publish_vector("emit_rooms.pkl", W.cl[3].sid, NULL, NULL);
    expect_poll(0, "42[\"ev\",\"x\"]");
    expect_poll(2, "42[\"ev\",\"x\"]");
    /* bytes: a binary attachment, to one sid (on B: A only reads where it
     * goes). */
    publish_vector("emit_bytes.pkl", W.cl[2].sid, NULL, NULL);
    expect_poll(2, "451-[\"bin\",{\"_placeholder\":true,\"num\":0}]\x1e"
                   "bAAH/");
    wait_stat(&st(0)->skipped_not_here, 1);
    wait_stat(&st(1)->received, 4);
    ck_assert_uint_eq(st(0)->received, 3);
    for (int i = 0; i < 4; i++)
        expect_nothing(i);

    /* enter_room / leave_room (python-socketio 5.10-5.13 shapes). */
    publish_vector("enter_room.pkl", W.cl[3].sid, NULL, NULL);
    wait_stat(&st(1)->received, 5);
    ck_assert(sh_hub_in_room(sock_of(3), "r9"));
    publish_vector("leave_room.pkl", W.cl[3].sid, NULL, NULL);
    wait_stat(&st(1)->received, 6);
    ck_assert(!sh_hub_in_room(sock_of(3), "r9"));
    /* close_room on "/". */
    sh_hub_join(sock_of(0), "room1");
    sh_hub_join(sock_of(2), "room1");
    publish_vector("close_room_513.pkl", NULL, NULL, NULL);
    wait_stat(&st(0)->received, 4);
    wait_stat(&st(1)->received, 7);
    ck_assert_uint_eq(sh_hub_room_size(W.n[0].nsp, "room1"), 0);
    ck_assert_uint_eq(sh_hub_room_size(W.n[1].nsp, "room1"), 0);

    /* A Python node's call: the ack goes back to its host id. */
    publish_vector("emit_callback.pkl", W.cl[2].sid, NULL, NULL);
    expect_poll(2, "420[\"ask\",{\"q\":1}]");
    ck_assert_int_eq(th_eio_post_str(&W.cl[2].c, "430[\"sure\",2]"), 200);
    ck_assert(th_run_until(W.loop, observed_callback, NULL, TH_WAIT_MS));
    ck_assert_uint_eq(st(1)->published, 1);
    json_t *cb = json_loads(W.on_main.payload, 0, NULL);
    ck_assert_msg(cb != NULL, "not JSON: %s", W.on_main.payload);
    json_t *want =
        json_pack("{s:s,s:s,s:s,s:s,s:i,s:[s,i]}", "method", "callback", "host_id", PY_HOST, "sid",
                  W.cl[2].sid, "namespace", "/", "id", 1, "args", "sure", 2);
    ck_assert_msg(json_equal(cb, want), "callback message: %s", W.on_main.payload);
    json_decref(want);
    json_decref(cb);

    /* The answer to a call of ours that a Python node hosted (its sid is
     * on no siohub node): "callback" with our host id and the ack id 7. */
    answer_t ans = {0};
    for (int i = 1; i < 7; i++) {
        uint64_t h;
        answer_t ignored = {0};
        ck_assert_int_eq(sh_adapter_call(W.n[0].ad, W.n[0].nsp, PY_SID1, "x", NULL, NULL, 0,
                                         on_answer, &ignored, &h),
                         0);
        sh_adapter_cancel_call(W.n[0].ad, h);
    }
    uint64_t h7 = 0;
    ck_assert_int_eq(
        sh_adapter_call(W.n[0].ad, W.n[0].nsp, PY_SID1, "ask", NULL, NULL, 0, on_answer, &ans, &h7),
        0);
    ck_assert_uint_eq(h7, 7);
    publish_vector("callback.pkl", NULL, NULL, sh_adapter_host_id(W.n[0].ad));
    ck_assert(th_run_until(W.loop, answered, &ans, TH_WAIT_MS));
    ck_assert_int_eq(ans.status, 0);
    ck_assert_str_eq(ans.args, "[\"ok\",{\"x\":1}]");

    /* disconnect (5.7.2: no host id). */
    publish_vector("disconnect.pkl", NULL, W.cl[1].sid, NULL);
    ck_assert(th_run_until(W.loop, disconnected, &W.n[0], TH_WAIT_MS));
    ck_assert_ptr_null(sh_sio_server_socket(W.n[0].sio, W.cl[1].sid));

    /* GLOBAL/REDUCE (os.system): dropped by both, never executed; the
     * nodes keep working. */
    uint64_t received0 = st(0)->received, received1 = st(1)->received;
    publish_vector("evil_os_system_p4.pkl", NULL, NULL, NULL);
    publish_vector("evil_os_system_p2.pkl", NULL, NULL, NULL);
    publish_vector("evil_in_message.pkl", NULL, NULL, NULL);
    wait_stat(&st(0)->dropped, 3);
    wait_stat(&st(1)->dropped, 3);
    ck_assert_uint_eq(st(0)->received, received0);
    ck_assert_uint_eq(st(1)->received, received1);
    publish_vector("emit_dict_p2.pkl", NULL, NULL, NULL);
    expect_poll(0, dict);
    expect_poll(2, dict);
    /* And a JSON emit in the >= 5.15.1 shape: delivered from its text,
     * the argument as python-socketio wrote it. */
    publish_vector("j5151_emit_one.json", NULL, NULL, NULL);
    expect_poll(0, "42[\"ev\",{\"a\": 1}]");
    expect_poll(3, "42[\"ev\",{\"a\": 1}]");
    stop();
}
END_TEST

/* ---- tests: room channels ---- */

/* With room_channels, a single-room emit goes to socketio#/#ROOM, and a
 * node decodes it only when the room has members there; other emits stay
 * on the main channel; calls (a sid's room) work the same way. */
START_TEST(test_room_channels)
{
    start(true);
    connect_client(0, 0, "{\"rooms\":[\"rc\"]}");
    connect_client(1, 1, NULL);
    static const char *const rc[] = {"rc"};
    sh_hub_target_t to = {.rooms = rc, .nrooms = 1};
    ck_assert_uint_eq(sh_adapter_emit(W.n[0].ad, W.n[0].nsp, &to, "e1", NULL, NULL, 0), 1);
    ck_assert(th_wait_count(W.loop, &W.on_pattern.n, 1, TH_WAIT_MS));
    ck_assert_str_eq(W.on_pattern.channel, "socketio#/#rc");
    wait_stat(&st(0)->skipped_own, 1);
    th_run_for(W.loop, 50);
    /* B has no member: not even decoded. */
    const sh_adapter_stats_t *b = st(1);
    ck_assert_uint_eq(b->received + b->skipped_own + b->dropped + b->ignored, 0);
    ck_assert_int_eq(W.on_main.n, 0);
    expect_poll(0, "42[\"e1\"]");
    /* Now B has one. */
    sh_hub_join(sock_of(1), "rc");
    ck_assert_uint_eq(sh_adapter_emit(W.n[0].ad, W.n[0].nsp, &to, "e2", NULL, NULL, 0), 1);
    wait_stat(&st(1)->received, 1);
    expect_poll(0, "42[\"e2\"]");
    expect_poll(1, "42[\"e2\"]");
    ck_assert(th_wait_count(W.loop, &W.on_pattern.n, 2, TH_WAIT_MS));
    ck_assert_int_eq(W.on_main.n, 0);
    /* Broadcasts and multi-room emits use the main channel. */
    ck_assert_uint_eq(sh_adapter_emit(W.n[0].ad, W.n[0].nsp, NULL, "all", NULL, NULL, 0), 1);
    ck_assert(th_wait_count(W.loop, &W.on_main.n, 1, TH_WAIT_MS));
    ck_assert_str_eq(W.on_main.channel, "socketio");
    expect_poll(0, "42[\"all\"]");
    expect_poll(1, "42[\"all\"]");
    /* A call to B's socket: on its sid's channel, answered. */
    answer_t a = {0};
    ck_assert_int_eq(sh_adapter_call(W.n[0].ad, W.n[0].nsp, W.cl[1].sid, "ask", NULL, NULL, 0,
                                     on_answer, &a, NULL),
                     0);
    expect_poll(1, "420[\"ask\"]");
    ck_assert(th_wait_count(W.loop, &W.on_pattern.n, 3, TH_WAIT_MS));
    char chan[128];
    snprintf(chan, sizeof(chan), "socketio#/#%s", W.cl[1].sid);
    ck_assert_str_eq(W.on_pattern.channel, chan);
    ck_assert_int_eq(th_eio_post_str(&W.cl[1].c, "430[1]"), 200);
    ck_assert(th_run_until(W.loop, answered, &a, TH_WAIT_MS));
    ck_assert_str_eq(a.args, "[1]");
    /* A room name too long for a channel name buffer: still delivered
     * (on the main channel). */
    char longroom[1100];
    memset(longroom, 'L', sizeof(longroom) - 1);
    longroom[sizeof(longroom) - 1] = '\0';
    sh_hub_join(sock_of(1), longroom);
    const char *lr[] = {longroom};
    to = (sh_hub_target_t){.rooms = lr, .nrooms = 1};
    ck_assert_uint_eq(sh_adapter_emit(W.n[0].ad, W.n[0].nsp, &to, "long", NULL, NULL, 0), 0);
    expect_poll(1, "42[\"long\"]");
    expect_nothing(0);
    expect_nothing(1);
    stop();
}
END_TEST

/* ---- tests: what a node decodes ---- */

static void buf_printf(sh_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    ck_assert_int_ge(vasprintf(&s, fmt, ap), 0);
    va_end(ap);
    sh_buf_append(b, s, strlen(s));
    free(s);
}

/* A pickled dict str, python's way (SHORT_BINUNICODE or BINUNICODE). */
static void pk_str(sh_buf_t *b, const char *s, size_t n)
{
    if (n < 256) {
        sh_buf_append(b, "\x8c", 1);
        unsigned char len = (unsigned char)n;
        sh_buf_append(b, &len, 1);
    } else {
        unsigned char le[5] = {'X', (unsigned char)n, (unsigned char)(n >> 8),
                               (unsigned char)(n >> 16), (unsigned char)(n >> 24)};
        sh_buf_append(b, le, 5);
    }
    sh_buf_append(b, s, n);
}

static void pk_cstr(sh_buf_t *b, const char *s)
{
    pk_str(b, s, strlen(s));
}

/* python-socketio <= 5.13's emit, pickled: event "big" with data
 * {"blob": blob} to room, from host. evil: the data also holds
 * os.system (GLOBAL + REDUCE), which must be refused wherever it goes. */
static void pickle_emit(sh_buf_t *b, const char *room, const char *host, const char *blob,
                        bool evil)
{
    sh_buf_append(b, "\x80\x04}(", 4);
    pk_cstr(b, "method");
    pk_cstr(b, "emit");
    pk_cstr(b, "event");
    pk_cstr(b, "big");
    pk_cstr(b, "data");
    sh_buf_append(b, "}(", 2);
    pk_cstr(b, "blob");
    pk_cstr(b, blob);
    if (evil) {
        pk_cstr(b, "x");
        sh_buf_append(b, "cposix\nsystem\n", 14);
        pk_cstr(b, "true");
        sh_buf_append(b, "\x85R", 2);
    }
    sh_buf_append(b, "u", 1);
    pk_cstr(b, "namespace");
    pk_cstr(b, "/");
    pk_cstr(b, "room");
    pk_cstr(b, room);
    pk_cstr(b, "skip_sid");
    sh_buf_append(b, "N", 1);
    pk_cstr(b, "callback");
    sh_buf_append(b, "N", 1);
    pk_cstr(b, "host_id");
    pk_cstr(b, host);
    sh_buf_append(b, "u.", 2);
}

/* python-socketio >= 5.15.1's emit in JSON: event "big", data [data]
 * where data is the JSON text given (not checked here). */
static void json_emit(sh_buf_t *b, const char *room, const char *host, const char *data)
{
    buf_printf(b,
               "{\"method\": \"emit\", \"event\": \"big\", \"data\": [%s], \"binary\": false, "
               "\"namespace\": \"/\", \"room\": \"%s\", \"skip_sid\": null, "
               "\"callback\": null, \"host_id\": \"%s\"}",
               data, room, host);
}

static void receive_buf(int node, sh_buf_t *b)
{
    sh_adapter_receive(W.n[node].ad, sh_buf_peek(b), sh_buf_avail(b));
    sh_buf_reset(b);
}

/* Every node receives every emit of the fleet. One for a room with no
 * member on the node is read for its routing fields only: its data (here
 * 256 KiB) is never decoded — the decoder's counter does not move, and
 * data that would not even decode (broken JSON) goes unnoticed there —
 * while the same emit to a room with a member here is decoded, once, and
 * delivered. A pickle that holds GLOBAL/REDUCE is refused wherever it
 * goes, members or not. */
/* Our own messages, as our encoders write them, are known by their ends
 * and skipped unread: even one whose data would not parse. A callback
 * addressed to us that ends with our host_id is read, as is any other
 * message. */
START_TEST(test_own_messages_skipped_unread)
{
    start(false);
    connect_client(0, 0, "{\"rooms\":[\"user:member\"]}");
    const char *self = sh_adapter_host_id(W.n[0].ad);
    const sh_adapter_stats_t *a = st(0);
    sh_buf_t b = SH_BUF_INIT;
    const char *rooms[] = {"user:member"};
    sh_json_span_t good = {"{\"n\":1}", 7}, broken = {"{\"n\":}}}", 8};
    ck_assert_int_eq(sh_pubsub_emit_encode_text(self, "/", "x", rooms, 1, &good, 1, &b), 0);
    receive_buf(0, &b);
    ck_assert_int_eq(sh_pubsub_emit_encode_text(self, "/", "x", rooms, 1, &broken, 1, &b), 0);
    receive_buf(0, &b);
    ck_assert_uint_eq(a->skipped_own, 2);
    ck_assert_uint_eq(a->decoded + a->dropped + a->received + a->skipped_not_here, 0);
    /* The same broken one from another node is read, and refused. */
    ck_assert_int_eq(sh_pubsub_emit_encode_text(sh_adapter_host_id(W.n[1].ad), "/", "x", rooms, 1,
                                                &broken, 1, &b),
                     0);
    receive_buf(0, &b);
    ck_assert_uint_eq(a->skipped_own, 2);
    ck_assert_uint_eq(a->dropped, 1);
    /* A callback to us, host_id last: read (no call waits: not here). */
    buf_printf(&b,
               "{\"method\":\"callback\",\"sid\":\"s\",\"namespace\":\"/\",\"id\":5,"
               "\"args\":[],\"host_id\":\"%s\"}",
               self);
    receive_buf(0, &b);
    ck_assert_uint_eq(a->skipped_own, 2);
    ck_assert_uint_eq(a->skipped_not_here, 1);
    sh_buf_release(&b);
    stop();
}
END_TEST

START_TEST(test_no_member_no_decode)
{
    start(false);
    connect_client(0, 0, "{\"rooms\":[\"user:member\"]}");
    const char *other = sh_adapter_host_id(W.n[1].ad);
    size_t big = 256 * 1024;
    char *blob = malloc(big + 1);
    /* Brackets, braces, commas and colons inside a string: to be stepped
     * over, not taken for structure. */
    for (size_t i = 0; i < big; i++)
        blob[i] = "ab{}[],: x"[i % 10];
    blob[big] = '\0';
    sh_buf_t data = SH_BUF_INIT, b = SH_BUF_INIT;
    /* The JSON data: an object with brackets, braces and escaped quotes
     * inside its strings, for the reader to step over. */
    buf_printf(&data, "{\"blob\": \"%s\", \"q\": \"\\\"]}\\\\\", \"n\": [1, {\"a\": []}]}", blob);
    const sh_adapter_stats_t *a = st(0);

    json_emit(&b, "user:nobody", other, sh_buf_peek(&data));
    receive_buf(0, &b);
    pickle_emit(&b, "user:nobody", other, blob, false);
    receive_buf(0, &b);
    ck_assert_uint_eq(a->skipped_not_here, 2);
    ck_assert_uint_eq(a->decoded, 0);
    ck_assert_uint_eq(a->received + a->dropped + a->ignored, 0);

    /* Broken data for a room with no member: not looked at. */
    json_emit(&b, "user:nobody", other, "{\"blob\": tru}");
    receive_buf(0, &b);
    ck_assert_uint_eq(a->skipped_not_here, 3);
    ck_assert_uint_eq(a->decoded, 0);

    /* Our own messages coming back: not decoded either. */
    json_emit(&b, "user:member", sh_adapter_host_id(W.n[0].ad), sh_buf_peek(&data));
    receive_buf(0, &b);
    ck_assert_uint_eq(a->skipped_own, 1);
    ck_assert_uint_eq(a->decoded, 0);

    /* A room with a member: a plain JSON emit is validated and delivered
     * from its text, once, its argument as the sender wrote it; a pickle
     * is decoded once and delivered once. */
    json_emit(&b, "user:member", other, "{\"n\": 1}");
    receive_buf(0, &b);
    ck_assert_uint_eq(a->decoded, 0);
    ck_assert_uint_eq(a->from_text, 1);
    ck_assert_uint_eq(a->received, 1);
    expect_poll(0, "42[\"big\",{\"n\": 1}]");
    pickle_emit(&b, "user:member", other, "small", false);
    receive_buf(0, &b);
    ck_assert_uint_eq(a->decoded, 1);
    ck_assert_uint_eq(a->received, 2);
    expect_poll(0, "42[\"big\",{\"blob\":\"small\"}]");
    json_emit(&b, "user:member", other, sh_buf_peek(&data));
    receive_buf(0, &b);
    ck_assert_uint_eq(a->from_text, 2);
    ck_assert_uint_eq(a->received, 3);
    th_resp_t r = {0};
    ck_assert(th_eio_poll(&W.cl[0].c, &r, TH_WAIT_MS));
    ck_assert_uint_eq(sh_buf_avail(&r.body), 9 + sh_buf_avail(&data) + 1);
    ck_assert(memcmp(sh_buf_peek(&r.body), "42[\"big\",", 9) == 0);
    ck_assert(memcmp(sh_buf_peek(&r.body) + 9, sh_buf_peek(&data), sh_buf_avail(&data)) == 0);
    th_resp_release(&r);
    /* Broken data for a member: the validation refuses it, the decoder
     * sees it and drops it with its reason. So does a message broken in a
     * field the route steps over, and one with a repeated key goes to the
     * decoder, whose reading is the reference. */
    json_emit(&b, "user:member", other, "{\"blob\": tru}");
    receive_buf(0, &b);
    ck_assert_uint_eq(a->decoded, 2);
    ck_assert_uint_eq(a->dropped, 1);
    buf_printf(&b,
               "{\"method\": \"emit\", \"event\": \"big\", \"data\": 1, \"x\": [nul], "
               "\"namespace\": \"/\", \"room\": \"user:member\", \"host_id\": \"%s\"}",
               other);
    receive_buf(0, &b);
    ck_assert_uint_eq(a->decoded, 3);
    ck_assert_uint_eq(a->dropped, 2);
    json_emit(&b, "user:member", other, "{\"n\": 1, \"n\": 2}");
    receive_buf(0, &b);
    ck_assert_uint_eq(a->decoded, 4);
    ck_assert_uint_eq(a->received, 4);
    expect_poll(0, "42[\"big\",{\"n\":2}]");
    /* The argument list forms: a list of several, none, null. */
    buf_printf(&b, "{\"method\":\"emit\",\"event\":\"big\",\"data\":[1, \"x\"],"
                   "\"namespace\":\"/\",\"room\":[\"user:member\",\"user:nobody\"]}");
    receive_buf(0, &b);
    expect_poll(0, "42[\"big\",1, \"x\"]");
    buf_printf(&b, "{\"method\":\"emit\",\"event\":\"big\",\"data\":[ ],"
                   "\"namespace\":\"/\",\"room\":\"user:member\"}");
    receive_buf(0, &b);
    expect_poll(0, "42[\"big\"]");
    buf_printf(&b, "{\"method\":\"emit\",\"event\":\"big\",\"data\":null,"
                   "\"namespace\":\"/\",\"room\":\"user:member\"}");
    receive_buf(0, &b);
    expect_poll(0, "42[\"big\"]");
    ck_assert_uint_eq(a->from_text, 5);
    ck_assert_uint_eq(a->decoded, 4);

    /* GLOBAL/REDUCE in the data: refused by the routing read itself, then
     * dropped by the decoder with its reason, member or not. */
    pickle_emit(&b, "user:nobody", other, "x", true);
    receive_buf(0, &b);
    pickle_emit(&b, "user:member", other, "x", true);
    receive_buf(0, &b);
    ck_assert_uint_eq(a->dropped, 4);
    ck_assert_uint_eq(a->skipped_not_here, 3);
    ck_assert_uint_eq(a->received, 7);
    expect_nothing(0);
    sh_buf_release(&data);
    sh_buf_release(&b);
    free(blob);
    stop();
}
END_TEST

/* An emit from Redis long enough to arrive in a message of its own
 * (SH_REDIS_REPLY_MSG_MIN) goes to the browser as the packet written where
 * its arguments arrived, the same bytes a copy would have made; one that
 * cannot be (too short, \u escapes to rewrite, no room before its data
 * for the packet's head) or should not be (data under half the message)
 * is copied out as before. */
START_TEST(test_delivered_where_it_arrived)
{
    start(false);
    connect_client(0, 0, "{\"rooms\":[\"r\"]}");
    const sh_adapter_stats_t *a = st(0);
    char text[400];
    memset(text, 'x', 300);
    text[300] = '\0';
    sh_buf_t b = SH_BUF_INIT, want = SH_BUF_INIT;
    /* As python-socketio writes it: event, then data, spaces and all. */
    buf_printf(
        &b,
        "{\"method\": \"emit\", \"event\": \"chat-events\", \"data\": {\"content\": \"%s\"}, "
        "\"namespace\": \"/\", \"room\": \"r\", \"skip_sid\": null, \"callback\": null, "
        "\"host_id\": \"other\"}",
        text);
    publish_json(sh_buf_peek(&b));
    sh_buf_reset(&b);
    buf_printf(&want, "42[\"chat-events\",{\"content\": \"%s\"}]", text);
    expect_poll(0, sh_buf_peek(&want));
    sh_buf_reset(&want);
    ck_assert_uint_eq(a->from_text, 1);
    ck_assert_uint_eq(a->in_place, 1);
    /* A list of arguments: its brackets are the packet's. */
    buf_printf(&b,
               "{\"method\":\"emit\",\"event\":\"ev\",\"data\":[1, \"%s\"],\"namespace\":\"/\","
               "\"room\":\"r\"}",
               text);
    publish_json(sh_buf_peek(&b));
    sh_buf_reset(&b);
    buf_printf(&want, "42[\"ev\",1, \"%s\"]", text);
    expect_poll(0, sh_buf_peek(&want));
    sh_buf_reset(&want);
    ck_assert_uint_eq(a->in_place, 2);
    /* Data first and an event name longer than the room before it. */
    char event[100];
    memset(event, 'e', 90);
    event[90] = '\0';
    buf_printf(&b,
               "{\"data\":[\"%s\"],\"event\":\"%s\",\"method\":\"emit\",\"namespace\":\"/\","
               "\"room\":\"r\"}",
               text, event);
    publish_json(sh_buf_peek(&b));
    sh_buf_reset(&b);
    buf_printf(&want, "42[\"%s\",\"%s\"]", event, text);
    expect_poll(0, sh_buf_peek(&want));
    sh_buf_reset(&want);
    ck_assert_uint_eq(a->from_text, 3);
    ck_assert_uint_eq(a->in_place, 2);
    /* \u escapes, written as the characters; a short message. */
    buf_printf(&b,
               "{\"method\":\"emit\",\"event\":\"ev\",\"data\":\"\\u00e9%s\",\"namespace\":\"/\","
               "\"room\":\"r\"}",
               text);
    publish_json(sh_buf_peek(&b));
    sh_buf_reset(&b);
    buf_printf(&want, "42[\"ev\",\"\xc3\xa9%s\"]", text);
    expect_poll(0, sh_buf_peek(&want));
    sh_buf_reset(&want);
    publish_json("{\"method\":\"emit\",\"event\":\"ev\",\"data\":1,\"namespace\":\"/\","
                 "\"room\":\"r\"}");
    expect_poll(0, "42[\"ev\",1]");
    /* Long, but its data under half of it: the packet would hold the
     * whole message's block, so it is copied out. */
    buf_printf(&b,
               "{\"method\":\"emit\",\"event\":\"ev\",\"data\":{\"n\": 1},\"namespace\":\"/\","
               "\"room\":\"r\",\"pad\":\"%s\"}",
               text);
    publish_json(sh_buf_peek(&b));
    sh_buf_reset(&b);
    expect_poll(0, "42[\"ev\",{\"n\": 1}]");
    ck_assert_uint_eq(a->from_text, 6);
    ck_assert_uint_eq(a->in_place, 2);
    ck_assert_uint_eq(a->decoded, 0);
    sh_buf_release(&b);
    sh_buf_release(&want);
    stop();
}
END_TEST

/* ---- tests: lifetimes ---- */

/* A "callback" message naming a call this node answers locally (forged, or
 * a confused peer) must not touch that call: the client's own answer
 * still completes it, once. */
START_TEST(test_callback_for_local_call_ignored)
{
    start(false);
    connect_client(0, 0, NULL);
    answer_t a = {0};
    uint64_t h = 0;
    ck_assert_int_eq(sh_adapter_call(W.n[0].ad, W.n[0].nsp, W.cl[0].sid, "ask", NULL, NULL, 0,
                                     on_answer, &a, &h),
                     0);
    expect_poll(0, "420[\"ask\"]");
    char msg[512];
    snprintf(msg, sizeof(msg),
             "{\"method\":\"callback\",\"host_id\":\"%s\",\"sid\":\"%s\",\"namespace\":\"/\","
             "\"id\":%llu,\"args\":[\"forged\"]}",
             sh_adapter_host_id(W.n[0].ad), W.cl[0].sid, (unsigned long long)h);
    publish_json(msg);
    /* Not even decoded: no remote call of A's has that id. */
    wait_stat(&st(0)->skipped_not_here, 1);
    ck_assert_uint_eq(st(0)->decoded, 0);
    ck_assert_int_eq(a.calls, 0);
    ck_assert_int_eq(th_eio_post_str(&W.cl[0].c, "430[\"real\"]"), 200);
    ck_assert(th_run_until(W.loop, answered, &a, TH_WAIT_MS));
    ck_assert_str_eq(a.args, "[\"real\"]");
    th_run_for(W.loop, 50);
    ck_assert_int_eq(a.calls, 1);
    stop();
}
END_TEST

/* B's adapter goes while its socket still owes A's call an answer; the
 * answer that comes later is dropped (nothing to publish it with), and A's
 * call ends with A's adapter, -ECANCELED. */
START_TEST(test_answer_after_adapter_free)
{
    start(false);
    connect_client(0, 1, NULL);
    answer_t a = {0};
    ck_assert_int_eq(sh_adapter_call(W.n[0].ad, W.n[0].nsp, W.cl[0].sid, "ask", NULL, NULL, 0,
                                     on_answer, &a, NULL),
                     0);
    expect_poll(0, "420[\"ask\"]");
    sh_adapter_free(W.n[1].ad);
    sh_adapter_options_t ao = {.loop = W.loop, .sio = W.n[1].sio, .hub = W.n[1].hub};
    W.n[1].ad = sh_adapter_new(&ao);
    ck_assert_int_eq(th_eio_post_str(&W.cl[0].c, "430[\"late\"]"), 200);
    th_run_for(W.loop, 200);
    ck_assert_int_eq(a.calls, 0);
    sh_adapter_free(W.n[0].ad);
    W.n[0].ad = NULL;
    ck_assert_int_eq(a.calls, 1);
    ck_assert_int_eq(a.status, -ECANCELED);
    sh_adapter_options_t ao0 = {.loop = W.loop, .sio = W.n[0].sio, .hub = W.n[0].hub};
    W.n[0].ad = sh_adapter_new(&ao0);
    stop();
}
END_TEST

int main(void)
{
    if (!th_redis_available()) {
        printf("SKIP: REDIS_SERVER is not set (redis-server not found)\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("adapter");
    TCase *tc = tcase_create("adapter");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_emit_across_nodes);
    tcase_add_test(tc, test_one_argument_written_once);
    tcase_add_test(tc, test_binary_across_nodes);
    tcase_add_test(tc, test_call_across_nodes);
    tcase_add_test(tc, test_call_to_nowhere);
    tcase_add_test(tc, test_rooms_and_disconnect_across_nodes);
    tcase_add_test(tc, test_python_pickles);
    tcase_add_test(tc, test_room_channels);
    tcase_add_test(tc, test_no_member_no_decode);
    tcase_add_test(tc, test_delivered_where_it_arrived);
    tcase_add_test(tc, test_own_messages_skipped_unread);
    tcase_add_test(tc, test_callback_for_local_call_ignored);
    tcase_add_test(tc, test_answer_after_adapter_free);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
