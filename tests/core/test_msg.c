#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/msg.h"

START_TEST(test_text_message)
{
    sh_msg_t *m = sh_msg_new_prefixed('4', "hello", 5);
    ck_assert_uint_eq(m->len, 6);
    ck_assert_str_eq(m->data, "4hello");
    ck_assert(!m->binary);
    ck_assert_ptr_eq(sh_msg_base64(m), m);
    sh_msg_t *r = sh_msg_ref(m);
    ck_assert_uint_eq(m->refs, 2);
    sh_msg_unref(r);
    sh_msg_unref(m);
    sh_msg_unref(NULL);
}
END_TEST

START_TEST(test_binary_base64_once)
{
    const unsigned char raw[] = {1, 2, 3, 4};
    sh_msg_t *m = sh_msg_new(raw, sizeof(raw), true);
    sh_msg_t *b = sh_msg_base64(m);
    ck_assert_str_eq(b->data, "bAQIDBA==");
    ck_assert_uint_eq(b->len, 9);
    ck_assert_ptr_eq(sh_msg_base64(m), b); /* computed once, shared */
    sh_msg_unref(m);
}
END_TEST

START_TEST(test_head_written_once)
{
    sh_msg_t *m = sh_msg_new_prefixed('4', "hi", 2);
    ck_assert_uint_eq(m->head_len, 0);
    ck_assert_ptr_eq(sh_msg_framed(m), m->data);
    ck_assert_int_eq(sh_msg_set_head(m, 1, "\x81\x03", 2), 0);
    ck_assert_uint_eq(m->head_len, 2);
    ck_assert_mem_eq(sh_msg_framed(m),
                     "\x81\x03"
                     "4hi",
                     5);
    /* The same header again: a no-op; another tag or length: refused and
     * the first one kept, since other recipients may be sending it. */
    ck_assert_int_eq(sh_msg_set_head(m, 1, "\x81\x03", 2), 0);
    ck_assert_int_eq(sh_msg_set_head(m, 2, "\x82\x03", 2), -EEXIST);
    ck_assert_int_eq(sh_msg_set_head(m, 1, "\x81\x7e\x00\x03", 4), -EEXIST);
    ck_assert_mem_eq(sh_msg_framed(m),
                     "\x81\x03"
                     "4hi",
                     5);
    sh_msg_t *big = sh_msg_new("x", 1, false);
    char too_long[SH_MSG_HEAD_ROOM + 1] = {0};
    ck_assert_int_eq(sh_msg_set_head(big, 1, too_long, sizeof(too_long)), -EINVAL);
    ck_assert_int_eq(sh_msg_set_head(big, 1, too_long, SH_MSG_HEAD_ROOM), 0);
    ck_assert_ptr_eq(sh_msg_framed(big) + SH_MSG_HEAD_ROOM, big->data);
    sh_msg_unref(big);
    sh_msg_unref(m);
}
END_TEST

/* A message made around bytes that arrived whole becomes the packet they
 * carry where they lie: data moves within the buffer, with the head room
 * before it and the NUL after; what would leave either out, or change a
 * shared message, is refused and changes nothing. */
START_TEST(test_reframe_in_own_buffer)
{
    sh_msg_t *m = sh_msg_new("{\"a\":[1,2]}", 11, true);
    char *args = m->data + 6; /* 1,2]} */
    ck_assert_int_eq(sh_msg_reframe(m, args, 3, false), 0);
    ck_assert_ptr_eq(m->data, args);
    ck_assert_uint_eq(m->len, 3);
    ck_assert(!m->binary);
    ck_assert_str_eq(m->data, "1,2"); /* the NUL written after */
    ck_assert_int_eq(sh_msg_set_head(m, 1, "\x81\x03", 2), 0);
    ck_assert_mem_eq(sh_msg_framed(m),
                     "\x81\x03"
                     "1,2",
                     5);
    /* Framed (or shared): no longer. */
    ck_assert_int_eq(sh_msg_reframe(m, args + 1, 1, false), -EINVAL);
    ck_assert_ptr_eq(m->data, args);
    sh_msg_unref(m);

    m = sh_msg_new("0123456789", 10, false);
    char *first = m->data;
    /* Less than the head room before; the span or its NUL past the end. */
    ck_assert_int_eq(sh_msg_reframe(m, m->buffer + SH_MSG_HEAD_ROOM - 1, 2, false), -EINVAL);
    ck_assert_int_eq(sh_msg_reframe(m, m->data, m->cap - SH_MSG_HEAD_ROOM, false), -EINVAL);
    ck_assert_int_eq(sh_msg_reframe(m, m->buffer - 1, 2, false), -EINVAL);
    ck_assert_int_eq(sh_msg_reframe(m, m->buffer + m->cap, 0, false), -EINVAL);
    ck_assert_int_eq(sh_msg_reframe(m, m->buffer + m->cap + 8, 1, false), -EINVAL);
    ck_assert_int_eq(sh_msg_reframe(m, m->buffer + m->cap - 1, 1, false), -EINVAL);
    sh_msg_t *shared = sh_msg_ref(m);
    ck_assert_int_eq(sh_msg_reframe(m, m->data + 1, 2, false), -EINVAL);
    sh_msg_unref(shared);
    ck_assert_ptr_eq(m->data, first);
    ck_assert_str_eq(m->data, "0123456789");
    /* The whole buffer is usable: the head room, then up to the last byte
     * for the NUL. */
    ck_assert_int_eq(
        sh_msg_reframe(m, m->buffer + SH_MSG_HEAD_ROOM, m->cap - SH_MSG_HEAD_ROOM - 1, false), 0);
    sh_msg_unref(m);
}
END_TEST

START_TEST(test_empty_binary)
{
    sh_msg_t *m = sh_msg_new(NULL, 0, true);
    ck_assert_str_eq(sh_msg_base64(m)->data, "b");
    sh_msg_unref(m);
}
END_TEST

/* Renderers for sh_msg_form: each counts its calls. */
static int upper_calls, none_calls;

static sh_msg_t *render_upper(const sh_msg_t *m)
{
    upper_calls++;
    sh_msg_t *out = sh_msg_alloc(m->len, false);
    for (size_t i = 0; i < m->len; i++)
        out->data[i] =
            (char)(m->data[i] >= 'a' && m->data[i] <= 'z' ? m->data[i] - 32 : m->data[i]);
    return out;
}

static sh_msg_t *render_none(const sh_msg_t *m)
{
    none_calls++;
    return NULL;
}

START_TEST(test_form_rendered_once)
{
    upper_calls = none_calls = 0;
    sh_msg_t *m = sh_msg_new("4hello", 6, false);
    sh_msg_t *u = sh_msg_form(m, render_upper);
    ck_assert_str_eq(u->data, "4HELLO");
    ck_assert_uint_eq(u->len, 6);
    /* Cached: the same message for every recipient, one render. */
    ck_assert_ptr_eq(sh_msg_form(m, render_upper), u);
    ck_assert_ptr_eq(sh_msg_form(m, render_upper), u);
    ck_assert_int_eq(upper_calls, 1);
    /* "No form" is cached too; renderers do not share a slot. */
    ck_assert_ptr_null(sh_msg_form(m, render_none));
    ck_assert_ptr_null(sh_msg_form(m, render_none));
    ck_assert_int_eq(none_calls, 1);
    ck_assert_ptr_eq(sh_msg_form(m, render_upper), u);
    ck_assert_int_eq(upper_calls, 1);
    /* A reference keeps the form past its message. */
    sh_msg_t *kept = sh_msg_ref(u);
    ck_assert_uint_eq(u->refs, 2);
    sh_msg_unref(m);
    ck_assert_uint_eq(kept->refs, 1);
    ck_assert_str_eq(kept->data, "4HELLO");
    sh_msg_unref(kept);
}
END_TEST

/* A freed small message's block serves the next message of its size
 * class, fresh (no head, no forms, refcount 1, its own length and NUL);
 * another class or a large message gets other memory; the drain leaves
 * nothing kept. */
START_TEST(test_small_blocks_reused)
{
    sh_msg_t *a = sh_msg_new("4hello", 6, false);
    ck_assert_int_eq(sh_msg_set_head(a, 1, "\x81\x06", 2), 0);
    sh_msg_t *big = sh_msg_alloc(64 * 1024, true);
    void *block = a;
    sh_msg_unref(a);
    sh_msg_unref(big);
    sh_msg_t *b = sh_msg_new("4hi", 3, false);
    ck_assert_ptr_eq(b, block);
    ck_assert_uint_eq(b->refs, 1);
    ck_assert_uint_eq(b->head_len, 0);
    ck_assert_ptr_null(b->forms);
    ck_assert_ptr_null(b->base64);
    ck_assert_uint_eq(b->len, 3);
    ck_assert_str_eq(b->data, "4hi");
    sh_msg_t *c = sh_msg_alloc(700, false); /* another class */
    ck_assert_ptr_ne(c, block);
    sh_msg_unref(b);
    sh_msg_unref(c);
    sh_msg_pool_drain();
    sh_msg_t *d = sh_msg_new("4x", 2, false);
    sh_msg_unref(d);
    sh_msg_pool_drain();
}
END_TEST

/* Messages of a few kilobytes (a chat event with the reply so far) are
 * kept too, by the kilobyte: a freed 3,000-byte message's block serves a
 * 2,100-byte one, not a 1,500- or a 3,100-byte one. */
START_TEST(test_large_blocks_reused)
{
    sh_msg_t *a = sh_msg_alloc(3000, false);
    void *block = a;
    memset(a->data, 'a', 3000);
    sh_msg_unref(a);
    sh_msg_t *small = sh_msg_alloc(1500, false), *larger = sh_msg_alloc(3100, false);
    ck_assert_ptr_ne(small, block);
    ck_assert_ptr_ne(larger, block);
    sh_msg_t *b = sh_msg_alloc(2100, false);
    ck_assert_ptr_eq(b, block);
    ck_assert_uint_eq(b->len, 2100);
    ck_assert_uint_eq(b->refs, 1);
    memset(b->data, 'b', 2100); /* all of it ours (ASan: unpoisoned) */
    sh_msg_t *huge = sh_msg_alloc(9000, false);
    memset(huge->data, 'h', 9000);
    sh_msg_unref(huge);
    sh_msg_unref(small);
    sh_msg_unref(larger);
    sh_msg_unref(b);
    sh_msg_pool_drain();
}
END_TEST

/* Kept blocks come back last freed first (the warmest), each once, for as
 * many as were kept; a batch larger than the pool still gets memory. */
START_TEST(test_kept_blocks_last_first)
{
    enum { N = 300 };
    static sh_msg_t *m[N], *again[N];
    for (int i = 0; i < N; i++)
        m[i] = sh_msg_new("4abc", 4, false);
    for (int i = 0; i < 3; i++)
        sh_msg_unref(m[i]);
    ck_assert_ptr_eq(sh_msg_new("4x", 2, false), m[2]);
    ck_assert_ptr_eq(sh_msg_new("4y", 2, false), m[1]);
    sh_msg_t *last = sh_msg_new("4z", 2, false);
    ck_assert_ptr_eq(last, m[0]);
    sh_msg_unref(m[2]);
    sh_msg_unref(m[1]);
    sh_msg_unref(last);
    for (int i = 3; i < N; i++)
        sh_msg_unref(m[i]);
    for (int i = 0; i < N; i++) {
        again[i] = sh_msg_new("4def", 4, false);
        ck_assert_str_eq(again[i]->data, "4def");
        for (int j = 0; j < i; j++)
            ck_assert_ptr_ne(again[i], again[j]);
    }
    for (int i = 0; i < N; i++)
        sh_msg_unref(again[i]);
    sh_msg_pool_drain();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("msg");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_text_message);
    tcase_add_test(tc, test_binary_base64_once);
    tcase_add_test(tc, test_empty_binary);
    tcase_add_test(tc, test_head_written_once);
    tcase_add_test(tc, test_reframe_in_own_buffer);
    tcase_add_test(tc, test_form_rendered_once);
    tcase_add_test(tc, test_small_blocks_reused);
    tcase_add_test(tc, test_kept_blocks_last_first);
    tcase_add_test(tc, test_large_blocks_reused);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
