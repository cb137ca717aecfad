/* The pool store's contract as scenarios shared by every backend's test
 * program (see store_scenarios.h). Results are compared with the JSON Open
 * WebUI's Python would hold; backends that keep dict order are checked
 * down to the order of keys. */
#include "store_scenarios.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the fixture ---- */

fixture_t *fx_new(void)
{
    fixture_t *f = calloc(1, sizeof(*f));
    ck_assert_ptr_nonnull(f);
    f->loop = sh_loop_new();
    ck_assert_ptr_nonnull(f->loop);
    backend_open(f);
    ck_assert_ptr_nonnull(f->st);
    ck_assert_int_gt(f->many, 0);
    return f;
}

void fx_free(fixture_t *f)
{
    sh_store_free(f->st);
    f->st = NULL;
    backend_close(f);
    sh_loop_free(f->loop);
    for (int i = 0; i < f->issued; i++)
        json_decref(f->recs[i].result);
    free(f);
}

void on_result(int status, json_t *result, void *data)
{
    rec_t *r = data;
    fixture_t *f = r->f;
    ck_assert_msg(!f->issuing, "callback ran inside the call that started it");
    r->calls++;
    r->order = f->calls++;
    r->status = status;
    json_decref(r->result);
    r->result = result ? json_deep_copy(result) : NULL;
    if (r->result)
        backend_normalize(f, r->result);
    if (f->calls == f->issued)
        sh_loop_stop(f->loop);
}

rec_t *rec(fixture_t *f)
{
    ck_assert_int_lt(f->issued, MAX_OPS);
    rec_t *r = &f->recs[f->issued++];
    r->f = f;
    r->order = -1;
    return r;
}

static void on_guard(sh_loop_t *loop, sh_timer_t *t)
{
    fixture_t *f = t->data;
    f->timed_out = true;
    sh_loop_stop(loop);
}

void run(fixture_t *f)
{
    if (f->calls == f->issued)
        return;
    sh_timer_start(f->loop, &f->guard, 5000, on_guard, f);
    ck_assert_int_eq(sh_loop_run(f->loop), 0);
    sh_timer_stop(f->loop, &f->guard);
    ck_assert_msg(!f->timed_out, "timed out: %d of %d callbacks", f->calls, f->issued);
    ck_assert_int_eq(f->calls, f->issued);
}

void assert_json(const json_t *got, const char *want_text)
{
    json_error_t err;
    json_t *want = json_loads(want_text, JSON_DECODE_ANY, &err);
    ck_assert_msg(want != NULL, "bad expected JSON %s: %s", want_text, err.text);
    char *g = got ? json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("(NULL)");
    ck_assert_msg(got && json_equal(got, want), "got %s, want %s", g, want_text);
    free(g);
    json_decref(want);
}

void assert_text(const fixture_t *f, const json_t *got, const char *want)
{
    if (!f->ordered) {
        assert_json(got, want);
        return;
    }
    char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
    ck_assert_str_eq(g, want);
    free(g);
}

void assert_ok(const rec_t *r, const char *want)
{
    ck_assert_int_eq(r->calls, 1);
    ck_assert_int_eq(r->status, 0);
    assert_json(r->result, want);
}

json_t *user(const char *id, const char *name)
{
    return json_pack("{s:s,s:s,s:s,s:s}", "id", id, "name", name, "email", "x@example.com", "role",
                     "user");
}

/* ---- operations ---- */

rec_t *add(fixture_t *f, const char *sid, const char *uid, int64_t now)
{
    json_t *u = user(uid, uid);
    rec_t *r = rec(f);
    OP(f, f->st->ops->session_add(f->st, sid, u, now, on_result, r));
    json_decref(u);
    return r;
}

rec_t *rm(fixture_t *f, const char *sid)
{
    rec_t *r = rec(f);
    OP(f, f->st->ops->session_remove(f->st, sid, on_result, r));
    return r;
}

rec_t *touch(fixture_t *f, const char *sid, int64_t now)
{
    rec_t *r = rec(f);
    OP(f, f->st->ops->session_touch(f->st, sid, now, on_result, r));
    return r;
}

rec_t *get(fixture_t *f, const char *sid)
{
    rec_t *r = rec(f);
    OP(f, f->st->ops->session_get(f->st, sid, on_result, r));
    return r;
}

rec_t *sessions_of(fixture_t *f, const char *uid)
{
    rec_t *r = rec(f);
    OP(f, f->st->ops->user_sessions(f->st, uid, on_result, r));
    return r;
}

rec_t *user_ids(fixture_t *f)
{
    rec_t *r = rec(f);
    OP(f, f->st->ops->user_ids(f->st, on_result, r));
    return r;
}

rec_t *usage(fixture_t *f, const char *model, const char *sid, int64_t now)
{
    rec_t *r = rec(f);
    OP(f, f->st->ops->usage_touch(f->st, model, sid, now, on_result, r));
    return r;
}

rec_t *models(fixture_t *f)
{
    rec_t *r = rec(f);
    OP(f, f->st->ops->models(f->st, on_result, r));
    return r;
}

rec_t *cleanup(fixture_t *f, int64_t now, int64_t timeout)
{
    rec_t *r = rec(f);
    OP(f, f->st->ops->usage_cleanup(f->st, now, timeout, on_result, r));
    return r;
}

rec_t *reap(fixture_t *f, int64_t now, int64_t age)
{
    rec_t *r = rec(f);
    OP(f, f->st->ops->session_reap(f->st, now, age, on_result, r));
    return r;
}

rec_t *snap(fixture_t *f)
{
    rec_t *r = rec(f);
    OP(f, f->st->ops->snapshot(f->st, on_result, r));
    return r;
}

/* ---- scenarios ---- */

START_TEST(test_result_shapes)
{
    fixture_t *f = fx_new();
    rec_t *r_add1 = add(f, "sa", "u1", 100);
    rec_t *r_add2 = add(f, "sb", "u1", 101);
    rec_t *r_t1 = touch(f, "sa", 150);
    rec_t *r_t2 = touch(f, "nope", 150);
    rec_t *r_get1 = get(f, "sa");
    rec_t *r_get2 = get(f, "nope");
    rec_t *r_us1 = sessions_of(f, "u1");
    rec_t *r_us2 = sessions_of(f, "nobody");
    rec_t *r_ids = user_ids(f);
    rec_t *r_u1 = usage(f, "gpt", "sa", 150);
    rec_t *r_u2 = usage(f, "gpt", "sb", 151);
    rec_t *r_models = models(f);
    rec_t *r_clean = cleanup(f, 152, 3);
    rec_t *r_reap = reap(f, 152, 120);
    rec_t *r_rm = rm(f, "sa");
    ck_assert_int_eq(f->calls, 0);
    run(f);
    assert_ok(r_add1, "{\"new_user\":true}");
    assert_ok(r_add2, "{\"new_user\":false}");
    assert_ok(r_t1, "{\"found\":true}");
    assert_ok(r_t2, "{\"found\":false}");
    assert_ok(r_get1, "{\"id\":\"u1\",\"name\":\"u1\",\"email\":\"x@example.com\","
                      "\"role\":\"user\",\"last_seen_at\":150}");
    assert_ok(r_get2, "null");
    assert_ok(r_us1, "[\"sa\",\"sb\"]");
    assert_ok(r_us2, "[]");
    assert_ok(r_ids, "[\"u1\"]");
    assert_ok(r_u1, "{\"new_model\":true}");
    assert_ok(r_u2, "{\"new_model\":false}");
    assert_ok(r_models, "[\"gpt\"]");
    assert_ok(r_clean, "{\"changed\":false}");
    assert_ok(r_reap, "[]");
    assert_ok(r_rm, "{\"user_id\":\"u1\",\"user_gone\":false,\"models_changed\":true}");
    fx_free(f);
}
END_TEST

/* Effects are immediate, results describe the pools when issued, and the
 * caller's user dict is copied, not kept. */
START_TEST(test_effects_immediate_results_as_issued)
{
    fixture_t *f = fx_new();
    json_t *u = user("u1", "Ann");
    rec_t *r_add = rec(f);
    OP(f, f->st->ops->session_add(f->st, "s1", u, 100, on_result, r_add));
    json_object_set_new(u, "name", json_string("changed by caller"));
    json_decref(u);
    rec_t *r_get1 = get(f, "s1");
    touch(f, "s1", 200);
    rec_t *r_get2 = get(f, "s1");
    rec_t *r_snap1 = snap(f);
    rm(f, "s1");
    rec_t *r_get3 = get(f, "s1");
    run(f);
    ck_assert_int_eq(r_add->status, 0);
    assert_ok(r_get1, "{\"id\":\"u1\",\"name\":\"Ann\",\"email\":\"x@example.com\","
                      "\"role\":\"user\",\"last_seen_at\":100}");
    assert_ok(r_get2, "{\"id\":\"u1\",\"name\":\"Ann\",\"email\":\"x@example.com\","
                      "\"role\":\"user\",\"last_seen_at\":200}");
    assert_ok(r_snap1, "{\"session_pool\":{\"s1\":{\"id\":\"u1\",\"name\":\"Ann\","
                       "\"email\":\"x@example.com\",\"role\":\"user\",\"last_seen_at\":200}},"
                       "\"user_pool\":{\"u1\":[\"s1\"]},\"usage_pool\":{}}");
    assert_ok(r_get3, "null");
    fx_free(f);
}
END_TEST

START_TEST(test_callbacks_deferred_in_order)
{
    fixture_t *f = fx_new();
    for (int i = 0; i < 40; i++) {
        char sid[16];
        snprintf(sid, sizeof(sid), "s%d", i % 7);
        switch (i % 5) {
        case 0:
            add(f, sid, i % 2 ? "u1" : "u2", i);
            break;
        case 1:
            usage(f, "m", sid, i);
            break;
        case 2:
            touch(f, sid, i);
            break;
        case 3:
            snap(f);
            break;
        default:
            rm(f, sid);
            break;
        }
    }
    ck_assert_int_eq(f->calls, 0);
    run(f);
    for (int i = 0; i < f->issued; i++) {
        ck_assert_int_eq(f->recs[i].calls, 1);
        ck_assert_int_eq(f->recs[i].order, i);
        ck_assert_int_eq(f->recs[i].status, 0);
    }
    fx_free(f);
}
END_TEST

/* A callback that issues an operation: the new one completes later, never
 * inside its own call (the drain is running at that moment). */
static void on_chain(int status, json_t *result, void *data)
{
    rec_t *r = data;
    fixture_t *f = r->f;
    /* Issue first, so on_result does not see the count complete. */
    if (f->issued < 10) {
        rec_t *next = rec(f);
        OP(f, f->st->ops->session_touch(f->st, "s", 1, on_chain, next));
        ck_assert_int_eq(next->calls, 0);
    }
    on_result(status, result, data);
}

START_TEST(test_callback_may_issue_operations)
{
    fixture_t *f = fx_new();
    rec_t *r = rec(f);
    OP(f, f->st->ops->session_touch(f->st, "s", 1, on_chain, r));
    run(f);
    ck_assert_int_eq(f->issued, 10);
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(f->recs[i].order, i);
        assert_ok(&f->recs[i], "{\"found\":false}");
    }
    fx_free(f);
}
END_TEST

START_TEST(test_two_tabs_of_one_user)
{
    fixture_t *f = fx_new();
    rec_t *a1 = add(f, "tab1", "u1", 10);
    rec_t *a2 = add(f, "tab2", "u1", 11);
    rec_t *a3 = add(f, "other", "u2", 12);
    rec_t *ids1 = user_ids(f);
    rec_t *l1 = rm(f, "tab1");
    rec_t *s1 = sessions_of(f, "u1");
    rec_t *ids2 = user_ids(f);
    rec_t *l2 = rm(f, "tab2");
    rec_t *s2 = sessions_of(f, "u1");
    rec_t *ids3 = user_ids(f);
    rec_t *l3 = rm(f, "tab2");
    run(f);
    assert_ok(a1, "{\"new_user\":true}");
    assert_ok(a2, "{\"new_user\":false}");
    assert_ok(a3, "{\"new_user\":true}");
    assert_text(f, ids1->result, "[\"u1\",\"u2\"]");
    assert_ok(l1, "{\"user_id\":\"u1\",\"user_gone\":false,\"models_changed\":false}");
    assert_ok(s1, "[\"tab2\"]");
    assert_ok(ids2, "[\"u1\",\"u2\"]");
    assert_ok(l2, "{\"user_id\":\"u1\",\"user_gone\":true,\"models_changed\":false}");
    assert_ok(s2, "[]");
    assert_ok(ids3, "[\"u2\"]");
    assert_ok(l3, "{\"user_id\":null,\"user_gone\":false,\"models_changed\":false}");
    fx_free(f);
}
END_TEST

/* The same sid added twice stays once in its user's list; added for
 * another user (a new login on a live socket), it moves. */
START_TEST(test_readd_same_sid)
{
    fixture_t *f = fx_new();
    add(f, "s1", "u1", 1);
    add(f, "s2", "u1", 2);
    rec_t *again = add(f, "s1", "u1", 3);
    rec_t *l1 = sessions_of(f, "u1");
    rec_t *moved = add(f, "s1", "u2", 4);
    rec_t *sn = snap(f);
    rec_t *moved2 = add(f, "s2", "u2", 5);
    rec_t *sn2 = snap(f);
    run(f);
    assert_ok(again, "{\"new_user\":false}");
    assert_ok(l1, "[\"s1\",\"s2\"]");
    assert_ok(moved, "{\"new_user\":true}");
    assert_ok(sn, "{\"session_pool\":{"
                  "\"s1\":{\"id\":\"u2\",\"name\":\"u2\",\"email\":\"x@example.com\","
                  "\"role\":\"user\",\"last_seen_at\":4},"
                  "\"s2\":{\"id\":\"u1\",\"name\":\"u1\",\"email\":\"x@example.com\","
                  "\"role\":\"user\",\"last_seen_at\":2}},"
                  "\"user_pool\":{\"u1\":[\"s2\"],\"u2\":[\"s1\"]},\"usage_pool\":{}}");
    assert_ok(moved2, "{\"new_user\":false}");
    assert_text(f, json_object_get(sn2->result, "user_pool"), "{\"u2\":[\"s1\",\"s2\"]}");
    fx_free(f);
}
END_TEST

static rec_t *add_dict(fixture_t *f, const char *sid, json_t *u, int64_t now)
{
    rec_t *r = rec(f);
    OP(f, f->st->ops->session_add(f->st, sid, u, now, on_result, r));
    return r;
}

/* Tabs of one user: each keeps its own last_seen_at and the dict it was
 * added with (a store may share equal dicts, never changed ones), and a
 * dict changed by the caller after the add changes nothing stored. */
START_TEST(test_tabs_keep_their_own_dicts)
{
    fixture_t *f = fx_new();
    json_t *a = user("u1", "Ann");
    json_t *b = user("u1", "Bea");
    add_dict(f, "t1", a, 1);
    add_dict(f, "t2", a, 2);
    add_dict(f, "t3", b, 3);
    add_dict(f, "t4", a, 4);
    json_object_set_new(a, "name", json_string("Changed"));
    touch(f, "t1", 10);
    rec_t *g1 = get(f, "t1");
    rec_t *g2 = get(f, "t2");
    rec_t *g3 = get(f, "t3");
    rec_t *g4 = get(f, "t4");
    rm(f, "t1");
    rec_t *g2b = get(f, "t2");
    run(f);
    assert_ok(g1, "{\"id\":\"u1\",\"name\":\"Ann\",\"email\":\"x@example.com\","
                  "\"role\":\"user\",\"last_seen_at\":10}");
    assert_ok(g2, "{\"id\":\"u1\",\"name\":\"Ann\",\"email\":\"x@example.com\","
                  "\"role\":\"user\",\"last_seen_at\":2}");
    assert_ok(g3, "{\"id\":\"u1\",\"name\":\"Bea\",\"email\":\"x@example.com\","
                  "\"role\":\"user\",\"last_seen_at\":3}");
    assert_ok(g4, "{\"id\":\"u1\",\"name\":\"Ann\",\"email\":\"x@example.com\","
                  "\"role\":\"user\",\"last_seen_at\":4}");
    assert_ok(g2b, "{\"id\":\"u1\",\"name\":\"Ann\",\"email\":\"x@example.com\","
                   "\"role\":\"user\",\"last_seen_at\":2}");
    json_decref(a);
    json_decref(b);
    fx_free(f);
}
END_TEST

START_TEST(test_usage_from_two_sids)
{
    fixture_t *f = fx_new();
    add(f, "sa", "u1", 0);
    add(f, "sb", "u2", 0);
    rec_t *t1 = usage(f, "llama3", "sa", 10);
    rec_t *t2 = usage(f, "llama3", "sb", 12);
    rec_t *t3 = usage(f, "llama3", "sa", 13);
    rec_t *t4 = usage(f, "qwen", "sa", 13);
    rec_t *sn1 = snap(f);
    rec_t *m1 = models(f);
    rec_t *rm_a = rm(f, "sa");
    rec_t *sn2 = snap(f);
    rec_t *rm_b = rm(f, "sb");
    rec_t *m2 = models(f);
    rec_t *sn3 = snap(f);
    run(f);
    assert_ok(t1, "{\"new_model\":true}");
    assert_ok(t2, "{\"new_model\":false}");
    assert_ok(t3, "{\"new_model\":false}");
    assert_ok(t4, "{\"new_model\":true}");
    /* A re-touch keeps the sid's place (Python's {**old, sid: ...}). */
    assert_text(f, json_object_get(sn1->result, "usage_pool"),
                "{\"llama3\":{\"sa\":{\"updated_at\":13},\"sb\":{\"updated_at\":12}},"
                "\"qwen\":{\"sa\":{\"updated_at\":13}}}");
    assert_text(f, m1->result, "[\"llama3\",\"qwen\"]");
    assert_ok(rm_a, "{\"user_id\":\"u1\",\"user_gone\":true,\"models_changed\":true}");
    assert_ok(sn2, "{\"session_pool\":{\"sb\":{\"id\":\"u2\",\"name\":\"u2\","
                   "\"email\":\"x@example.com\",\"role\":\"user\",\"last_seen_at\":0}},"
                   "\"user_pool\":{\"u2\":[\"sb\"]},"
                   "\"usage_pool\":{\"llama3\":{\"sb\":{\"updated_at\":12}}}}");
    assert_ok(rm_b, "{\"user_id\":\"u2\",\"user_gone\":true,\"models_changed\":true}");
    assert_ok(m2, "[]");
    assert_ok(sn3, EMPTY_POOLS);
    fx_free(f);
}
END_TEST

/* usage_touch does not require a session; session_remove still clears the
 * sid's usage, and reports a user_id of null. */
START_TEST(test_usage_without_session)
{
    fixture_t *f = fx_new();
    usage(f, "m1", "ghost", 5);
    rec_t *r = rm(f, "ghost");
    rec_t *sn = snap(f);
    run(f);
    assert_ok(r, "{\"user_id\":null,\"user_gone\":false,\"models_changed\":true}");
    assert_ok(sn, EMPTY_POOLS);
    fx_free(f);
}
END_TEST

/* Explicit clocks: an entry goes when now - updated_at > timeout, as in
 * Open WebUI's periodic_usage_pool_cleanup. */
START_TEST(test_usage_cleanup_removes_only_stale)
{
    fixture_t *f = fx_new();
    add(f, "sa", "u1", 100);
    usage(f, "m1", "sa", 100);
    usage(f, "m1", "sb", 104);
    usage(f, "m2", "sc", 100);
    usage(f, "m3", "sa", 101);
    rec_t *c1 = cleanup(f, 103, 3);
    rec_t *sn1 = snap(f);
    rec_t *c2 = cleanup(f, 104, 3);
    rec_t *sn2 = snap(f);
    rec_t *m = models(f);
    rec_t *c3 = cleanup(f, 104, 3);
    /* The per-sid index followed the cleanup: sa keeps only m3, and sc
     * (no session) has nothing left. */
    rec_t *r_a = rm(f, "sa");
    rec_t *r_c = rm(f, "sc");
    rec_t *c4 = cleanup(f, 200, 3);
    rec_t *sn3 = snap(f);
    run(f);
    assert_ok(c1, "{\"changed\":false}");
    assert_ok(sn1,
              "{\"session_pool\":{\"sa\":{\"id\":\"u1\",\"name\":\"u1\","
              "\"email\":\"x@example.com\",\"role\":\"user\",\"last_seen_at\":100}},"
              "\"user_pool\":{\"u1\":[\"sa\"]},"
              "\"usage_pool\":{\"m1\":{\"sa\":{\"updated_at\":100},\"sb\":{\"updated_at\":104}},"
              "\"m2\":{\"sc\":{\"updated_at\":100}},\"m3\":{\"sa\":{\"updated_at\":101}}}}");
    assert_ok(c2, "{\"changed\":true}");
    assert_text(f, json_object_get(sn2->result, "usage_pool"),
                "{\"m1\":{\"sb\":{\"updated_at\":104}},\"m3\":{\"sa\":{\"updated_at\":101}}}");
    assert_ok(m, "[\"m1\",\"m3\"]");
    assert_ok(c3, "{\"changed\":false}");
    assert_ok(r_a, "{\"user_id\":\"u1\",\"user_gone\":true,\"models_changed\":true}");
    assert_ok(r_c, "{\"user_id\":null,\"user_gone\":false,\"models_changed\":false}");
    assert_ok(c4, "{\"changed\":true}");
    assert_ok(sn3, EMPTY_POOLS);
    fx_free(f);
}
END_TEST

START_TEST(test_reaper_clears_all_pools)
{
    fixture_t *f = fx_new();
    add(f, "a", "u1", 0);
    add(f, "b", "u1", 100);
    add(f, "c", "u2", 10);
    usage(f, "m1", "a", 0);
    usage(f, "m2", "c", 10);
    usage(f, "m1", "b", 100);
    touch(f, "c", 130);
    rec_t *r1 = reap(f, 130, 120);
    rec_t *sn1 = snap(f);
    rec_t *r2 = reap(f, 250, 120);
    rec_t *sn2 = snap(f);
    rec_t *r3 = reap(f, 1000, 120);
    rec_t *sn3 = snap(f);
    run(f);
    assert_ok(r1, "[{\"sid\":\"a\",\"user_id\":\"u1\"}]");
    assert_text(f, json_object_get(sn1->result, "user_pool"), "{\"u1\":[\"b\"],\"u2\":[\"c\"]}");
    assert_text(f, json_object_get(sn1->result, "usage_pool"),
                "{\"m1\":{\"b\":{\"updated_at\":100}},\"m2\":{\"c\":{\"updated_at\":10}}}");
    /* b is 150 s old and goes; c is exactly 120 s old and stays. */
    assert_ok(r2, "[{\"sid\":\"b\",\"user_id\":\"u1\"}]");
    assert_ok(sn2, "{\"session_pool\":{\"c\":{\"id\":\"u2\",\"name\":\"u2\","
                   "\"email\":\"x@example.com\",\"role\":\"user\",\"last_seen_at\":130}},"
                   "\"user_pool\":{\"u2\":[\"c\"]},"
                   "\"usage_pool\":{\"m2\":{\"c\":{\"updated_at\":10}}}}");
    assert_ok(r3, "[{\"sid\":\"c\",\"user_id\":\"u2\"}]");
    assert_ok(sn3, EMPTY_POOLS);
    fx_free(f);
}
END_TEST

/* What Open WebUI's memory mode holds after two users connect (one with
 * two tabs) and report models: SESSION_POOL[sid] = user.model_dump() plus
 * last_seen_at, USER_POOL[id] = [sids], USAGE_POOL[model][sid] =
 * {"updated_at": t}; dicts in insertion order. */
START_TEST(test_snapshot_matches_python)
{
    fixture_t *f = fx_new();
    json_t *ann = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "id", "8f1c", "email", "ann@example.com",
                            "name", "Ann", "role", "admin", "profile_image_url", "/user.png",
                            "last_active_at", (json_int_t)1700000000);
    json_t *bob = json_pack("{s:s,s:s,s:s,s:s,s:n}", "id", "2b7e", "email", "bob@example.com",
                            "name", "Bob", "role", "user", "info");
    OP(f, f->st->ops->session_add(f->st, "Xq1", ann, 1700000100, on_result, rec(f)));
    OP(f, f->st->ops->session_add(f->st, "Yw2", bob, 1700000101, on_result, rec(f)));
    OP(f, f->st->ops->session_add(f->st, "Ze3", ann, 1700000102, on_result, rec(f)));
    json_decref(ann);
    json_decref(bob);
    usage(f, "gpt-4o", "Ze3", 1700000103);
    usage(f, "llama3:8b", "Yw2", 1700000104);
    usage(f, "gpt-4o", "Yw2", 1700000105);
    rec_t *sn = snap(f);
    run(f);
    const char *want =
        "{\"session_pool\":{"
        "\"Xq1\":{\"id\":\"8f1c\",\"email\":\"ann@example.com\",\"name\":\"Ann\","
        "\"role\":\"admin\",\"profile_image_url\":\"/user.png\","
        "\"last_active_at\":1700000000,\"last_seen_at\":1700000100},"
        "\"Yw2\":{\"id\":\"2b7e\",\"email\":\"bob@example.com\",\"name\":\"Bob\","
        "\"role\":\"user\",\"info\":null,\"last_seen_at\":1700000101},"
        "\"Ze3\":{\"id\":\"8f1c\",\"email\":\"ann@example.com\",\"name\":\"Ann\","
        "\"role\":\"admin\",\"profile_image_url\":\"/user.png\","
        "\"last_active_at\":1700000000,\"last_seen_at\":1700000102}},"
        "\"user_pool\":{\"8f1c\":[\"Xq1\",\"Ze3\"],\"2b7e\":[\"Yw2\"]},"
        "\"usage_pool\":{"
        "\"gpt-4o\":{\"Ze3\":{\"updated_at\":1700000103},\"Yw2\":{\"updated_at\":1700000105}},"
        "\"llama3:8b\":{\"Yw2\":{\"updated_at\":1700000104}}}}";
    assert_ok(sn, want);
    assert_text(f, sn->result, want);
    fx_free(f);
}
END_TEST

START_TEST(test_remove_unknown_sid_is_harmless)
{
    fixture_t *f = fx_new();
    add(f, "s1", "u1", 1);
    usage(f, "m", "s1", 1);
    rec_t *before = snap(f);
    rec_t *r = rm(f, "never-seen");
    rec_t *after = snap(f);
    run(f);
    assert_ok(r, "{\"user_id\":null,\"user_gone\":false,\"models_changed\":false}");
    ck_assert(json_equal(before->result, after->result));
    fx_free(f);
}
END_TEST

START_TEST(test_bad_arguments)
{
    fixture_t *f = fx_new();
    sh_store_t *st = f->st;
    const sh_store_ops_t *o = st->ops;
    json_t *ok = user("u1", "Ann");
    json_t *noid = json_pack("{s:s}", "name", "Ann");
    json_t *intid = json_pack("{s:i}", "id", 7);
    json_t *emptyid = json_pack("{s:s}", "id", "");
    json_t *arr = json_array();
    rec_t never_rec = {.f = f, .order = -1}, *never = &never_rec;
    ck_assert_int_eq(o->session_add(st, NULL, ok, 1, on_result, never), -EINVAL);
    ck_assert_int_eq(o->session_add(st, "", ok, 1, on_result, never), -EINVAL);
    ck_assert_int_eq(o->session_add(st, "\xff\xfe", ok, 1, on_result, never), -EINVAL);
    ck_assert_int_eq(o->session_add(st, "s", NULL, 1, on_result, never), -EINVAL);
    ck_assert_int_eq(o->session_add(st, "s", noid, 1, on_result, never), -EINVAL);
    ck_assert_int_eq(o->session_add(st, "s", intid, 1, on_result, never), -EINVAL);
    ck_assert_int_eq(o->session_add(st, "s", emptyid, 1, on_result, never), -EINVAL);
    ck_assert_int_eq(o->session_add(st, "s", arr, 1, on_result, never), -EINVAL);
    ck_assert_int_eq(o->session_remove(st, NULL, on_result, never), -EINVAL);
    ck_assert_int_eq(o->session_remove(st, "", on_result, never), -EINVAL);
    ck_assert_int_eq(o->session_touch(st, NULL, 1, on_result, never), -EINVAL);
    ck_assert_int_eq(o->session_touch(st, "", 1, on_result, never), -EINVAL);
    ck_assert_int_eq(o->session_get(st, NULL, on_result, never), -EINVAL);
    ck_assert_int_eq(o->session_get(st, "", on_result, never), -EINVAL);
    ck_assert_int_eq(o->user_sessions(st, NULL, on_result, never), -EINVAL);
    ck_assert_int_eq(o->user_sessions(st, "", on_result, never), -EINVAL);
    ck_assert_int_eq(o->usage_touch(st, NULL, "s", 1, on_result, never), -EINVAL);
    ck_assert_int_eq(o->usage_touch(st, "", "s", 1, on_result, never), -EINVAL);
    ck_assert_int_eq(o->usage_touch(st, "m", NULL, 1, on_result, never), -EINVAL);
    ck_assert_int_eq(o->usage_touch(st, "m", "", 1, on_result, never), -EINVAL);
    ck_assert_int_eq(o->usage_touch(st, "m\xc0\x80", "s", 1, on_result, never), -EINVAL);
    json_decref(ok);
    json_decref(noid);
    json_decref(intid);
    json_decref(emptyid);
    json_decref(arr);
    /* Nothing was stored, and none of those calls back. */
    rec_t *sn = snap(f);
    run(f);
    ck_assert_int_eq(never->calls, 0);
    assert_ok(sn, EMPTY_POOLS);
    fx_free(f);
}
END_TEST

START_TEST(test_fire_and_forget)
{
    fixture_t *f = fx_new();
    sh_store_t *st = f->st;
    const sh_store_ops_t *o = st->ops;
    json_t *u = user("u1", "Ann");
    ck_assert_int_eq(o->session_add(st, "s1", u, 1, NULL, NULL), 0);
    ck_assert_int_eq(o->session_add(st, "s2", u, 1, NULL, NULL), 0);
    json_decref(u);
    ck_assert_int_eq(o->session_touch(st, "s1", 9, NULL, NULL), 0);
    ck_assert_int_eq(o->usage_touch(st, "m", "s1", 9, NULL, NULL), 0);
    ck_assert_int_eq(o->usage_touch(st, "m", "s2", 2, NULL, NULL), 0);
    ck_assert_int_eq(o->session_get(st, "s1", NULL, NULL), 0);
    ck_assert_int_eq(o->user_sessions(st, "u1", NULL, NULL), 0);
    ck_assert_int_eq(o->user_ids(st, NULL, NULL), 0);
    ck_assert_int_eq(o->models(st, NULL, NULL), 0);
    ck_assert_int_eq(o->snapshot(st, NULL, NULL), 0);
    ck_assert_int_eq(o->usage_cleanup(st, 8, 3, NULL, NULL), 0);
    ck_assert_int_eq(o->session_reap(st, 125, 120, NULL, NULL), 0);
    ck_assert_int_eq(o->session_remove(st, "nope", NULL, NULL), 0);
    rec_t *sn = snap(f);
    run(f);
    assert_ok(sn, "{\"session_pool\":{\"s1\":{\"id\":\"u1\",\"name\":\"Ann\","
                  "\"email\":\"x@example.com\",\"role\":\"user\",\"last_seen_at\":9}},"
                  "\"user_pool\":{\"u1\":[\"s1\"]},"
                  "\"usage_pool\":{\"m\":{\"s1\":{\"updated_at\":9}}}}");
    fx_free(f);
}
END_TEST

/* ---- teardown: pending callbacks get -ECANCELED, in order, exactly once */

static void on_cancel_try_again(int status, json_t *result, void *data)
{
    rec_t *r = data;
    on_result(status, result, data);
    /* The store is going: a new operation is refused, never called back. */
    ck_assert_int_eq(r->f->st->ops->session_touch(r->f->st, "s", 1, on_result, r), -ESHUTDOWN);
}

static void on_stop(sh_loop_t *loop, sh_timer_t *t)
{
    sh_loop_stop(loop);
}

START_TEST(test_free_cancels_pending)
{
    fixture_t *f = fx_new();
    rec_t *a = add(f, "s1", "u1", 1);
    rec_t *b = rec(f);
    OP(f, f->st->ops->session_get(f->st, "s1", on_cancel_try_again, b));
    rec_t *c = snap(f);
    sh_store_free(f->st);
    f->st = NULL;
    ck_assert_int_eq(f->calls, 3);
    rec_t *all[] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(all[i]->calls, 1);
        ck_assert_int_eq(all[i]->order, i);
        ck_assert_int_eq(all[i]->status, -ECANCELED);
        ck_assert_ptr_null(all[i]->result);
    }
    /* The deferred drain is gone with the store: the loop runs clean. */
    sh_timer_t t = {0};
    sh_timer_start(f->loop, &t, 20, on_stop, NULL);
    ck_assert_int_eq(sh_loop_run(f->loop), 0);
    ck_assert_int_eq(f->calls, 3);
    fx_free(f);
}
END_TEST

static void on_free_store(int status, json_t *result, void *data)
{
    rec_t *r = data;
    on_result(status, result, data);
    sh_store_free(r->f->st);
    r->f->st = NULL;
}

START_TEST(test_free_inside_callback)
{
    fixture_t *f = fx_new();
    rec_t *a = rec(f);
    json_t *u = user("u1", "Ann");
    OP(f, f->st->ops->session_add(f->st, "s1", u, 1, on_free_store, a));
    json_decref(u);
    rec_t *b = snap(f);
    rec_t *c = get(f, "s1");
    run(f);
    assert_ok(a, "{\"new_user\":true}");
    ck_assert_int_eq(b->status, -ECANCELED);
    ck_assert_int_eq(c->status, -ECANCELED);
    ck_assert_int_eq(b->order, 1);
    ck_assert_int_eq(c->order, 2);
    ck_assert_ptr_null(f->st);
    fx_free(f);
}
END_TEST

/* A -ECANCELED callback that frees the store again (an owner tearing down
 * from whatever callback it is in): a no-op, and the others still hear
 * -ECANCELED once each. */
static void on_cancel_free_again(int status, json_t *result, void *data)
{
    rec_t *r = data;
    on_result(status, result, data);
    sh_store_free(r->f->st);
}

START_TEST(test_free_again_from_cancel_callback)
{
    fixture_t *f = fx_new();
    rec_t *a = rec(f);
    OP(f, f->st->ops->session_get(f->st, "s1", on_cancel_free_again, a));
    rec_t *b = rec(f);
    OP(f, f->st->ops->user_ids(f->st, on_cancel_free_again, b));
    rec_t *c = snap(f);
    sh_store_free(f->st);
    f->st = NULL;
    rec_t *all[] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(all[i]->calls, 1);
        ck_assert_int_eq(all[i]->order, i);
        ck_assert_int_eq(all[i]->status, -ECANCELED);
    }
    fx_free(f);
}
END_TEST

/* f->many sessions (10k in memory) of 1,000 users on 10 models, then
 * every one removed (or reaped): the pools end empty, and ASan/LSan find
 * nothing left. */
START_TEST(test_many_sessions)
{
    fixture_t *f = fx_new();
    const int N = f->many;
    ck_assert_int_ge(N, 1000);
    sh_store_t *st = f->st;
    const sh_store_ops_t *o = st->ops;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            char sid[32], uid[32], model[32];
            snprintf(sid, sizeof(sid), "sid-%d", i);
            snprintf(uid, sizeof(uid), "user-%d", i % 1000);
            snprintf(model, sizeof(model), "model-%d", i % 10);
            json_t *u = user(uid, uid);
            ck_assert_int_eq(o->session_add(st, sid, u, i, NULL, NULL), 0);
            json_decref(u);
            ck_assert_int_eq(o->usage_touch(st, model, sid, i, NULL, NULL), 0);
            if (i % 3 == 0)
                ck_assert_int_eq(o->usage_touch(st, "shared", sid, i, NULL, NULL), 0);
        }
        rec_t *ids = user_ids(f);
        rec_t *m = models(f);
        rec_t *one = sessions_of(f, "user-7");
        run(f);
        ck_assert_uint_eq(json_array_size(ids->result), 1000);
        ck_assert_uint_eq(json_array_size(m->result), 11);
        /* user-7's sessions in the order they came: sid-7, sid-1007, ... */
        json_t *want = json_array();
        for (int i = 7; i < N; i += 1000) {
            char sid[32];
            snprintf(sid, sizeof(sid), "sid-%d", i);
            json_array_append_new(want, json_string(sid));
        }
        char *want_text = json_dumps(want, JSON_COMPACT);
        assert_ok(one, want_text);
        free(want_text);
        json_decref(want);
        if (round == 0) {
            /* Newest first, so each user's list is scanned from its end. */
            for (int i = N - 1; i >= 0; i--) {
                char sid[32];
                snprintf(sid, sizeof(sid), "sid-%d", i);
                ck_assert_int_eq(o->session_remove(st, sid, NULL, NULL), 0);
            }
        } else {
            rec_t *r = reap(f, N + 1000, 120);
            run(f);
            ck_assert_uint_eq(json_array_size(r->result), N);
        }
        rec_t *sn = snap(f);
        run(f);
        assert_ok(sn, EMPTY_POOLS);
        for (int i = 0; i < f->issued; i++) {
            json_decref(f->recs[i].result);
            memset(&f->recs[i], 0, sizeof(f->recs[i]));
        }
        f->issued = f->calls = 0;
    }
    fx_free(f);
}
END_TEST

/* Freeing a full store releases everything (LSan checks). */
START_TEST(test_free_full_store)
{
    fixture_t *f = fx_new();
    for (int i = 0; i < 100; i++) {
        char sid[16], uid[16];
        snprintf(sid, sizeof(sid), "s%d", i);
        snprintf(uid, sizeof(uid), "u%d", i % 7);
        json_t *u = user(uid, uid);
        ck_assert_int_eq(f->st->ops->session_add(f->st, sid, u, i, NULL, NULL), 0);
        json_decref(u);
        ck_assert_int_eq(f->st->ops->usage_touch(f->st, uid, sid, i, NULL, NULL), 0);
        ck_assert_int_eq(f->st->ops->usage_touch(f->st, "m", sid, i, NULL, NULL), 0);
    }
    ck_assert_int_eq(f->st->ops->usage_touch(f->st, "m", "no-session", 1, NULL, NULL), 0);
    fx_free(f);
}
END_TEST

void store_scenarios_add(TCase *tc)
{
    tcase_add_test(tc, test_result_shapes);
    tcase_add_test(tc, test_effects_immediate_results_as_issued);
    tcase_add_test(tc, test_callbacks_deferred_in_order);
    tcase_add_test(tc, test_callback_may_issue_operations);
    tcase_add_test(tc, test_two_tabs_of_one_user);
    tcase_add_test(tc, test_readd_same_sid);
    tcase_add_test(tc, test_tabs_keep_their_own_dicts);
    tcase_add_test(tc, test_usage_from_two_sids);
    tcase_add_test(tc, test_usage_without_session);
    tcase_add_test(tc, test_usage_cleanup_removes_only_stale);
    tcase_add_test(tc, test_reaper_clears_all_pools);
    tcase_add_test(tc, test_snapshot_matches_python);
    tcase_add_test(tc, test_remove_unknown_sid_is_harmless);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_fire_and_forget);
    tcase_add_test(tc, test_free_cancels_pending);
    tcase_add_test(tc, test_free_inside_callback);
    tcase_add_test(tc, test_free_again_from_cancel_callback);
    tcase_add_test(tc, test_many_sessions);
    tcase_add_test(tc, test_free_full_store);
}
