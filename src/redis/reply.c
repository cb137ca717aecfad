#include "redis/reply.h"

#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/alloc.h"
#include "core/msg.h"

/* The first block of a reply. Under 1 KiB with its header, so glibc's
 * per-thread cache serves it: a message of a few hundred bytes then costs
 * one cached malloc and free. */
#define FIRST_BLOCK 960
/* A block after the first: at least this, or what one object needs. */
#define MORE_BLOCK 4096

typedef struct block {
    struct block *next;
    size_t size, used;
    alignas(max_align_t) unsigned char data[];
} block_t;

/* The largest block of the last reply freed, kept for the next reply (up
 * to SPARE_MAX): a message past the first block (Open WebUI's chat events
 * carry the reply so far, kilobytes each) had glibc serve a 4 KiB block
 * from its bins and take it back every time (_int_malloc under the
 * reader alone 0.78% of a fleet node's samples in the chat bench with
 * the reply so far, perf with call graphs), where a reader that
 * reads one reply at a time can reuse one. Loop thread only, as the
 * readers. Its data is poisoned while kept (SH_POISON), so that under
 * AddressSanitizer a reply read after its callback is still caught. */
#define SPARE_MAX (64 * 1024)
static block_t *spare;

/* Long strings are built as messages (sh_redis_reply_msg), at most this
 * many a reply (a pub/sub message has one; the rest are copied into the
 * blocks), with this much buffer before the string beyond a message's own
 * head room: the packet a message carries is written in front of its
 * arguments (sh_sio_event_msg_in_place), and a Python emit names its
 * event before its data but its namespace after it. */
#define TREE_MSGS  2
#define MSG_BEFORE 64

/* A reply's blocks; at the start of its first block. */
typedef struct tree {
    block_t *first, *last;
    void *root;
    sh_msg_t *msgs[TREE_MSGS];
    unsigned nmsgs;
} tree_t;

/* Before every object: its tree, so that an object's children (hiredis
 * hands over the parent) and the root's free find the blocks, and the
 * message holding its string, if one does. */
typedef struct node {
    tree_t *tree;
    sh_msg_t *msg;
    redisReply reply;
} node_t;

static size_t aligned(size_t n)
{
    return (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
}

static block_t *block_new(size_t size)
{
    block_t *b;
    if (spare && spare->size >= size) {
        b = spare;
        spare = NULL;
        SH_UNPOISON(b->data, b->size);
        size = b->size;
    } else {
        b = sh_malloc(sizeof(block_t) + size);
    }
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

static void *tree_alloc(tree_t *t, size_t n)
{
    n = aligned(n);
    block_t *b = t->last;
    if (b->size - b->used < n) {
        b = block_new(n > MORE_BLOCK ? n : MORE_BLOCK);
        t->last->next = b;
        t->last = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

static tree_t *tree_new(void)
{
    block_t *b = block_new(FIRST_BLOCK - sizeof(block_t));
    tree_t *t = (tree_t *)(void *)b->data;
    b->used = aligned(sizeof(*t));
    t->first = t->last = b;
    t->root = NULL;
    t->nmsgs = 0;
    return t;
}

static node_t *node_of(const void *obj)
{
    return (node_t *)(void *)((char *)obj - offsetof(node_t, reply));
}

static tree_t *tree_of(void *obj)
{
    return node_of(obj)->tree;
}

/* A new object of the type in its parent's tree (a new tree for a root),
 * put in its parent's element vector as hiredis' own do. The type is the
 * object's, not always the task's: a null array ("*-1") is a task of type
 * array whose object is nil. */
static redisReply *object_new(const redisReadTask *task, int type)
{
    tree_t *t = task->parent ? tree_of(task->parent->obj) : tree_new();
    node_t *n = tree_alloc(t, sizeof(*n));
    n->tree = t;
    n->msg = NULL;
    memset(&n->reply, 0, sizeof(n->reply));
    n->reply.type = type;
    if (task->parent) {
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = &n->reply;
    } else {
        t->root = &n->reply;
    }
    return &n->reply;
}

static void *create_string(const redisReadTask *task, char *str, size_t len)
{
    /* string, status or error */
    redisReply *r = object_new(task, task->type);
    tree_t *t = tree_of(r);
    /* The reader's buffer moves on: the string is copied, once. */
    if (len >= SH_REDIS_REPLY_MSG_MIN && t->nmsgs < TREE_MSGS) {
        sh_msg_t *m = sh_msg_alloc(MSG_BEFORE + len, true);
        sh_msg_reframe(m, m->data + MSG_BEFORE, len, true);
        t->msgs[t->nmsgs++] = node_of(r)->msg = m;
        r->str = m->data;
    } else {
        r->str = tree_alloc(t, len + 1);
        r->str[len] = '\0';
    }
    memcpy(r->str, str, len);
    r->len = len;
    return r;
}

static void *create_array(const redisReadTask *task, int elements)
{
    redisReply *r = object_new(task, REDIS_REPLY_ARRAY);
    r->elements = elements > 0 ? (size_t)elements : 0;
    if (r->elements) {
        r->element = tree_alloc(tree_of(r), r->elements * sizeof(*r->element));
        memset(r->element, 0, r->elements * sizeof(*r->element));
    }
    return r;
}

static void *create_integer(const redisReadTask *task, long long value)
{
    redisReply *r = object_new(task, REDIS_REPLY_INTEGER);
    r->integer = value;
    return r;
}

static void *create_nil(const redisReadTask *task)
{
    return object_new(task, REDIS_REPLY_NIL);
}

/* hiredis frees roots only; a child goes with its root. */
static void free_object(void *obj)
{
    tree_t *t = tree_of(obj);
    if (t->root != obj)
        return;
    for (unsigned i = 0; i < t->nmsgs; i++)
        sh_msg_unref(t->msgs[i]);
    block_t *b = t->first;
    while (b) {
        block_t *next = b->next;
        if (b->size <= SPARE_MAX && (!spare || spare->size < b->size)) {
            if (spare) {
                SH_UNPOISON(spare->data, spare->size);
                free(spare);
            }
            spare = b;
            SH_POISON(b->data, b->size);
        } else {
            free(b);
        }
        b = next;
    }
}

sh_msg_t *sh_redis_reply_msg(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING ? node_of(r)->msg : NULL;
}

void sh_redis_reply_drain(void)
{
    if (spare) {
        SH_UNPOISON(spare->data, spare->size);
        free(spare);
        spare = NULL;
    }
}

redisReplyObjectFunctions sh_redis_reply_functions = {
    .createString = create_string,
    .createArray = create_array,
    .createInteger = create_integer,
    .createNil = create_nil,
    .freeObject = free_object,
};

void sh_redis_reply_use(redisReader *reader)
{
    reader->fn = &sh_redis_reply_functions;
}
