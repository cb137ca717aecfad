/* siohub-bench's messages and their checks (src/bench/payload.c) and its
 * latency histogram (src/bench/hist.c): a message is JSON of exactly the
 * size asked for and reads back, in either padding, however a server wraps
 * or spaces it; the tracker counts each message once and in order; the
 * histogram's percentiles are within its resolution of the exact ones. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bench/hist.h"
#include "bench/payload.h"

START_TEST(test_format_and_parse)
{
    static const size_t sizes[] = {SB_PAYLOAD_MIN, 100, 250, 4000};
    for (int zh = 0; zh < 2; zh++) {
        for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
            sb_buf_t b = {0};
            sb_payload_format(&b, 123456789, 65535, 987654321012345ull, sizes[k], zh);
            ck_assert_uint_eq(sb_buf_avail(&b), sizes[k]);
            json_error_t err;
            json_t *v = json_loadb(sb_buf_head(&b), sb_buf_avail(&b), 0, &err);
            ck_assert_msg(v != NULL, "not JSON: %s", err.text);
            ck_assert_int_eq(json_integer_value(json_object_get(v, "seq")), 123456789);
            const char *pad = json_string_value(json_object_get(v, "pad"));
            ck_assert(pad != NULL);
            /* Chinese padding decodes to characters outside ASCII. */
            if (zh)
                ck_assert((unsigned char)pad[0] >= 0x80);
            else
                ck_assert_uint_eq(strspn(pad, "x"), strlen(pad));
            json_decref(v);
            sb_payload_t m;
            ck_assert(sb_payload_parse(sb_buf_head(&b), sb_buf_avail(&b), &m));
            ck_assert_uint_eq(m.seq, 123456789);
            ck_assert_uint_eq(m.pub, 65535);
            ck_assert_uint_eq(m.t_ns, 987654321012345ull);
            sb_buf_release(&b);
        }
    }
    /* The fields need more than a small size: it grows to hold them. */
    sb_buf_t b = {0};
    sb_payload_format(&b, 1, 2, 3, 0, false);
    static const char fields[] = "{\"seq\":1,\"pub\":2,\"t\":3,\"pad\":\"\"}";
    ck_assert_uint_eq(sb_buf_avail(&b), sizeof(fields) - 1);
    ck_assert(!memcmp(sb_buf_head(&b), fields, sizeof(fields) - 1));
    sb_payload_t m;
    ck_assert(sb_payload_parse(sb_buf_head(&b), sb_buf_avail(&b), &m));
    ck_assert(m.seq == 1 && m.pub == 2 && m.t_ns == 3);
    sb_buf_release(&b);
}
END_TEST

START_TEST(test_parse_wrapped_and_refused)
{
    static const char spaced[] = "{\"data\": {\"seq\": 5, \"pub\": 1, \"t\": 99, \"pad\": \"xx\"}}";
    sb_payload_t m;
    ck_assert(sb_payload_parse(spaced, sizeof(spaced) - 1, &m));
    ck_assert(m.seq == 5 && m.pub == 1 && m.t_ns == 99);
    static const char *const bad[] = {
        "{\"seq\":1,\"pub\":2}",                  /* no t */
        "{\"seq\":-1,\"pub\":2,\"t\":3}",         /* negative */
        "{\"seq\":1,\"pub\":65536,\"t\":3}",      /* no such publisher */
        "{\"seq\":4294967295,\"pub\":2,\"t\":3}", /* SB_SEQ_NONE */
        "{\"seq\":\"1\",\"pub\":2,\"t\":3}",      /* a string */
        "hello",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!sb_payload_parse(bad[i], strlen(bad[i]), &m), "%s", bad[i]);
    /* The fields are looked for in the first 160 bytes only. */
    char late[400];
    memset(late, ' ', sizeof(late));
    memcpy(late + 200, "{\"seq\":1,\"pub\":2,\"t\":3}", 23);
    ck_assert(!sb_payload_parse(late, sizeof(late), &m));
}
END_TEST

START_TEST(test_tracker)
{
    sb_tracker_t t;
    sb_tracker_init(&t, 2, 2);
    sb_stats_t st;
    memset(&st, 0, sizeof(st));
    uint32_t base[2] = {10, 0}, count[2] = {3, 1};
    sb_tracker_begin(&t, base);
    /* Client 0 gets publisher 0's 10..12 and publisher 1's 0; client 1
     * gets 10 twice, then 12 before 11, and one from an earlier window. */
    sb_payload_t m = {.pub = 0, .t_ns = 1000};
    for (uint32_t s = 10; s <= 12; s++) {
        m.seq = s;
        sb_tracker_add(&t, &st, 0, &m, 50, 2000);
    }
    m.pub = 1;
    m.seq = 0;
    sb_tracker_add(&t, &st, 0, &m, 50, 2000);
    m.pub = 0;
    m.seq = 9;
    sb_tracker_add(&t, &st, 1, &m, 50, 2000);
    m.seq = 10;
    sb_tracker_add(&t, &st, 1, &m, 50, 2000);
    sb_tracker_add(&t, &st, 1, &m, 50, 2000);
    m.seq = 12;
    sb_tracker_add(&t, &st, 1, &m, 50, 2000);
    m.seq = 11;
    sb_tracker_add(&t, &st, 1, &m, 50, 2000);
    m.pub = 7;
    sb_tracker_add(&t, &st, 1, &m, 50, 2000);
    ck_assert_uint_eq(sb_tracker_end(&t, count), 4);
    ck_assert_uint_eq(t.complete, 1); /* client 0 */
    ck_assert_uint_eq(st.delivered, 6);
    ck_assert_uint_eq(st.late, 1);
    ck_assert_uint_eq(st.disordered, 2);
    ck_assert_uint_eq(st.unexpected, 1);
    ck_assert_uint_eq(st.bytes, 300);
    ck_assert_uint_eq(st.latency.n, 6);
    ck_assert_uint_eq(sb_hist_pct(&st.latency, 50), 1); /* (2000 - 1000) ns */
    sb_tracker_release(&t);
}
END_TEST

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

START_TEST(test_hist_percentiles)
{
    enum { N = 20000 };
    uint64_t *v = malloc(N * sizeof(*v));
    static sb_hist_t whole, half1, half2;
    memset(&whole, 0, sizeof(whole));
    memset(&half1, 0, sizeof(half1));
    memset(&half2, 0, sizeof(half2));
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        /* Spread over six decades, as latencies in us are. */
        v[i] = (x % 1000) * (1ull << (x >> 60) % 20) + x % 7;
        sb_hist_add(&whole, v[i]);
        sb_hist_add(i % 2 ? &half1 : &half2, v[i]);
    }
    sb_hist_merge(&half1, &half2);
    ck_assert(!memcmp(&half1, &whole, sizeof(whole)));
    qsort(v, N, sizeof(*v), cmp_u64);
    static const double pcts[] = {1, 25, 50, 90, 99, 99.9, 100};
    for (size_t k = 0; k < sizeof(pcts) / sizeof(pcts[0]); k++) {
        size_t rank = (size_t)(N * pcts[k] / 100.0 + 0.5);
        uint64_t exact = v[rank ? rank - 1 : 0], got = sb_hist_pct(&whole, pcts[k]);
        /* Exact below 128, else within one bucket: 1/64 of the value. */
        uint64_t slack = exact < 128 ? 0 : exact / 64 + 1;
        ck_assert_msg(got + slack >= exact && got <= exact + slack, "p%g: %llu for %llu", pcts[k],
                      (unsigned long long)got, (unsigned long long)exact);
    }
    ck_assert_uint_eq(whole.max, v[N - 1]);
    static sb_hist_t empty;
    ck_assert_uint_eq(sb_hist_pct(&empty, 99), 0);
    free(v);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bench_payload");
    TCase *tc = tcase_create("payload");
    tcase_add_test(tc, test_format_and_parse);
    tcase_add_test(tc, test_parse_wrapped_and_refused);
    tcase_add_test(tc, test_tracker);
    tcase_add_test(tc, test_hist_percentiles);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
