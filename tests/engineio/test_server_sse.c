/* The SSE sessions of the Engine.IO server (src/engineio/server.c, its
 * sh_eio_sse_* half) on a real HTTP server (127.0.0.1, port 0), read by
 * raw HTTP clients on the same loop: the stream and its headers, the
 * keep-alive comment, the grace period after a dropped stream, a resume
 * with the missed events, the output limit, server close and shutdown,
 * and polling or WebSocket requests naming an SSE session. The handler
 * counts on_open / on_close; every test frees everything. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "engineio/packet.h"
#include "engineio/server.h"
#include "harness.h"
#include "transport/sse_wire.h"

#define PATH "/engine.io/"

typedef struct fix {
    th_env_t env;
    sh_eio_server_t *srv;
    bool in_call;
    int opens, closes;
    sh_eio_session_t *last;
    char close_reason[64];
    th_conn_t c[3];
} fix_t;

static fix_t F;

/* The test's renderer: "4X" -> "data: X\n\n"; other packets: no form. */
static sh_msg_t *render(const sh_msg_t *m)
{
    if (m->binary || m->len < 1 || m->data[0] != '4')
        return NULL;
    sh_buf_t b = SH_BUF_INIT;
    sh_buf_appendf(&b, "data: %.*s\n\n", (int)(m->len - 1), m->data + 1);
    sh_msg_t *out = sh_msg_new(sh_buf_peek(&b), sh_buf_avail(&b), false);
    sh_buf_release(&b);
    return out;
}

static void on_open(sh_eio_session_t *s, void *data)
{
    F.opens++;
    F.last = s;
    sh_eio_send(s, sh_eio_msg_text(SH_EIO_MESSAGE, "hello", 5));
}

static void on_close(sh_eio_session_t *s, const char *reason, void *data)
{
    ck_assert_msg(!F.in_call, "on_close ran inside a call made by the test");
    F.closes++;
    snprintf(F.close_reason, sizeof(F.close_reason), "%s", reason);
    if (F.last == s)
        F.last = NULL;
}

static const sh_eio_handler_t handler = {.on_open = on_open, .on_close = on_close};

/* GET /sse opens a session; GET /sse?last=<sid>:<seq> resumes one. */
static void on_sse(sh_http_req_t *req, void *data)
{
    const char *last = sh_http_req_query(req, "last");
    if (!last) {
        sh_eio_sse_open(F.srv, req, false);
        return;
    }
    char sid[SH_SSE_MAX_SID + 1];
    uint64_t seq;
    sh_eio_session_t *s = NULL;
    if (sh_sse_parse_event_id(last, strlen(last), sid, &seq, NULL) == 0)
        s = sh_eio_sse_find(F.srv, sid);
    if (s)
        sh_eio_sse_resume(s, req, seq);
    else
        sh_eio_sse_open(F.srv, req, true);
}

static void start(uint64_t ping_interval, uint64_t grace, size_t output_limit)
{
    memset(&F, 0, sizeof(F));
    th_env_start(&F.env);
    sh_eio_options_t o = {
        .path = PATH,
        .transports = SH_EIO_TRANSPORT_POLLING | SH_EIO_TRANSPORT_WEBSOCKET,
        .ping_interval = ping_interval,
        .ping_timeout = 5000,
        .upgrade_timeout = 1000,
        .max_payload = 1000,
        .output_limit = output_limit,
        .sse_grace = grace,
        .sse_buffer = 1 << 20,
        .sse_buffer_events = 1000,
        .sse_render = render,
    };
    sh_buf_t err = SH_BUF_INIT;
    F.srv = sh_eio_server_new(F.env.loop, F.env.http, &o, &handler, &F, &err);
    ck_assert_msg(F.srv != NULL, "%s", sh_buf_peek(&err));
    sh_buf_release(&err);
    ck_assert_int_eq(sh_http_route(F.env.http, "/sse", true, 0, on_sse, NULL), 0);
}

static bool none_active(void *arg)
{
    return sh_eio_server_active(F.srv) == 0;
}

static void stop(void)
{
    sh_eio_server_close_all(F.srv);
    ck_assert_msg(th_run_until(F.env.loop, none_active, NULL, TH_WAIT_MS),
                  "%zu sessions still active", sh_eio_server_active(F.srv));
    for (int i = 0; i < 3; i++)
        th_conn_close(&F.c[i]);
    ck_assert(th_env_wait_idle(&F.env, TH_WAIT_MS));
    sh_http_free(F.env.http);
    F.env.http = NULL;
    sh_loop_run_deferred(F.env.loop);
    sh_eio_server_free(F.srv);
    sh_loop_run_deferred(F.env.loop);
    th_env_stop(&F.env);
    ck_assert_int_eq(F.closes, F.opens);
}

static void send_text(sh_eio_session_t *s, const char *text)
{
    F.in_call = true;
    ck_assert_int_eq(sh_eio_send(s, sh_eio_msg_text(SH_EIO_MESSAGE, text, strlen(text))), 0);
    F.in_call = false;
}

typedef struct want {
    th_conn_t *c;
    const char *text;
} want_t;

static bool has(void *arg)
{
    want_t *w = arg;
    return strstr(sh_buf_peek(&w->c->in), w->text) != NULL;
}

static void wait_text(th_conn_t *c, const char *text)
{
    want_t w = {c, text};
    ck_assert_msg(th_run_until(F.env.loop, has, &w, TH_WAIT_MS), "no '%s' in:\n%s", text,
                  sh_buf_peek(&c->in));
}

static void open_stream(th_conn_t *c, const char *query)
{
    char target[128];
    snprintf(target, sizeof(target), "/sse%s", query ? query : "");
    th_conn_connect(c, F.env.loop, F.env.port);
    th_http_send(c, "GET", target, NULL, NULL, 0);
}

static bool n_closes(void *arg)
{
    return F.closes >= *(int *)arg;
}

START_TEST(test_stream_headers_and_events)
{
    start(10000, 30000, 100000);
    open_stream(&F.c[0], NULL);
    wait_text(&F.c[0], "data: hello\n\n");
    const char *in = sh_buf_peek(&F.c[0].in);
    ck_assert_ptr_nonnull(strstr(in, "HTTP/1.1 200"));
    ck_assert_ptr_nonnull(strstr(in, "Content-Type: text/event-stream"));
    ck_assert_ptr_nonnull(strstr(in, "Cache-Control: no-store"));
    ck_assert_ptr_nonnull(strstr(in, "X-Accel-Buffering: no"));
    ck_assert_ptr_null(strstr(in, "Content-Encoding"));
    ck_assert_ptr_nonnull(strstr(in, "retry: 1000\n\n"));
    ck_assert_ptr_nonnull(F.last);
    char id[64];
    snprintf(id, sizeof(id), "id: %s:1\ndata: hello\n\n", sh_eio_session_sid(F.last));
    ck_assert_ptr_nonnull(strstr(in, id));
    ck_assert_str_eq(sh_eio_session_transport(F.last), "sse");
    ck_assert_uint_eq(sh_eio_server_stats(F.srv)->sse, 1);
    ck_assert_uint_eq(sh_eio_server_stats(F.srv)->sse_streams.streams, 1);
    /* Engine.IO control packets have no SSE form; messages get the next seq. */
    F.in_call = true;
    sh_eio_send(F.last, sh_eio_msg_text(SH_EIO_NOOP, NULL, 0));
    F.in_call = false;
    send_text(F.last, "two");
    snprintf(id, sizeof(id), "id: %s:2\ndata: two\n\n", sh_eio_session_sid(F.last));
    wait_text(&F.c[0], id);
    stop();
    ck_assert_str_eq(F.close_reason, "server shutting down");
}
END_TEST

START_TEST(test_keepalive_comment)
{
    start(100, 30000, 100000);
    open_stream(&F.c[0], NULL);
    wait_text(&F.c[0], "data: hello\n\n");
    wait_text(&F.c[0], ": ping\n\n");
    ck_assert_int_eq(F.closes, 0); /* no pong is awaited */
    th_run_for(F.env.loop, 400);
    ck_assert_int_eq(F.closes, 0);
    stop();
}
END_TEST

START_TEST(test_grace_then_close)
{
    start(50, 300, 100000);
    open_stream(&F.c[0], NULL);
    wait_text(&F.c[0], "data: hello\n\n");
    th_conn_close(&F.c[0]);
    uint64_t t0 = sh_time_ms();
    /* Found dead at a keep-alive write, then the grace period runs. */
    int one = 1;
    ck_assert(th_run_until(F.env.loop, n_closes, &one, TH_WAIT_MS));
    ck_assert_uint_ge(sh_time_ms() - t0, 290);
    ck_assert_str_eq(F.close_reason, "transport close");
    ck_assert_uint_eq(sh_eio_server_stats(F.srv)->sse, 0);
    ck_assert_uint_eq(sh_eio_server_stats(F.srv)->sse_streams.streams, 0);
    ck_assert(th_run_until(F.env.loop, none_active, NULL, TH_WAIT_MS));
    stop();
}
END_TEST

START_TEST(test_resume_within_grace)
{
    start(50, 2000, 100000);
    open_stream(&F.c[0], NULL);
    wait_text(&F.c[0], "data: hello\n\n");
    sh_eio_session_t *s = F.last;
    char sid[32];
    snprintf(sid, sizeof(sid), "%s", sh_eio_session_sid(s));
    th_conn_close(&F.c[0]);
    th_run_for(F.env.loop, 200); /* the drop is seen */
    ck_assert_uint_eq(sh_eio_server_stats(F.srv)->sse_streams.streams, 0);
    send_text(s, "missed-1");
    send_text(s, "missed-2");
    char q[64];
    snprintf(q, sizeof(q), "?last=%s:1", sid);
    open_stream(&F.c[1], q);
    char want[128];
    snprintf(want, sizeof(want), "id: %s:2\ndata: missed-1\n\nid: %s:3\ndata: missed-2\n\n", sid,
             sid);
    wait_text(&F.c[1], want);
    ck_assert_ptr_null(strstr(sh_buf_peek(&F.c[1].in), "hello"));
    ck_assert_ptr_null(strstr(sh_buf_peek(&F.c[1].in), "reset"));
    ck_assert_int_eq(F.opens, 1);
    /* Past the grace period the session is still there: it has a stream. */
    th_run_for(F.env.loop, 2200);
    ck_assert_int_eq(F.closes, 0);
    ck_assert_uint_eq(sh_eio_server_stats(F.srv)->sse_streams.resumes, 1);
    /* A session that is gone: a new one, with a reset first. */
    open_stream(&F.c[2], "?last=AAAAAAAAAAAAAAAAAAAA:5");
    wait_text(&F.c[2], "event: reset\ndata: {}\n\nid: ");
    ck_assert_int_eq(F.opens, 2);
    stop();
}
END_TEST

START_TEST(test_slow_client_dropped)
{
    start(10000, 30000, 20000);
    open_stream(&F.c[0], NULL);
    wait_text(&F.c[0], "data: hello\n\n");
    th_conn_pause(&F.c[0]);
    char big[4001];
    memset(big, 'x', 4000);
    big[4000] = '\0';
    for (int i = 0; i < 2000 && F.last; i++) {
        send_text(F.last, big);
        th_run_once(F.env.loop);
    }
    int one = 1;
    ck_assert(th_run_until(F.env.loop, n_closes, &one, TH_WAIT_MS));
    ck_assert_str_eq(F.close_reason, "transport error");
    ck_assert_uint_eq(sh_eio_server_stats(F.srv)->slow_dropped, 1);
    th_conn_close(&F.c[0]);
    stop();
}
END_TEST

START_TEST(test_server_close_drains_then_ends)
{
    start(10000, 30000, 100000);
    open_stream(&F.c[0], NULL);
    wait_text(&F.c[0], "data: hello\n\n");
    send_text(F.last, "last-word");
    F.in_call = true;
    sh_eio_close(F.last);
    F.in_call = false;
    wait_text(&F.c[0], "data: last-word\n\n");
    wait_text(&F.c[0], "\r\n0\r\n\r\n"); /* the chunked body's end */
    int one = 1;
    ck_assert(th_run_until(F.env.loop, n_closes, &one, TH_WAIT_MS));
    ck_assert_str_eq(F.close_reason, "forced close");
    ck_assert(th_run_until(F.env.loop, none_active, NULL, TH_WAIT_MS));
    stop();
}
END_TEST

START_TEST(test_shutdown_waits_for_streams)
{
    start(10000, 30000, 64 << 20);
    open_stream(&F.c[0], NULL);
    wait_text(&F.c[0], "data: hello\n\n");
    th_conn_pause(&F.c[0]);
    /* More than the socket buffers hold: the stream owes bytes. */
    char big[8001];
    memset(big, 'y', 8000);
    big[8000] = '\0';
    for (int i = 0; i < 1500; i++) {
        send_text(F.last, big);
        if (i % 50 == 0)
            th_run_once(F.env.loop);
    }
    th_run_for(F.env.loop, 50);
    sh_eio_server_close_all(F.srv);
    th_run_for(F.env.loop, 100);
    ck_assert_int_eq(F.closes, 1);
    ck_assert_uint_eq(sh_eio_server_stats(F.srv)->sse_streams.draining, 1);
    ck_assert_uint_ge(sh_eio_server_active(F.srv), 1); /* the stream still writes */
    th_conn_resume(&F.c[0]);
    ck_assert(th_run_until(F.env.loop, none_active, NULL, TH_WAIT_MS));
    wait_text(&F.c[0], "\r\n0\r\n\r\n");
    ck_assert_uint_eq(sh_eio_server_stats(F.srv)->sse_streams.draining, 0);
    stop();
}
END_TEST

START_TEST(test_other_transports_refused)
{
    start(10000, 30000, 100000);
    open_stream(&F.c[0], NULL);
    wait_text(&F.c[0], "data: hello\n\n");
    char raw[256];
    snprintf(raw, sizeof(raw), "GET %s?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: x\r\n\r\n",
             PATH, sh_eio_session_sid(F.last));
    th_resp_t r = {0};
    ck_assert_int_eq(th_http_exchange(&F.env, raw, strlen(raw), &r), 400);
    th_resp_release(&r);
    snprintf(raw, sizeof(raw),
             "POST %s?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: x\r\nContent-Length: "
             "1\r\n\r\n1",
             PATH, sh_eio_session_sid(F.last));
    ck_assert_int_eq(th_http_exchange(&F.env, raw, strlen(raw), &r), 400);
    th_resp_release(&r);
    ck_assert_ptr_nonnull(F.last); /* unharmed */
    ck_assert_int_eq(F.closes, 0);
    stop();
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("engineio_sse");
    TCase *tc = tcase_create("sse");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_stream_headers_and_events);
    tcase_add_test(tc, test_keepalive_comment);
    tcase_add_test(tc, test_grace_then_close);
    tcase_add_test(tc, test_resume_within_grace);
    tcase_add_test(tc, test_slow_client_dropped);
    tcase_add_test(tc, test_server_close_drains_then_ends);
    tcase_add_test(tc, test_shutdown_waits_for_streams);
    tcase_add_test(tc, test_other_transports_refused);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
