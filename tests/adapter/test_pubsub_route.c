/* The routing read (adapter/pubsub_route.c, adapter/pickle_skim.c) against
 * the full parser (sh_pubsub_msg_parse, sh_pickle_decode).
 *
 * Every message file in tests/data/pubsub (python-socketio 5.7.2's pickles
 * and the JSON shapes of later versions): whenever the parser reads a
 * message, the route reads it too and agrees on every routing field; when
 * the parser ignores one (-ENOTSUP), the route refuses it, so the adapter
 * decodes it and counts it as before; every pickle the decoder refuses for
 * an opcode (GLOBAL, REDUCE, ...), its protocol or its structure, the
 * skimmer refuses with the same reason. Then cases made here: JSON escapes
 * in names, repeated keys, white space, the room list limit, callback
 * shapes, integers, and data the route steps over without reading. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/pickle.h"
#include "adapter/pubsub_msg.h"
#include "adapter/pubsub_route.h"
#include "core/buf.h"
#include "datafile.h"

static char *read_file(const char *name, size_t *len)
{
    return th_read_datafile("pubsub", name, len);
}

static bool same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* The route r says what the parsed message m says. */
static void check_same(const sh_pubsub_msg_t *m, const sh_pubsub_route_t *r, const char *what)
{
    ck_assert_msg(r->method == m->method, "%s: method %d, parser %d", what, r->method, m->method);
    ck_assert_msg(same_str(r->host_id, m->host_id), "%s: host_id", what);
    ck_assert_msg(same_str(r->nsp, m->nsp), "%s: namespace '%s', parser '%s'", what,
                  r->nsp ? r->nsp : "(null)", m->nsp ? m->nsp : "(null)");
    ck_assert_msg(same_str(r->sid, m->sid), "%s: sid", what);
    size_t n = json_array_size(m->rooms);
    ck_assert_msg(r->nrooms == n, "%s: %zu rooms, parser %zu", what, r->nrooms, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(strcmp(r->rooms[i], json_string_value(json_array_get(m->rooms, i))) == 0,
                      "%s: room %zu is '%s'", what, i, r->rooms[i]);
    ck_assert_msg(same_str(r->cb_room, m->has_callback ? m->cb_room : NULL), "%s: callback room",
                  what);
    if (m->method == SH_PUBSUB_CALLBACK)
        ck_assert_msg(r->id == m->id, "%s: id", what);
    /* A text emit's event and data are what the parser decoded: the event
     * its string, the data (null none, a list the list, else one value)
     * its argument list; and no skip_sid, callback or attachment. */
    ck_assert_msg(!r->text_emit || m->method == SH_PUBSUB_EMIT, "%s: text emit of a %d", what,
                  m->method);
    if (r->text_emit) {
        ck_assert_msg(!m->skip_sids && !m->has_callback && !m->nbins, "%s: not plain", what);
        json_t *ev = json_loadb(r->event_json.p, r->event_json.len, JSON_DECODE_ANY, NULL);
        ck_assert_msg(json_is_string(ev) && strcmp(json_string_value(ev), m->event) == 0,
                      "%s: event text", what);
        json_decref(ev);
        json_t *data = json_loadb(r->data_json.p, r->data_json.len, JSON_DECODE_ANY, NULL);
        ck_assert_msg(data, "%s: data text '%.*s'", what, (int)r->data_json.len, r->data_json.p);
        json_t *args = json_is_null(data)    ? json_array()
                       : json_is_array(data) ? json_incref(data)
                                             : json_pack("[O]", data);
        ck_assert_msg(json_equal(args, m->args), "%s: data text", what);
        json_decref(args);
        json_decref(data);
    }
}

/* Reads p both ways; returns the parser's result, after checking that the
 * route agrees with it (see the file comment). */
static int both(const void *p, size_t n, sh_pubsub_route_t *r, const char *what)
{
    sh_pubsub_msg_t m;
    const char *perr = NULL, *rerr = NULL;
    int prc = sh_pubsub_msg_parse(p, n, &m, &perr);
    int rrc = sh_pubsub_route_read(p, n, r, &rerr);
    ck_assert_msg(rrc == 0 || rrc == -EINVAL, "%s: route rc %d", what, rrc);
    ck_assert_msg(rrc == 0 || rerr, "%s: route refused without a reason", what);
    if (prc == 0 && rrc == 0)
        check_same(&m, r, what);
    if (prc == -ENOTSUP)
        ck_assert_msg(rrc < 0, "%s: the parser ignores it (%s), the route read it", what, perr);
    if (prc == 0)
        sh_pubsub_msg_release(&m);
    return prc;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Every message file: the route reads what the parser reads. */
START_TEST(test_vectors_agree)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/pubsub", TESTS_DATADIR);
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int parsed = 0, files = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!has_suffix(e->d_name, ".pkl") && !has_suffix(e->d_name, ".json"))
            continue;
        size_t n;
        char *p = read_file(e->d_name, &n);
        sh_pubsub_route_t r;
        files++;
        if (both(p, n, &r, e->d_name) == 0) {
            const char *err = NULL;
            ck_assert_msg(sh_pubsub_route_read(p, n, &r, &err) == 0, "%s: parsed, route: %s",
                          e->d_name, err);
            parsed++;
        }
        free(p);
    }
    closedir(d);
    ck_assert_int_gt(files, 80);
    ck_assert_int_gt(parsed, 30);
}
END_TEST

static void skim_field(const char *key, size_t klen, const sh_pickle_item_t *value, void *data)
{
    (*(int *)data)++;
}

/* The pickles the decoder refuses (tests/data/pubsub/pickle.txt "bad"):
 * refused by the skimmer for the same reason, but for the two checks it
 * leaves to the decoder (the UTF-8 of str values, containers changed after
 * being shared). */
START_TEST(test_pickle_refusals_agree)
{
    size_t len;
    char *text = read_file("pickle.txt", &len);
    int checked = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "bad|", 4) != 0)
            continue;
        char *name = line + 4, *bar = strchr(name, '|');
        *bar = '\0';
        char file[256];
        snprintf(file, sizeof(file), "%s.pkl", name);
        size_t n;
        char *p = read_file(file, &n);
        sh_pickle_t pk;
        const char *derr = NULL, *serr = NULL;
        ck_assert_int_eq(sh_pickle_decode(p, n, &pk, &derr), -EINVAL);
        int fields = 0;
        int rc = sh_pickle_skim(p, n, skim_field, &fields, &serr);
        if (strstr(derr, "UTF-8") || strstr(derr, "cycle")) {
            free(p);
            continue;
        }
        ck_assert_msg(rc == -EINVAL && fields == 0, "%s: skimmed, decoder refused: %s", name, derr);
        ck_assert_msg(strcmp(serr, derr) == 0, "%s: skim '%s', decoder '%s'", name, serr, derr);
        /* And the routing read refuses the message, for that reason when
         * it reads it as a pickle (protocols 0 and 1 have no PROTO: the
         * message is taken for JSON, by the parser too). */
        sh_pubsub_route_t r;
        const char *rerr = NULL;
        ck_assert_int_eq(sh_pubsub_route_read(p, n, &r, &rerr), -EINVAL);
        if ((unsigned char)p[0] == 0x80)
            ck_assert_str_eq(rerr, derr);
        checked++;
        free(p);
    }
    free(text);
    /* GLOBAL, STACK_GLOBAL, sets, protocols 0/1, keys, big ints, NaN... */
    ck_assert_int_ge(checked, 12);
}
END_TEST

/* ---- JSON made here */

static void expect_route(const char *json, sh_pubsub_route_t *r)
{
    const char *err = NULL;
    ck_assert_msg(both(json, strlen(json), r, json) == 0, "parser refused %s", json);
    ck_assert_msg(sh_pubsub_route_read(json, strlen(json), r, &err) == 0, "route refused %s: %s",
                  json, err);
}

/* Refused by the route; the parser's verdict is prc. */
static void expect_no_route(const char *json, int prc)
{
    sh_pubsub_route_t r;
    const char *err = NULL;
    ck_assert_int_eq(both(json, strlen(json), &r, json), prc);
    ck_assert_msg(sh_pubsub_route_read(json, strlen(json), &r, &err) == -EINVAL, "read: %s", json);
}

START_TEST(test_json_names)
{
    sh_pubsub_route_t r;
    /* Escapes, as python's json.dumps writes non-ASCII (ensure_ascii). */
    expect_route("{\"method\": \"emit\", \"event\": \"e\", \"data\": null, "
                 "\"namespace\": \"\\/chat\", \"room\": [\"caf\\u00e9\", \"a\\\"b\\\\\", "
                 "\"\\ud83d\\ude00\"], \"host_id\": \"h\"}",
                 &r);
    ck_assert_str_eq(r.nsp, "/chat");
    ck_assert_uint_eq(r.nrooms, 3);
    ck_assert_str_eq(r.rooms[0], "caf\xc3\xa9");
    ck_assert_str_eq(r.rooms[1], "a\"b\\");
    ck_assert_str_eq(r.rooms[2], "\xf0\x9f\x98\x80");
    ck_assert_str_eq(r.host_id, "h");
    /* An escaped key is the same key. */
    expect_route("{\"method\":\"emit\",\"event\":\"e\",\"data\":1,\"namespace\":\"/\","
                 "\"\\u0072oom\":\"r\"}",
                 &r);
    ck_assert_uint_eq(r.nrooms, 1);
    ck_assert_str_eq(r.rooms[0], "r");
    /* Repeated keys: the last one counts, as in json.loads and jansson. */
    expect_route("{\"method\":\"emit\",\"room\":\"a\",\"event\":\"e\",\"data\":1,"
                 "\"namespace\":\"/\",\"room\":[\"b\",\"c\"]}",
                 &r);
    ck_assert_uint_eq(r.nrooms, 2);
    ck_assert_str_eq(r.rooms[1], "c");
    expect_route("{\"method\":\"emit\",\"room\":[\"b\",\"c\"],\"event\":\"e\",\"data\":1,"
                 "\"namespace\":\"/\",\"room\":null}",
                 &r);
    ck_assert_uint_eq(r.nrooms, 0);
    /* White space anywhere JSON allows it. */
    expect_route(" \r\n{ \"method\" :\t\"disconnect\" , \"sid\" : \"s1\" }\n ", &r);
    ck_assert_int_eq(r.method, SH_PUBSUB_DISCONNECT);
    ck_assert_str_eq(r.nsp, "/");
    ck_assert_str_eq(r.sid, "s1");
    /* Names the parser refuses: NUL, a bad escape, a raw control byte. */
    expect_no_route("{\"method\":\"emit\",\"event\":\"e\",\"data\":1,\"namespace\":\"/\","
                    "\"room\":\"a\\u0000b\"}",
                    -EINVAL);
    expect_no_route("{\"method\":\"emit\",\"event\":\"e\",\"data\":1,\"namespace\":\"/\","
                    "\"room\":\"a\\qb\"}",
                    -EINVAL);
    expect_no_route("{\"method\":\"emit\",\"event\":\"e\",\"data\":1,\"namespace\":\"/\","
                    "\"room\":\"a\tb\"}",
                    -EINVAL);
}
END_TEST

START_TEST(test_json_rooms_and_callbacks)
{
    sh_pubsub_route_t r;
    char json[2048];
    /* Up to SH_PUBSUB_ROUTE_MAX_ROOMS rooms are read; one more leaves the
     * message to the parser. */
    for (int extra = 0; extra < 2; extra++) {
        sh_buf_t b = SH_BUF_INIT;
        sh_buf_append(&b,
                      "{\"method\":\"emit\",\"event\":\"e\",\"data\":1,\"namespace\":\"/\","
                      "\"room\":[",
                      strlen("{\"method\":\"emit\",\"event\":\"e\",\"data\":1,"
                             "\"namespace\":\"/\",\"room\":["));
        for (int i = 0; i < SH_PUBSUB_ROUTE_MAX_ROOMS + extra; i++) {
            snprintf(json, sizeof(json), "%s\"room%d\"", i ? "," : "", i);
            sh_buf_append(&b, json, strlen(json));
        }
        sh_buf_append(&b, "]}", 3);
        if (extra) {
            expect_no_route(sh_buf_peek(&b), 0);
        } else {
            expect_route(sh_buf_peek(&b), &r);
            ck_assert_uint_eq(r.nrooms, SH_PUBSUB_ROUTE_MAX_ROOMS);
        }
        sh_buf_release(&b);
    }
    /* callback: [room, namespace, id] wants an ack; any other length is
     * ignored, as python-socketio ignores it; bad items are refused. */
    expect_route("{\"method\":\"emit\",\"event\":\"e\",\"data\":1,\"namespace\":\"/\","
                 "\"room\":\"sidA\",\"callback\":[\"sidA\",\"/\",12]}",
                 &r);
    ck_assert_str_eq(r.cb_room, "sidA");
    expect_route("{\"method\":\"emit\",\"event\":\"e\",\"data\":1,\"namespace\":\"/\","
                 "\"room\":\"sidA\",\"callback\":[\"sidA\",\"/\"]}",
                 &r);
    ck_assert_ptr_null(r.cb_room);
    expect_route("{\"method\":\"emit\",\"event\":\"e\",\"data\":1,\"namespace\":\"/\","
                 "\"callback\":[]}",
                 &r);
    ck_assert_ptr_null(r.cb_room);
    expect_no_route("{\"method\":\"emit\",\"event\":\"e\",\"data\":1,\"namespace\":\"/\","
                    "\"callback\":[\"sidA\",\"/\",\"12\"]}",
                    -EINVAL);
    expect_no_route("{\"method\":\"emit\",\"event\":\"e\",\"data\":1,\"namespace\":\"/\","
                    "\"room\":[]}",
                    -EINVAL);
    /* Integers as jansson reads them. */
    expect_route("{\"method\":\"callback\",\"host_id\":\"h\",\"sid\":\"s\",\"id\":"
                 "9223372036854775807,\"args\":[]}",
                 &r);
    ck_assert(r.id == INT64_MAX);
    expect_route("{\"method\":\"callback\",\"host_id\":\"h\",\"sid\":\"s\",\"id\":-3,"
                 "\"args\":[]}",
                 &r);
    ck_assert(r.id == -3);
    expect_no_route("{\"method\":\"callback\",\"host_id\":\"h\",\"sid\":\"s\",\"id\":"
                    "9223372036854775808,\"args\":[]}",
                    -EINVAL);
    expect_no_route("{\"method\":\"callback\",\"host_id\":\"h\",\"sid\":\"s\",\"id\":1.0,"
                    "\"args\":[]}",
                    -EINVAL);
    expect_no_route("{\"method\":\"callback\",\"host_id\":\"h\",\"sid\":\"s\",\"id\":01,"
                    "\"args\":[]}",
                    -EINVAL);
}
END_TEST

/* The data is stepped over: brackets and quotes inside its strings are
 * not structure; data the parser would refuse is not noticed (the route
 * is no validation); a message cut inside the data is refused. */
START_TEST(test_json_data_skipped)
{
    sh_pubsub_route_t r;
    expect_route("{\"method\":\"emit\",\"event\":\"e\",\"data\":[{\"x\":\"]}\\\\\\\"\","
                 "\"y\":[[[]],{}]},\"\\\\\",-1.5e3,true,false,null],\"namespace\":\"/\","
                 "\"room\":\"r\"}",
                 &r);
    ck_assert_str_eq(r.rooms[0], "r");
    const char *broken = "{\"method\":\"emit\",\"event\":\"e\",\"data\":{\"x\":tru},"
                         "\"namespace\":\"/\",\"room\":\"r\"}";
    ck_assert_int_eq(both(broken, strlen(broken), &r, broken), -EINVAL);
    ck_assert_int_eq(sh_pubsub_route_read(broken, strlen(broken), &r, NULL), 0);
    ck_assert_str_eq(r.rooms[0], "r");
    const char *cut = "{\"method\":\"emit\",\"event\":\"e\",\"namespace\":\"/\",\"room\":\"r\","
                      "\"data\":{\"x\":\"abc";
    ck_assert_int_eq(sh_pubsub_route_read(cut, strlen(cut), &r, NULL), -EINVAL);
    const char *trailing = "{\"method\":\"disconnect\",\"sid\":\"s\"} x";
    expect_no_route(trailing, -EINVAL);
}
END_TEST

/* Which emits the route offers for delivery from their text, and where
 * that text is. */
START_TEST(test_json_text_emit)
{
    sh_pubsub_route_t r;
    const char *plain = "{\"method\": \"emit\", \"event\": \"chat-events\", \"data\": "
                        "{\"a\": [1, 2]} , \"binary\": false, \"namespace\": \"/\", "
                        "\"room\": \"user:u1\", \"skip_sid\": null, \"callback\": null}";
    expect_route(plain, &r);
    ck_assert(r.text_emit);
    ck_assert(r.event_json.len == 13 && memcmp(r.event_json.p, "\"chat-events\"", 13) == 0);
    ck_assert(r.data_json.len == 13 && memcmp(r.data_json.p, "{\"a\": [1, 2]}", 13) == 0);
    ck_assert(!r.text_unicode_escapes);
    /* Python's json.dumps writes every character outside ASCII as a \u
     * escape, which the frame then writes as the character; "\\u" is a
     * backslash and a letter, no escape. */
    const char *escaped = "{\"method\":\"emit\",\"event\":\"e\",\"data\":\"caf\\u00e9\","
                          "\"namespace\":\"/\",\"room\":\"r\"}";
    expect_route(escaped, &r);
    ck_assert(r.text_emit && r.text_unicode_escapes);
    const char *backslash_u = "{\"method\":\"emit\",\"event\":\"e\",\"data\":\"a\\\\u00e9\","
                              "\"namespace\":\"/\",\"room\":\"r\"}";
    expect_route(backslash_u, &r);
    ck_assert(r.text_emit && !r.text_unicode_escapes);
    /* A repeated key: routed with the last one, as every decoder reads
     * it, but left to the decoder (a stricter one may refuse it). */
    expect_route("{\"method\":\"emit\",\"event\":\"e\",\"data\":1,\"namespace\":\"/\","
                 "\"room\":\"r\",\"room\":\"q\"}",
                 &r);
    ck_assert(!r.text_emit && r.nrooms == 1 && strcmp(r.rooms[0], "q") == 0);
    /* Valid JSON, but nothing jansson is sure to read the same way: a
     * "\u0000", a number past int64, an escaped key. */
    static const char *const not_plain[] = {
        "{\"method\":\"emit\",\"event\":\"e\",\"data\":\"a\\u0000\",\"namespace\":\"/\","
        "\"room\":\"r\"}",
        "{\"method\":\"emit\",\"event\":\"e\",\"data\":12345678901234567890,"
        "\"namespace\":\"/\",\"room\":\"r\"}",
        "{\"method\":\"emit\",\"event\":\"e\",\"d\\u0061ta\":1,\"namespace\":\"/\","
        "\"room\":\"r\"}",
    };
    for (size_t i = 0; i < sizeof(not_plain) / sizeof(not_plain[0]); i++) {
        ck_assert(sh_pubsub_route_read(not_plain[i], strlen(not_plain[i]), &r, NULL) == 0);
        ck_assert_msg(!r.text_emit && r.nrooms == 1, "%s", not_plain[i]);
    }
    /* Invalid where the skim steps over it: routed, never delivered from
     * its text. */
    const char *invalid = "{\"method\":\"emit\",\"event\":\"e\",\"data\":[01],"
                          "\"namespace\":\"/\",\"room\":\"r\"}";
    ck_assert(sh_pubsub_route_read(invalid, strlen(invalid), &r, NULL) == 0);
    ck_assert(!r.text_emit && r.nrooms == 1);
    /* What only the decoder handles: attachments, exceptions, an ack. */
    static const char *const not_text[] = {
        "{\"method\":\"emit\",\"event\":\"e\",\"data\":[1,\"AA==\"],\"binary\":true,"
        "\"namespace\":\"/\",\"room\":\"r\"}",
        "{\"method\":\"emit\",\"event\":\"e\",\"data\":1,\"namespace\":\"/\","
        "\"room\":\"r\",\"skip_sid\":\"s\"}",
        "{\"method\":\"emit\",\"event\":\"e\",\"data\":1,\"namespace\":\"/\","
        "\"room\":\"r\",\"skip_sid\":[]}",
        "{\"method\":\"emit\",\"event\":\"e\",\"data\":1,\"namespace\":\"/\","
        "\"room\":\"s\",\"callback\":[\"s\",\"/\",3],\"host_id\":\"h\"}",
        "{\"method\":\"disconnect\",\"sid\":\"s\",\"namespace\":\"/\"}",
    };
    for (size_t i = 0; i < sizeof(not_text) / sizeof(not_text[0]); i++) {
        expect_route(not_text[i], &r);
        ck_assert_msg(!r.text_emit, "%s", not_text[i]);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pubsub_route");
    TCase *tc = tcase_create("pubsub_route");
    tcase_add_test(tc, test_vectors_agree);
    tcase_add_test(tc, test_pickle_refusals_agree);
    tcase_add_test(tc, test_json_names);
    tcase_add_test(tc, test_json_rooms_and_callbacks);
    tcase_add_test(tc, test_json_data_skipped);
    tcase_add_test(tc, test_json_text_emit);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
