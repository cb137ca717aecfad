/* The memory pool store, driven through a real loop: the shared scenarios
 * (store_scenarios.c) on the in-process backend, which keeps Python's dict
 * order, so results are checked down to the order of keys. */
#include <check.h>
#include <stdlib.h>

#include "store_scenarios.h"

void backend_open(fixture_t *f)
{
    f->st = sh_store_memory_new(f->loop);
    ck_assert_str_eq(f->st->ops->name, "memory");
    f->ordered = true;
    f->many = 10000;
}

void backend_close(fixture_t *f)
{
    (void)f;
}

void backend_normalize(fixture_t *f, json_t *result)
{
    (void)f;
    (void)result;
}

int main(void)
{
    Suite *s = suite_create("store_memory");
    TCase *tc = tcase_create("memory");
    tcase_set_timeout(tc, 30);
    store_scenarios_add(tc);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
