#include "core/random.h"

#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

void sh_random_bytes(void *p, size_t n)
{
    if (RAND_bytes(p, (int)n) != 1) {
        fprintf(stderr, "siohubd: fatal: no randomness available\n");
        abort();
    }
}

void sh_random_id(char out[SH_ID_LEN + 1])
{
    unsigned char raw[15];
    unsigned char b64[21];
    sh_random_bytes(raw, sizeof(raw));
    EVP_EncodeBlock(b64, raw, sizeof(raw)); /* 15 bytes -> 20 chars, no padding */
    for (int i = 0; i < SH_ID_LEN; i++) {
        char c = (char)b64[i];
        out[i] = c == '+' ? '-' : c == '/' ? '_' : c;
    }
    out[SH_ID_LEN] = '\0';
}
