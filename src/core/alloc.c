#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    fprintf(stderr, "siohubd: fatal: out of memory allocating %zu bytes\n", n);
    abort();
}

void *sh_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *sh_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        oom(count * size);
    return p;
}

void *sh_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *sh_strdup(const char *s)
{
    return sh_memdup(s, strlen(s) + 1);
}

char *sh_strndup(const char *s, size_t n)
{
    char *d = sh_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void *sh_memdup(const void *p, size_t n)
{
    void *d = sh_malloc(n);
    if (n)
        memcpy(d, p, n);
    return d;
}
