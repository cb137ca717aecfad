/* The HTTP layer on a real libmicrohttpd daemon on 127.0.0.1 (port 0),
 * driven by raw HTTP/1.1 requests from plain sockets on the same loop.
 * Handlers and done callbacks are counted; each test frees the server and
 * the loop (the sanitizer build turns a leak into a failure). */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/msg.h"
#include "harness.h"
#include "http/server.h"
#include "transport/ws.h"
#include "transport/ws_frame.h"

typedef struct fix {
    th_env_t env;
    bool in_call; /* the test is inside a call into the layer */
    int calls;    /* handler calls, all routes */
    int resumed_calls;
    int done_calls;
    void *done_owner;
    sh_http_req_t *held;
    sh_timer_t timer;
    int upgrades;
    sh_ws_conn_t *ws;
    int ws_messages;
    int ws_closes;
    char last[512]; /* what the last handler saw */
} fix_t;

static fix_t F;

static void start(void)
{
    memset(&F, 0, sizeof(F));
    th_env_start(&F.env);
}

static void stop(void)
{
    ck_assert(th_env_wait_idle(&F.env, TH_WAIT_MS));
    sh_timer_stop(F.env.loop, &F.timer);
    th_env_stop(&F.env);
}

static int route(const char *path, bool exact, size_t body_limit, sh_http_handler_cb cb, void *data)
{
    return sh_http_route(F.env.http, path, exact, body_limit, cb, data);
}

/* One request on a fresh connection; returns the status. */
static int exchange(const char *raw, th_resp_t *r)
{
    return th_http_exchange(&F.env, raw, strlen(raw), r);
}

static void on_done(sh_http_req_t *req, void *owner)
{
    ck_assert_msg(!F.in_call, "done callback ran inside a call made by the owner");
    F.done_calls++;
    F.done_owner = owner;
    if (F.held == req)
        F.held = NULL;
}

/* ---- handlers ---- */

/* Answers "<name> <METHOD> <path>". */
static void h_name(sh_http_req_t *req, void *data)
{
    F.calls++;
    char body[256];
    int n = snprintf(body, sizeof(body), "%s %s %s", (const char *)data,
                     sh_http_req_method_name(req), sh_http_req_path(req));
    ck_assert_int_eq(sh_http_respond(req, 200, "text/plain", body, (size_t)n), 0);
}

static const char *orr(const char *s)
{
    return s ? s : "(null)";
}

/* Reports what the accessors return. */
static void h_accessors(sh_http_req_t *req, void *data)
{
    F.calls++;
    const char *peer = sh_http_req_peer(req);
    snprintf(F.last, sizeof(F.last),
             "m=%d %s path=%s x=%s y=%s empty=%s missing=%s hdr=%s hdr2=%s nohdr=%s token=%s "
             "other=%s nocookie=%s peer=%d resumed=%d",
             (int)sh_http_req_method(req), sh_http_req_method_name(req), sh_http_req_path(req),
             orr(sh_http_req_query(req, "x")), orr(sh_http_req_query(req, "y")),
             orr(sh_http_req_query(req, "empty")), orr(sh_http_req_query(req, "missing")),
             orr(sh_http_req_header(req, "x-custom")), orr(sh_http_req_header(req, "X-CUSTOM")),
             orr(sh_http_req_header(req, "X-None")), orr(sh_http_req_cookie(req, "token")),
             orr(sh_http_req_cookie(req, "other")), orr(sh_http_req_cookie(req, "nope")),
             !strncmp(peer, "127.0.0.1:", 10) && strlen(peer) > 10, (int)sh_http_req_resumed(req));
    sh_http_respond(req, 200, "text/plain", "ok", 2);
}

/* Echoes the body back with its length and the too_large flag. */
static void h_body(sh_http_req_t *req, void *data)
{
    F.calls++;
    size_t len;
    const char *body = sh_http_req_body(req, &len);
    ck_assert_int_eq(body[len], '\0');
    sh_buf_t b = SH_BUF_INIT;
    sh_buf_appendf(&b, "len=%zu too_large=%d body=", len, (int)sh_http_req_body_too_large(req));
    sh_buf_append(&b, body, len);
    sh_http_respond(req, 200, "application/octet-stream", sh_buf_peek(&b), sh_buf_avail(&b));
    sh_buf_release(&b);
}

static void h_nothing(sh_http_req_t *req, void *data)
{
    F.calls++; /* a handler bug: no response */
}

static void on_resume_timer(sh_loop_t *loop, sh_timer_t *t)
{
    ck_assert_ptr_nonnull(F.held);
    int before = F.calls;
    F.in_call = true;
    sh_http_req_resume(F.held);
    F.in_call = false;
    ck_assert_int_eq(F.calls, before); /* the handler runs later, from the loop */
    ck_assert(!sh_http_req_suspended(F.held));
}

/* First call: hold the request and arm a resume; second: answer. */
static void h_hold(sh_http_req_t *req, void *data)
{
    ck_assert_msg(!F.in_call, "handler ran inside a call made by the owner");
    F.calls++;
    unsigned delay = (unsigned)(uintptr_t)data;
    if (!sh_http_req_resumed(req)) {
        ck_assert_ptr_null(sh_http_req_owner(req));
        sh_http_req_set_owner(req, &F, on_done);
        ck_assert_ptr_eq(sh_http_req_owner(req), &F);
        sh_http_req_suspend(req);
        sh_http_req_suspend(req); /* twice is harmless */
        ck_assert(sh_http_req_suspended(req));
        F.held = req;
        if (delay)
            sh_timer_start(F.env.loop, &F.timer, delay, on_resume_timer, NULL);
        return;
    }
    F.resumed_calls++;
    sh_http_respond(req, 200, "text/plain", "late", 4);
}

/* ---- routing ---- */

START_TEST(test_routing_longest_prefix_and_exact)
{
    start();
    ck_assert_int_eq(route("/api/", false, 0, h_name, "api"), 0);
    ck_assert_int_eq(route("/api/items", true, 0, h_name, "items"), 0);
    ck_assert_int_eq(route("/api/items/special/", false, 0, h_name, "special"), 0);
    ck_assert_int_eq(route("/static", false, 0, h_name, "static"), 0);
    static const struct {
        const char *target;
        int status;
        const char *body;
    } cases[] = {
        {"/api/items", 200, "items GET /api/items"},
        {"/api/items/3", 200, "api GET /api/items/3"}, /* the exact route does not match */
        {"/api/items/special/x", 200, "special GET /api/items/special/x"},
        {"/api/items/special", 200, "special GET /api/items/special"}, /* without the slash */
        {"/api", 200, "api GET /api"},
        {"/api/?q=1", 200, "api GET /api/"}, /* the query is not part of the path */
        {"/static/css/a.css", 200, "static GET /static/css/a.css"},
        {"/staticky", 200, "static GET /staticky"}, /* plain prefix, as registered */
        {"/", 404, "{\"code\":404,\"message\":\"Not found\"}"},
        {"/ap", 404, "{\"code\":404,\"message\":\"Not found\"}"},
        {"/other/api/", 404, "{\"code\":404,\"message\":\"Not found\"}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char raw[256];
        snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", cases[i].target);
        th_resp_t r = {0};
        ck_assert_int_eq(exchange(raw, &r), cases[i].status);
        ck_assert_msg(!strcmp(sh_buf_peek(&r.body), cases[i].body), "%s: got '%s'", cases[i].target,
                      sh_buf_peek(&r.body));
        if (cases[i].status == 404) {
            char ct[64];
            ck_assert_str_eq(th_resp_header(&r, "Content-Type", ct, sizeof(ct)),
                             "application/json");
        }
        th_resp_release(&r);
    }
    const sh_http_stats_t *st = sh_http_stats(F.env.http);
    ck_assert_uint_eq(st->requests, 11);
    ck_assert_uint_eq(st->responses_by_class[2], 8);
    ck_assert_uint_eq(st->responses_by_class[4], 3);
    stop();
}
END_TEST

START_TEST(test_route_table_is_bounded)
{
    start();
    char path[32];
    int rc = 0, n = 0;
    while (rc == 0 && n < 100) {
        snprintf(path, sizeof(path), "/r%d", n);
        rc = route(path, true, 0, h_name, "r");
        n++;
    }
    ck_assert_int_eq(rc, -ENOSPC);
    ck_assert_int_gt(n, 4);
    stop();
}
END_TEST

START_TEST(test_request_accessors)
{
    start();
    route("/q", false, 0, h_accessors, NULL);
    th_resp_t r = {0};
    ck_assert_int_eq(exchange("GET /q/path?x=1&y=hello%20world&empty= HTTP/1.1\r\nHost: x\r\n"
                              "X-Custom: Some Value\r\nCookie: other=2; token=abc.def\r\n\r\n",
                              &r),
                     200);
    ck_assert_str_eq(F.last, "m=0 GET path=/q/path x=1 y=hello world empty= missing=(null) "
                             "hdr=Some Value hdr2=Some Value nohdr=(null) token=abc.def other=2 "
                             "nocookie=(null) peer=1 resumed=0");
    th_resp_release(&r);
    static const struct {
        const char *method;
        sh_http_method_t id;
    } methods[] = {
        {"POST", SH_HTTP_POST},       {"PUT", SH_HTTP_PUT},     {"DELETE", SH_HTTP_DELETE},
        {"OPTIONS", SH_HTTP_OPTIONS}, {"PATCH", SH_HTTP_PATCH}, {"BREW", SH_HTTP_OTHER},
    };
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        char raw[128], want[64];
        snprintf(raw, sizeof(raw), "%s /q HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
                 methods[i].method);
        ck_assert_int_eq(exchange(raw, &r), 200);
        snprintf(want, sizeof(want), "m=%d %s path=/q ", (int)methods[i].id, methods[i].method);
        ck_assert_msg(!strncmp(F.last, want, strlen(want)), "%s: %s", methods[i].method, F.last);
        th_resp_release(&r);
    }
    stop();
}
END_TEST

/* ---- bodies ---- */

START_TEST(test_body_accumulation_and_limit)
{
    start();
    route("/body", false, 64, h_body, NULL);
    route("/nobody", false, 0, h_body, NULL);
    th_resp_t r = {0};
    th_conn_t c;
    /* A body sent in pieces, with a NUL in it. */
    th_conn_connect(&c, F.env.loop, F.env.port);
    th_conn_write_str(&c, "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhel");
    th_run_for(F.env.loop, 20);
    ck_assert_int_eq(F.calls, 0); /* not before the body is complete */
    th_conn_write(&c, "lo\0world", 8);
    ck_assert(th_http_read(&c, &r, TH_WAIT_MS));
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(sh_buf_avail(&r.body), 35);
    ck_assert(!memcmp(sh_buf_peek(&r.body), "len=11 too_large=0 body=hello\0world", 35));
    th_conn_close(&c);
    /* Exactly the limit is accepted; one byte more is flagged, and the
     * handler still runs (with the part that fit discarded). */
    char raw[512];
    char big[66];
    memset(big, 'b', sizeof(big));
    snprintf(raw, sizeof(raw), "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 64\r\n\r\n%.64s",
             big);
    ck_assert_int_eq(exchange(raw, &r), 200);
    ck_assert(!strncmp(sh_buf_peek(&r.body), "len=64 too_large=0 body=bbbb", 28));
    /* The next body gets the finished request's buffer: none of it shows. */
    ck_assert_int_eq(exchange("POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", &r),
                     200);
    ck_assert_str_eq(sh_buf_peek(&r.body), "len=3 too_large=0 body=abc");
    snprintf(raw, sizeof(raw), "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 65\r\n\r\n%.65s",
             big);
    ck_assert_int_eq(exchange(raw, &r), 200);
    ck_assert_str_eq(sh_buf_peek(&r.body), "len=0 too_large=1 body=");
    ck_assert_int_eq(exchange("POST /nobody HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx", &r),
                     200);
    ck_assert_str_eq(sh_buf_peek(&r.body), "len=0 too_large=1 body=");
    ck_assert_int_eq(exchange("GET /nobody HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
    ck_assert_str_eq(sh_buf_peek(&r.body), "len=0 too_large=0 body=");
    th_resp_release(&r);
    ck_assert_int_eq(F.calls, 6);
    stop();
}
END_TEST

/* ---- answering ---- */

static void h_respond(sh_http_req_t *req, void *data)
{
    F.calls++;
    const char *what = sh_http_req_query(req, "what");
    if (!strcmp(what, "plain")) {
        sh_http_req_add_header(req, "X-Test", "one");
        sh_http_req_add_header(req, "X-Other", "two");
        sh_http_respond(req, 201, "text/x-test", "created\n", 8);
    } else if (!strcmp(what, "error")) {
        sh_http_respond_error_json(req, 400, 3, "bad \"x\" \\ y");
    } else if (!strcmp(what, "empty")) {
        sh_http_respond(req, 204, NULL, "", 0);
    }
}

START_TEST(test_respond_and_error_json)
{
    start();
    route("/r", true, 0, h_respond, NULL);
    th_resp_t r = {0};
    char v[128];
    ck_assert_int_eq(exchange("GET /r?what=plain HTTP/1.1\r\nHost: x\r\n\r\n", &r), 201);
    ck_assert_str_eq(sh_buf_peek(&r.body), "created\n");
    ck_assert_str_eq(th_resp_header(&r, "Content-Type", v, sizeof(v)), "text/x-test");
    ck_assert_str_eq(th_resp_header(&r, "X-Test", v, sizeof(v)), "one");
    ck_assert_str_eq(th_resp_header(&r, "X-Other", v, sizeof(v)), "two");
    ck_assert_str_eq(th_resp_header(&r, "Content-Length", v, sizeof(v)), "8");
    ck_assert_int_eq(exchange("GET /r?what=error HTTP/1.1\r\nHost: x\r\n\r\n", &r), 400);
    ck_assert_str_eq(sh_buf_peek(&r.body), "{\"code\":3,\"message\":\"bad \\\"x\\\" \\\\ y\"}");
    ck_assert_str_eq(th_resp_header(&r, "Content-Type", v, sizeof(v)), "application/json");
    ck_assert_int_eq(exchange("GET /r?what=empty HTTP/1.1\r\nHost: x\r\n\r\n", &r), 204);
    ck_assert_uint_eq(sh_buf_avail(&r.body), 0);
    th_resp_release(&r);
    stop();
}
END_TEST

START_TEST(test_handler_without_response_gets_500)
{
    start();
    route("/bug", true, 0, h_nothing, NULL);
    th_resp_t r = {0};
    ck_assert_int_eq(exchange("GET /bug HTTP/1.1\r\nHost: x\r\n\r\n", &r), 500);
    ck_assert_str_eq(sh_buf_peek(&r.body), "internal error\n");
    ck_assert_int_eq(F.calls, 1);
    ck_assert_uint_eq(sh_http_stats(F.env.http)->responses_by_class[5], 1);
    th_resp_release(&r);
    stop();
}
END_TEST

static sh_msg_t *msgs_kept[4];

static void h_msgs(sh_http_req_t *req, void *data)
{
    F.calls++;
    if (sh_http_req_query(req, "none")) {
        /* No messages: an empty body. */
        ck_assert_int_eq(sh_http_respond_msgs(req, 200, "text/plain", NULL, 0, "\x1e"), 0);
        return;
    }
    const char *sep = sh_http_req_query(req, "sep");
    sh_msg_t *m[3];
    for (int i = 0; i < 3; i++)
        m[i] = sh_msg_ref(msgs_kept[i]);
    sh_http_req_add_header(req, "X-N", "3");
    ck_assert_int_eq(
        sh_http_respond_msgs(req, 200, "text/plain; charset=UTF-8", m, 3, sep ? "\x1e" : NULL), 0);
}

START_TEST(test_respond_msgs_zero_copy)
{
    start();
    route("/m", true, 0, h_msgs, NULL);
    msgs_kept[0] = sh_msg_new("4hello", 6, false);
    msgs_kept[1] = sh_msg_new("\x01\x02\x03\xff", 4, true);
    msgs_kept[2] = sh_msg_new("2", 1, false);
    th_resp_t r = {0};
    char v[64];
    ck_assert_int_eq(exchange("GET /m?sep=1 HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
    ck_assert_str_eq(sh_buf_peek(&r.body), "4hello\x1e"
                                           "bAQID/w==\x1e"
                                           "2");
    ck_assert_str_eq(th_resp_header(&r, "Content-Length", v, sizeof(v)), "18");
    ck_assert_str_eq(th_resp_header(&r, "Content-Type", v, sizeof(v)), "text/plain; charset=UTF-8");
    ck_assert_str_eq(th_resp_header(&r, "X-N", v, sizeof(v)), "3");
    /* The base64 form is built once and kept with the message. */
    sh_msg_t *b64 = msgs_kept[1]->base64;
    ck_assert_ptr_nonnull(b64);
    ck_assert_int_eq(exchange("GET /m HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
    ck_assert_str_eq(sh_buf_peek(&r.body), "4hellobAQID/w==2");
    ck_assert_ptr_eq(msgs_kept[1]->base64, b64);
    ck_assert_int_eq(exchange("GET /m?none=1 HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
    ck_assert_uint_eq(sh_buf_avail(&r.body), 0);
    th_resp_release(&r);
    ck_assert(th_env_wait_idle(&F.env, TH_WAIT_MS));
    /* The response held references, not copies; they are gone with it. */
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq(msgs_kept[i]->refs, 1);
        sh_msg_unref(msgs_kept[i]);
    }
    stop();
}
END_TEST

/* ---- connections ---- */

START_TEST(test_keep_alive_two_requests_one_connection)
{
    start();
    route("/k", false, 16, h_name, "k");
    th_conn_t c;
    th_conn_connect(&c, F.env.loop, F.env.port);
    th_resp_t r = {0};
    char v[64];
    th_conn_write_str(&c, "GET /k/1 HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert(th_http_read(&c, &r, TH_WAIT_MS));
    ck_assert_str_eq(sh_buf_peek(&r.body), "k GET /k/1");
    /* Answered on the handler's second call, so MHD keeps the connection. */
    ck_assert(!th_resp_header(&r, "Connection", v, sizeof(v)) || strcasecmp(v, "close"));
    th_conn_write_str(&c, "POST /k/2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
    ck_assert(th_http_read(&c, &r, TH_WAIT_MS));
    ck_assert_str_eq(sh_buf_peek(&r.body), "k POST /k/2");
    /* Two pipelined requests in one write: both answered, in order. */
    th_conn_write_str(&c,
                      "GET /k/3 HTTP/1.1\r\nHost: x\r\n\r\nGET /k/4 HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert(th_http_read(&c, &r, TH_WAIT_MS));
    ck_assert_str_eq(sh_buf_peek(&r.body), "k GET /k/3");
    ck_assert(th_http_read(&c, &r, TH_WAIT_MS));
    ck_assert_str_eq(sh_buf_peek(&r.body), "k GET /k/4");
    /* A 404 (answered by the layer itself) keeps the connection too. */
    th_conn_write_str(&c, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert(th_http_read(&c, &r, TH_WAIT_MS));
    ck_assert_int_eq(r.status, 404);
    th_conn_write_str(&c, "GET /k/5 HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert(th_http_read(&c, &r, TH_WAIT_MS));
    ck_assert_str_eq(sh_buf_peek(&r.body), "k GET /k/5");
    ck_assert(!c.eof);
    ck_assert_uint_eq(sh_http_connections(F.env.http), 1);
    ck_assert_int_eq(F.calls, 5);
    th_resp_release(&r);
    th_conn_close(&c);
    stop();
}
END_TEST

START_TEST(test_suspend_resume_from_timer)
{
    start();
    route("/hold", true, 0, h_hold, (void *)(uintptr_t)60);
    th_conn_t c;
    th_conn_connect(&c, F.env.loop, F.env.port);
    th_resp_t r = {0};
    uint64_t t0 = sh_time_ms();
    th_conn_write_str(&c, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert(th_http_read(&c, &r, TH_WAIT_MS));
    ck_assert_uint_ge(sh_time_ms() - t0, 55);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(sh_buf_peek(&r.body), "late");
    ck_assert_int_eq(F.calls, 2);
    ck_assert_int_eq(F.resumed_calls, 1);
    /* The request ended: its owner heard it once. */
    ck_assert(th_wait_count(F.env.loop, &F.done_calls, 1, TH_WAIT_MS));
    th_run_for(F.env.loop, 10);
    ck_assert_int_eq(F.done_calls, 1);
    ck_assert_ptr_eq(F.done_owner, &F);
    /* The connection is still usable (keep-alive after a resume). */
    th_conn_write_str(&c, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert(th_http_read(&c, &r, TH_WAIT_MS));
    ck_assert_str_eq(sh_buf_peek(&r.body), "late");
    ck_assert(th_wait_count(F.env.loop, &F.done_calls, 2, TH_WAIT_MS));
    th_resp_release(&r);
    th_conn_close(&c);
    stop();
}
END_TEST

static bool done_once(void *arg)
{
    return F.done_calls > 0;
}

START_TEST(test_client_leaves_while_suspended)
{
    start();
    route("/hold", true, 0, h_hold, (void *)(uintptr_t)0);
    th_conn_t c;
    th_conn_connect(&c, F.env.loop, F.env.port);
    th_conn_write_str(&c, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert(th_wait_count(F.env.loop, &F.calls, 1, TH_WAIT_MS));
    ck_assert_ptr_nonnull(F.held);
    ck_assert_int_eq(F.calls, 1);
    th_conn_close(&c);
    th_run_for(F.env.loop, 30);
    /* A suspended connection is not watched: nothing ended yet. */
    ck_assert_int_eq(F.done_calls, 0);
    F.in_call = true;
    sh_http_req_resume(F.held);
    F.in_call = false;
    ck_assert(th_run_until(F.env.loop, done_once, NULL, TH_WAIT_MS));
    th_run_for(F.env.loop, 20);
    ck_assert_int_eq(F.done_calls, 1);
    ck_assert_ptr_null(F.held);
    stop();
}
END_TEST

START_TEST(test_free_with_suspended_request)
{
    start();
    route("/hold", true, 0, h_hold, (void *)(uintptr_t)0);
    th_conn_t c;
    th_conn_connect(&c, F.env.loop, F.env.port);
    th_conn_write_str(&c, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert(th_wait_count(F.env.loop, &F.calls, 1, TH_WAIT_MS));
    ck_assert_ptr_nonnull(F.held);
    /* libmicrohttpd aborts when stopped with a suspended connection: the
     * layer must resume it first, and tell the owner once. */
    sh_http_free(F.env.http);
    F.env.http = NULL;
    ck_assert_int_eq(F.done_calls, 1);
    ck_assert_int_eq(F.calls, 1); /* the handler is not called again */
    /* The client hears 503 or sees the connection close. */
    th_resp_t r = {0};
    if (th_http_read(&c, &r, TH_WAIT_MS))
        ck_assert_int_eq(r.status, 503);
    else
        ck_assert(c.eof);
    ck_assert(th_conn_wait_eof(&c, TH_WAIT_MS));
    th_resp_release(&r);
    th_conn_close(&c);
    sh_timer_stop(F.env.loop, &F.timer);
    th_env_stop(&F.env);
    ck_assert_int_eq(F.done_calls, 1);
}
END_TEST

/* ---- streaming responses (SSE) ---- */

/* What the stream's reader hands out: `pending` bytes, then 0 (nothing
 * now) or, once `end` is set, the end of the stream. */
typedef struct stream_src {
    sh_buf_t pending;
    bool end;
    int reads;
    sh_http_req_t *req;
} stream_src_t;

static stream_src_t S;

static long stream_read(char *buf, size_t max, void *data)
{
    stream_src_t *src = data;
    ck_assert_msg(!F.in_call, "reader ran inside a call made by the owner");
    src->reads++;
    size_t n = sh_buf_avail(&src->pending);
    if (n == 0)
        return src->end ? -1 : 0;
    if (n > max)
        n = max;
    memcpy(buf, sh_buf_peek(&src->pending), n);
    sh_buf_consume(&src->pending, n);
    return (long)n;
}

static void h_stream(sh_http_req_t *req, void *data)
{
    F.calls++;
    S.req = req;
    sh_http_req_set_owner(req, &F, on_done);
    sh_http_req_add_header(req, "Cache-Control", "no-store");
    ck_assert_int_eq(sh_http_respond_stream(req, 200, "text/event-stream", stream_read, &S), 0);
}

static bool has_text(void *arg)
{
    return strstr(sh_buf_peek(&((th_conn_t *)arg)->in), "world") != NULL;
}

static bool has_end(void *arg)
{
    return strstr(sh_buf_peek(&((th_conn_t *)arg)->in), "\r\n0\r\n\r\n") != NULL;
}

START_TEST(test_stream_suspends_when_idle)
{
    start();
    memset(&S, 0, sizeof(S));
    route("/stream", true, 0, h_stream, NULL);
    sh_buf_append_str(&S.pending, "hello");
    th_conn_t c;
    th_conn_connect(&c, F.env.loop, F.env.port);
    th_conn_write_str(&c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert(th_conn_wait_bytes(&c, 1, TH_WAIT_MS));
    th_run_for(F.env.loop, 50);
    ck_assert_ptr_nonnull(strstr(sh_buf_peek(&c.in), "Transfer-Encoding: chunked"));
    ck_assert_ptr_nonnull(strstr(sh_buf_peek(&c.in), "Content-Type: text/event-stream"));
    ck_assert_ptr_nonnull(strstr(sh_buf_peek(&c.in), "\r\n5\r\nhello\r\n"));
    /* Nothing to say: the connection is suspended, not polled. A reader
     * returning "no data" unsuspended is called again at once, forever. */
    int reads = S.reads;
    th_run_for(F.env.loop, 200);
    ck_assert_int_le(S.reads - reads, 1);
    ck_assert(sh_http_req_suspended(S.req));
    /* News: resumed from outside, the reader is called from the loop. */
    sh_buf_append_str(&S.pending, "world");
    F.in_call = true;
    sh_http_req_resume(S.req);
    F.in_call = false;
    ck_assert(th_run_until(F.env.loop, has_text, &c, TH_WAIT_MS));
    /* The end: the last chunk, and the request is over (keep-alive). */
    S.end = true;
    sh_http_req_resume(S.req);
    ck_assert(th_run_until(F.env.loop, has_end, &c, TH_WAIT_MS));
    ck_assert(th_wait_count(F.env.loop, &F.done_calls, 1, TH_WAIT_MS));
    ck_assert(!c.eof);
    th_conn_close(&c);
    sh_buf_release(&S.pending);
    stop();
}
END_TEST

START_TEST(test_stream_client_gone_and_free)
{
    start();
    memset(&S, 0, sizeof(S));
    route("/stream", true, 0, h_stream, NULL);
    sh_buf_append_str(&S.pending, "first");
    th_conn_t c;
    th_conn_connect(&c, F.env.loop, F.env.port);
    th_conn_write_str(&c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert(th_conn_wait_bytes(&c, 1, TH_WAIT_MS));
    th_run_for(F.env.loop, 30);
    th_conn_close(&c);
    th_run_for(F.env.loop, 30);
    ck_assert_int_eq(F.done_calls, 0); /* suspended: nobody looks */
    /* Writes find the dead peer (the first may still be accepted). */
    for (int i = 0; i < 20 && !F.done_calls; i++) {
        sh_buf_append_str(&S.pending, ": ping\n\n");
        sh_http_req_resume(S.req);
        th_run_for(F.env.loop, 20);
    }
    ck_assert_int_eq(F.done_calls, 1);
    int reads = S.reads;
    th_run_for(F.env.loop, 30);
    ck_assert_int_eq(S.reads, reads); /* never read after the end */

    /* Freeing the server with a suspended stream: the owner is told, the
     * reader is not called again, libmicrohttpd does not abort. */
    F.done_calls = 0;
    route("/stream2", true, 0, h_stream, NULL);
    th_conn_connect(&c, F.env.loop, F.env.port);
    th_conn_write_str(&c, "GET /stream2 HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert(th_wait_count(F.env.loop, &F.calls, 2, TH_WAIT_MS));
    th_run_for(F.env.loop, 30);
    ck_assert(sh_http_req_suspended(S.req));
    reads = S.reads;
    sh_http_free(F.env.http);
    F.env.http = NULL;
    ck_assert_int_eq(F.done_calls, 1);
    ck_assert_int_eq(S.reads, reads);
    th_conn_close(&c);
    sh_buf_release(&S.pending);
    th_env_stop(&F.env);
}
END_TEST

/* ---- upgrade ---- */

static void ws_on_message(sh_ws_conn_t *ws, const char *data, size_t len, bool binary, void *owner)
{
    F.ws_messages++;
    sh_buf_t b = SH_BUF_INIT;
    sh_buf_append_str(&b, "echo:");
    sh_buf_append(&b, data, len);
    sh_ws_conn_send(ws, sh_msg_new(sh_buf_peek(&b), sh_buf_avail(&b), binary));
    sh_buf_release(&b);
}

static void ws_on_close(sh_ws_conn_t *ws, uint16_t code, const char *reason, void *owner)
{
    F.ws_closes++;
    F.ws = NULL;
}

static const sh_ws_handler_t ws_handler = {.on_message = ws_on_message, .on_close = ws_on_close};

static void on_upgraded(int fd, const char *extra, size_t extra_len, void *data)
{
    ck_assert_ptr_eq(data, &F);
    ck_assert_int_ge(fd, 0);
    F.upgrades++;
    sh_ws_options_t o = {.max_message = 1024, .output_limit = 65536, .close_linger = 100};
    F.ws = sh_ws_conn_new(F.env.loop, fd, extra, extra_len, &o, &ws_handler, &F);
}

static void h_upgrade(sh_http_req_t *req, void *data)
{
    F.calls++;
    char accept[29];
    ck_assert_int_eq(sh_ws_accept_key(sh_http_req_header(req, "Sec-WebSocket-Key"), accept), 0);
    sh_http_req_add_header(req, "Sec-WebSocket-Accept", accept);
    /* With an owner: exactly one of the upgrade callback and done runs. */
    sh_http_req_set_owner(req, &F, on_done);
    ck_assert_int_eq(sh_http_respond_upgrade(req, on_upgraded, &F), 0);
}

START_TEST(test_upgrade_hands_over_socket_with_extra)
{
    start();
    route("/ws", true, 0, h_upgrade, NULL);
    th_conn_t c;
    th_conn_connect(&c, F.env.loop, F.env.port);
    /* A frame sent in the same write as the request headers: libmicrohttpd
     * reads it with the request and must hand it over as `extra`. */
    sh_buf_t early = SH_BUF_INIT;
    th_ws_encode(&early, SH_WS_OP_TEXT, true, "early", 5, true);
    th_resp_t r = {0};
    ck_assert(th_ws_handshake(&c, "/ws", sh_buf_peek(&early), sh_buf_avail(&early), &r));
    sh_buf_release(&early);
    char v[64];
    ck_assert_int_eq(th_resp_header_count(&r, "Connection"), 1);
    ck_assert_str_eq(th_resp_header(&r, "Upgrade", v, sizeof(v)), "websocket");
    uint8_t op;
    sh_buf_t payload = SH_BUF_INIT;
    ck_assert(th_ws_read(&c, &op, &payload, TH_WAIT_MS));
    ck_assert_uint_eq(op, SH_WS_OP_TEXT);
    ck_assert_str_eq(sh_buf_peek(&payload), "echo:early");
    ck_assert_int_eq(F.upgrades, 1);
    ck_assert_uint_eq(sh_http_stats(F.env.http)->upgrades, 1);
    /* libmicrohttpd let go of the connection (its copy closed without a
     * shutdown()), and the WebSocket keeps working on our duplicate. */
    ck_assert(th_env_wait_idle(&F.env, TH_WAIT_MS));
    th_ws_send(&c, SH_WS_OP_TEXT, "later", 5);
    ck_assert(th_ws_read(&c, &op, &payload, TH_WAIT_MS));
    ck_assert_str_eq(sh_buf_peek(&payload), "echo:later");
    ck_assert_int_eq(F.ws_messages, 2);
    ck_assert_int_eq(F.done_calls, 0);
    /* Close from the client; the connection ends on its own. */
    uint8_t body[2] = {0x03, 0xe8};
    th_ws_send(&c, SH_WS_OP_CLOSE, body, 2);
    ck_assert(th_ws_read(&c, &op, &payload, TH_WAIT_MS));
    ck_assert_uint_eq(op, SH_WS_OP_CLOSE);
    ck_assert(th_conn_wait_eof(&c, TH_WAIT_MS));
    ck_assert(th_wait_count(F.env.loop, &F.ws_closes, 1, TH_WAIT_MS));
    ck_assert_int_eq(F.done_calls, 0);
    sh_buf_release(&payload);
    th_resp_release(&r);
    th_conn_close(&c);
    stop();
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("http");
    tcase_set_timeout(tc, 8);
    tcase_add_test(tc, test_routing_longest_prefix_and_exact);
    tcase_add_test(tc, test_route_table_is_bounded);
    tcase_add_test(tc, test_request_accessors);
    tcase_add_test(tc, test_body_accumulation_and_limit);
    tcase_add_test(tc, test_respond_and_error_json);
    tcase_add_test(tc, test_handler_without_response_gets_500);
    tcase_add_test(tc, test_respond_msgs_zero_copy);
    tcase_add_test(tc, test_keep_alive_two_requests_one_connection);
    tcase_add_test(tc, test_suspend_resume_from_timer);
    tcase_add_test(tc, test_client_leaves_while_suspended);
    tcase_add_test(tc, test_free_with_suspended_request);
    tcase_add_test(tc, test_stream_suspends_when_idle);
    tcase_add_test(tc, test_stream_client_gone_and_free);
    tcase_add_test(tc, test_upgrade_hands_over_socket_with_extra);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
