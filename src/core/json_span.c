#include "core/json_span.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "core/utf8.h"

/* Keys remembered for the duplicate check, over all open objects. An
 * object's keys sit above its parent's; a text with more open keys than
 * this is reported unchecked rather than slowed down (the check is
 * quadratic in an object's key count). */
#define KEY_STACK 64

/* The scanner's state apart from its position. The position is passed
 * and returned by value (NULL: the text is refused, the reason in err):
 * held in a register, it costs no load and store at each of the many tests
 * a token takes, which a position kept here would (every store through a
 * pointer may alias it). */
typedef struct scan {
    const char *end;
    int err; /* -EINVAL or -E2BIG once a scan returned NULL */
    sh_json_info_t *info;
    size_t nkeys;
    sh_json_span_t keys[KEY_STACK];
    /* sh_json_validate_array's: where the top array's elements go */
    sh_json_span_t *items;
    size_t max_items, nitems;
    /* sh_json_validate_batch's: the members of the objects at this depth
     * (1: the text is one; 2: elements of the top array), 0 for none */
    int member_depth;
    sh_json_member_t *members;
    size_t max_members, nmembers;
} scan_t;

/* Bytes a string scan must stop at: 1 for the validator ('"', '\\',
 * controls, non-ASCII), 2 also for the cursor ('"', '\\'). Runs of plain
 * bytes then cost one load and test each. */
#define STOP_SCAN   1
#define STOP_CURSOR 2
static const unsigned char string_stops[256] = {
    [0x00 ... 0x1f] = STOP_SCAN,
    ['"'] = STOP_SCAN | STOP_CURSOR,
    ['\\'] = STOP_SCAN | STOP_CURSOR,
    [0x80 ... 0xff] = STOP_SCAN,
};

#ifdef __SSE2__
/* Of the 16 bytes at p, as a bit mask: those a string may stop at, that
 * is '"', '\\', the controls below 0x20 and the bytes above 0x7f. One
 * signed compare finds both of the last two (bytes from 0x80 are
 * negative), so a run of ASCII costs one test per 16 bytes; *high gets
 * the bytes above 0x7f apart, to be told from the real stops only when
 * the mask is not empty. SSE2 is part of every x86-64; other machines
 * use the table alone. */
static inline unsigned sse2_string_stops(const char *p, unsigned *high)
{
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i stop = _mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
        _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)));
    unsigned stops = (unsigned)_mm_movemask_epi8(stop);
    if (stops)
        *high = (unsigned)_mm_movemask_epi8(v);
    return stops;
}
#endif

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Called between every two tokens: the usual case (compact text, the
 * next byte above ' ') returns at the first test. */
static inline const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (unsigned char)*p <= ' ' && is_ws(*p))
        p++;
    return p;
}

static inline const char *fail(scan_t *s, int err)
{
    s->err = err;
    return NULL;
}

/* Each hex digit's value with bit 0x10 set; 0 for any other byte. Four
 * loads and an AND then tell whether \uXXXX is hex, where three range
 * tests per digit did: text in a non-Latin script, which Python's
 * json.dumps sends as nothing but \u escapes, is mostly this. */
#define HEX(c, v) [c] = 0x10 | (v)
static const unsigned char hex_digit[256] = {
    HEX('0', 0),  HEX('1', 1),  HEX('2', 2),  HEX('3', 3),  HEX('4', 4),  HEX('5', 5),
    HEX('6', 6),  HEX('7', 7),  HEX('8', 8),  HEX('9', 9),  HEX('a', 10), HEX('b', 11),
    HEX('c', 12), HEX('d', 13), HEX('e', 14), HEX('f', 15), HEX('A', 10), HEX('B', 11),
    HEX('C', 12), HEX('D', 13), HEX('E', 14), HEX('F', 15),
};
#undef HEX

/* A \u escape at p (the backslash), its low surrogate included; returns
 * the bytes it takes or -1. The code unit's value is not needed, only
 * whether it is a surrogate (D800-DFFF: its first two digits) or U+0000
 * (all four 0), so the usual escape (text in a script other than Latin,
 * which Python's json.dumps sends as nothing but these) costs four loads
 * and a few tests. */
static inline __attribute__((always_inline)) int unicode_escape(scan_t *s, const char *p)
{
    if (s->end - p < 6)
        return -1;
    unsigned a = hex_digit[(unsigned char)p[2]], b = hex_digit[(unsigned char)p[3]],
             c = hex_digit[(unsigned char)p[4]], d = hex_digit[(unsigned char)p[5]];
    if (!(a & b & c & d & 0x10))
        return -1; /* not hex */
    if ((a & 15) != 0xD || (b & 15) < 8) {
        if (!((a | b | c | d) & 15))
            s->info->nul_escape = true;
        return 6;
    }
    if ((b & 15) >= 0xC)
        return -1; /* a low surrogate alone */
    /* A high surrogate: its low one must follow. */
    if (s->end - p < 12 || p[6] != '\\' || p[7] != 'u')
        return -1;
    unsigned e = hex_digit[(unsigned char)p[8]], f = hex_digit[(unsigned char)p[9]],
             g = hex_digit[(unsigned char)p[10]], h = hex_digit[(unsigned char)p[11]];
    if (!(e & f & g & h & 0x10) || (e & 15) != 0xD || (f & 15) < 0xC)
        return -1;
    return 12;
}

#ifdef __SSE2__
/* Two \u escapes at p (the first backslash), neither a surrogate, read
 * in one 16-byte load: returns 12, or 0 to leave them to unicode_escape
 * (a surrogate, anything else, or an error, which it reports). Runs of
 * these are what text in a script other than Latin is on the wire, and
 * the reply so far makes them kilobytes a message: two at a time, a run
 * costs a quarter fewer instructions than one at a time. The caller has
 * checked that 16 bytes are there. */
static inline __attribute__((always_inline)) int sse2_two_unicode_escapes(scan_t *s, const char *p)
{
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i lower = _mm_or_si128(v, _mm_set1_epi8(0x20)); /* 'A'-'F' as 'a'-'f' */
    /* Signed compares: bytes from 0x80 are negative, in neither range. */
    __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                                  _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
    __m128i alpha = _mm_and_si128(_mm_cmpgt_epi8(lower, _mm_set1_epi8('a' - 1)),
                                  _mm_cmplt_epi8(lower, _mm_set1_epi8('f' + 1)));
    unsigned backslash = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
    unsigned u = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('u')));
    unsigned hex = (unsigned)_mm_movemask_epi8(_mm_or_si128(digit, alpha));
    /* Bit i for byte i: \ u h h h h \ u h h h h */
    if (((backslash & 0x041) | (u & 0x082) | (hex & 0xF3C)) != 0xFFF)
        return 0;
    /* A surrogate's first digit is d and its second 8-f. */
    unsigned d = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(lower, _mm_set1_epi8('d')));
    if (d & 0x104) {
        __m128i eight_nine = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('7')),
                                           _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
        unsigned high_half = (unsigned)_mm_movemask_epi8(_mm_or_si128(eight_nine, alpha));
        if (((d & 0x104) << 1) & high_half)
            return 0;
    }
    unsigned zero = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('0')));
    if ((zero & 0x03C) == 0x03C || (zero & 0xF00) == 0xF00)
        s->info->nul_escape = true;
    return 12;
}
#endif

/* A string at p (its opening quote); *escaped tells whether it had a
 * backslash. Returns where it ends, after the closing quote. Inlined into
 * the object loop, which reads two strings (a key, most often a value) per
 * member: a call's saves and restores cost as much as a short string. */
static inline __attribute__((always_inline)) const char *
scan_string_inline(scan_t *s, const char *p, sh_json_span_t *text, bool *escaped)
{
    const char *start = ++p, *end = s->end;
    bool high = false;
    *escaped = false;
    for (;;) {
#ifdef __SSE2__
        /* Sixteen bytes per test while they last: most strings of a
         * message (keys, ids, short text) end within the first load, so
         * a string costs a few instructions rather than a few per byte,
         * and text in other scripts than Latin costs no more. */
        if (end - p >= 16) {
            unsigned high_bytes, stops = sse2_string_stops(p, &high_bytes);
            if (!stops) {
                p += 16;
                continue;
            }
            if (high_bytes) {
                /* UTF-8 is checked once the string's end is known. */
                stops &= ~high_bytes;
                if (!stops) {
                    high = true;
                    p += 16;
                    continue;
                }
                high |= (high_bytes & ((1u << __builtin_ctz(stops)) - 1)) != 0;
            }
            p += __builtin_ctz(stops);
        } else
#endif
        {
            /* Four bytes per test while they last: half the work per byte
             * of the loop below, on the plain runs of a string. */
            while (end - p >= 4 &&
                   !((string_stops[(unsigned char)p[0]] | string_stops[(unsigned char)p[1]] |
                      string_stops[(unsigned char)p[2]] | string_stops[(unsigned char)p[3]]) &
                     STOP_SCAN))
                p += 4;
            while (p < end && !(string_stops[(unsigned char)*p] & STOP_SCAN))
                p++;
        }
        if (p >= end)
            return fail(s, -EINVAL);
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            break;
        if (c < 0x20)
            return fail(s, -EINVAL); /* control characters must be escaped */
        if (c >= 0x80) {
            high = true;
            p++;
        } else if (c == '\\') {
            *escaped = true;
            /* Escapes come in runs (a script other than Latin escaped
             * whole, "\n\n"): read the run here rather than going back
             * to the sixteen-byte test for each. */
            do {
                if (p + 1 >= end)
                    return fail(s, -EINVAL);
                if (p[1] == 'u') {
                    s->info->unicode_escapes = true;
#ifdef __SSE2__
                    /* Two or more in a row: a run (a script other than
                     * Latin), read two at a time; one alone (an accent)
                     * below. Marked unlikely although it is all there is
                     * in such text: so laid out, it adds least to what
                     * Latin text costs (callgrind, a chat event: +1-3%
                     * instructions, no change in time; +3% without the
                     * mark, +5% with the run out of line). */
                    if (__builtin_expect(end - p >= 16 && p[6] == '\\' && p[7] == 'u', 0)) {
                        const char *from = p;
                        int two;
                        while (end - p >= 16 && (two = sse2_two_unicode_escapes(s, p)) != 0)
                            p += two;
                        if (p != from)
                            continue;
                    }
#endif
                    int n = unicode_escape(s, p);
                    if (n < 0)
                        return fail(s, -EINVAL);
                    p += n;
                    continue;
                }
                switch (p[1]) {
                case '"':
                case '\\':
                case '/':
                case 'b':
                case 'f':
                case 'n':
                case 'r':
                case 't':
                    p += 2;
                    break;
                default:
                    return fail(s, -EINVAL);
                }
            } while (p < end && *p == '\\');
        } else {
            p++;
        }
    }
    /* Escapes are ASCII, so the raw span's UTF-8 is the string's. */
    if (high && !sh_utf8_valid(start, (size_t)(p - start)))
        return fail(s, -EINVAL);
    text->p = start;
    text->len = (size_t)(p - start);
    return p + 1;
}

static const char *scan_string(scan_t *s, const char *p, sh_json_span_t *text, bool *escaped)
{
    return scan_string_inline(s, p, text, escaped);
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The number grammar of RFC 8259 section 6. Flags integers past int64
 * (19 digits and up) and reals whose magnitude may pass a double's (more
 * than 10^300, counted from the integer digits and the exponent). */
static const char *scan_number(scan_t *s, const char *p)
{
    const char *end = s->end;
    if (p < end && *p == '-')
        p++;
    if (p >= end || !is_digit(*p))
        return fail(s, -EINVAL);
    long int_digits = 0;
    if (*p == '0') {
        p++;
        int_digits = 1;
    } else {
        const char *first = p;
        while (p < end && is_digit(*p))
            p++;
        int_digits = p - first;
    }
    bool real = false;
    if (p < end && *p == '.') {
        real = true;
        p++;
        if (p >= end || !is_digit(*p))
            return fail(s, -EINVAL);
        while (p < end && is_digit(*p))
            p++;
    }
    long exp = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        real = true;
        p++;
        bool neg = false;
        if (p < end && (*p == '+' || *p == '-'))
            neg = *p++ == '-';
        if (p >= end || !is_digit(*p))
            return fail(s, -EINVAL);
        while (p < end && is_digit(*p)) {
            if (exp < 100000)
                exp = exp * 10 + (*p - '0');
            p++;
        }
        if (neg)
            exp = -exp;
    }
    if (real ? int_digits + exp > 300 : int_digits >= 19)
        s->info->big_numbers = true;
    return p;
}

static const char *scan_literal(scan_t *s, const char *p, const char *word, size_t n)
{
    if ((size_t)(s->end - p) < n || memcmp(p, word, n) != 0)
        return fail(s, -EINVAL);
    return p + n;
}

/* Notes the key of the innermost object (whose keys start at base).
 * *seen is that object's mask of key shapes (a bit per length and first
 * byte): the keys are compared only when one of the same shape came
 * before, which in an object without repeats is almost never, so the
 * check costs a few instructions per key rather than one comparison per
 * pair. A key of length 0 has its closing quote for first byte. */
static void note_key(scan_t *s, size_t base, sh_json_span_t key, bool escaped, uint64_t *seen)
{
    if (escaped) {
        s->info->unchecked_keys = true; /* "\u0061" is "a": raw bytes do not tell */
        return;
    }
    uint64_t bit = 1ull << ((key.len * 7 + (unsigned char)key.p[0]) & 63);
    if (*seen & bit) {
        for (size_t i = base; i < s->nkeys; i++)
            if (s->keys[i].len == key.len && memcmp(s->keys[i].p, key.p, key.len) == 0)
                s->info->duplicate_keys = true;
    }
    *seen |= bit;
    if (s->nkeys < KEY_STACK)
        s->keys[s->nkeys++] = key;
    else
        s->info->unchecked_keys = true;
}

static const char *scan_value(scan_t *s, const char *p, int depth);

static const char *scan_object(scan_t *s, const char *p, int depth)
{
    const char *end = s->end;
    size_t base = s->nkeys;
    uint64_t seen = 0;
    p = skip_ws(p + 1, end); /* after '{' */
    if (p < end && *p == '}')
        return p + 1;
    for (;;) {
        if (p >= end || *p != '"')
            return fail(s, -EINVAL);
        sh_json_span_t key, text;
        bool escaped;
        if (!(p = scan_string_inline(s, p, &key, &escaped)))
            return NULL;
        note_key(s, base, key, escaped, &seen);
        /* Compact text first: ':' right after the key, the value right
         * after it, and a string value read here rather than through
         * scan_value's call and switch. */
        if (p >= end || *p != ':') {
            p = skip_ws(p, end);
            if (p >= end || *p != ':')
                return fail(s, -EINVAL);
        }
        const char *value = skip_ws(p + 1, end);
        if (value < end && *value == '"')
            p = scan_string_inline(s, value, &text, &escaped);
        else
            p = scan_value(s, value, depth);
        if (!p)
            return NULL;
        if (depth == s->member_depth) {
            if (s->nmembers < s->max_members)
                s->members[s->nmembers] = (sh_json_member_t){key, {value, (size_t)(p - value)}};
            s->nmembers++;
        }
        p = skip_ws(p, end);
        if (p >= end)
            return fail(s, -EINVAL);
        if (*p == '}') {
            s->nkeys = base;
            return p + 1;
        }
        if (*p != ',')
            return fail(s, -EINVAL);
        p = skip_ws(p + 1, end);
    }
}

static const char *scan_array(scan_t *s, const char *p, int depth)
{
    const char *end = s->end;
    p = skip_ws(p + 1, end); /* after '[' */
    if (p < end && *p == ']')
        return p + 1;
    for (;;) {
        const char *start = skip_ws(p, end);
        if (!(p = scan_value(s, start, depth)))
            return NULL;
        if (depth == 1) { /* the top array */
            if (s->nitems < s->max_items)
                s->items[s->nitems] = (sh_json_span_t){start, (size_t)(p - start)};
            s->nitems++;
        }
        p = skip_ws(p, end);
        if (p >= end)
            return fail(s, -EINVAL);
        if (*p == ']')
            return p + 1;
        if (*p != ',')
            return fail(s, -EINVAL);
        p++;
    }
}

/* One value at p, whitespace before it skipped by the caller; depth
 * counts the containers around it. */
static const char *scan_value(scan_t *s, const char *p, int depth)
{
    if (p >= s->end)
        return fail(s, -EINVAL);
    sh_json_span_t text;
    bool escaped;
    switch (*p) {
    case '"':
        return scan_string(s, p, &text, &escaped);
    case '{':
        if (depth >= SH_JSON_MAX_DEPTH)
            return fail(s, -E2BIG);
        return scan_object(s, p, depth + 1);
    case '[':
        if (depth >= SH_JSON_MAX_DEPTH)
            return fail(s, -E2BIG);
        return scan_array(s, p, depth + 1);
    case 't':
        return scan_literal(s, p, "true", 4);
    case 'f':
        return scan_literal(s, p, "false", 5);
    case 'n':
        return scan_literal(s, p, "null", 4);
    default:
        return scan_number(s, p);
    }
}

int sh_json_validate(const char *p, size_t len, sh_json_info_t *info)
{
    return sh_json_validate_array(p, len, info, NULL, 0, NULL);
}

int sh_json_validate_array(const char *p, size_t len, sh_json_info_t *info, sh_json_span_t *items,
                           size_t max, size_t *nitems)
{
    return sh_json_validate_batch(p, len, info, items, max, nitems, NULL, 0, NULL);
}

int sh_json_validate_batch(const char *p, size_t len, sh_json_info_t *info, sh_json_span_t *items,
                           size_t max_items, size_t *nitems, sh_json_member_t *members,
                           size_t max_members, size_t *nmembers)
{
    sh_json_info_t ignored;
    if (!info)
        info = &ignored;
    memset(info, 0, sizeof(*info));
    /* Set field by field: an initializer would zero the key stack too,
     * a kilobyte per call, and only the keys below nkeys are ever read. */
    scan_t s;
    s.end = p + len;
    s.err = 0;
    s.info = info;
    s.nkeys = 0;
    s.items = items;
    s.max_items = max_items;
    s.nitems = 0;
    s.member_depth = 0;
    s.members = members;
    s.max_members = max_members;
    s.nmembers = 0;
    const char *first = skip_ws(p, s.end);
    if (nmembers)
        s.member_depth = first < s.end && *first == '{'   ? 1
                         : first < s.end && *first == '[' ? 2
                                                          : 0;
    const char *after = scan_value(&s, first, 0);
    int rc = !after ? s.err : skip_ws(after, s.end) == s.end ? 0 : -EINVAL;
    if (nitems)
        *nitems = s.nitems;
    if (nmembers)
        *nmembers = s.nmembers;
    return rc;
}

bool sh_json_info_plain(const sh_json_info_t *info)
{
    return !info->duplicate_keys && !info->unchecked_keys && !info->nul_escape &&
           !info->big_numbers;
}

/* ---- the cursor: validated text only, so it matches brackets and skips
 * strings without checking anything else ---- */

static const char *cur_ws(const char *p, const char *end)
{
    while (p < end && is_ws(*p))
        p++;
    return p;
}

/* After the string whose opening quote is at p. */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        while (p < end && !(string_stops[(unsigned char)*p] & STOP_CURSOR))
            p++;
        if (p >= end)
            break;
        if (*p == '\\')
            p++;
        else
            return p + 1;
    }
    return end;
}

/* After the value that starts at p. */
static const char *skip_value(const char *p, const char *end)
{
    if (p >= end)
        return end;
    if (*p == '"')
        return skip_string(p, end);
    if (*p == '{' || *p == '[') {
        size_t depth = 0;
        while (p < end) {
            char c = *p;
            if (c == '"') {
                p = skip_string(p, end);
                continue;
            }
            p++;
            if (c == '{' || c == '[')
                depth++;
            else if ((c == '}' || c == ']') && --depth == 0)
                return p;
        }
        return end;
    }
    while (p < end && *p != ',' && *p != ']' && *p != '}' && !is_ws(*p))
        p++;
    return p;
}

static bool begin(sh_json_cursor_t *c, sh_json_span_t v, char open)
{
    const char *end = v.p + v.len, *p = cur_ws(v.p, end);
    if (p >= end || *p != open)
        return false;
    c->p = p + 1;
    c->end = end;
    return true;
}

bool sh_json_object_begin(sh_json_cursor_t *c, sh_json_span_t v)
{
    return begin(c, v, '{');
}

bool sh_json_array_begin(sh_json_cursor_t *c, sh_json_span_t v)
{
    return begin(c, v, '[');
}

bool sh_json_cursor_at_end(const sh_json_cursor_t *c)
{
    const char *p = cur_ws(c->p, c->end);
    return p >= c->end || *p == '}' || *p == ']';
}

/* Past the separator before the next item; false at the closing bracket. */
static bool next_item(sh_json_cursor_t *c)
{
    const char *p = cur_ws(c->p, c->end);
    if (p < c->end && *p == ',')
        p = cur_ws(p + 1, c->end);
    c->p = p;
    return p < c->end && *p != '}' && *p != ']';
}

bool sh_json_object_next(sh_json_cursor_t *c, sh_json_span_t *key, sh_json_span_t *value)
{
    if (!next_item(c) || *c->p != '"')
        return false;
    const char *k = c->p, *after = skip_string(k, c->end);
    key->p = k + 1;
    key->len = after > k + 1 ? (size_t)(after - k - 2) : 0;
    const char *p = cur_ws(after, c->end);
    if (p < c->end && *p == ':')
        p = cur_ws(p + 1, c->end);
    const char *v_end = skip_value(p, c->end);
    value->p = p;
    value->len = (size_t)(v_end - p);
    c->p = v_end;
    return true;
}

bool sh_json_array_next(sh_json_cursor_t *c, sh_json_span_t *value)
{
    if (!next_item(c))
        return false;
    const char *v_end = skip_value(c->p, c->end);
    value->p = c->p;
    value->len = (size_t)(v_end - c->p);
    c->p = v_end;
    return true;
}

bool sh_json_plain_string(sh_json_span_t v, sh_json_span_t *text)
{
    if (v.len < 2 || v.p[0] != '"' || v.p[v.len - 1] != '"' || memchr(v.p, '\\', v.len))
        return false;
    text->p = v.p + 1;
    text->len = v.len - 2;
    return true;
}

bool sh_json_text_plain(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"' || c == '\\')
            return false;
    }
    return true;
}
