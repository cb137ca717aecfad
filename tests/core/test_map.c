#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/map.h"

START_TEST(test_set_get_del)
{
    sh_map_t m = SH_MAP_INIT;
    int a = 1, b = 2;
    ck_assert_ptr_null(sh_map_get(&m, "x"));
    ck_assert_ptr_null(sh_map_set(&m, "x", &a));
    ck_assert_ptr_eq(sh_map_get(&m, "x"), &a);
    ck_assert_ptr_eq(sh_map_set(&m, "x", &b), &a);
    ck_assert_uint_eq(sh_map_count(&m), 1);
    ck_assert_ptr_eq(sh_map_del(&m, "x"), &b);
    ck_assert_ptr_null(sh_map_del(&m, "x"));
    ck_assert_uint_eq(sh_map_count(&m), 0);
    /* Keys are binary-safe with explicit lengths. */
    sh_map_setn(&m, "a\0b", 3, &a);
    ck_assert_ptr_null(sh_map_getn(&m, "a\0c", 3));
    ck_assert_ptr_eq(sh_map_getn(&m, "a\0b", 3), &a);
    sh_map_release(&m);
}
END_TEST

/* Against a simple array model with many inserts and deletes, so backward
 * shift deletion is exercised across wrapped clusters. */
START_TEST(test_churn_matches_model)
{
    enum { N = 4000 };
    sh_map_t m = SH_MAP_INIT;
    static char present[N];
    memset(present, 0, sizeof(present));
    srand(11);
    for (int round = 0; round < 60000; round++) {
        int k = rand() % N;
        char key[16];
        snprintf(key, sizeof(key), "k%d", k);
        if (rand() % 3) {
            sh_map_set(&m, key, (void *)(intptr_t)(k + 1));
            present[k] = 1;
        } else {
            void *v = sh_map_del(&m, key);
            ck_assert_ptr_eq(v, present[k] ? (void *)(intptr_t)(k + 1) : NULL);
            present[k] = 0;
        }
    }
    size_t count = 0;
    for (int k = 0; k < N; k++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", k);
        void *v = sh_map_get(&m, key);
        ck_assert_ptr_eq(v, present[k] ? (void *)(intptr_t)(k + 1) : NULL);
        count += present[k];
    }
    ck_assert_uint_eq(sh_map_count(&m), count);
    sh_map_release(&m);
}
END_TEST

START_TEST(test_iterate_and_remove_sees_each_once)
{
    enum { N = 1000 };
    sh_map_t m = SH_MAP_INIT;
    static int seen[N];
    memset(seen, 0, sizeof(seen));
    for (int k = 0; k < N; k++) {
        char key[16];
        snprintf(key, sizeof(key), "%d", k);
        sh_map_set(&m, key, (void *)(intptr_t)k);
    }
    sh_map_iter_t it;
    sh_map_iter_init(&it, &m);
    sh_map_entry_t *e;
    while ((e = sh_map_iter_next(&it))) {
        int k = (int)(intptr_t)e->value;
        seen[k]++;
        if (k % 2 == 0)
            ck_assert_int_eq((int)(intptr_t)sh_map_iter_remove(&it), k);
    }
    for (int k = 0; k < N; k++)
        ck_assert_int_eq(seen[k], 1);
    ck_assert_uint_eq(sh_map_count(&m), N / 2);
    /* Remove everything through the iterator. */
    sh_map_iter_init(&it, &m);
    size_t removed = 0;
    while ((e = sh_map_iter_next(&it))) {
        sh_map_iter_remove(&it);
        removed++;
    }
    ck_assert_uint_eq(removed, N / 2);
    ck_assert_uint_eq(sh_map_count(&m), 0);
    sh_map_release(&m);
}
END_TEST

/* A map with borrowed keys points at the caller's strings: no copies, a
 * replacing set takes the new pointer, and nothing is freed with it. */
START_TEST(test_borrowed_keys)
{
    sh_map_t m = SH_MAP_INIT;
    sh_map_borrow_keys(&m);
    char *k1 = sh_strdup("session-1");
    char *k1b = sh_strdup("session-1");
    char k2[] = "session-2";
    sh_map_set(&m, k1, k1);
    sh_map_set(&m, k2, k2);
    ck_assert_ptr_eq(sh_map_get(&m, "session-1"), k1);
    sh_map_iter_t it;
    sh_map_iter_init(&it, &m);
    sh_map_entry_t *e;
    int n = 0;
    while ((e = sh_map_iter_next(&it))) {
        ck_assert_ptr_eq(e->key, e->value);
        n++;
    }
    ck_assert_int_eq(n, 2);
    /* Replaced: the entry now lives on the new value's key. */
    ck_assert_ptr_eq(sh_map_set(&m, k1b, k1b), k1);
    free(k1);
    ck_assert_ptr_eq(sh_map_get(&m, "session-1"), k1b);
    sh_map_iter_init(&it, &m);
    while ((e = sh_map_iter_next(&it)))
        ck_assert_ptr_eq(e->key, e->value);
    ck_assert_ptr_eq(sh_map_del(&m, "session-2"), k2);
    sh_map_release(&m);
    ck_assert(m.borrow_keys);
    ck_assert_str_eq(k1b, "session-1");
    free(k1b);
}
END_TEST

START_TEST(test_seed_changes_hash)
{
    uint64_t h1 = sh_hash("room", 4);
    uint8_t key[16] = {1, 2, 3};
    sh_map_seed(key);
    uint64_t h2 = sh_hash("room", 4);
    ck_assert(h1 != h2);
    ck_assert(sh_hash("room", 4) == h2);
}
END_TEST

/* SipHash-1-3 as its paper defines it, words read byte by byte as
 * little-endian numbers: sh_hash must give the same for every length and
 * alignment (it reads whole words). */
#define REF_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define REF_ROUND                                                                                  \
    do {                                                                                           \
        v0 += v1, v1 = REF_ROTL(v1, 13), v1 ^= v0, v0 = REF_ROTL(v0, 32);                          \
        v2 += v3, v3 = REF_ROTL(v3, 16), v3 ^= v2;                                                 \
        v0 += v3, v3 = REF_ROTL(v3, 21), v3 ^= v0;                                                 \
        v2 += v1, v1 = REF_ROTL(v1, 17), v1 ^= v2, v2 = REF_ROTL(v2, 32);                          \
    } while (0)

static uint64_t ref_word(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

static uint64_t ref_siphash13(const uint8_t key[16], const uint8_t *in, size_t n)
{
    uint64_t k0 = ref_word(key, 8), k1 = ref_word(key + 8, 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t m = ref_word(in + i, 8);
        v3 ^= m;
        REF_ROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)n << 56 | ref_word(in + i, n - i);
    v3 ^= b;
    REF_ROUND;
    v0 ^= b;
    v2 ^= 0xff;
    REF_ROUND;
    REF_ROUND;
    REF_ROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

START_TEST(test_hash_is_siphash13)
{
    uint8_t key[16], data[72];
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)(i * 29 + 7);
    for (int i = 0; i < 72; i++)
        data[i] = (uint8_t)(i * 37 + 11);
    sh_map_seed(key);
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n + off <= sizeof(data); n++)
            ck_assert_msg(sh_hash(data + off, n) == ref_siphash13(key, data + off, n),
                          "length %zu at offset %zu", n, off);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("map");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_set_get_del);
    tcase_add_test(tc, test_churn_matches_model);
    tcase_add_test(tc, test_iterate_and_remove_sees_each_once);
    tcase_add_test(tc, test_borrowed_keys);
    tcase_add_test(tc, test_seed_changes_hash);
    tcase_add_test(tc, test_hash_is_siphash13);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
