/* bench/payload.h — the bench message and the checks on its delivery.
 *
 * Every message the bench publishes is one JSON object, padded to the
 * size asked for:
 *     {"seq":S,"pub":P,"t":T,"pad":"xxx..."}
 * S counts the messages of publisher P from 0; T is the CLOCK_MONOTONIC
 * time in ns (sb_now_ns) just before the request carrying it was written.
 * Servers pass it through as an event's data (Socket.IO) or as the
 * message itself (raw-ws); the parser finds the keys anywhere in the text
 * (a Socket.IO server may wrap it, a Python one may add spaces).
 *
 * The tracker checks, per client and per publisher, that sequence numbers
 * only go up (each message at most once, in order) and counts per client
 * what arrived in the current window, so that "got every message" is
 * got == sent. One tracker per worker process; no allocation per message.
 */
#ifndef SB_PAYLOAD_H
#define SB_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench/buf.h"
#include "bench/stats.h"

/* The smallest --size a message can have. */
#define SB_PAYLOAD_MIN 64

typedef struct sb_payload {
    uint64_t seq;
    uint32_t pub;
    uint64_t t_ns;
} sb_payload_t;

/* Appends the message, padded so the object is size bytes (at least what
 * the fields need): with 'x', or when zh with Chinese characters as
 * Python's json.dumps writes them (\uXXXX, six bytes each; 'x' for what
 * is left below six). */
void sb_payload_format(sb_buf_t *out, uint64_t seq, uint32_t pub, uint64_t t_ns, size_t size,
                       bool zh);
/* Reads seq, pub and t from a message text. */
bool sb_payload_parse(const char *p, size_t n, sb_payload_t *m);

#define SB_SEQ_NONE UINT32_MAX

typedef struct sb_tracker {
    unsigned nclients, npubs;
    uint32_t *last;    /* [client * npubs + pub]: last seq seen, SB_SEQ_NONE */
    uint32_t *got;     /* [client]: messages counted in this window */
    uint32_t *base;    /* [pub]: the window's first seq */
    uint64_t want;     /* messages each client should get in this window (0: unknown yet) */
    unsigned complete; /* clients with got == want */
} sb_tracker_t;

void sb_tracker_init(sb_tracker_t *t, unsigned nclients, unsigned npubs);
void sb_tracker_release(sb_tracker_t *t);
/* Opens a window whose messages of publisher p start at base[p]. */
void sb_tracker_begin(sb_tracker_t *t, const uint32_t *base);
/* The window's messages were all sent: count[p] of publisher p. Returns
 * the count each client should have. */
uint64_t sb_tracker_end(sb_tracker_t *t, const uint32_t *count);
/* One message for client i at time now: checks it and counts it into st
 * (delivered, disordered, late, latency, bytes, first_ns/last_ns). */
void sb_tracker_add(sb_tracker_t *t, sb_stats_t *st, unsigned i, const sb_payload_t *m,
                    size_t bytes, uint64_t now);

#endif
