/* bench/buf.c — the byte buffer (see buf.h). */
#include "bench/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/util.h"

char *sb_buf_reserve(sb_buf_t *b, size_t n)
{
    if (b->off == b->len)
        b->off = b->len = 0;
    if (b->len + n > b->cap && b->off) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->data = sb_xrealloc(b->data, cap);
        b->cap = cap;
    }
    return b->data + b->len;
}

void sb_buf_append(sb_buf_t *b, const void *p, size_t n)
{
    if (!n)
        return;
    memcpy(sb_buf_reserve(b, n), p, n);
    b->len += n;
}

void sb_buf_puts(sb_buf_t *b, const char *s)
{
    sb_buf_append(b, s, strlen(s));
}

void sb_buf_printf(sb_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    /* Format straight into the spare room; only a long text formats twice. */
    size_t room = b->cap - b->len;
    if (room < 128) {
        sb_buf_reserve(b, 128);
        room = b->cap - b->len;
    }
    va_start(ap, fmt);
    int n = vsnprintf(b->data + b->len, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        sb_die("bad format string");
    if ((size_t)n >= room) {
        char *w = sb_buf_reserve(b, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(w, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

void sb_buf_consume(sb_buf_t *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len)
        b->off = b->len = 0;
}

void sb_buf_reset(sb_buf_t *b)
{
    b->off = b->len = 0;
}

void sb_buf_release(sb_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}
