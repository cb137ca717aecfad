/* engineio/packet.c — Engine.IO v4 packet and payload codec (see packet.h). */
#include "engineio/packet.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/alloc.h"

int sh_eio_packet_decode_text(const char *p, size_t n, sh_eio_packet_t *out)
{
    if (n == 0 || p[0] < '0' || p[0] > '6')
        return -EINVAL;
    out->type = (sh_eio_type_t)(p[0] - '0');
    out->binary = false;
    out->data = p + 1;
    out->len = n - 1;
    return 0;
}

static bool base64_alphabet(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

int sh_base64_decode(const char *p, size_t n, sh_buf_t *out)
{
    /* EVP_DecodeBlock takes an int length; payloads are far smaller, but a
     * length that does not fit must not wrap. */
    if (n % 4 != 0 || n > INT_MAX)
        return -EINVAL;
    if (n == 0)
        return 0;
    /* EVP_DecodeBlock itself is lenient (it skips surrounding whitespace and
     * treats '=' loosely), so strictness is checked here: the alphabet
     * everywhere, '=' only as the last one or two characters. */
    size_t pad = 0;
    if (p[n - 1] == '=')
        pad = p[n - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < n - pad; i++) {
        if (!base64_alphabet((unsigned char)p[i]))
            return -EINVAL;
    }
    size_t full = n / 4 * 3;
    unsigned char *w = (unsigned char *)sh_buf_reserve(out, full);
    int got = EVP_DecodeBlock(w, (const unsigned char *)p, (int)n);
    if (got < 0 || (size_t)got != full) {
        w[0] = '\0'; /* keep the buffer's NUL invariant: nothing committed */
        return -EINVAL;
    }
    /* EVP_DecodeBlock decodes padding as zero bytes and counts them. */
    sh_buf_commit(out, full - pad);
    return 0;
}

int sh_eio_payload_next(const char *p, size_t n, size_t *pos, sh_eio_packet_t *out,
                        sh_buf_t *scratch)
{
    size_t start = *pos;
    if (start > n)
        return -EINVAL;
    if (start == n) {
        /* The end: fine after a packet, but not for an empty payload or
         * after a trailing separator (both mean an empty packet; Node's
         * decodePayload reports a parser error for them too). A packet never
         * ends in a separator, so p[n - 1] tells which case this is. */
        if (n == 0 || p[n - 1] == SH_EIO_SEPARATOR)
            return -EINVAL;
        return 0;
    }
    const char *sep = memchr(p + start, SH_EIO_SEPARATOR, n - start);
    size_t end = sep ? (size_t)(sep - p) : n;
    size_t len = end - start;
    if (len == 0)
        return -EINVAL;
    const char *pk = p + start;
    if (pk[0] == 'b') {
        /* v4 carries every binary message in a polling payload as "b" +
         * base64; its type is always message. */
        sh_buf_reset(scratch);
        if (sh_base64_decode(pk + 1, len - 1, scratch) < 0)
            return -EINVAL;
        out->type = SH_EIO_MESSAGE;
        out->binary = true;
        out->data = sh_buf_peek(scratch);
        out->len = sh_buf_avail(scratch);
    } else if (sh_eio_packet_decode_text(pk, len, out) < 0) {
        return -EINVAL;
    }
    *pos = sep ? end + 1 : end;
    return 1;
}

sh_msg_t *sh_eio_msg_text(sh_eio_type_t type, const char *data, size_t len)
{
    return sh_msg_new_prefixed((char)('0' + type), data, len);
}

sh_msg_t *sh_eio_msg_binary(const void *data, size_t len)
{
    return sh_msg_new(data, len, true);
}

void sh_eio_payload_append(sh_buf_t *out, sh_msg_t *m, bool first)
{
    if (!first)
        sh_buf_append_byte(out, SH_EIO_SEPARATOR);
    /* Text messages are their own wire form; binary ones get their cached
     * "b" + base64 form, built once and shared by every polling recipient. */
    sh_msg_t *w = sh_msg_base64(m);
    sh_buf_append(out, w->data, w->len);
}
