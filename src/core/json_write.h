/* core/json_write.h — jansson values written as compact JSON text, byte
 * for byte what json_dump_callback(value, ..., JSON_COMPACT |
 * JSON_ENCODE_ANY | JSON_REAL_PRECISION(17)) writes, in a fraction of its
 * time.
 *
 * Why not jansson's own: it reads every string a code point at a time and
 * hands its output over in pieces, ~75 instructions per byte of a
 * chat message's text; a member node of a fleet writes every pickled emit
 * it delivers this way (Open WebUI's chat events carry the whole reply so
 * far, kilobytes each). Here a string is checked once as UTF-8 and copied
 * in runs up to the next byte that needs an escape.
 *
 * The same output as jansson's, on purpose: strings with '"', '\\' and the
 * controls below 0x20 escaped as jansson escapes them ("\n" and the other
 * short forms, else "\u001F" in upper case), everything else as is (UTF-8
 * raw, '/' and U+2028 unescaped); objects in jansson's iteration order;
 * integers as "%" JSON_INTEGER_FORMAT; reals are written by jansson itself
 * (its 17-digit form, rare on this path). Like jansson it refuses (and
 * writes nothing) a string that is not UTF-8; unlike jansson, which
 * writes such a key as it is, it refuses the key too: what goes to a
 * client is UTF-8 (the values here come from checked input, so neither
 * happens but by a bug). Nesting deeper than
 * SH_JSON_WRITE_MAX_DEPTH (far above what the readers here accept) is
 * left to jansson's own writer.
 */
#ifndef SH_CORE_JSON_WRITE_H
#define SH_CORE_JSON_WRITE_H

#include <jansson.h>

#include "core/buf.h"

#define SH_JSON_WRITE_MAX_DEPTH 2048

/* Appends value's text to out; 0, or -EINVAL with out as it was. */
int sh_json_write(sh_buf_t *out, const json_t *value);

/* Copies the JSON text in[0..len) to out (room for len bytes), writing each
 * \u escape of a character from U+0080 up (a surrogate pair as the one
 * character it stands for) as that character's UTF-8, and every other
 * byte as it is. Returns the bytes written, at most len: an escape's six
 * bytes become two or three, a pair's twelve four.
 *
 * Why: Python's json.dumps, which writes Open WebUI's events and
 * python-socketio's pub/sub messages, escapes every character outside
 * ASCII (ensure_ascii), six bytes where UTF-8 takes two (Cyrillic, Greek)
 * or three (Chinese, Japanese); Open WebUI's chat events carry the whole
 * reply so far, so in such a script that is kilobytes more to every tab
 * on every token. A text passed through from such a sender then goes out
 * as sh_json_write, Node's socket.io and a JSON.parse reading it would
 * write it: the same value, UTF-8 raw.
 *
 * Escapes below U+0080 stay as written: a quote, a backslash and the
 * controls must, and the others are rare. So do a lone surrogate and
 * anything else that is not a well-formed escape, which a validated
 * text (sh_json_validate) has not: for any text the output holds the
 * same value, and valid UTF-8 when the input was. */
size_t sh_json_write_text_utf8(char *out, const char *in, size_t len);

#endif
