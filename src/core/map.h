/* map.h — a string-keyed hash table (values borrowed; keys copied, or
 * borrowed in a map made with sh_map_borrow_keys).
 *
 * Used for sessions by sid, rooms by name, acks by id. Keys can come from
 * peers (room names, sids), so the hash is SipHash-1-3 with a per-process
 * random key, as redis does, to keep hash flooding from turning lookups
 * linear. Open addressing with linear probing and backward-shift deletion:
 * no tombstones, so a table with churn (sessions come and go) stays fast.
 *
 * Iteration order is unspecified. Removing the current entry during
 * iteration with sh_map_iter_remove is allowed; other changes are not.
 *
 * A slot is 24 bytes (keys are shorter than 4 GiB). Tables of sessions and
 * sockets hold an entry per idle connection: there, the key is usually a
 * field of the value itself (a sid), and a map whose keys are borrowed
 * saves a copy per entry.
 */
#ifndef SH_CORE_MAP_H
#define SH_CORE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sh_map_entry {
    const char *key; /* owned unless borrowed; NULL marks an empty slot */
    void *value;
    uint32_t hash;
    uint32_t keylen;
} sh_map_entry_t;

typedef struct sh_map {
    sh_map_entry_t *slots;
    size_t cap; /* power of two, or 0 */
    size_t count;
    bool borrow_keys; /* see sh_map_borrow_keys */
} sh_map_t;

#define SH_MAP_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0, false                                                                          \
    }

/* Makes an empty map keep the caller's key pointers instead of copies:
 * the caller guarantees that each key stays valid and unchanged until its
 * entry is removed, replaced or the map released (a set that replaces a
 * value takes the key pointer it is given). */
void sh_map_borrow_keys(sh_map_t *m);

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
/* Frees the table and the keys it copied (not the values). */
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
