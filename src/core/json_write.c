#include "core/json_write.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/utf8.h"

/* 1 for the bytes a string must escape: '"', '\\' and the controls. */
static const unsigned char needs_escape[256] = {
    [0x00 ... 0x1f] = 1,
    ['"'] = 1,
    ['\\'] = 1,
};

/* Input bytes written per reservation: the output is reserved for the
 * worst case (every byte a control, six bytes out), so a long string is
 * written in pieces rather than reserving six times its length at once. */
#define STRING_CHUNK 4096

static void write_string(sh_buf_t *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    sh_buf_append_byte(out, '"');
    size_t i = 0;
    while (i < n) {
        size_t chunk_end = n - i > STRING_CHUNK ? i + STRING_CHUNK : n;
        char *w = sh_buf_reserve(out, (chunk_end - i) * 6), *start = w;
        while (i < chunk_end) {
            size_t run = i;
            while (run < chunk_end && !needs_escape[(unsigned char)s[run]])
                run++;
            memcpy(w, s + i, run - i);
            w += run - i;
            i = run;
            if (run == chunk_end)
                break;
            unsigned char c = (unsigned char)s[run];
            *w++ = '\\';
            switch (c) {
            case '"':
            case '\\':
                *w++ = (char)c;
                break;
            case '\b':
                *w++ = 'b';
                break;
            case '\f':
                *w++ = 'f';
                break;
            case '\n':
                *w++ = 'n';
                break;
            case '\r':
                *w++ = 'r';
                break;
            case '\t':
                *w++ = 't';
                break;
            default:
                memcpy(w, "u00", 3);
                w[3] = hex[c >> 4];
                w[4] = hex[c & 15];
                w += 5;
            }
            i++;
        }
        sh_buf_commit(out, (size_t)(w - start));
    }
    sh_buf_append_byte(out, '"');
}

static int dump_cb(const char *buffer, size_t size, void *out)
{
    sh_buf_append(out, buffer, size);
    return 0;
}

static int write_value(sh_buf_t *out, const json_t *v, int depth)
{
    if (depth > SH_JSON_WRITE_MAX_DEPTH)
        return -E2BIG;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        sh_buf_append_byte(out, '{');
        bool first = true;
        for (void *it = json_object_iter((json_t *)v); it;
             it = json_object_iter_next((json_t *)v, it)) {
            const char *key = json_object_iter_key(it);
            size_t key_len = json_object_iter_key_len(it);
            if (!sh_utf8_valid(key, key_len))
                return -EINVAL;
            if (!first)
                sh_buf_append_byte(out, ',');
            first = false;
            write_string(out, key, key_len);
            sh_buf_append_byte(out, ':');
            int rc = write_value(out, json_object_iter_value(it), depth + 1);
            if (rc < 0)
                return rc;
        }
        sh_buf_append_byte(out, '}');
        return 0;
    }
    case JSON_ARRAY: {
        sh_buf_append_byte(out, '[');
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n; i++) {
            if (i)
                sh_buf_append_byte(out, ',');
            int rc = write_value(out, json_array_get(v, i), depth + 1);
            if (rc < 0)
                return rc;
        }
        sh_buf_append_byte(out, ']');
        return 0;
    }
    case JSON_STRING: {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (!sh_utf8_valid(s, n))
            return -EINVAL;
        write_string(out, s, n);
        return 0;
    }
    case JSON_INTEGER:
        sh_buf_appendf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return 0;
    case JSON_REAL:
        /* jansson's own digits: its 17-digit form has rules of its own
         * (".0" added, the exponent's '+' and zeros dropped). */
        return json_dump_callback(v, dump_cb, out, JSON_ENCODE_ANY | JSON_REAL_PRECISION(17)) == 0
                   ? 0
                   : -EINVAL;
    case JSON_TRUE:
        sh_buf_append(out, "true", 4);
        return 0;
    case JSON_FALSE:
        sh_buf_append(out, "false", 5);
        return 0;
    case JSON_NULL:
        sh_buf_append(out, "null", 4);
        return 0;
    }
    return -EINVAL;
}

int sh_json_write(sh_buf_t *out, const json_t *value)
{
    if (!value)
        return -EINVAL;
    size_t keep = sh_buf_avail(out);
    int rc = write_value(out, value, 0);
    if (rc == 0)
        return 0;
    sh_buf_truncate(out, keep);
    /* Deeper than the recursion here should go: jansson's writer, whose
     * output this one copies. */
    if (rc == -E2BIG &&
        json_dump_callback(value, dump_cb, out,
                           JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17)) == 0)
        return 0;
    sh_buf_truncate(out, keep);
    return -EINVAL;
}
