/* The Socket.IO server on a real Engine.IO server (HTTP on 127.0.0.1, port
 * 0), driven by a hand-written long-polling client: the test POSTs Socket.IO
 * packets as a client would and reads what the server sends from GETs.
 * Namespace handlers and ack callbacks are counted and checked never to run
 * inside a call the test made; every test ends with all sockets gone and
 * everything freed. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/msg.h"
#include "core/random.h"
#include "eio_client.h"
#include "engineio/packet.h"
#include "engineio/server.h"
#include "harness.h"
#include "socketio/server.h"

#define PATH "/socket.io/"

typedef struct fix {
    th_env_t env;
    sh_eio_server_t *eio;
    sh_sio_server_t *sio;
    bool in_call;
    int connect_calls, connected, events, text_events, disconnects;
    sh_sio_socket_t *sock; /* the last connected socket */
    /* The socket whose CONNECT on_connect deferred ({"defer":true}) until
     * it connects or ends; pending_ends counts those that ended first. */
    sh_sio_socket_t *pending;
    int pending_ends;
    char auth[256]; /* the last CONNECT payload seen, as JSON */
    char event[64];
    char args[512]; /* the last event's arguments, as JSON */
    int64_t ack_id;
    size_t nbins;
    sh_buf_t bins[4];
    char reason[64];
    sh_sio_socket_t *gone; /* the last socket disconnected */
    /* server-side acks */
    int ack_calls;
    int ack_status;
    char ack_args[512];
    size_t ack_nbins;
    sh_buf_t ack_bin;
    char ack_socket[64];
    th_eio_t clients[3];
} fix_t;

static fix_t F;

static void dump(json_t *j, char *out, size_t n)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(out, n, "%s", s ? s : "(null)");
    free(s);
}

static int on_connect(sh_sio_socket_t *sock, json_t *auth, json_t **error, void *data)
{
    ck_assert_msg(!F.in_call, "on_connect ran inside a call made by the test");
    ck_assert_ptr_eq(data, &F);
    F.connect_calls++;
    dump(auth, F.auth, sizeof(F.auth));
    ck_assert(!sh_sio_socket_connected(sock));
    if (json_object_get(auth, "deny")) {
        *error = json_pack("{s:s,s:{s:i}}", "message", "denied", "data", "code", 7);
        return -EPERM;
    }
    if (json_object_get(auth, "deny_silently"))
        return -EPERM;
    if (json_object_get(auth, "defer")) {
        F.pending = sock;
        return -EINPROGRESS;
    }
    return 0;
}

static void on_connected(sh_sio_socket_t *sock, json_t *auth, void *data)
{
    ck_assert_msg(!F.in_call, "on_connected ran inside a call made by the test");
    F.connected++;
    F.sock = sock;
    if (F.pending == sock)
        F.pending = NULL;
    ck_assert(sh_sio_socket_connected(sock));
    ck_assert_ptr_eq(sh_sio_server_socket(F.sio, sh_sio_socket_id(sock)), sock);
    ck_assert_ptr_null(sh_sio_server_pending_socket(F.sio, sh_sio_socket_id(sock)));
    if (json_object_get(auth, "greet")) {
        json_t *args = json_pack("[s]", "hi");
        ck_assert_int_eq(sh_sio_socket_emit(sock, "welcome", args, NULL, 0, NULL, NULL, NULL), 0);
        json_decref(args);
    }
}

static void on_event(sh_sio_socket_t *sock, const char *event, const sh_sio_args_t *args,
                     int64_t ack_id, void *data)
{
    ck_assert_msg(!F.in_call, "on_event ran inside a call made by the test");
    F.events++;
    snprintf(F.event, sizeof(F.event), "%s", event);
    dump(args->args, F.args, sizeof(F.args));
    F.ack_id = ack_id;
    F.nbins = args->nbins;
    for (size_t i = 0; i < args->nbins && i < 4; i++) {
        sh_buf_reset(&F.bins[i]);
        sh_buf_append(&F.bins[i], args->bins[i]->data, args->bins[i]->len);
        ck_assert(args->bins[i]->binary);
    }
    if (!strcmp(event, "ack-me") && ack_id >= 0)
        ck_assert_int_eq(sh_sio_socket_ack(sock, ack_id, args->args, args->bins, args->nbins), 0);
    if (!strcmp(event, "ack-empty") && ack_id >= 0)
        ck_assert_int_eq(sh_sio_socket_ack(sock, ack_id, NULL, NULL, 0), 0);
    if (!strcmp(event, "echo"))
        ck_assert_int_eq(sh_sio_socket_emit(sock, "echo-back", args->args, args->bins, args->nbins,
                                            NULL, NULL, NULL),
                         0);
}

static void on_disconnect(sh_sio_socket_t *sock, const char *reason, void *data)
{
    ck_assert_msg(!F.in_call, "on_disconnect ran inside a call made by the test");
    ck_assert(!sh_sio_socket_connected(sock));
    ck_assert_ptr_null(sh_sio_server_socket(F.sio, sh_sio_socket_id(sock)));
    ck_assert_ptr_null(sh_sio_server_pending_socket(F.sio, sh_sio_socket_id(sock)));
    F.disconnects++;
    if (F.pending == sock) {
        F.pending = NULL;
        F.pending_ends++;
    }
    F.gone = sock;
    snprintf(F.reason, sizeof(F.reason), "%s", reason);
    if (F.sock == sock)
        F.sock = NULL;
}

/* Events named "as-text" come as text (the handler's text_events). */
static void on_event_text(sh_sio_socket_t *sock, const char *event, const sh_json_span_t *args,
                          size_t nargs, int64_t ack_id, void *data)
{
    ck_assert_msg(!F.in_call, "on_event_text ran inside a call made by the test");
    ck_assert_ptr_eq(data, &F);
    ck_assert(sh_sio_socket_connected(sock));
    F.text_events++;
    snprintf(F.event, sizeof(F.event), "%s", event);
    sh_buf_t b = SH_BUF_INIT;
    sh_buf_append_byte(&b, '[');
    for (size_t i = 0; i < nargs; i++) {
        if (i)
            sh_buf_append_byte(&b, ',');
        sh_buf_append(&b, args[i].p, args[i].len);
    }
    sh_buf_append_byte(&b, ']');
    snprintf(F.args, sizeof(F.args), "%.*s", (int)sh_buf_avail(&b), sh_buf_peek(&b));
    sh_buf_release(&b);
    F.ack_id = ack_id;
    F.nbins = 0;
}

static const char *const text_events[] = {"as-text", "also-text", NULL};

static const sh_sio_nsp_handler_t nsp_handler = {
    .on_connect = on_connect,
    .on_connected = on_connected,
    .on_event = on_event,
    .text_events = text_events,
    .on_event_text = on_event_text,
    .on_disconnect = on_disconnect,
};

static void on_ack(sh_sio_server_t *srv, const char *socket_id, int status,
                   const sh_sio_args_t *args, void *data)
{
    ck_assert_msg(!F.in_call, "an ack callback ran inside a call made by the test");
    ck_assert_ptr_eq(srv, F.sio);
    ck_assert_ptr_eq(data, &F);
    F.ack_calls++;
    F.ack_status = status;
    snprintf(F.ack_socket, sizeof(F.ack_socket), "%s", socket_id);
    dump(args->args, F.ack_args, sizeof(F.ack_args));
    F.ack_nbins = args->nbins;
    if (args->nbins) {
        sh_buf_reset(&F.ack_bin);
        sh_buf_append(&F.ack_bin, args->bins[0]->data, args->bins[0]->len);
    }
}

static void start_with(uint64_t connect_timeout)
{
    memset(&F, 0, sizeof(F));
    th_env_start(&F.env);
    sh_sio_options_t so = {.connect_timeout = connect_timeout};
    F.sio = sh_sio_server_new(F.env.loop, &so);
    ck_assert_ptr_nonnull(sh_sio_server_add_nsp(F.sio, "/", &nsp_handler, &F));
    ck_assert_ptr_nonnull(sh_sio_server_add_nsp(F.sio, "/admin", &nsp_handler, &F));
    sh_eio_options_t o = {
        .path = PATH,
        .transports = SH_EIO_TRANSPORT_POLLING | SH_EIO_TRANSPORT_WEBSOCKET,
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

static void start(void)
{
    start_with(5000);
}

static bool none_active(void *arg)
{
    return sh_eio_server_active(F.eio) == 0;
}

/* Ends a test as the daemon shuts down: sessions closed, clients gone,
 * HTTP freed, then Engine.IO (its on_close reaches Socket.IO), then
 * Socket.IO. Every accepted socket must have disconnected once, and so
 * must every deferred one that never connected. */
static void stop(void)
{
    sh_eio_server_close_all(F.eio);
    ck_assert(th_run_until(F.env.loop, none_active, NULL, TH_WAIT_MS));
    for (int i = 0; i < 3; i++)
        th_eio_close(&F.clients[i]);
    ck_assert(th_env_wait_idle(&F.env, TH_WAIT_MS));
    sh_http_free(F.env.http);
    F.env.http = NULL;
    sh_loop_run_deferred(F.env.loop);
    sh_eio_server_free(F.eio);
    sh_loop_run_deferred(F.env.loop);
    ck_assert_int_eq(F.disconnects, F.connected + F.pending_ends);
    ck_assert_uint_eq(sh_sio_server_stats(F.sio)->sockets, 0);
    ck_assert_uint_eq(sh_sio_server_stats(F.sio)->pending, 0);
    sh_sio_server_free(F.sio);
    th_env_stop(&F.env);
    for (int i = 0; i < 4; i++)
        sh_buf_release(&F.bins[i]);
    sh_buf_release(&F.ack_bin);
}

static th_eio_t *open_client(int i)
{
    th_resp_t r = {0};
    ck_assert_int_eq(th_eio_open(&F.clients[i], &F.env, PATH, NULL, &r), 200);
    th_resp_release(&r);
    return &F.clients[i];
}

static th_eio_t *connected_client(int i, char *sid, size_t sidlen)
{
    th_eio_t *c = open_client(i);
    ck_assert(th_sio_connect(c, "/", NULL, sid, sidlen));
    return c;
}

/* POSTs a payload (must be accepted). */
static void post(th_eio_t *c, const char *payload)
{
    ck_assert_int_eq(th_eio_post_str(c, payload), 200);
}

/* Polls and checks the payload exactly. */
static void expect_poll(th_eio_t *c, const char *want)
{
    th_resp_t r = {0};
    ck_assert_msg(th_eio_poll(c, &r, TH_WAIT_MS), "no answer to a GET");
    ck_assert_msg(!strcmp(sh_buf_peek(&r.body), want), "got '%s', want '%s'", sh_buf_peek(&r.body),
                  want);
    th_resp_release(&r);
}

static bool n_disconnects(void *arg)
{
    return F.disconnects >= *(int *)arg;
}

static void wait_disconnects(int n)
{
    ck_assert_msg(th_run_until(F.env.loop, n_disconnects, &n, TH_WAIT_MS), "%d of %d disconnects",
                  F.disconnects, n);
}

/* ---- connecting ---- */

START_TEST(test_connect_ack_has_its_own_sid)
{
    start();
    th_eio_t *c = open_client(0);
    char sid[64];
    ck_assert(th_sio_connect(c, "/", NULL, sid, sizeof(sid)));
    ck_assert_uint_eq(strlen(sid), SH_ID_LEN);
    ck_assert_str_ne(sid, c->sid); /* v5: not the Engine.IO sid */
    ck_assert_int_eq(F.connect_calls, 1);
    ck_assert_int_eq(F.connected, 1);
    ck_assert_str_eq(F.auth, "(null)");
    sh_sio_socket_t *sock = sh_sio_server_socket(F.sio, sid);
    ck_assert_ptr_eq(sock, F.sock);
    ck_assert_str_eq(sh_sio_socket_id(sock), sid);
    ck_assert_str_eq(sh_eio_session_sid(sh_sio_socket_session(sock)), c->sid);
    ck_assert_ptr_eq(sh_sio_socket_server(sock), F.sio);
    ck_assert_ptr_eq(sh_sio_socket_nsp(sock), sh_sio_server_nsp(F.sio, "/"));
    ck_assert_str_eq(sh_sio_nsp_name(sh_sio_socket_nsp(sock)), "/");
    ck_assert_ptr_null(sh_sio_server_nsp(F.sio, "/nope"));
    ck_assert_ptr_null(sh_sio_socket_slot(sock, SH_SIO_SLOT_APP));
    sh_sio_socket_set_slot(sock, SH_SIO_SLOT_APP, &F);
    ck_assert_ptr_eq(sh_sio_socket_slot(sock, SH_SIO_SLOT_APP), &F);
    /* Another namespace on the same session, with an auth payload. */
    post(c, "40/admin,{\"token\":\"abc\",\"greet\":1}");
    ck_assert_str_eq(F.auth, "{\"token\":\"abc\",\"greet\":1}");
    sh_sio_socket_t *admin = F.sock;
    ck_assert_ptr_ne(admin, sock);
    const char *sid2 = sh_sio_socket_id(admin);
    ck_assert_str_ne(sid2, sid);
    ck_assert_str_ne(sid2, c->sid);
    /* Sending from on_connected follows the CONNECT answer. */
    char want[256];
    snprintf(want, sizeof(want),
             "40/admin,{\"sid\":\"%s\"}\x1e"
             "42/admin,[\"welcome\",\"hi\"]",
             sid2);
    expect_poll(c, want);
    const sh_sio_stats_t *st = sh_sio_server_stats(F.sio);
    ck_assert_uint_eq(st->sockets, 2);
    ck_assert_uint_eq(st->connects, 2);
    ck_assert_uint_eq(st->connect_errors, 0);
    /* A second CONNECT to a connected namespace is an invalid state that
     * closes the session, as in Node. */
    post(c, "40");
    ck_assert_int_eq(F.connect_calls, 2);
    stop();
    ck_assert_str_eq(F.reason, "forced close");
}
END_TEST

START_TEST(test_connect_errors)
{
    start();
    th_eio_t *c = open_client(0);
    post(c, "40/nope,");
    expect_poll(c, "44/nope,{\"message\":\"Invalid namespace\"}");
    ck_assert_int_eq(F.connect_calls, 0);
    /* Refused by the handler, with its error object. */
    post(c, "40/admin,{\"deny\":true}");
    expect_poll(c, "44/admin,{\"message\":\"denied\",\"data\":{\"code\":7}}");
    /* Refused without one: a default message. */
    post(c, "40{\"deny_silently\":true}");
    expect_poll(c, "44{\"message\":\"Not authorized\"}");
    ck_assert_int_eq(F.connect_calls, 2);
    ck_assert_int_eq(F.connected, 0);
    ck_assert_uint_eq(sh_sio_server_stats(F.sio)->connect_errors, 3);
    /* The session is still usable. */
    char sid[64];
    ck_assert(th_sio_connect(c, "/", NULL, sid, sizeof(sid)));
    /* A packet for a namespace the client is not connected to is an
     * invalid state: the session closes, as Node's does. */
    post(c, "42/admin,[\"x\"]");
    wait_disconnects(1);
    ck_assert_str_eq(F.reason, "forced close");
    ck_assert_int_eq(F.events, 0);
    stop();
}
END_TEST

/* ---- events and acks ---- */

START_TEST(test_events_and_client_acks)
{
    start();
    char sid[64], sid2[64];
    th_eio_t *c = connected_client(0, sid, sizeof(sid));
    ck_assert(th_sio_connect(c, "/admin", NULL, sid2, sizeof(sid2)));
    post(c, "42[\"hello\",1,{\"a\":[true,null]},\"\xc3\xa9\"]");
    ck_assert_int_eq(F.events, 1);
    ck_assert_str_eq(F.event, "hello");
    ck_assert_str_eq(F.args, "[1,{\"a\":[true,null]},\"\xc3\xa9\"]");
    ck_assert_int_eq(F.ack_id, -1);
    ck_assert_uint_eq(F.nbins, 0);
    /* The client asks for an ack: id 1 on "/", id 7 on "/admin". */
    post(c, "421[\"ack-me\",\"x\",2]");
    ck_assert_int_eq(F.ack_id, 1);
    post(c, "42/admin,7[\"ack-me\",{\"k\":[]}]");
    ck_assert_int_eq(F.ack_id, 7);
    post(c, "4299[\"ack-empty\"]");
    expect_poll(c, "431[\"x\",2]\x1e"
                   "43/admin,7[{\"k\":[]}]\x1e"
                   "4399[]");
    /* Numeric event names are allowed (socket.io-parser does). */
    post(c, "42[42,\"n\"]");
    ck_assert_str_eq(F.event, "42");
    ck_assert_str_eq(F.args, "[\"n\"]");
    /* Several packets in one POST arrive in order. */
    post(c, "42[\"echo\",1]\x1e"
            "42[\"echo\",2]");
    expect_poll(c, "42[\"echo-back\",1]\x1e"
                   "42[\"echo-back\",2]");
    ck_assert_uint_eq(sh_sio_server_stats(F.sio)->events_in, 7);
    stop();
}
END_TEST

/* A handler's text_events come to on_event_text as the text of their
 * arguments when their JSON is plain; the same names with JSON a tree
 * decoder reads otherwise (or an escaped name) come to on_event, and a
 * malformed one closes the session as any other. */
START_TEST(test_text_events)
{
    start();
    char sid[64], sid2[64];
    th_eio_t *c = connected_client(0, sid, sizeof(sid));
    ck_assert(th_sio_connect(c, "/admin", NULL, sid2, sizeof(sid2)));
    post(c, "42[\"as-text\", {\"a\" : [1, \"\xc3\xa9\"]},\"x\\n\",null]");
    ck_assert_int_eq(F.text_events, 1);
    ck_assert_int_eq(F.events, 0);
    ck_assert_str_eq(F.event, "as-text");
    /* As the client wrote them, whitespace inside an argument included. */
    ck_assert_str_eq(F.args, "[{\"a\" : [1, \"\xc3\xa9\"]},\"x\\n\",null]");
    ck_assert_int_eq(F.ack_id, -1);
    post(c, "42/admin,5[\"also-text\"]");
    ck_assert_int_eq(F.text_events, 2);
    ck_assert_str_eq(F.event, "also-text");
    ck_assert_str_eq(F.args, "[]");
    ck_assert_int_eq(F.ack_id, 5);
    /* The tree's: a repeated key, "\u0000", a huge number, an escaped
     * name, more than SH_SIO_TEXT_MAX_ARGS arguments, another name. */
    post(c, "42[\"as-text\",{\"a\":1,\"a\":2}]");
    ck_assert_str_eq(F.args, "[{\"a\":2}]");
    post(c, "42[\"as-text\",\"\\u0000\"]");
    ck_assert_int_eq(F.events, 2);
    post(c, "42[\"as-te\\u0078t\",1]");
    ck_assert_str_eq(F.event, "as-text");
    ck_assert_str_eq(F.args, "[1]");
    post(c, "42[\"as-text\",1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]");
    ck_assert_str_eq(F.args, "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]");
    post(c, "42[\"hello\",1]");
    ck_assert_str_eq(F.event, "hello");
    ck_assert_int_eq(F.events, 5);
    ck_assert_int_eq(F.text_events, 2);
    /* Sixteen arguments still come as text. */
    post(c, "42[\"as-text\",1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]");
    ck_assert_int_eq(F.text_events, 3);
    ck_assert_str_eq(F.args, "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]");
    ck_assert_uint_eq(sh_sio_server_stats(F.sio)->events_in, 8);
    /* Malformed, or a number jansson cannot hold: the session closes,
     * with nothing delivered. */
    post(c, "42[\"as-text\",]");
    wait_disconnects(2);
    c = connected_client(1, sid, sizeof(sid));
    post(c, "42[\"as-text\",123456789012345678901234567890]");
    wait_disconnects(3);
    ck_assert_uint_eq(sh_sio_server_stats(F.sio)->parse_errors, 2);
    ck_assert_int_eq(F.events + F.text_events, 8);
    /* A namespace the client has not connected: closed, as before. */
    c = connected_client(2, sid, sizeof(sid));
    post(c, "42/admin,[\"as-text\",1]");
    wait_disconnects(4);
    ck_assert_int_eq(F.events + F.text_events, 8);
    stop();
}
END_TEST

START_TEST(test_server_acks_run_once)
{
    start();
    char sid[64];
    th_eio_t *c = connected_client(0, sid, sizeof(sid));
    sh_sio_socket_t *sock = F.sock;
    json_t *args = json_pack("[i,s]", 1, "two");
    int64_t id = -1;
    F.in_call = true;
    ck_assert_int_eq(sh_sio_socket_emit(sock, "ask", args, NULL, 0, on_ack, &F, &id), 0);
    F.in_call = false;
    ck_assert_int_eq(id, 0);
    expect_poll(c, "420[\"ask\",1,\"two\"]");
    post(c, "430[\"answer\",{\"k\":2}]");
    ck_assert_int_eq(F.ack_calls, 1);
    ck_assert_int_eq(F.ack_status, 0);
    ck_assert_str_eq(F.ack_args, "[\"answer\",{\"k\":2}]");
    ck_assert_str_eq(F.ack_socket, sid);
    /* A second answer to the same id finds nothing pending. */
    post(c, "430[\"again\"]");
    ck_assert_int_eq(F.ack_calls, 1);
    /* A cancelled ack never runs. */
    F.in_call = true;
    ck_assert_int_eq(sh_sio_socket_emit(sock, "ask", NULL, NULL, 0, on_ack, &F, &id), 0);
    ck_assert_int_eq(id, 1);
    ck_assert_int_eq(sh_sio_socket_cancel_ack(sock, id), 0);
    ck_assert_int_eq(sh_sio_socket_cancel_ack(sock, id), -ENOENT);
    F.in_call = false;
    expect_poll(c, "421[\"ask\"]");
    post(c, "431[]");
    ck_assert_int_eq(F.ack_calls, 1);
    /* A binary answer. */
    F.in_call = true;
    ck_assert_int_eq(sh_sio_socket_emit(sock, "ask", NULL, NULL, 0, on_ack, &F, &id), 0);
    F.in_call = false;
    expect_poll(c, "422[\"ask\"]");
    post(c, "461-2[{\"_placeholder\":true,\"num\":0}]\x1e"
            "bAQID");
    ck_assert_int_eq(F.ack_calls, 2);
    ck_assert_str_eq(F.ack_args, "[{\"_placeholder\":true,\"num\":0}]");
    ck_assert_uint_eq(F.ack_nbins, 1);
    ck_assert(!memcmp(sh_buf_peek(&F.ack_bin), "\x01\x02\x03", 3));
    /* Pending when the socket ends: the callback runs with -ECONNRESET. */
    F.in_call = true;
    ck_assert_int_eq(sh_sio_socket_emit(sock, "ask", NULL, NULL, 0, on_ack, &F, &id), 0);
    F.in_call = false;
    post(c, "41");
    wait_disconnects(1);
    ck_assert_int_eq(F.ack_calls, 3);
    ck_assert_int_eq(F.ack_status, -ECONNRESET);
    ck_assert_str_eq(F.ack_args, "[]");
    ck_assert_str_eq(F.ack_socket, sid);
    th_run_for(F.env.loop, 10);
    ck_assert_int_eq(F.ack_calls, 3);
    json_decref(args);
    stop();
}
END_TEST

START_TEST(test_acks_fail_when_session_closes)
{
    start();
    char sid[64];
    th_eio_t *c = connected_client(0, sid, sizeof(sid));
    ck_assert_int_eq(sh_sio_socket_emit(F.sock, "a", NULL, NULL, 0, on_ack, &F, NULL), 0);
    ck_assert_int_eq(sh_sio_socket_emit(F.sock, "b", NULL, NULL, 0, on_ack, &F, NULL), 0);
    post(c, "1"); /* the Engine.IO session closes under the socket */
    wait_disconnects(1);
    ck_assert_str_eq(F.reason, "transport close");
    ck_assert_int_eq(F.ack_calls, 2);
    ck_assert_int_eq(F.ack_status, -ECONNRESET);
    stop();
}
END_TEST

/* ---- binary ---- */

START_TEST(test_binary_event_reassembled)
{
    start();
    char sid[64];
    th_eio_t *c = connected_client(0, sid, sizeof(sid));
    /* Header and attachments in one POST. */
    post(c, "452-[\"echo\",{\"_placeholder\":true,\"num\":0},\"mid\","
            "{\"_placeholder\":true,\"num\":1}]\x1e"
            "bAQID\x1e"
            "b/wA=");
    ck_assert_int_eq(F.events, 1);
    ck_assert_str_eq(F.event, "echo");
    ck_assert_uint_eq(F.nbins, 2);
    ck_assert_uint_eq(sh_buf_avail(&F.bins[0]), 3);
    ck_assert(!memcmp(sh_buf_peek(&F.bins[0]), "\x01\x02\x03", 3));
    ck_assert_uint_eq(sh_buf_avail(&F.bins[1]), 2);
    ck_assert(!memcmp(sh_buf_peek(&F.bins[1]), "\xff\x00", 2));
    ck_assert_str_eq(F.args, "[{\"_placeholder\":true,\"num\":0},\"mid\","
                             "{\"_placeholder\":true,\"num\":1}]");
    /* Forwarded as is: same placeholders, same attachments. */
    expect_poll(c, "452-[\"echo-back\",{\"_placeholder\":true,\"num\":0},\"mid\","
                   "{\"_placeholder\":true,\"num\":1}]\x1e"
                   "bAQID\x1e"
                   "b/wA=");
    /* Attachments spread over POSTs: the event waits for the last. */
    post(c, "451-[\"bin\",{\"_placeholder\":true,\"num\":0}]");
    ck_assert_int_eq(F.events, 1);
    post(c, "bBA==");
    ck_assert_int_eq(F.events, 2);
    ck_assert_str_eq(F.event, "bin");
    ck_assert_uint_eq(F.nbins, 1);
    ck_assert_int_eq(sh_buf_peek(&F.bins[0])[0], 4);
    /* A binary event asking for an ack, answered with the attachment. */
    post(c, "451-5[\"ack-me\",{\"_placeholder\":true,\"num\":0}]\x1e"
            "bBQY=");
    expect_poll(c, "461-5[{\"_placeholder\":true,\"num\":0}]\x1e"
                   "bBQY=");
    ck_assert_uint_eq(sh_sio_server_stats(F.sio)->parse_errors, 0);
    stop();
}
END_TEST

START_TEST(test_text_while_attachments_due_closes_session)
{
    start();
    char sid[64];
    th_eio_t *c = connected_client(0, sid, sizeof(sid));
    th_resp_t r = {0};
    th_eio_get_hold(c);
    post(c, "451-[\"bin\",{\"_placeholder\":true,\"num\":0}]\x1e"
            "42[\"x\"]");
    ck_assert_int_eq(F.events, 0);
    ck_assert(th_eio_get_wait(c, &r, TH_WAIT_MS));
    ck_assert_str_eq(sh_buf_peek(&r.body), "1");
    wait_disconnects(1);
    ck_assert_str_eq(F.reason, "forced close");
    ck_assert_uint_eq(sh_sio_server_stats(F.sio)->parse_errors, 1);
    /* An attachment nobody announced, and a malformed packet, do the same. */
    c = connected_client(1, sid, sizeof(sid));
    post(c, "bAQID");
    wait_disconnects(2);
    c = connected_client(2, sid, sizeof(sid));
    post(c, "42{\"not\":\"an array\"}");
    wait_disconnects(3);
    ck_assert_uint_eq(sh_sio_server_stats(F.sio)->parse_errors, 3);
    ck_assert_int_eq(F.events, 0);
    th_resp_release(&r);
    stop();
}
END_TEST

/* ---- the connect timeout ---- */

START_TEST(test_connect_timeout)
{
    start_with(60);
    uint64_t t0 = sh_time_ms();
    th_eio_t *idle = open_client(0);
    char sid[64];
    th_eio_t *busy = connected_client(1, sid, sizeof(sid));
    th_resp_t r = {0};
    th_eio_get_send(idle);
    ck_assert(th_eio_get_wait(idle, &r, TH_WAIT_MS));
    ck_assert_uint_ge(sh_time_ms() - t0, 60);
    ck_assert_str_eq(sh_buf_peek(&r.body), "1");
    ck_assert_uint_eq(sh_eio_server_stats(F.eio)->sessions_closed, 1);
    /* The one that connected in time stays. */
    th_run_for(F.env.loop, 80);
    ck_assert_ptr_nonnull(sh_sio_server_socket(F.sio, sid));
    post(busy, "42[\"still\"]");
    ck_assert_int_eq(F.events, 1);
    ck_assert_int_eq(F.disconnects, 0);
    th_resp_release(&r);
    stop();
}
END_TEST

/* ---- CONNECTs answered later ---- */

/* POSTs a CONNECT that on_connect defers; checks the socket is pending
 * and the client has no answer (a GET is left held). */
static sh_sio_socket_t *deferred_connect(th_eio_t *c, const char *packet)
{
    int calls = F.connect_calls;
    post(c, packet);
    ck_assert_int_eq(F.connect_calls, calls + 1);
    sh_sio_socket_t *sock = F.pending;
    ck_assert_ptr_nonnull(sock);
    ck_assert(!sh_sio_socket_connected(sock));
    ck_assert_ptr_eq(sh_sio_server_pending_socket(F.sio, sh_sio_socket_id(sock)), sock);
    ck_assert_ptr_null(sh_sio_server_socket(F.sio, sh_sio_socket_id(sock)));
    th_eio_get_hold(c);
    return sock;
}

START_TEST(test_deferred_connect_accepted)
{
    start();
    th_eio_t *c = open_client(0);
    sh_sio_socket_t *sock = deferred_connect(c, "40{\"defer\":true,\"greet\":1}");
    ck_assert_uint_eq(sh_sio_server_stats(F.sio)->pending, 1);
    ck_assert_uint_eq(sh_sio_server_stats(F.sio)->sockets, 0);
    /* Pending: it cannot send, and nothing has been answered. */
    F.in_call = true;
    ck_assert_int_eq(sh_sio_socket_emit(sock, "x", NULL, NULL, 0, NULL, NULL, NULL), -EPIPE);
    ck_assert_int_eq(sh_sio_socket_emit(sock, "x", NULL, NULL, 0, on_ack, &F, NULL), -EPIPE);
    ck_assert_int_eq(sh_sio_socket_send_msgs(sock, NULL, 0), -EPIPE);
    th_run_for(F.env.loop, 20);
    ck_assert_int_eq(F.connected, 0);
    /* Accepted: the answer and on_connected come from the loop, once. */
    ck_assert_int_eq(sh_sio_socket_accept(sock), 0);
    ck_assert_int_eq(sh_sio_socket_accept(sock), -EINVAL);
    ck_assert_int_eq(sh_sio_socket_refuse(sock, json_string("too late")), -EINVAL);
    ck_assert(!sh_sio_socket_connected(sock));
    F.in_call = false;
    ck_assert_int_eq(F.connected, 0);
    th_resp_t r = {0};
    ck_assert(th_eio_get_wait(c, &r, TH_WAIT_MS));
    ck_assert_int_eq(F.connected, 1);
    ck_assert_ptr_eq(F.sock, sock);
    /* on_connected got the CONNECT's payload, and what it sent follows
     * the answer. */
    ck_assert_str_eq(F.auth, "{\"defer\":true,\"greet\":1}");
    char want[128];
    snprintf(want, sizeof(want),
             "40{\"sid\":\"%s\"}\x1e"
             "42[\"welcome\",\"hi\"]",
             sh_sio_socket_id(sock));
    ck_assert_str_eq(sh_buf_peek(&r.body), want);
    th_resp_release(&r);
    const sh_sio_stats_t *st = sh_sio_server_stats(F.sio);
    ck_assert_uint_eq(st->pending, 0);
    ck_assert_uint_eq(st->sockets, 1);
    ck_assert_uint_eq(st->connects, 1);
    F.in_call = true;
    ck_assert_int_eq(sh_sio_socket_accept(sock), -EINVAL);
    F.in_call = false;
    /* Connected now: events flow. */
    post(c, "42[\"after\"]");
    ck_assert_int_eq(F.events, 1);
    stop();
}
END_TEST

/* Refuses sock's pending CONNECT with error (stolen; once only) and
 * checks the client's held GET gets want. */
static void refuse_expect(th_eio_t *c, sh_sio_socket_t *sock, json_t *error, const char *want)
{
    F.in_call = true;
    ck_assert_int_eq(sh_sio_socket_refuse(sock, error), 0);
    ck_assert_int_eq(sh_sio_socket_refuse(sock, NULL), -EINVAL);
    F.in_call = false;
    th_resp_t r = {0};
    ck_assert(th_eio_get_wait(c, &r, TH_WAIT_MS));
    ck_assert_str_eq(sh_buf_peek(&r.body), want);
    th_resp_release(&r);
}

START_TEST(test_deferred_connect_refused)
{
    start();
    th_eio_t *c = open_client(0);
    sh_sio_socket_t *sock = deferred_connect(c, "40/admin,{\"defer\":true}");
    refuse_expect(c, sock, json_pack("{s:s}", "message", "revoked"),
                  "44/admin,{\"message\":\"revoked\"}");
    /* It ends like any socket: on_disconnect once, from the loop. */
    wait_disconnects(1);
    ck_assert_str_eq(F.reason, "connect refused");
    ck_assert_int_eq(F.pending_ends, 1);
    ck_assert_int_eq(F.connected, 0);
    ck_assert_uint_eq(sh_sio_server_stats(F.sio)->connect_errors, 1);
    ck_assert_uint_eq(sh_sio_server_stats(F.sio)->pending, 0);
    /* Refused without an error: the default message; the session stays
     * usable for another try. */
    sock = deferred_connect(c, "40/admin,{\"defer\":true}");
    refuse_expect(c, sock, NULL, "44/admin,{\"message\":\"Not authorized\"}");
    wait_disconnects(2);
    char sid[64];
    ck_assert(th_sio_connect(c, "/admin", NULL, sid, sizeof(sid)));
    stop();
}
END_TEST

START_TEST(test_deferred_connect_session_goes)
{
    start();
    /* The client leaves while its CONNECT waits: on_disconnect, and the
     * socket is gone from both tables (what an answer that comes later
     * looks it up in). */
    th_eio_t *c = open_client(0);
    sh_sio_socket_t *sock = deferred_connect(c, "40{\"defer\":true}");
    char id[64];
    snprintf(id, sizeof(id), "%s", sh_sio_socket_id(sock));
    post(c, "1");
    wait_disconnects(1);
    ck_assert_str_eq(F.reason, "transport close");
    ck_assert_int_eq(F.pending_ends, 1);
    ck_assert_ptr_null(sh_sio_server_pending_socket(F.sio, id));
    ck_assert_uint_eq(sh_sio_server_stats(F.sio)->pending, 0);
    /* Accepted when its session is already closing: the session's end
     * comes first and the answer never goes out (no on_connected). */
    c = open_client(1);
    sock = deferred_connect(c, "40{\"defer\":true}");
    F.in_call = true;
    sh_eio_close(sh_sio_socket_session(sock));
    ck_assert_int_eq(sh_sio_socket_accept(sock), 0);
    F.in_call = false;
    wait_disconnects(2);
    th_run_for(F.env.loop, 10);
    ck_assert_int_eq(F.connected, 0);
    ck_assert_int_eq(F.pending_ends, 2);
    /* A packet for the namespace before its answer: an invalid state, the
     * session closes (as for a namespace not connected). */
    c = open_client(2);
    sock = deferred_connect(c, "40{\"defer\":true}");
    post(c, "42[\"early\"]");
    wait_disconnects(3);
    ck_assert_str_eq(F.reason, "forced close");
    ck_assert_int_eq(F.events, 0);
    ck_assert_int_eq(F.pending_ends, 3);
    stop();
}
END_TEST

START_TEST(test_deferred_connect_times_out)
{
    start_with(60);
    /* A CONNECT never answered closes its session after connect_timeout,
     * even once another namespace is connected (that stopped the
     * session's own timer). */
    char sid[64];
    th_eio_t *c = connected_client(0, sid, sizeof(sid));
    uint64_t t0 = sh_time_ms();
    sh_sio_socket_t *sock = deferred_connect(c, "40/admin,{\"defer\":true}");
    (void)sock;
    th_resp_t r = {0};
    ck_assert(th_eio_get_wait(c, &r, TH_WAIT_MS));
    ck_assert_uint_ge(sh_time_ms() - t0, 60);
    ck_assert_str_eq(sh_buf_peek(&r.body), "1");
    th_resp_release(&r);
    wait_disconnects(2);
    ck_assert_int_eq(F.pending_ends, 1);
    ck_assert_uint_eq(sh_eio_server_stats(F.eio)->sessions_closed, 1);
    /* Alone on its session, a pending CONNECT does not count as connected
     * either: the session goes within the timeout. */
    th_eio_t *d = open_client(1);
    t0 = sh_time_ms();
    deferred_connect(d, "40{\"defer\":true}");
    ck_assert(th_eio_get_wait(d, &r, TH_WAIT_MS));
    ck_assert_str_eq(sh_buf_peek(&r.body), "1");
    ck_assert_uint_lt(sh_time_ms() - t0, 1000);
    th_resp_release(&r);
    wait_disconnects(3);
    ck_assert_int_eq(F.pending_ends, 2);
    ck_assert_uint_eq(sh_sio_server_stats(F.sio)->pending, 0);
    stop();
}
END_TEST

START_TEST(test_attached_deferred_connect)
{
    start();
    /* A session attached from the outside (SSE) gets the answer the same
     * way: pending, then accepted ... */
    char sid[64];
    th_eio_t *c = open_client(0);
    ck_assert(th_sio_connect(c, "/admin", NULL, sid, sizeof(sid)));
    json_t *auth = json_pack("{s:b}", "defer", 1);
    sh_sio_socket_t *sock = sh_sio_server_attach(F.sio, sh_sio_socket_session(F.sock), "/", auth);
    ck_assert_ptr_nonnull(sock);
    ck_assert_ptr_eq(sock, F.pending);
    ck_assert(!sh_sio_socket_connected(sock));
    F.in_call = true;
    ck_assert_int_eq(sh_sio_socket_accept(sock), 0);
    F.in_call = false;
    char want[64];
    snprintf(want, sizeof(want), "40{\"sid\":\"%s\"}", sh_sio_socket_id(sock));
    expect_poll(c, want);
    ck_assert(sh_sio_socket_connected(sock));
    ck_assert_str_eq(F.auth, "{\"defer\":true}");
    /* ... or refused, which ends an attached session: its client sends
     * no packets, so it cannot try again. */
    th_eio_t *d = open_client(1);
    ck_assert(th_sio_connect(d, "/admin", NULL, sid, sizeof(sid)));
    sock = sh_sio_server_attach(F.sio, sh_sio_socket_session(F.sock), "/", auth);
    ck_assert_ptr_eq(sock, F.pending);
    F.in_call = true;
    ck_assert_int_eq(sh_sio_socket_refuse(sock, NULL), 0);
    F.in_call = false;
    expect_poll(d, "44{\"message\":\"Not authorized\"}");
    expect_poll(d, "1");
    wait_disconnects(2);
    ck_assert_int_eq(F.pending_ends, 1);
    json_decref(auth);
    stop();
}
END_TEST

/* ---- disconnects ---- */

START_TEST(test_client_disconnect)
{
    start();
    char sid[64], sid2[64];
    th_eio_t *c = connected_client(0, sid, sizeof(sid));
    ck_assert(th_sio_connect(c, "/admin", NULL, sid2, sizeof(sid2)));
    sh_sio_socket_t *admin = F.sock;
    post(c, "41/admin,");
    wait_disconnects(1);
    th_run_for(F.env.loop, 10);
    ck_assert_int_eq(F.disconnects, 1);
    ck_assert_ptr_eq(F.gone, admin);
    ck_assert_str_eq(F.reason, "client namespace disconnect");
    ck_assert_ptr_null(sh_sio_server_socket(F.sio, sid2));
    ck_assert_ptr_nonnull(sh_sio_server_socket(F.sio, sid));
    ck_assert_uint_eq(sh_sio_server_stats(F.sio)->sockets, 1);
    /* "/" still works, and "/admin" can be joined again. */
    post(c, "42[\"ping\"]");
    ck_assert_int_eq(F.events, 1);
    char sid3[64];
    ck_assert(th_sio_connect(c, "/admin", NULL, sid3, sizeof(sid3)));
    ck_assert_str_ne(sid3, sid2);
    ck_assert_int_eq(F.disconnects, 1);
    stop();
}
END_TEST

START_TEST(test_server_disconnect)
{
    start();
    char sid[64], sid2[64];
    th_eio_t *c = connected_client(0, sid, sizeof(sid));
    ck_assert(th_sio_connect(c, "/admin", NULL, sid2, sizeof(sid2)));
    sh_sio_socket_t *admin = F.sock;
    F.in_call = true;
    sh_sio_socket_disconnect(admin, false);
    ck_assert(!sh_sio_socket_connected(admin));
    /* Until on_disconnect the socket may still be used; it refuses. */
    ck_assert_int_eq(sh_sio_socket_emit(admin, "x", NULL, NULL, 0, on_ack, &F, NULL), -EPIPE);
    ck_assert_int_eq(sh_sio_socket_ack(admin, 1, NULL, NULL, 0), -EPIPE);
    ck_assert_int_eq(sh_sio_socket_send_msgs(admin, NULL, 0), -EPIPE);
    sh_sio_socket_disconnect(admin, false); /* twice is harmless */
    F.in_call = false;
    ck_assert_int_eq(F.disconnects, 0);
    expect_poll(c, "41/admin,");
    wait_disconnects(1);
    ck_assert_str_eq(F.reason, "server namespace disconnect");
    ck_assert_int_eq(F.ack_calls, 0);
    /* With the session: the DISCONNECT packet still reaches the client,
     * then, in the next response (as from Node), the close packet. */
    th_resp_t r = {0};
    th_eio_get_hold(c);
    F.in_call = true;
    sh_sio_socket_disconnect(sh_sio_server_socket(F.sio, sid), true);
    F.in_call = false;
    ck_assert(th_eio_get_wait(c, &r, TH_WAIT_MS));
    ck_assert_str_eq(sh_buf_peek(&r.body), "41");
    th_resp_release(&r);
    ck_assert(th_eio_poll(c, &r, TH_WAIT_MS));
    ck_assert_str_eq(sh_buf_peek(&r.body), "1");
    wait_disconnects(2);
    ck_assert_str_eq(F.reason, "server namespace disconnect");
    ck_assert_uint_eq(sh_eio_server_stats(F.eio)->sessions_closed, 1);
    th_resp_release(&r);
    stop();
}
END_TEST

START_TEST(test_send_msgs_and_event_array)
{
    start();
    char sid[64];
    th_eio_t *c = connected_client(0, sid, sizeof(sid));
    sh_msg_t *m = sh_msg_new("42[\"pre\"]", 9, false);
    F.in_call = true;
    ck_assert_int_eq(sh_sio_socket_send_msgs(F.sock, &m, 1), 0);
    ck_assert_int_eq(sh_sio_socket_send_msgs(F.sock, &m, 1), 0);
    F.in_call = false;
    ck_assert_uint_eq(m->refs, 3); /* references, not copies */
    expect_poll(c, "42[\"pre\"]\x1e"
                   "42[\"pre\"]");
    th_run_for(F.env.loop, 10);
    ck_assert_uint_eq(m->refs, 1);
    sh_msg_unref(m);
    json_t *args = json_pack("[i,s]", 1, "a");
    json_t *arr = sh_sio_event_array("ev", args);
    char out[128];
    dump(arr, out, sizeof(out));
    ck_assert_str_eq(out, "[\"ev\",1,\"a\"]");
    json_decref(arr);
    arr = sh_sio_event_array("solo", NULL);
    dump(arr, out, sizeof(out));
    ck_assert_str_eq(out, "[\"solo\"]");
    json_decref(arr);
    json_decref(args);
    stop();
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("socketio server");
    TCase *tc = tcase_create("server");
    tcase_set_timeout(tc, 8);
    tcase_add_test(tc, test_connect_ack_has_its_own_sid);
    tcase_add_test(tc, test_connect_errors);
    tcase_add_test(tc, test_events_and_client_acks);
    tcase_add_test(tc, test_text_events);
    tcase_add_test(tc, test_server_acks_run_once);
    tcase_add_test(tc, test_acks_fail_when_session_closes);
    tcase_add_test(tc, test_binary_event_reassembled);
    tcase_add_test(tc, test_text_while_attachments_due_closes_session);
    tcase_add_test(tc, test_connect_timeout);
    tcase_add_test(tc, test_deferred_connect_accepted);
    tcase_add_test(tc, test_deferred_connect_refused);
    tcase_add_test(tc, test_deferred_connect_session_goes);
    tcase_add_test(tc, test_deferred_connect_times_out);
    tcase_add_test(tc, test_attached_deferred_connect);
    tcase_add_test(tc, test_client_disconnect);
    tcase_add_test(tc, test_server_disconnect);
    tcase_add_test(tc, test_send_msgs_and_event_array);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
