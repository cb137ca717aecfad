/* resolve.h — host name lookups off the loop thread, for the Redis
 * connections (hiredis 0.14 calls getaddrinfo() synchronously, which can
 * stall the loop for seconds when DNS is slow or down).
 *
 * Each lookup runs getaddrinfo() on a short-lived detached thread that
 * owns everything it touches: its copy of the name and the write end of a
 * pipe. It writes one small record (< PIPE_BUF, so atomically) and exits.
 * The loop side owns only the read end, watched by the loop. Nothing is
 * shared, so cancelling is closing the read end: the thread's late write
 * then fails with EPIPE and it cleans up after itself. The thread runs
 * with every signal blocked (signals stay with the loop's signalfd).
 *
 * Like hiredis, IPv4 is asked for first and IPv6 only when there is no
 * IPv4 address; the first address is the answer. A numeric address is
 * answered without a thread, from a deferred call.
 */
#ifndef SH_REDIS_RESOLVE_H
#define SH_REDIS_RESOLVE_H

#include "loop/loop.h"

typedef struct sh_resolve sh_resolve_t;

/* ip: the numeric address (NULL on failure); error: why it failed (NULL
 * on success). Both borrowed for the call. The lookup is over (and freed)
 * when this runs. */
typedef void (*sh_resolve_cb)(const char *ip, const char *error, void *data);

/* Starts looking host up; cb runs once, later, from the loop (never from
 * inside this call) unless cancelled first. Returns NULL with errno set
 * when no pipe or thread can be made. */
sh_resolve_t *sh_resolve_start(sh_loop_t *loop, const char *host, sh_resolve_cb cb, void *data);
/* Abandons a lookup: cb will not run. NULL is a no-op. */
void sh_resolve_cancel(sh_resolve_t *q);

#endif
