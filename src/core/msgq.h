/* msgq.h — a FIFO of message references with a byte count.
 *
 * The output queue of an Engine.IO session and of a WebSocket connection.
 * It holds references (sh_msg_ref), never copies, and counts the bytes it
 * holds so owners can enforce a limit on slow clients. A ring buffer: push
 * and pop are O(1) and a drained queue keeps its array for reuse.
 */
#ifndef SH_CORE_MSGQ_H
#define SH_CORE_MSGQ_H

#include <stddef.h>

#include "core/msg.h"

typedef struct sh_msgq {
    sh_msg_t **ring;
    size_t cap;   /* power of two, or 0 */
    size_t head;  /* index of the oldest entry */
    size_t count; /* entries held */
    size_t bytes; /* sum of len of the entries held */
} sh_msgq_t;

#define SH_MSGQ_INIT                                                                               \
    {                                                                                              \
        NULL, 0, 0, 0, 0                                                                           \
    }

/* Appends m, taking over the caller's reference. */
void sh_msgq_push(sh_msgq_t *q, sh_msg_t *m);
/* Removes and returns the oldest entry (the reference passes to the caller),
 * or NULL when empty. */
sh_msg_t *sh_msgq_pop(sh_msgq_t *q);
/* The i-th oldest entry, borrowed (i < count). */
static inline sh_msg_t *sh_msgq_at(const sh_msgq_t *q, size_t i)
{
    return q->ring[(q->head + i) & (q->cap - 1)];
}
/* Moves every entry of src to the end of dst, in order. */
void sh_msgq_move(sh_msgq_t *dst, sh_msgq_t *src);
/* Drops every entry and frees the array. */
void sh_msgq_release(sh_msgq_t *q);

#endif
