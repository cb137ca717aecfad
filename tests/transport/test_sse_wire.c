/* tests/transport/test_sse_wire.c — event ids and POST bodies of the SSE
 * transport (src/transport/sse_wire.c), driven by the vectors in
 * tests/data/sse/event_id.txt and post.txt. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "transport/sse_wire.h"

#define MAX_VECTORS 256
#define MAX_FIELDS  5

typedef struct vector {
    int line;
    int nfields;
    char *field[MAX_FIELDS];
} vector_t;

typedef struct vector_file {
    const char *name;
    vector_t v[MAX_VECTORS];
    int n;
} vector_file_t;

static vector_file_t id_vectors = {.name = "event_id.txt"};
static vector_file_t post_vectors = {.name = "post.txt"};

static void load_vectors(vector_file_t *vf)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/sse/%s", TESTS_DATADIR, vf->name);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(EXIT_FAILURE);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        if (vf->n == MAX_VECTORS) {
            fprintf(stderr, "%s: more than %d vectors\n", path, MAX_VECTORS);
            exit(EXIT_FAILURE);
        }
        vector_t *v = &vf->v[vf->n++];
        v->line = lineno;
        char *s = sh_strdup(line);
        for (char *tok = s; tok && v->nfields < MAX_FIELDS; v->nfields++) {
            v->field[v->nfields] = tok;
            tok = strchr(tok, '|');
            if (tok)
                *tok++ = '\0';
        }
    }
    free(line);
    fclose(f);
}

/* %HH is the byte 0xHH; everything else is itself. */
static size_t pct_decode(const char *s, char *out)
{
    size_t n = 0;
    while (*s) {
        unsigned v;
        if (s[0] == '%' && s[1] && s[2] && sscanf(s + 1, "%2x", &v) == 1) {
            out[n++] = (char)v;
            s += 3;
        } else {
            out[n++] = *s++;
        }
    }
    out[n] = '\0';
    return n;
}

START_TEST(test_event_id_vector)
{
    const vector_t *v = &id_vectors.v[_i];
    bool ok = !strcmp(v->field[0], "ok");
    ck_assert_msg((ok && v->nfields == 4) || (!strcmp(v->field[0], "bad") && v->nfields == 3),
                  "event_id.txt line %d: malformed vector", v->line);
    char *in = sh_malloc(strlen(v->field[1]) + 1);
    size_t n = pct_decode(v->field[1], in);
    char sid[SH_SSE_MAX_SID + 1] = "unset";
    uint64_t seq = 12345;
    const char *why = NULL;
    int rc = sh_sse_parse_event_id(in, n, sid, &seq, &why);
    if (ok) {
        ck_assert_msg(rc == 0, "line %d: refused (%s)", v->line, why ? why : "?");
        ck_assert_str_eq(sid, v->field[2]);
        char want[32];
        snprintf(want, sizeof(want), "%llu", (unsigned long long)seq);
        ck_assert_str_eq(want, v->field[3]);
        /* And back: the formatter writes what the parser read. */
        char out[SH_SSE_MAX_EVENT_ID + 1];
        size_t len = sh_sse_format_event_id(out, sid, seq);
        ck_assert_uint_eq(len, n);
        ck_assert_mem_eq(out, in, n);
    } else {
        ck_assert_msg(rc == -EINVAL, "line %d: '%s' accepted", v->line, v->field[1]);
        ck_assert_msg(why && strstr(why, v->field[2]), "line %d: reason '%s', expected '%s'",
                      v->line, why ? why : "(null)", v->field[2]);
        ck_assert_str_eq(sid, "unset"); /* untouched on refusal */
        ck_assert_uint_eq(seq, 12345);
    }
    free(in);
}
END_TEST

START_TEST(test_post_vector)
{
    const vector_t *v = &post_vectors.v[_i];
    bool ok = !strcmp(v->field[0], "ok");
    ck_assert_msg((ok && v->nfields == 5) || (!strcmp(v->field[0], "bad") && v->nfields == 3),
                  "post.txt line %d: malformed vector", v->line);
    char *in = sh_malloc(strlen(v->field[1]) + 1);
    size_t n = pct_decode(v->field[1], in);
    sh_sse_post_t post;
    const char *why = NULL;
    int rc = sh_sse_parse_post(in, n, &post, &why);
    if (ok) {
        ck_assert_msg(rc == 0, "line %d: refused (%s)", v->line, why ? why : "?");
        char *event = sh_malloc(strlen(v->field[2]) + 1);
        pct_decode(v->field[2], event);
        ck_assert_str_eq(post.event, event);
        json_error_t jerr;
        json_t *args = json_loads(v->field[3], JSON_ALLOW_NUL, &jerr);
        ck_assert_msg(args, "line %d: bad expected args", v->line);
        ck_assert_msg(json_equal(args, post.args), "line %d: args differ", v->line);
        ck_assert_int_eq(post.ack, !strcmp(v->field[4], "1"));
        json_decref(args);
        free(event);
        sh_sse_post_release(&post);
        ck_assert_ptr_null(post.event);
    } else {
        ck_assert_msg(rc == -EINVAL, "line %d: accepted", v->line);
        ck_assert_msg(why && strstr(why, v->field[2]), "line %d: reason '%s', expected '%s'",
                      v->line, why ? why : "(null)", v->field[2]);
        ck_assert_ptr_null(post.event);
        ck_assert_ptr_null(post.args);
        sh_sse_post_release(&post); /* harmless */
    }
    free(in);
}
END_TEST

/* Not NUL-terminated input: nothing past n is read. */
START_TEST(test_event_id_length_bound)
{
    char sid[SH_SSE_MAX_SID + 1];
    uint64_t seq;
    ck_assert_int_eq(sh_sse_parse_event_id("abc:12xyz", 6, sid, &seq, NULL), 0);
    ck_assert_str_eq(sid, "abc");
    ck_assert_uint_eq(seq, 12);
    ck_assert_int_eq(sh_sse_parse_event_id("abc:", 3, sid, &seq, NULL), -EINVAL);
    ck_assert_int_eq(sh_sse_parse_event_id(NULL, 0, sid, &seq, NULL), -EINVAL);
}
END_TEST

START_TEST(test_post_length_bound)
{
    sh_sse_post_t post;
    const char *body = "{\"event\":\"a\"}garbage";
    ck_assert_int_eq(sh_sse_parse_post(body, 13, &post, NULL), 0);
    ck_assert_str_eq(post.event, "a");
    sh_sse_post_release(&post);
    ck_assert_int_eq(sh_sse_parse_post(NULL, 0, &post, NULL), -EINVAL);
}
END_TEST

int main(void)
{
    load_vectors(&id_vectors);
    load_vectors(&post_vectors);
    Suite *s = suite_create("sse_wire");
    TCase *tc = tcase_create("vectors");
    tcase_add_loop_test(tc, test_event_id_vector, 0, id_vectors.n);
    tcase_add_loop_test(tc, test_post_vector, 0, post_vectors.n);
    tcase_add_test(tc, test_event_id_length_bound);
    tcase_add_test(tc, test_post_length_bound);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
