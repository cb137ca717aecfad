/* fuzz_ws_frame — libFuzzer target for the WebSocket frame codec.
 *
 * Input: byte 0 picks the reader's options (bit 0 require_mask, bits 1-2
 * max_message), byte 1 seeds the chunk sizes, the rest is the byte stream
 * from the peer. The stream is read twice, whole and in chunks; both must
 * give the same events and end the same way. Each event is checked against
 * the reader's promises (UTF-8 text, size limit, close codes), and the
 * smaller functions are exercised on the same bytes: the header parser
 * against the encoder, piecewise unmasking, the UTF-8 validator against a
 * naive one, close payloads and the accept key. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/utf8.h"
#include "transport/ws_frame.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const size_t max_choices[4] = {4096, 4096, 16, 0};

typedef struct outcome {
    uint64_t hash; /* FNV-1a over every event */
    size_t events;
    int end;
    uint16_t code;
    size_t rest;
} outcome_t;

static void fnv(uint64_t *h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        *h ^= b[i];
        *h *= UINT64_C(0x100000001b3);
    }
}

static bool close_code_ok(uint16_t c)
{
    return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
}

static void check_event(const sh_ws_event_t *ev, size_t max)
{
    CHECK(ev->len == 0 || ev->data != NULL);
    switch (ev->type) {
    case SH_WS_EV_TEXT:
        CHECK(sh_utf8_valid(ev->data, ev->len));
        /* fall through */
    case SH_WS_EV_BINARY:
        CHECK(max == 0 || ev->len <= max);
        CHECK(ev->close_code == 0);
        break;
    case SH_WS_EV_PING:
    case SH_WS_EV_PONG:
        CHECK(ev->len <= 125);
        CHECK(ev->close_code == 0);
        break;
    case SH_WS_EV_CLOSE:
        CHECK(ev->len <= 123);
        CHECK(sh_utf8_valid(ev->data, ev->len));
        CHECK(ev->close_code == SH_WS_CLOSE_NO_STATUS ? ev->len == 0
                                                      : close_code_ok(ev->close_code));
        break;
    default:
        CHECK(0);
    }
    /* Touch every byte, so ASan checks the borrowed pointer. */
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < ev->len; i++)
        sink ^= (uint8_t)ev->data[i];
    (void)sink;
}

static void run(const uint8_t *p, size_t n, bool mask, size_t max, uint32_t seed, outcome_t *o)
{
    sh_ws_reader_t r;
    sh_ws_reader_init(&r, max, mask);
    sh_buf_t in = SH_BUF_INIT;
    size_t pos = 0;
    int rc;
    uint16_t code = 0;

    memset(o, 0, sizeof(*o));
    o->hash = UINT64_C(0xcbf29ce484222325);
    for (;;) {
        sh_ws_event_t ev;
        while ((rc = sh_ws_reader_next(&r, &in, &ev, &code)) == 1) {
            check_event(&ev, max);
            uint8_t t = (uint8_t)ev.type;
            fnv(&o->hash, &t, 1);
            fnv(&o->hash, &ev.close_code, sizeof(ev.close_code));
            fnv(&o->hash, &ev.len, sizeof(ev.len));
            fnv(&o->hash, ev.data, ev.len);
            o->events++;
        }
        if (rc != -EAGAIN || pos == n)
            break;
        size_t k = n - pos;
        if (seed) {
            /* xorshift32 from the input's seed byte: chunks of 1-64 bytes */
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            k = 1 + seed % 64;
            if (k > n - pos)
                k = n - pos;
        }
        sh_buf_append(&in, p + pos, k);
        pos += k;
    }
    if (rc != -EAGAIN) {
        CHECK(rc == -EPROTO || rc == -EILSEQ || rc == -EMSGSIZE);
        CHECK((rc == -EPROTO && code == 1002) || (rc == -EILSEQ && code == 1007) ||
              (rc == -EMSGSIZE && code == 1009));
        /* Sticky. */
        sh_ws_event_t ev;
        uint16_t again = 0;
        CHECK(sh_ws_reader_next(&r, &in, &ev, &again) == rc && again == code);
    } else {
        /* Nothing is held back beyond one incomplete frame: a header and a
         * payload within the limit. */
        size_t frame_max = max > 125 ? max : 125; /* control frames: 125 */
        CHECK(max == 0 || sh_buf_avail(&in) <= frame_max + 14);
        CHECK(max == 0 || sh_buf_avail(&r.message) <= max);
    }
    o->end = rc;
    o->code = code;
    o->rest = sh_buf_avail(&in);
    sh_ws_reader_release(&r);
    sh_buf_release(&in);
}

/* Naive UTF-8 check by decoded value, as in tests/core/test_utf8.c. */
static bool ref_utf8(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
            min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
            min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

static void exercise_helpers(const uint8_t *p, size_t n)
{
    /* UTF-8: the fast validator agrees with the naive one. */
    CHECK(sh_utf8_valid(p, n) == ref_utf8(p, n));

    /* Header parser: exact-size copy, so reads past n are caught; a parsed
     * unmasked header re-encodes to the same bytes. */
    uint8_t *copy = malloc(n ? n : 1);
    if (n)
        memcpy(copy, p, n);
    sh_ws_frame_header_t h;
    int rc = sh_ws_frame_parse_header(copy, n, false, &h);
    CHECK(rc == -EAGAIN || rc == -EPROTO || (rc >= 2 && rc <= 14 && (size_t)rc <= n));
    if (rc > 0) {
        CHECK(h.header_len == (size_t)rc);
        CHECK(h.payload_len < (UINT64_C(1) << 63));
        CHECK(!(h.opcode & 8) || (h.fin && h.payload_len <= 125));
        uint8_t enc[SH_WS_MAX_SERVER_HEADER];
        size_t en = sh_ws_frame_header_encode(enc, h.opcode, h.fin, h.payload_len);
        CHECK(en == h.header_len - (h.masked ? 4 : 0));
        CHECK(memcmp(enc, copy, 1) == 0);
        CHECK((enc[1] | (h.masked ? 0x80 : 0)) == copy[1]);
        CHECK(memcmp(enc + 2, copy + 2, en - 2) == 0);
        int rc2 = sh_ws_frame_parse_header(copy, n, true, &h);
        CHECK(h.masked ? rc2 == rc : rc2 == -EPROTO);
    }

    /* Unmasking in two pieces equals unmasking at once. */
    if (n >= 4) {
        uint8_t key[4];
        memcpy(key, p, 4);
        size_t split = n > 4 ? p[4] % (n + 1) : 0;
        uint8_t *a = malloc(n), *b = malloc(n);
        memcpy(a, p, n);
        memcpy(b, p, n);
        sh_ws_unmask(a, n, key, 5);
        sh_ws_unmask(b, split, key, 5);
        sh_ws_unmask(b + split, n - split, key, 5 + split);
        CHECK(memcmp(a, b, n) == 0);
        for (size_t i = 0; i < n; i++)
            CHECK((uint8_t)(a[i] ^ key[(5 + i) & 3]) == p[i]);
        free(a);
        free(b);
    }
    free(copy);

    /* Close payload from arbitrary bytes as the reason: always fits, always
     * a prefix of the reason, always UTF-8. */
    char *reason = malloc(n + 1);
    if (n)
        memcpy(reason, p, n);
    reason[n] = '\0';
    uint8_t cp[125];
    uint16_t code = n >= 2 ? (uint16_t)(p[0] << 8 | p[1]) : 0;
    size_t cn = sh_ws_close_payload(cp, code, reason);
    if (code == 0) {
        CHECK(cn == 0);
    } else {
        CHECK(cn >= 2 && cn <= 125);
        CHECK(cp[0] == p[0] && cp[1] == p[1]);
        CHECK(memcmp(cp + 2, reason, cn - 2) == 0);
        CHECK(sh_utf8_valid(cp + 2, cn - 2));
    }

    /* Accept key: only 22 base64 symbols + "==" pass, and the answer is 28
     * base64 characters. */
    char out[29];
    memset(out, 0, sizeof(out));
    if (sh_ws_accept_key(reason, out) == 0) {
        CHECK(strlen(reason) == 24);
        CHECK(strlen(out) == 28 && out[27] == '=');
    }
    free(reason);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    bool mask = data[0] & 1;
    size_t max = max_choices[(data[0] >> 1) & 3];
    uint32_t seed = 0x9E3779B9u ^ ((uint32_t)data[1] * 0x01000193u);
    const uint8_t *p = data + 2;
    size_t n = size - 2;

    outcome_t whole, chunked;
    run(p, n, mask, max, 0, &whole);
    run(p, n, mask, max, seed ? seed : 1, &chunked);
    CHECK(whole.hash == chunked.hash);
    CHECK(whole.events == chunked.events);
    CHECK(whole.end == chunked.end);
    CHECK(whole.code == chunked.code);
    CHECK(whole.end != -EAGAIN || whole.rest == chunked.rest);

    exercise_helpers(p, n);
    return 0;
}
