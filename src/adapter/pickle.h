/* adapter/pickle.h — a restricted unpickler: Python pickle protocols 2-5
 * holding plain values only, decoded into jansson values. Pure, no I/O.
 *
 * Why: python-socketio up to 5.13 publishes its pub/sub messages with
 * pickle.dumps (protocol 4 by default). Unpickling is code execution in
 * Python (GLOBAL + REDUCE call any function), so this decoder knows only the
 * opcodes that build dict, list, tuple, str, bytes, bytearray, int, float,
 * bool and None. Any other opcode — GLOBAL, STACK_GLOBAL, REDUCE, BUILD,
 * INST, OBJ, NEWOBJ, NEWOBJ_EX, EXT1/2/4, PERSID, BINPERSID, sets, buffers,
 * and the text opcodes of protocols 0 and 1 — rejects the whole input: the
 * reason names the opcode, nothing is built from it and nothing is looked
 * up or called.
 *
 * Mapping (Python -> JSON):
 *   dict -> object (every key must be a str without NUL, which jansson
 *           cannot read back from JSON; a later duplicate key wins, as in
 *           Python); list -> array; tuple -> array, recorded as a tuple
 *           (sh_pickle_is_tuple); str -> string (strict UTF-8: lone
 *           surrogates, which pickle writes with "surrogatepass", are
 *           refused); bytes and bytearray -> {"_placeholder":true,"num":N}
 *           with the bytes as attachment N (a binary sh_msg_t), N counted in
 *           stream order — the shape Socket.IO uses for binary event
 *           arguments; int -> integer (must fit int64_t); float -> real
 *           (must be finite); True/False -> true/false; None -> null.
 *
 * Shared values: a value fetched from the memo (BINGET) is the same json_t
 * at each place (one reference each); a shared bytes value is one
 * attachment whose placeholder appears at each place. The result is always
 * acyclic (shared parts are fine for json_dumps and json_decref): a
 * structure that contains itself (Python's a = []; a.append(a)) is rejected
 * ("cycle"), and so is any change to a container after a second reference
 * to it exists — which no acyclic pickle written by Python does.
 *
 * Plain values Python pickles in ways refused here: bytes under protocol 2
 * (GLOBAL _codecs.encode + REDUCE), bytearray under protocols 2-4 (REDUCE;
 * protocol 5 has BYTEARRAY8), dict keys that are not str, ints beyond
 * 64 bits, NaN and infinities.
 *
 * Limits (each rejects with a reason): input size, values created, container
 * slots filled, nesting depth, open marks, memo index, attachments, and the
 * estimated JSON size of any value once shared references are expanded (a
 * few bytes of BINGETs must not expand into gigabytes — the "billion laughs"
 * of pickle). The pickle must start with PROTO 2-5 and end with STOP leaving
 * exactly one value; bytes after STOP are refused.
 */
#ifndef SH_ADAPTER_PICKLE_H
#define SH_ADAPTER_PICKLE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/msg.h"

#define SH_PICKLE_MAX_INPUT  (16u << 20) /* bytes */
#define SH_PICKLE_MAX_VALUES 262144      /* values created; also container slots filled */
#define SH_PICKLE_MAX_DEPTH  100         /* containers nested in containers */
#define SH_PICKLE_MAX_MEMO   262144      /* memo indexes 0 .. MAX_MEMO - 1 */
/* Attachments: as many as a Socket.IO packet from a peer may carry
 * (SH_SIO_MAX_ATTACHMENTS), so whatever is decoded can be relayed. */
#define SH_PICKLE_MAX_BINS 64
/* Estimated JSON bytes of any value with shared references expanded. */
#define SH_PICKLE_MAX_EXPANDED (64u << 20)

typedef struct sh_pickle {
    json_t *value;   /* owned */
    sh_msg_t **bins; /* owned references, binary messages */
    size_t nbins;
    json_t **tuples; /* owned references: the arrays that were tuples */
    size_t ntuples;
} sh_pickle_t;

/* Decodes the pickle p[0..n). On success returns 0 and *out owns the value,
 * the attachments and the tuple list; release it with sh_pickle_release.
 * On failure returns -EINVAL, leaves *out empty (releasing it is harmless)
 * and, when err is not NULL, points *err at a static reason. */
int sh_pickle_decode(const void *p, size_t n, sh_pickle_t *out, const char **err);

/* True when v (any value inside pk->value) was decoded from a tuple. A
 * memo-shared tuple is one json_t, so identity answers for every place it
 * appears. Linear in the number of tuples decoded. */
bool sh_pickle_is_tuple(const sh_pickle_t *pk, const json_t *v);

/* Releases what sh_pickle_decode gave; *pk is empty afterwards. */
void sh_pickle_release(sh_pickle_t *pk);

/* ---- skimming: the fields of a dict pickle, nothing built
 *
 * A reader that needs only a few top-level fields of a pickled dict (the
 * routing fields of a pub/sub message) and not the rest (its data) skims:
 * the pickle is walked once, like sh_pickle_decode walks it, but no value
 * is built or copied — str and bytes are stepped over by their length, and
 * containers are counted, their items kept only where asked for below.
 */

typedef enum {
    SH_PICKLE_NONE,
    SH_PICKLE_BOOL,
    SH_PICKLE_INT,
    SH_PICKLE_FLOAT,
    SH_PICKLE_STR,
    SH_PICKLE_BYTES,
    SH_PICKLE_LIST,
    SH_PICKLE_TUPLE,
    SH_PICKLE_DICT,
} sh_pickle_kind_t;

/* Items kept of a list or tuple that is a field's value; fields of the
 * top-level dict. */
#define SH_PICKLE_SKIM_ITEMS  16
#define SH_PICKLE_SKIM_FIELDS 64

/* A value as skimmed: where it lies in the input, not a copy. */
typedef struct sh_pickle_item {
    sh_pickle_kind_t kind;
    /* STR: its bytes in the input (not NUL-terminated; UTF-8 not checked) */
    const char *str;
    /* STR: bytes; LIST, TUPLE: items, when items is set (0 otherwise) */
    size_t len;
    int64_t i; /* INT; BOOL: 0 or 1 */
    /* LIST, TUPLE that is a field's value (made as one, not inside another
     * list, tuple or dict): its items, when it has at most
     * SH_PICKLE_SKIM_ITEMS; their own items are not kept. NULL otherwise
     * (nothing known of the items, not even how many). Valid during the
     * callback only. */
    const struct sh_pickle_item *items;
} sh_pickle_item_t;

/* One field of the top-level dict: key (a str; not NUL-terminated) and its
 * value, both borrowed for the call. */
typedef void (*sh_pickle_field_cb)(const char *key, size_t klen, const sh_pickle_item_t *value,
                                   void *data);

/* Skims the pickle p[0..n), whose value must be a dict (the first
 * container the pickle makes, with at most SH_PICKLE_SKIM_FIELDS entries),
 * and calls fn for each of its entries in order; a key that comes twice
 * comes twice, and the later one is the one Python (and sh_pickle_decode)
 * keeps. Returns 0, or -EINVAL with *err (when err is not NULL) pointing at
 * a static reason, fn not called.
 *
 * Refused as sh_pickle_decode refuses them, with the same reasons: every
 * opcode outside the plain values subset (GLOBAL, REDUCE, ...), a bad
 * protocol, truncation, bad stack or mark use, memo misuse, ints beyond 64
 * bits, floats that are not finite, dict keys that are not str or hold
 * NUL, more bytes values than SH_PICKLE_MAX_BINS, bytes after STOP. Not
 * checked (the decoder checks them when the message is decoded): the UTF-8
 * of str values, nesting depth, containers changed after being shared,
 * the value count and the expanded size. Nothing is allocated unless the
 * pickle holds more values, memo entries or containers than a small fixed
 * buffer. */
int sh_pickle_skim(const void *p, size_t n, sh_pickle_field_cb fn, void *data, const char **err);

#endif
