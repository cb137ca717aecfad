/* siohub-bench's WebSocket client codec (src/bench/ws.c): the upgrade
 * request and the accept value it expects (RFC 6455's own example), masked
 * frames out in each length form, and the parser of the server's frames:
 * lengths, waiting for the rest, and what it refuses. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench/ws.h"

START_TEST(test_request_and_accept)
{
    /* RFC 6455 section 1.3: the key of the nonce "the sample nonce". */
    uint64_t r1, r2;
    memcpy(&r1, "the samp", 8);
    memcpy(&r2, "le nonce", 8);
    sb_buf_t b = {0};
    char accept[SB_WS_ACCEPT_LEN + 1];
    sb_ws_request(&b, "/ws/socket.io/?EIO=4&transport=websocket", "127.0.0.1:8080", r1, r2, accept);
    ck_assert_str_eq(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    const char *req = sb_buf_head(&b);
    size_t n = sb_buf_avail(&b);
    static const char first[] = "GET /ws/socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n";
    ck_assert(n > sizeof(first) && !memcmp(req, first, sizeof(first) - 1));
    ck_assert(memmem(req, n, "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", 47));
    ck_assert(memmem(req, n, "\r\nUpgrade: websocket\r\n", 22));
    ck_assert(memmem(req, n, "\r\nSec-WebSocket-Version: 13\r\n", 29));
    ck_assert(!memcmp(req + n - 4, "\r\n\r\n", 4));
    sb_buf_release(&b);
}
END_TEST

/* sb_ws_frame's output, read back by hand: FIN, opcode, the mask bit, the
 * shortest length form, and the payload under the mask. */
START_TEST(test_frames_out)
{
    static const size_t sizes[] = {0, 1, 125, 126, 65535, 65536, 70000};
    uint32_t mask32 = 0x5a3c96e1;
    uint8_t mask[4];
    memcpy(mask, &mask32, 4);
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k];
        char *payload = malloc(n + 1);
        for (size_t i = 0; i < n; i++)
            payload[i] = (char)('a' + i % 26);
        sb_buf_t b = {0};
        sb_ws_frame(&b, SB_WS_TEXT, payload, n, mask32);
        const uint8_t *f = (const uint8_t *)sb_buf_head(&b);
        ck_assert_uint_eq(f[0], 0x80 | SB_WS_TEXT);
        ck_assert(f[1] & 0x80);
        size_t len = f[1] & 0x7f, h = 2;
        if (n < 126) {
            ck_assert_uint_eq(len, n);
        } else if (n <= 0xffff) {
            ck_assert_uint_eq(len, 126);
            len = (size_t)f[2] << 8 | f[3];
            h = 4;
        } else {
            ck_assert_uint_eq(len, 127);
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | f[2 + i];
            h = 10;
        }
        ck_assert_uint_eq(len, n);
        ck_assert(!memcmp(f + h, mask, 4));
        ck_assert_uint_eq(sb_buf_avail(&b), h + 4 + n);
        for (size_t i = 0; i < n; i++)
            ck_assert_int_eq((char)(f[h + 4 + i] ^ mask[i & 3]), payload[i]);
        sb_buf_release(&b);
        free(payload);
    }
}
END_TEST

/* An unmasked frame as a server writes it. */
static size_t server_frame(uint8_t *out, uint8_t first, size_t n)
{
    size_t h = 2;
    out[0] = first;
    if (n < 126) {
        out[1] = (uint8_t)n;
    } else if (n <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(n >> 8);
        out[3] = (uint8_t)n;
        h = 4;
    } else {
        out[1] = 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
        h = 10;
    }
    for (size_t i = 0; i < n; i++)
        out[h + i] = (uint8_t)i;
    return h + n;
}

START_TEST(test_parse_lengths)
{
    static const size_t sizes[] = {0, 5, 125, 126, 300, 65535, 65536};
    uint8_t *buf = malloc(65536 + 16);
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k];
        size_t total = server_frame(buf, 0x80 | SB_WS_TEXT, n);
        sb_ws_frame_t f;
        const char *why = NULL;
        ck_assert_int_eq(sb_ws_parse((const char *)buf, total, &f, &why), 0);
        ck_assert(f.fin);
        ck_assert_uint_eq(f.opcode, SB_WS_TEXT);
        ck_assert_uint_eq(f.len, n);
        ck_assert_uint_eq(f.size, total);
        ck_assert_ptr_eq(f.payload, (const char *)buf + (total - n));
        /* Any shorter piece waits for the rest (a few, for the big ones). */
        for (size_t cut = 0; cut < total; cut += cut < 16 ? 1 : 997)
            ck_assert_int_eq(sb_ws_parse((const char *)buf, cut, &f, &why), -EAGAIN);
        ck_assert_int_eq(sb_ws_parse((const char *)buf, total - 1, &f, &why), -EAGAIN);
    }
    /* A continuation without FIN, and a ping. */
    size_t total = server_frame(buf, 0x00, 3);
    sb_ws_frame_t f;
    const char *why = NULL;
    ck_assert_int_eq(sb_ws_parse((const char *)buf, total, &f, &why), 0);
    ck_assert(!f.fin);
    ck_assert_uint_eq(f.opcode, 0);
    total = server_frame(buf, 0x80 | SB_WS_PING, 0);
    ck_assert_int_eq(sb_ws_parse((const char *)buf, total, &f, &why), 0);
    ck_assert_uint_eq(f.opcode, SB_WS_PING);
    free(buf);
}
END_TEST

START_TEST(test_parse_refused)
{
    sb_ws_frame_t f;
    const char *why = NULL;
    static const uint8_t rsv[] = {0x80 | 0x40 | SB_WS_TEXT, 0};
    ck_assert_int_eq(sb_ws_parse((const char *)rsv, sizeof(rsv), &f, &why), -EPROTO);
    ck_assert_str_eq(why, "reserved bits set");
    static const uint8_t masked[] = {0x80 | SB_WS_TEXT, 0x80 | 1, 1, 2, 3, 4, 'x'};
    ck_assert_int_eq(sb_ws_parse((const char *)masked, sizeof(masked), &f, &why), -EPROTO);
    ck_assert_str_eq(why, "masked frame from the server");
    /* Over 16 MiB is refused from its header, before the payload comes. */
    uint8_t big[10] = {0x80 | SB_WS_BINARY, 127};
    uint64_t n = SB_WS_MAX_FRAME + 1ull;
    for (int i = 0; i < 8; i++)
        big[2 + i] = (uint8_t)(n >> (56 - 8 * i));
    ck_assert_int_eq(sb_ws_parse((const char *)big, sizeof(big), &f, &why), -EPROTO);
    ck_assert_str_eq(why, "frame over 16 MiB");
    /* The largest length a header can hold. */
    memset(big + 2, 0xff, 8);
    ck_assert_int_eq(sb_ws_parse((const char *)big, sizeof(big), &f, &why), -EPROTO);
    /* Exactly 16 MiB is a length to wait for. */
    n = SB_WS_MAX_FRAME;
    for (int i = 0; i < 8; i++)
        big[2 + i] = (uint8_t)(n >> (56 - 8 * i));
    ck_assert_int_eq(sb_ws_parse((const char *)big, sizeof(big), &f, &why), -EAGAIN);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bench_ws");
    TCase *tc = tcase_create("ws");
    tcase_add_test(tc, test_request_and_accept);
    tcase_add_test(tc, test_frames_out);
    tcase_add_test(tc, test_parse_lengths);
    tcase_add_test(tc, test_parse_refused);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
