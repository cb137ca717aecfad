#include "core/utf8.h"

#include <stdint.h>
#include <string.h>

/* Text on a realtime connection is mostly ASCII (JSON), so runs of ASCII
 * are skipped 8 bytes at a time; everything else goes through the
 * well-formed byte sequences of Unicode 15 Table 3-7, which is RFC 3629
 * written out: it excludes overlongs (C0, C1, E0 80-9F, F0 80-8F),
 * surrogates (ED A0-BF) and code points above U+10FFFF (F4 90-BF, F5-FF). */
bool sh_utf8_valid(const void *p, size_t n)
{
    const uint8_t *s = p;
    size_t i = 0;

    while (i < n) {
        /* ASCII fast path; memcpy keeps the load legal at any alignment. */
        while (n - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, sizeof(w));
            if (w & UINT64_C(0x8080808080808080))
                break;
            i += 8;
        }
        if (i >= n)
            break;
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        /* lo/hi bound the second byte; the rest are plain 80-BF. */
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0; /* below: overlong */
            else if (c == 0xED)
                hi = 0x9F; /* above: surrogates D800-DFFF */
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90; /* below: overlong */
            else if (c == 0xF4)
                hi = 0x8F; /* above: beyond U+10FFFF */
        } else {
            return false; /* 80-C1 (continuation or overlong lead), F5-FF */
        }
        if (n - i - 1 < need)
            return false; /* truncated sequence */
        if (s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t k = 2; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
        }
        i += need + 1;
    }
    return true;
}
