#include "core/msg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/alloc.h"

sh_msg_t *sh_msg_alloc(size_t len, bool binary)
{
    sh_msg_t *m = sh_malloc(sizeof(*m) + len + 1);
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
    free(m);
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
