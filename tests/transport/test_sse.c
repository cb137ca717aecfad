/* tests/transport/test_sse.c — the SSE transport's events, replay buffer
 * and streams (src/transport/sse.c), driven without HTTP: streams are
 * read the way libmicrohttpd's content reader does, in small pieces. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "transport/sse.h"

/* The test's renderer: "4X" -> "data: X\n\n"; anything else: no form. */
static int renders;

static sh_msg_t *render(const sh_msg_t *m)
{
    renders++;
    if (m->binary || m->len < 1 || m->data[0] != '4')
        return NULL;
    sh_buf_t b = SH_BUF_INIT;
    sh_buf_appendf(&b, "data: %.*s\n\n", (int)(m->len - 1), m->data + 1);
    sh_msg_t *out = sh_msg_new(sh_buf_peek(&b), sh_buf_avail(&b), false);
    sh_buf_release(&b);
    return out;
}

static int detaches, wakes;

static void on_detach(sh_sse_t *sse, void *data)
{
    detaches++;
}

static void on_wake(sh_sse_stream_t *st, void *data)
{
    wakes++;
}

static sh_sse_stats_t stats;

static sh_sse_t *new_sse(size_t bytes, size_t events, size_t limit)
{
    renders = detaches = wakes = 0;
    memset(&stats, 0, sizeof(stats));
    sh_sse_options_t o = {
        .sid = "S",
        .render = render,
        .buffer_bytes = bytes,
        .buffer_events = events,
        .output_limit = limit,
        .retry_ms = 250,
        .stats = &stats,
    };
    return sh_sse_new(&o, on_detach, NULL);
}

static int push(sh_sse_t *sse, const char *text)
{
    return sh_sse_push(sse, sh_msg_new(text, strlen(text), false));
}

/* Everything the stream has now, read `chunk` bytes at a time; *rc gets
 * the last read's result (0: waiting, -1: over). */
static char *drain(sh_sse_stream_t *st, size_t chunk, long *rc)
{
    sh_buf_t b = SH_BUF_INIT;
    char tmp[64];
    long n;
    while ((n = sh_sse_stream_read(st, tmp, chunk)) > 0) {
        ck_assert_int_le(n, (long)chunk);
        sh_buf_append(&b, tmp, (size_t)n);
    }
    *rc = n;
    char *s = sh_strdup(sh_buf_peek(&b));
    sh_buf_release(&b);
    return s;
}

static void expect_read(sh_sse_stream_t *st, size_t chunk, const char *want, long want_rc)
{
    long rc;
    char *got = drain(st, chunk, &rc);
    ck_assert_str_eq(got, want);
    ck_assert_int_eq(rc, want_rc);
    free(got);
}

START_TEST(test_fresh_stream)
{
    sh_sse_t *sse = new_sse(1 << 20, 100, 0);
    ck_assert_int_eq(push(sse, "4a"), 1);
    ck_assert_int_eq(push(sse, "2"), 0); /* no form: not an event */
    ck_assert_int_eq(push(sse, "4bb"), 1);
    ck_assert_uint_eq(sh_sse_last_seq(sse), 2);
    bool reset = true;
    sh_sse_stream_t *st = sh_sse_stream_new(sse, NULL, on_wake, NULL, &reset);
    ck_assert(!reset);
    ck_assert(sh_sse_attached(sse));
    /* 3-byte reads: every part is written across calls. */
    expect_read(st, 3, "retry: 250\n\nid: S:1\ndata: a\n\nid: S:2\ndata: bb\n\n", 0);
    ck_assert_int_eq(wakes, 0);
    ck_assert_int_eq(push(sse, "4c"), 1);
    ck_assert_int_eq(wakes, 1);
    ck_assert_int_eq(push(sse, "4d"), 1);
    ck_assert_int_eq(wakes, 1); /* woken once until it reads again */
    expect_read(st, 64, "id: S:3\ndata: c\n\nid: S:4\ndata: d\n\n", 0);
    ck_assert_uint_eq(stats.streams, 1);
    ck_assert_uint_eq(stats.events, 4);
    sh_sse_stream_free(st);
    ck_assert_int_eq(detaches, 1);
    ck_assert(!sh_sse_attached(sse));
    ck_assert_uint_eq(stats.streams, 0);
    sh_sse_free(sse);
}
END_TEST

START_TEST(test_resume_replays_missed)
{
    sh_sse_t *sse = new_sse(1 << 20, 100, 0);
    sh_sse_stream_t *st = sh_sse_stream_new(sse, NULL, on_wake, NULL, NULL);
    push(sse, "4one");
    push(sse, "4two");
    /* Written to "the connection", which then drops: bytes handed over
     * are not bytes the client got. */
    expect_read(st, 64, "retry: 250\n\nid: S:1\ndata: one\n\nid: S:2\ndata: two\n\n", 0);
    sh_sse_stream_free(st);
    ck_assert_int_eq(detaches, 1);
    push(sse, "4three"); /* while no stream is attached */
    sh_sse_from_t from = {.resume = true, .after_seq = 1};
    bool reset = true;
    st = sh_sse_stream_new(sse, &from, on_wake, NULL, &reset);
    ck_assert(!reset);
    expect_read(st, 5, "retry: 250\n\nid: S:2\ndata: two\n\nid: S:3\ndata: three\n\n", 0);
    /* Up to date: nothing replayed, live events follow. */
    sh_sse_stream_free(st);
    from.after_seq = 3;
    st = sh_sse_stream_new(sse, &from, on_wake, NULL, &reset);
    ck_assert(!reset);
    push(sse, "4four");
    expect_read(st, 64, "retry: 250\n\nid: S:4\ndata: four\n\n", 0);
    ck_assert_uint_eq(stats.resumes, 2);
    ck_assert_uint_eq(stats.resets, 0);
    sh_sse_stream_free(st);
    sh_sse_free(sse);
}
END_TEST

START_TEST(test_reset_when_buffer_is_short)
{
    /* "data: eN\n\n" is 10 bytes: 3 events fit 30 bytes. */
    sh_sse_t *sse = new_sse(30, 100, 0);
    char text[8];
    for (int i = 1; i <= 5; i++) {
        snprintf(text, sizeof(text), "4e%d", i);
        push(sse, text);
    }
    size_t bytes;
    ck_assert_uint_eq(sh_sse_buffered(sse, &bytes), 3);
    ck_assert_uint_eq(bytes, 30);
    ck_assert_uint_eq(sh_sse_first_seq(sse), 3);
    /* The client has 1: 2 is gone, so a reset, then all the buffer has. */
    sh_sse_from_t from = {.resume = true, .after_seq = 1};
    bool reset = false;
    sh_sse_stream_t *st = sh_sse_stream_new(sse, &from, on_wake, NULL, &reset);
    ck_assert(reset);
    expect_read(st, 7,
                "retry: 250\n\nevent: reset\ndata: {}\n\nid: S:3\ndata: e3\n\nid: S:4\ndata: "
                "e4\n\nid: S:5\ndata: e5\n\n",
                0);
    sh_sse_stream_free(st);
    /* The client has 2, the one before the oldest held: no gap. */
    from.after_seq = 2;
    st = sh_sse_stream_new(sse, &from, on_wake, NULL, &reset);
    ck_assert(!reset);
    expect_read(st, 64,
                "retry: 250\n\nid: S:3\ndata: e3\n\nid: S:4\ndata: e4\n\nid: S:5\ndata: e5\n\n", 0);
    sh_sse_stream_free(st);
    /* An id from the future is not ours: reset, nothing replayed. */
    from.after_seq = 99;
    st = sh_sse_stream_new(sse, &from, on_wake, NULL, &reset);
    ck_assert(reset);
    expect_read(st, 64, "retry: 250\n\nevent: reset\ndata: {}\n\n", 0);
    push(sse, "4e6");
    expect_read(st, 64, "id: S:6\ndata: e6\n\n", 0);
    sh_sse_stream_free(st);
    /* A reset asked for (the session the client had is gone). */
    sh_sse_from_t fresh_reset = {.reset = true};
    st = sh_sse_stream_new(sse, &fresh_reset, on_wake, NULL, &reset);
    ck_assert(reset);
    sh_sse_stream_free(st);
    ck_assert_uint_eq(stats.resets, 3);
    sh_sse_free(sse);
}
END_TEST

START_TEST(test_buffer_event_bound)
{
    sh_sse_t *sse = new_sse(1 << 20, 2, 0);
    for (int i = 0; i < 10; i++)
        push(sse, "4x");
    ck_assert_uint_eq(sh_sse_buffered(sse, NULL), 2);
    ck_assert_uint_eq(sh_sse_first_seq(sse), 9);
    ck_assert_uint_eq(sh_sse_last_seq(sse), 10);
    sh_sse_free(sse);

    /* No buffer at all: an event lives until it is written. */
    sse = new_sse(0, 0, 0);
    sh_sse_stream_t *st = sh_sse_stream_new(sse, NULL, on_wake, NULL, NULL);
    push(sse, "4y");
    ck_assert_uint_eq(sh_sse_buffered(sse, NULL), 1);
    expect_read(st, 64, "retry: 250\n\nid: S:1\ndata: y\n\n", 0);
    ck_assert_uint_eq(sh_sse_buffered(sse, NULL), 0);
    sh_sse_stream_free(st);
    push(sse, "4z"); /* no stream: dropped at once */
    ck_assert_uint_eq(sh_sse_buffered(sse, NULL), 0);
    sh_sse_free(sse);
}
END_TEST

START_TEST(test_live_stream_keeps_unwritten)
{
    /* Buffer 20 bytes, output limit 45: a live stream that does not read
     * keeps every event (the buffer bound applies to written ones only)
     * until the limit says the client is too slow. */
    sh_sse_t *sse = new_sse(20, 100, 45);
    sh_sse_stream_t *st = sh_sse_stream_new(sse, NULL, on_wake, NULL, NULL);
    ck_assert_int_eq(push(sse, "4a1"), 1);
    ck_assert_int_eq(push(sse, "4a2"), 1);
    ck_assert_int_eq(push(sse, "4a3"), 1);
    ck_assert_int_eq(push(sse, "4a4"), 1);
    ck_assert_uint_eq(sh_sse_buffered(sse, NULL), 4);
    ck_assert_int_eq(push(sse, "4a5"), -ENOBUFS);
    /* Reading writes them and the buffer shrinks back to its bound. */
    long rc;
    free(drain(st, 64, &rc));
    size_t bytes;
    ck_assert_uint_eq(sh_sse_buffered(sse, &bytes), 2);
    ck_assert_uint_eq(bytes, 20);
    ck_assert_int_eq(push(sse, "4a6"), 1);
    sh_sse_stream_free(st);
    sh_sse_free(sse);
}
END_TEST

START_TEST(test_takeover)
{
    sh_sse_t *sse = new_sse(1 << 20, 100, 0);
    sh_sse_stream_t *old = sh_sse_stream_new(sse, NULL, on_wake, NULL, NULL);
    push(sse, "4a");
    expect_read(old, 64, "retry: 250\n\nid: S:1\ndata: a\n\n", 0);
    /* The client reconnects before the old connection is noticed dead. */
    sh_sse_from_t from = {.resume = true, .after_seq = 0};
    sh_sse_stream_t *st = sh_sse_stream_new(sse, &from, on_wake, NULL, NULL);
    ck_assert_int_eq(wakes, 1); /* the old one is woken to end */
    expect_read(old, 64, "", -1);
    sh_sse_stream_free(old);
    ck_assert_int_eq(detaches, 0); /* not the live stream */
    expect_read(st, 64, "retry: 250\n\nid: S:1\ndata: a\n\n", 0);
    ck_assert_uint_eq(stats.streams, 1);
    sh_sse_stream_free(st);
    ck_assert_int_eq(detaches, 1);
    sh_sse_free(sse);
}
END_TEST

START_TEST(test_keepalive)
{
    sh_sse_t *sse = new_sse(1 << 20, 100, 0);
    sh_sse_keepalive(sse); /* no stream: nothing */
    sh_sse_stream_t *st = sh_sse_stream_new(sse, NULL, on_wake, NULL, NULL);
    expect_read(st, 64, "retry: 250\n\n", 0);
    sh_sse_keepalive(sse);
    sh_sse_keepalive(sse); /* one pending ping is enough */
    ck_assert_int_eq(wakes, 1);
    push(sse, "4a");
    expect_read(st, 64, ": ping\n\nid: S:1\ndata: a\n\n", 0);
    /* A ping asked for in the middle of an event waits for its end. */
    push(sse, "4long-event");
    char buf[8];
    ck_assert_int_eq(sh_sse_stream_read(st, buf, 5), 5);
    sh_sse_keepalive(sse);
    expect_read(st, 64, ":2\ndata: long-event\n\n: ping\n\n", 0);
    sh_sse_stream_free(st);
    sh_sse_free(sse);
}
END_TEST

START_TEST(test_end_drain_and_drop)
{
    sh_sse_t *sse = new_sse(1 << 20, 100, 0);
    sh_sse_stream_t *st = sh_sse_stream_new(sse, NULL, on_wake, NULL, NULL);
    expect_read(st, 64, "retry: 250\n\n", 0);
    push(sse, "4last");
    sh_sse_end(sse, true);
    ck_assert_int_eq(push(sse, "4late"), 0); /* dropped */
    expect_read(st, 64, "id: S:1\ndata: last\n\n", -1);
    /* The owner lets go while the stream still writes: it finishes. */
    sh_sse_free(sse);
    ck_assert_uint_eq(stats.draining, 1);
    sh_sse_stream_free(st);
    ck_assert_uint_eq(stats.draining, 0);
    ck_assert_int_eq(detaches, 0); /* the owner is gone */
    ck_assert_uint_eq(stats.streams, 0);

    sse = new_sse(1 << 20, 100, 0);
    st = sh_sse_stream_new(sse, NULL, on_wake, NULL, NULL);
    push(sse, "4never");
    sh_sse_end(sse, false);
    expect_read(st, 64, "", -1);
    sh_sse_stream_free(st);
    ck_assert_int_eq(detaches, 0); /* ended, not detached */
    sh_sse_free(sse);
}
END_TEST

START_TEST(test_free_while_draining)
{
    sh_sse_t *sse = new_sse(1 << 20, 100, 0);
    sh_sse_stream_t *st = sh_sse_stream_new(sse, NULL, on_wake, NULL, NULL);
    push(sse, "4a");
    push(sse, "4b");
    sh_sse_end(sse, true);
    sh_sse_free(sse); /* the session is gone; the stream owes two events */
    ck_assert_uint_eq(stats.draining, 1);
    expect_read(st, 4, "retry: 250\n\nid: S:1\ndata: a\n\nid: S:2\ndata: b\n\n", -1);
    sh_sse_stream_free(st);
    ck_assert_uint_eq(stats.draining, 0);
    ck_assert_uint_eq(stats.streams, 0);
    ck_assert_int_eq(detaches, 0);

    /* Freed without an end: the stream ends at once. */
    sse = new_sse(1 << 20, 100, 0);
    st = sh_sse_stream_new(sse, NULL, on_wake, NULL, NULL);
    push(sse, "4a");
    sh_sse_free(sse);
    expect_read(st, 64, "", -1);
    sh_sse_stream_free(st);
    ck_assert_uint_eq(stats.draining, 0);
}
END_TEST

/* Encode once: one message queued on many sessions is rendered once, and
 * each buffer holds a reference to the same bytes. */
START_TEST(test_rendered_once)
{
    sh_sse_t *a = new_sse(1 << 20, 100, 0);
    sh_sse_options_t o = {
        .sid = "T", .render = render, .buffer_bytes = 1 << 20, .buffer_events = 100};
    sh_sse_t *b = sh_sse_new(&o, NULL, NULL);
    sh_msg_t *m = sh_msg_new("4shared", 7, false);
    ck_assert_int_eq(sh_sse_push(a, sh_msg_ref(m)), 1);
    ck_assert_int_eq(sh_sse_push(b, sh_msg_ref(m)), 1);
    ck_assert_int_eq(renders, 1);
    sh_msg_t *form = sh_msg_form(m, render);
    ck_assert_uint_eq(form->refs, 3); /* m's cache, a's buffer, b's buffer */
    sh_msg_unref(m);
    ck_assert_uint_eq(form->refs, 2);
    sh_sse_stream_t *sa = sh_sse_stream_new(a, NULL, NULL, NULL, NULL);
    sh_sse_stream_t *sb = sh_sse_stream_new(b, NULL, NULL, NULL, NULL);
    expect_read(sa, 64, "retry: 250\n\nid: S:1\ndata: shared\n\n", 0);
    expect_read(sb, 64, "retry: 0\n\nid: T:1\ndata: shared\n\n", 0);
    sh_sse_stream_free(sa);
    sh_sse_stream_free(sb);
    sh_sse_free(a);
    sh_sse_free(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sse");
    TCase *tc = tcase_create("streams");
    tcase_add_test(tc, test_fresh_stream);
    tcase_add_test(tc, test_resume_replays_missed);
    tcase_add_test(tc, test_reset_when_buffer_is_short);
    tcase_add_test(tc, test_buffer_event_bound);
    tcase_add_test(tc, test_live_stream_keeps_unwritten);
    tcase_add_test(tc, test_takeover);
    tcase_add_test(tc, test_keepalive);
    tcase_add_test(tc, test_end_drain_and_drop);
    tcase_add_test(tc, test_free_while_draining);
    tcase_add_test(tc, test_rendered_once);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
