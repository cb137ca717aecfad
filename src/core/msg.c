#include "core/msg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/alloc.h"

/* Freed small messages kept for the next ones. An event is one message,
 * and a backend's batch makes and frees them by the hundred: glibc then
 * serves each from its bins one by one (5-6% of siohubd's time in the chat
 * bench, in _int_malloc), where a stack per 128-byte size class costs a
 * few stores. A stack of pointers rather than a list threaded through the
 * blocks: taking one then reads no block, so the next allocation does not
 * wait on a cache miss in the last (a kept block is cold by the time a
 * message needs it: perf put a list's pop at 3.6% of siohubd's time in the
 * chat bench, nearly all of it that one load). Bounded: at most
 * POOL_DEPTH blocks per class, 576 KiB in all. Loop thread only, as the
 * refcounts. */
#define POOL_STEP    128
#define POOL_CLASSES 8 /* blocks of up to 1 KiB */
#define POOL_DEPTH   128

/* Under AddressSanitizer a kept block is poisoned, so that a use after the
 * last unref is still caught. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

static struct {
    void *blocks[POOL_DEPTH];
    unsigned n;
} pool[POOL_CLASSES];

sh_msg_t *sh_msg_alloc(size_t len, bool binary)
{
    size_t size = sizeof(sh_msg_t) + len + 1;
    size_t cls = (size + POOL_STEP - 1) / POOL_STEP; /* 1-based: 0 is "not pooled" */
    sh_msg_t *m;
    if (cls <= POOL_CLASSES && pool[cls - 1].n) {
        m = pool[cls - 1].blocks[--pool[cls - 1].n];
        UNPOISON(m, cls * POOL_STEP);
        /* The next message of a batch will take the next block: have its
         * first lines on their way meanwhile. */
        if (pool[cls - 1].n) {
            char *next = pool[cls - 1].blocks[pool[cls - 1].n - 1];
            __builtin_prefetch(next, 1);
            __builtin_prefetch(next + 64, 1);
        }
    } else if (cls <= POOL_CLASSES) {
        m = sh_malloc(cls * POOL_STEP);
    } else {
        m = sh_malloc(size);
        cls = 0;
    }
    m->pool_class = (uint8_t)cls;
    m->refs = 1;
    m->binary = binary;
    m->head_len = 0;
    m->head_tag = 0;
    m->len = len;
    m->base64 = NULL;
    m->forms = NULL;
    m->data[len] = '\0';
    return m;
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
    if (cls && pool[cls - 1].n < POOL_DEPTH) {
        POISON(m, cls * POOL_STEP);
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
            UNPOISON(p, (i + 1) * POOL_STEP);
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
