/* The log's rate limit for lines a peer can cause (core/log.h): the first
 * of a kind at its level, the rest within SH_LOG_LIMIT_MS at debug level
 * and counted, the next after it at its level with the count. */
#include <check.h>
#include <stdlib.h>

#include "core/log.h"

START_TEST(test_limit_first_then_debug_then_count)
{
    sh_log_limit_t lim = {0};
    unsigned held = 99;
    ck_assert_int_eq(sh_log_limit_level(&lim, SH_LOG_INFO, 5000, &held), SH_LOG_INFO);
    ck_assert_uint_eq(held, 0);
    held = 99;
    for (int i = 1; i <= 7; i++)
        ck_assert_int_eq(sh_log_limit_level(&lim, SH_LOG_INFO, 5000 + (uint64_t)i * 1000, &held),
                         SH_LOG_DEBUG);
    ck_assert_uint_eq(held, 99); /* untouched while held back */
    ck_assert_int_eq(sh_log_limit_level(&lim, SH_LOG_INFO, 5000 + SH_LOG_LIMIT_MS - 1, &held),
                     SH_LOG_DEBUG);
    ck_assert_int_eq(sh_log_limit_level(&lim, SH_LOG_WARN, 5000 + SH_LOG_LIMIT_MS, &held),
                     SH_LOG_WARN);
    ck_assert_uint_eq(held, 8);
    /* The count starts again. */
    ck_assert_int_eq(sh_log_limit_level(&lim, SH_LOG_INFO, 5000 + 3 * SH_LOG_LIMIT_MS, &held),
                     SH_LOG_INFO);
    ck_assert_uint_eq(held, 0);
}
END_TEST

START_TEST(test_limit_kinds_apart_and_clock_zero)
{
    sh_log_limit_t a = {0}, b = {0};
    unsigned held;
    /* A monotonic clock may read 0 at boot: still the first line. */
    ck_assert_int_eq(sh_log_limit_level(&a, SH_LOG_INFO, 0, &held), SH_LOG_INFO);
    ck_assert_int_eq(sh_log_limit_level(&a, SH_LOG_INFO, 1, &held), SH_LOG_DEBUG);
    /* Another kind has its own budget. */
    ck_assert_int_eq(sh_log_limit_level(&b, SH_LOG_INFO, 1, &held), SH_LOG_INFO);
}
END_TEST

START_TEST(test_limited_logs_without_crashing)
{
    /* The formatting path, at and below the threshold (output on stderr). */
    sh_log_limit_t lim = {0};
    sh_log_set_level(SH_LOG_DEBUG);
    sh_log_limited(&lim, SH_LOG_INFO, "test line %d", 1);
    sh_log_limited(&lim, SH_LOG_INFO, "test line %d", 2);
    sh_log_set_level(SH_LOG_INFO);
    sh_log_limited(&lim, SH_LOG_INFO, "test line %d", 3);
    ck_assert_uint_eq(lim.held, 2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("limit");
    tcase_add_test(tc, test_limit_first_then_debug_then_count);
    tcase_add_test(tc, test_limit_kinds_apart_and_clock_zero);
    tcase_add_test(tc, test_limited_logs_without_crashing);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
