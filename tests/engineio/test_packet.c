/* Engine.IO packet codec tests: the vectors in tests/data/engineio/
 * (packet.vec, payload.vec, base64.vec; each file describes its format at
 * the top), plus encoding and round trips. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/msg.h"
#include "engineio/packet.h"

/* ---- vector files */

#define MAX_FIELDS 16

typedef struct vec_line {
    char *fields[MAX_FIELDS]; /* raw tokens, pointing into the line */
    int n;
    unsigned lineno;
} vec_line_t;

typedef void (*vec_cb)(const vec_line_t *v);

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Appends the unescaped token s (\xHH, \\; "-" alone is empty) to out. */
static void unescape(const char *s, sh_buf_t *out, unsigned lineno)
{
    if (strcmp(s, "-") == 0)
        return;
    for (const char *q = s; *q; q++) {
        if (*q != '\\') {
            sh_buf_append_byte(out, *q);
            continue;
        }
        if (q[1] == '\\') {
            sh_buf_append_byte(out, '\\');
            q++;
            continue;
        }
        int hi = q[1] == 'x' ? hexval(q[2]) : -1;
        int lo = hi >= 0 ? hexval(q[3]) : -1;
        ck_assert_msg(lo >= 0, "line %u: bad escape in %s", lineno, s);
        sh_buf_append_byte(out, (char)(hi << 4 | lo));
        q += 3;
    }
}

/* Appends the bytes of a hex string ("-" or "" is none) to out. */
static void unhex(const char *s, sh_buf_t *out, unsigned lineno)
{
    if (strcmp(s, "-") == 0)
        return;
    size_t n = strlen(s);
    ck_assert_msg(n % 2 == 0, "line %u: odd hex %s", lineno, s);
    for (size_t i = 0; i < n; i += 2) {
        int hi = hexval(s[i]), lo = hexval(s[i + 1]);
        ck_assert_msg(hi >= 0 && lo >= 0, "line %u: bad hex %s", lineno, s);
        sh_buf_append_byte(out, (char)(hi << 4 | lo));
    }
}

/* Calls cb for every vector line of TESTS_DATADIR/engineio/name; returns
 * how many there were, so a test can insist the file was not empty. */
static unsigned vec_each(const char *name, vec_cb cb)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/engineio/%s", TESTS_DATADIR, name);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char *line = NULL;
    size_t cap = 0;
    unsigned lineno = 0, count = 0;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        size_t lead = strspn(line, " \t");
        if (line[lead] == '#')
            continue;
        vec_line_t v = {.n = 0, .lineno = lineno};
        char *save = NULL;
        for (char *tok = strtok_r(line, " \t\r\n", &save); tok;
             tok = strtok_r(NULL, " \t\r\n", &save)) {
            ck_assert_msg(v.n < MAX_FIELDS, "%s:%u: too many fields", name, lineno);
            v.fields[v.n++] = tok;
        }
        if (v.n == 0)
            continue;
        ck_assert_msg(v.n >= 2, "%s:%u: needs an input and an expectation", name, lineno);
        cb(&v);
        count++;
    }
    free(line);
    fclose(f);
    return count;
}

/* One expected packet parsed from "T:data" or "b:HEX". */
typedef struct want {
    sh_eio_type_t type;
    bool binary;
    sh_buf_t data;
} want_t;

static void want_parse(const char *tok, want_t *w, unsigned lineno)
{
    memset(w, 0, sizeof(*w));
    ck_assert_msg(tok[0] != '\0' && tok[1] == ':', "line %u: bad packet %s", lineno, tok);
    if (tok[0] == 'b') {
        w->type = SH_EIO_MESSAGE;
        w->binary = true;
        unhex(tok + 2, &w->data, lineno);
    } else {
        ck_assert_msg(tok[0] >= '0' && tok[0] <= '6', "line %u: bad type %s", lineno, tok);
        w->type = (sh_eio_type_t)(tok[0] - '0');
        unescape(tok + 2, &w->data, lineno);
    }
}

static void want_check(const want_t *w, const sh_eio_packet_t *got, unsigned lineno)
{
    ck_assert_msg(got->type == w->type, "line %u: type %d, want %d", lineno, got->type, w->type);
    ck_assert_msg(got->binary == w->binary, "line %u: binary flag %d", lineno, got->binary);
    ck_assert_msg(got->len == sh_buf_avail(&w->data), "line %u: len %zu, want %zu", lineno,
                  got->len, sh_buf_avail(&w->data));
    ck_assert_msg(memcmp(got->data, sh_buf_peek(&w->data), got->len) == 0, "line %u: data differs",
                  lineno);
}

static sh_msg_t *want_msg(const want_t *w)
{
    if (w->binary)
        return sh_eio_msg_binary(sh_buf_peek(&w->data), sh_buf_avail(&w->data));
    return sh_eio_msg_text(w->type, sh_buf_peek(&w->data), sh_buf_avail(&w->data));
}

/* ---- packet.vec */

static void packet_vector(const vec_line_t *v)
{
    ck_assert_msg(v->n == 2, "line %u: packet vectors have two fields", v->lineno);
    sh_buf_t in = SH_BUF_INIT;
    unescape(v->fields[0], &in, v->lineno);
    sh_eio_packet_t pk;
    int rc = sh_eio_packet_decode_text(sh_buf_peek(&in), sh_buf_avail(&in), &pk);
    if (strcmp(v->fields[1], "error") == 0) {
        ck_assert_msg(rc == -EINVAL, "line %u: accepted a bad packet (rc %d)", v->lineno, rc);
    } else {
        ck_assert_msg(rc == 0, "line %u: rejected (rc %d)", v->lineno, rc);
        want_t w;
        want_parse(v->fields[1], &w, v->lineno);
        ck_assert(!w.binary);
        want_check(&w, &pk, v->lineno);
        /* borrowed: the data is the input after the type digit */
        ck_assert_ptr_eq(pk.data, sh_buf_peek(&in) + 1);
        /* and it encodes back to the same bytes */
        sh_msg_t *m = sh_eio_msg_text(pk.type, pk.data, pk.len);
        ck_assert(!m->binary);
        ck_assert_uint_eq(m->len, sh_buf_avail(&in));
        ck_assert_mem_eq(m->data, sh_buf_peek(&in), m->len);
        sh_msg_unref(m);
        sh_buf_release(&w.data);
    }
    sh_buf_release(&in);
}

START_TEST(test_packet_vectors)
{
    ck_assert_uint_ge(vec_each("packet.vec", packet_vector), 30);
}
END_TEST

/* ---- payload.vec */

static void payload_vector(const vec_line_t *v)
{
    sh_buf_t in = SH_BUF_INIT, scratch = SH_BUF_INIT, again = SH_BUF_INIT;
    unescape(v->fields[0], &in, v->lineno);
    const char *p = sh_buf_peek(&in);
    size_t n = sh_buf_avail(&in);

    want_t wants[MAX_FIELDS];
    int nwant = 0;
    bool error = false, noncanonical = false;
    for (int i = 1; i < v->n; i++) {
        if (strcmp(v->fields[i], "error") == 0) {
            ck_assert_msg(i == v->n - 1, "line %u: error must come last", v->lineno);
            error = true;
        } else if (strcmp(v->fields[i], "noncanonical") == 0) {
            noncanonical = true;
        } else {
            want_parse(v->fields[i], &wants[nwant++], v->lineno);
        }
    }

    size_t pos = 0;
    sh_eio_packet_t pk;
    for (int i = 0; i < nwant; i++) {
        size_t before = pos;
        int rc = sh_eio_payload_next(p, n, &pos, &pk, &scratch);
        ck_assert_msg(rc == 1, "line %u: packet %d: rc %d", v->lineno, i, rc);
        ck_assert_msg(pos > before && pos <= n, "line %u: pos did not advance", v->lineno);
        want_check(&wants[i], &pk, v->lineno);
        /* (an empty scratch peeks as a "" literal, which each translation
         * unit may have its own copy of under ASan) */
        if (pk.binary && scratch.data)
            ck_assert_ptr_eq(pk.data, sh_buf_peek(&scratch));
        else if (pk.binary)
            ck_assert_uint_eq(pk.len, 0);
        else
            ck_assert_ptr_eq(pk.data, p + before + 1); /* borrowed from the input */
    }
    size_t end = pos;
    int rc = sh_eio_payload_next(p, n, &pos, &pk, &scratch);
    if (error) {
        ck_assert_msg(rc == -EINVAL, "line %u: want -EINVAL, got %d", v->lineno, rc);
    } else {
        ck_assert_msg(rc == 0, "line %u: want the end, got %d", v->lineno, rc);
        ck_assert_uint_eq(pos, n);
        /* the end stays the end */
        ck_assert_int_eq(sh_eio_payload_next(p, n, &pos, &pk, &scratch), 0);
        ck_assert_uint_eq(pos, end);

        for (int i = 0; i < nwant; i++) {
            sh_msg_t *m = want_msg(&wants[i]);
            sh_eio_payload_append(&again, m, i == 0);
            sh_msg_unref(m);
        }
        if (noncanonical) {
            ck_assert_msg(sh_buf_avail(&again) != n || memcmp(sh_buf_peek(&again), p, n) != 0,
                          "line %u: marked noncanonical but re-encodes exactly", v->lineno);
        } else {
            ck_assert_msg(sh_buf_avail(&again) == n, "line %u: re-encoded length %zu, want %zu",
                          v->lineno, sh_buf_avail(&again), n);
            ck_assert_msg(memcmp(sh_buf_peek(&again), p, n) == 0,
                          "line %u: re-encoded bytes differ", v->lineno);
        }
    }
    for (int i = 0; i < nwant; i++)
        sh_buf_release(&wants[i].data);
    sh_buf_release(&in);
    sh_buf_release(&scratch);
    sh_buf_release(&again);
}

START_TEST(test_payload_vectors)
{
    ck_assert_uint_ge(vec_each("payload.vec", payload_vector), 50);
}
END_TEST

/* ---- base64.vec */

static void base64_vector(const vec_line_t *v)
{
    ck_assert_msg(v->n == 2, "line %u: base64 vectors have two fields", v->lineno);
    sh_buf_t in = SH_BUF_INIT, out = SH_BUF_INIT, want = SH_BUF_INIT;
    unescape(v->fields[0], &in, v->lineno);
    /* decoding appends: what is already in out must stay */
    sh_buf_append_str(&out, "pre");
    int rc = sh_base64_decode(sh_buf_peek(&in), sh_buf_avail(&in), &out);
    if (strcmp(v->fields[1], "error") == 0) {
        ck_assert_msg(rc == -EINVAL, "line %u: accepted bad base64 (rc %d)", v->lineno, rc);
        ck_assert_uint_eq(sh_buf_avail(&out), 3);
    } else {
        ck_assert_msg(rc == 0, "line %u: rejected (rc %d)", v->lineno, rc);
        unhex(v->fields[1], &want, v->lineno);
        ck_assert_msg(sh_buf_avail(&out) == 3 + sh_buf_avail(&want), "line %u: %zu bytes, want %zu",
                      v->lineno, sh_buf_avail(&out) - 3, sh_buf_avail(&want));
        ck_assert_mem_eq(sh_buf_peek(&out) + 3, sh_buf_peek(&want), sh_buf_avail(&want));
    }
    ck_assert_mem_eq(sh_buf_peek(&out), "pre", 3);
    ck_assert_int_eq(sh_buf_peek(&out)[sh_buf_avail(&out)], '\0'); /* buf invariant */
    sh_buf_release(&in);
    sh_buf_release(&out);
    sh_buf_release(&want);
}

START_TEST(test_base64_vectors)
{
    ck_assert_uint_ge(vec_each("base64.vec", base64_vector), 30);
}
END_TEST

/* ---- encoding */

START_TEST(test_msg_text_every_type)
{
    static const char *const want[] = {"0x", "1x", "2x", "3x", "4x", "5x", "6x"};
    for (int t = SH_EIO_OPEN; t <= SH_EIO_NOOP; t++) {
        sh_msg_t *m = sh_eio_msg_text((sh_eio_type_t)t, "x", 1);
        ck_assert(!m->binary);
        ck_assert_uint_eq(m->len, 2);
        ck_assert_str_eq(m->data, want[t]);
        sh_msg_unref(m);
    }
    sh_msg_t *m = sh_eio_msg_text(SH_EIO_PONG, NULL, 0);
    ck_assert_uint_eq(m->len, 1);
    ck_assert_str_eq(m->data, "3");
    sh_msg_unref(m);
}
END_TEST

START_TEST(test_msg_binary_copies)
{
    unsigned char raw[] = {1, 2, 3, 4};
    sh_msg_t *m = sh_eio_msg_binary(raw, sizeof(raw));
    raw[0] = 9; /* the message holds its own copy */
    ck_assert(m->binary);
    ck_assert_uint_eq(m->len, 4);
    ck_assert_mem_eq(m->data, "\x01\x02\x03\x04", 4);
    ck_assert_ptr_null(m->base64);
    sh_msg_unref(m);
}
END_TEST

START_TEST(test_payload_append_spec_examples)
{
    sh_buf_t out = SH_BUF_INIT;
    sh_msg_t *a = sh_eio_msg_text(SH_EIO_MESSAGE, "hello", 5);
    sh_msg_t *b = sh_eio_msg_text(SH_EIO_PING, NULL, 0);
    sh_msg_t *c = sh_eio_msg_text(SH_EIO_MESSAGE, "world", 5);
    sh_eio_payload_append(&out, a, true);
    sh_eio_payload_append(&out, b, false);
    sh_eio_payload_append(&out, c, false);
    ck_assert_uint_eq(sh_buf_avail(&out), 15);
    ck_assert_mem_eq(sh_buf_peek(&out),
                     "4hello\x1e"
                     "2\x1e"
                     "4world",
                     15);
    ck_assert_ptr_null(a->base64); /* text messages need no second form */

    sh_buf_reset(&out);
    const unsigned char raw[] = {1, 2, 3, 4};
    sh_msg_t *bin = sh_eio_msg_binary(raw, sizeof(raw));
    sh_eio_payload_append(&out, a, true);
    sh_eio_payload_append(&out, bin, false);
    ck_assert_uint_eq(sh_buf_avail(&out), 16);
    ck_assert_mem_eq(sh_buf_peek(&out),
                     "4hello\x1e"
                     "bAQIDBA==",
                     16);
    sh_msg_unref(a);
    sh_msg_unref(b);
    sh_msg_unref(c);
    sh_msg_unref(bin);
    sh_buf_release(&out);
}
END_TEST

START_TEST(test_payload_append_caches_base64)
{
    const unsigned char raw[] = {0xff, 0x00, 0x1e};
    sh_msg_t *m = sh_eio_msg_binary(raw, sizeof(raw));
    sh_buf_t one = SH_BUF_INIT, two = SH_BUF_INIT;

    sh_eio_payload_append(&one, m, true);
    sh_msg_t *cached = m->base64;
    ck_assert_ptr_nonnull(cached);
    ck_assert_str_eq(cached->data, "b/wAe");
    ck_assert(!cached->binary);

    /* a second recipient reuses the same encoded form */
    sh_eio_payload_append(&two, m, false);
    ck_assert_ptr_eq(m->base64, cached);
    ck_assert_ptr_eq(sh_msg_base64(m), cached);
    ck_assert_str_eq(sh_buf_peek(&one), "b/wAe");
    ck_assert_uint_eq(sh_buf_avail(&two), 6);
    ck_assert_mem_eq(sh_buf_peek(&two),
                     "\x1e"
                     "b/wAe",
                     6);

    /* an empty binary message is a bare "b" */
    sh_msg_t *e = sh_eio_msg_binary(NULL, 0);
    sh_eio_payload_append(&two, e, false);
    ck_assert_uint_eq(sh_buf_avail(&two), 8);
    ck_assert_mem_eq(sh_buf_peek(&two) + 6,
                     "\x1e"
                     "b",
                     2);
    sh_msg_unref(e);
    sh_msg_unref(m);
    sh_buf_release(&one);
    sh_buf_release(&two);
}
END_TEST

/* ---- round trips */

/* Deterministic pseudo-random bytes (xorshift), so a failure reproduces. */
static unsigned rnd(unsigned *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

START_TEST(test_payload_round_trip)
{
    unsigned seed = 0x2545f491;
    for (int iter = 0; iter < 500; iter++) {
        int count = 1 + (int)(rnd(&seed) % 8);
        sh_msg_t *msgs[8];
        sh_buf_t payload = SH_BUF_INIT, scratch = SH_BUF_INIT;
        for (int i = 0; i < count; i++) {
            char data[64];
            size_t len = rnd(&seed) % sizeof(data);
            bool binary = rnd(&seed) % 3 == 0;
            for (size_t k = 0; k < len; k++) {
                data[k] = (char)rnd(&seed);
                /* text data may hold anything but the separator */
                if (!binary && data[k] == SH_EIO_SEPARATOR)
                    data[k] = 'x';
            }
            msgs[i] = binary ? sh_eio_msg_binary(data, len)
                             : sh_eio_msg_text((sh_eio_type_t)(rnd(&seed) % 7), data, len);
            sh_eio_payload_append(&payload, msgs[i], i == 0);
        }
        size_t pos = 0;
        sh_eio_packet_t pk;
        for (int i = 0; i < count; i++) {
            int rc = sh_eio_payload_next(sh_buf_peek(&payload), sh_buf_avail(&payload), &pos, &pk,
                                         &scratch);
            ck_assert_int_eq(rc, 1);
            ck_assert_int_eq(pk.binary, msgs[i]->binary);
            if (msgs[i]->binary) {
                ck_assert_int_eq(pk.type, SH_EIO_MESSAGE);
                ck_assert_uint_eq(pk.len, msgs[i]->len);
                ck_assert_mem_eq(pk.data, msgs[i]->data, pk.len);
            } else {
                ck_assert_int_eq(pk.type, msgs[i]->data[0] - '0');
                ck_assert_uint_eq(pk.len, msgs[i]->len - 1);
                ck_assert_mem_eq(pk.data, msgs[i]->data + 1, pk.len);
            }
        }
        ck_assert_int_eq(
            sh_eio_payload_next(sh_buf_peek(&payload), sh_buf_avail(&payload), &pos, &pk, &scratch),
            0);
        for (int i = 0; i < count; i++)
            sh_msg_unref(msgs[i]);
        sh_buf_release(&payload);
        sh_buf_release(&scratch);
    }
}
END_TEST

START_TEST(test_base64_round_trip_all_lengths)
{
    unsigned char raw[100];
    for (size_t i = 0; i < sizeof(raw); i++)
        raw[i] = (unsigned char)(i * 37 + 11);
    for (size_t len = 0; len <= sizeof(raw); len++) {
        sh_msg_t *m = sh_eio_msg_binary(raw, len);
        sh_msg_t *t = sh_msg_base64(m);
        sh_buf_t out = SH_BUF_INIT;
        ck_assert_int_eq(sh_base64_decode(t->data + 1, t->len - 1, &out), 0);
        ck_assert_uint_eq(sh_buf_avail(&out), len);
        ck_assert_mem_eq(sh_buf_peek(&out), raw, len);
        sh_buf_release(&out);
        sh_msg_unref(m);
    }
}
END_TEST

/* ---- iterator edge cases the vectors cannot express */

START_TEST(test_payload_scratch_reused)
{
    /* each binary packet overwrites scratch; the caller is told so */
    const char *p = "bAQ==\x1e"
                    "bAgM=";
    sh_buf_t scratch = SH_BUF_INIT;
    sh_buf_append_str(&scratch, "leftover");
    size_t pos = 0;
    sh_eio_packet_t pk;
    ck_assert_int_eq(sh_eio_payload_next(p, strlen(p), &pos, &pk, &scratch), 1);
    ck_assert_uint_eq(pk.len, 1);
    ck_assert_mem_eq(pk.data, "\x01", 1);
    ck_assert_uint_eq(pos, 6);
    ck_assert_int_eq(sh_eio_payload_next(p, strlen(p), &pos, &pk, &scratch), 1);
    ck_assert_uint_eq(pk.len, 2);
    ck_assert_mem_eq(pk.data, "\x02\x03", 2);
    ck_assert_uint_eq(sh_buf_avail(&scratch), 2);
    ck_assert_int_eq(sh_eio_payload_next(p, strlen(p), &pos, &pk, &scratch), 0);
    sh_buf_release(&scratch);
}
END_TEST

START_TEST(test_payload_bad_positions)
{
    sh_buf_t scratch = SH_BUF_INIT;
    sh_eio_packet_t pk;
    size_t pos = 0;
    /* empty payload, even with a NULL pointer */
    ck_assert_int_eq(sh_eio_payload_next(NULL, 0, &pos, &pk, &scratch), -EINVAL);
    ck_assert_uint_eq(pos, 0);
    /* a position past the end */
    pos = 3;
    ck_assert_int_eq(sh_eio_payload_next("4a", 2, &pos, &pk, &scratch), -EINVAL);
    /* an error leaves pos where it was */
    pos = 3;
    ck_assert_int_eq(sh_eio_payload_next("4a\x1e"
                                         "7",
                                         4, &pos, &pk, &scratch),
                     -EINVAL);
    ck_assert_uint_eq(pos, 3);
    /* the length bounds the payload, not a NUL */
    pos = 0;
    ck_assert_int_eq(sh_eio_payload_next("4ab\x1e"
                                         "4cd",
                                         3, &pos, &pk, &scratch),
                     1);
    ck_assert_uint_eq(pk.len, 2);
    ck_assert_uint_eq(pos, 3);
    ck_assert_int_eq(sh_eio_payload_next("4ab\x1e"
                                         "4cd",
                                         3, &pos, &pk, &scratch),
                     0);
    sh_buf_release(&scratch);
}
END_TEST

START_TEST(test_base64_length_bound)
{
    /* the decoded length is exact even when out already holds data and has
     * been consumed from the front (sh_buf compaction) */
    sh_buf_t out = SH_BUF_INIT;
    sh_buf_append_str(&out, "0123456789");
    sh_buf_consume(&out, 8);
    ck_assert_int_eq(sh_base64_decode("Zm9vYg==", 8, &out), 0);
    ck_assert_uint_eq(sh_buf_avail(&out), 6);
    ck_assert_str_eq(sh_buf_peek(&out), "89foob");
    /* the empty string decodes to nothing and succeeds */
    ck_assert_int_eq(sh_base64_decode("", 0, &out), 0);
    ck_assert_uint_eq(sh_buf_avail(&out), 6);
    sh_buf_release(&out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("engineio_packet");
    TCase *tc = tcase_create("vectors");
    tcase_add_test(tc, test_packet_vectors);
    tcase_add_test(tc, test_payload_vectors);
    tcase_add_test(tc, test_base64_vectors);
    suite_add_tcase(s, tc);
    tc = tcase_create("encode");
    tcase_add_test(tc, test_msg_text_every_type);
    tcase_add_test(tc, test_msg_binary_copies);
    tcase_add_test(tc, test_payload_append_spec_examples);
    tcase_add_test(tc, test_payload_append_caches_base64);
    suite_add_tcase(s, tc);
    tc = tcase_create("round_trip");
    tcase_add_test(tc, test_payload_round_trip);
    tcase_add_test(tc, test_base64_round_trip_all_lengths);
    suite_add_tcase(s, tc);
    tc = tcase_create("edges");
    tcase_add_test(tc, test_payload_scratch_reused);
    tcase_add_test(tc, test_payload_bad_positions);
    tcase_add_test(tc, test_base64_length_bound);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
