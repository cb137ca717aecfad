/* bench/buf.h — a byte buffer: data[off..len) is pending, the zero value
 * is empty. Every codec and connection of siohub-bench uses it.
 *
 * Appending may move data (pointers into the buffer are invalid after an
 * append); consuming never does. Memory is kept for reuse until
 * sb_buf_release.
 */
#ifndef SB_BUF_H
#define SB_BUF_H

#include <stddef.h>

typedef struct sb_buf {
    char *data;
    size_t off, len, cap;
} sb_buf_t;

static inline size_t sb_buf_avail(const sb_buf_t *b)
{
    return b->len - b->off;
}

/* NULL for the zero value (off is 0 then: no offset is added to NULL,
 * which C leaves undefined). */
static inline const char *sb_buf_head(const sb_buf_t *b)
{
    return b->off ? b->data + b->off : b->data;
}

/* Room for n more bytes at data + len (written by the caller, who then
 * adds n to len). */
char *sb_buf_reserve(sb_buf_t *b, size_t n);
void sb_buf_append(sb_buf_t *b, const void *p, size_t n);
void sb_buf_puts(sb_buf_t *b, const char *s);
void sb_buf_printf(sb_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops n pending bytes from the front. */
void sb_buf_consume(sb_buf_t *b, size_t n);
/* Empties the buffer, keeping its memory. */
void sb_buf_reset(sb_buf_t *b);
/* Frees the memory; the buffer is empty (zero) again. */
void sb_buf_release(sb_buf_t *b);

#endif
