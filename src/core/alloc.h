/* alloc.h — allocation that never returns NULL.
 *
 * A realtime server cannot do anything useful once malloc fails: every
 * recovery path allocates too. Like redis' zmalloc, these log and abort on
 * out-of-memory, so callers never carry dead NULL checks. Memory use is
 * bounded elsewhere (output queue limits, body limits), not here.
 */
#ifndef SH_CORE_ALLOC_H
#define SH_CORE_ALLOC_H

#include <stddef.h>

void *sh_malloc(size_t n);
void *sh_calloc(size_t count, size_t size);
void *sh_realloc(void *p, size_t n);
char *sh_strdup(const char *s);
char *sh_strndup(const char *s, size_t n);
void *sh_memdup(const void *p, size_t n);

#define sh_new0(type) ((type *)sh_calloc(1, sizeof(type)))

/* For memory a pool keeps for reuse (messages, reply blocks): poisoned
 * under AddressSanitizer while kept, so that a use after the last owner
 * let go is still caught, as it would be after free(). */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define SH_POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define SH_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define SH_POISON(p, n)   ((void)(p), (void)(n))
#define SH_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#endif
