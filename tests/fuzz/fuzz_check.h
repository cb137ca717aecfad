/* tests/fuzz/fuzz_check.h — the fuzz targets' assertion. A failed check
 * names its file, line and condition on stderr, then aborts, which
 * libFuzzer reports as a crash and saves with the input that caused it. */
#ifndef FUZZ_CHECK_H
#define FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
