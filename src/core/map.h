/* map.h — a string-keyed hash table (keys copied, values borrowed).
 *
 * Used for sessions by sid, rooms by name, acks by id. Keys can come from
 * peers (room names, sids), so the hash is SipHash-1-3 with a per-process
 * random key, as redis does, to keep hash flooding from turning lookups
 * linear. Open addressing with linear probing and backward-shift deletion:
 * no tombstones, so a table with churn (sessions come and go) stays fast.
 *
 * Iteration order is unspecified. Removing the current entry during
 * iteration with sh_map_iter_remove is allowed; other changes are not.
 */
#ifndef SH_CORE_MAP_H
#define SH_CORE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sh_map_entry {
    char *key; /* owned; NULL marks an empty slot */
    size_t keylen;
    uint64_t hash;
    void *value;
} sh_map_entry_t;

typedef struct sh_map {
    sh_map_entry_t *slots;
    size_t cap; /* power of two, or 0 */
    size_t count;
} sh_map_t;

#define SH_MAP_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* Seeds the hash for the process (call once at start-up; tests may skip it
 * and get a fixed key). */
void sh_map_seed(const uint8_t key[16]);

void *sh_map_getn(const sh_map_t *m, const char *key, size_t keylen);
static inline void *sh_map_get(const sh_map_t *m, const char *key);
/* Inserts or replaces; returns the previous value or NULL. */
void *sh_map_setn(sh_map_t *m, const char *key, size_t keylen, void *value);
void *sh_map_set(sh_map_t *m, const char *key, void *value);
/* Removes key; returns its value, or NULL when absent. */
void *sh_map_deln(sh_map_t *m, const char *key, size_t keylen);
void *sh_map_del(sh_map_t *m, const char *key);
/* Frees the table and the keys (not the values). */
void sh_map_release(sh_map_t *m);

static inline size_t sh_map_count(const sh_map_t *m)
{
    return m->count;
}

typedef struct sh_map_iter {
    sh_map_t *map;
    size_t start; /* an empty slot: iteration goes once around from it */
    size_t step;  /* slots visited so far */
    size_t cur;   /* index of the entry last returned */
    bool removed;
} sh_map_iter_t;

void sh_map_iter_init(sh_map_iter_t *it, sh_map_t *m);
/* Next entry (borrowed), or NULL at the end. */
sh_map_entry_t *sh_map_iter_next(sh_map_iter_t *it);
/* Removes the entry last returned by sh_map_iter_next; returns its value. */
void *sh_map_iter_remove(sh_map_iter_t *it);

/* SipHash-1-3 of p[0..n) with the process key. */
uint64_t sh_hash(const void *p, size_t n);

#include <string.h>
static inline void *sh_map_get(const sh_map_t *m, const char *key)
{
    return sh_map_getn(m, key, strlen(key));
}

#endif
