#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/utf8.h"

/* A second, deliberately naive validator: decode each sequence by its lead
 * byte's length, then reject by the decoded value (too small for its length,
 * a surrogate, above U+10FFFF). sh_utf8_valid, which works from byte
 * ranges instead, must agree with it on everything. */
static bool ref_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
            min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
            min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

static bool valid_str(const char *s)
{
    return sh_utf8_valid(s, strlen(s));
}

START_TEST(test_valid_examples)
{
    ck_assert(sh_utf8_valid("", 0));
    ck_assert(sh_utf8_valid(NULL, 0));
    ck_assert(valid_str("hello, world"));
    ck_assert(sh_utf8_valid("a\0b", 3)); /* NUL is a character */
    ck_assert(valid_str("\x7f"));
    ck_assert(valid_str("\xc2\x80"));                                     /* U+0080 */
    ck_assert(valid_str("\xdf\xbf"));                                     /* U+07FF */
    ck_assert(valid_str("\xe0\xa0\x80"));                                 /* U+0800 */
    ck_assert(valid_str("\xed\x9f\xbf"));                                 /* U+D7FF */
    ck_assert(valid_str("\xee\x80\x80"));                                 /* U+E000 */
    ck_assert(valid_str("\xef\xbf\xbf"));                                 /* U+FFFF */
    ck_assert(valid_str("\xef\xbb\xbf"));                                 /* BOM */
    ck_assert(valid_str("\xf0\x90\x80\x80"));                             /* U+10000 */
    ck_assert(valid_str("\xf4\x8f\xbf\xbf"));                             /* U+10FFFF */
    ck_assert(valid_str("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5")); /* kosme */
    ck_assert(valid_str("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
}
END_TEST

START_TEST(test_invalid_examples)
{
    static const char *const bad[] = {
        "\x80",                     /* lone continuation */
        "\xbf",                     /* lone continuation */
        "\xc0\x80",                 /* overlong NUL */
        "\xc1\xbf",                 /* overlong U+007F */
        "\xe0\x80\x80",             /* overlong */
        "\xe0\x9f\xbf",             /* overlong U+07FF */
        "\xf0\x80\x80\x80",         /* overlong */
        "\xf0\x8f\xbf\xbf",         /* overlong U+FFFF */
        "\xed\xa0\x80",             /* U+D800 */
        "\xed\xbf\xbf",             /* U+DFFF */
        "\xed\xa0\x80\xed\xb0\x80", /* a surrogate pair in CESU-8 */
        "\xf4\x90\x80\x80",         /* U+110000 */
        "\xf5\x80\x80\x80",         /* lead byte F5 */
        "\xf7\xbf\xbf\xbf",         /* U+1FFFFF */
        "\xf8\x88\x80\x80\x80",     /* 5-byte form */
        "\xfc\x84\x80\x80\x80\x80", /* 6-byte form */
        "\xfe",
        "\xff",
        "\xc2",         /* truncated */
        "\xe2\x82",     /* truncated */
        "\xf0\x9f\x98", /* truncated */
        "\xc2\x41",     /* continuation missing */
        "\xe2\x28\xa1",
        "\xe2\x82\x28",
        "\xf0\x28\x8c\xbc",
        "\xf0\x90\x28\xbc",
        "\xf0\x90\x8c\x28",
        "\xc3\xa9\xa9", /* extra continuation */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!valid_str(bad[i]), "accepted case %zu", i);
}
END_TEST

/* Every 1-, 2- and 3-byte string against the reference. */
START_TEST(test_exhaustive_short)
{
    uint8_t b[3];
    for (unsigned a = 0; a < 256; a++) {
        b[0] = (uint8_t)a;
        ck_assert_int_eq(sh_utf8_valid(b, 1), ref_valid(b, 1));
        for (unsigned c = 0; c < 256; c++) {
            b[1] = (uint8_t)c;
            ck_assert_int_eq(sh_utf8_valid(b, 2), ref_valid(b, 2));
            for (unsigned d = 0; d < 256; d++) {
                b[2] = (uint8_t)d;
                if (sh_utf8_valid(b, 3) != ref_valid(b, 3))
                    ck_abort_msg("disagree on %02x %02x %02x", a, c, d);
            }
        }
    }
}
END_TEST

/* 4-byte strings: every lead from F0, the three trailing bytes over all
 * their values that matter (continuation range edges and two outsiders). */
START_TEST(test_four_byte_edges)
{
    static const uint8_t tails[] = {0x00, 0x41, 0x7f, 0x80, 0x81, 0x8f, 0x90,
                                    0x9f, 0xa0, 0xaf, 0xb0, 0xbf, 0xc0, 0xff};
    uint8_t b[4];
    for (unsigned a = 0xf0; a < 256; a++) {
        b[0] = (uint8_t)a;
        for (unsigned x = 0; x < 256; x++) {
            b[1] = (uint8_t)x;
            for (size_t y = 0; y < sizeof(tails); y++) {
                b[2] = tails[y];
                for (size_t z = 0; z < sizeof(tails); z++) {
                    b[3] = tails[z];
                    if (sh_utf8_valid(b, 4) != ref_valid(b, 4))
                        ck_abort_msg("disagree on %02x %02x %02x %02x", a, x, tails[y], tails[z]);
                }
            }
        }
    }
}
END_TEST

/* Every code point, encoded, is valid; the same set after a surrogate is
 * not. */
START_TEST(test_every_code_point)
{
    uint8_t b[4];
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        size_t n;
        if (cp < 0x80) {
            b[0] = (uint8_t)cp;
            n = 1;
        } else if (cp < 0x800) {
            b[0] = (uint8_t)(0xC0 | cp >> 6);
            b[1] = (uint8_t)(0x80 | (cp & 0x3F));
            n = 2;
        } else if (cp < 0x10000) {
            b[0] = (uint8_t)(0xE0 | cp >> 12);
            b[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
            b[2] = (uint8_t)(0x80 | (cp & 0x3F));
            n = 3;
        } else {
            b[0] = (uint8_t)(0xF0 | cp >> 18);
            b[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
            b[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
            b[3] = (uint8_t)(0x80 | (cp & 0x3F));
            n = 4;
        }
        bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
        if (sh_utf8_valid(b, n) == surrogate)
            ck_abort_msg("U+%04X judged %s", cp, surrogate ? "valid" : "invalid");
    }
}
END_TEST

/* The 8-byte ASCII fast path: a bad byte at every position and every
 * alignment of a long ASCII run is still found, and a good multibyte
 * character there is still accepted. */
START_TEST(test_fast_path_positions)
{
    enum { LEN = 70 };
    char *buf = sh_malloc(LEN + 8);
    for (size_t align = 0; align < 8; align++) {
        char *p = buf + align;
        for (size_t len = 0; len <= LEN; len++) {
            memset(p, 'x', len);
            ck_assert(sh_utf8_valid(p, len));
            for (size_t at = 0; at < len; at++) {
                p[at] = (char)0x80;
                ck_assert_msg(!sh_utf8_valid(p, len), "align %zu len %zu at %zu", align, len, at);
                p[at] = (char)0xC3; /* lead byte followed by 'x', or at the end */
                ck_assert(!sh_utf8_valid(p, len));
                if (at + 1 < len) {
                    p[at + 1] = (char)0xA9;
                    ck_assert_msg(sh_utf8_valid(p, len), "align %zu len %zu at %zu", align, len,
                                  at);
                    p[at + 1] = 'x';
                }
                p[at] = 'x';
            }
        }
    }
    free(buf);
}
END_TEST

/* Random strings biased toward UTF-8-looking bytes, against the reference. */
START_TEST(test_random_against_reference)
{
    uint32_t s = 0x12345678;
    uint8_t buf[40];
    static const uint8_t pick[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf,
                                   0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee,
                                   0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff};
    for (int iter = 0; iter < 300000; iter++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        size_t n = s % sizeof(buf);
        for (size_t i = 0; i < n; i++) {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            buf[i] = (s & 0x100) ? pick[(s >> 9) % sizeof(pick)] : (uint8_t)s;
        }
        if (sh_utf8_valid(buf, n) != ref_valid(buf, n))
            ck_abort_msg("disagree at iteration %d", iter);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("utf8");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120); /* the exhaustive cases, under sanitizers */
    tcase_add_test(tc, test_valid_examples);
    tcase_add_test(tc, test_invalid_examples);
    tcase_add_test(tc, test_exhaustive_short);
    tcase_add_test(tc, test_four_byte_edges);
    tcase_add_test(tc, test_every_code_point);
    tcase_add_test(tc, test_fast_path_positions);
    tcase_add_test(tc, test_random_against_reference);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
