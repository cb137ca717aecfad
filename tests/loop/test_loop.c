/* Loop tests count callbacks and check the loop ends clean (libuv style). */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loop/loop.h"

typedef struct {
    int fired;
    int order[16];
    int norder;
    sh_timer_t timers[8];
    sh_defer_t defers[4];
    sh_io_t io;
    int fds[2];
    char got[64];
    size_t ngot;
} fixture_t;

static void on_stop_timer(sh_loop_t *loop, sh_timer_t *t)
{
    fixture_t *f = t->data;
    f->fired++;
    sh_loop_stop(loop);
}

static void on_order_timer(sh_loop_t *loop, sh_timer_t *t)
{
    fixture_t *f = t->data;
    f->order[f->norder++] = (int)(t - f->timers);
}

START_TEST(test_timers_fire_in_due_order)
{
    sh_loop_t *loop = sh_loop_new();
    fixture_t f = {0};
    /* Start in scrambled order; equal due times fire first-armed first. */
    sh_timer_start(loop, &f.timers[3], 30, on_order_timer, &f);
    sh_timer_start(loop, &f.timers[1], 10, on_order_timer, &f);
    sh_timer_start(loop, &f.timers[2], 10, on_order_timer, &f);
    sh_timer_start(loop, &f.timers[0], 1, on_order_timer, &f);
    sh_timer_start(loop, &f.timers[4], 20, on_order_timer, &f);
    sh_timer_start(loop, &f.timers[5], 15, on_order_timer, &f);
    sh_timer_stop(loop, &f.timers[5]);
    ck_assert(!sh_timer_active(&f.timers[5]));
    sh_timer_start(loop, &f.timers[7], 40, on_stop_timer, &f);
    ck_assert_int_eq(sh_loop_run(loop), 0);
    ck_assert_int_eq(f.fired, 1);
    ck_assert_int_eq(f.norder, 5);
    int want[] = {0, 1, 2, 4, 3};
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(f.order[i], want[i]);
    sh_loop_free(loop);
}
END_TEST

START_TEST(test_timer_restart_moves_deadline)
{
    sh_loop_t *loop = sh_loop_new();
    fixture_t f = {0};
    uint64_t start = sh_time_ms();
    sh_timer_start(loop, &f.timers[0], 5, on_stop_timer, &f);
    sh_timer_start(loop, &f.timers[0], 50, on_stop_timer, &f);
    sh_loop_run(loop);
    ck_assert_int_eq(f.fired, 1);
    ck_assert_uint_ge(sh_time_ms() - start, 45);
    sh_loop_free(loop);
}
END_TEST

/* Heap stress: many timers, random stops, must fire in order. */
static uint64_t last_due;
static int stress_fired;
static void on_stress(sh_loop_t *loop, sh_timer_t *t)
{
    ck_assert_uint_ge(t->due, last_due);
    last_due = t->due;
    stress_fired++;
}

START_TEST(test_timer_heap_stress)
{
    sh_loop_t *loop = sh_loop_new();
    enum { N = 500 };
    sh_timer_t *ts = calloc(N, sizeof(*ts));
    fixture_t f = {0};
    srand(7);
    int expected = 0;
    for (int i = 0; i < N; i++)
        sh_timer_start(loop, &ts[i], (uint64_t)(rand() % 30), on_stress, NULL);
    for (int i = 0; i < N; i += 3)
        sh_timer_stop(loop, &ts[i]);
    for (int i = 0; i < N; i++)
        expected += sh_timer_active(&ts[i]);
    sh_timer_start(loop, &f.timers[0], 60, on_stop_timer, &f);
    last_due = 0;
    stress_fired = 0;
    sh_loop_run(loop);
    ck_assert_int_eq(stress_fired, expected);
    free(ts);
    sh_loop_free(loop);
}
END_TEST

static void on_defer(sh_loop_t *loop, sh_defer_t *d)
{
    fixture_t *f = d->data;
    int idx = (int)(d - f->defers);
    f->order[f->norder++] = idx;
    if (idx == 0) {
        /* Scheduling an already-pending defer is a no-op; cancelling a
         * later one in the same round stops it from running. */
        sh_defer_schedule(loop, &f->defers[1], on_defer, f);
        sh_defer_cancel(loop, &f->defers[2]);
        sh_defer_schedule(loop, &f->defers[3], on_defer, f);
    }
    if (idx == 3)
        sh_loop_stop(loop);
}

START_TEST(test_deferred_calls_run_once_and_cancel)
{
    sh_loop_t *loop = sh_loop_new();
    fixture_t f = {0};
    sh_defer_schedule(loop, &f.defers[0], on_defer, &f);
    sh_defer_schedule(loop, &f.defers[1], on_defer, &f);
    sh_defer_schedule(loop, &f.defers[2], on_defer, &f);
    sh_defer_schedule(loop, &f.defers[0], on_defer, &f);
    sh_loop_run(loop);
    ck_assert_int_eq(f.norder, 3);
    ck_assert_int_eq(f.order[0], 0);
    ck_assert_int_eq(f.order[1], 1);
    ck_assert_int_eq(f.order[2], 3);
    sh_loop_free(loop);
}
END_TEST

static void on_first_defer(sh_loop_t *loop, sh_defer_t *d)
{
    fixture_t *f = d->data;
    int idx = (int)(d - f->defers);
    f->order[f->norder++] = idx;
    if (idx == 1) {
        /* From a deferred call: ahead of 2, which is still pending in
         * this round, and a second schedule while pending is a no-op. */
        sh_defer_schedule_first(loop, &f->defers[3], on_first_defer, f);
        sh_defer_schedule_first(loop, &f->defers[3], on_first_defer, f);
    }
    if (idx == 2)
        sh_loop_stop(loop);
}

START_TEST(test_deferred_first_runs_ahead)
{
    sh_loop_t *loop = sh_loop_new();
    fixture_t f = {0};
    sh_defer_schedule(loop, &f.defers[1], on_first_defer, &f);
    sh_defer_schedule(loop, &f.defers[2], on_first_defer, &f);
    sh_defer_schedule_first(loop, &f.defers[0], on_first_defer, &f);
    sh_loop_run(loop);
    ck_assert_int_eq(f.norder, 4);
    ck_assert_int_eq(f.order[0], 0);
    ck_assert_int_eq(f.order[1], 1);
    ck_assert_int_eq(f.order[2], 3);
    ck_assert_int_eq(f.order[3], 2);

    /* Alone in an empty list, then cancelled: the list is left empty
     * (its tail too), and a plain schedule after it still runs. */
    f.norder = 0;
    sh_defer_schedule_first(loop, &f.defers[0], on_first_defer, &f);
    sh_defer_cancel(loop, &f.defers[0]);
    sh_defer_schedule(loop, &f.defers[2], on_first_defer, &f);
    sh_loop_run(loop);
    ck_assert_int_eq(f.norder, 1);
    ck_assert_int_eq(f.order[0], 2);
    sh_loop_free(loop);
}
END_TEST

static void on_readable(sh_loop_t *loop, sh_io_t *io, unsigned events)
{
    fixture_t *f = io->data;
    ck_assert(events & SH_IO_READ);
    ssize_t n = read(io->fd, f->got + f->ngot, sizeof(f->got) - f->ngot - 1);
    if (n > 0)
        f->ngot += (size_t)n;
    f->fired++;
    if (f->ngot >= 5) {
        sh_io_stop(loop, io);
        sh_loop_stop(loop);
    }
}

static void on_write_timer(sh_loop_t *loop, sh_timer_t *t)
{
    fixture_t *f = t->data;
    ck_assert_int_eq(write(f->fds[1], "hello", 5), 5);
}

START_TEST(test_io_readable)
{
    sh_loop_t *loop = sh_loop_new();
    fixture_t f = {0};
    ck_assert_int_eq(pipe(f.fds), 0);
    ck_assert_int_eq(sh_io_start(loop, &f.io, f.fds[0], SH_IO_READ, on_readable, &f), 0);
    /* A second watch on the same fd is refused. */
    sh_io_t other = {0};
    ck_assert_int_eq(sh_io_start(loop, &other, f.fds[0], SH_IO_READ, on_readable, &f), -EEXIST);
    sh_timer_start(loop, &f.timers[0], 5, on_write_timer, &f);
    sh_loop_run(loop);
    ck_assert_str_eq(f.got, "hello");
    ck_assert(!f.io.active);
    close(f.fds[0]);
    close(f.fds[1]);
    sh_loop_free(loop);
}
END_TEST

/* Two watches ready in the same batch: the first stops the second, which
 * must then not be called. */
typedef struct {
    sh_io_t a, b;
    int calls_a, calls_b;
} pair_t;

static void on_pair(sh_loop_t *loop, sh_io_t *io, unsigned events)
{
    pair_t *p = io->data;
    if (io == &p->a) {
        p->calls_a++;
        sh_io_stop(loop, &p->b);
    } else {
        p->calls_b++;
        sh_io_stop(loop, &p->a);
    }
    sh_loop_stop(loop);
}

START_TEST(test_stopped_watch_gets_no_stale_event)
{
    sh_loop_t *loop = sh_loop_new();
    pair_t p = {0};
    int x[2], y[2];
    ck_assert_int_eq(pipe(x), 0);
    ck_assert_int_eq(pipe(y), 0);
    ck_assert_int_eq(write(x[1], "1", 1), 1);
    ck_assert_int_eq(write(y[1], "1", 1), 1);
    sh_io_start(loop, &p.a, x[0], SH_IO_READ, on_pair, &p);
    sh_io_start(loop, &p.b, y[0], SH_IO_READ, on_pair, &p);
    sh_loop_run(loop);
    ck_assert_int_eq(p.calls_a + p.calls_b, 1);
    sh_io_stop(loop, &p.a);
    sh_io_stop(loop, &p.b);
    close(x[0]);
    close(x[1]);
    close(y[0]);
    close(y[1]);
    sh_loop_free(loop);
}
END_TEST

static void on_sigterm(sh_loop_t *loop, int signo, void *data)
{
    *(int *)data = signo;
    sh_loop_stop(loop);
}

static void on_raise_timer(sh_loop_t *loop, sh_timer_t *t)
{
    kill(getpid(), SIGUSR1);
}

START_TEST(test_signal_through_loop)
{
    sh_loop_t *loop = sh_loop_new();
    fixture_t f = {0};
    int got = 0;
    ck_assert_int_eq(sh_loop_signal(loop, SIGUSR1, on_sigterm, &got), 0);
    sh_timer_start(loop, &f.timers[0], 1, on_raise_timer, &f);
    sh_loop_run(loop);
    ck_assert_int_eq(got, SIGUSR1);
    sh_loop_free(loop);
}
END_TEST

static int prepare_calls;
static int prepare_zero(sh_loop_t *loop, void *data)
{
    prepare_calls++;
    return 0;
}

START_TEST(test_prepare_hook_bounds_wait)
{
    sh_loop_t *loop = sh_loop_new();
    fixture_t f = {0};
    prepare_calls = 0;
    ck_assert_int_eq(sh_loop_add_prepare(loop, prepare_zero, NULL), 0);
    sh_timer_start(loop, &f.timers[0], 20, on_stop_timer, &f);
    sh_loop_run(loop);
    /* A zero timeout means the loop polled repeatedly until the timer. */
    ck_assert_int_gt(prepare_calls, 1);
    sh_loop_remove_prepare(loop, prepare_zero, NULL);
    sh_loop_free(loop);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("loop");
    TCase *tc = tcase_create("loop");
    tcase_add_test(tc, test_timers_fire_in_due_order);
    tcase_add_test(tc, test_timer_restart_moves_deadline);
    tcase_add_test(tc, test_timer_heap_stress);
    tcase_add_test(tc, test_deferred_calls_run_once_and_cancel);
    tcase_add_test(tc, test_deferred_first_runs_ahead);
    tcase_add_test(tc, test_io_readable);
    tcase_add_test(tc, test_stopped_watch_gets_no_stale_event);
    tcase_add_test(tc, test_signal_through_loop);
    tcase_add_test(tc, test_prepare_hook_bounds_wait);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
