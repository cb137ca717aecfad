/* siohub-bench's HTTP/1.1 client codec (src/bench/http.c): response heads,
 * whole responses with a length or chunked, pipelined responses, the
 * streaming chunked decoder fed in any pieces, and the lenient integer
 * lookup the bench reads its payloads with. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench/http.h"

#define S(lit) lit, sizeof(lit) - 1

START_TEST(test_head_fields)
{
    static const char r[] = "HTTP/1.1 101 Switching Protocols\r\n"
                            "Upgrade: websocket\r\nconnection: Upgrade\r\n"
                            "Sec-WebSocket-Accept:   s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\nrest";
    sb_http_head_t h;
    ck_assert_int_eq(sb_http_parse_head(S(r), &h), 0);
    ck_assert_int_eq(h.status, 101);
    ck_assert_uint_eq(h.head_len, sizeof(r) - 1 - 4);
    ck_assert_int_eq(h.content_length, -1);
    ck_assert(!h.close && !h.chunked);
    ck_assert_uint_eq(h.accept_len, 28);
    ck_assert(!memcmp(h.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", 28));

    static const char r2[] = "HTTP/1.0 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n";
    ck_assert_int_eq(sb_http_parse_head(S(r2), &h), 0);
    ck_assert_int_eq(h.status, 200);
    ck_assert_int_eq(h.content_length, 12);
    ck_assert(h.close && h.chunked);
    ck_assert(h.accept == NULL);
}
END_TEST

START_TEST(test_head_incomplete_and_bad)
{
    sb_http_head_t h;
    static const char whole[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    /* Every proper prefix waits for more. */
    for (size_t n = 0; n < sizeof(whole) - 1; n++)
        ck_assert_int_eq(sb_http_parse_head(whole, n, &h), -EAGAIN);
    ck_assert_int_eq(sb_http_parse_head(S(whole), &h), 0);

    ck_assert_int_eq(sb_http_parse_head(S("HTTP/2 200 OK\r\n\r\n"), &h), -EPROTO);
    ck_assert_int_eq(sb_http_parse_head(S("HTTP/1.1 2x0 OK\r\n\r\n"), &h), -EPROTO);
    ck_assert_int_eq(sb_http_parse_head(S("SMTP/1.1 200 OK\r\n\r\n"), &h), -EPROTO);
    ck_assert_int_eq(sb_http_parse_head(S("HTTP/1.1 20\r\n\r\n"), &h), -EPROTO); /* too short */
    ck_assert_int_eq(sb_http_parse_head(S("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n"), &h),
                     -EPROTO);
    ck_assert_int_eq(sb_http_parse_head(S("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n"), &h),
                     -EPROTO);
    ck_assert_int_eq(
        sb_http_parse_head(S("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999\r\n\r\n"), &h),
        -EPROTO);

    /* A head that never ends is refused once it passes the limit. */
    size_t n = SB_HTTP_MAX_HEAD + 1;
    char *big = malloc(n);
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    memset(big + 20, 'a', n - 20);
    ck_assert_int_eq(sb_http_parse_head(big, SB_HTTP_MAX_HEAD, &h), -EAGAIN);
    ck_assert_int_eq(sb_http_parse_head(big, n, &h), -EPROTO);
    free(big);
}
END_TEST

START_TEST(test_response_with_length)
{
    static const char r[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP";
    sb_http_head_t h;
    sb_buf_t scratch = {0};
    const char *body;
    size_t blen, used;
    ck_assert_int_eq(sb_http_parse_response(S(r), &h, &body, &blen, &used, &scratch), 0);
    ck_assert_uint_eq(blen, 5);
    ck_assert(!memcmp(body, "hello", 5));
    ck_assert_uint_eq(used, sizeof(r) - 1 - 4);
    /* The body not all there yet. */
    ck_assert_int_eq(sb_http_parse_response(r, used - 1, &h, &body, &blen, &used, &scratch),
                     -EAGAIN);
    /* No length and not chunked: only a status without a body will do. */
    ck_assert_int_eq(
        sb_http_parse_response(S("HTTP/1.1 200 OK\r\n\r\nx"), &h, &body, &blen, &used, &scratch),
        -EPROTO);
    static const char nc[] = "HTTP/1.1 204 No Content\r\n\r\n";
    ck_assert_int_eq(sb_http_parse_response(S(nc), &h, &body, &blen, &used, &scratch), 0);
    ck_assert_uint_eq(blen, 0);
    ck_assert_uint_eq(used, sizeof(nc) - 1);
    sb_buf_release(&scratch);
}
END_TEST

START_TEST(test_response_chunked)
{
    static const char r[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "5\r\nhello\r\n"
                            "7;ext=1\r\n, world\r\n"
                            "0\r\n\r\nnext";
    sb_http_head_t h;
    sb_buf_t scratch = {0};
    const char *body;
    size_t blen, used;
    ck_assert_int_eq(sb_http_parse_response(S(r), &h, &body, &blen, &used, &scratch), 0);
    ck_assert_uint_eq(blen, 12);
    ck_assert(!memcmp(body, "hello, world", 12));
    ck_assert_uint_eq(used, sizeof(r) - 1 - 4);
    ck_assert_int_eq(sb_http_parse_response(r, used - 1, &h, &body, &blen, &used, &scratch),
                     -EAGAIN);
    static const char bad[] =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n";
    ck_assert_int_eq(sb_http_parse_response(S(bad), &h, &body, &blen, &used, &scratch), -EPROTO);
    sb_buf_release(&scratch);
}
END_TEST

typedef struct seen {
    int calls, stop_after;
    int status[4];
    char bodies[64];
    size_t blen;
} seen_t;

static bool collect(void *arg, const sb_http_head_t *h, const char *body, size_t blen, uint64_t now)
{
    seen_t *s = arg;
    ck_assert_uint_eq(now, 42);
    if (s->calls < 4)
        s->status[s->calls] = h->status;
    ck_assert(s->blen + blen <= sizeof(s->bodies));
    memcpy(s->bodies + s->blen, body, blen);
    s->blen += blen;
    return ++s->calls != s->stop_after;
}

START_TEST(test_pipelined_responses)
{
    static const char r[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab"
                            "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "3\r\ncde\r\n0\r\n\r\n"
                            "HTTP/1.1 202 Accepted\r\nContent-Length: 4\r\n\r\nfg";
    seen_t s = {0};
    size_t third = (size_t)(strstr(r, "HTTP/1.1 202") - r);
    /* The third is not whole: the first two are handed over, and the
     * bytes used stop before it. */
    ck_assert_int_eq(sb_http_responses(S(r), collect, &s, 42), (long)third);
    ck_assert_int_eq(s.calls, 2);
    ck_assert_int_eq(s.status[0], 200);
    ck_assert_int_eq(s.status[1], 201);
    ck_assert_uint_eq(s.blen, 5);
    ck_assert(!memcmp(s.bodies, "abcde", 5));

    /* A callback that stops: all of the input counts as used. */
    seen_t stop = {.stop_after = 1};
    ck_assert_int_eq(sb_http_responses(S(r), collect, &stop, 42), (long)(sizeof(r) - 1));
    ck_assert_int_eq(stop.calls, 1);

    /* A bad response after a good one. */
    static const char bad[] = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxGARBAGE\r\n\r\n";
    seen_t b = {0};
    ck_assert_int_eq(sb_http_responses(S(bad), collect, &b, 42), -EPROTO);
    ck_assert_int_eq(b.calls, 1);
}
END_TEST

/* A chunked stream decoded in pieces of every size gives what it gives
 * whole. */
START_TEST(test_chunked_in_pieces)
{
    static const char body[] = "4\r\nWiki\r\n5 ; name=value\r\npedia\r\n"
                               "E\r\n in\r\n\r\nchunks.\r\n"
                               "0\r\n\r\n";
    static const char want[] = "Wikipedia in\r\n\r\nchunks.";
    for (size_t piece = 1; piece <= sizeof(body); piece++) {
        sb_chunked_t d = {0};
        sb_buf_t out = {0};
        size_t at = 0;
        int rc = 0;
        while (at < sizeof(body) - 1 && rc == 0) {
            size_t n = sizeof(body) - 1 - at < piece ? sizeof(body) - 1 - at : piece;
            size_t used = 0;
            rc = sb_chunked_feed(&d, body + at, n, &used, &out);
            ck_assert_int_ge(rc, 0);
            ck_assert_uint_le(used, n);
            if (rc == 0)
                ck_assert_uint_eq(used, n); /* more may come: it takes it all */
            at += used;
        }
        ck_assert_int_eq(rc, 1);
        ck_assert_uint_eq(at, sizeof(body) - 1);
        ck_assert_uint_eq(sb_buf_avail(&out), sizeof(want) - 1);
        ck_assert(!memcmp(sb_buf_head(&out), want, sizeof(want) - 1));
        sb_buf_release(&out);
    }
}
END_TEST

START_TEST(test_chunked_refused)
{
    static const char *const bad[] = {
        "g\r\n",                   /* not hex */
        "3\r\nabcX",               /* no CRLF after the data */
        "3\nabc\r\n",              /* LF alone after the size */
        "0\r\nTrailer: x\r\n\r\n", /* a trailer */
        "ffffffffffffffffff\r\n",  /* past 64 bits */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sb_chunked_t d = {0};
        sb_buf_t out = {0};
        size_t used;
        ck_assert_msg(sb_chunked_feed(&d, bad[i], strlen(bad[i]), &used, &out) < 0, "%s", bad[i]);
        sb_buf_release(&out);
    }
}
END_TEST

START_TEST(test_request)
{
    sb_buf_t b = {0};
    sb_http_request(&b, "POST", "/api/v1/emit", "127.0.0.1:8080", "X-A: 1\r\n", "{}", 2);
    static const char want[] = "POST /api/v1/emit HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nX-A: 1\r\n"
                               "Content-Length: 2\r\n\r\n{}";
    ck_assert_uint_eq(sb_buf_avail(&b), sizeof(want) - 1);
    ck_assert(!memcmp(sb_buf_head(&b), want, sizeof(want) - 1));
    sb_buf_reset(&b);
    sb_http_request(&b, "GET", "/", "h", NULL, NULL, 0);
    ck_assert(!memcmp(sb_buf_head(&b), S("GET / HTTP/1.1\r\nHost: h\r\n\r\n")));
    sb_buf_release(&b);
}
END_TEST

START_TEST(test_json_int)
{
    int64_t v = 0;
    ck_assert(sb_json_int(S("{\"seq\":12,\"t\":-5}"), "\"seq\":", &v));
    ck_assert_int_eq(v, 12);
    ck_assert(sb_json_int(S("{\"seq\": 12, \"t\": -5}"), "\"t\":", &v));
    ck_assert_int_eq(v, -5);
    ck_assert(!sb_json_int(S("{\"seq\":\"12\"}"), "\"seq\":", &v));
    ck_assert(!sb_json_int(S("{\"seq\":"), "\"seq\":", &v));
    ck_assert(!sb_json_int(S("{\"seq\":-}"), "\"seq\":", &v));
    ck_assert(!sb_json_int(S("{\"pub\":1}"), "\"seq\":", &v));
    /* Digits past int64 stop being read rather than wrap. */
    ck_assert(sb_json_int(S("{\"t\":123456789012345678901234}"), "\"t\":", &v));
    ck_assert_int_gt(v, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bench_http");
    TCase *tc = tcase_create("http");
    tcase_add_test(tc, test_head_fields);
    tcase_add_test(tc, test_head_incomplete_and_bad);
    tcase_add_test(tc, test_response_with_length);
    tcase_add_test(tc, test_response_chunked);
    tcase_add_test(tc, test_pipelined_responses);
    tcase_add_test(tc, test_chunked_in_pieces);
    tcase_add_test(tc, test_chunked_refused);
    tcase_add_test(tc, test_request);
    tcase_add_test(tc, test_json_int);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
