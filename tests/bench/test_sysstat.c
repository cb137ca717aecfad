/* siohub-bench's /proc readings (src/bench/sysstat.c), on which every
 * "server CPU per delivery" and "KiB per connection" figure rests: a child
 * process burns a known amount of its own CPU time and touches a known
 * amount of memory, and the samples taken of it before and after must show
 * them. The child's name holds ") (", which a reader of /proc/PID/stat
 * that looks for the first ')' gets wrong. */
#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/sysstat.h"

#define BURN_S    0.3
#define TOUCH_MIB 64

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void burn(double seconds)
{
    volatile unsigned long x = 0;
    for (double until = cpu_now() + seconds; cpu_now() < until;)
        for (int i = 0; i < 10000; i++)
            x += (unsigned long)i;
}

/* The child: waits for a byte on in, burns BURN_S of CPU and touches
 * TOUCH_MIB, answers on out, then waits to be killed. */
static pid_t start_child(int *go, int *done)
{
    int a[2], b[2];
    ck_assert_int_eq(pipe(a), 0);
    ck_assert_int_eq(pipe(b), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_NAME, "a) b (c", 0, 0, 0);
        char c;
        if (read(a[0], &c, 1) != 1)
            _exit(1);
        burn(BURN_S);
        /* volatile: a malloc'd block written and never read may be
         * optimized away, writes and all. */
        size_t n = (size_t)TOUCH_MIB << 20;
        volatile char *mem = malloc(n);
        for (size_t i = 0; i < n; i += 4096)
            mem[i] = 1;
        if (write(b[1], "x", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(a[0]);
    close(b[1]);
    *go = a[1];
    *done = b[0];
    return pid;
}

START_TEST(test_cpu_and_memory_of_a_process)
{
    int go, done;
    pid_t pid = start_child(&go, &done);
    sb_sample_t before, after, twice;
    sb_sample_take(&before, &pid, 1);
    ck_assert(before.have_server);
    char c = 'g';
    ck_assert_int_eq(write(go, &c, 1), 1);
    ck_assert_int_eq(read(done, &c, 1), 1);
    sb_sample_take(&after, &pid, 1);
    ck_assert(after.have_server);
    double cpu = after.cpu_s - before.cpu_s;
    /* /proc counts in clock ticks (10 ms at USER_HZ 100); the 16,384
     * page faults of the touch add system time (~2 us each on a VM). */
    ck_assert_msg(cpu >= BURN_S - 0.05 && cpu <= BURN_S + 0.25, "%.3f s of CPU for %.1f burnt", cpu,
                  BURN_S);
    ck_assert(after.sys_s >= 0 && after.sys_s <= after.cpu_s);
    long long rss = after.rss_kib - before.rss_kib;
    ck_assert_msg(rss >= (TOUCH_MIB - 4) * 1024 && rss <= (TOUCH_MIB + 16) * 1024,
                  "%lld KiB more resident for %d MiB touched", rss, TOUCH_MIB);
    ck_assert(after.t_ns > before.t_ns);

    /* Several pids are summed. */
    pid_t two[2] = {pid, pid};
    sb_sample_take(&twice, two, 2);
    ck_assert(twice.have_server);
    ck_assert(twice.cpu_s >= 2 * after.cpu_s - 0.02 && twice.cpu_s <= 2 * after.cpu_s + 0.1);
    ck_assert(twice.rss_kib >= 2 * after.rss_kib - 1024 &&
              twice.rss_kib <= 2 * after.rss_kib + 1024);

    /* A process that is gone is said to be unreadable, not zero. */
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    sb_sample_t gone;
    sb_sample_take(&gone, &pid, 1);
    ck_assert(!gone.have_server);
    ck_assert_int_eq(gone.rss_kib, -1);
    close(go);
    close(done);
}
END_TEST

START_TEST(test_kernel_and_self)
{
    sb_sample_t s;
    sb_sample_take(&s, NULL, 0);
    ck_assert(!s.have_server);
    ck_assert_int_eq(s.rss_kib, -1);
    ck_assert_int_ge(s.sock_kib, 0);
    ck_assert_int_gt(s.slab_kib, 0);
    double before = sb_self_cpu_s();
    burn(0.1);
    double spent = sb_self_cpu_s() - before;
    ck_assert_msg(spent >= 0.09 && spent < 0.5, "%.3f s", spent);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bench_sysstat");
    TCase *tc = tcase_create("sysstat");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_cpu_and_memory_of_a_process);
    tcase_add_test(tc, test_kernel_and_self);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
