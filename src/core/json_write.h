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

#endif
