/* wake_cost — what sleeping and waking cost on this machine, so that a
 * bench/run report can say why its server CPU figures differ from another
 * machine's.
 *
 * An event-driven server that keeps up sleeps between its events, and each
 * wake-up is charged to it: the timer or interrupt, the switch back in, and
 * on a virtual machine whatever the hypervisor does to halt and resume a
 * vCPU. A write to a socket whose reader sleeps on another core also
 * charges the writer for waking that core. On bare metal these are a few
 * microseconds; on some VMs they are tens, and then a server that is idle
 * most of the time (siohubd at the chat load) pays them on a large part of
 * its CPU, while a saturated one (python-socketio there) pays none. The
 * figures here are the machine's, not any server's.
 *
 * Measured on --cpu (the servers' core in bench/run), the partner pinned to
 * --peer-cpu (the bench's), each the median over the rounds of the CPU time
 * charged to the measuring thread (CLOCK_THREAD_CPUTIME_ID: the kernel's
 * part included, the time asleep not):
 *   syscall_ns      a bare getppid(), back to back (wall time per call);
 *   timer_wake_us   one nanosleep of --gap-us: going idle and waking;
 *   rtt_us          one byte over a loopback TCP pair (TCP_NODELAY) to a
 *                   partner that echoes it, rounds back to back: each
 *                   write wakes the partner, each read waits to be woken;
 *   idle_rtt_us     the same after a --gap-us sleep, so that both cores
 *                   have been idle that long (the sleep not counted).
 * The default gap is the chat scenario's tick (10 ms).
 *
 * Usage: wake_cost [--cpu 0] [--peer-cpu 1] [--gap-us 10000] [--rounds 200]
 * Prints one line: WAKE syscall_ns=.. timer_wake_us=.. rtt_us=..
 * idle_rtt_us=.. (and the options used). Loopback (127.0.0.1) only. Takes
 * about 2 x rounds x gap plus a fraction of a second. Exit 1 with a reason
 * on stderr when something cannot be set up.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { SYSCALLS = 200000, RTT_ROUNDS = 5000 };

static void die(const char *what)
{
    fprintf(stderr, "wake_cost: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) < 0)
        die("sched_setaffinity");
}

/* The calling thread's CPU time, exact to the nanosecond at the moment of
 * the call (getrusage would miss what ran since the last tick). */
static double thread_cpu_us(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
        die("clock_gettime");
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of n samples (sorts them): one round that the hypervisor
 * preempted should not move the figure. */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static void set_nodelay(int fd)
{
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
        die("TCP_NODELAY");
}

/* One byte there and back; 0 on success. */
static int round_trip(int fd)
{
    char byte = 'w';
    if (write(fd, &byte, 1) != 1)
        return -1;
    return read(fd, &byte, 1) == 1 ? 0 : -1;
}

/* The partner: connects, echoes every byte until end of stream. */
static void run_partner(const struct sockaddr_in *addr, int cpu)
{
    pin(cpu);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0)
        die("partner connect");
    set_nodelay(fd);
    char byte;
    while (read(fd, &byte, 1) == 1)
        if (write(fd, &byte, 1) != 1)
            break;
    _exit(0);
}

/* A whole non-negative number, or -1. */
static long parse_count(const char *text)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    return errno || end == text || *end || v < 0 ? -1 : v;
}

static void usage(FILE *out)
{
    fputs("usage: wake_cost [--cpu C] [--peer-cpu C] [--gap-us US] [--rounds N]\n"
          "  --cpu C       core measured (0)\n"
          "  --peer-cpu C  core of the echoing partner (1)\n"
          "  --gap-us US   idle time before each timed wake (10000)\n"
          "  --rounds N    timed wakes of each kind (200)\n"
          "Prints: WAKE syscall_ns=.. timer_wake_us=.. rtt_us=.. idle_rtt_us=..\n",
          out);
}

int main(int argc, char **argv)
{
    int cpu = 0, peer_cpu = 1, rounds = 200;
    long gap_us = 10000;
    static const struct option opts[] = {
        {"cpu", required_argument, NULL, 'c'},    {"peer-cpu", required_argument, NULL, 'p'},
        {"gap-us", required_argument, NULL, 'g'}, {"rounds", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cpu = (int)parse_count(optarg);
            break;
        case 'p':
            peer_cpu = (int)parse_count(optarg);
            break;
        case 'g':
            gap_us = parse_count(optarg);
            break;
        case 'r':
            rounds = optarg && parse_count(optarg) <= 1000000 ? (int)parse_count(optarg) : -1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (rounds < 1 || gap_us < 1 || cpu < 0 || peer_cpu < 0 || optind != argc) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    pin(cpu);

    double t0 = wall_ns();
    for (int i = 0; i < SYSCALLS; i++)
        syscall(SYS_getppid);
    double syscall_ns = (wall_ns() - t0) / SYSCALLS;

    double *samples = malloc(sizeof(double) * (size_t)(rounds > RTT_ROUNDS ? rounds : RTT_ROUNDS));
    if (!samples)
        die("malloc");
    for (int i = 0; i < rounds; i++) {
        double u0 = thread_cpu_us();
        sleep_us(gap_us);
        samples[i] = thread_cpu_us() - u0;
    }
    double timer_wake_us = median(samples, rounds);

    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, len) < 0 || listen(lfd, 1) < 0 ||
        getsockname(lfd, (struct sockaddr *)&addr, &len) < 0)
        die("listen on 127.0.0.1");
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0)
        run_partner(&addr, peer_cpu);
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        die("accept");
    close(lfd);
    set_nodelay(fd);

    int failed = 0;
    for (int i = 0; i < 100 && !failed; i++) /* both sides warm */
        failed = round_trip(fd);
    for (int i = 0; i < RTT_ROUNDS && !failed; i++) {
        double u0 = thread_cpu_us();
        failed = round_trip(fd);
        samples[i] = thread_cpu_us() - u0;
    }
    double rtt_us = failed ? 0 : median(samples, RTT_ROUNDS);
    for (int i = 0; i < rounds && !failed; i++) {
        sleep_us(gap_us);
        double u0 = thread_cpu_us();
        failed = round_trip(fd);
        samples[i] = thread_cpu_us() - u0;
    }
    double idle_rtt_us = failed ? 0 : median(samples, rounds);
    free(samples);
    close(fd);
    int status;
    waitpid(child, &status, 0);
    if (failed) {
        fprintf(stderr, "wake_cost: the round trip over 127.0.0.1 failed\n");
        return 1;
    }
    printf("WAKE syscall_ns=%.0f timer_wake_us=%.1f rtt_us=%.1f idle_rtt_us=%.1f "
           "cpu=%d peer_cpu=%d gap_us=%ld rounds=%d\n",
           syscall_ns, timer_wake_us, rtt_us, idle_rtt_us, cpu, peer_cpu, gap_us, rounds);
    return 0;
}
