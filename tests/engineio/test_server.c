/* The Engine.IO server on a real HTTP server (127.0.0.1, port 0), driven
 * by hand-written polling and WebSocket clients on the same loop. The
 * handler counts on_open / on_message / on_close and checks that none runs
 * inside a call the test made; every test closes its sessions and frees
 * everything (the sanitizer build turns a leak into a failure). */
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
#include "transport/ws_frame.h"

#define PATH    "/engine.io/"
#define MAX_GOT 32

typedef struct fix {
    th_env_t env;
    sh_eio_server_t *srv;
    bool in_call;
    int opens, messages, closes;
    sh_eio_session_t *last; /* the last session opened */
    sh_buf_t got[MAX_GOT];
    bool binary[MAX_GOT];
    char close_reason[64];
    sh_eio_session_t *closed;
    int send_on_open; /* messages on_open sends */
    bool echo;        /* on_message sends the message back */
    bool close_in_message;
    th_eio_t clients[4];
    th_conn_t ws[2];
} fix_t;

static fix_t F;

static void on_open(sh_eio_session_t *s, void *data)
{
    ck_assert_msg(!F.in_call, "on_open ran inside a call made by the test");
    ck_assert_ptr_eq(data, &F);
    F.opens++;
    F.last = s;
    for (int i = 0; i < F.send_on_open; i++) {
        char t[16];
        int n = snprintf(t, sizeof(t), "hello%d", i);
        ck_assert_int_eq(sh_eio_send(s, sh_eio_msg_text(SH_EIO_MESSAGE, t, (size_t)n)), 0);
    }
}

static void on_message(sh_eio_session_t *s, const char *msg, size_t len, bool binary, void *data)
{
    ck_assert_msg(!F.in_call, "on_message ran inside a call made by the test");
    ck_assert_int_lt(F.messages, MAX_GOT);
    sh_buf_append(&F.got[F.messages], msg, len);
    F.binary[F.messages] = binary;
    F.messages++;
    if (F.echo)
        sh_eio_send(s, binary ? sh_eio_msg_binary(msg, len)
                              : sh_eio_msg_text(SH_EIO_MESSAGE, msg, len));
    if (F.close_in_message) {
        int before = F.closes;
        sh_eio_close(s);
        ck_assert_int_eq(F.closes, before); /* deferred, even from a callback */
    }
}

static void on_close(sh_eio_session_t *s, const char *reason, void *data)
{
    ck_assert_msg(!F.in_call, "on_close ran inside a call made by the test");
    F.closes++;
    F.closed = s;
    snprintf(F.close_reason, sizeof(F.close_reason), "%s", reason);
    if (F.last == s)
        F.last = NULL;
}

static const sh_eio_handler_t handler = {
    .on_open = on_open,
    .on_message = on_message,
    .on_close = on_close,
};

static sh_eio_options_t default_opts(void)
{
    return (sh_eio_options_t){
        .path = PATH,
        .transports = SH_EIO_TRANSPORT_POLLING | SH_EIO_TRANSPORT_WEBSOCKET,
        .ping_interval = 10000,
        .ping_timeout = 5000,
        .upgrade_timeout = 1000,
        .max_payload = 1000,
        .output_limit = 100000,
        .origins = NULL,
    };
}

static void start_with(const sh_eio_options_t *o)
{
    memset(&F, 0, sizeof(F));
    th_env_start(&F.env);
    sh_buf_t err = SH_BUF_INIT;
    F.srv = sh_eio_server_new(F.env.loop, F.env.http, o, &handler, &F, &err);
    ck_assert_msg(F.srv != NULL, "%s", sh_buf_peek(&err));
    sh_buf_release(&err);
}

static void start(void)
{
    sh_eio_options_t o = default_opts();
    start_with(&o);
}

static bool none_active(void *arg)
{
    return sh_eio_server_active(F.srv) == 0;
}

/* Ends a test the way the daemon shuts down: close every session, let the
 * close packets and frames go out, drop the clients, free HTTP, then the
 * server. Every opened session must have been closed exactly once. */
static void stop(void)
{
    sh_eio_server_close_all(F.srv);
    ck_assert_msg(th_run_until(F.env.loop, none_active, NULL, TH_WAIT_MS),
                  "%zu sessions still active", sh_eio_server_active(F.srv));
    for (int i = 0; i < 4; i++)
        th_eio_close(&F.clients[i]);
    for (int i = 0; i < 2; i++)
        th_conn_close(&F.ws[i]);
    ck_assert(th_env_wait_idle(&F.env, TH_WAIT_MS));
    sh_http_free(F.env.http);
    F.env.http = NULL;
    sh_loop_run_deferred(F.env.loop);
    sh_eio_server_free(F.srv);
    sh_loop_run_deferred(F.env.loop);
    th_env_stop(&F.env);
    ck_assert_int_eq(F.closes, F.opens);
    for (int i = 0; i < MAX_GOT; i++)
        sh_buf_release(&F.got[i]);
}

static bool n_closes(void *arg)
{
    return F.closes >= *(int *)arg;
}

static void wait_closes(int n)
{
    ck_assert_msg(th_run_until(F.env.loop, n_closes, &n, TH_WAIT_MS), "%d of %d closes", F.closes,
                  n);
}

static bool n_messages(void *arg)
{
    return F.messages >= *(int *)arg;
}

static void wait_messages(int n)
{
    ck_assert_msg(th_run_until(F.env.loop, n_messages, &n, TH_WAIT_MS), "%d of %d messages",
                  F.messages, n);
}

static int send_text(sh_eio_session_t *s, const char *text)
{
    F.in_call = true;
    int rc = sh_eio_send(s, sh_eio_msg_text(SH_EIO_MESSAGE, text, strlen(text)));
    F.in_call = false;
    return rc;
}

static th_eio_t *open_client(int i)
{
    th_resp_t r = {0};
    ck_assert_int_eq(th_eio_open(&F.clients[i], &F.env, PATH, NULL, &r), 200);
    th_resp_release(&r);
    return &F.clients[i];
}

/* Checks an error answer: status and the exact JSON body. */
static void expect_error(const char *raw, int status, int code, const char *message)
{
    th_resp_t r = {0};
    ck_assert_msg(th_http_exchange(&F.env, raw, strlen(raw), &r) == status, "%s: status %d", raw,
                  r.status);
    char want[256];
    snprintf(want, sizeof(want), "{\"code\":%d,\"message\":\"%s\"}", code, message);
    ck_assert_msg(!strcmp(sh_buf_peek(&r.body), want), "%s: body %s", raw, sh_buf_peek(&r.body));
    th_resp_release(&r);
}

/* ---- handshake ---- */

START_TEST(test_polling_handshake)
{
    start();
    F.send_on_open = 2;
    th_eio_t *c = &F.clients[0];
    th_resp_t r = {0};
    ck_assert_int_eq(th_eio_open(c, &F.env, PATH, NULL, &r), 200);
    char v[128];
    ck_assert_str_eq(th_resp_header(&r, "Content-Type", v, sizeof(v)), "text/plain; charset=UTF-8");
    ck_assert_str_eq(th_resp_header(&r, "Cache-Control", v, sizeof(v)), "no-store");
    ck_assert_ptr_null(th_resp_header(&r, "Access-Control-Allow-Origin", v, sizeof(v)));
    json_t *j = th_eio_open_json(&r);
    ck_assert_ptr_nonnull(j);
    ck_assert_uint_eq(strlen(c->sid), SH_ID_LEN);
    json_t *up = json_object_get(j, "upgrades");
    ck_assert_uint_eq(json_array_size(up), 1);
    ck_assert_str_eq(json_string_value(json_array_get(up, 0)), "websocket");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "pingInterval")), 10000);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "pingTimeout")), 5000);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "maxPayload")), 1000);
    ck_assert_uint_eq(json_object_size(j), 5);
    json_decref(j);
    /* What on_open sent rides along with the open packet. */
    const char *body = sh_buf_peek(&r.body);
    const char *rest = strchr(body, '\x1e');
    ck_assert_ptr_nonnull(rest);
    ck_assert_str_eq(rest, "\x1e"
                           "4hello0\x1e"
                           "4hello1");
    ck_assert_int_eq(F.opens, 1);
    ck_assert_ptr_nonnull(F.last);
    ck_assert_str_eq(sh_eio_session_sid(F.last), c->sid);
    ck_assert_str_eq(sh_eio_session_transport(F.last), "polling");
    ck_assert(!strncmp(sh_eio_session_peer(F.last), "127.0.0.1:", 10));
    sh_eio_session_set_data(F.last, &F);
    ck_assert_ptr_eq(sh_eio_session_data(F.last), &F);
    const sh_eio_stats_t *st = sh_eio_server_stats(F.srv);
    ck_assert_uint_eq(st->sessions_opened, 1);
    ck_assert_uint_eq(st->polling, 1);
    ck_assert_uint_eq(st->websocket, 0);
    /* A second client gets another sid. */
    th_eio_t *c2 = open_client(1);
    ck_assert_str_ne(c2->sid, c->sid);
    ck_assert_int_eq(F.opens, 2);
    th_resp_release(&r);
    stop();
    ck_assert_str_eq(F.close_reason, "server shutting down");
}
END_TEST

START_TEST(test_polling_only_offers_no_upgrade)
{
    sh_eio_options_t o = default_opts();
    o.transports = SH_EIO_TRANSPORT_POLLING;
    start_with(&o);
    th_resp_t r = {0};
    ck_assert_int_eq(th_eio_open(&F.clients[0], &F.env, PATH, NULL, &r), 200);
    json_t *j = th_eio_open_json(&r);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "upgrades")), 0);
    json_decref(j);
    th_resp_release(&r);
    expect_error("GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n\r\n", 400, 0,
                 "Transport unknown");
    stop();
}
END_TEST

/* ---- polling data ---- */

START_TEST(test_post_packets_reach_on_message_in_order)
{
    start();
    th_eio_t *c = open_client(0);
    ck_assert_int_eq(th_eio_post_str(c, "4one\x1e"
                                        "4two\x1e"
                                        "bAQID\x1e"
                                        "6\x1e"
                                        "4\x1e"
                                        "4three"),
                     200);
    ck_assert_int_eq(F.messages, 4 + 1);
    ck_assert_str_eq(sh_buf_peek(&F.got[0]), "one");
    ck_assert_str_eq(sh_buf_peek(&F.got[1]), "two");
    ck_assert(F.binary[2]);
    ck_assert_uint_eq(sh_buf_avail(&F.got[2]), 3);
    ck_assert(!memcmp(sh_buf_peek(&F.got[2]), "\x01\x02\x03", 3));
    ck_assert_uint_eq(sh_buf_avail(&F.got[3]), 0); /* "4": an empty message */
    ck_assert(!F.binary[3]);
    ck_assert_str_eq(sh_buf_peek(&F.got[4]), "three");
    const sh_eio_stats_t *st = sh_eio_server_stats(F.srv);
    ck_assert_uint_eq(st->packets_in, 6);
    /* A client ping is answered with a pong (lenient, as Node's is). */
    ck_assert_int_eq(th_eio_post_str(c, "2x"), 200);
    th_resp_t r = {0};
    ck_assert(th_eio_poll(c, &r, TH_WAIT_MS));
    ck_assert_str_eq(sh_buf_peek(&r.body), "3x");
    th_resp_release(&r);
    ck_assert_int_eq(F.closes, 0);
    stop();
}
END_TEST

START_TEST(test_bad_posts_close_the_session)
{
    start();
    th_eio_t *c = open_client(0);
    th_resp_t r = {0};
    /* Malformed payloads are rejected whole: no packet of it is acted on. */
    ck_assert_int_eq(th_eio_post(c,
                                 "4ok\x1e"
                                 "9bad",
                                 8, &r),
                     400);
    ck_assert_str_eq(sh_buf_peek(&r.body), "{\"code\":3,\"message\":\"Bad request\"}");
    ck_assert_int_eq(F.messages, 0);
    wait_closes(1);
    ck_assert_str_eq(F.close_reason, "parse error");
    ck_assert_int_eq(th_eio_post(c, "4late", 5, &r), 400);
    ck_assert_str_eq(sh_buf_peek(&r.body), "{\"code\":1,\"message\":\"Session ID unknown\"}");
    th_eio_close(c);
    /* Over max_payload: 413. */
    c = open_client(1);
    char *big = malloc(1200);
    memset(big, 'a', 1200);
    big[0] = '4';
    ck_assert_int_eq(th_eio_post(c, big, 1200, &r), 413);
    ck_assert_str_eq(sh_buf_peek(&r.body), "{\"code\":3,\"message\":\"Payload too large\"}");
    free(big);
    wait_closes(2);
    ck_assert_str_eq(F.close_reason, "transport error");
    /* A packet type a client must not send (open, upgrade over polling). */
    c = open_client(2);
    ck_assert_int_eq(th_eio_post_str(c, "4fine\x1e"
                                        "0"),
                     200);
    ck_assert_int_eq(F.messages, 1);
    wait_closes(3);
    ck_assert_str_eq(F.close_reason, "parse error");
    /* A client close packet. */
    c = open_client(3);
    ck_assert_int_eq(th_eio_post_str(c, "1"), 200);
    wait_closes(4);
    ck_assert_str_eq(F.close_reason, "transport close");
    th_resp_release(&r);
    stop();
}
END_TEST

START_TEST(test_get_held_until_send)
{
    start();
    th_eio_t *c = open_client(0);
    th_resp_t r = {0};
    th_eio_get_hold(c);
    ck_assert_ptr_nonnull(F.last);
    ck_assert_int_eq(send_text(F.last, "x"), 0);
    ck_assert(th_eio_get_wait(c, &r, TH_WAIT_MS));
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(sh_buf_peek(&r.body), "4x");
    /* Sent while no GET is out: the next GET returns at once. */
    ck_assert_int_eq(send_text(F.last, "y"), 0);
    ck_assert(th_eio_poll(c, &r, 200));
    ck_assert_str_eq(sh_buf_peek(&r.body), "4y");
    th_resp_release(&r);
    stop();
    ck_assert_str_eq(F.close_reason, "server shutting down");
}
END_TEST

static bool packets_out_reached(void *arg)
{
    return sh_eio_server_stats(F.srv)->packets_out >= *(uint64_t *)arg;
}

START_TEST(test_poll_answers_carry_at_most_16_packets)
{
    /* python-engineio drops a session whose payload has more than 16
     * packets: the rest waits for the next poll. A heartbeat overtakes a
     * backlog, so it reaches the client within its timeout. */
    sh_eio_options_t o = default_opts();
    o.ping_interval = 50;
    o.ping_timeout = 5000;
    start_with(&o);
    th_eio_t *c = open_client(0);
    sh_buf_t want = SH_BUF_INIT;
    for (int i = 0; i < 20; i++) {
        char t[8];
        snprintf(t, sizeof(t), "m%d", i);
        ck_assert_int_eq(send_text(F.last, t), 0);
    }
    uint64_t with_ping = sh_eio_server_stats(F.srv)->packets_out + 1;
    ck_assert(th_run_until(F.env.loop, packets_out_reached, &with_ping, TH_WAIT_MS));
    sh_buf_append_str(&want, "2");
    for (int i = 0; i < 15; i++)
        sh_buf_appendf(&want,
                       "\x1e"
                       "4m%d",
                       i);
    th_resp_t r = {0};
    ck_assert(th_eio_poll(c, &r, TH_WAIT_MS));
    ck_assert_str_eq(sh_buf_peek(&r.body), sh_buf_peek(&want));
    ck_assert(th_eio_poll(c, &r, TH_WAIT_MS));
    ck_assert_str_eq(sh_buf_peek(&r.body), "4m15\x1e"
                                           "4m16\x1e"
                                           "4m17\x1e"
                                           "4m18\x1e"
                                           "4m19");
    ck_assert_int_eq(F.closes, 0);
    sh_buf_release(&want);
    th_resp_release(&r);
    stop();
}
END_TEST

START_TEST(test_sends_in_one_iteration_share_one_payload)
{
    start();
    th_eio_t *c = open_client(0);
    th_resp_t r = {0};
    th_eio_get_hold(c);
    sh_msg_t *bin = sh_eio_msg_binary("\xff\x00", 2);
    sh_msg_ref(bin);
    F.in_call = true;
    ck_assert_int_eq(sh_eio_send(F.last, sh_eio_msg_text(SH_EIO_MESSAGE, "a", 1)), 0);
    ck_assert_int_eq(sh_eio_send(F.last, bin), 0);
    ck_assert_int_eq(sh_eio_send(F.last, sh_eio_msg_text(SH_EIO_MESSAGE, "b", 1)), 0);
    F.in_call = false;
    ck_assert(th_eio_get_wait(c, &r, TH_WAIT_MS));
    ck_assert_str_eq(sh_buf_peek(&r.body), "4a\x1e"
                                           "b/wA=\x1e"
                                           "4b");
    /* The response is built over the messages (no copies): once it is
     * sent, only our reference is left. */
    ck_assert(th_wait_refs(F.env.loop, &bin->refs, 1, TH_WAIT_MS));
    sh_msg_unref(bin);
    th_resp_release(&r);
    stop();
}
END_TEST

START_TEST(test_overlapping_get_is_an_error)
{
    start();
    th_eio_t *c = open_client(0);
    th_resp_t r = {0};
    th_eio_get_hold(c);
    th_conn_t other;
    th_conn_connect(&other, F.env.loop, F.env.port);
    char target[128];
    snprintf(target, sizeof(target), PATH "?EIO=4&transport=polling&sid=%s", c->sid);
    th_http_send(&other, "GET", target, NULL, NULL, 0);
    ck_assert(th_http_read(&other, &r, TH_WAIT_MS));
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(sh_buf_peek(&r.body), "{\"code\":3,\"message\":\"Bad request\"}");
    /* The held one gets the close packet. */
    ck_assert(th_eio_get_wait(c, &r, TH_WAIT_MS));
    ck_assert_str_eq(sh_buf_peek(&r.body), "1");
    wait_closes(1);
    ck_assert_str_eq(F.close_reason, "transport error");
    th_conn_close(&other);
    th_resp_release(&r);
    stop();
}
END_TEST

/* ---- heartbeat ---- */

START_TEST(test_ping_and_ping_timeout)
{
    sh_eio_options_t o = default_opts();
    /* A ping timeout roomy enough for a loaded machine to pong in time;
     * the times are checked from before the request that arms each timer,
     * so they are lower bounds whatever the load. */
    o.ping_interval = 50;
    o.ping_timeout = 300;
    start_with(&o);
    /* From before the handshake: the ping is due ping_interval after the
     * session opened, which may be well into open_client on a busy host. */
    uint64_t t0 = sh_time_ms();
    th_eio_t *c = open_client(0);
    th_resp_t r = {0};
    ck_assert(th_eio_poll(c, &r, TH_WAIT_MS));
    ck_assert_uint_ge(sh_time_ms() - t0, 50);
    ck_assert_str_eq(sh_buf_peek(&r.body), "2");
    /* The pong re-arms the ping. */
    t0 = sh_time_ms();
    ck_assert_int_eq(th_eio_post_str(c, "3"), 200);
    ck_assert(th_eio_poll(c, &r, TH_WAIT_MS));
    ck_assert_uint_ge(sh_time_ms() - t0, 50);
    ck_assert_str_eq(sh_buf_peek(&r.body), "2");
    ck_assert_int_eq(F.closes, 0);
    /* No pong this time: closed after ping_timeout; the held GET ends with
     * a noop (the client is the one that went quiet). */
    th_eio_get_send(c);
    wait_closes(1);
    ck_assert_uint_ge(sh_time_ms() - t0, 50 + 300); /* t0: before the pong */
    ck_assert_str_eq(F.close_reason, "ping timeout");
    ck_assert(th_eio_get_wait(c, &r, TH_WAIT_MS));
    ck_assert_str_eq(sh_buf_peek(&r.body), "6");
    ck_assert_int_eq(th_eio_post(c, "3", 1, &r), 400);
    ck_assert_str_eq(sh_buf_peek(&r.body), "{\"code\":1,\"message\":\"Session ID unknown\"}");
    th_resp_release(&r);
    stop();
}
END_TEST

/* ---- slow clients ---- */

START_TEST(test_output_limit_closes_session_that_never_polls)
{
    sh_eio_options_t o = default_opts();
    o.output_limit = 100;
    start_with(&o);
    open_client(0);
    sh_eio_session_t *s = F.last;
    char text[40];
    memset(text, 'q', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    ck_assert_int_eq(send_text(s, text), 0); /* 40 bytes queued */
    ck_assert_int_eq(send_text(s, text), 0); /* 80 */
    ck_assert_int_eq(sh_eio_server_stats(F.srv)->slow_dropped, 0);
    ck_assert_int_eq(send_text(s, text), 0); /* 120: past the limit, dropped */
    ck_assert_int_eq(sh_eio_server_stats(F.srv)->slow_dropped, 1);
    ck_assert_int_eq(F.closes, 0); /* deferred */
    ck_assert_int_eq(send_text(s, "late"), -EPIPE);
    wait_closes(1);
    ck_assert_str_eq(F.close_reason, "transport error");
    ck_assert_ptr_eq(F.closed, s);
    th_resp_t r = {0};
    ck_assert(th_eio_poll(&F.clients[0], &r, TH_WAIT_MS));
    ck_assert_int_eq(r.status, 400);
    th_resp_release(&r);
    th_run_for(F.env.loop, 20);
    ck_assert_int_eq(F.closes, 1);
    stop();
}
END_TEST

START_TEST(test_output_limit_passed_by_a_ping)
{
    /* The queue sits exactly at the limit; the server's own ping pushes it
     * over. The session ends inside the ping timer: no pong timer may be
     * left running on the freed session. */
    sh_eio_options_t o = default_opts();
    o.output_limit = 100;
    o.ping_interval = 30;
    o.ping_timeout = 30;
    start_with(&o);
    open_client(0);
    char text[100];
    memset(text, 'q', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    ck_assert_int_eq(send_text(F.last, text), 0); /* "4" + 99 = 100 bytes: at the limit */
    ck_assert_int_eq(sh_eio_server_stats(F.srv)->slow_dropped, 0);
    wait_closes(1);
    ck_assert_str_eq(F.close_reason, "transport error");
    ck_assert_int_eq(sh_eio_server_stats(F.srv)->slow_dropped, 1);
    /* Past when a pong timer would fire. */
    th_run_for(F.env.loop, 80);
    ck_assert_int_eq(F.closes, 1);
    stop();
}
END_TEST

/* ---- server-side close ---- */

START_TEST(test_close_answers_held_get_with_close_packet)
{
    start();
    th_eio_t *c = open_client(0);
    th_resp_t r = {0};
    th_eio_get_hold(c);
    sh_eio_session_t *s = F.last;
    F.in_call = true;
    sh_eio_close(s);
    sh_eio_close(s); /* twice is harmless */
    F.in_call = false;
    ck_assert_int_eq(F.closes, 0);
    ck_assert_int_eq(sh_eio_send(s, sh_eio_msg_text(SH_EIO_MESSAGE, "x", 1)), -EPIPE);
    ck_assert(th_eio_get_wait(c, &r, TH_WAIT_MS));
    ck_assert_str_eq(sh_buf_peek(&r.body), "1");
    wait_closes(1);
    ck_assert_str_eq(F.close_reason, "forced close");
    ck_assert_ptr_eq(F.closed, s);
    th_resp_release(&r);
    /* A session closed from inside on_message: the POST still gets "ok".
     * No GET was held, so the next one collects the close packet (as from
     * Node's engine.io); only then is the sid unknown. */
    c = open_client(1);
    F.close_in_message = true;
    ck_assert_int_eq(th_eio_post_str(c, "4bye\x1e"
                                        "4never"),
                     200);
    ck_assert_int_eq(F.messages, 1);
    wait_closes(2);
    ck_assert_str_eq(F.close_reason, "forced close");
    ck_assert(th_eio_poll(c, &r, TH_WAIT_MS));
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(sh_buf_peek(&r.body), "1");
    th_resp_release(&r);
    ck_assert(th_eio_poll(c, &r, TH_WAIT_MS));
    ck_assert_int_eq(r.status, 400);
    th_resp_release(&r);
    stop();
}
END_TEST

START_TEST(test_close_delivers_what_was_queued_first)
{
    /* A last message and the close in the same iteration (a Socket.IO
     * server disconnect does this): the held GET gets the message, the
     * next GET the close packet, never both in one payload (Node's
     * engine.io drains its buffer before it closes; socket.io-client
     * would otherwise see the transport close before the DISCONNECT). */
    start();
    th_eio_t *c = open_client(0);
    th_resp_t r = {0};
    th_eio_get_hold(c);
    ck_assert_int_eq(send_text(F.last, "last"), 0);
    F.in_call = true;
    sh_eio_close(F.last);
    F.in_call = false;
    ck_assert(th_eio_get_wait(c, &r, TH_WAIT_MS));
    ck_assert_str_eq(sh_buf_peek(&r.body), "4last");
    th_resp_release(&r);
    wait_closes(1);
    ck_assert(th_eio_poll(c, &r, TH_WAIT_MS));
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(sh_buf_peek(&r.body), "1");
    th_resp_release(&r);
    ck_assert(th_eio_poll(c, &r, TH_WAIT_MS));
    ck_assert_int_eq(r.status, 400);
    th_resp_release(&r);
    /* On server shutdown the queue is delivered too, then a noop rather
     * than a close packet, so that clients reconnect to the next daemon. */
    c = open_client(1);
    th_eio_get_hold(c);
    ck_assert_int_eq(send_text(F.last, "bye"), 0);
    sh_eio_server_close_all(F.srv);
    ck_assert(th_eio_get_wait(c, &r, TH_WAIT_MS));
    ck_assert_str_eq(sh_buf_peek(&r.body), "4bye\x1e"
                                           "6");
    wait_closes(2);
    ck_assert_str_eq(F.close_reason, "server shutting down");
    th_resp_release(&r);
    stop();
}
END_TEST

START_TEST(test_close_with_no_get_held_keeps_the_queue_for_the_next_gets)
{
    /* Closed between two polls: the session stays reachable until its
     * client has collected everything (16 packets a response), then the
     * close packet. */
    start();
    th_eio_t *c = open_client(0);
    th_resp_t r = {0};
    for (int i = 0; i < 20; i++) {
        char t[8];
        snprintf(t, sizeof(t), "m%d", i);
        ck_assert_int_eq(send_text(F.last, t), 0);
    }
    F.in_call = true;
    sh_eio_close(F.last);
    F.in_call = false;
    wait_closes(1);
    ck_assert_int_eq(sh_eio_server_stats(F.srv)->polling, 0);
    /* "4m0" RS "4m1" ...: the packets of [from, to). */
    char want[256];
    for (int part = 0; part < 2; part++) {
        int from = part ? 16 : 0, to = part ? 20 : 16;
        size_t n = 0;
        for (int i = from; i < to; i++)
            n += (size_t)snprintf(want + n, sizeof(want) - n, "%s4m%d", i > from ? "\x1e" : "", i);
        ck_assert(th_eio_poll(c, &r, TH_WAIT_MS));
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(sh_buf_peek(&r.body), want);
        th_resp_release(&r);
    }
    ck_assert(th_eio_poll(c, &r, TH_WAIT_MS));
    ck_assert_str_eq(sh_buf_peek(&r.body), "1");
    th_resp_release(&r);
    ck_assert(th_eio_poll(c, &r, TH_WAIT_MS));
    ck_assert_int_eq(r.status, 400);
    th_resp_release(&r);
    ck_assert_int_eq(sh_eio_server_active(F.srv), 0);
    stop();
}
END_TEST

START_TEST(test_lingering_session_ends_on_client_close_timeout_or_shutdown)
{
    /* Default heartbeat: the wait (ping_interval + ping_timeout) outlasts
     * anything a loaded machine does between two steps. */
    start();
    /* The client's own close packet ends the wait; its other packets are
     * not delivered (the session is over). */
    th_eio_t *c = open_client(0);
    th_resp_t r = {0};
    ck_assert_int_eq(send_text(F.last, "unread"), 0);
    sh_eio_close(F.last);
    wait_closes(1);
    ck_assert_int_eq(th_eio_post_str(c, "4late\x1e"
                                        "1"),
                     200);
    ck_assert_int_eq(F.messages, 0);
    ck_assert(th_eio_poll(c, &r, TH_WAIT_MS));
    ck_assert_int_eq(r.status, 400);
    th_resp_release(&r);
    /* A lingering session cannot be upgraded. */
    c = open_client(1);
    sh_eio_close(F.last);
    wait_closes(2);
    char raw[256];
    snprintf(raw, sizeof(raw),
             "GET /engine.io/?EIO=4&transport=websocket&sid=%s HTTP/1.1\r\nHost: x\r\n"
             "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
             c->sid);
    expect_error(raw, 400, 3, "Bad request");
    /* A shutdown does not wait for lingering sessions. */
    c = open_client(2);
    ck_assert_int_eq(send_text(F.last, "never collected"), 0);
    sh_eio_close(F.last);
    wait_closes(3);
    ck_assert_int_eq(sh_eio_server_active(F.srv), 2);
    sh_eio_server_close_all(F.srv);
    ck_assert_int_eq(sh_eio_server_active(F.srv), 0);
    stop();

    /* Uncollected: gone after ping_interval + ping_timeout. The loop does
     * not run between the handshake and the close, so no heartbeat timer
     * can end the session first. */
    sh_eio_options_t o = default_opts();
    o.ping_interval = 200;
    o.ping_timeout = 100;
    start_with(&o);
    c = open_client(0);
    sh_eio_close(F.last);
    ck_assert_int_eq(sh_eio_server_active(F.srv), 1);
    wait_closes(1);
    ck_assert(th_run_until(F.env.loop, none_active, NULL, TH_WAIT_MS));
    ck_assert(th_eio_poll(c, &r, TH_WAIT_MS));
    ck_assert_int_eq(r.status, 400);
    th_resp_release(&r);
    stop();
}
END_TEST

/* ---- request errors ---- */

START_TEST(test_request_errors)
{
    start();
    th_eio_t *c = open_client(0);
    expect_error("GET /engine.io/?EIO=4&transport=polling&sid=nope HTTP/1.1\r\nHost: x\r\n\r\n",
                 400, 1, "Session ID unknown");
    expect_error("GET /engine.io/?EIO=4&transport=carrier-pigeon HTTP/1.1\r\nHost: x\r\n\r\n", 400,
                 0, "Transport unknown");
    expect_error("GET /engine.io/?EIO=4 HTTP/1.1\r\nHost: x\r\n\r\n", 400, 0, "Transport unknown");
    expect_error("GET /engine.io/?EIO=3&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n", 400, 5,
                 "Unsupported protocol version");
    expect_error("GET /engine.io/?transport=polling HTTP/1.1\r\nHost: x\r\n\r\n", 400, 5,
                 "Unsupported protocol version");
    expect_error("POST /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n"
                 "Content-Length: 2\r\n\r\n40",
                 400, 2, "Bad handshake method");
    char raw[256];
    snprintf(raw, sizeof(raw),
             "PUT /engine.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: x\r\n"
             "Content-Length: 0\r\n\r\n",
             c->sid);
    expect_error(raw, 400, 3, "Bad request");
    /* A WebSocket request without the upgrade headers. */
    expect_error("GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n\r\n", 400, 3,
                 "Bad request");
    /* The route also answers without the trailing slash. */
    expect_error("GET /engine.io?EIO=4&transport=polling&sid=nope HTTP/1.1\r\nHost: x\r\n\r\n", 400,
                 1, "Session ID unknown");
    ck_assert_int_eq(F.opens, 1);
    ck_assert_int_eq(F.closes, 0); /* a bad PUT does not end the session */
    stop();
}
END_TEST

/* ---- CORS ---- */

START_TEST(test_cors)
{
    static const char *const origins[] = {"https://good.example", "http://localhost:8080", NULL};
    sh_eio_options_t o = default_opts();
    o.origins = origins;
    start_with(&o);
    th_resp_t r = {0};
    char v[128];
#define HS "GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nOrigin: %s\r\n\r\n"
    char raw[512];
    snprintf(raw, sizeof(raw), HS, "https://good.example");
    ck_assert_int_eq(th_http_exchange(&F.env, raw, strlen(raw), &r), 200);
    ck_assert_str_eq(th_resp_header(&r, "Access-Control-Allow-Origin", v, sizeof(v)),
                     "https://good.example");
    ck_assert_str_eq(th_resp_header(&r, "Access-Control-Allow-Credentials", v, sizeof(v)), "true");
    ck_assert_str_eq(th_resp_header(&r, "Vary", v, sizeof(v)), "Origin");
    ck_assert_int_eq(th_resp_header_count(&r, "Access-Control-Allow-Origin"), 1);
    snprintf(raw, sizeof(raw), HS, "https://evil.example");
    ck_assert_int_eq(th_http_exchange(&F.env, raw, strlen(raw), &r), 403);
    ck_assert_str_eq(sh_buf_peek(&r.body), "{\"code\":4,\"message\":\"Forbidden\"}");
    ck_assert_ptr_null(th_resp_header(&r, "Access-Control-Allow-Origin", v, sizeof(v)));
    /* A prefix of an allowed origin is not allowed. */
    snprintf(raw, sizeof(raw), HS, "https://good.exampl");
    ck_assert_int_eq(th_http_exchange(&F.env, raw, strlen(raw), &r), 403);
    /* Without an Origin (not a browser): allowed, no CORS headers. */
    const char *plain = "GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n";
    ck_assert_int_eq(th_http_exchange(&F.env, plain, strlen(plain), &r), 200);
    ck_assert_ptr_null(th_resp_header(&r, "Access-Control-Allow-Origin", v, sizeof(v)));
    /* Preflight. */
    const char *pre = "OPTIONS /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n"
                      "Origin: http://localhost:8080\r\nAccess-Control-Request-Method: POST\r\n"
                      "Access-Control-Request-Headers: content-type, x-token\r\n\r\n";
    ck_assert_int_eq(th_http_exchange(&F.env, pre, strlen(pre), &r), 204);
    ck_assert_str_eq(th_resp_header(&r, "Access-Control-Allow-Origin", v, sizeof(v)),
                     "http://localhost:8080");
    ck_assert_str_eq(th_resp_header(&r, "Access-Control-Allow-Credentials", v, sizeof(v)), "true");
    ck_assert_str_eq(th_resp_header(&r, "Access-Control-Allow-Methods", v, sizeof(v)),
                     "GET, POST, OPTIONS");
    ck_assert_str_eq(th_resp_header(&r, "Access-Control-Allow-Headers", v, sizeof(v)),
                     "content-type, x-token");
    ck_assert_str_eq(th_resp_header(&r, "Access-Control-Max-Age", v, sizeof(v)), "86400");
    ck_assert_uint_eq(sh_buf_avail(&r.body), 0);
    const char *bad_pre = "OPTIONS /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n"
                          "Origin: https://evil.example\r\n\r\n";
    ck_assert_int_eq(th_http_exchange(&F.env, bad_pre, strlen(bad_pre), &r), 403);
    /* Errors to an allowed origin carry CORS headers so the page can read
     * them. */
    const char *bad_sid = "GET /engine.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\nHost: x\r\n"
                          "Origin: https://good.example\r\n\r\n";
    ck_assert_int_eq(th_http_exchange(&F.env, bad_sid, strlen(bad_sid), &r), 400);
    ck_assert_str_eq(th_resp_header(&r, "Access-Control-Allow-Origin", v, sizeof(v)),
                     "https://good.example");
    ck_assert_int_eq(F.opens, 2);
    th_resp_release(&r);
    stop();
}
END_TEST

/* ---- WebSocket ---- */

static uint8_t ws_read(th_conn_t *c, sh_buf_t *payload)
{
    uint8_t op = 0xff;
    ck_assert_msg(th_ws_read(c, &op, payload, TH_WAIT_MS), "no frame");
    return op;
}

/* Answers the server's close frame, as a client does. */
static void ws_answer_close(th_conn_t *c)
{
    uint8_t body[2] = {0x03, 0xe8};
    th_ws_send(c, SH_WS_OP_CLOSE, body, 2);
}

START_TEST(test_upgrade_from_polling)
{
    start();
    th_eio_t *c = open_client(0);
    sh_eio_session_t *s = F.last;
    th_resp_t r = {0};
    sh_buf_t p = SH_BUF_INIT;
    th_eio_get_hold(c);
    th_conn_t *ws = &F.ws[0];
    th_conn_connect(ws, F.env.loop, F.env.port);
    char target[128];
    snprintf(target, sizeof(target), PATH "?EIO=4&transport=websocket&sid=%s", c->sid);
    ck_assert(th_ws_handshake(ws, target, NULL, 0, &r));
    th_ws_send(ws, SH_WS_OP_TEXT, "2probe", 6);
    ck_assert_uint_eq(ws_read(ws, &p), SH_WS_OP_TEXT);
    ck_assert_str_eq(sh_buf_peek(&p), "3probe");
    /* The held GET is ended with a noop so the client can pause polling. */
    ck_assert(th_eio_get_wait(c, &r, TH_WAIT_MS));
    ck_assert_str_eq(sh_buf_peek(&r.body), "6");
    /* Sent during the probe: waits for the switch. */
    ck_assert_int_eq(send_text(s, "queued"), 0);
    th_run_for(F.env.loop, 20);
    ck_assert_uint_eq(sh_buf_avail(&ws->in), 0);
    ck_assert_str_eq(sh_eio_session_transport(s), "polling");
    th_ws_send(ws, SH_WS_OP_TEXT, "5", 1);
    ck_assert_uint_eq(ws_read(ws, &p), SH_WS_OP_TEXT);
    ck_assert_str_eq(sh_buf_peek(&p), "4queued");
    ck_assert_str_eq(sh_eio_session_transport(s), "websocket");
    const sh_eio_stats_t *st = sh_eio_server_stats(F.srv);
    ck_assert_uint_eq(st->upgrades, 1);
    ck_assert_uint_eq(st->websocket, 1);
    ck_assert_uint_eq(st->polling, 0);
    /* Messages flow both ways on the WebSocket. */
    th_ws_send(ws, SH_WS_OP_TEXT, "4hi", 3);
    th_ws_send(ws, SH_WS_OP_BINARY, "\x00\x01", 2);
    wait_messages(2);
    ck_assert_str_eq(sh_buf_peek(&F.got[0]), "hi");
    ck_assert(F.binary[1]);
    ck_assert(!memcmp(sh_buf_peek(&F.got[1]), "\x00\x01", 2));
    ck_assert_int_eq(send_text(s, "a"), 0);
    F.in_call = true;
    ck_assert_int_eq(sh_eio_send(s, sh_eio_msg_binary("\x07", 1)), 0);
    F.in_call = false;
    ck_assert_uint_eq(ws_read(ws, &p), SH_WS_OP_TEXT);
    ck_assert_str_eq(sh_buf_peek(&p), "4a");
    ck_assert_uint_eq(ws_read(ws, &p), SH_WS_OP_BINARY);
    ck_assert_uint_eq(sh_buf_avail(&p), 1);
    ck_assert_int_eq(sh_buf_peek(&p)[0], 7);
    /* Polling is over for this session. */
    th_eio_get_send(c);
    ck_assert(th_eio_get_wait(c, &r, TH_WAIT_MS));
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(sh_buf_peek(&r.body), "{\"code\":3,\"message\":\"Bad request\"}");
    /* A second WebSocket for an upgraded session is closed (1008). */
    th_conn_t *ws2 = &F.ws[1];
    th_conn_connect(ws2, F.env.loop, F.env.port);
    ck_assert(th_ws_handshake(ws2, target, NULL, 0, &r));
    ck_assert_uint_eq(ws_read(ws2, &p), SH_WS_OP_CLOSE);
    ck_assert_uint_eq(th_ws_close_code(&p), SH_WS_CLOSE_POLICY);
    ws_answer_close(ws2);
    /* The client closes its WebSocket. */
    uint8_t body[2] = {0x03, 0xe8};
    th_ws_send(ws, SH_WS_OP_CLOSE, body, 2);
    ck_assert_uint_eq(ws_read(ws, &p), SH_WS_OP_CLOSE);
    wait_closes(1);
    ck_assert_str_eq(F.close_reason, "transport close");
    ck_assert_int_eq(F.messages, 2);
    sh_buf_release(&p);
    th_resp_release(&r);
    stop();
}
END_TEST

START_TEST(test_failed_probe_keeps_polling)
{
    start();
    th_eio_t *c = open_client(0);
    th_resp_t r = {0};
    sh_buf_t p = SH_BUF_INIT;
    th_conn_t *ws = &F.ws[0];
    th_conn_connect(ws, F.env.loop, F.env.port);
    char target[128];
    snprintf(target, sizeof(target), PATH "?EIO=4&transport=websocket&sid=%s", c->sid);
    ck_assert(th_ws_handshake(ws, target, NULL, 0, &r));
    /* Anything but "2probe" drops the probe; the session stays on polling. */
    th_ws_send(ws, SH_WS_OP_TEXT, "4nope", 5);
    ck_assert_uint_eq(ws_read(ws, &p), SH_WS_OP_CLOSE);
    ws_answer_close(ws);
    ck_assert_int_eq(send_text(F.last, "still"), 0);
    ck_assert(th_eio_poll(c, &r, TH_WAIT_MS));
    ck_assert_str_eq(sh_buf_peek(&r.body), "4still");
    ck_assert_int_eq(F.closes, 0);
    ck_assert_int_eq(F.messages, 0);
    ck_assert_uint_eq(sh_eio_server_stats(F.srv)->upgrades, 0);
    sh_buf_release(&p);
    th_resp_release(&r);
    stop();
}
END_TEST

START_TEST(test_upgrade_timeout_keeps_polling)
{
    sh_eio_options_t o = default_opts();
    o.upgrade_timeout = 50;
    start_with(&o);
    th_eio_t *c = open_client(0);
    th_resp_t r = {0};
    sh_buf_t p = SH_BUF_INIT;
    th_conn_t *ws = &F.ws[0];
    th_conn_connect(ws, F.env.loop, F.env.port);
    char target[128];
    snprintf(target, sizeof(target), PATH "?EIO=4&transport=websocket&sid=%s", c->sid);
    ck_assert(th_ws_handshake(ws, target, NULL, 0, &r));
    th_ws_send(ws, SH_WS_OP_TEXT, "2probe", 6);
    ck_assert_uint_eq(ws_read(ws, &p), SH_WS_OP_TEXT);
    ck_assert_str_eq(sh_buf_peek(&p), "3probe");
    /* While the probe runs, a GET gets a noop at once. */
    ck_assert(th_eio_poll(c, &r, TH_WAIT_MS));
    ck_assert_str_eq(sh_buf_peek(&r.body), "6");
    /* No "5" within upgrade_timeout: the probe is closed, polling goes on
     * with what was queued meanwhile. */
    ck_assert_int_eq(send_text(F.last, "kept"), 0);
    ck_assert_uint_eq(ws_read(ws, &p), SH_WS_OP_CLOSE);
    ws_answer_close(ws);
    ck_assert(th_eio_poll(c, &r, TH_WAIT_MS));
    ck_assert_str_eq(sh_buf_peek(&r.body), "4kept");
    ck_assert_str_eq(sh_eio_session_transport(F.last), "polling");
    ck_assert_uint_eq(sh_eio_server_stats(F.srv)->upgrades, 0);
    ck_assert_int_eq(F.closes, 0);
    sh_buf_release(&p);
    th_resp_release(&r);
    stop();
}
END_TEST

START_TEST(test_output_limit_on_websocket)
{
    sh_eio_options_t o = default_opts();
    o.output_limit = 64 * 1024;
    start_with(&o);
    th_conn_t *ws = &F.ws[0];
    th_conn_connect(ws, F.env.loop, F.env.port);
    th_resp_t r = {0};
    sh_buf_t p = SH_BUF_INIT;
    ck_assert(th_ws_handshake(ws, PATH "?EIO=4&transport=websocket", NULL, 0, &r));
    ck_assert_uint_eq(ws_read(ws, &p), SH_WS_OP_TEXT); /* open */
    sh_eio_session_t *s = F.last;
    /* The client stops reading; the server keeps sending until the
     * kernel's buffers and then the session's queue are full. */
    th_conn_pause(ws);
    char *chunk = malloc(32 * 1024);
    memset(chunk, 'w', 32 * 1024);
    int rc = 0, i;
    for (i = 0; i < 4000 && rc == 0 && F.closes == 0; i++) {
        F.in_call = true;
        rc = sh_eio_send(s, sh_eio_msg_text(SH_EIO_MESSAGE, chunk, 32 * 1024));
        F.in_call = false;
        if (rc == 0 && sh_eio_server_stats(F.srv)->slow_dropped == 0)
            th_run_once(F.env.loop);
        else
            break;
    }
    free(chunk);
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(sh_eio_server_stats(F.srv)->slow_dropped, 1);
    ck_assert_uint_eq(sh_eio_server_stats(F.srv)->ws.slow_dropped, 1);
    ck_assert_int_eq(F.closes, 0); /* deferred */
    ck_assert_int_eq(send_text(s, "late"), -EPIPE);
    wait_closes(1);
    ck_assert_str_eq(F.close_reason, "transport error");
    th_conn_close(ws);
    sh_buf_release(&p);
    th_resp_release(&r);
    stop();
}
END_TEST

START_TEST(test_websocket_only_session)
{
    sh_eio_options_t o = default_opts();
    o.ping_interval = 40;
    o.ping_timeout = 1000;
    start_with(&o);
    F.echo = true;
    th_conn_t *ws = &F.ws[0];
    th_conn_connect(ws, F.env.loop, F.env.port);
    th_resp_t r = {0};
    sh_buf_t p = SH_BUF_INIT;
    /* The first message rides in the same write as the upgrade request. */
    sh_buf_t early = SH_BUF_INIT;
    th_ws_encode(&early, SH_WS_OP_TEXT, true, "4early", 6, true);
    ck_assert(th_ws_handshake(ws, PATH "?EIO=4&transport=websocket", sh_buf_peek(&early),
                              sh_buf_avail(&early), &r));
    sh_buf_release(&early);
    ck_assert_uint_eq(ws_read(ws, &p), SH_WS_OP_TEXT);
    ck_assert_int_eq(sh_buf_peek(&p)[0], '0');
    json_t *j = json_loads(sh_buf_peek(&p) + 1, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "upgrades")), 0);
    ck_assert_uint_eq(strlen(json_string_value(json_object_get(j, "sid"))), SH_ID_LEN);
    json_decref(j);
    ck_assert_int_eq(F.opens, 1);
    ck_assert_str_eq(sh_eio_session_transport(F.last), "websocket");
    ck_assert_uint_eq(ws_read(ws, &p), SH_WS_OP_TEXT);
    ck_assert_str_eq(sh_buf_peek(&p), "4early");
    /* Heartbeat over the WebSocket. */
    ck_assert_uint_eq(ws_read(ws, &p), SH_WS_OP_TEXT);
    ck_assert_str_eq(sh_buf_peek(&p), "2");
    th_ws_send(ws, SH_WS_OP_TEXT, "3", 1);
    ck_assert_uint_eq(ws_read(ws, &p), SH_WS_OP_TEXT);
    ck_assert_str_eq(sh_buf_peek(&p), "2");
    ck_assert_int_eq(F.closes, 0);
    /* A malformed packet ends the session. */
    th_ws_send(ws, SH_WS_OP_TEXT, "x", 1);
    wait_closes(1);
    ck_assert_str_eq(F.close_reason, "parse error");
    ck_assert_uint_eq(ws_read(ws, &p), SH_WS_OP_CLOSE);
    ws_answer_close(ws);
    sh_buf_release(&p);
    th_resp_release(&r);
    stop();
}
END_TEST

START_TEST(test_close_all_and_free)
{
    start();
    th_eio_t *c = open_client(0);
    th_resp_t r = {0};
    sh_buf_t p = SH_BUF_INIT;
    th_eio_get_hold(c);
    th_conn_t *ws = &F.ws[0];
    th_conn_connect(ws, F.env.loop, F.env.port);
    ck_assert(th_ws_handshake(ws, PATH "?EIO=4&transport=websocket", NULL, 0, &r));
    ck_assert_uint_eq(ws_read(ws, &p), SH_WS_OP_TEXT); /* open */
    /* Two sessions, plus the WebSocket connection of one. */
    ck_assert_uint_eq(sh_eio_server_active(F.srv), 3);
    F.in_call = true;
    sh_eio_server_close_all(F.srv);
    F.in_call = false;
    ck_assert_int_eq(F.closes, 0);
    /* Shutdown: polling gets a noop and the WebSocket a "going away" close
     * frame, no close packet, so clients reconnect to the next daemon. */
    ck_assert(th_eio_get_wait(c, &r, TH_WAIT_MS));
    ck_assert_str_eq(sh_buf_peek(&r.body), "6");
    ck_assert_uint_eq(ws_read(ws, &p), SH_WS_OP_CLOSE);
    ck_assert_uint_eq(th_ws_close_code(&p), SH_WS_CLOSE_GOING_AWAY);
    wait_closes(2);
    ck_assert_str_eq(F.close_reason, "server shutting down");
    /* The WebSocket lingers until the client answers the close frame. */
    ck_assert_uint_eq(sh_eio_server_active(F.srv), 1);
    ws_answer_close(ws);
    ck_assert(th_run_until(F.env.loop, none_active, NULL, TH_WAIT_MS));
    /* Freeing the server with a session still open: on_close first. */
    open_client(1);
    ck_assert_int_eq(F.opens, 3);
    th_eio_close(&F.clients[0]);
    th_eio_close(&F.clients[1]);
    th_conn_close(ws);
    ck_assert(th_env_wait_idle(&F.env, TH_WAIT_MS));
    sh_http_free(F.env.http);
    F.env.http = NULL;
    sh_loop_run_deferred(F.env.loop);
    ck_assert_int_eq(F.closes, 2);
    sh_eio_server_free(F.srv);
    ck_assert_int_eq(F.closes, 3);
    ck_assert_str_eq(F.close_reason, "server shutting down");
    sh_loop_run_deferred(F.env.loop);
    th_env_stop(&F.env);
    sh_buf_release(&p);
    th_resp_release(&r);
}
END_TEST

START_TEST(test_free_with_held_get_and_open_websocket)
{
    /* The daemon's hard stop: HTTP freed with a GET held, then the server
     * with a WebSocket session still open. */
    start();
    th_eio_t *c = open_client(0);
    th_resp_t r = {0};
    sh_buf_t p = SH_BUF_INIT;
    th_eio_get_hold(c);
    th_conn_t *ws = &F.ws[0];
    th_conn_connect(ws, F.env.loop, F.env.port);
    ck_assert(th_ws_handshake(ws, PATH "?EIO=4&transport=websocket", NULL, 0, &r));
    ck_assert_uint_eq(ws_read(ws, &p), SH_WS_OP_TEXT);
    sh_http_free(F.env.http);
    F.env.http = NULL;
    sh_loop_run_deferred(F.env.loop);
    ck_assert_int_eq(F.closes, 0);
    sh_eio_server_free(F.srv);
    ck_assert_int_eq(F.closes, 2);
    sh_loop_run_deferred(F.env.loop);
    th_eio_close(c);
    th_conn_close(ws);
    th_env_stop(&F.env);
    sh_buf_release(&p);
    th_resp_release(&r);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("engineio server");
    TCase *tc = tcase_create("server");
    tcase_set_timeout(tc, 8);
    tcase_add_test(tc, test_polling_handshake);
    tcase_add_test(tc, test_polling_only_offers_no_upgrade);
    tcase_add_test(tc, test_post_packets_reach_on_message_in_order);
    tcase_add_test(tc, test_bad_posts_close_the_session);
    tcase_add_test(tc, test_get_held_until_send);
    tcase_add_test(tc, test_sends_in_one_iteration_share_one_payload);
    tcase_add_test(tc, test_poll_answers_carry_at_most_16_packets);
    tcase_add_test(tc, test_overlapping_get_is_an_error);
    tcase_add_test(tc, test_ping_and_ping_timeout);
    tcase_add_test(tc, test_output_limit_closes_session_that_never_polls);
    tcase_add_test(tc, test_output_limit_passed_by_a_ping);
    tcase_add_test(tc, test_close_answers_held_get_with_close_packet);
    tcase_add_test(tc, test_close_delivers_what_was_queued_first);
    tcase_add_test(tc, test_close_with_no_get_held_keeps_the_queue_for_the_next_gets);
    tcase_add_test(tc, test_lingering_session_ends_on_client_close_timeout_or_shutdown);
    tcase_add_test(tc, test_request_errors);
    tcase_add_test(tc, test_cors);
    tcase_add_test(tc, test_upgrade_from_polling);
    tcase_add_test(tc, test_failed_probe_keeps_polling);
    tcase_add_test(tc, test_upgrade_timeout_keeps_polling);
    tcase_add_test(tc, test_output_limit_on_websocket);
    tcase_add_test(tc, test_websocket_only_session);
    tcase_add_test(tc, test_close_all_and_free);
    tcase_add_test(tc, test_free_with_held_get_and_open_websocket);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
