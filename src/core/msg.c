#include "core/msg.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/alloc.h"

sh_msg_t *sh_msg_alloc(size_t len, bool binary)
{
    sh_msg_t *m = sh_malloc(sizeof(*m) + len + 1);
    m->refs = 1;
    m->binary = binary;
    m->len = len;
    m->base64 = NULL;
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

void sh_msg_unref(sh_msg_t *m)
{
    if (!m || --m->refs > 0)
        return;
    sh_msg_unref(m->base64);
    free(m);
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
