#include "core/utf8.h"

#include <stdint.h>
#include <string.h>

/* What a lead byte asks of the bytes after it: how many follow (0: the
 * byte cannot start a character), and the range of the first of them; the
 * rest are plain 80-BF. These are the well-formed byte sequences of
 * Unicode 15 Table 3-7, which is RFC 3629 written out: they exclude
 * overlongs (C0, C1, E0 80-9F, F0 80-8F), surrogates (ED A0-BF) and code
 * points above U+10FFFF (F4 90-BF, F5-FF). */
typedef struct lead {
    uint8_t follow, lo, hi;
} lead_t;

static const lead_t leads[256] = {
    [0xC2 ... 0xDF] = {1, 0x80, 0xBF}, [0xE0] = {2, 0xA0, 0xBF},
    [0xE1 ... 0xEC] = {2, 0x80, 0xBF}, [0xED] = {2, 0x80, 0x9F},
    [0xEE ... 0xEF] = {2, 0x80, 0xBF}, [0xF0] = {3, 0x90, 0xBF},
    [0xF1 ... 0xF3] = {3, 0x80, 0xBF}, [0xF4] = {3, 0x80, 0x8F},
};

/* Text on a realtime connection is mostly ASCII (JSON), so runs of ASCII
 * are skipped 8 bytes at a time. Text in other scripts is runs of
 * multi-byte characters, read one character per step without going back
 * to the ASCII test in between: the usual two- and three-byte characters
 * by a range test of the lead and one of the rest, the others (E0, ED,
 * F0-F4, anything malformed) by the table above. That takes Russian text
 * in about half the time a chain of range tests per byte does, Chinese in
 * two thirds. */
bool sh_utf8_valid(const void *p, size_t n)
{
    const uint8_t *s = p, *end = s + n;

    while (s < end) {
        /* ASCII fast path; memcpy keeps the load legal at any alignment. */
        while (end - s >= 8) {
            uint64_t w;
            memcpy(&w, s, sizeof(w));
            if (w & UINT64_C(0x8080808080808080))
                break;
            s += 8;
        }
        while (s < end && *s < 0x80)
            s++;
        while (s < end && *s >= 0x80) {
            /* The usual characters take no table: two bytes (Latin
             * accents, Greek, Cyrillic, Hebrew, Arabic: U+0080-07FF), and
             * three with a lead of no edge case and two plain
             * continuation bytes, tested at once (most of CJK:
             * U+1000-CFFF, E000-FFFF). */
            if ((uint8_t)(*s - 0xC2) < 0x1E && end - s >= 2 && (s[1] & 0xC0) == 0x80) {
                s += 2;
                continue;
            }
            if (end - s >= 3 && (uint8_t)(*s - 0xE1) < 0x0F && *s != 0xED) {
                uint16_t t;
                memcpy(&t, s + 1, sizeof(t));
                if ((t & 0xC0C0) != 0x8080)
                    return false;
                s += 3;
                continue;
            }
            lead_t l = leads[*s];
            if (!l.follow || end - s <= l.follow)
                return false; /* not a lead byte, or a truncated sequence */
            if (s[1] < l.lo || s[1] > l.hi)
                return false;
            if (l.follow >= 2 && (s[2] & 0xC0) != 0x80)
                return false;
            if (l.follow == 3 && (s[3] & 0xC0) != 0x80)
                return false;
            s += l.follow + 1;
        }
    }
    return true;
}
