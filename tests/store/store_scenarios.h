/* tests/store/store_scenarios.h — the pool store's contract (store/store.h)
 * as scenarios that every backend must pass, compiled into each backend's
 * test program (test_memory.c, test_redis_store.c).
 *
 * A scenario issues operations, runs the loop until the expected number of
 * callbacks came (a timer stops a test that would hang), and compares the
 * results with the JSON Open WebUI's Python would hold. The program
 * supplies the backend through three hooks (backend_open, backend_close,
 * backend_normalize) and adds its own tests next to the shared ones.
 */
#ifndef SH_TESTS_STORE_SCENARIOS_H
#define SH_TESTS_STORE_SCENARIOS_H

#include <check.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "store/store.h"

enum { MAX_OPS = 64 };

typedef struct fixture fixture_t;

typedef struct rec {
    fixture_t *f;
    int order; /* completion index, -1 until called */
    int calls;
    int status;
    json_t *result; /* a normalized copy of the borrowed result */
} rec_t;

struct fixture {
    sh_loop_t *loop;
    sh_store_t *st;
    sh_timer_t guard;
    bool timed_out;
    bool issuing; /* inside an operation call: a callback now is a bug */
    int issued, calls;
    rec_t recs[MAX_OPS];
    /* Set by backend_open: */
    bool ordered;  /* dicts keep insertion order (checked by exact text) */
    int many;      /* sessions in the load scenario */
    void *backend; /* the program's own state */
};

/* ---- hooks each program defines ---- */

/* Makes f->st on f->loop and sets ordered, many and backend. */
void backend_open(fixture_t *f);
/* Frees what backend_open made, after the store is gone. */
void backend_close(fixture_t *f);
/* Brings a result (a copy the test owns) to the memory backend's form,
 * checking whatever the backend adds (the Redis node tag). */
void backend_normalize(fixture_t *f, json_t *result);

/* ---- the fixture ---- */

fixture_t *fx_new(void);
void fx_free(fixture_t *f);
/* The callback the helpers below pass; data is a rec_t. */
void on_result(int status, json_t *result, void *data);
/* A fresh record to pass as a callback's data. */
rec_t *rec(fixture_t *f);
/* Runs the loop until every issued operation has called back. */
void run(fixture_t *f);

void assert_json(const json_t *got, const char *want_text);
/* Exact text: key and element order too (Python's insertion order). Only
 * for ordered backends: elsewhere it compares as assert_json. */
void assert_text(const fixture_t *f, const json_t *got, const char *want);
void assert_ok(const rec_t *r, const char *want);
json_t *user(const char *id, const char *name);

/* Runs an operation call; asserts it returned 0 without calling back. */
#define OP(f, call)                                                                                \
    do {                                                                                           \
        (f)->issuing = true;                                                                       \
        int rc_ = (call);                                                                          \
        (f)->issuing = false;                                                                      \
        ck_assert_int_eq(rc_, 0);                                                                  \
    } while (0)

/* Operations with on_result and a fresh record. */
rec_t *add(fixture_t *f, const char *sid, const char *uid, int64_t now);
rec_t *rm(fixture_t *f, const char *sid);
rec_t *touch(fixture_t *f, const char *sid, int64_t now);
rec_t *get(fixture_t *f, const char *sid);
rec_t *sessions_of(fixture_t *f, const char *uid);
rec_t *user_ids(fixture_t *f);
rec_t *usage(fixture_t *f, const char *model, const char *sid, int64_t now);
rec_t *models(fixture_t *f);
rec_t *cleanup(fixture_t *f, int64_t now, int64_t timeout);
rec_t *reap(fixture_t *f, int64_t now, int64_t age);
rec_t *snap(fixture_t *f);

#define EMPTY_POOLS "{\"session_pool\":{},\"user_pool\":{},\"usage_pool\":{}}"

/* Adds the shared scenarios to tc. */
void store_scenarios_add(TCase *tc);

#endif
