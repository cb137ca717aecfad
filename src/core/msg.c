#include "core/msg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/alloc.h"

/* Freed messages kept for the next ones. An event is one message,
 * and a backend's batch makes and frees them by the hundred: glibc then
 * serves each from its bins one by one (5-6% of siohubd's time in the chat
 * bench, in _int_malloc), where a stack per size class costs a few
 * stores. A stack of pointers rather than a list threaded through the
 * blocks: taking one then reads no block, so the next allocation does not
 * wait on a cache miss in the last (a kept block is cold by the time a
 * message needs it: perf put a list's pop at 3.6% of siohubd's time in the
 * chat bench, nearly all of it that one load). Classes of 128 bytes up to
 * 1 KiB, then of 1 KiB up to 8 KiB: Open WebUI's chat events carry the
 * reply so far, a kilobyte or several each, and past glibc's per-thread
 * cache (1 KiB) each such frame cost an _int_malloc (~1.3% of siohubd's
 * time in the chat bench with the reply so far). Bounded: at most
 * POOL_DEPTH blocks of each small class and POOL_DEPTH_LARGE of each
 * large one, 576 KiB and 1,120 KiB in all. Loop thread only, as the
 * refcounts. */
#define POOL_STEP          128
#define POOL_SMALL_CLASSES 8 /* blocks of up to 1 KiB */
#define POOL_LARGE_STEP    1024
#define POOL_CLASSES       15 /* then of up to 8 KiB */
#define POOL_DEPTH         128
#define POOL_DEPTH_LARGE   32

/* The size class of a block of size bytes (1-based: 0 is "not pooled"),
 * and the bytes of a class's blocks. */
static size_t pool_class_of(size_t size)
{
    if (size <= POOL_SMALL_CLASSES * POOL_STEP)
        return (size + POOL_STEP - 1) / POOL_STEP;
    size_t cls = POOL_SMALL_CLASSES +
                 (size - POOL_SMALL_CLASSES * POOL_STEP + POOL_LARGE_STEP - 1) / POOL_LARGE_STEP;
    return cls <= POOL_CLASSES ? cls : 0;
}

static size_t pool_block_size(size_t cls)
{
    return cls <= POOL_SMALL_CLASSES ? cls * POOL_STEP
                                     : (cls - POOL_SMALL_CLASSES + 1) * POOL_LARGE_STEP;
}

static unsigned pool_depth(size_t cls)
{
    return cls <= POOL_SMALL_CLASSES ? POOL_DEPTH : POOL_DEPTH_LARGE;
}

/* A kept block is poisoned (SH_POISON), so that under AddressSanitizer a
 * use after the last unref is still caught. */
static struct {
    void *blocks[POOL_DEPTH];
    unsigned n;
} pool[POOL_CLASSES];

sh_msg_t *sh_msg_alloc(size_t len, bool binary)
{
    size_t size = sizeof(sh_msg_t) + SH_MSG_HEAD_ROOM + len + 1;
    size_t cls = pool_class_of(size);
    sh_msg_t *m;
    if (cls && pool[cls - 1].n) {
        m = pool[cls - 1].blocks[--pool[cls - 1].n];
        SH_UNPOISON(m, pool_block_size(cls));
        /* The next message of a batch will take the next block: have its
         * first lines on their way meanwhile. */
        if (pool[cls - 1].n) {
            char *next = pool[cls - 1].blocks[pool[cls - 1].n - 1];
            __builtin_prefetch(next, 1);
            __builtin_prefetch(next + 64, 1);
        }
    } else if (cls) {
        m = sh_malloc(pool_block_size(cls));
    } else {
        m = sh_malloc(size);
    }
    m->pool_class = (uint8_t)cls;
    m->refs = 1;
    m->binary = binary;
    m->head_len = 0;
    m->head_tag = 0;
    m->len = len;
    m->cap = (cls ? pool_block_size(cls) : size) - sizeof(sh_msg_t);
    m->base64 = NULL;
    m->forms = NULL;
    m->data = m->buffer + SH_MSG_HEAD_ROOM;
    m->data[len] = '\0';
    return m;
}

int sh_msg_reframe(sh_msg_t *m, char *data, size_t len, bool binary)
{
    if (m->refs != 1 || m->head_len || m->base64 || m->forms || data < m->buffer ||
        data >= m->buffer + m->cap)
        return -EINVAL;
    size_t at = (size_t)(data - m->buffer);
    if (at < SH_MSG_HEAD_ROOM || len >= m->cap - at)
        return -EINVAL;
    m->data = data;
    m->len = len;
    m->binary = binary;
    data[len] = '\0';
    return 0;
}

sh_msg_t *sh_msg_new(const void *p, size_t len, bool binary)
{
    sh_msg_t *m = sh_msg_alloc(len, binary);
    if (len)
        memcpy(m->data, p, len);
    return m;
}

sh_msg_t *sh_msg_new_prefixed(char prefix, const void *p, size_t len)
{
    sh_msg_t *m = sh_msg_alloc(len + 1, false);
    m->data[0] = prefix;
    if (len)
        memcpy(m->data + 1, p, len);
    return m;
}

int sh_msg_set_head(sh_msg_t *m, uint8_t tag, const void *h, size_t n)
{
    if (m->head_len)
        return m->head_tag == tag && m->head_len == n ? 0 : -EEXIST;
    if (n == 0 || n > SH_MSG_HEAD_ROOM)
        return -EINVAL;
    memcpy(m->data - n, h, n);
    m->head_len = (uint8_t)n;
    m->head_tag = tag;
    return 0;
}

/* One cached derived form. A list: a message rarely has more than one
 * (one per transport that renders), and usually none. */
struct sh_msg_form {
    struct sh_msg_form *next;
    sh_msg_render_cb render;
    sh_msg_t *msg; /* owned; NULL: m has no such form */
};

void sh_msg_unref(sh_msg_t *m)
{
    if (!m || --m->refs > 0)
        return;
    sh_msg_unref(m->base64);
    struct sh_msg_form *f = m->forms;
    while (f) {
        struct sh_msg_form *next = f->next;
        sh_msg_unref(f->msg);
        free(f);
        f = next;
    }
    unsigned cls = m->pool_class;
    if (cls && pool[cls - 1].n < pool_depth(cls)) {
        SH_POISON(m, pool_block_size(cls));
        pool[cls - 1].blocks[pool[cls - 1].n++] = m;
        return;
    }
    free(m);
}

void sh_msg_pool_drain(void)
{
    for (size_t i = 0; i < POOL_CLASSES; i++) {
        while (pool[i].n) {
            void *p = pool[i].blocks[--pool[i].n];
            SH_UNPOISON(p, pool_block_size(i + 1));
            free(p);
        }
    }
}

sh_msg_t *sh_msg_form(sh_msg_t *m, sh_msg_render_cb render)
{
    for (struct sh_msg_form *f = m->forms; f; f = f->next)
        if (f->render == render)
            return f->msg;
    struct sh_msg_form *f = sh_malloc(sizeof(*f));
    f->render = render;
    f->msg = render(m);
    f->next = m->forms;
    m->forms = f;
    return f->msg;
}

sh_msg_t *sh_msg_base64(sh_msg_t *m)
{
    if (!m->binary)
        return m;
    if (!m->base64) {
        size_t enc = 4 * ((m->len + 2) / 3);
        sh_msg_t *t = sh_msg_alloc(1 + enc, false);
        t->data[0] = 'b';
        int n = EVP_EncodeBlock((unsigned char *)t->data + 1, (const unsigned char *)m->data,
                                (int)m->len);
        t->len = 1 + (size_t)n;
        t->data[t->len] = '\0';
        m->base64 = t;
    }
    return m->base64;
}
