/* bench/util.c — clock, fatal errors, allocation (see util.h). */
#include "bench/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t sb_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void sb_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(SB_PROG ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

void *sb_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        sb_die("out of memory");
    return p;
}

void *sb_xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (!q)
        sb_die("out of memory");
    return q;
}

char *sb_xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        sb_die("out of memory");
    return d;
}

uint64_t sb_rand_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Du;
}
