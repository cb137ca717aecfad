/* bench/hist.h — a latency histogram: log-linear buckets (exact below
 * 128, then 64 per power of two: ~1.6% resolution), fixed size, no
 * allocation, so worker processes send it whole and the parent merges by
 * adding counts. Values are in microseconds by convention.
 */
#ifndef SB_HIST_H
#define SB_HIST_H

#include <stdint.h>

#define SB_HIST_BUCKETS 2560

typedef struct sb_hist {
    uint64_t count[SB_HIST_BUCKETS];
    uint64_t n, sum, max;
} sb_hist_t;

void sb_hist_add(sb_hist_t *h, uint64_t v);
void sb_hist_merge(sb_hist_t *into, const sb_hist_t *from);
/* The value at percentile pct (0..100], within the bucket's resolution and
 * never above the maximum; 0 when empty. */
uint64_t sb_hist_pct(const sb_hist_t *h, double pct);

#endif
