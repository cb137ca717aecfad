/* sh_json_write against jansson's own writer, which it must copy byte for
 * byte: crafted values (every byte that needs an escape, UTF-8 of every
 * length, strings longer than a chunk, the reals whose form is jansson's
 * own), refusals (a key that is not UTF-8 is one where jansson writes it
 * anyway), nesting past the recursion limit, and random trees. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/json_write.h"

static int dump_cb(const char *buffer, size_t size, void *out)
{
    sh_buf_append(out, buffer, size);
    return 0;
}

/* Both writers on v, after a prefix that must survive: same result, same
 * bytes. */
static void check_same(json_t *v)
{
    sh_buf_t ours = SH_BUF_INIT, theirs = SH_BUF_INIT;
    sh_buf_append(&ours, "prefix", 6);
    int rc = sh_json_write(&ours, v);
    int jrc = json_dump_callback(v, dump_cb, &theirs,
                                 JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
    ck_assert_int_eq(rc == 0, jrc == 0);
    ck_assert(memcmp(sh_buf_peek(&ours), "prefix", 6) == 0);
    if (rc == 0) {
        ck_assert_uint_eq(sh_buf_avail(&ours) - 6, sh_buf_avail(&theirs));
        ck_assert_msg(
            memcmp(sh_buf_peek(&ours) + 6, sh_buf_peek(&theirs), sh_buf_avail(&theirs)) == 0,
            "differs from jansson: %.*s",
            (int)(sh_buf_avail(&theirs) > 200 ? 200 : sh_buf_avail(&theirs)), sh_buf_peek(&theirs));
    } else {
        ck_assert_int_eq(rc, -EINVAL);
        ck_assert_uint_eq(sh_buf_avail(&ours), 6); /* nothing left behind */
    }
    sh_buf_release(&ours);
    sh_buf_release(&theirs);
}

START_TEST(test_strings)
{
    char all[128];
    for (int i = 0; i < 128; i++)
        all[i] = (char)i; /* every ASCII byte, NUL and the controls included */
    json_t *v = json_stringn(all, sizeof(all));
    ck_assert_ptr_nonnull(v);
    check_same(v);
    json_decref(v);
    static const char *const texts[] = {
        "",
        "plain",
        "quote \" backslash \\ slash / tab \t newline \n",
        "\xc3\xa9\xe2\x80\xa8\xe4\xb8\xad\xf0\x9f\x98\x80", /* é, U+2028, 中, 😀 */
        "\x7f\x1f\x01",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        v = json_string(texts[i]);
        check_same(v);
        json_decref(v);
    }
    /* Longer than a chunk, escapes across the chunk boundaries. */
    size_t n = 3 * 4096 + 17;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = "ab\n\"\x01\\c\xc3\xa9"[i % 9];
    big[n - 1] = 'z';
    for (size_t i = 4090; i < n; i += 4096)
        big[i] = 'q'; /* never cut a two-byte character: keep it UTF-8 */
    v = json_stringn_nocheck(big, n);
    check_same(v);
    json_decref(v);
    memset(big, '\x02', n); /* all controls: six bytes out for each */
    v = json_stringn(big, n);
    check_same(v);
    json_decref(v);
    free(big);
}
END_TEST

START_TEST(test_scalars_and_containers)
{
    json_t *o = json_pack("{s:[i,I,I,f,f,f,f,f,f,f,b,b,n,[],{}],s:{s:s}}", "list", 1,
                          (json_int_t)INT64_MAX, (json_int_t)INT64_MIN, 0.1, 1.0, -0.0, 1e21, 5e-7,
                          1e300, -2.5, 1, 0, "k\n\xc3\xa9", "in", "v");
    ck_assert_ptr_nonnull(o);
    check_same(o);
    /* Insertion order, as jansson writes it. */
    json_t *order = json_object();
    json_object_set_new(order, "z", json_integer(1));
    json_object_set_new(order, "a", json_integer(2));
    json_object_set_new(order, "m", json_integer(3));
    json_object_del(order, "a");
    json_object_set_new(order, "a", json_integer(4));
    check_same(order);
    json_decref(order);
    json_decref(o);
}
END_TEST

START_TEST(test_refusals)
{
    static const char *const bad[] = {"\xff", "a\xc3", "\xed\xa0\x80", "\xc0\xaf"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *s = json_stringn_nocheck(bad[i], strlen(bad[i]));
        check_same(s); /* both refuse, nothing written */
        json_t *a = json_pack("[s,o]", "ok", s);
        check_same(a);
        /* A key: jansson writes it as it is; refused here too, nothing
         * written. */
        json_t *k = json_object();
        json_object_set_new_nocheck(k, bad[i], json_true());
        sh_buf_t b = SH_BUF_INIT;
        sh_buf_append(&b, "x", 1);
        ck_assert_int_eq(sh_json_write(&b, k), -EINVAL);
        ck_assert_uint_eq(sh_buf_avail(&b), 1);
        sh_buf_release(&b);
        json_decref(k);
        json_decref(a);
    }
    sh_buf_t b = SH_BUF_INIT;
    ck_assert_int_eq(sh_json_write(&b, NULL), -EINVAL);
    ck_assert_uint_eq(sh_buf_avail(&b), 0);
    sh_buf_release(&b);
}
END_TEST

START_TEST(test_deep)
{
    /* Past the recursion limit: jansson's writer takes over, same text. */
    json_t *v = json_integer(7);
    for (int i = 0; i < SH_JSON_WRITE_MAX_DEPTH + 50; i++) {
        json_t *a = json_array();
        json_array_append_new(a, v);
        v = a;
    }
    check_same(v);
    json_decref(v);
}
END_TEST

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static json_t *random_string(void)
{
    static const char *const pieces[] = {"a",
                                         "Z",
                                         " ",
                                         "\"",
                                         "\\",
                                         "/",
                                         "\n",
                                         "\t",
                                         "\x01",
                                         "\x1f",
                                         "\x7f",
                                         "\xc3\xa9",
                                         "\xe2\x80\xa8",
                                         "\xf0\x9f\x98\x80",
                                         "\xe4\xb8\xad"};
    char text[256];
    size_t n = 0, count = next_rand() % 24;
    for (size_t i = 0; i < count; i++) {
        const char *p = pieces[next_rand() % (sizeof(pieces) / sizeof(pieces[0]))];
        size_t len = strlen(p);
        memcpy(text + n, p, len);
        n += len;
    }
    if (next_rand() % 8 == 0)
        text[n++] = '\0'; /* NUL inside */
    return json_stringn(text, n);
}

static json_t *random_value(int depth)
{
    unsigned kind = next_rand() % (depth > 5 ? 6 : 8);
    switch (kind) {
    case 0:
        return json_integer((json_int_t)(int32_t)next_rand() * (next_rand() % 3 ? 1 : 65537));
    case 1: {
        double x = (double)(int32_t)next_rand() / (double)(next_rand() % 1000 + 1);
        return json_real(next_rand() % 4 ? x : x * 1e200);
    }
    case 2:
        return json_boolean(next_rand() % 2);
    case 3:
        return json_null();
    case 4:
    case 5:
        return random_string();
    case 6: {
        json_t *a = json_array();
        for (unsigned i = next_rand() % 5; i > 0; i--)
            json_array_append_new(a, random_value(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (unsigned i = next_rand() % 5; i > 0; i--) {
            json_t *key = random_string();
            json_object_setn_new(o, json_string_value(key), json_string_length(key),
                                 random_value(depth + 1));
            json_decref(key);
        }
        return o;
    }
    }
}

START_TEST(test_random_trees)
{
    for (int i = 0; i < 3000; i++) {
        json_t *v = random_value(0);
        check_same(v);
        json_decref(v);
    }
}
END_TEST

/* sh_json_write_text_utf8 on in: exactly want, and no longer than in. */
static void check_utf8(const char *in, const char *want)
{
    size_t len = strlen(in);
    char *out = malloc(len + 1);
    size_t n = sh_json_write_text_utf8(out, in, len);
    ck_assert_uint_le(n, len);
    ck_assert_msg(n == strlen(want) && memcmp(out, want, n) == 0, "%s: got %.*s, want %s", in,
                  (int)n, out, want);
    free(out);
}

START_TEST(test_text_utf8_cases)
{
    check_utf8("", "");
    check_utf8("{\"a\":[1,2,\"plain text\"]}", "{\"a\":[1,2,\"plain text\"]}");
    /* Two, three and four bytes, at the edges of each length. */
    check_utf8("\"\\u00e9t\\u00E9\"", "\"\xc3\xa9t\xc3\xa9\"");
    check_utf8("\"\\u0080\\u07ff\\u0800\\uffff\"", "\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\"");
    check_utf8("\"\\u4e2d\\u6587\"", "\"\xe4\xb8\xad\xe6\x96\x87\"");
    check_utf8("\"\\ud83d\\ude00\\uDBFF\\uDFFF\\uD800\\uDC00\"",
               "\"\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\xf0\x90\x80\x80\"");
    /* Below U+0080 as written: they must stay, or are rare. */
    check_utf8("\"\\u0022\\u005c\\u0000\\u001F\\u0041\\u007f\\n\\\"\\/\"",
               "\"\\u0022\\u005c\\u0000\\u001F\\u0041\\u007f\\n\\\"\\/\"");
    /* An escaped backslash, then "u00e9": no escape; then one. */
    check_utf8("\"\\\\u00e9\"", "\"\\\\u00e9\"");
    check_utf8("\"\\\\\\u00e9\"", "\"\\\\\xc3\xa9\"");
    /* Not a character: lone or reversed surrogates, a high one before
     * another high one (which then pairs), bad or missing digits. */
    check_utf8("\"\\ud83d\"", "\"\\ud83d\"");
    check_utf8("\"\\ude00\\ud83d\"", "\"\\ude00\\ud83d\"");
    check_utf8("\"\\ud83d\\u0041\"", "\"\\ud83d\\u0041\"");
    check_utf8("\"\\ud83d\\ud83d\\ude00\"", "\"\\ud83d\xf0\x9f\x98\x80\"");
    check_utf8("\"\\u4g2d\\u4e2", "\"\\u4g2d\\u4e2");
    check_utf8("\\u4e2d\\", "\xe4\xb8\xad\\");
    check_utf8("\\ud83d\\ude0", "\\ud83d\\ude0");
}
END_TEST

/* Escapes at every offset around the sixteen-byte steps, in runs and
 * alone, against the same text written with the characters. */
START_TEST(test_text_utf8_offsets)
{
    for (size_t lead = 0; lead < 40; lead++) {
        for (size_t run = 1; run < 5; run++) {
            char in[128], want[128];
            size_t n = 0, m = 0;
            for (size_t i = 0; i < lead; i++)
                in[n++] = want[m++] = (char)('a' + i % 26);
            for (size_t i = 0; i < run; i++) {
                memcpy(in + n, "\\u4e2d", 6);
                n += 6;
                memcpy(want + m, "\xe4\xb8\xad", 3);
                m += 3;
            }
            for (size_t i = 0; i < 20; i++)
                in[n++] = want[m++] = 'z';
            in[n] = want[m] = '\0';
            check_utf8(in, want);
        }
    }
}
END_TEST

/* Any value as Python's json.dumps writes it (jansson's JSON_ENSURE_ASCII:
 * every character from U+0080 a \u escape) comes out as sh_json_write
 * writes it, byte for byte: the same value, UTF-8 raw. */
START_TEST(test_text_utf8_against_writer)
{
    for (int i = 0; i < 3000; i++) {
        json_t *v = random_value(0);
        sh_buf_t ascii = SH_BUF_INIT, raw = SH_BUF_INIT;
        ck_assert_int_eq(json_dump_callback(v, dump_cb, &ascii,
                                            JSON_COMPACT | JSON_ENCODE_ANY | JSON_ENSURE_ASCII |
                                                JSON_REAL_PRECISION(17)),
                         0);
        ck_assert_int_eq(sh_json_write(&raw, v), 0);
        size_t len = sh_buf_avail(&ascii);
        char *out = malloc(len + 1);
        size_t n = sh_json_write_text_utf8(out, sh_buf_peek(&ascii), len);
        ck_assert_msg(n == sh_buf_avail(&raw) && memcmp(out, sh_buf_peek(&raw), n) == 0,
                      "from %.*s", (int)(len > 200 ? 200 : len), sh_buf_peek(&ascii));
        free(out);
        sh_buf_release(&ascii);
        sh_buf_release(&raw);
        json_decref(v);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("json_write");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_strings);
    tcase_add_test(tc, test_scalars_and_containers);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_deep);
    tcase_add_test(tc, test_random_trees);
    tcase_add_test(tc, test_text_utf8_cases);
    tcase_add_test(tc, test_text_utf8_offsets);
    tcase_add_test(tc, test_text_utf8_against_writer);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
