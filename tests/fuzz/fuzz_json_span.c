/* fuzz_json_span — the span validator against jansson on arbitrary bytes.
 * jansson (JSON_REJECT_DUPLICATES, as the API reads bodies) must accept
 * whatever the validator accepts with nothing flagged, and the validator
 * must accept whatever jansson accepts (but for nesting beyond its depth
 * limit, and on text with a NUL byte, which jansson reads its own
 * way). On accepted text, the cursor's spans must each parse to the
 * value jansson put at that place. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/json_span.h"
#include "core/json_write.h"

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "json_span disagrees with jansson: %s\n", what);
        abort();
    }
}

static json_t *load(const char *p, size_t n)
{
    json_error_t err;
    return json_loadb(p, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
}

/* The span parses to want. */
static void check_span(sh_json_span_t v, const json_t *want)
{
    json_t *got = load(v.p, v.len);
    check(got && want && json_equal(got, want), "a span's value");
    json_decref(got);
}

static void check_spans(const char *p, size_t n, const json_t *doc)
{
    sh_json_span_t all = {p, n}, k, v;
    sh_json_cursor_t c;
    if (sh_json_object_begin(&c, all)) {
        check(json_is_object(doc), "object cursor on a non-object");
        size_t count = 0;
        while (sh_json_object_next(&c, &k, &v)) {
            count++;
            if (memchr(k.p, '\\', k.len))
                continue; /* escaped: the raw bytes are not the key */
            char key[256];
            if (k.len >= sizeof(key) || memchr(k.p, '\0', k.len))
                continue;
            memcpy(key, k.p, k.len);
            key[k.len] = '\0';
            check_span(v, json_object_get(doc, key));
        }
        check(count == json_object_size(doc), "member count");
    } else if (sh_json_array_begin(&c, all)) {
        check(json_is_array(doc), "array cursor on a non-array");
        size_t i = 0;
        while (sh_json_array_next(&c, &v))
            check_span(v, json_array_get(doc, i++));
        check(i == json_array_size(doc), "element count");
    }
}

/* The members sh_json_validate_batch found for the object text v, from
 * members[*m] on, are the ones the cursor walks. */
static void check_members(sh_json_span_t v, const sh_json_member_t *members, size_t n, size_t *m)
{
    sh_json_cursor_t c;
    sh_json_span_t k, e;
    if (!sh_json_object_begin(&c, v))
        return;
    while (sh_json_object_next(&c, &k, &e)) {
        check(*m < n, "a member the batch validation missed");
        check(members[*m].key.p == k.p && members[*m].key.len == k.len &&
                  members[*m].value.p == e.p && members[*m].value.len == e.len,
              "a member's spans");
        (*m)++;
    }
}

/* The batch validation agrees with the plain one and, for the members it
 * lists, with the cursor. */
static void check_batch(const char *p, size_t size, int rc, const sh_json_info_t *info)
{
    sh_json_info_t binfo;
    sh_json_span_t items[16];
    sh_json_member_t members[64];
    size_t nitems, nmembers;
    int brc = sh_json_validate_batch(p, size, &binfo, items, 16, &nitems, members, 64, &nmembers);
    check(brc == rc && !memcmp(&binfo, info, sizeof(binfo)), "batch validation differs");
    if (rc != 0 || nitems > 16 || nmembers > 64)
        return;
    size_t m = 0;
    sh_json_span_t all = {p, size};
    sh_json_cursor_t c;
    if (sh_json_object_begin(&c, all))
        check_members(all, members, nmembers, &m);
    for (size_t i = 0; i < nitems; i++)
        check_members(items[i], members, nmembers, &m);
    check(m == nmembers, "members the cursor does not see");
}

/* sh_json_write_text_utf8 on any text writes no more than it read, and on
 * a valid one valid text holding the same value (doc, jansson's reading
 * of the input, when it has one), the same bytes when the validator saw
 * no \u escape (the frame builders copy such text instead). */
static void check_text_utf8(const char *p, size_t size, int rc, const sh_json_info_t *info,
                            const json_t *doc)
{
    char *out = malloc(size + 1);
    size_t n = sh_json_write_text_utf8(out, p, size);
    check(n <= size, "the UTF-8 copy is longer");
    if (rc == 0) {
        if (!info->unicode_escapes)
            check(n == size && !memcmp(out, p, size),
                  "text without a \\u escape is not its own UTF-8 copy");
        check(sh_json_validate(out, n, NULL) == 0, "the UTF-8 copy of a valid text is not valid");
        if (doc) {
            json_t *copy = load(out, n);
            check(copy && json_equal(copy, doc), "the UTF-8 copy holds another value");
            json_decref(copy);
        }
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    sh_json_info_t info;
    int rc = sh_json_validate(p, size, &info);
    check_batch(p, size, rc, &info);
    json_t *doc = load(p, size);
    if (rc == 0 && sh_json_info_plain(&info))
        check(doc != NULL, "validator accepts what jansson refuses");
    /* jansson reads a NUL byte its own way (as the end, or past it in a
     * number): only texts without one are compared this way round. */
    if (doc && !memchr(p, '\0', size))
        check(rc == 0 || rc == -E2BIG, "validator refuses what jansson accepts");
    if (rc == 0 && doc)
        check_spans(p, size, doc);
    check_text_utf8(p, size, rc, &info, doc);
    json_decref(doc);
    return 0;
}
