/* random.h — identifiers from the kernel's CSPRNG via libcrypto. */
#ifndef SH_CORE_RANDOM_H
#define SH_CORE_RANDOM_H

#include <stddef.h>
#include <stdint.h>

/* Length of an id from sh_random_id, without the NUL. */
#define SH_ID_LEN 20

/* Writes a fresh id: 15 random bytes as URL-safe base64, 20 chars + NUL,
 * the shape of Node's engine.io session ids (base64id). Aborts if the
 * random source fails: ids must never be guessable. */
void sh_random_id(char out[SH_ID_LEN + 1]);
/* Fills p with n random bytes (same guarantee). */
void sh_random_bytes(void *p, size_t n);

#endif
