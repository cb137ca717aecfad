/* store/beacon.h — this node's liveness key in Redis.
 *
 * "{prefix}:siohub:node:{id}" holds a small JSON description of the node
 * and expires after ttl; the beacon rewrites it every ttl/3. When a node
 * dies (kill -9, a lost machine) its key expires, and the reaper removes
 * the pool entries tagged with its id (store/redis.c), so its sessions
 * leave the pools and presence within about 3 x ttl (the reaper runs
 * every ttl).
 */
#ifndef SH_STORE_BEACON_H
#define SH_STORE_BEACON_H

#include <stdint.h>

#include "loop/loop.h"

struct sh_redis;
typedef struct sh_beacon sh_beacon_t;

sh_beacon_t *sh_beacon_new(sh_loop_t *loop, struct sh_redis *redis, const char *prefix,
                           const char *node_id, uint64_t ttl_ms);
/* Writes the key now (after Redis came back). */
void sh_beacon_kick(sh_beacon_t *b);
/* Stops, and deletes the key: a clean shutdown needs no expiry wait. */
void sh_beacon_free(sh_beacon_t *b);

#endif
