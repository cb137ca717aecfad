/* buf.h — the one growable byte buffer every codec and transport uses.
 *
 * Invariants: off <= len <= cap; the readable bytes are data[off..len);
 * appends go at data[len]. The zero value ({0}) is a valid empty buffer, and
 * sh_buf_release() returns a buffer to that state. data is always
 * NUL-terminated when cap > 0 (data[len] == 0), so text can be handed to
 * string functions without a copy; the NUL is not counted in len.
 *
 * Consuming from the front only moves off; the space is reclaimed by the next
 * reserve that would otherwise grow (compaction), so a read buffer that is
 * drained frame by frame does not memmove per frame.
 */
#ifndef SH_CORE_BUF_H
#define SH_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct sh_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t off;
} sh_buf_t;

#define SH_BUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0, 0                                                                              \
    }

/* Readable bytes and their count. */
static inline const char *sh_buf_peek(const sh_buf_t *b)
{
    return b->data ? b->data + b->off : "";
}
static inline size_t sh_buf_avail(const sh_buf_t *b)
{
    return b->len - b->off;
}

/* Ensures at least n writable bytes after len (plus the NUL); returns the
 * write position. Compacts consumed space first when that suffices. */
char *sh_buf_reserve(sh_buf_t *b, size_t n);
/* Marks n bytes written at the position sh_buf_reserve() returned. */
void sh_buf_commit(sh_buf_t *b, size_t n);

void sh_buf_append(sh_buf_t *b, const void *p, size_t n);
void sh_buf_append_str(sh_buf_t *b, const char *s);
void sh_buf_append_byte(sh_buf_t *b, char c);
void sh_buf_appendf(sh_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sh_buf_vappendf(sh_buf_t *b, const char *fmt, va_list ap);

/* Drops n readable bytes from the front (n <= avail). */
void sh_buf_consume(sh_buf_t *b, size_t n);
/* Keeps the first n readable bytes (n <= avail), dropping the rest: undoes
 * appends made since avail was n. */
void sh_buf_truncate(sh_buf_t *b, size_t n);
/* Empties the buffer but keeps its memory. */
void sh_buf_reset(sh_buf_t *b);
/* Frees the memory; the buffer is the zero value again. */
void sh_buf_release(sh_buf_t *b);
/* Hands the readable bytes to the caller (NUL-terminated, free() them) and
 * leaves the buffer empty. *len_out may be NULL. Never returns NULL. */
char *sh_buf_steal(sh_buf_t *b, size_t *len_out);

#endif
