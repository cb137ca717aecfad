#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

START_TEST(test_zero_value_is_empty)
{
    sh_buf_t b = SH_BUF_INIT;
    ck_assert_uint_eq(sh_buf_avail(&b), 0);
    ck_assert_str_eq(sh_buf_peek(&b), "");
    sh_buf_release(&b);
    sh_buf_release(&b); /* twice is fine */
}
END_TEST

START_TEST(test_append_and_consume)
{
    sh_buf_t b = SH_BUF_INIT;
    sh_buf_append_str(&b, "hello ");
    sh_buf_append(&b, "world!", 5);
    sh_buf_append_byte(&b, '!');
    ck_assert_str_eq(sh_buf_peek(&b), "hello world!");
    sh_buf_consume(&b, 6);
    ck_assert_str_eq(sh_buf_peek(&b), "world!");
    ck_assert_uint_eq(sh_buf_avail(&b), 6);
    sh_buf_consume(&b, 100);
    ck_assert_uint_eq(sh_buf_avail(&b), 0);
    ck_assert_uint_eq(b.off, 0);
    sh_buf_release(&b);
}
END_TEST

START_TEST(test_truncate_counts_from_the_readable_start)
{
    sh_buf_t b = SH_BUF_INIT;
    sh_buf_truncate(&b, 0); /* the zero value: nothing to do */
    sh_buf_append_str(&b, "xxabc");
    sh_buf_consume(&b, 2);
    sh_buf_append_str(&b, ",def");
    sh_buf_truncate(&b, 3);
    ck_assert_str_eq(sh_buf_peek(&b), "abc");
    ck_assert_uint_eq(sh_buf_avail(&b), 3);
    sh_buf_append_str(&b, "!");
    ck_assert_str_eq(sh_buf_peek(&b), "abc!");
    sh_buf_release(&b);
}
END_TEST

START_TEST(test_appendf_grows)
{
    sh_buf_t b = SH_BUF_INIT;
    char big[1000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    sh_buf_appendf(&b, "%d-%s-%d", 42, big, 7);
    ck_assert_uint_eq(sh_buf_avail(&b), 3 + 999 + 2);
    ck_assert_int_eq(sh_buf_peek(&b)[0], '4');
    ck_assert_str_eq(sh_buf_peek(&b) + 3 + 999, "-7");
    sh_buf_release(&b);
}
END_TEST

START_TEST(test_compaction_reuses_space)
{
    sh_buf_t b = SH_BUF_INIT;
    sh_buf_reserve(&b, 100);
    size_t cap = b.cap;
    /* Append and consume many times: the buffer must not grow. */
    for (int i = 0; i < 10000; i++) {
        sh_buf_append(&b, "0123456789", 10);
        sh_buf_consume(&b, 7);
        if (sh_buf_avail(&b) > 50)
            sh_buf_consume(&b, sh_buf_avail(&b) - 3);
    }
    ck_assert_uint_le(b.cap, cap);
    sh_buf_release(&b);
}
END_TEST

START_TEST(test_reserve_commit_and_steal)
{
    sh_buf_t b = SH_BUF_INIT;
    char *w = sh_buf_reserve(&b, 4);
    memcpy(w, "abcd", 4);
    sh_buf_commit(&b, 4);
    sh_buf_consume(&b, 1);
    size_t n;
    char *s = sh_buf_steal(&b, &n);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(s, "bcd");
    ck_assert_ptr_null(b.data);
    free(s);
    s = sh_buf_steal(&b, NULL);
    ck_assert_str_eq(s, "");
    free(s);
}
END_TEST

START_TEST(test_binary_with_nul)
{
    sh_buf_t b = SH_BUF_INIT;
    sh_buf_append(&b, "a\0b", 3);
    ck_assert_uint_eq(sh_buf_avail(&b), 3);
    ck_assert_mem_eq(sh_buf_peek(&b), "a\0b", 3);
    sh_buf_release(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_zero_value_is_empty);
    tcase_add_test(tc, test_append_and_consume);
    tcase_add_test(tc, test_truncate_counts_from_the_readable_start);
    tcase_add_test(tc, test_appendf_grows);
    tcase_add_test(tc, test_compaction_reuses_space);
    tcase_add_test(tc, test_reserve_commit_and_steal);
    tcase_add_test(tc, test_binary_with_nul);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
