#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/pickle.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "datafile.h"

/* ---- vectors: tests/data/pubsub/pickle.txt and the <name>.pkl files it
 * names (written by python3-socketio 5.7.2 through gen_pickle.py, whose
 * docstring describes the format). Loaded once in main(), before the
 * runner forks. */

#define MAX_VECTORS 128
#define MAX_FIELDS  5

typedef struct vector {
    int line;
    int nfields;
    char *field[MAX_FIELDS]; /* kind, name, ... */
    char *data;              /* the .pkl bytes */
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
    char *text = read_file("pickle.txt", &len);
    int lineno = 0;
    for (char *line = text, *next; line && *line; line = next) {
        lineno++;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        if (nvectors == MAX_VECTORS) {
            fprintf(stderr, "pickle.txt: more than %d vectors\n", MAX_VECTORS);
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
        char name[256];
        snprintf(name, sizeof(name), "%s.pkl", v->field[1]);
        v->data = read_file(name, &v->len);
    }
    free(text);
}

/* Every array inside v is a tuple exactly when its path is listed. */
static void check_tuples(const sh_pickle_t *pk, json_t *v, const char *path, const char *list,
                         int line)
{
    if (json_is_array(v)) {
        char want[512];
        snprintf(want, sizeof(want), ",%s,", list);
        char key[512];
        snprintf(key, sizeof(key), ",%s,", path[0] ? path : "/");
        bool listed = strstr(want, key) != NULL;
        ck_assert_msg(sh_pickle_is_tuple(pk, v) == listed, "line %d: %s is %sa tuple", line,
                      path[0] ? path : "/", listed ? "not " : "");
        size_t i;
        json_t *e;
        json_array_foreach (v, i, e) {
            char sub[512];
            snprintf(sub, sizeof(sub), "%s/%zu", path, i);
            check_tuples(pk, e, sub, list, line);
        }
    } else if (json_is_object(v)) {
        const char *k;
        json_t *e;
        json_object_foreach (v, k, e) {
            char sub[512];
            snprintf(sub, sizeof(sub), "%s/%s", path, k);
            check_tuples(pk, e, sub, list, line);
        }
    }
}

static int hexval(char c)
{
    return c <= '9' ? c - '0' : c - 'a' + 10;
}

/* Compares the attachments with a comma-separated hex list ("-": none). */
static void check_bins(const sh_pickle_t *pk, const char *want, int line)
{
    if (strcmp(want, "-") == 0) {
        ck_assert_msg(pk->nbins == 0, "line %d: %zu attachments", line, pk->nbins);
        return;
    }
    size_t i = 0;
    for (const char *s = want;; i++) {
        const char *end = strchr(s, ',');
        size_t hexlen = end ? (size_t)(end - s) : strlen(s);
        ck_assert_msg(i < pk->nbins, "line %d: missing attachment %zu", line, i);
        const sh_msg_t *m = pk->bins[i];
        ck_assert(m->binary);
        ck_assert_msg(m->len * 2 == hexlen, "line %d: attachment %zu has %zu bytes", line, i,
                      m->len);
        for (size_t j = 0; j < m->len; j++)
            ck_assert_msg((unsigned char)m->data[j] == hexval(s[2 * j]) * 16 + hexval(s[2 * j + 1]),
                          "line %d: attachment %zu byte %zu", line, i, j);
        if (!end)
            break;
        s = end + 1;
    }
    ck_assert_msg(i + 1 == pk->nbins, "line %d: %zu attachments", line, pk->nbins);
}

START_TEST(test_vector)
{
    const vector_t *v = &vectors[_i];
    sh_pickle_t pk;
    const char *err = NULL;
    int rc = sh_pickle_decode(v->data, v->len, &pk, &err);

    if (strcmp(v->field[0], "bad") == 0) {
        ck_assert_msg(v->nfields == 3, "line %d: malformed", v->line);
        ck_assert_msg(rc == -EINVAL, "line %d (%s): decoded, expected a rejection", v->line,
                      v->field[1]);
        ck_assert_msg(err && strstr(err, v->field[2]), "line %d (%s): reason '%s', expected '%s'",
                      v->line, v->field[1], err ? err : "(null)", v->field[2]);
        ck_assert_ptr_null(pk.value);
        ck_assert_ptr_null(pk.bins);
        ck_assert_ptr_null(pk.tuples);
        sh_pickle_release(&pk);
        return;
    }
    ck_assert_msg(strcmp(v->field[0], "ok") == 0 && v->nfields == 5, "line %d: malformed", v->line);
    ck_assert_msg(rc == 0, "line %d (%s): rejected: %s", v->line, v->field[1], err);
    json_error_t jerr;
    json_t *want = json_loads(v->field[2], JSON_ALLOW_NUL, &jerr);
    ck_assert_msg(want != NULL, "line %d: bad expected JSON: %s", v->line, jerr.text);
    ck_assert_msg(json_equal(pk.value, want), "line %d (%s): value differs", v->line, v->field[1]);
    json_decref(want);
    check_tuples(&pk, pk.value, "", v->field[3], v->line);
    check_bins(&pk, v->field[4], v->line);
    /* The result is a tree as jansson sees it: it dumps. */
    char *s = json_dumps(pk.value, JSON_COMPACT);
    ck_assert_ptr_nonnull(s);
    free(s);
    sh_pickle_release(&pk);
    ck_assert_ptr_null(pk.value);
}
END_TEST

/* Every proper prefix of a good pickle is refused, with a reason (under
 * the sanitizer build, also without reading past n). */
START_TEST(test_vector_truncated)
{
    const vector_t *v = &vectors[_i];
    if (strcmp(v->field[0], "ok") != 0)
        return;
    for (size_t n = 0; n < v->len; n++) {
        char *copy = sh_memdup(v->data, n ? n : 1);
        sh_pickle_t pk;
        const char *err = NULL;
        ck_assert_msg(sh_pickle_decode(copy, n, &pk, &err) == -EINVAL,
                      "%s: prefix of %zu bytes decoded", v->field[1], n);
        ck_assert_ptr_nonnull(err);
        ck_assert_ptr_null(pk.value);
        free(copy);
    }
}
END_TEST

/* ---- hand-built pickles */

static void op(sh_buf_t *b, unsigned char c)
{
    sh_buf_append_byte(b, (char)c);
}

static void le(sh_buf_t *b, uint64_t v, int k)
{
    for (int i = 0; i < k; i++)
        op(b, (unsigned char)(v >> (8 * i)));
}

static void start(sh_buf_t *b)
{
    sh_buf_reset(b);
    op(b, 0x80);
    op(b, 4);
}

/* SHORT_BINUNICODE */
static void sstr(sh_buf_t *b, const char *s)
{
    op(b, 0x8c);
    op(b, (unsigned char)strlen(s));
    sh_buf_append_str(b, s);
}

static int decode(const sh_buf_t *b, sh_pickle_t *pk, const char **err)
{
    *err = NULL;
    return sh_pickle_decode(sh_buf_peek(b), sh_buf_avail(b), pk, err);
}

/* Decodes b expecting success and the JSON text want (compact, sorted). */
static void expect_json(const sh_buf_t *b, const char *want)
{
    sh_pickle_t pk;
    const char *err;
    ck_assert_msg(decode(b, &pk, &err) == 0, "rejected: %s (want %s)", err, want);
    char *s = json_dumps(pk.value, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    ck_assert_str_eq(s, want);
    free(s);
    sh_pickle_release(&pk);
}

static void expect_bad(const sh_buf_t *b, const char *reason)
{
    sh_pickle_t pk;
    const char *err;
    ck_assert_msg(decode(b, &pk, &err) == -EINVAL, "decoded, want '%s'", reason);
    ck_assert_msg(err && strstr(err, reason), "reason '%s', want '%s'", err ? err : "(null)",
                  reason);
    ck_assert_ptr_null(pk.value);
    ck_assert_uint_eq(pk.nbins, 0);
}

START_TEST(test_ints)
{
    sh_buf_t b = SH_BUF_INIT;
    start(&b);
    op(&b, ']');
    op(&b, '(');
    op(&b, 'J'); /* BININT -2 */
    le(&b, 0xfffffffeu, 4);
    op(&b, 'K'); /* BININT1 200 */
    op(&b, 200);
    op(&b, 'M'); /* BININT2 65535 */
    le(&b, 65535, 2);
    op(&b, 0x8a); /* LONG1 of length 0: 0 */
    op(&b, 0);
    op(&b, 0x8a); /* LONG1 ff: -1 */
    op(&b, 1);
    op(&b, 0xff);
    op(&b, 0x8a); /* LONG1 00 80: -32768 (the top bit is the sign) */
    op(&b, 2);
    le(&b, 0x8000, 2);
    op(&b, 0x8a); /* LONG1 of 9 bytes with a redundant sign byte: INT64_MIN */
    op(&b, 9);
    le(&b, 0x8000000000000000u, 8);
    op(&b, 0xff);
    op(&b, 0x8b); /* LONG4 of 8 bytes: INT64_MAX */
    le(&b, 8, 4);
    le(&b, 0x7fffffffffffffffu, 8);
    op(&b, 'e');
    op(&b, '.');
    expect_json(&b, "[-2,200,65535,0,-1,-32768,-9223372036854775808,9223372036854775807]");

    /* 2^63 in 9 bytes, and in 8 (which reads as negative only if the sign
     * byte is dropped): both out of range. */
    start(&b);
    op(&b, 0x8a);
    op(&b, 9);
    le(&b, 0x8000000000000000u, 8);
    op(&b, 0);
    op(&b, '.');
    expect_bad(&b, "int64");
    start(&b);
    op(&b, 0x8a);
    op(&b, 10);
    le(&b, 0, 8);
    op(&b, 1);
    op(&b, 0);
    op(&b, '.');
    expect_bad(&b, "int64");
    /* LONG4 with a negative length, and one past the input. */
    start(&b);
    op(&b, 0x8b);
    le(&b, 0xffffffffu, 4);
    op(&b, '.');
    expect_bad(&b, "negative LONG4 length");
    start(&b);
    op(&b, 0x8b);
    le(&b, 0x7fffffffu, 4);
    op(&b, '.');
    expect_bad(&b, "truncated");
    sh_buf_release(&b);
}
END_TEST

START_TEST(test_floats)
{
    sh_buf_t b = SH_BUF_INIT;
    start(&b);
    op(&b, 'G'); /* 1.5, big-endian */
    for (int i = 7; i >= 0; i--)
        op(&b, (unsigned char)(0x3ff8000000000000u >> (8 * i)));
    op(&b, '.');
    expect_json(&b, "1.5");
    start(&b);
    op(&b, 'G'); /* +inf */
    for (int i = 7; i >= 0; i--)
        op(&b, (unsigned char)(0x7ff0000000000000u >> (8 * i)));
    op(&b, '.');
    expect_bad(&b, "finite");
    sh_buf_release(&b);
}
END_TEST

START_TEST(test_long_forms)
{
    /* BINUNICODE8, BINBYTES8, BINBYTES, BYTEARRAY8, TUPLE, EMPTY_TUPLE,
     * NEWFALSE, LONG_BINPUT / LONG_BINGET: opcodes Python's default protocol
     * rarely writes for small values. */
    sh_buf_t b = SH_BUF_INIT;
    start(&b);
    op(&b, '(');
    op(&b, 0x8d);
    le(&b, 3, 8);
    sh_buf_append_str(&b, "abc");
    op(&b, 'r'); /* LONG_BINPUT 70000 */
    le(&b, 70000, 4);
    op(&b, 0x8e);
    le(&b, 2, 8);
    sh_buf_append(&b, "\x01\x02", 2);
    op(&b, 'B');
    le(&b, 1, 4);
    op(&b, 0x03);
    op(&b, 0x96);
    le(&b, 0, 8);
    op(&b, ')');
    op(&b, 0x89);
    op(&b, 'j'); /* LONG_BINGET 70000 */
    le(&b, 70000, 4);
    op(&b, 't');
    op(&b, '.');

    sh_pickle_t pk;
    const char *err;
    ck_assert_msg(decode(&b, &pk, &err) == 0, "%s", err);
    char *s = json_dumps(pk.value, JSON_COMPACT | JSON_SORT_KEYS);
    ck_assert_str_eq(s, "[\"abc\",{\"_placeholder\":true,\"num\":0},"
                        "{\"_placeholder\":true,\"num\":1},{\"_placeholder\":true,\"num\":2},"
                        "[],false,\"abc\"]");
    free(s);
    ck_assert(sh_pickle_is_tuple(&pk, pk.value));
    ck_assert(sh_pickle_is_tuple(&pk, json_array_get(pk.value, 4)));
    ck_assert(!sh_pickle_is_tuple(&pk, json_array_get(pk.value, 0)));
    /* The memo gives the same value, not a copy. */
    ck_assert_ptr_eq(json_array_get(pk.value, 0), json_array_get(pk.value, 6));
    ck_assert_uint_eq(pk.nbins, 3);
    ck_assert_uint_eq(pk.bins[0]->len, 2);
    ck_assert_uint_eq(pk.bins[1]->len, 1);
    ck_assert_uint_eq(pk.bins[2]->len, 0);
    ck_assert(pk.bins[2]->binary);
    ck_assert_uint_eq(pk.ntuples, 2);
    sh_pickle_release(&pk);
    sh_buf_release(&b);
}
END_TEST

START_TEST(test_shared_values)
{
    /* l = [1]; {"a": l, "b": l, "c": b"x", "d": <same bytes>}: one list,
     * one attachment, each referenced twice. */
    sh_buf_t b = SH_BUF_INIT;
    start(&b);
    op(&b, '}');
    op(&b, '(');
    sstr(&b, "a");
    op(&b, ']');
    op(&b, 0x94); /* memo 0 */
    op(&b, 'K');
    op(&b, 1);
    op(&b, 'a');
    sstr(&b, "b");
    op(&b, 'h');
    op(&b, 0);
    sstr(&b, "c");
    op(&b, 'C');
    op(&b, 1);
    op(&b, 'x');
    op(&b, 0x94); /* memo 1 */
    sstr(&b, "d");
    op(&b, 'h');
    op(&b, 1);
    op(&b, 'u');
    op(&b, '.');
    sh_pickle_t pk;
    const char *err;
    ck_assert_msg(decode(&b, &pk, &err) == 0, "%s", err);
    ck_assert_ptr_eq(json_object_get(pk.value, "a"), json_object_get(pk.value, "b"));
    ck_assert_ptr_eq(json_object_get(pk.value, "c"), json_object_get(pk.value, "d"));
    ck_assert_uint_eq(pk.nbins, 1);
    char *s = json_dumps(pk.value, JSON_COMPACT | JSON_SORT_KEYS);
    ck_assert_str_eq(s, "{\"a\":[1],\"b\":[1],\"c\":{\"_placeholder\":true,\"num\":0},"
                        "\"d\":{\"_placeholder\":true,\"num\":0}}");
    free(s);
    sh_pickle_release(&pk);
    sh_buf_release(&b);
}
END_TEST

START_TEST(test_memo)
{
    sh_buf_t b = SH_BUF_INIT;
    /* MEMOIZE stores at len(memo): after BINPUT 5 that is index 1. */
    start(&b);
    op(&b, ']');
    op(&b, 'q');
    op(&b, 5);
    op(&b, 'K');
    op(&b, 7);
    op(&b, 0x94);
    op(&b, 'a');
    op(&b, 'h');
    op(&b, 1);
    op(&b, 'a');
    op(&b, '.');
    expect_json(&b, "[7,7]");
    /* ... and nothing at index 2. */
    sh_buf_release(&b);
    start(&b);
    op(&b, ']');
    op(&b, 'q');
    op(&b, 5);
    op(&b, 'K');
    op(&b, 7);
    op(&b, 0x94);
    op(&b, 'a');
    op(&b, 'h');
    op(&b, 2);
    op(&b, 'a');
    op(&b, '.');
    expect_bad(&b, "memo index not defined");
    start(&b);
    op(&b, 'j');
    le(&b, 0xffffffffu, 4);
    op(&b, '.');
    expect_bad(&b, "memo index not defined");
    start(&b);
    op(&b, 'N');
    op(&b, 'r');
    le(&b, SH_PICKLE_MAX_MEMO, 4);
    op(&b, '.');
    expect_bad(&b, "memo index too large");
    start(&b);
    op(&b, 'N');
    op(&b, 'r');
    le(&b, SH_PICKLE_MAX_MEMO - 1, 4);
    op(&b, '.');
    expect_json(&b, "null");
    /* Nothing to memoize, above or below a mark. */
    start(&b);
    op(&b, 0x94);
    expect_bad(&b, "empty stack");
    start(&b);
    op(&b, 'N');
    op(&b, '(');
    op(&b, 'q');
    op(&b, 0);
    expect_bad(&b, "empty stack");
    sh_buf_release(&b);
}
END_TEST

START_TEST(test_cycles)
{
    sh_buf_t b = SH_BUF_INIT;
    /* l0 = []; l1 = [l0]; l0.append(l1) */
    start(&b);
    op(&b, ']');
    op(&b, 0x94);
    op(&b, ']');
    op(&b, 'h');
    op(&b, 0);
    op(&b, 'a');
    op(&b, 'a');
    op(&b, '.');
    expect_bad(&b, "cycle");
    /* d = {}; d["k"] = d through SETITEMS */
    start(&b);
    op(&b, '}');
    op(&b, 0x94);
    op(&b, '(');
    sstr(&b, "k");
    op(&b, 'h');
    op(&b, 0);
    op(&b, 'u');
    op(&b, '.');
    expect_bad(&b, "cycle");
    /* A tuple holding a list that then gets the tuple: t = ([],); t[0].append(t) */
    start(&b);
    op(&b, ']');
    op(&b, 0x94);
    op(&b, 0x85);
    op(&b, 0x94);
    op(&b, 'h');
    op(&b, 0);
    op(&b, 'h');
    op(&b, 1);
    op(&b, 'a');
    op(&b, '.');
    expect_bad(&b, "cycle");
    /* A list appended to after being placed elsewhere, even without a
     * cycle: refused too (Python never writes that). */
    start(&b);
    op(&b, ']');
    op(&b, 0x94);
    op(&b, ']');
    op(&b, 'h');
    op(&b, 0);
    op(&b, 'a');
    op(&b, 'h');
    op(&b, 0);
    op(&b, 'K');
    op(&b, 1);
    op(&b, 'a');
    op(&b, '.');
    expect_bad(&b, "cycle");
    sh_buf_release(&b);
}
END_TEST

START_TEST(test_containers_misused)
{
    sh_buf_t b = SH_BUF_INIT;
    start(&b);
    op(&b, '}');
    op(&b, 'N');
    op(&b, 'a');
    expect_bad(&b, "APPEND to something not a list");
    start(&b);
    op(&b, ')');
    op(&b, 'N');
    op(&b, 'a');
    expect_bad(&b, "APPEND to something not a list");
    start(&b);
    op(&b, ']');
    op(&b, 'K');
    op(&b, 0);
    op(&b, 'N');
    op(&b, 's');
    expect_bad(&b, "SETITEM to something not a dict");
    /* bytes become a placeholder object: still not a dict */
    start(&b);
    op(&b, 'C');
    op(&b, 0);
    sstr(&b, "k");
    op(&b, 'N');
    op(&b, 's');
    expect_bad(&b, "SETITEM to something not a dict");
    /* keys: int, bytes, None, tuple */
    const unsigned char keys[][3] = {{'K', 1, 0}, {'C', 0, 0}, {'N', 0, 0}, {')', 0, 0}};
    const size_t keylen[] = {2, 2, 1, 1};
    for (size_t i = 0; i < 4; i++) {
        start(&b);
        op(&b, '}');
        sh_buf_append(&b, keys[i], keylen[i]);
        op(&b, 'N');
        op(&b, 's');
        op(&b, '.');
        expect_bad(&b, "dict key is not a str");
    }
    start(&b);
    op(&b, '}');
    op(&b, '(');
    sstr(&b, "k");
    op(&b, 'u');
    expect_bad(&b, "odd number");
    sh_buf_release(&b);
}
END_TEST

START_TEST(test_dict_keys)
{
    sh_buf_t b = SH_BUF_INIT;
    /* duplicate keys: the later wins, as in Python */
    start(&b);
    op(&b, '}');
    op(&b, '(');
    sstr(&b, "k");
    op(&b, 'K');
    op(&b, 1);
    sstr(&b, "k");
    op(&b, 'K');
    op(&b, 2);
    op(&b, 'u');
    op(&b, '.');
    expect_json(&b, "{\"k\":2}");
    /* a key may not hold NUL (a value may) */
    start(&b);
    op(&b, '}');
    op(&b, 0x8c);
    op(&b, 3);
    sh_buf_append(&b, "a\0b", 3);
    op(&b, 0x8c);
    op(&b, 3);
    sh_buf_append(&b, "a\0b", 3);
    op(&b, 's');
    op(&b, '.');
    expect_bad(&b, "dict key holds NUL");
    start(&b);
    op(&b, 0x8c);
    op(&b, 3);
    sh_buf_append(&b, "a\0b", 3);
    op(&b, '.');
    sh_pickle_t pk;
    const char *err;
    ck_assert_msg(decode(&b, &pk, &err) == 0, "%s", err);
    ck_assert_uint_eq(json_string_length(pk.value), 3);
    sh_pickle_release(&pk);
    sh_buf_release(&b);
}
END_TEST

START_TEST(test_strings)
{
    sh_buf_t b = SH_BUF_INIT;
    static const char *const invalid[] = {
        "\xff",             /* never valid */
        "\xc0\xaf",         /* overlong '/' */
        "\xed\xa0\x80",     /* U+D800, what pickle writes for a lone surrogate */
        "\xe2\x82",         /* cut short */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
    };
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        start(&b);
        sstr(&b, invalid[i]);
        op(&b, '.');
        expect_bad(&b, "UTF-8");
    }
    start(&b);
    sstr(&b, "\xf0\x9f\x98\x80");
    op(&b, '.');
    expect_json(&b, "\"\xf0\x9f\x98\x80\"");
    /* lengths past the end */
    start(&b);
    op(&b, 'X');
    le(&b, 0xffffffffu, 4);
    sh_buf_append_str(&b, "abc.");
    expect_bad(&b, "truncated");
    start(&b);
    op(&b, 0x8d);
    le(&b, UINT64_MAX, 8);
    sh_buf_append_str(&b, "abc.");
    expect_bad(&b, "truncated");
    start(&b);
    op(&b, 0x8e);
    le(&b, (uint64_t)1 << 63, 8);
    expect_bad(&b, "truncated");
    start(&b);
    op(&b, 0x96);
    le(&b, 5, 8);
    sh_buf_append_str(&b, "abcd");
    expect_bad(&b, "truncated");
    sh_buf_release(&b);
}
END_TEST

START_TEST(test_structure)
{
    sh_buf_t b = SH_BUF_INIT;
    expect_bad(&b, "no PROTO");
    sh_buf_append_str(&b, "N.");
    expect_bad(&b, "no PROTO");
    sh_buf_reset(&b);
    op(&b, 0x80);
    op(&b, 1);
    op(&b, 'N');
    op(&b, '.');
    expect_bad(&b, "unsupported pickle protocol");
    sh_buf_reset(&b);
    op(&b, 0x80);
    op(&b, 6);
    op(&b, 'N');
    op(&b, '.');
    expect_bad(&b, "unsupported pickle protocol");
    for (unsigned char p = 2; p <= 5; p++) {
        sh_buf_reset(&b);
        op(&b, 0x80);
        op(&b, p);
        op(&b, 'N');
        op(&b, '.');
        expect_json(&b, "null");
    }
    start(&b);
    op(&b, 'N');
    expect_bad(&b, "no STOP");
    start(&b);
    op(&b, '.');
    expect_bad(&b, "exactly one value");
    start(&b);
    op(&b, 'N');
    op(&b, 'N');
    op(&b, '.');
    expect_bad(&b, "exactly one value");
    start(&b);
    op(&b, 'N');
    op(&b, '(');
    op(&b, '.');
    expect_bad(&b, "open MARK");
    start(&b);
    op(&b, 'N');
    op(&b, '.');
    op(&b, 'N');
    expect_bad(&b, "bytes after STOP");
    start(&b);
    op(&b, 0x95);
    le(&b, 100, 8);
    op(&b, 'N');
    op(&b, '.');
    expect_bad(&b, "FRAME past the end");
    start(&b);
    op(&b, 0x95);
    le(&b, 2, 8);
    op(&b, 'N');
    op(&b, '.');
    expect_json(&b, "null");
    /* stack underflow, with and without marks */
    start(&b);
    op(&b, 'a');
    expect_bad(&b, "stack underflow");
    start(&b);
    op(&b, ']');
    op(&b, '(');
    op(&b, 'N');
    op(&b, 'a');
    expect_bad(&b, "stack underflow");
    start(&b);
    op(&b, 'e');
    expect_bad(&b, "no MARK");
    start(&b);
    op(&b, '(');
    op(&b, 'N');
    op(&b, 'e');
    expect_bad(&b, "stack underflow");
    start(&b);
    op(&b, '}');
    op(&b, '(');
    op(&b, 'N');
    op(&b, 'N');
    op(&b, 's');
    expect_bad(&b, "stack underflow");
    start(&b);
    op(&b, 'N');
    op(&b, '(');
    op(&b, 'N');
    op(&b, 0x86);
    expect_bad(&b, "stack underflow");
    start(&b);
    op(&b, 't');
    expect_bad(&b, "no MARK");
    sh_buf_release(&b);
}
END_TEST

/* Every opcode outside the allowed set is refused by name, wherever it
 * stands: nothing before it matters and nothing after it is read. */
START_TEST(test_forbidden_opcodes)
{
    static const struct {
        unsigned char op;
        const char *name;
    } table[] = {
        {'c', "GLOBAL"},     {0x93, "STACK_GLOBAL"}, {'R', "REDUCE"},
        {'b', "BUILD"},      {'i', "INST"},          {'o', "OBJ"},
        {0x81, "NEWOBJ"},    {0x92, "NEWOBJ_EX"},    {0x82, "EXT1"},
        {0x83, "EXT2"},      {0x84, "EXT4"},         {'P', "PERSID"},
        {'Q', "BINPERSID"},  {0x8f, "EMPTY_SET"},    {0x90, "ADDITEMS"},
        {0x91, "FROZENSET"}, {0x97, "NEXT_BUFFER"},  {0x98, "READONLY_BUFFER"},
        {'0', "POP"},        {'1', "POP_MARK"},      {'2', "DUP"},
        {'F', "FLOAT"},      {'I', "INT"},           {'L', "LONG"},
        {'S', "STRING"},     {'T', "BINSTRING"},     {'U', "SHORT_BINSTRING"},
        {'V', "UNICODE"},    {'d', "DICT"},          {'g', "GET"},
        {'l', "LIST"},       {'p', "PUT"},
    };
    sh_buf_t b = SH_BUF_INIT;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        start(&b);
        op(&b, '(');
        op(&b, table[i].op);
        sh_buf_append_str(&b, "os\nsystem\n");
        op(&b, '.');
        char want[64];
        snprintf(want, sizeof(want), "opcode %s", table[i].name);
        expect_bad(&b, want);
    }
    /* and bytes that are no opcode at all */
    static const unsigned char unknown[] = {0x00, 0xff, 0x99, '!', 'z', '{'};
    for (size_t i = 0; i < sizeof(unknown); i++) {
        start(&b);
        op(&b, unknown[i]);
        op(&b, '.');
        expect_bad(&b, "unknown opcode");
    }
    sh_buf_release(&b);
}
END_TEST

/* [[...[None]...]] nested depth lists deep. */
static void nested_lists(sh_buf_t *b, int depth)
{
    start(b);
    for (int i = 0; i < depth; i++)
        op(b, ']');
    op(b, 'N');
    op(b, 'a');
    for (int i = 1; i < depth; i++)
        op(b, 'a');
    op(b, '.');
}

START_TEST(test_limits)
{
    sh_buf_t b = SH_BUF_INIT;
    sh_pickle_t pk;
    const char *err;

    nested_lists(&b, SH_PICKLE_MAX_DEPTH);
    ck_assert_msg(decode(&b, &pk, &err) == 0, "%s", err);
    sh_pickle_release(&pk);
    nested_lists(&b, SH_PICKLE_MAX_DEPTH + 1);
    expect_bad(&b, "nested too deep");
    /* tuples nest too */
    start(&b);
    op(&b, 'N');
    for (int i = 0; i <= SH_PICKLE_MAX_DEPTH; i++)
        op(&b, 0x85);
    op(&b, '.');
    expect_bad(&b, "nested too deep");
    start(&b);
    for (int i = 0; i < SH_PICKLE_MAX_DEPTH + 2; i++)
        op(&b, '(');
    expect_bad(&b, "too many open MARKs");

    /* values created */
    start(&b);
    op(&b, ']');
    op(&b, '(');
    for (int i = 0; i < SH_PICKLE_MAX_VALUES; i++)
        op(&b, 'N');
    op(&b, 'e');
    op(&b, '.');
    expect_bad(&b, "too many values");
    /* container slots: one value referenced over and over */
    start(&b);
    op(&b, 'N');
    op(&b, 0x94);
    op(&b, ']');
    for (int i = 0; i <= SH_PICKLE_MAX_VALUES / 1000; i++) {
        op(&b, '(');
        for (int j = 0; j < 1000; j++) {
            op(&b, 'h');
            op(&b, 0);
        }
        op(&b, 'e');
    }
    op(&b, '.');
    expect_bad(&b, "too many elements");

    /* attachments */
    start(&b);
    op(&b, ']');
    op(&b, '(');
    for (int i = 0; i <= SH_PICKLE_MAX_BINS; i++) {
        op(&b, 'C');
        op(&b, 0);
    }
    op(&b, 'e');
    op(&b, '.');
    expect_bad(&b, "too many bytes values");

    /* "billion laughs": l0 = "x" * 60000; l(k+1) = [lk, lk]: 30 levels are
     * a few hundred bytes of pickle and would be 64 TB of JSON. */
    start(&b);
    op(&b, 'X');
    le(&b, 60000, 4);
    for (int i = 0; i < 60000; i++)
        op(&b, 'x');
    for (int i = 0; i < 30; i++) {
        op(&b, 0x94); /* memo i */
        op(&b, ']');
        op(&b, '(');
        op(&b, 'j');
        le(&b, (uint64_t)i, 4);
        op(&b, 'j');
        le(&b, (uint64_t)i, 4);
        op(&b, 'e');
    }
    op(&b, '.');
    expect_bad(&b, "expands too much");

    /* input size */
    sh_buf_reset(&b);
    char *big = sh_calloc(1, SH_PICKLE_MAX_INPUT + 1);
    big[0] = (char)0x80;
    big[1] = 4;
    ck_assert_int_eq(sh_pickle_decode(big, SH_PICKLE_MAX_INPUT + 1, &pk, &err), -EINVAL);
    ck_assert_str_eq(err, "pickle too large");
    free(big);
    sh_buf_release(&b);
}
END_TEST

START_TEST(test_err_may_be_null)
{
    sh_pickle_t pk;
    ck_assert_int_eq(sh_pickle_decode("x", 1, &pk, NULL), -EINVAL);
    sh_pickle_release(&pk);
    sh_pickle_release(&pk);
}
END_TEST

int main(void)
{
    load_vectors();

    Suite *s = suite_create("pickle");
    TCase *tc = tcase_create("vectors");
    tcase_add_loop_test(tc, test_vector, 0, nvectors);
    tcase_add_loop_test(tc, test_vector_truncated, 0, nvectors);
    suite_add_tcase(s, tc);

    tc = tcase_create("opcodes");
    tcase_add_test(tc, test_ints);
    tcase_add_test(tc, test_floats);
    tcase_add_test(tc, test_long_forms);
    tcase_add_test(tc, test_shared_values);
    tcase_add_test(tc, test_memo);
    tcase_add_test(tc, test_dict_keys);
    tcase_add_test(tc, test_strings);
    suite_add_tcase(s, tc);

    tc = tcase_create("hostile");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_cycles);
    tcase_add_test(tc, test_containers_misused);
    tcase_add_test(tc, test_structure);
    tcase_add_test(tc, test_forbidden_opcodes);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_err_may_be_null);
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
