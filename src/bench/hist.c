/* bench/hist.c — latency histogram (see hist.h). */
#include "bench/hist.h"

static unsigned hist_index(uint64_t v)
{
    if (v < 128)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - 6;
    unsigned idx = 128 + (shift - 1) * 64 + (unsigned)((v >> shift) - 64);
    return idx < SB_HIST_BUCKETS ? idx : SB_HIST_BUCKETS - 1;
}

/* The middle of bucket idx. */
static uint64_t hist_value(unsigned idx)
{
    if (idx < 128)
        return idx;
    unsigned shift = (idx - 128) / 64 + 1;
    uint64_t sub = (idx - 128) % 64 + 64;
    return (sub << shift) + ((1ull << shift) >> 1);
}

void sb_hist_add(sb_hist_t *h, uint64_t v)
{
    h->count[hist_index(v)]++;
    h->n++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
}

void sb_hist_merge(sb_hist_t *into, const sb_hist_t *from)
{
    if (!from->n)
        return;
    for (unsigned i = 0; i < SB_HIST_BUCKETS; i++)
        into->count[i] += from->count[i];
    into->n += from->n;
    into->sum += from->sum;
    if (from->max > into->max)
        into->max = from->max;
}

uint64_t sb_hist_pct(const sb_hist_t *h, double pct)
{
    if (!h->n)
        return 0;
    uint64_t want = (uint64_t)((double)h->n * pct / 100.0 + 0.5);
    if (want == 0)
        want = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < SB_HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen >= want) {
            uint64_t v = hist_value(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}
