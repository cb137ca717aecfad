/* core/json_span.h — a strict, allocation-free JSON validator and a cursor
 * over validated text that hands out byte spans of values.
 *
 * Why not jansson: jansson parses into a tree (a malloc per value) and has
 * no zero-copy span API, yet forwarding a backend's JSON to browsers needs
 * only "is this JSON, and where are these members": the bytes themselves
 * can go out as sent. Validation here is RFC 8259 exactly: strings with
 * their escapes (a \u high surrogate must be followed by a \u low one, a low
 * one alone is an error), raw bytes valid UTF-8 (core/utf8.h), no control
 * characters in strings, numbers by the grammar (no 01, 1., -, 1e, +1), the
 * three literals, whitespace only where allowed, nothing after the value,
 * nesting at most SH_JSON_MAX_DEPTH deep.
 *
 * RFC 8259 leaves some things to the reader; sh_json_info_t says which of
 * them a text contains, so a caller with a stricter parser behind it (the
 * API's jansson with JSON_REJECT_DUPLICATES) can hand such texts over:
 * duplicate keys, keys it could not compare, "\u0000", numbers beyond
 * int64 or double.
 *
 * The cursor functions take text that sh_json_validate accepted; on other
 * text they stay in bounds but their spans mean nothing.
 */
#ifndef SH_CORE_JSON_SPAN_H
#define SH_CORE_JSON_SPAN_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define SH_JSON_MAX_DEPTH 512

typedef struct sh_json_span {
    const char *p; /* borrowed: points into the text */
    size_t len;
} sh_json_span_t;

typedef struct sh_json_info {
    bool duplicate_keys; /* an object has a key twice (compared as raw bytes) */
    bool unchecked_keys; /* keys not compared for duplicates: escaped, or too many */
    bool nul_escape;     /* a string holds "\u0000" */
    bool big_numbers;    /* an integer of 19+ digits or a real that may overflow */
    /* A string holds a \u escape: without one, the text is already what
     * sh_json_write_text_utf8 would write, and a copy of it will do. */
    bool unicode_escapes;
} sh_json_info_t;

/* 0 when p[0..len) is one JSON value with optional whitespace around it,
 * -EINVAL when it is not, -E2BIG when nesting passes SH_JSON_MAX_DEPTH.
 * info (may be NULL) is filled in either way (meaningful on 0). */
int sh_json_validate(const char *p, size_t len, sh_json_info_t *info);
/* The same, and when the text is an array, the spans of its first max
 * elements go to items and the count of all of them to *nitems (0 for a
 * text that is not an array): a caller then walks a batch without skipping
 * over each element once more. */
int sh_json_validate_array(const char *p, size_t len, sh_json_info_t *info, sh_json_span_t *items,
                           size_t max, size_t *nitems);

/* An object's member: its key's raw text between the quotes (escapes left
 * as written) and its value's bytes. */
typedef struct sh_json_member {
    sh_json_span_t key, value;
} sh_json_member_t;

/* sh_json_validate_array, and in the same pass the members of the objects
 * a batch is made of — the text itself when it is an object, else each
 * element of the array that is one — to members[0..max_members) in text
 * order, *nmembers counting them all (beyond max_members they are not
 * there). An element's members are those whose key lies inside its span.
 * A caller that needs the members of every item then reads the text once
 * instead of walking each item again with a cursor. */
int sh_json_validate_batch(const char *p, size_t len, sh_json_info_t *info, sh_json_span_t *items,
                           size_t max_items, size_t *nitems, sh_json_member_t *members,
                           size_t max_members, size_t *nmembers);

/* True when info names nothing a strict parser could refuse. */
bool sh_json_info_plain(const sh_json_info_t *info);

/* A cursor over the members of an object or the elements of an array. */
typedef struct sh_json_cursor {
    const char *p, *end;
} sh_json_cursor_t;

/* Starts on the value v (whitespace around it allowed); false when v is not
 * an object (an array for sh_json_array_begin). */
bool sh_json_object_begin(sh_json_cursor_t *c, sh_json_span_t v);
bool sh_json_array_begin(sh_json_cursor_t *c, sh_json_span_t v);
/* The next member: key is its raw text between the quotes (escapes left as
 * written), value the value's bytes. False at the end. */
bool sh_json_object_next(sh_json_cursor_t *c, sh_json_span_t *key, sh_json_span_t *value);
/* The next element's bytes; false at the end. */
bool sh_json_array_next(sh_json_cursor_t *c, sh_json_span_t *value);
/* True when no member or element is left: an empty object or array told
 * without reading through its first item (which may be most of a large
 * message). */
bool sh_json_cursor_at_end(const sh_json_cursor_t *c);

/* The value's text between its quotes when v is a string without escapes
 * (then the raw bytes are the text); false otherwise. */
bool sh_json_plain_string(sh_json_span_t v, sh_json_span_t *text);
/* True when s[0..n) can go between quotes in JSON as it is: no '"', no
 * backslash, no control character (UTF-8 is the caller's to check). Names
 * a writer puts into JSON text without an encoder must pass this. */
bool sh_json_text_plain(const char *s, size_t n);
/* True when the span's bytes equal the NUL-terminated s. Inline: handlers
 * compare every key with a few literals, whose lengths then fold. */
static inline bool sh_json_span_eq(sh_json_span_t span, const char *s)
{
    size_t n = strlen(s);
    return span.len == n && memcmp(span.p, s, n) == 0;
}

#endif
