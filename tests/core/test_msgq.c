#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/msgq.h"
#include "core/random.h"

START_TEST(test_fifo_and_bytes)
{
    sh_msgq_t q = SH_MSGQ_INIT;
    char text[8];
    for (int i = 0; i < 100; i++) {
        int n = snprintf(text, sizeof(text), "%d", i);
        sh_msgq_push(&q, sh_msg_new(text, (size_t)n, false));
        if (i % 3 == 0) {
            sh_msg_t *m = sh_msgq_pop(&q);
            sh_msg_unref(m);
        }
    }
    ck_assert_uint_eq(q.count, 66);
    size_t bytes = 0;
    for (size_t i = 0; i < q.count; i++)
        bytes += sh_msgq_at(&q, i)->len;
    ck_assert_uint_eq(q.bytes, bytes);
    /* Order is kept across ring growth and wrap. */
    int prev = -1;
    sh_msg_t *m;
    while ((m = sh_msgq_pop(&q))) {
        int v = atoi(m->data);
        ck_assert_int_gt(v, prev);
        prev = v;
        sh_msg_unref(m);
    }
    ck_assert_uint_eq(q.bytes, 0);
    sh_msgq_release(&q);
}
END_TEST

START_TEST(test_move_and_release_drop_refs)
{
    sh_msgq_t a = SH_MSGQ_INIT, b = SH_MSGQ_INIT;
    sh_msg_t *shared = sh_msg_new("x", 1, false);
    sh_msgq_push(&a, sh_msg_ref(shared));
    sh_msgq_push(&a, sh_msg_ref(shared));
    sh_msgq_push(&b, sh_msg_ref(shared));
    ck_assert_uint_eq(shared->refs, 4);
    sh_msgq_move(&b, &a);
    ck_assert_uint_eq(a.count, 0);
    ck_assert_uint_eq(b.count, 3);
    ck_assert_uint_eq(b.bytes, 3);
    sh_msgq_release(&a);
    sh_msgq_release(&b);
    ck_assert_uint_eq(shared->refs, 1);
    sh_msg_unref(shared);
}
END_TEST

START_TEST(test_random_ids)
{
    char a[SH_ID_LEN + 1], b[SH_ID_LEN + 1];
    sh_random_id(a);
    sh_random_id(b);
    ck_assert_uint_eq(strlen(a), SH_ID_LEN);
    ck_assert_str_ne(a, b);
    for (int i = 0; i < SH_ID_LEN; i++)
        ck_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", a[i]));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("msgq");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_fifo_and_bytes);
    tcase_add_test(tc, test_move_and_release_drop_refs);
    tcase_add_test(tc, test_random_ids);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
