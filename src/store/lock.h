/* store/lock.h — periodic jobs that run on one node of the fleet at a time,
 * under a Redis lock (Open WebUI's usage_cleanup_lock and its session
 * cleanup lock).
 *
 * Three times per ttl (and at least every interval) the runner either
 * takes the lock (SET key owner NX PX ttl) or, when it holds it, renews it
 * with a Lua script that extends the expiry only if the value is still
 * ours; the job runs every interval, and only right after a successful
 * take or renew. A holder that dies hands the job to another node within
 * ttl plus a tick. A node that fails to renew (it lost the lock, or Redis
 * is away) stops running the job and keeps trying to take it: unlike Open
 * WebUI's loop, the job never stops for good.
 *
 * Holding is bounded by time too: a take or renewal keeps the lock ours
 * for the ttl (less a twentieth) counted from when it was sent, which ends
 * before Redis can expire the key. A holder whose renewals go unanswered
 * (a stalled connection) stops believing it holds the lock then, so two
 * nodes never both do.
 *
 * Without Redis (one process) the runner simply runs the job every interval.
 * Free releases the lock (a script that deletes it only if still ours).
 */
#ifndef SH_STORE_LOCK_H
#define SH_STORE_LOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "loop/loop.h"

struct sh_redis;
typedef struct sh_leader sh_leader_t;

typedef void (*sh_leader_job_cb)(void *data);

typedef struct sh_leader_stats {
    uint64_t acquired; /* times the lock was taken */
    uint64_t lost;     /* times a renewal found it gone or failed */
    uint64_t runs;     /* job runs */
} sh_leader_stats_t;

/* redis NULL: no lock, the job runs every interval. owner identifies this
 * node (the lock's value). */
sh_leader_t *sh_leader_new(sh_loop_t *loop, struct sh_redis *redis, const char *key,
                           const char *owner, uint64_t ttl_ms, uint64_t interval_ms,
                           sh_leader_job_cb job, void *data);
void sh_leader_free(sh_leader_t *l);
/* Whether this node holds the lock now (always true without Redis). */
bool sh_leader_held(const sh_leader_t *l);
const sh_leader_stats_t *sh_leader_stats(const sh_leader_t *l);

#endif
