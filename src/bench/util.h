/* bench/util.h — what every siohub-bench module needs: the clock, fatal
 * errors and allocation that never returns NULL.
 *
 * siohub-bench links only libc and libcrypto (not libsiohub), so that the
 * same binary measures other servers; these few helpers are its own.
 */
#ifndef SB_UTIL_H
#define SB_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define SB_PROG "siohub-bench"

/* CLOCK_MONOTONIC in nanoseconds: the stamps in published messages use it,
 * so every process on the host reads the same clock. */
uint64_t sb_now_ns(void);

/* Prints "siohub-bench: MESSAGE" on stderr and exits 1 (a run that cannot
 * go on is a failed run, not bad usage). */
void sb_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* calloc / realloc / strdup that exit on failure. */
void *sb_xcalloc(size_t count, size_t size);
void *sb_xrealloc(void *p, size_t size);
char *sb_xstrdup(const char *s);

/* xorshift64*: WebSocket masks and keys need no cryptographic strength
 * against a server we benchmark. *state must not be 0. */
uint64_t sb_rand_next(uint64_t *state);

#endif
