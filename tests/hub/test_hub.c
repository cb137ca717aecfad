/* Rooms and broadcast over real Socket.IO sockets: several long-polling
 * clients on a real HTTP + Engine.IO + Socket.IO stack (127.0.0.1, port 0),
 * each connected to "/", joined to rooms by the test; a broadcast's
 * recipients are checked on the wire (each client's next poll), and
 * encode-once through the messages' reference counts. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/msg.h"
#include "eio_client.h"
#include "engineio/server.h"
#include "harness.h"
#include "hub/hub.h"
#include "socketio/server.h"

#define PATH     "/socket.io/"
#define NCLIENTS 4

typedef struct fix {
    th_env_t env;
    sh_eio_server_t *eio;
    sh_sio_server_t *sio;
    sh_hub_t *hub;
    sh_hub_nsp_t *nsp;
    int connected, disconnects;
    bool rooms_seen_on_connect;
    bool rooms_seen_on_disconnect;
    char reason[64];
    sh_sio_socket_t *last;
    th_eio_t clients[NCLIENTS];
    th_eio_t *more; /* a test's own clients past these, closed by stop() */
    int nmore;
    char sids[NCLIENTS][64];
    sh_sio_socket_t *socks[NCLIENTS];
    /* events heard: through on_event (tree) and on_event_text */
    int tree_events, text_events;
    sh_sio_socket_t *event_sock;
    char event_args[128];
} fix_t;

static fix_t F;

static void app_connected(sh_sio_socket_t *sock, json_t *auth, void *data)
{
    ck_assert_ptr_eq(data, &F);
    F.connected++;
    F.last = sock;
    /* Membership is set up before the application hears of the socket. */
    F.rooms_seen_on_connect =
        sh_hub_in_room(sock, sh_sio_socket_id(sock)) && sh_hub_socket_nsp(sock) == F.nsp;
    json_t *rooms = json_object_get(auth, "rooms");
    size_t i;
    json_t *v;
    json_array_foreach (rooms, i, v)
        sh_hub_join(sock, json_string_value(v));
}

static void app_disconnect(sh_sio_socket_t *sock, const char *reason, void *data)
{
    F.disconnects++;
    snprintf(F.reason, sizeof(F.reason), "%s", reason);
    /* ... and torn down only after it has heard the socket is gone. */
    F.rooms_seen_on_disconnect = sh_hub_in_room(sock, sh_sio_socket_id(sock));
}

static void app_event(sh_sio_socket_t *sock, const char *event, const sh_sio_args_t *args,
                      int64_t ack_id, void *data)
{
    ck_assert_ptr_eq(data, &F);
    F.tree_events++;
    F.event_sock = sock;
}

static void app_event_text(sh_sio_socket_t *sock, const char *event, const sh_json_span_t *args,
                           size_t nargs, int64_t ack_id, void *data)
{
    ck_assert_ptr_eq(data, &F);
    ck_assert_str_eq(event, "said");
    F.text_events++;
    F.event_sock = sock;
    snprintf(F.event_args, sizeof(F.event_args), "%.*s", nargs ? (int)args[0].len : 0,
             nargs ? args[0].p : "");
}

static const char *const app_text_events[] = {"said", NULL};

static const sh_sio_nsp_handler_t app = {
    .on_connected = app_connected,
    .on_event = app_event,
    .text_events = app_text_events,
    .on_event_text = app_event_text,
    .on_disconnect = app_disconnect,
};

static void start(void)
{
    memset(&F, 0, sizeof(F));
    th_env_start(&F.env);
    sh_sio_options_t so = {.connect_timeout = 5000};
    F.sio = sh_sio_server_new(F.env.loop, &so);
    F.hub = sh_hub_new(F.sio);
    F.nsp = sh_hub_add_nsp(F.hub, "/", &app, &F);
    ck_assert_ptr_nonnull(F.nsp);
    ck_assert_ptr_eq(sh_hub_nsp(F.hub, "/"), F.nsp);
    ck_assert_ptr_null(sh_hub_nsp(F.hub, "/other"));
    ck_assert_ptr_nonnull(sh_sio_server_nsp(F.sio, "/"));
    sh_eio_options_t o = {
        .path = PATH,
        .transports = SH_EIO_TRANSPORT_POLLING,
        .ping_interval = 10000,
        .ping_timeout = 5000,
        .upgrade_timeout = 1000,
        .max_payload = 100000,
        .output_limit = 1000000,
    };
    sh_buf_t err = SH_BUF_INIT;
    F.eio = sh_eio_server_new(F.env.loop, F.env.http, &o, sh_sio_eio_handler(), F.sio, &err);
    ck_assert_msg(F.eio != NULL, "%s", sh_buf_peek(&err));
    sh_buf_release(&err);
}

static bool none_active(void *arg)
{
    return sh_eio_server_active(F.eio) == 0;
}

/* The echo app's teardown order: Engine.IO (its on_close ends the sockets,
 * which leave their rooms), then the hub, then Socket.IO. */
static void stop(void)
{
    sh_eio_server_close_all(F.eio);
    ck_assert(th_run_until(F.env.loop, none_active, NULL, TH_WAIT_MS));
    for (int i = 0; i < NCLIENTS; i++)
        th_eio_close(&F.clients[i]);
    for (int i = 0; i < F.nmore; i++)
        th_eio_close(&F.more[i]);
    ck_assert(th_env_wait_idle(&F.env, TH_WAIT_MS));
    sh_http_free(F.env.http);
    F.env.http = NULL;
    sh_loop_run_deferred(F.env.loop);
    sh_eio_server_free(F.eio);
    sh_loop_run_deferred(F.env.loop);
    ck_assert_int_eq(F.disconnects, F.connected);
    ck_assert_uint_eq(sh_hub_stats(F.hub)->rooms, 0);
    sh_hub_free(F.hub);
    sh_sio_server_free(F.sio);
    th_env_stop(&F.env);
}

/* Connects client i to "/" with auth (may be NULL). */
static sh_sio_socket_t *connect_client(int i, const char *auth)
{
    th_resp_t r = {0};
    ck_assert_int_eq(th_eio_open(&F.clients[i], &F.env, PATH, NULL, &r), 200);
    th_resp_release(&r);
    ck_assert(th_sio_connect(&F.clients[i], "/", auth, F.sids[i], sizeof(F.sids[i])));
    F.socks[i] = sh_sio_server_socket(F.sio, F.sids[i]);
    ck_assert_ptr_nonnull(F.socks[i]);
    ck_assert_ptr_eq(F.socks[i], F.last);
    return F.socks[i];
}

static void expect_poll(int i, const char *want)
{
    th_resp_t r = {0};
    ck_assert_msg(th_eio_poll(&F.clients[i], &r, TH_WAIT_MS), "client %d: no answer", i);
    ck_assert_msg(!strcmp(sh_buf_peek(&r.body), want), "client %d: got '%s', want '%s'", i,
                  sh_buf_peek(&r.body), want);
    th_resp_release(&r);
}

/* Nothing waits for client i: its GET is held. Ends the GET by sending it
 * a marker, which it must then receive alone. */
static void expect_nothing(int i)
{
    th_resp_t r = {0};
    th_eio_get_hold(&F.clients[i]);
    ck_assert_int_eq(sh_sio_socket_emit(F.socks[i], "marker", NULL, NULL, 0, NULL, NULL, NULL), 0);
    ck_assert(th_eio_get_wait(&F.clients[i], &r, TH_WAIT_MS));
    ck_assert_str_eq(sh_buf_peek(&r.body), "42[\"marker\"]");
    th_resp_release(&r);
}

typedef struct collect {
    char all[512];
    int n;
} collect_t;

static void collect_room(const char *room, void *data)
{
    collect_t *c = data;
    strncat(c->all, room, sizeof(c->all) - strlen(c->all) - 2);
    strcat(c->all, ",");
    c->n++;
}

static void collect_sock(sh_sio_socket_t *sock, void *data)
{
    collect_room(sh_sio_socket_id(sock), data);
}

/* ---- membership ---- */

/* The application's text events pass through the hub as text, with the
 * application's own data; other events as trees. */
START_TEST(test_text_events_pass_through)
{
    start();
    connect_client(0, NULL);
    sh_sio_socket_t *s1 = connect_client(1, NULL);
    ck_assert_int_eq(th_eio_post_str(&F.clients[1], "42[\"said\",{\"x\": 1}]"), 200);
    ck_assert_int_eq(F.text_events, 1);
    ck_assert_ptr_eq(F.event_sock, s1);
    ck_assert_str_eq(F.event_args, "{\"x\": 1}");
    ck_assert_int_eq(th_eio_post_str(&F.clients[0], "42[\"other\",1]"), 200);
    ck_assert_int_eq(F.tree_events, 1);
    ck_assert_ptr_eq(F.event_sock, F.socks[0]);
    ck_assert_int_eq(F.text_events, 1);
    stop();
}
END_TEST

START_TEST(test_join_leave_and_sid_room)
{
    start();
    sh_sio_socket_t *s = connect_client(0, NULL);
    ck_assert(F.rooms_seen_on_connect);
    ck_assert(sh_hub_in_room(s, F.sids[0]));
    ck_assert_uint_eq(sh_hub_room_size(F.nsp, F.sids[0]), 1);
    ck_assert_uint_eq(sh_hub_stats(F.hub)->rooms, 1);
    sh_hub_join(s, "a");
    sh_hub_join(s, "a"); /* twice: a no-op */
    sh_hub_join(s, "b");
    ck_assert_uint_eq(sh_hub_room_size(F.nsp, "a"), 1);
    ck_assert_uint_eq(sh_hub_stats(F.hub)->rooms, 3);
    sh_hub_leave(s, "zzz"); /* not in it: a no-op */
    collect_t c = {{0}, 0};
    sh_hub_socket_rooms(s, collect_room, &c);
    char want[256];
    snprintf(want, sizeof(want), "%s,a,b,", F.sids[0]);
    ck_assert_str_eq(c.all, want);
    /* A second socket in "a". */
    sh_sio_socket_t *s2 = connect_client(1, "{\"rooms\":[\"a\"]}");
    ck_assert_uint_eq(sh_hub_room_size(F.nsp, "a"), 2);
    collect_t m = {{0}, 0};
    sh_hub_room_foreach(F.nsp, "a", collect_sock, &m);
    snprintf(want, sizeof(want), "%s,%s,", F.sids[0], F.sids[1]);
    ck_assert_str_eq(m.all, want);
    ck_assert_uint_eq(sh_hub_count(F.nsp), 2);
    collect_t every = {{0}, 0};
    sh_hub_foreach(F.nsp, collect_sock, &every);
    ck_assert_str_eq(every.all, want);
    collect_t none = {{0}, 0};
    sh_hub_room_foreach(F.nsp, "nope", collect_sock, &none);
    ck_assert_int_eq(none.n, 0);
    /* Rooms exist while they have members. */
    sh_hub_leave(s, "b");
    ck_assert(!sh_hub_in_room(s, "b"));
    ck_assert_uint_eq(sh_hub_room_size(F.nsp, "b"), 0);
    ck_assert_uint_eq(sh_hub_stats(F.hub)->rooms, 3); /* two sid rooms and "a" */
    sh_hub_leave(s, "a");
    ck_assert_uint_eq(sh_hub_room_size(F.nsp, "a"), 1);
    sh_hub_leave(s2, "a");
    ck_assert_uint_eq(sh_hub_room_size(F.nsp, "a"), 0);
    ck_assert_uint_eq(sh_hub_stats(F.hub)->rooms, 2);
    /* Leaving one's own sid room is allowed; joining it back too. */
    sh_hub_leave(s, F.sids[0]);
    ck_assert_uint_eq(sh_hub_stats(F.hub)->rooms, 1);
    sh_hub_join(s, F.sids[0]);
    ck_assert_uint_eq(sh_hub_stats(F.hub)->rooms, 2);
    stop();
}
END_TEST

/* A socket's own room is found by its id: another socket may join a room
 * of that name too, and one who left its own room gets nothing sent
 * there. */
START_TEST(test_own_room_by_name)
{
    start();
    sh_sio_socket_t *a = connect_client(0, NULL);
    char auth[128];
    snprintf(auth, sizeof(auth), "{\"rooms\":[\"%s\"]}", F.sids[0]);
    sh_sio_socket_t *b = connect_client(1, auth);
    ck_assert(sh_hub_in_room(b, F.sids[0]));
    ck_assert_uint_eq(sh_hub_room_size(F.nsp, F.sids[0]), 2);
    ck_assert_uint_eq(sh_hub_stats(F.hub)->rooms, 3);
    char want[256];
    snprintf(want, sizeof(want), "%s,%s,", F.sids[0], F.sids[1]);
    collect_t m = {{0}, 0};
    sh_hub_room_foreach(F.nsp, F.sids[0], collect_sock, &m);
    ck_assert_str_eq(m.all, want);
    const char *a_room[] = {F.sids[0]};
    sh_hub_target_t t = {.rooms = a_room, .nrooms = 1};
    ck_assert_uint_eq(sh_hub_emit(F.nsp, &t, "both", NULL, NULL, 0), 2);
    t = (sh_hub_target_t){.except = a_room, .nexcept = 1};
    ck_assert_uint_eq(sh_hub_emit(F.nsp, &t, "nobody", NULL, NULL, 0), 0);
    /* a leaves its own room: b is still in the room of that name. */
    sh_hub_leave(a, F.sids[0]);
    ck_assert(!sh_hub_in_room(a, F.sids[0]));
    ck_assert_uint_eq(sh_hub_room_size(F.nsp, F.sids[0]), 1);
    t = (sh_hub_target_t){.rooms = a_room, .nrooms = 1};
    ck_assert_uint_eq(sh_hub_emit(F.nsp, &t, "b-only", NULL, NULL, 0), 1);
    collect_t r = {{0}, 0};
    sh_hub_socket_rooms(a, collect_room, &r);
    ck_assert_int_eq(r.n, 0);
    expect_poll(0, "42[\"both\"]");
    expect_poll(1, "42[\"both\"]\x1e"
                   "42[\"b-only\"]");
    stop();
}
END_TEST

START_TEST(test_rooms_go_with_the_socket)
{
    start();
    connect_client(0, "{\"rooms\":[\"a\",\"b\"]}");
    connect_client(1, "{\"rooms\":[\"b\"]}");
    ck_assert_uint_eq(sh_hub_stats(F.hub)->rooms, 4);
    ck_assert_int_eq(th_eio_post_str(&F.clients[0], "41"), 200);
    ck_assert(th_wait_count(F.env.loop, &F.disconnects, 1, TH_WAIT_MS));
    ck_assert_int_eq(F.disconnects, 1);
    ck_assert_str_eq(F.reason, "client namespace disconnect");
    ck_assert(F.rooms_seen_on_disconnect);
    ck_assert_uint_eq(sh_hub_room_size(F.nsp, "a"), 0);
    ck_assert_uint_eq(sh_hub_room_size(F.nsp, "b"), 1);
    ck_assert_uint_eq(sh_hub_room_size(F.nsp, F.sids[0]), 0);
    ck_assert_uint_eq(sh_hub_stats(F.hub)->rooms, 2);
    /* The whole session going: the same. */
    ck_assert_int_eq(th_eio_post_str(&F.clients[1], "1"), 200);
    ck_assert(th_wait_count(F.env.loop, &F.disconnects, 2, TH_WAIT_MS));
    ck_assert_int_eq(F.disconnects, 2);
    ck_assert_str_eq(F.reason, "transport close");
    ck_assert_uint_eq(sh_hub_stats(F.hub)->rooms, 0);
    /* A broadcast now reaches no one. */
    ck_assert_uint_eq(sh_hub_emit(F.nsp, NULL, "x", NULL, NULL, 0), 0);
    stop();
}
END_TEST

/* ---- broadcast ---- */

START_TEST(test_broadcast_targets)
{
    start();
    /* A in r1; B in r1 and r2; C in r2 and x; D in none. */
    connect_client(0, "{\"rooms\":[\"r1\"]}");
    connect_client(1, "{\"rooms\":[\"r1\",\"r2\"]}");
    connect_client(2, "{\"rooms\":[\"r2\",\"x\"]}");
    connect_client(3, NULL);
    static const char *const r1[] = {"r1"};
    static const char *const r12[] = {"r1", "r2"};
    static const char *const r2[] = {"r2"};
    static const char *const x[] = {"x"};
    static const char *const nope[] = {"nope"};
    json_t *args = json_pack("[i]", 1);
    ck_assert_uint_eq(sh_hub_emit(F.nsp, NULL, "all", args, NULL, 0), 4);
    sh_hub_target_t t = {.rooms = r1, .nrooms = 1};
    ck_assert_uint_eq(sh_hub_emit(F.nsp, &t, "r1", NULL, NULL, 0), 2);
    /* B is in both rooms and gets it once. */
    t = (sh_hub_target_t){.rooms = r12, .nrooms = 2};
    ck_assert_uint_eq(sh_hub_emit(F.nsp, &t, "r12", NULL, NULL, 0), 3);
    t = (sh_hub_target_t){.except = r2, .nexcept = 1};
    ck_assert_uint_eq(sh_hub_emit(F.nsp, &t, "not-r2", NULL, NULL, 0), 2);
    t = (sh_hub_target_t){.rooms = r12, .nrooms = 2, .except = x, .nexcept = 1};
    ck_assert_uint_eq(sh_hub_emit(F.nsp, &t, "r12-not-x", NULL, NULL, 0), 2);
    t = (sh_hub_target_t){.rooms = nope, .nrooms = 1};
    ck_assert_uint_eq(sh_hub_emit(F.nsp, &t, "nobody", NULL, NULL, 0), 0);
    t = (sh_hub_target_t){.except = nope, .nexcept = 1};
    ck_assert_uint_eq(sh_hub_emit(F.nsp, &t, "all-not-nope", NULL, NULL, 0), 4);
    const char *d_room[] = {F.sids[3]};
    t = (sh_hub_target_t){.rooms = d_room, .nrooms = 1};
    ck_assert_uint_eq(sh_hub_emit(F.nsp, &t, "to-d", NULL, NULL, 0), 1);
    json_decref(args);
    expect_poll(0, "42[\"all\",1]\x1e"
                   "42[\"r1\"]\x1e"
                   "42[\"r12\"]\x1e"
                   "42[\"not-r2\"]\x1e"
                   "42[\"r12-not-x\"]\x1e"
                   "42[\"all-not-nope\"]");
    expect_poll(1, "42[\"all\",1]\x1e"
                   "42[\"r1\"]\x1e"
                   "42[\"r12\"]\x1e"
                   "42[\"r12-not-x\"]\x1e"
                   "42[\"all-not-nope\"]");
    expect_poll(2, "42[\"all\",1]\x1e"
                   "42[\"r12\"]\x1e"
                   "42[\"all-not-nope\"]");
    expect_poll(3, "42[\"all\",1]\x1e"
                   "42[\"not-r2\"]\x1e"
                   "42[\"all-not-nope\"]\x1e"
                   "42[\"to-d\"]");
    const sh_hub_stats_t *st = sh_hub_stats(F.hub);
    ck_assert_uint_eq(st->broadcasts, 8);
    ck_assert_uint_eq(st->deliveries, 4 + 2 + 3 + 2 + 2 + 0 + 4 + 1);
    /* The emit to nobody built no packet. */
    ck_assert_uint_eq(st->packets, 7);
    t = (sh_hub_target_t){.rooms = r2, .nrooms = 1, .except = r12, .nexcept = 2};
    ck_assert_uint_eq(sh_hub_emit(F.nsp, &t, "all-excepted", NULL, NULL, 0), 0);
    ck_assert_uint_eq(st->packets, 7);
    /* Nothing else was queued for anyone. */
    for (int i = 0; i < NCLIENTS; i++)
        expect_nothing(i);
    stop();
}
END_TEST

START_TEST(test_broadcast_on_other_namespace_is_separate)
{
    start();
    sh_hub_nsp_t *other = sh_hub_add_nsp(F.hub, "/other", &app, &F);
    connect_client(0, "{\"rooms\":[\"r\"]}");
    char sid[64];
    ck_assert(th_sio_connect(&F.clients[0], "/other", "{\"rooms\":[\"r\"]}", sid, sizeof(sid)));
    connect_client(1, "{\"rooms\":[\"r\"]}");
    ck_assert_ptr_eq(sh_hub_socket_nsp(F.last), F.nsp);
    ck_assert_ptr_eq(sh_hub_socket_nsp(sh_sio_server_socket(F.sio, sid)), other);
    static const char *const r[] = {"r"};
    sh_hub_target_t t = {.rooms = r, .nrooms = 1};
    ck_assert_uint_eq(sh_hub_room_size(F.nsp, "r"), 2);
    ck_assert_uint_eq(sh_hub_room_size(other, "r"), 1);
    ck_assert_uint_eq(sh_hub_emit(other, &t, "o", NULL, NULL, 0), 1);
    expect_poll(0, "42/other,[\"o\"]");
    expect_nothing(1);
    stop();
}
END_TEST

/* More recipients than a broadcast gathers at once (64): each gets the
 * message once, in the order sent, and the excepted nothing. */
START_TEST(test_broadcast_past_one_batch)
{
    enum { MANY = 150 };
    static th_eio_t many[MANY];
    start();
    memset(many, 0, sizeof(many));
    F.more = many;
    F.nmore = MANY;
    for (int i = 0; i < MANY; i++) {
        th_resp_t r = {0};
        char sid[64];
        ck_assert_int_eq(th_eio_open(&many[i], &F.env, PATH, NULL, &r), 200);
        th_resp_release(&r);
        /* Every third one in "skip" as well. */
        ck_assert(th_sio_connect(&many[i], "/",
                                 i % 3 ? "{\"rooms\":[\"big\"]}" : "{\"rooms\":[\"big\",\"skip\"]}",
                                 sid, sizeof(sid)));
    }
    static const char *const big[] = {"big"}, *const skip[] = {"skip"};
    sh_msg_t *all = sh_msg_new("42[\"all\"]", 9, false);
    sh_msg_t *some = sh_msg_new("42[\"some\"]", 10, false);
    sh_hub_target_t t = {.rooms = big, .nrooms = 1};
    ck_assert_uint_eq(sh_hub_send(F.nsp, &t, &all, 1), MANY);
    t.except = skip;
    t.nexcept = 1;
    ck_assert_uint_eq(sh_hub_send(F.nsp, &t, &some, 1), MANY - (MANY + 2) / 3);
    ck_assert_uint_eq(some->refs, 1 + MANY - (MANY + 2) / 3);
    for (int i = 0; i < MANY; i++) {
        th_resp_t r = {0};
        ck_assert_msg(th_eio_poll(&many[i], &r, TH_WAIT_MS), "client %d: no answer", i);
        ck_assert_str_eq(sh_buf_peek(&r.body), i % 3 ? "42[\"all\"]\x1e"
                                                       "42[\"some\"]"
                                                     : "42[\"all\"]");
        th_resp_release(&r);
    }
    sh_msg_unref(all);
    sh_msg_unref(some);
    stop();
}
END_TEST

/* ---- encode once ---- */

START_TEST(test_broadcast_encodes_once)
{
    start();
    for (int i = 0; i < 3; i++)
        connect_client(i, NULL);
    /* Pre-encoded messages: each recipient's queue holds a reference to
     * the very same message. */
    sh_msg_t *m = sh_msg_new("42[\"pre\",\"x\"]", 13, false);
    ck_assert_uint_eq(sh_hub_send(F.nsp, NULL, &m, 1), 3);
    ck_assert_uint_eq(m->refs, 1 + 3);
    /* An emit with an attachment: encoded once, the attachment shared by
     * all three (not copied), its base64 form built once for polling. */
    sh_msg_t *bin = sh_msg_new("\x01\x02\x03", 3, true);
    json_t *args = json_pack("[{s:b,s:i}]", "_placeholder", 1, "num", 0);
    ck_assert_uint_eq(sh_hub_emit(F.nsp, NULL, "file", args, &bin, 1), 3);
    json_decref(args);
    ck_assert_uint_eq(bin->refs, 1 + 3);
    ck_assert_ptr_null(bin->base64);
    const char *want = "42[\"pre\",\"x\"]\x1e"
                       "451-[\"file\",{\"_placeholder\":true,\"num\":0}]\x1e"
                       "bAQID";
    expect_poll(0, want);
    sh_msg_t *b64 = bin->base64;
    ck_assert_ptr_nonnull(b64);
    expect_poll(1, want);
    expect_poll(2, want);
    ck_assert_ptr_eq(bin->base64, b64);
    ck_assert(th_wait_refs(F.env.loop, &m->refs, 1, TH_WAIT_MS));
    ck_assert(th_wait_refs(F.env.loop, &bin->refs, 1, TH_WAIT_MS));
    ck_assert_uint_eq(b64->refs, 1);
    sh_msg_unref(m);
    sh_msg_unref(bin);
    ck_assert_uint_eq(sh_hub_stats(F.hub)->deliveries, 6);
    stop();
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("hub");
    TCase *tc = tcase_create("hub");
    tcase_set_timeout(tc, 8);
    tcase_add_test(tc, test_join_leave_and_sid_room);
    tcase_add_test(tc, test_text_events_pass_through);
    tcase_add_test(tc, test_own_room_by_name);
    tcase_add_test(tc, test_rooms_go_with_the_socket);
    tcase_add_test(tc, test_broadcast_targets);
    tcase_add_test(tc, test_broadcast_on_other_namespace_is_separate);
    tcase_add_test(tc, test_broadcast_past_one_batch);
    tcase_add_test(tc, test_broadcast_encodes_once);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
