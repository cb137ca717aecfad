#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

char *sh_buf_reserve(sh_buf_t *b, size_t n)
{
    size_t need = b->len + n + 1; /* +1 keeps room for the NUL */
    if (need <= b->cap)
        return b->data + b->len;
    /* Reclaim consumed space before growing: a drained read buffer stays
     * at its working size instead of creeping upward. */
    if (b->off > 0 && need - b->off <= b->cap) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        b->data[b->len] = '\0';
        return b->data + b->len;
    }
    if (b->off > 0) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        need = b->len + n + 1;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap < ((size_t)1 << 20) ? cap * 2 : cap + ((size_t)1 << 20);
    b->data = sh_realloc(b->data, cap);
    b->cap = cap;
    b->data[b->len] = '\0';
    return b->data + b->len;
}

void sh_buf_commit(sh_buf_t *b, size_t n)
{
    b->len += n;
    b->data[b->len] = '\0';
}

void sh_buf_append(sh_buf_t *b, const void *p, size_t n)
{
    char *w = sh_buf_reserve(b, n);
    if (n)
        memcpy(w, p, n);
    sh_buf_commit(b, n);
}

void sh_buf_append_str(sh_buf_t *b, const char *s)
{
    sh_buf_append(b, s, strlen(s));
}

void sh_buf_append_byte(sh_buf_t *b, char c)
{
    sh_buf_append(b, &c, 1);
}

void sh_buf_vappendf(sh_buf_t *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char *w = sh_buf_reserve(b, 64);
    size_t room = b->cap - b->len;
    int n = vsnprintf(w, room, fmt, ap);
    if (n < 0) {
        va_end(ap2);
        b->data[b->len] = '\0';
        return;
    }
    if ((size_t)n >= room) {
        w = sh_buf_reserve(b, (size_t)n);
        vsnprintf(w, (size_t)n + 1, fmt, ap2);
    }
    va_end(ap2);
    sh_buf_commit(b, (size_t)n);
}

void sh_buf_appendf(sh_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sh_buf_vappendf(b, fmt, ap);
    va_end(ap);
}

void sh_buf_consume(sh_buf_t *b, size_t n)
{
    if (n >= b->len - b->off) {
        sh_buf_reset(b);
        return;
    }
    b->off += n;
}

void sh_buf_truncate(sh_buf_t *b, size_t n)
{
    if (!b->data)
        return;
    b->len = b->off + n;
    b->data[b->len] = '\0';
}

void sh_buf_reset(sh_buf_t *b)
{
    b->len = 0;
    b->off = 0;
    if (b->data)
        b->data[0] = '\0';
}

void sh_buf_release(sh_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = b->off = 0;
}

char *sh_buf_steal(sh_buf_t *b, size_t *len_out)
{
    size_t n = sh_buf_avail(b);
    char *out;
    if (b->off == 0 && b->data) {
        out = b->data;
        b->data = NULL;
        b->len = b->cap = b->off = 0;
    } else {
        out = sh_strndup(sh_buf_peek(b), n);
        sh_buf_release(b);
    }
    if (len_out)
        *len_out = n;
    return out;
}
