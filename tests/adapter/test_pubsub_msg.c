#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/pubsub_msg.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "datafile.h"

/* ---- vectors: tests/data/pubsub/msg.txt (format at its top) and the
 * files it names. Loaded once in main(), before the runner forks. */

#define MAX_VECTORS 128
#define MAX_FIELDS  14

typedef struct vector {
    int line;
    int nfields;
    char *field[MAX_FIELDS];
    char *data;
    size_t len;
} vector_t;

static vector_t vectors[MAX_VECTORS];
static int nvectors;

static char *read_file(const char *name, size_t *len)
{
    return th_read_datafile("pubsub", name, len);
}

static void load_vectors(void)
{
    size_t len;
    char *text = read_file("msg.txt", &len);
    int lineno = 0;
    for (char *line = text, *next; line && *line; line = next) {
        lineno++;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        if (nvectors == MAX_VECTORS) {
            fprintf(stderr, "msg.txt: more than %d vectors\n", MAX_VECTORS);
            exit(EXIT_FAILURE);
        }
        vector_t *v = &vectors[nvectors++];
        v->line = lineno;
        for (char *tok = sh_strdup(line); tok && v->nfields < MAX_FIELDS; v->nfields++) {
            v->field[v->nfields] = tok;
            tok = strchr(tok, '|');
            if (tok)
                *tok++ = '\0';
        }
        v->data = read_file(v->field[1], &v->len);
    }
    free(text);
}

static void check_str(const char *got, const char *want, const char *what, int line)
{
    if (strcmp(want, "-") == 0)
        ck_assert_msg(got == NULL, "line %d: %s is '%s', want none", line, what, got);
    else
        ck_assert_msg(got && strcmp(got, want) == 0, "line %d: %s is '%s', want '%s'", line, what,
                      got ? got : "(null)", want);
}

static void check_json(const json_t *got, const char *want, const char *what, int line)
{
    if (strcmp(want, "-") == 0) {
        ck_assert_msg(got == NULL, "line %d: %s present, want none", line, what);
        return;
    }
    ck_assert_msg(got != NULL, "line %d: %s missing", line, what);
    if (want[0] == '#') {
        ck_assert_msg(json_is_array(got) && json_array_size(got) == strtoul(want + 1, NULL, 10),
                      "line %d: %s is not an array of %s", line, what, want + 1);
        return;
    }
    json_error_t jerr;
    json_t *w = json_loads(want, JSON_DECODE_ANY, &jerr);
    ck_assert_msg(w != NULL, "line %d: bad expected JSON for %s: %s", line, what, jerr.text);
    char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
    ck_assert_msg(json_equal(got, w), "line %d: %s is %s, want %s", line, what, g, want);
    free(g);
    json_decref(w);
}

static int hexval(char c)
{
    return c <= '9' ? c - '0' : c - 'a' + 10;
}

static void check_bins(const sh_pubsub_msg_t *m, const char *want, int line)
{
    if (strcmp(want, "-") == 0) {
        ck_assert_msg(m->nbins == 0, "line %d: %zu attachments", line, m->nbins);
        return;
    }
    if (want[0] == '#') {
        ck_assert_msg(m->nbins == strtoul(want + 1, NULL, 10), "line %d: %zu attachments", line,
                      m->nbins);
        return;
    }
    size_t i = 0;
    for (const char *s = want;; i++) {
        const char *end = strchr(s, ',');
        size_t hexlen = end ? (size_t)(end - s) : strlen(s);
        ck_assert_msg(i < m->nbins, "line %d: missing attachment %zu", line, i);
        ck_assert(m->bins[i]->binary);
        ck_assert_msg(m->bins[i]->len * 2 == hexlen, "line %d: attachment %zu size", line, i);
        for (size_t j = 0; j < m->bins[i]->len; j++)
            ck_assert((unsigned char)m->bins[i]->data[j] ==
                      hexval(s[2 * j]) * 16 + hexval(s[2 * j + 1]));
        if (!end)
            break;
        s = end + 1;
    }
    ck_assert_msg(i + 1 == m->nbins, "line %d: %zu attachments", line, m->nbins);
}

/* Expected fields and the parsed message agree (fields as in msg.txt). */
static void check_msg(const sh_pubsub_msg_t *m, char *const *f, int line)
{
    ck_assert_msg(strcmp(sh_pubsub_method_name(m->method), f[2]) == 0, "line %d: method %s", line,
                  sh_pubsub_method_name(m->method));
    check_str(m->host_id, f[4], "host_id", line);
    check_str(m->nsp, f[5], "namespace", line);
    check_str(m->event, f[6], "event", line);
    check_json(m->rooms, f[7], "rooms", line);
    check_json(m->skip_sids, f[8], "skip_sids", line);
    if (strcmp(f[9], "-") == 0) {
        ck_assert_msg(!m->has_callback, "line %d: unexpected callback", line);
        ck_assert_ptr_null(m->cb_room);
    } else {
        ck_assert_msg(m->has_callback, "line %d: no callback", line);
        json_t *cb = json_pack("[ssI]", m->cb_room, m->cb_nsp, (json_int_t)m->cb_id);
        check_json(cb, f[9], "callback", line);
        json_decref(cb);
    }
    check_str(m->sid, f[10], "sid", line);
    if (strcmp(f[11], "-") == 0)
        ck_assert_int_eq(m->id, 0);
    else
        ck_assert_int_eq(m->id, strtoll(f[11], NULL, 10));
    check_json(m->args, f[12], "args", line);
    check_bins(m, f[13], line);
}

START_TEST(test_vector)
{
    const vector_t *v = &vectors[_i];
    const char *kind = v->field[0];
    sh_pubsub_msg_t m;
    const char *err = NULL;
    int rc = sh_pubsub_msg_parse(v->data, v->len, &m, &err);

    if (strcmp(kind, "bad") == 0 || strcmp(kind, "ignore") == 0) {
        ck_assert_msg(v->nfields == 3, "line %d: malformed", v->line);
        int want = kind[0] == 'b' ? -EINVAL : -ENOTSUP;
        ck_assert_msg(rc == want, "line %d (%s): returned %d, want %d (%s)", v->line, v->field[1],
                      rc, want, err ? err : "-");
        ck_assert_msg(err && strstr(err, v->field[2]), "line %d: reason '%s', want '%s'", v->line,
                      err ? err : "(null)", v->field[2]);
        ck_assert_ptr_null(m.args);
        ck_assert_ptr_null(m.bins);
        ck_assert_ptr_null(m.nsp);
        ck_assert_ptr_null(m.rooms);
        sh_pubsub_msg_release(&m);
        return;
    }
    ck_assert_msg(strcmp(kind, "ok") == 0 && v->nfields == 14, "line %d: malformed", v->line);
    ck_assert_msg(rc == 0, "line %d (%s): returned %d: %s", v->line, v->field[1], rc, err);
    ck_assert_msg(m.format ==
                      (strcmp(v->field[3], "pickle") == 0 ? SH_PUBSUB_PICKLE : SH_PUBSUB_JSON),
                  "line %d: format", v->line);
    check_msg(&m, v->field, v->line);

    /* What we publish for it, we read back as the same message (the
     * format aside, and a disconnect's default namespace written out). */
    sh_buf_t out = SH_BUF_INIT;
    ck_assert_msg(sh_pubsub_msg_encode(&m, &out) == 0, "line %d: encode failed", v->line);
    sh_pubsub_msg_t again;
    rc = sh_pubsub_msg_parse(sh_buf_peek(&out), sh_buf_avail(&out), &again, &err);
    ck_assert_msg(rc == 0, "line %d: own output %s rejected: %s", v->line, sh_buf_peek(&out), err);
    ck_assert_int_eq(again.format, SH_PUBSUB_JSON);
    check_msg(&again, v->field, v->line);
    sh_pubsub_msg_release(&again);
    sh_buf_release(&out);
    sh_pubsub_msg_release(&m);
    ck_assert_ptr_null(m.args);
}
END_TEST

/* ---- encoding: exact output */

static json_t *j(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    ck_assert_ptr_nonnull(v);
    return v;
}

static void expect_encoding(const sh_pubsub_msg_t *m, const char *want)
{
    sh_buf_t out = SH_BUF_INIT;
    sh_buf_append_str(&out, "prefix:");
    ck_assert_int_eq(sh_pubsub_msg_encode(m, &out), 0);
    ck_assert_str_eq(sh_buf_peek(&out), want);
    sh_buf_release(&out);
}

#define HOST "5f3c9a7e1b2d4c6f8a9b0c1d2e3f4a5b"

START_TEST(test_encode_emit_data_forms)
{
    sh_pubsub_msg_t m = {.method = SH_PUBSUB_EMIT, .host_id = HOST, .nsp = "/", .event = "ev"};
    static const struct {
        const char *args;
        const char *data;
    } forms[] = {
        {NULL, "null"},               /* no argument: null, read as none everywhere */
        {"[]", "null"},               /* the same */
        {"[{\"a\":1}]", "{\"a\":1}"}, /* one argument: alone */
        {"[\"x\"]", "\"x\""},         /* one argument: alone */
        {"[1,2]", "[1,2]"},           /* several: the list */
        {"[[1,2]]", "[[1,2]]"},       /* one list argument: wrapped, as >= 5.15.1 does */
        {"[null]", "[null]"},         /* one null argument: wrapped (null alone is none) */
    };
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        m.args = forms[i].args ? j(forms[i].args) : NULL;
        char want[512];
        snprintf(want, sizeof(want),
                 "prefix:{\"method\":\"emit\",\"event\":\"ev\",\"data\":%s,\"binary\":false,"
                 "\"namespace\":\"/\",\"room\":null,\"skip_sid\":null,\"callback\":null,"
                 "\"host_id\":\"" HOST "\"}",
                 forms[i].data);
        expect_encoding(&m, want);
        json_decref(m.args);
    }
}
END_TEST

START_TEST(test_encode_emit_full)
{
    unsigned char bytes[] = {0x00, 0x01, 0xff};
    sh_msg_t *bin = sh_msg_new(bytes, sizeof(bytes), true);
    sh_msg_t *bins[] = {bin};
    sh_pubsub_msg_t m = {
        .method = SH_PUBSUB_EMIT,
        .host_id = HOST,
        .nsp = "/chat",
        .event = "bin",
        .rooms = j("[\"r1\",\"r2\"]"),
        .skip_sids = j("[\"s1\"]"),
        .has_callback = true,
        .cb_room = "s9",
        .cb_nsp = "/chat",
        .cb_id = 12,
        .args = j("[\"x\",{\"_placeholder\":true,\"num\":0}]"),
        .bins = bins,
        .nbins = 1,
    };
    expect_encoding(&m, "prefix:{\"method\":\"emit\",\"event\":\"bin\",\"data\":[[\"x\","
                        "{\"_placeholder\":true,\"num\":0}],\"AAH/\"],\"binary\":true,"
                        "\"namespace\":\"/chat\",\"room\":[\"r1\",\"r2\"],\"skip_sid\":\"s1\","
                        "\"callback\":[\"s9\",\"/chat\",12],\"host_id\":\"" HOST "\"}");
    /* one binary argument alone, one room as a string */
    json_decref(m.args);
    json_decref(m.rooms);
    m.args = j("[{\"_placeholder\":true,\"num\":0}]");
    m.rooms = j("[\"r1\"]");
    m.has_callback = false;
    m.host_id = NULL;
    expect_encoding(&m, "prefix:{\"method\":\"emit\",\"event\":\"bin\",\"data\":["
                        "{\"_placeholder\":true,\"num\":0},\"AAH/\"],\"binary\":true,"
                        "\"namespace\":\"/chat\",\"room\":\"r1\",\"skip_sid\":\"s1\","
                        "\"callback\":null}");
    json_decref(m.args);
    json_decref(m.rooms);
    json_decref(m.skip_sids);
    sh_msg_unref(bin);
}
END_TEST

/* The text encoder writes the tree encoder's bytes for the same emit,
 * whatever the rooms, namespace and host id; and refuses, writing
 * nothing, any name it could only write with an encoder. */
START_TEST(test_encode_emit_text)
{
    /* Compact, as jansson writes it (é raw, the newline escaped). */
    static const char arg[] = "{\"chat_id\":\"c1\",\"data\":{\"content\":\"h\xc3\xa9\\n\"}}";
    const sh_json_span_t parts[] = {{arg, 12}, {arg + 12, sizeof(arg) - 1 - 12}};
    static const char *const rooms[] = {"user:u1", "Xb1mfXyM5B9OWc2yAAAB", "r3"};
    static const struct {
        const char *host, *nsp;
        size_t nrooms;
    } cases[] = {
        {HOST, "/", 1}, {HOST, "/", 2}, {HOST, "/", 3}, {NULL, "/chat", 1}, {HOST, "/", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *list = json_array();
        for (size_t r = 0; r < cases[i].nrooms; r++)
            json_array_append_new(list, json_string(rooms[r]));
        sh_pubsub_msg_t m = {
            .method = SH_PUBSUB_EMIT,
            .host_id = (char *)cases[i].host,
            .nsp = (char *)cases[i].nsp,
            .event = "chat-events",
            .rooms = cases[i].nrooms ? list : NULL,
            .args = json_pack("[o]", j(arg)),
        };
        sh_buf_t tree = SH_BUF_INIT, text = SH_BUF_INIT;
        ck_assert_int_eq(sh_pubsub_msg_encode(&m, &tree), 0);
        sh_buf_append(&text, "x", 1); /* appends, keeps what was there */
        ck_assert_int_eq(sh_pubsub_emit_encode_text(cases[i].host, cases[i].nsp, "chat-events",
                                                    rooms, cases[i].nrooms, parts, 2, &text),
                         0);
        ck_assert_uint_eq(sh_buf_avail(&text), sh_buf_avail(&tree) + 1);
        ck_assert(memcmp(sh_buf_peek(&text) + 1, sh_buf_peek(&tree), sh_buf_avail(&tree)) == 0);
        sh_buf_release(&tree);
        sh_buf_release(&text);
        json_decref(m.args);
        json_decref(list);
    }
    /* Names that need escapes or are not UTF-8: refused, nothing written. */
    static const char *const bad[] = {"a\"b", "a\\b", "a\nb", "\xff"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sh_buf_t out = SH_BUF_INIT;
        const char *one[] = {bad[i]};
        ck_assert_int_eq(sh_pubsub_emit_encode_text(HOST, "/", "ev", one, 1, parts, 2, &out),
                         -EINVAL);
        ck_assert_int_eq(sh_pubsub_emit_encode_text(HOST, "/", bad[i], rooms, 1, parts, 2, &out),
                         -EINVAL);
        ck_assert_int_eq(sh_pubsub_emit_encode_text(HOST, bad[i], "ev", rooms, 1, parts, 2, &out),
                         -EINVAL);
        ck_assert_int_eq(sh_pubsub_emit_encode_text(bad[i], "/", "ev", rooms, 1, parts, 2, &out),
                         -EINVAL);
        ck_assert_uint_eq(sh_buf_avail(&out), 0);
        sh_buf_release(&out);
    }
}
END_TEST

START_TEST(test_encode_other_methods)
{
    sh_pubsub_msg_t cb = {.method = SH_PUBSUB_CALLBACK,
                          .host_id = "them",
                          .sid = "s1",
                          .id = 7,
                          .args = j("[\"ok\",{\"x\":1}]")};
    expect_encoding(&cb, "prefix:{\"method\":\"callback\",\"host_id\":\"them\",\"sid\":\"s1\","
                         "\"namespace\":\"/\",\"id\":7,\"args\":[\"ok\",{\"x\":1}]}");
    json_decref(cb.args);
    cb.args = NULL;
    cb.nsp = "/chat";
    expect_encoding(&cb, "prefix:{\"method\":\"callback\",\"host_id\":\"them\",\"sid\":\"s1\","
                         "\"namespace\":\"/chat\",\"id\":7,\"args\":[]}");
    sh_msg_t *bin = sh_msg_new("\xde\xad\xbe\xef", 4, true);
    cb.bins = &bin;
    cb.nbins = 1;
    cb.args = j("[{\"_placeholder\":true,\"num\":0}]");
    expect_encoding(&cb, "prefix:{\"method\":\"callback\",\"host_id\":\"them\",\"sid\":\"s1\","
                         "\"namespace\":\"/chat\",\"id\":7,\"args\":[[{\"_placeholder\":true,"
                         "\"num\":0}],\"3q2+7w==\"],\"binary\":true}");
    json_decref(cb.args);
    sh_msg_unref(bin);

    sh_pubsub_msg_t d = {.method = SH_PUBSUB_DISCONNECT, .host_id = HOST, .sid = "s2", .nsp = "/"};
    expect_encoding(&d, "prefix:{\"method\":\"disconnect\",\"sid\":\"s2\",\"namespace\":\"/\","
                        "\"host_id\":\"" HOST "\"}");
    json_t *room = j("[\"r9\"]");
    sh_pubsub_msg_t r = {
        .method = SH_PUBSUB_ENTER_ROOM, .host_id = HOST, .sid = "s1", .nsp = "/", .rooms = room};
    expect_encoding(&r, "prefix:{\"method\":\"enter_room\",\"sid\":\"s1\",\"room\":\"r9\","
                        "\"namespace\":\"/\",\"host_id\":\"" HOST "\"}");
    r.method = SH_PUBSUB_LEAVE_ROOM;
    expect_encoding(&r, "prefix:{\"method\":\"leave_room\",\"sid\":\"s1\",\"room\":\"r9\","
                        "\"namespace\":\"/\",\"host_id\":\"" HOST "\"}");
    r.method = SH_PUBSUB_CLOSE_ROOM;
    r.sid = NULL;
    expect_encoding(&r, "prefix:{\"method\":\"close_room\",\"room\":\"r9\",\"namespace\":\"/\","
                        "\"host_id\":\"" HOST "\"}");
    json_decref(room);
}
END_TEST

static void expect_encode_fails(const sh_pubsub_msg_t *m)
{
    sh_buf_t out = SH_BUF_INIT;
    sh_buf_append_str(&out, "keep");
    ck_assert_int_eq(sh_pubsub_msg_encode(m, &out), -EINVAL);
    ck_assert_str_eq(sh_buf_peek(&out), "keep");
    sh_buf_release(&out);
}

START_TEST(test_encode_invalid)
{
    sh_pubsub_msg_t m = {.method = SH_PUBSUB_EMIT, .nsp = "/", .event = "ev"};
    m.nsp = NULL;
    expect_encode_fails(&m); /* a receiver would drop it */
    m.nsp = "/";
    m.event = NULL;
    expect_encode_fails(&m);
    m.event = "ev";
    m.args = j("{\"a\":1}");
    expect_encode_fails(&m);
    json_decref(m.args);
    m.args = NULL;
    m.rooms = j("[]");
    expect_encode_fails(&m);
    json_decref(m.rooms);
    m.rooms = j("[\"a\",1]");
    expect_encode_fails(&m);
    json_decref(m.rooms);
    m.rooms = NULL;
    m.event = "\xff";
    expect_encode_fails(&m); /* not UTF-8 */
    m.event = "ev";
    sh_msg_t *text = sh_msg_new("x", 1, false);
    m.bins = &text;
    m.nbins = 1;
    expect_encode_fails(&m); /* attachments are binary */
    sh_msg_unref(text);
    m.bins = NULL;
    expect_encode_fails(&m);
    m.nbins = 0;

    sh_pubsub_msg_t cb = {.method = SH_PUBSUB_CALLBACK, .sid = "s"};
    expect_encode_fails(&cb); /* no addressee */
    sh_pubsub_msg_t r = {.method = SH_PUBSUB_ENTER_ROOM, .nsp = "/", .rooms = j("[\"a\"]")};
    expect_encode_fails(&r); /* no sid */
    r.sid = "s";
    json_decref(r.rooms);
    r.rooms = j("[\"a\",\"b\"]");
    expect_encode_fails(&r); /* one room at a time */
    json_decref(r.rooms);
    sh_pubsub_msg_t d = {.method = SH_PUBSUB_DISCONNECT, .sid = "s"};
    expect_encode_fails(&d);
    sh_pubsub_msg_t bad = {.method = (sh_pubsub_method_t)42, .nsp = "/"};
    expect_encode_fails(&bad);
    ck_assert_str_eq(sh_pubsub_method_name((sh_pubsub_method_t)42), "unknown");
}
END_TEST

/* ---- parsing: what the vector files cannot say */

static int parse_str(const char *s, sh_pubsub_msg_t *m, const char **err)
{
    return sh_pubsub_msg_parse(s, strlen(s), m, err);
}

START_TEST(test_parse_misc)
{
    sh_pubsub_msg_t m;
    const char *err;
    /* a disconnect without namespace means "/" */
    ck_assert_int_eq(parse_str("{\"method\":\"disconnect\",\"sid\":\"s\"}", &m, &err), 0);
    ck_assert_str_eq(m.nsp, "/");
    sh_pubsub_msg_release(&m);
    /* skip_sid [] is no skip list; unknown fields are ignored */
    ck_assert_int_eq(parse_str("{\"method\":\"emit\",\"event\":\"e\",\"data\":1,"
                               "\"namespace\":\"/\",\"skip_sid\":[],\"x\":{}}",
                               &m, &err),
                     0);
    ck_assert_ptr_null(m.skip_sids);
    sh_pubsub_msg_release(&m);
    /* placeholders are not checked when there are no attachments: they
     * travel in a plain EVENT, where nothing reads them */
    ck_assert_int_eq(parse_str("{\"method\":\"emit\",\"event\":\"e\",\"namespace\":\"/\","
                               "\"data\":{\"_placeholder\":true,\"num\":5}}",
                               &m, &err),
                     0);
    sh_pubsub_msg_release(&m);
    /* a binary payload of null is no argument */
    ck_assert_int_eq(parse_str("{\"method\":\"emit\",\"event\":\"e\",\"namespace\":\"/\","
                               "\"binary\":true,\"data\":[null]}",
                               &m, &err),
                     0);
    ck_assert_uint_eq(json_array_size(m.args), 0);
    sh_pubsub_msg_release(&m);
    /* the size limit, and empty input */
    char *big = sh_calloc(1, SH_PUBSUB_MAX_MESSAGE + 1);
    ck_assert_int_eq(sh_pubsub_msg_parse(big, SH_PUBSUB_MAX_MESSAGE + 1, &m, &err), -EINVAL);
    ck_assert_str_eq(err, "message too large");
    free(big);
    ck_assert_int_eq(sh_pubsub_msg_parse("", 0, &m, NULL), -EINVAL);
    /* bytes in a message that has no arguments are dropped; in an emit
     * they keep their numbers even when no argument names them */
    static const char disc[] = "\x80\x04}(\x8c\x06method\x8c\x0a"
                               "disconnect\x8c\x03sid\x8c\x01s\x8c\x01xC\x01zu.";
    ck_assert_int_eq(sh_pubsub_msg_parse(disc, sizeof(disc) - 1, &m, &err), 0);
    ck_assert_int_eq(m.method, SH_PUBSUB_DISCONNECT);
    ck_assert_uint_eq(m.nbins, 0);
    ck_assert_ptr_null(m.bins);
    sh_pubsub_msg_release(&m);
    static const char emit[] = "\x80\x04}(\x8c\x06method\x8c\x04"
                               "emit\x8c\x05"
                               "event\x8c\x01"
                               "e\x8c\x09namespace\x8c\x01/\x8c\x01xC\x01z\x8c\x04"
                               "dataC\x01yu.";
    ck_assert_int_eq(sh_pubsub_msg_parse(emit, sizeof(emit) - 1, &m, &err), 0);
    ck_assert_uint_eq(m.nbins, 2);
    ck_assert_int_eq(m.bins[1]->data[0], 'y');
    json_t *want = j("[{\"_placeholder\":true,\"num\":1}]");
    ck_assert(json_equal(m.args, want));
    json_decref(want);
    sh_pubsub_msg_release(&m);
    /* method with NUL */
    ck_assert_int_eq(parse_str("{\"method\":\"emit\\u0000x\"}", &m, &err), -ENOTSUP);
    sh_pubsub_msg_release(&m);
}
END_TEST

/* Every proper prefix of every vector is refused (pickles: truncated;
 * JSON: invalid), and never read past its end. */
START_TEST(test_truncated)
{
    const vector_t *v = &vectors[_i];
    if (strcmp(v->field[0], "ok") != 0)
        return;
    for (size_t n = 0; n < v->len; n++) {
        char *copy = sh_memdup(v->data, n ? n : 1);
        sh_pubsub_msg_t m;
        const char *err = NULL;
        int rc = sh_pubsub_msg_parse(copy, n, &m, &err);
        ck_assert_msg(rc == -EINVAL, "%s: prefix of %zu bytes gave %d", v->field[1], n, rc);
        ck_assert_ptr_nonnull(err);
        free(copy);
    }
}
END_TEST

int main(void)
{
    load_vectors();

    Suite *s = suite_create("pubsub_msg");
    TCase *tc = tcase_create("vectors");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_vector, 0, nvectors);
    tcase_add_loop_test(tc, test_truncated, 0, nvectors);
    suite_add_tcase(s, tc);

    tc = tcase_create("encode");
    tcase_add_test(tc, test_encode_emit_data_forms);
    tcase_add_test(tc, test_encode_emit_full);
    tcase_add_test(tc, test_encode_emit_text);
    tcase_add_test(tc, test_encode_other_methods);
    tcase_add_test(tc, test_encode_invalid);
    suite_add_tcase(s, tc);

    tc = tcase_create("parse");
    tcase_add_test(tc, test_parse_misc);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    for (int i = 0; i < nvectors; i++) {
        free(vectors[i].field[0]);
        free(vectors[i].data);
    }
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
