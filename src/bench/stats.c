/* bench/stats.c — worker counters (see stats.h). */
#include "bench/stats.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void sb_stats_merge(sb_stats_t *into, const sb_stats_t *from)
{
    into->clients += from->clients;
    into->connected += from->connected;
    into->failed += from->failed;
    into->closed += from->closed;
    into->delivered += from->delivered;
    into->expected += from->expected;
    into->missing += from->missing;
    into->disordered += from->disordered;
    into->late += from->late;
    into->unexpected += from->unexpected;
    into->bytes += from->bytes;
    if (from->first_ns && (!into->first_ns || from->first_ns < into->first_ns))
        into->first_ns = from->first_ns;
    if (from->last_ns > into->last_ns)
        into->last_ns = from->last_ns;
    into->handshakes += from->handshakes;
    into->round_trips += from->round_trips;
    into->sent += from->sent;
    into->errors += from->errors;
    into->stalled += from->stalled;
    for (int i = 0; i < SB_STATS_EXTRA; i++)
        into->extra[i] += from->extra[i];
    into->cpu_s += from->cpu_s;
    if (!into->first_error[0] && from->first_error[0])
        memcpy(into->first_error, from->first_error, sizeof(into->first_error));
    sb_hist_merge(&into->latency, &from->latency);
    sb_hist_merge(&into->connect, &from->connect);
    sb_hist_merge(&into->latency2, &from->latency2);
}

void sb_stats_error(sb_stats_t *s, const char *fmt, ...)
{
    s->errors++;
    if (s->first_error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->first_error, sizeof(s->first_error), fmt, ap);
    va_end(ap);
}
