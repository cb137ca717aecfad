/* fuzz_eio_packet — libFuzzer target for the Engine.IO packet codec.
 *
 * The input is used three ways: as a polling payload (sh_eio_payload_next),
 * as one text packet (sh_eio_packet_decode_text) and as base64
 * (sh_base64_decode). Each result is compared with a deliberately naive
 * model written here from the spec, and whatever decodes is encoded again
 * and decoded a second time: the packets must come back the same, and the
 * bytes too unless some base64 had non-zero unused bits. Any disagreement
 * aborts, so the fuzzer reports it.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/msg.h"
#include "engineio/packet.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the model: a slow, obviously-correct strict base64 decoder */

static int b64_value(unsigned char c)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; i++) {
        if (alphabet[i] == (char)c)
            return i;
    }
    return -1;
}

/* Decodes p[0..n) into out (at least n bytes); returns the length or -1.
 * *canonical says whether the unused bits of the last group were zero. */
static long model_base64(const unsigned char *p, size_t n, unsigned char *out, bool *canonical)
{
    *canonical = true;
    if (n % 4 != 0)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        bool last = i + 4 == n;
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            if (p[i + k] == '=') {
                /* only in the last group, only in its last two places, and
                 * once padding starts it runs to the end */
                if (!last || k < 2)
                    return -1;
                v[k] = 0;
                pad++;
            } else {
                if (pad)
                    return -1;
                v[k] = b64_value(p[i + k]);
                if (v[k] < 0)
                    return -1;
            }
        }
        unsigned long bits =
            (unsigned long)v[0] << 18 | (unsigned long)v[1] << 12 | (unsigned)v[2] << 6 | v[3];
        out[o++] = (unsigned char)(bits >> 16);
        if (pad < 2)
            out[o++] = (unsigned char)(bits >> 8);
        if (pad < 1)
            out[o++] = (unsigned char)bits;
        if (pad == 2 && (v[1] & 0xf))
            *canonical = false;
        if (pad == 1 && (v[2] & 0x3))
            *canonical = false;
    }
    return (long)o;
}

/* ---- packets kept across iterator calls (scratch is overwritten) */

typedef struct kept {
    sh_eio_type_t type;
    bool binary;
    unsigned char *data;
    size_t len;
} kept_t;

static void kept_free(kept_t *k, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(k[i].data);
    free(k);
}

/* Runs the iterator over p[0..n) against the model. Returns the number of
 * packets when the whole payload is valid (filling *out, to be freed with
 * kept_free), or -1 when it is not. *canonical as in model_base64. */
static long check_payload(const char *p, size_t n, kept_t **out, bool *canonical)
{
    sh_buf_t scratch = SH_BUF_INIT;
    kept_t *kept = sh_calloc(n + 1, sizeof(*kept));
    unsigned char *model = sh_malloc(n + 1);
    size_t pos = 0, count = 0;
    long result = -1;
    *canonical = true;
    for (;;) {
        sh_eio_packet_t pk;
        size_t before = pos;
        int rc = sh_eio_payload_next(p, n, &pos, &pk, &scratch);

        /* the model: split at the next separator */
        bool at_end = before == n && n > 0 && p[n - 1] != SH_EIO_SEPARATOR;
        if (at_end) {
            CHECK(rc == 0);
            CHECK(pos == n);
            result = (long)count;
            break;
        }
        const char *sep = before < n ? memchr(p + before, SH_EIO_SEPARATOR, n - before) : NULL;
        size_t end = sep ? (size_t)(sep - p) : n;
        size_t len = end - before;
        bool ok = len > 0;
        bool canon = true;
        long blen = 0;
        if (ok && p[before] == 'b') {
            blen = model_base64((const unsigned char *)p + before + 1, len - 1, model, &canon);
            ok = blen >= 0;
        } else if (ok) {
            ok = p[before] >= '0' && p[before] <= '6';
        }
        if (!ok) {
            CHECK(rc == -EINVAL);
            CHECK(pos == before);
            break;
        }
        CHECK(rc == 1);
        CHECK(pos == (sep ? end + 1 : end));
        kept_t *k = &kept[count++];
        k->type = pk.type;
        k->binary = pk.binary;
        k->len = pk.len;
        k->data = sh_memdup(pk.data, pk.len);
        if (p[before] == 'b') {
            CHECK(pk.binary && pk.type == SH_EIO_MESSAGE);
            CHECK(pk.len == (size_t)blen);
            CHECK(memcmp(pk.data, model, pk.len) == 0);
            if (!canon)
                *canonical = false;
        } else {
            CHECK(!pk.binary);
            CHECK(pk.type == (sh_eio_type_t)(p[before] - '0'));
            CHECK(pk.data == p + before + 1); /* borrowed, not copied */
            CHECK(pk.len == len - 1);
        }
    }
    free(model);
    sh_buf_release(&scratch);
    if (result < 0) {
        kept_free(kept, count);
        return -1;
    }
    *out = kept;
    return result;
}

/* Encodes the kept packets as a payload into out. */
static void encode_payload(const kept_t *k, size_t n, sh_buf_t *out)
{
    for (size_t i = 0; i < n; i++) {
        sh_msg_t *m = k[i].binary ? sh_eio_msg_binary(k[i].data, k[i].len)
                                  : sh_eio_msg_text(k[i].type, (const char *)k[i].data, k[i].len);
        sh_eio_payload_append(out, m, i == 0);
        if (k[i].binary)
            CHECK(m->base64 != NULL); /* the cached form was used */
        sh_msg_unref(m);
    }
}

static void fuzz_payload(const char *p, size_t n)
{
    kept_t *first = NULL, *second = NULL;
    bool canonical, canonical2;
    long count = check_payload(p, n, &first, &canonical);
    if (count < 0)
        return;
    CHECK(count > 0); /* an empty payload is an error */

    sh_buf_t again = SH_BUF_INIT;
    encode_payload(first, (size_t)count, &again);
    if (canonical) {
        CHECK(sh_buf_avail(&again) == n);
        CHECK(memcmp(sh_buf_peek(&again), p, n) == 0);
    }
    long count2 = check_payload(sh_buf_peek(&again), sh_buf_avail(&again), &second, &canonical2);
    CHECK(count2 == count);
    CHECK(canonical2); /* our own encoder writes canonical base64 */
    for (long i = 0; i < count; i++) {
        CHECK(first[i].type == second[i].type);
        CHECK(first[i].binary == second[i].binary);
        CHECK(first[i].len == second[i].len);
        CHECK(memcmp(first[i].data, second[i].data, first[i].len) == 0);
    }
    kept_free(first, (size_t)count);
    kept_free(second, (size_t)count2);
    sh_buf_release(&again);
}

static void fuzz_text(const char *p, size_t n)
{
    sh_eio_packet_t pk;
    int rc = sh_eio_packet_decode_text(p, n, &pk);
    if (n == 0 || p[0] < '0' || p[0] > '6') {
        CHECK(rc == -EINVAL);
        return;
    }
    CHECK(rc == 0);
    CHECK(!pk.binary);
    CHECK(pk.type == (sh_eio_type_t)(p[0] - '0'));
    CHECK(pk.data == p + 1 && pk.len == n - 1);
    sh_msg_t *m = sh_eio_msg_text(pk.type, pk.data, pk.len);
    CHECK(!m->binary && m->len == n && memcmp(m->data, p, n) == 0);
    sh_msg_unref(m);
}

static void fuzz_base64(const char *p, size_t n)
{
    sh_buf_t out = SH_BUF_INIT;
    unsigned char *model = sh_malloc(n + 1);
    bool canonical;
    long want = model_base64((const unsigned char *)p, n, model, &canonical);
    /* decoding appends after what out holds */
    sh_buf_append(&out, "xy", 2);
    int rc = sh_base64_decode(p, n, &out);
    if (want < 0) {
        CHECK(rc == -EINVAL);
        CHECK(sh_buf_avail(&out) == 2);
    } else {
        CHECK(rc == 0);
        CHECK(sh_buf_avail(&out) == 2 + (size_t)want);
        CHECK(memcmp(sh_buf_peek(&out), "xy", 2) == 0);
        CHECK(memcmp(sh_buf_peek(&out) + 2, model, (size_t)want) == 0);
        /* and back: "b" + base64 of the bytes */
        sh_msg_t *m = sh_eio_msg_binary(model, (size_t)want);
        sh_msg_t *t = sh_msg_base64(m);
        CHECK(t->len >= 1 && t->data[0] == 'b');
        if (canonical)
            CHECK(t->len == n + 1 && memcmp(t->data + 1, p, n) == 0);
        sh_msg_unref(m);
    }
    CHECK(sh_buf_peek(&out)[sh_buf_avail(&out)] == '\0');
    free(model);
    sh_buf_release(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    fuzz_payload(p, size);
    fuzz_text(p, size);
    fuzz_base64(p, size);
    return 0;
}
