/* list.h — intrusive circular doubly linked list (as in the Linux kernel
 * and libuv's queue): nodes live inside their owners, so insert and remove
 * are O(1) and never allocate. A head is a node that points at itself when
 * the list is empty; a removed node points at itself too, so removing twice
 * is harmless. */
#ifndef SH_CORE_LIST_H
#define SH_CORE_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sh_list {
    struct sh_list *prev, *next;
} sh_list_t;

#define sh_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void sh_list_init(sh_list_t *l)
{
    l->prev = l->next = l;
}

static inline bool sh_list_empty(const sh_list_t *head)
{
    return head->next == head;
}

/* True when the node is linked into some list. */
static inline bool sh_list_linked(const sh_list_t *node)
{
    return node->next != NULL && node->next != node;
}

static inline void sh_list_insert_tail(sh_list_t *head, sh_list_t *node)
{
    node->prev = head->prev;
    node->next = head;
    head->prev->next = node;
    head->prev = node;
}

static inline void sh_list_remove(sh_list_t *node)
{
    if (!node->next)
        return;
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->prev = node->next = node;
}

#define sh_list_foreach_safe(pos, tmp, head)                                                       \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head);                               \
         (pos) = (tmp), (tmp) = (pos)->next)

#endif
