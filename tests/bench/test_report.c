/* siohub-bench's report (src/bench/report.c): the RESULT line and the
 * --json file hold one JSON object with the keys in call order and the
 * values the table shows; strings are escaped, a number that is not finite
 * is null, and a file that cannot be written is an error, not a lost
 * result. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "bench/report.h"

static void fill(sb_report_t *r)
{
    static sb_hist_t h;
    memset(&h, 0, sizeof(h));
    for (unsigned v = 1; v <= 1000; v++)
        sb_hist_add(&h, v * 10); /* 10 us .. 10 ms */
    sb_report_init(r);
    sb_report_note(r, "a heading");
    sb_report_str(r, "scenario", NULL, "chat");
    sb_report_str(r, "odd", "an odd string", "say \"hi\"\\\n\x01 \xe4\xb8\xad");
    sb_report_int(r, "clients", "clients", 999, NULL);
    sb_report_int(r, "negative", NULL, -5, "s");
    sb_report_num(r, "rate", "deliveries/s", 20978.4567, 1, "/s");
    sb_report_num(r, "nothing", NULL, NAN, 2, NULL);
    sb_report_bool(r, "ok", NULL, true);
    sb_report_latency(r, "latency_ms", "latency", &h);
    sb_report_json(r, "rounds", "[{\"n\":1},{\"n\":2}]", "  rounds: 2\n");
}

static void check_object(json_t *o)
{
    ck_assert(json_is_object(o));
    static const char *const keys[] = {"scenario", "odd", "clients",    "negative", "rate",
                                       "nothing",  "ok",  "latency_ms", "rounds"};
    ck_assert_uint_eq(json_object_size(o), sizeof(keys) / sizeof(keys[0]));
    ck_assert_str_eq(json_string_value(json_object_get(o, "scenario")), "chat");
    ck_assert_str_eq(json_string_value(json_object_get(o, "odd")),
                     "say \"hi\"\\\n\x01 \xe4\xb8\xad");
    ck_assert_int_eq(json_integer_value(json_object_get(o, "clients")), 999);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "negative")), -5);
    ck_assert(fabs(json_real_value(json_object_get(o, "rate")) - 20978.5) < 1e-9);
    ck_assert(json_is_null(json_object_get(o, "nothing")));
    ck_assert(json_is_true(json_object_get(o, "ok")));
    json_t *lat = json_object_get(o, "latency_ms");
    double p50 = json_real_value(json_object_get(lat, "p50"));
    ck_assert(p50 > 4.9 && p50 < 5.1); /* the middle of 0.01 .. 10 ms */
    ck_assert(fabs(json_real_value(json_object_get(lat, "max")) - 10.0) < 1e-9);
    ck_assert_uint_eq(json_array_size(json_object_get(o, "rounds")), 2);
    /* In call order. */
    const char *key;
    json_t *v;
    size_t i = 0;
    json_object_foreach (o, key, v)
        ck_assert_str_eq(key, keys[i++]);
}

START_TEST(test_result_line_and_file)
{
    sb_report_t r;
    fill(&r);
    char path[] = "/tmp/test_report_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ck_assert_int_eq(sb_report_print(&r, out, path), 0);
    fclose(out);

    /* The table: the note, labels in place of keys, units. */
    ck_assert(strstr(text, "a heading\n") == text);
    ck_assert(strstr(text, "  an odd string"));
    ck_assert(strstr(text, "20978.5 /s\n"));
    ck_assert(strstr(text, "  ok "));
    ck_assert(strstr(text, "yes\n"));
    ck_assert(strstr(text, "  rounds: 2\n"));
    ck_assert(strstr(text, "(1000 samples)"));

    const char *line = strstr(text, "RESULT {");
    ck_assert_ptr_nonnull(line);
    json_error_t err;
    json_t *o = json_loads(line + 7, JSON_PRESERVE_ORDER, &err);
    ck_assert_msg(o != NULL, "RESULT is not JSON: %s", err.text);
    check_object(o);
    json_t *f = json_load_file(path, JSON_PRESERVE_ORDER, &err);
    ck_assert_msg(f != NULL, "the --json file is not JSON: %s", err.text);
    ck_assert(json_equal(o, f));
    json_decref(o);
    json_decref(f);
    free(text);
    unlink(path);
    sb_report_release(&r);
}
END_TEST

START_TEST(test_unwritable_file)
{
    sb_report_t r;
    fill(&r);
    FILE *out = fopen("/dev/null", "w");
    ck_assert_int_eq(sb_report_print(&r, out, "/nonexistent-dir/result.json"), -ENOENT);
    fclose(out);
    sb_report_release(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bench_report");
    TCase *tc = tcase_create("report");
    tcase_add_test(tc, test_result_line_and_file);
    tcase_add_test(tc, test_unwritable_file);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
