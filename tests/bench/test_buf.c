/* siohub-bench's byte buffer (src/bench/buf.c): the zero value is empty,
 * appends keep what is pending when they compact or grow, consuming never
 * moves bytes, and printf formats texts longer than the spare room whole. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "bench/buf.h"

START_TEST(test_zero_value_and_release)
{
    sb_buf_t b = {0};
    ck_assert_uint_eq(sb_buf_avail(&b), 0);
    sb_buf_append(&b, "", 0);
    ck_assert_ptr_null(b.data);
    sb_buf_puts(&b, "abc");
    ck_assert_uint_eq(sb_buf_avail(&b), 3);
    sb_buf_release(&b);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(sb_buf_avail(&b), 0);
}
END_TEST

START_TEST(test_append_consume_compact)
{
    sb_buf_t b = {0};
    char expect[4096];
    size_t have = 0;
    unsigned x = 1;
    /* Random appends and consumes against a flat copy. */
    for (int step = 0; step < 5000; step++) {
        x = x * 1103515245u + 12345u;
        size_t n = (x >> 8) % 97;
        if ((x >> 20) & 1 && have + n <= sizeof(expect)) {
            char piece[97];
            for (size_t i = 0; i < n; i++)
                piece[i] = (char)(step + i);
            sb_buf_append(&b, piece, n);
            memcpy(expect + have, piece, n);
            have += n;
        } else {
            n = n > have ? have : n;
            const char *head = sb_buf_head(&b);
            sb_buf_consume(&b, n);
            /* Consuming moves nothing: what is left is where it was. */
            if (n < have)
                ck_assert_ptr_eq(sb_buf_head(&b), head + n);
            memmove(expect, expect + n, have - n);
            have -= n;
        }
        ck_assert_uint_eq(sb_buf_avail(&b), have);
        ck_assert(have == 0 || !memcmp(sb_buf_head(&b), expect, have));
    }
    /* A reset keeps the memory. */
    char *data = b.data;
    sb_buf_reset(&b);
    ck_assert_uint_eq(sb_buf_avail(&b), 0);
    sb_buf_puts(&b, "x");
    ck_assert_ptr_eq(b.data, data);
    sb_buf_release(&b);
}
END_TEST

START_TEST(test_reserve_then_commit)
{
    sb_buf_t b = {0};
    sb_buf_puts(&b, "head:");
    char *w = sb_buf_reserve(&b, 1000);
    memset(w, 'z', 1000);
    b.len += 1000;
    ck_assert_uint_eq(sb_buf_avail(&b), 1005);
    ck_assert(!memcmp(sb_buf_head(&b), "head:zzz", 8));
    ck_assert_int_eq(sb_buf_head(&b)[1004], 'z');
    sb_buf_release(&b);
}
END_TEST

START_TEST(test_printf_long_and_short)
{
    sb_buf_t b = {0};
    sb_buf_printf(&b, "%d-%s", 42, "x");
    ck_assert_uint_eq(sb_buf_avail(&b), 4);
    char *big = malloc(10001);
    memset(big, 'q', 10000);
    big[10000] = '\0';
    sb_buf_printf(&b, "[%s]", big);
    ck_assert_uint_eq(sb_buf_avail(&b), 4 + 10002);
    ck_assert(!memcmp(sb_buf_head(&b), "42-x[qqq", 8));
    ck_assert_int_eq(sb_buf_head(&b)[4 + 10001], ']');
    /* After consuming, formatting still appends after what is pending. */
    sb_buf_consume(&b, 4 + 10002 - 1);
    sb_buf_printf(&b, "%s", "tail");
    ck_assert_uint_eq(sb_buf_avail(&b), 5);
    ck_assert(!memcmp(sb_buf_head(&b), "]tail", 5));
    free(big);
    sb_buf_release(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bench_buf");
    TCase *tc = tcase_create("buf");
    tcase_add_test(tc, test_zero_value_and_release);
    tcase_add_test(tc, test_append_consume_compact);
    tcase_add_test(tc, test_reserve_then_commit);
    tcase_add_test(tc, test_printf_long_and_short);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
