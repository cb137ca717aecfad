/* bench/ctl.h — the control channel between the parent and each worker
 * process: a socketpair carrying framed messages {u32 type, u32 length,
 * payload}. Both ends are processes of the same binary (fork), so
 * payloads are plain structs.
 */
#ifndef SB_CTL_H
#define SB_CTL_H

#include <stddef.h>
#include <stdint.h>

#include "bench/loop.h"

enum {
    SB_CTL_READY = 1,     /* worker -> parent: sb_stats_t after connecting its clients */
    SB_CTL_BEGIN,         /* parent -> worker: open a window (scenario payload) */
    SB_CTL_BEGUN,         /* worker -> parent: the window is open */
    SB_CTL_END,           /* parent -> worker: close the window (scenario payload) */
    SB_CTL_STATS,         /* worker -> parent: sb_stats_t of the window */
    SB_CTL_QUIT,          /* parent -> worker: close everything and exit */
    SB_CTL_SCENARIO = 100 /* and up: the scenario's own messages, either way */
};

#define SB_CTL_MAX (64u * 1024 * 1024)

/* Queues one message on c and flushes. */
void sb_ctl_send(sb_conn_t *c, uint32_t type, const void *p, size_t n);

typedef void (*sb_ctl_cb)(void *arg, uint32_t type, const char *p, size_t n);
/* Calls fn for each whole message in p[0..n); returns the bytes used, or
 * (size_t)-1 for a malformed frame. fn's p may be unaligned: memcpy. */
size_t sb_ctl_parse(const char *p, size_t n, sb_ctl_cb fn, void *arg);

#endif
