/* bench/sysstat.c — /proc readings (see sysstat.h). */
#include "bench/sysstat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench/util.h"

/* utime and stime of pid in clock ticks; false if unreadable. */
static bool proc_cpu(pid_t pid, unsigned long long *ut, unsigned long long *st)
{
    char path[64], text[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    /* Field 2 (comm) may hold spaces: count the fields after its ')'. */
    char *p = strrchr(text, ')');
    if (!p)
        return false;
    /* state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
     * cmajflt utime stime */
    return sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", ut, st) == 2;
}

/* VmRSS of pid in KiB, or -1. */
static long long proc_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long long kib = -1;
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "VmRSS:", 6)) {
            kib = strtoll(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

/* The TCP "mem" field of /proc/net/sockstat in KiB, or -1. */
static long long sockstat_tcp_kib(void)
{
    FILE *f = fopen("/proc/net/sockstat", "r");
    if (!f)
        return -1;
    char line[512];
    long long kib = -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "TCP:", 4))
            continue;
        const char *m = strstr(line, " mem ");
        if (m) {
            long page = sysconf(_SC_PAGESIZE);
            kib = strtoll(m + 5, NULL, 10) * (page > 0 ? page : 4096) / 1024;
        }
        break;
    }
    fclose(f);
    return kib;
}

void sb_sample_take(sb_sample_t *s, const pid_t *pids, unsigned n)
{
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0)
        hz = 100;
    memset(s, 0, sizeof(*s));
    s->t_ns = sb_now_ns();
    s->have_server = n > 0;
    s->rss_kib = n ? 0 : -1;
    unsigned long long cpu = 0, sys = 0;
    for (unsigned i = 0; i < n; i++) {
        unsigned long long ut, st;
        long long rss = proc_rss_kib(pids[i]);
        if (!proc_cpu(pids[i], &ut, &st) || rss < 0) {
            s->have_server = false;
            s->rss_kib = -1;
            continue;
        }
        cpu += ut + st;
        sys += st;
        if (s->rss_kib >= 0)
            s->rss_kib += rss;
    }
    s->cpu_s = (double)cpu / (double)hz;
    s->sys_s = (double)sys / (double)hz;
    s->sock_kib = sockstat_tcp_kib();
}

static double rusage_s(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

double sb_self_cpu_s(void)
{
    return rusage_s(RUSAGE_SELF);
}

double sb_children_cpu_s(void)
{
    return rusage_s(RUSAGE_CHILDREN);
}
