/* The chat bench's reply (src/bench/reply.c): the text is valid JSON string
 * content that decodes to plain ASCII prose, grows one token per seq and
 * starts over every N, is the same in every process, and the tab's check
 * takes exactly the content sent: not a byte more or less, in the compact
 * form every server writes and the spaced one Python may write. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bench/reply.h"

/* The reply's first n escaped bytes, decoded by jansson as a JSON string. */
static char *decode(const char *text, size_t n)
{
    char *quoted = malloc(n + 3);
    quoted[0] = '"';
    memcpy(quoted + 1, text, n);
    quoted[n + 1] = '"';
    quoted[n + 2] = '\0';
    json_error_t err;
    json_t *v = json_loads(quoted, JSON_DECODE_ANY, &err);
    ck_assert_msg(v && json_is_string(v), "not a JSON string: %s (%s)", quoted, err.text);
    char *out = strdup(json_string_value(v));
    json_decref(v);
    free(quoted);
    return out;
}

START_TEST(test_text_is_json_prose)
{
    sb_reply_t r;
    sb_reply_init(&r, 600, SB_REPLY_EN);
    size_t all = r.end[r.tokens - 1];
    /* ~5 escaped bytes a token, as the help says. */
    ck_assert_msg(all > 600 * 3 && all < 600 * 7, "%zu bytes for 600 tokens", all);
    unsigned breaks = 0, quotes = 0;
    for (unsigned k = 0; k < r.tokens; k++) {
        size_t from = k ? r.end[k - 1] : 0;
        ck_assert_msg(r.end[k] > from, "token %u is empty", k);
        char *tok = decode(r.json + from, r.end[k] - from);
        for (const char *p = tok; *p; p++)
            ck_assert_msg(*p == '\n' || (*p >= 0x20 && *p < 0x7f), "token %u: byte %d", k, *p);
        breaks += !strcmp(tok, "\n\n");
        quotes += strchr(tok, '"') != NULL;
        free(tok);
    }
    /* Both escapes occur, so a server that rewrites them is caught. */
    ck_assert_uint_ge(breaks, 5);
    ck_assert_uint_ge(quotes, 2);
    char *whole = decode(r.json, all);
    ck_assert_uint_lt(strlen(whole), all);
    free(whole);
    sb_reply_release(&r);
}
END_TEST

START_TEST(test_same_in_every_process)
{
    sb_reply_t a, b;
    sb_reply_init(&a, 300, SB_REPLY_EN);
    sb_reply_init(&b, 1000, SB_REPLY_EN);
    /* A longer reply starts with the shorter one. */
    ck_assert_uint_eq(a.end[299], b.end[299]);
    ck_assert_int_eq(memcmp(a.json, b.json, a.end[299]), 0);
    sb_reply_release(&a);
    sb_reply_release(&b);
}
END_TEST

START_TEST(test_content_grows_and_starts_over)
{
    sb_reply_t r;
    sb_reply_init(&r, 50, SB_REPLY_EN);
    const char *t;
    ck_assert_uint_eq(sb_reply_content(&r, 0, &t), r.end[0]);
    ck_assert_ptr_eq(t, r.json);
    for (unsigned k = 1; k < 50; k++) {
        const char *prev;
        ck_assert_uint_gt(sb_reply_content(&r, k, &t), sb_reply_content(&r, k - 1, &prev));
    }
    ck_assert_uint_eq(sb_reply_content(&r, 50, &t), r.end[0]);
    ck_assert_uint_eq(sb_reply_content(&r, 2 * 50 + 7, &t), r.end[7]);
    sb_reply_release(&r);
}
END_TEST

/* A chat event's argument as a server delivers it, with content for seq
 * `as`, cut by `cut` bytes, its colon followed by `space`. */
static size_t event_args(char *out, size_t cap, const sb_reply_t *r, uint64_t as, size_t cut,
                         const char *space)
{
    const char *t;
    size_t n = sb_reply_content(r, as, &t) - cut;
    return (size_t)snprintf(out, cap,
                            "{\"chat_id\":\"chat-1\",\"message_id\":\"msg-1\",\"data\":{\"type\":"
                            "\"chat:completion\",\"data\":{\"seq\":%llu,\"pub\":1,\"ts\":9,"
                            "\"content\":%s\"%.*s\"}}}",
                            (unsigned long long)as, space, (int)n, t);
}

START_TEST(test_check_takes_exactly_the_content)
{
    sb_reply_t r;
    sb_reply_init(&r, 40, SB_REPLY_EN);
    static char args[4096];
    size_t n = event_args(args, sizeof(args), &r, 47, 0, "");
    ck_assert(sb_reply_check(&r, 47, args, n));
    json_t *v = json_loadb(args, n, 0, NULL); /* the whole event is JSON */
    ck_assert_ptr_nonnull(v);
    json_decref(v);
    n = event_args(args, sizeof(args), &r, 47, 0, " ");
    ck_assert(sb_reply_check(&r, 47, args, n));
    /* Another seq's content: shorter, longer. */
    ck_assert(!sb_reply_check(&r, 46, args, n));
    ck_assert(!sb_reply_check(&r, 48, args, n));
    /* A byte short, a byte changed, the string not closed, no content. */
    n = event_args(args, sizeof(args), &r, 47, 1, "");
    ck_assert(!sb_reply_check(&r, 47, args, n));
    n = event_args(args, sizeof(args), &r, 47, 0, "");
    char *c = strstr(args, "\"content\":\"") + 14;
    *c ^= 0x20;
    ck_assert(!sb_reply_check(&r, 47, args, n));
    *c ^= 0x20;
    ck_assert(sb_reply_check(&r, 47, args, n));
    const char *end = strrchr(args, '"');
    ck_assert(!sb_reply_check(&r, 47, args, (size_t)(end - args)));
    ck_assert(!sb_reply_check(&r, 47, "{\"seq\":47,\"text\":\"x\"}", 21));
    sb_reply_release(&r);
}
END_TEST

/* Chinese: the escaped text is ASCII, every character above U+007F a
 * lowercase \uXXXX as Python writes it (a surrogate pair above U+FFFF);
 * the raw text is the same string in UTF-8; token by token both decode to
 * the same characters. */
START_TEST(test_chinese_escaped_and_raw)
{
    sb_reply_t r;
    sb_reply_init(&r, 400, SB_REPLY_ZH);
    ck_assert_ptr_nonnull(r.raw);
    size_t all = r.end[r.tokens - 1];
    ck_assert_msg(all > 400 * 8 && all < 400 * 18, "%zu bytes for 400 tokens", all);
    for (size_t i = 0; i < all; i++)
        ck_assert_msg((unsigned char)r.json[i] < 0x80, "byte %zu is not ASCII", i);
    ck_assert_ptr_nonnull(memmem(r.json, all, "\\ud83d\\ude00", 12)); /* an emoji, as a pair */
    ck_assert_ptr_nonnull(memmem(r.json, all, "\\u201c", 6));         /* a Chinese quote */
    ck_assert_ptr_nonnull(memmem(r.json, all, "\\n\\n", 4));
    ck_assert_ptr_nonnull(memmem(r.json, all, "\\\"", 2));
    unsigned high = 0;
    for (unsigned k = 0; k < r.tokens; k++) {
        size_t from = k ? r.end[k - 1] : 0, rfrom = k ? r.raw_end[k - 1] : 0;
        char *esc = decode(r.json + from, r.end[k] - from);
        char *raw = decode(r.raw + rfrom, r.raw_end[k] - rfrom);
        ck_assert_msg(!strcmp(esc, raw), "token %u: %s against %s", k, esc, raw);
        high += (unsigned char)esc[0] >= 0x80;
        free(esc);
        free(raw);
    }
    ck_assert_uint_gt(high, r.tokens / 2);
    /* The same reply whichever length: a shorter one starts the longer. */
    sb_reply_t b;
    sb_reply_init(&b, 100, SB_REPLY_ZH);
    ck_assert_int_eq(memcmp(b.json, r.json, b.end[99]), 0);
    ck_assert_int_eq(memcmp(b.raw, r.raw, b.raw_end[99]), 0);
    sb_reply_release(&b);
    sb_reply_release(&r);
}
END_TEST

/* The tab's check takes the content escaped (siohub, python) or as UTF-8
 * (Node re-encodes with JSON.stringify), and nothing else. */
START_TEST(test_check_takes_either_rendering)
{
    sb_reply_t r;
    sb_reply_init(&r, 40, SB_REPLY_ZH);
    static char args[4096];
    size_t n = event_args(args, sizeof(args), &r, 47, 0, "");
    ck_assert(sb_reply_check(&r, 47, args, n));
    ck_assert(!sb_reply_check(&r, 46, args, n));
    n = (size_t)snprintf(args, sizeof(args), "{\"seq\":47,\"content\":\"%.*s\"}", (int)r.raw_end[7],
                         r.raw);
    ck_assert(sb_reply_check(&r, 47, args, n));
    ck_assert(!sb_reply_check(&r, 48, args, n));
    n = (size_t)snprintf(args, sizeof(args), "{\"seq\":47,\"content\":\"%.*s\"}",
                         (int)r.raw_end[7] - 1, r.raw);
    ck_assert(!sb_reply_check(&r, 47, args, n));
    sb_reply_release(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bench_reply");
    TCase *tc = tcase_create("reply");
    tcase_add_test(tc, test_text_is_json_prose);
    tcase_add_test(tc, test_same_in_every_process);
    tcase_add_test(tc, test_content_grows_and_starts_over);
    tcase_add_test(tc, test_check_takes_exactly_the_content);
    tcase_add_test(tc, test_chinese_escaped_and_raw);
    tcase_add_test(tc, test_check_takes_either_rendering);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
