#include "core/msgq.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

static void grow(sh_msgq_t *q)
{
    size_t cap = q->cap ? q->cap * 2 : 8;
    sh_msg_t **ring = sh_malloc(cap * sizeof(*ring));
    for (size_t i = 0; i < q->count; i++)
        ring[i] = sh_msgq_at(q, i);
    free(q->ring);
    q->ring = ring;
    q->cap = cap;
    q->head = 0;
}

void sh_msgq_push(sh_msgq_t *q, sh_msg_t *m)
{
    if (q->count == q->cap)
        grow(q);
    q->ring[(q->head + q->count) & (q->cap - 1)] = m;
    q->count++;
    q->bytes += m->len;
}

sh_msg_t *sh_msgq_pop(sh_msgq_t *q)
{
    if (!q->count)
        return NULL;
    sh_msg_t *m = q->ring[q->head];
    q->head = (q->head + 1) & (q->cap - 1);
    q->count--;
    q->bytes -= m->len;
    return m;
}

void sh_msgq_move(sh_msgq_t *dst, sh_msgq_t *src)
{
    sh_msg_t *m;
    while ((m = sh_msgq_pop(src)))
        sh_msgq_push(dst, m);
}

void sh_msgq_release(sh_msgq_t *q)
{
    sh_msg_t *m;
    while ((m = sh_msgq_pop(q)))
        sh_msg_unref(m);
    free(q->ring);
    memset(q, 0, sizeof(*q));
}
