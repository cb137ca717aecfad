/* siohub-bench's counters (src/bench/stats.c): what the parent adds up
 * from its workers is the sum of their counts, the earliest first and the
 * latest last delivery, the first error any of them kept, and their
 * histograms together; an error counts every time and keeps only the
 * first text, cut to fit. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "bench/stats.h"

START_TEST(test_merge)
{
    static sb_stats_t a, b, c;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&c, 0, sizeof(c));
    a.clients = 3;
    a.delivered = 100;
    a.bytes = 1000;
    a.first_ns = 500;
    a.last_ns = 900;
    a.extra[2] = 7;
    a.cpu_s = 0.5;
    sb_hist_add(&a.latency, 10);
    b.clients = 4;
    b.delivered = 50;
    b.missing = 2;
    b.first_ns = 300;
    b.last_ns = 800;
    b.extra[2] = 1;
    b.cpu_s = 0.25;
    sb_hist_add(&b.latency, 20);
    sb_hist_add(&b.connect, 30);
    strcpy(b.first_error, "client 3: reset");
    strcpy(c.first_error, "client 9: later");

    static sb_stats_t sum;
    memset(&sum, 0, sizeof(sum));
    sb_stats_merge(&sum, &a);
    sb_stats_merge(&sum, &b);
    sb_stats_merge(&sum, &c); /* no deliveries: its first_ns 0 is not the earliest */
    ck_assert_uint_eq(sum.clients, 7);
    ck_assert_uint_eq(sum.delivered, 150);
    ck_assert_uint_eq(sum.missing, 2);
    ck_assert_uint_eq(sum.bytes, 1000);
    ck_assert_uint_eq(sum.first_ns, 300);
    ck_assert_uint_eq(sum.last_ns, 900);
    ck_assert_uint_eq(sum.extra[2], 8);
    ck_assert(sum.cpu_s > 0.749 && sum.cpu_s < 0.751);
    ck_assert_str_eq(sum.first_error, "client 3: reset");
    ck_assert_uint_eq(sum.latency.n, 2);
    ck_assert_uint_eq(sum.latency.max, 20);
    ck_assert_uint_eq(sum.connect.n, 1);
}
END_TEST

START_TEST(test_errors)
{
    static sb_stats_t s;
    memset(&s, 0, sizeof(s));
    char longer[400];
    memset(longer, 'e', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    sb_stats_error(&s, "first: %s", longer);
    sb_stats_error(&s, "second");
    ck_assert_uint_eq(s.errors, 2);
    ck_assert_uint_eq(strlen(s.first_error), sizeof(s.first_error) - 1);
    ck_assert(!strncmp(s.first_error, "first: eee", 10));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bench_stats");
    TCase *tc = tcase_create("stats");
    tcase_add_test(tc, test_merge);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
