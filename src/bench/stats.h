/* bench/stats.h — what a worker process counts between two phase marks,
 * sent whole to the parent (same binary, same layout: fork) and added up
 * there. Scenarios fill the fields they measure and leave the rest 0.
 */
#ifndef SB_STATS_H
#define SB_STATS_H

#include <stdint.h>

#include "bench/hist.h"

#define SB_STATS_EXTRA 8

typedef struct sb_stats {
    /* clients */
    uint64_t clients;   /* clients the workers hold */
    uint64_t connected; /* connected now (Socket.IO CONNECT answered, or the upgrade for raw-ws) */
    uint64_t failed;    /* failed to connect */
    uint64_t closed;    /* lost after connecting */
    /* deliveries of published messages */
    uint64_t delivered;  /* in the window, once, in order */
    uint64_t expected;   /* what connected clients should have got */
    uint64_t missing;    /* expected - delivered, per client */
    uint64_t disordered; /* a sequence number at or below the last one seen (repeat or reorder) */
    uint64_t late;       /* from a window already closed */
    uint64_t unexpected; /* messages that are not bench messages */
    uint64_t bytes;      /* message payload bytes delivered */
    uint64_t first_ns, last_ns; /* first and last delivery (sb_now_ns) */
    /* other measures */
    uint64_t handshakes;            /* connect cycles completed */
    uint64_t round_trips;           /* client round trips completed */
    uint64_t sent;                  /* messages clients sent */
    uint64_t errors;                /* protocol errors and other failed checks */
    uint64_t stalled;               /* workers that stopped waiting on a stall */
    uint64_t extra[SB_STATS_EXTRA]; /* the scenario's own counters */
    double cpu_s;                   /* the workers' own CPU time over the window */
    char first_error[200];
    sb_hist_t latency;  /* delivery latency, us */
    sb_hist_t connect;  /* connect or round-trip latency, us */
    sb_hist_t latency2; /* a second kind of delivery (chat: typing), us */
} sb_stats_t;

/* Adds from into into (first_error: the first one kept). */
void sb_stats_merge(sb_stats_t *into, const sb_stats_t *from);
/* Records an error: counts it and keeps its text when it is the first. */
void sb_stats_error(sb_stats_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
