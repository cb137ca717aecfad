/* bench/payload.c — bench messages and their delivery checks (see
 * payload.h). */
#include "bench/payload.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bench/http.h"
#include "bench/util.h"

void sb_payload_format(sb_buf_t *out, uint64_t seq, uint32_t pub, uint64_t t_ns, size_t size,
                       bool zh)
{
    /* A sentence's worth of characters, so the text is not one repeated. */
    static const char zh_pad[] = "\\u4e2d\\u6587\\u6d88\\u606f\\u7684\\u5185\\u5bb9\\u5728"
                                 "\\u8fd9\\u91cc\\u3002";
    size_t start = out->len;
    sb_buf_printf(out, "{\"seq\":%" PRIu64 ",\"pub\":%u,\"t\":%" PRIu64 ",\"pad\":\"", seq, pub,
                  t_ns);
    size_t used = out->len - start + 2; /* the closing "} */
    if (size > used) {
        size_t pad = size - used;
        char *w = sb_buf_reserve(out, pad);
        size_t escaped = zh ? pad / 6 * 6 : 0;
        for (size_t i = 0; i < escaped; i += 6)
            memcpy(w + i, zh_pad + i % (sizeof(zh_pad) - 1), 6);
        memset(w + escaped, 'x', pad - escaped);
        out->len += pad;
    }
    sb_buf_puts(out, "\"}");
}

bool sb_payload_parse(const char *p, size_t n, sb_payload_t *m)
{
    int64_t seq, pub, t;
    /* The fields lead the object: look in its first bytes only, not
     * through the padding. */
    size_t head = n < 160 ? n : 160;
    if (!sb_json_int(p, head, "\"seq\":", &seq) || !sb_json_int(p, head, "\"pub\":", &pub) ||
        !sb_json_int(p, head, "\"t\":", &t) || seq < 0 || pub < 0 || t < 0 || pub > 65535 ||
        seq >= SB_SEQ_NONE)
        return false;
    m->seq = (uint64_t)seq;
    m->pub = (uint32_t)pub;
    m->t_ns = (uint64_t)t;
    return true;
}

void sb_tracker_init(sb_tracker_t *t, unsigned nclients, unsigned npubs)
{
    memset(t, 0, sizeof(*t));
    t->nclients = nclients;
    t->npubs = npubs;
    t->last = sb_xcalloc((size_t)nclients * npubs, sizeof(uint32_t));
    memset(t->last, 0xff, (size_t)nclients * npubs * sizeof(uint32_t));
    t->got = sb_xcalloc(nclients, sizeof(uint32_t));
    t->base = sb_xcalloc(npubs, sizeof(uint32_t));
}

void sb_tracker_release(sb_tracker_t *t)
{
    free(t->last);
    free(t->got);
    free(t->base);
    memset(t, 0, sizeof(*t));
}

void sb_tracker_begin(sb_tracker_t *t, const uint32_t *base)
{
    memcpy(t->base, base, t->npubs * sizeof(uint32_t));
    memset(t->got, 0, t->nclients * sizeof(uint32_t));
    t->want = 0;
    t->complete = 0;
}

uint64_t sb_tracker_end(sb_tracker_t *t, const uint32_t *count)
{
    uint64_t want = 0;
    for (unsigned p = 0; p < t->npubs; p++)
        want += count[p];
    t->want = want;
    t->complete = 0;
    for (unsigned i = 0; i < t->nclients; i++)
        if (t->got[i] >= want)
            t->complete++;
    return want;
}

void sb_tracker_add(sb_tracker_t *t, sb_stats_t *st, unsigned i, const sb_payload_t *m,
                    size_t bytes, uint64_t now)
{
    if (m->pub >= t->npubs) {
        st->unexpected++;
        return;
    }
    uint32_t *last = &t->last[(size_t)i * t->npubs + m->pub];
    uint32_t seq = (uint32_t)m->seq;
    if (*last != SB_SEQ_NONE && seq <= *last) {
        st->disordered++;
        return;
    }
    *last = seq;
    if (seq < t->base[m->pub]) {
        st->late++;
        return;
    }
    st->delivered++;
    st->bytes += bytes;
    if (!st->first_ns)
        st->first_ns = now;
    st->last_ns = now;
    sb_hist_add(&st->latency, now > m->t_ns ? (now - m->t_ns) / 1000 : 0);
    if (++t->got[i] == t->want)
        t->complete++;
}
