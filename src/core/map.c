#include "core/map.h"

#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

/* The process key; the fixed default keeps unit tests deterministic. */
static uint8_t hash_key[16] = {0x73, 0x69, 0x6f, 0x68, 0x75, 0x62, 0x2d, 0x6d,
                               0x61, 0x70, 0x2d, 0x6b, 0x65, 0x79, 0x21, 0x21};

void sh_map_seed(const uint8_t key[16])
{
    memcpy(hash_key, key, 16);
}

/* ---- SipHash-1-3 (Aumasson & Bernstein), as used by redis' dict ---- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

/* Eight bytes, little-endian, as SipHash reads them: one load (memcpy
 * and le64toh compile to a mov on x86-64). The byte loop this replaces
 * was not merged into one by GCC 12 (-O2): ~48 instructions a word, most
 * of a room lookup's ~300 (callgrind, the chat bench via Redis). */
static uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return le64toh(v);
}

uint64_t sh_hash(const void *data, size_t n)
{
    const uint8_t *in = data;
    uint64_t k0 = load64(hash_key), k1 = load64(hash_key + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
    uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
    uint64_t v3 = 0x7465646279746573ULL ^ k1;
    const uint8_t *end = in + n - (n % 8);
    uint64_t b = ((uint64_t)n) << 56;
    for (; in != end; in += 8) {
        uint64_t m = load64(in);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    switch (n & 7) {
    case 7:
        b |= ((uint64_t)in[6]) << 48;
        /* fall through */
    case 6:
        b |= ((uint64_t)in[5]) << 40;
        /* fall through */
    case 5:
        b |= ((uint64_t)in[4]) << 32;
        /* fall through */
    case 4:
        b |= ((uint64_t)in[3]) << 24;
        /* fall through */
    case 3:
        b |= ((uint64_t)in[2]) << 16;
        /* fall through */
    case 2:
        b |= ((uint64_t)in[1]) << 8;
        /* fall through */
    case 1:
        b |= ((uint64_t)in[0]);
        break;
    case 0:
        break;
    }
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- open addressing, linear probing, backward-shift deletion ---- */

void sh_map_borrow_keys(sh_map_t *m)
{
    m->borrow_keys = true;
}

/* The hash a slot keeps: 32 bits index any table that fits in memory. */
static uint32_t hash32(const char *key, size_t keylen)
{
    return (uint32_t)sh_hash(key, keylen);
}

static void free_key(const sh_map_t *m, const char *key)
{
    if (!m->borrow_keys)
        free((char *)key);
}

static size_t find_slot(const sh_map_t *m, const char *key, size_t keylen, uint32_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const sh_map_entry_t *e = &m->slots[i];
        if (!e->key)
            return i;
        if (e->hash == h && e->keylen == keylen && memcmp(e->key, key, keylen) == 0)
            return i;
    }
}

static void resize(sh_map_t *m, size_t cap)
{
    sh_map_entry_t *old = m->slots;
    size_t oldcap = m->cap;
    m->slots = sh_calloc(cap, sizeof(*m->slots));
    m->cap = cap;
    for (size_t i = 0; i < oldcap; i++) {
        if (!old[i].key)
            continue;
        size_t j = find_slot(m, old[i].key, old[i].keylen, old[i].hash);
        m->slots[j] = old[i];
    }
    free(old);
}

void *sh_map_getn(const sh_map_t *m, const char *key, size_t keylen)
{
    if (!m->count)
        return NULL;
    size_t i = find_slot(m, key, keylen, hash32(key, keylen));
    return m->slots[i].key ? m->slots[i].value : NULL;
}

void *sh_map_setn(sh_map_t *m, const char *key, size_t keylen, void *value)
{
    /* Keep the load at most 3/4 so probes stay short and an empty slot
     * always exists (iteration relies on it). */
    if ((m->count + 1) * 4 > m->cap * 3)
        resize(m, m->cap ? m->cap * 2 : 16);
    uint32_t h = hash32(key, keylen);
    size_t i = find_slot(m, key, keylen, h);
    sh_map_entry_t *e = &m->slots[i];
    if (e->key) {
        void *prev = e->value;
        e->value = value;
        if (m->borrow_keys)
            e->key = key; /* the new value's, valid as long as it is */
        return prev;
    }
    e->key = m->borrow_keys ? key : sh_strndup(key, keylen);
    e->keylen = (uint32_t)keylen;
    e->hash = h;
    e->value = value;
    m->count++;
    return NULL;
}

void *sh_map_set(sh_map_t *m, const char *key, void *value)
{
    return sh_map_setn(m, key, strlen(key), value);
}

/* Empties slot i and shifts later members of its cluster back so every
 * entry stays reachable from its home slot without tombstones. */
static void remove_at(sh_map_t *m, size_t i)
{
    size_t mask = m->cap - 1;
    free_key(m, m->slots[i].key);
    m->slots[i].key = NULL;
    m->count--;
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = m->slots[j].hash & mask;
        /* Move j into the hole unless its home lies cyclically in (hole, j]. */
        bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (stays)
            continue;
        m->slots[hole] = m->slots[j];
        m->slots[j].key = NULL;
        hole = j;
    }
}

void *sh_map_deln(sh_map_t *m, const char *key, size_t keylen)
{
    if (!m->count)
        return NULL;
    size_t i = find_slot(m, key, keylen, hash32(key, keylen));
    if (!m->slots[i].key)
        return NULL;
    void *value = m->slots[i].value;
    remove_at(m, i);
    return value;
}

void *sh_map_del(sh_map_t *m, const char *key)
{
    return sh_map_deln(m, key, strlen(key));
}

void sh_map_release(sh_map_t *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free_key(m, m->slots[i].key);
    free(m->slots);
    bool borrow = m->borrow_keys;
    memset(m, 0, sizeof(*m));
    m->borrow_keys = borrow;
}

/* Iteration starts just after an empty slot and goes once around. Backward
 * shifts only move entries within a cluster toward the slot being removed,
 * which is the iterator's current slot; entries already visited sit before
 * it in the same cluster and never move, so nothing is seen twice. */
void sh_map_iter_init(sh_map_iter_t *it, sh_map_t *m)
{
    it->map = m;
    it->step = 0;
    it->removed = false;
    it->start = 0;
    it->cur = 0;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].key) {
            it->start = i;
            break;
        }
    }
}

sh_map_entry_t *sh_map_iter_next(sh_map_iter_t *it)
{
    sh_map_t *m = it->map;
    if (!m->count && !it->removed)
        return NULL;
    size_t mask = m->cap ? m->cap - 1 : 0;
    if (it->removed) {
        /* The slot just emptied may hold a shifted successor: look again. */
        it->removed = false;
        if (m->cap && m->slots[it->cur].key)
            return &m->slots[it->cur];
    }
    while (it->step < m->cap) {
        size_t i = (it->start + 1 + it->step) & mask;
        it->step++;
        if (m->slots[i].key) {
            it->cur = i;
            return &m->slots[i];
        }
    }
    return NULL;
}

void *sh_map_iter_remove(sh_map_iter_t *it)
{
    void *value = it->map->slots[it->cur].value;
    remove_at(it->map, it->cur);
    it->removed = true;
    return value;
}
