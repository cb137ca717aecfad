/* fuzz_bench_http — libFuzzer target for siohub-bench's HTTP client codec
 * (src/bench/http.c), which reads whatever the server under test answers.
 *
 * Input: byte 0 sets the piece size for the chunked decoder (1-64), the
 * rest is the bytes from the server. Every reader must stay inside them,
 * hand out spans inside them (or, de-chunked, inside its scratch buffer),
 * and the chunked decoder, given what follows the head, must end the same
 * way and give the same bytes whether fed whole or in pieces. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench/http.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads every byte of a span, so ASan sees a span that leaves its buffer. */
static unsigned touch(const char *p, size_t n)
{
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (unsigned char)p[i];
    return sum;
}

static volatile unsigned sink;

static bool on_response(void *arg, const sb_http_head_t *h, const char *body, size_t blen,
                        uint64_t now)
{
    (void)arg;
    (void)now;
    CHECK(h->status >= 0 && h->status <= 999);
    sink += touch(body, blen);
    return true;
}

/* Decodes p[0..n) as a chunked body in pieces of piece bytes; returns the
 * decoder's last result and the bytes it used. */
static int chunked_in_pieces(const char *p, size_t n, size_t piece, size_t *used, sb_buf_t *out)
{
    sb_chunked_t d = {0};
    size_t at = 0;
    int rc = 0;
    while (at < n) {
        size_t take = n - at < piece ? n - at : piece, u = 0;
        rc = sb_chunked_feed(&d, p + at, take, &u, out);
        if (rc < 0)
            break;
        CHECK(u <= take);
        at += u;
        if (rc == 1)
            break;
        CHECK(u == take); /* more may come: it takes all it was given */
    }
    *used = at;
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t piece = (size_t)(data[0] % 64) + 1;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;

    sb_http_head_t h;
    int rc = sb_http_parse_head(p, n, &h);
    CHECK(rc == 0 || rc == -EAGAIN || rc == -EPROTO);
    if (rc == 0) {
        CHECK(h.head_len >= 16 && h.head_len <= n);
        CHECK(h.status >= 0 && h.status <= 999);
        CHECK(h.content_length >= -1);
        if (h.accept) {
            CHECK(h.accept >= p && h.accept + h.accept_len <= p + h.head_len);
            sink += touch(h.accept, h.accept_len);
        }
    }

    sb_buf_t scratch = {0};
    const char *body;
    size_t blen, used;
    rc = sb_http_parse_response(p, n, &h, &body, &blen, &used, &scratch);
    CHECK(rc == 0 || rc == -EAGAIN || rc == -EPROTO);
    if (rc == 0) {
        CHECK(used >= h.head_len && used <= n);
        if (h.chunked)
            CHECK(body == sb_buf_head(&scratch) && blen == sb_buf_avail(&scratch));
        else
            CHECK(body == p + h.head_len && h.head_len + blen == used);
        sink += touch(body, blen);
    }
    sb_buf_release(&scratch);

    long got = sb_http_responses(p, n, on_response, NULL, 0);
    CHECK(got == -EPROTO || (got >= 0 && (size_t)got <= n));

    /* The chunked decoder, whole and in pieces, on what follows a head
     * (all of the input when it has none). */
    if (sb_http_parse_head(p, n, &h) == 0) {
        p += h.head_len;
        n -= h.head_len;
    }
    sb_buf_t whole = {0}, pieces = {0};
    sb_chunked_t d = {0};
    size_t whole_used = 0, pieces_used = 0;
    int whole_rc = sb_chunked_feed(&d, p, n, &whole_used, &whole);
    int pieces_rc = chunked_in_pieces(p, n, piece, &pieces_used, &pieces);
    CHECK(whole_rc == pieces_rc);
    if (whole_rc >= 0) {
        CHECK(whole_used <= n && whole_used == pieces_used);
        CHECK(sb_buf_avail(&whole) == sb_buf_avail(&pieces));
        CHECK(!sb_buf_avail(&whole) ||
              !memcmp(sb_buf_head(&whole), sb_buf_head(&pieces), sb_buf_avail(&whole)));
        CHECK(sb_buf_avail(&whole) <= n);
    }
    sb_buf_release(&whole);
    sb_buf_release(&pieces);

    int64_t v;
    if (sb_json_int(p, n, "\"seq\":", &v))
        sink += (unsigned)v;
    return 0;
}
