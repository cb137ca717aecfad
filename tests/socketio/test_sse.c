/* tests/socketio/test_sse.c — Socket.IO packets rendered as SSE events
 * (src/socketio/sse.c), driven by tests/data/sse/render.txt; and the
 * rendering done once per message whatever the number of recipients. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "socketio/sse.h"

#define MAX_VECTORS 256
#define MAX_FIELDS  3

typedef struct vector {
    int line;
    int nfields;
    char *field[MAX_FIELDS];
} vector_t;

static vector_t vectors[MAX_VECTORS];
static int nvectors;

static void load_vectors(void)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/sse/render.txt", TESTS_DATADIR);
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
        if (nvectors == MAX_VECTORS) {
            fprintf(stderr, "%s: more than %d vectors\n", path, MAX_VECTORS);
            exit(EXIT_FAILURE);
        }
        vector_t *v = &vectors[nvectors++];
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

START_TEST(test_render_vector)
{
    const vector_t *v = &vectors[_i];
    bool ev = !strcmp(v->field[0], "ev");
    ck_assert_msg((ev && v->nfields == 3) || (!strcmp(v->field[0], "none") && v->nfields == 2),
                  "render.txt line %d: malformed vector", v->line);
    char *in = sh_malloc(strlen(v->field[1]) + 1);
    size_t n = pct_decode(v->field[1], in);
    sh_msg_t *m = sh_msg_new(in, n, false);
    sh_msg_t *out = sh_sio_sse_render(m);
    if (ev) {
        char *want = sh_malloc(strlen(v->field[2]) + 1);
        size_t wn = pct_decode(v->field[2], want);
        ck_assert_msg(out != NULL, "line %d: no form", v->line);
        ck_assert_msg(out->len == wn && !memcmp(out->data, want, wn),
                      "line %d: rendered\n%s\nwant\n%s", v->line, out->data, want);
        ck_assert(!out->binary);
        ck_assert_uint_eq(out->refs, 1);
        /* One event: it ends with the blank line and holds no other. */
        ck_assert_ptr_eq(strstr(out->data, "\n\n"), out->data + out->len - 2);
        free(want);
    } else {
        ck_assert_msg(out == NULL, "line %d: rendered '%s', want no form", v->line,
                      out ? out->data : "");
    }
    sh_msg_unref(out);
    sh_msg_unref(m);
    free(in);
}
END_TEST

START_TEST(test_binary_has_no_form)
{
    sh_msg_t *m = sh_msg_new("42[\"x\"]", 7, true);
    ck_assert_ptr_null(sh_sio_sse_render(m));
    sh_msg_unref(m);
}
END_TEST

/* A broadcast: many recipients ask, one rendering is made and shared. */
START_TEST(test_rendered_once_for_all)
{
    const char *pkt = "42[\"chat-events\",{\"n\":1}]";
    sh_msg_t *m = sh_msg_new(pkt, strlen(pkt), false);
    sh_msg_t *first = sh_msg_form(m, sh_sio_sse_render);
    ck_assert_ptr_nonnull(first);
    for (int i = 0; i < 1000; i++)
        ck_assert_ptr_eq(sh_msg_form(m, sh_sio_sse_render), first);
    ck_assert_str_eq(first->data, "event: chat-events\ndata: [{\"n\":1}]\n\n");
    ck_assert_uint_eq(first->refs, 1);
    sh_msg_unref(m);
}
END_TEST

int main(void)
{
    load_vectors();
    Suite *s = suite_create("sio_sse");
    TCase *tc = tcase_create("render");
    tcase_add_loop_test(tc, test_render_vector, 0, nvectors);
    tcase_add_test(tc, test_binary_has_no_form);
    tcase_add_test(tc, test_rendered_once_for_all);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
