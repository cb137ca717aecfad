/* siohub-bench's readers of events (src/bench/events.c): the JSON array of
 * an EVENT packet split into name and arguments, the session id of an open
 * packet or a connect event, and the fields of an SSE event block. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "bench/events.h"

#define S(lit) lit, sizeof(lit) - 1

static bool span_is(const char *p, size_t n, const char *want)
{
    return n == strlen(want) && !memcmp(p, want, n);
}

START_TEST(test_array_body)
{
    const char *b;
    size_t bl;
    ck_assert(sb_event_array_body(S("[1,2]"), &b, &bl) && span_is(b, bl, "1,2"));
    ck_assert(sb_event_array_body(S("[]\r\n "), &b, &bl) && bl == 0);
    ck_assert(!sb_event_array_body(S("{\"a\":1}"), &b, &bl));
    ck_assert(!sb_event_array_body(S("["), &b, &bl));
    ck_assert(!sb_event_array_body(S(" [1]"), &b, &bl));
    ck_assert(!sb_event_array_body("", 0, &b, &bl));
}
END_TEST

START_TEST(test_split)
{
    const char *name, *args;
    size_t nl, al;
    ck_assert(sb_event_split(S("[\"chat-events\",{\"a\":1},2]"), &name, &nl, &args, &al));
    ck_assert(span_is(name, nl, "chat-events"));
    ck_assert(span_is(args, al, "{\"a\":1},2"));
    /* No arguments. */
    ck_assert(sb_event_split(S("[\"ping\"]"), &name, &nl, &args, &al));
    ck_assert(span_is(name, nl, "ping") && al == 0);
    /* An escaped quote does not end the name; an escaped backslash does
     * not escape the quote after it. */
    ck_assert(sb_event_split(S("[\"a\\\"b\",1]"), &name, &nl, &args, &al));
    ck_assert(span_is(name, nl, "a\\\"b") && span_is(args, al, "1"));
    ck_assert(sb_event_split(S("[\"a\\\\\",1]"), &name, &nl, &args, &al));
    ck_assert(span_is(name, nl, "a\\\\") && span_is(args, al, "1"));
    /* Not an event. */
    ck_assert(!sb_event_split(S("[1,2]"), &name, &nl, &args, &al));
    ck_assert(!sb_event_split(S("[\"open]"), &name, &nl, &args, &al));
    ck_assert(!sb_event_split(S("[\"a\\\"]"), &name, &nl, &args, &al));
    ck_assert(!sb_event_split(S("[\"\\]"), &name, &nl, &args, &al));
    ck_assert(!sb_event_split(S("\"a\""), &name, &nl, &args, &al));
}
END_TEST

START_TEST(test_sse_fields)
{
    static const char block[] = ": a comment\nevent: chat-events\ndata:[1,2]\nid: 7";
    const char *v;
    size_t vl;
    ck_assert(sb_sse_field(S(block), "event", &v, &vl) && span_is(v, vl, "chat-events"));
    /* The space after the colon is optional. */
    ck_assert(sb_sse_field(S(block), "data", &v, &vl) && span_is(v, vl, "[1,2]"));
    /* The last line has no line end. */
    ck_assert(sb_sse_field(S(block), "id", &v, &vl) && span_is(v, vl, "7"));
    ck_assert(!sb_sse_field(S(block), "retry", &v, &vl));
    /* A field name is matched whole, up to its colon. */
    ck_assert(!sb_sse_field(S("database: x\n"), "data", &v, &vl));
    ck_assert(!sb_sse_field(S("data\n"), "data", &v, &vl));
    ck_assert(sb_sse_field(S("data:\n"), "data", &v, &vl) && vl == 0);
    ck_assert(!sb_sse_field("", 0, "data", &v, &vl));
    /* The first of two lines with the name. */
    ck_assert(sb_sse_field(S("data: 1\ndata: 2\n"), "data", &v, &vl) && span_is(v, vl, "1"));
}
END_TEST

START_TEST(test_sid)
{
    char sid[8];
    ck_assert(sb_event_sid(S("0{\"sid\":\"abc\",\"upgrades\":[]}"), sid, sizeof(sid)));
    ck_assert_str_eq(sid, "abc");
    ck_assert(sb_event_sid(S("{\"sid\":\"\"}"), sid, sizeof(sid)) && sid[0] == '\0');
    /* Seven bytes and the NUL fit in eight; eight do not. */
    ck_assert(sb_event_sid(S("{\"sid\":\"1234567\"}"), sid, sizeof(sid)));
    ck_assert_str_eq(sid, "1234567");
    ck_assert(!sb_event_sid(S("{\"sid\":\"12345678\"}"), sid, sizeof(sid)));
    ck_assert(!sb_event_sid(S("{\"sid\":\"abc"), sid, sizeof(sid)));
    ck_assert(!sb_event_sid(S("{\"sid\": \"abc\"}"), sid, sizeof(sid)));
    ck_assert(!sb_event_sid(S("{\"id\":\"abc\"}"), sid, sizeof(sid)));
    ck_assert(!sb_event_sid(S("{\"sid\":\""), sid, sizeof(sid)));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bench_events");
    TCase *tc = tcase_create("events");
    tcase_add_test(tc, test_array_body);
    tcase_add_test(tc, test_split);
    tcase_add_test(tc, test_sse_fields);
    tcase_add_test(tc, test_sid);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
