#include "core/json_write.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

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

/* Each hex digit's value with bit 16 set; 0 for any other byte. Shifted
 * by its place and OR'd together, four digits give the code unit in the
 * low 16 bits and, at bits 16, 20, 24 and 28, whether each was a digit:
 * one test for all four, where a test per digit cost as much again. */
#define HEX(c, v) [c] = 0x10000 | (v)
static const uint32_t hex_digit[256] = {
    HEX('0', 0),  HEX('1', 1),  HEX('2', 2),  HEX('3', 3),  HEX('4', 4),  HEX('5', 5),
    HEX('6', 6),  HEX('7', 7),  HEX('8', 8),  HEX('9', 9),  HEX('a', 10), HEX('b', 11),
    HEX('c', 12), HEX('d', 13), HEX('e', 14), HEX('f', 15), HEX('A', 10), HEX('B', 11),
    HEX('C', 12), HEX('D', 13), HEX('E', 14), HEX('F', 15),
};
#undef HEX

/* The code unit of the \uXXXX at p (six bytes there), or -1. */
static inline long escape_unit(const char *p)
{
    if (p[0] != '\\' || p[1] != 'u')
        return -1;
    uint32_t x = hex_digit[(unsigned char)p[2]] << 12 | hex_digit[(unsigned char)p[3]] << 8 |
                 hex_digit[(unsigned char)p[4]] << 4 | hex_digit[(unsigned char)p[5]];
    if ((x & 0x11110000) != 0x11110000)
        return -1;
    return (long)(x & 0xFFFF);
}

/* The UTF-8 of unit (U+0800 to U+FFFF) at o, in one four-byte store: the
 * fourth byte is overwritten next or lies past what is returned, and
 * there is room for it (the output never runs ahead of the input, and
 * an escape's six bytes were read). */
static inline void store_three(char *o, uint32_t unit)
{
    uint32_t b0 = 0xE0 | unit >> 12, b1 = 0x80 | (unit >> 6 & 0x3F), b2 = 0x80 | (unit & 0x3F);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    uint32_t bytes = b0 << 24 | b1 << 16 | b2 << 8;
#else
    uint32_t bytes = b0 | b1 << 8 | b2 << 16;
#endif
    memcpy(o, &bytes, 4);
}

/* The escape at p (a backslash, end - p bytes there; unit its code unit
 * from escape_unit, or -1), or the surrogate pair it begins, as UTF-8 at
 * *w: returns the input bytes it took, or 0 when it is not one of
 * sh_json_write_text_utf8's (left to the caller to copy). */
static inline size_t escape_as_utf8(const char *p, const char *end, long unit, char **w)
{
    unsigned char *o = (unsigned char *)*w;
    /* Three bytes first: Chinese and Japanese are nothing else, and
     * they are the most bytes such text saves. */
    if (unit >= 0x800 && (unit < 0xD800 || unit > 0xDFFF)) {
        store_three((char *)o, (uint32_t)unit);
        *w += 3;
        return 6;
    }
    if (unit < 0x80)
        return 0; /* ASCII stays escaped; -1: not an escape */
    if (unit < 0x800) {
        o[0] = (unsigned char)(0xC0 | unit >> 6);
        o[1] = (unsigned char)(0x80 | (unit & 0x3F));
        *w += 2;
        return 6;
    }
    /* A surrogate: a high one followed by a low one is one character. */
    if (unit > 0xDBFF || end - p < 12)
        return 0;
    long low = escape_unit(p + 6);
    if (low < 0xDC00 || low > 0xDFFF)
        return 0;
    unsigned long cp =
        0x10000 + (((unsigned long)unit - 0xD800) << 10) + ((unsigned long)low - 0xDC00);
    o[0] = (unsigned char)(0xF0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    *w += 4;
    return 12;
}

/* True when the backslash at p (in[0..) before it) is an escaped one, the
 * second byte of a "\\\\": an odd run of backslashes ends before it. In
 * JSON only the escape of a backslash ends with one, so the run's parity
 * tells. */
static bool backslash_escaped(const char *in, const char *p)
{
    size_t run = 0;
    while (p > in && p[-1] == '\\') {
        p--;
        run++;
    }
    return run & 1;
}

size_t sh_json_write_text_utf8(char *out, const char *in, size_t len)
{
    const char *p = in, *end = in + len;
    char *w = out;
    for (;;) {
        /* Up to the next "\\u", copied as it is searched: other escapes
         * ("\\n", "\\\"") cost nothing here, so text in a Latin script
         * is copied at nearly memcpy's speed. The output never runs ahead
         * of the input (an escape only shrinks), so sixteen bytes stored
         * at w while sixteen are left at p stay within out's len. */
#ifdef __SSE2__
        unsigned found = 0;
        while (end - p >= 17) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
            _mm_storeu_si128((__m128i *)(void *)w, v);
            found = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
            if (found) {
                /* Most sixteen bytes of such text have no backslash: the
                 * byte after each is read only when there is one. */
                __m128i next = _mm_loadu_si128((const __m128i *)(const void *)(p + 1));
                found &= (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(next, _mm_set1_epi8('u')));
                if (found)
                    break;
            }
            p += 16;
            w += 16;
        }
        if (found) {
            unsigned k = (unsigned)__builtin_ctz(found);
            p += k;
            w += k;
        } else
#endif
        {
            while (p < end && !(*p == '\\' && end - p >= 2 && p[1] == 'u'))
                *w++ = *p++;
        }
        if (p >= end)
            break;
        if (backslash_escaped(in, p)) {
            *w++ = *p++; /* "\\\\u00e9": a backslash, then "u00e9" */
            continue;
        }
        /* Escapes come in runs (a script other than Latin is nothing
         * else): read the run here. */
        while (end - p >= 2 && p[0] == '\\' && p[1] == 'u') {
            long unit = end - p >= 6 ? escape_unit(p) : -1;
            size_t took = escape_as_utf8(p, end, unit, &w);
            if (!took) {
                /* Kept as written: "\\u" here, the digits as text. */
                took = 2;
                w[0] = p[0];
                w[1] = p[1];
                w += 2;
            }
            p += took;
        }
    }
    return (size_t)(w - out);
}
