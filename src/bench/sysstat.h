/* bench/sysstat.h — what the bench reads of the server and the kernel
 * from /proc: a server's CPU time (utime + stime of /proc/PID/stat) and
 * resident memory (VmRSS of /proc/PID/status), summed over --pid
 * processes, and the kernel's TCP socket memory (the "mem" pages of the
 * TCP line of /proc/net/sockstat, times the page size: every TCP socket
 * on the host, the clients' side included).
 */
#ifndef SB_SYSSTAT_H
#define SB_SYSSTAT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct sb_sample {
    uint64_t t_ns;
    bool have_server;   /* every pid was readable */
    double cpu_s;       /* user + system */
    double sys_s;       /* system alone */
    long long rss_kib;  /* -1: unknown */
    long long sock_kib; /* -1: unknown */
} sb_sample_t;

/* Samples pids[0..n) and the kernel now. */
void sb_sample_take(sb_sample_t *s, const pid_t *pids, unsigned n);
/* This process's CPU time (user + system), or its children's. */
double sb_self_cpu_s(void);
double sb_children_cpu_s(void);

#endif
