/* Name lookups off the loop thread: answers come from the loop, later,
 * once; cancelled ones never. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "redis/resolve.h"

typedef struct answer {
    int calls;
    char ip[64];
    char error[256];
} answer_t;

static void on_answer(const char *ip, const char *error, void *data)
{
    answer_t *a = data;
    a->calls++;
    ck_assert((ip == NULL) != (error == NULL));
    snprintf(a->ip, sizeof(a->ip), "%s", ip ? ip : "");
    snprintf(a->error, sizeof(a->error), "%s", error ? error : "");
}

static bool answered(void *arg)
{
    return ((answer_t *)arg)->calls > 0;
}

static void lookup(sh_loop_t *loop, const char *host, answer_t *a)
{
    memset(a, 0, sizeof(*a));
    ck_assert_ptr_nonnull(sh_resolve_start(loop, host, on_answer, a));
    ck_assert_int_eq(a->calls, 0); /* never from inside the call */
    ck_assert(th_run_until(loop, answered, a, 10000));
    th_run_for(loop, 5);
    ck_assert_int_eq(a->calls, 1);
}

START_TEST(test_numeric)
{
    sh_loop_t *loop = sh_loop_new();
    answer_t a;
    lookup(loop, "127.0.0.1", &a);
    ck_assert_str_eq(a.ip, "127.0.0.1");
    lookup(loop, "::1", &a);
    ck_assert_str_eq(a.ip, "::1");
    sh_loop_free(loop);
}
END_TEST

START_TEST(test_names)
{
    sh_loop_t *loop = sh_loop_new();
    answer_t a;
    /* IPv4 first, as hiredis does (localhost is also ::1). */
    lookup(loop, "localhost", &a);
    ck_assert_str_eq(a.ip, "127.0.0.1");
    /* An empty name fails without asking DNS. */
    lookup(loop, "", &a);
    ck_assert_str_eq(a.ip, "");
    ck_assert_str_eq(a.error, "Name or service not known");
    /* Several at once. */
    enum { N = 16 };
    answer_t many[N];
    memset(many, 0, sizeof(many));
    for (int i = 0; i < N; i++)
        ck_assert_ptr_nonnull(sh_resolve_start(loop, "localhost", on_answer, &many[i]));
    for (int i = 0; i < N; i++) {
        ck_assert(th_run_until(loop, answered, &many[i], 10000));
        ck_assert_str_eq(many[i].ip, "127.0.0.1");
    }
    th_run_for(loop, 5);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(many[i].calls, 1);
    sh_loop_free(loop);
}
END_TEST

START_TEST(test_cancel)
{
    sh_loop_t *loop = sh_loop_new();
    answer_t a = {0}, b = {0};
    sh_resolve_t *q = sh_resolve_start(loop, "localhost", on_answer, &a);
    sh_resolve_t *n = sh_resolve_start(loop, "10.1.2.3", on_answer, &b);
    ck_assert_ptr_nonnull(q);
    ck_assert_ptr_nonnull(n);
    sh_resolve_cancel(q);
    sh_resolve_cancel(n);
    sh_resolve_cancel(NULL);
    /* The thread's late answer goes nowhere (EPIPE); it cleans up itself. */
    th_run_for(loop, 100);
    ck_assert_int_eq(a.calls, 0);
    ck_assert_int_eq(b.calls, 0);
    sh_loop_free(loop);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("resolve");
    TCase *tc = tcase_create("resolve");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_numeric);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_cancel);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
