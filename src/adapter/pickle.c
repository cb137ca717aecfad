/* adapter/pickle.c — restricted unpickler (see pickle.h).
 *
 * Opcode semantics follow CPython's Modules/_pickle.c (the unpickler
 * python-socketio's peers use) and Lib/pickletools.py (the opcode table):
 *
 * - MARK starts a new frame of the stack: opcodes see only the values above
 *   the innermost mark (CPython's "fence") and underflow otherwise.
 * - MEMOIZE stores at index len(memo), the number of distinct indexes in use
 *   (CPython's memo is a dict), not at the highest index + 1.
 * - LONG1/LONG4 are little-endian two's complement of any length; a value
 *   that needs more than 64 bits is refused (jansson integers are int64).
 * - BINFLOAT is a big-endian IEEE 754 double.
 *
 * Every value built lives in an arena that holds one jansson reference to
 * it and records its kind (str, bytes, list, tuple, dict, other scalar),
 * nesting depth and estimated JSON size; the stack and the memo hold arena
 * indexes (each stack slot also holds one jansson reference). That makes
 * the cycle rule exact and cheap: a list or dict may be changed only while
 * its refcount is 2 — the arena's and the one stack slot naming it — so
 * nothing contains it and no other slot names it, and whatever is added
 * cannot reach back to it. Python writes a container's items right after
 * creating it, so real pickles always pass; a self-reference needs a
 * BINGET of the container first, which raises its refcount.
 */
#include "adapter/pickle.h"
#include "adapter/pickle_wire.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/utf8.h"

enum kind { K_SCALAR, K_STR, K_BYTES, K_LIST, K_TUPLE, K_DICT };

typedef struct obj {
    json_t *v;       /* one reference, the arena's */
    uint64_t weight; /* estimated JSON bytes when expanded */
    uint8_t kind;
    uint8_t depth; /* 0 for scalars, 1 + the deepest child for containers */
} obj_t;

#define MEMO_EMPTY UINT32_MAX

typedef struct dec {
    sh_pickle_in_t in;
    obj_t *arena;
    size_t narena, cap_arena;
    uint32_t *stack; /* arena indexes; each slot holds a jansson reference */
    size_t nstack, cap_stack;
    size_t *marks; /* stack heights at each open MARK */
    size_t nmarks, cap_marks;
    uint32_t *memo; /* arena indexes or MEMO_EMPTY */
    size_t cap_memo, memo_used;
    sh_msg_t **bins;
    size_t nbins;
    size_t slots; /* container slots filled so far */
} dec_t;

/* Estimated JSON sizes of scalars (an int64 is at most 20 characters, a
 * real written with 17 digits at most 24, a placeholder about 30). */
#define W_INT         20
#define W_REAL        24
#define W_CONST       5
#define W_PLACEHOLDER 32

static int fail(dec_t *d, const char *reason)
{
    return sh_pickle_fail(&d->in, reason);
}

/* ---- arena, stack, memo */

static uint64_t add_weight(uint64_t a, uint64_t b)
{
    /* Saturate just past the limit: callers compare against it. */
    uint64_t s = a + b;
    return s > SH_PICKLE_MAX_EXPANDED ? (uint64_t)SH_PICKLE_MAX_EXPANDED + 1 : s;
}

/* Takes the reference v (NULL is jansson's failure: refused as bad). */
static int64_t new_value(dec_t *d, json_t *v, enum kind kind, uint64_t weight, const char *bad)
{
    if (!v)
        return fail(d, bad);
    if (d->narena == SH_PICKLE_MAX_VALUES) {
        json_decref(v);
        return fail(d, "too many values");
    }
    if (weight > SH_PICKLE_MAX_EXPANDED) {
        json_decref(v);
        return fail(d, "value expands too much");
    }
    if (d->narena == d->cap_arena) {
        d->cap_arena = d->cap_arena ? d->cap_arena * 2 : 64;
        d->arena = sh_realloc(d->arena, d->cap_arena * sizeof(*d->arena));
    }
    obj_t *o = &d->arena[d->narena];
    o->v = v;
    o->weight = weight;
    o->kind = (uint8_t)kind;
    o->depth = kind == K_LIST || kind == K_TUPLE || kind == K_DICT || kind == K_BYTES;
    return (int64_t)d->narena++;
}

static int push(dec_t *d, uint32_t idx)
{
    /* Each push is an opcode of at least one byte, so this bounds memory
     * by the input size; the limit only keeps a BINGET flood small. */
    if (d->nstack == SH_PICKLE_MAX_VALUES)
        return fail(d, "stack too deep");
    if (d->nstack == d->cap_stack) {
        d->cap_stack = d->cap_stack ? d->cap_stack * 2 : 64;
        d->stack = sh_realloc(d->stack, d->cap_stack * sizeof(*d->stack));
    }
    json_incref(d->arena[idx].v);
    d->stack[d->nstack++] = idx;
    return 0;
}

static int push_new(dec_t *d, json_t *v, enum kind kind, uint64_t weight, const char *bad)
{
    int64_t idx = new_value(d, v, kind, weight, bad);
    return idx < 0 ? -1 : push(d, (uint32_t)idx);
}

/* Drops the stack slots from height h up (their references go). */
static void pop_to(dec_t *d, size_t h)
{
    while (d->nstack > h)
        json_decref(d->arena[d->stack[--d->nstack]].v);
}

static size_t fence(const dec_t *d)
{
    return d->nmarks ? d->marks[d->nmarks - 1] : 0;
}

/* Values above the innermost mark. */
static size_t above_fence(const dec_t *d)
{
    return d->nstack - fence(d);
}

static int pop_mark(dec_t *d, size_t *h)
{
    if (!d->nmarks)
        return fail(d, "no MARK to close");
    *h = d->marks[--d->nmarks];
    return 0;
}

static int memo_put(dec_t *d, uint64_t idx)
{
    if (!above_fence(d))
        return fail(d, "memo store from an empty stack");
    if (idx >= SH_PICKLE_MAX_MEMO)
        return fail(d, "memo index too large");
    if (idx >= d->cap_memo) {
        size_t cap = d->cap_memo ? d->cap_memo : 64;
        while (cap <= idx)
            cap *= 2;
        if (cap > SH_PICKLE_MAX_MEMO)
            cap = SH_PICKLE_MAX_MEMO;
        d->memo = sh_realloc(d->memo, cap * sizeof(*d->memo));
        for (size_t i = d->cap_memo; i < cap; i++)
            d->memo[i] = MEMO_EMPTY;
        d->cap_memo = cap;
    }
    if (d->memo[idx] == MEMO_EMPTY)
        d->memo_used++;
    d->memo[idx] = d->stack[d->nstack - 1];
    return 0;
}

static int memo_get(dec_t *d, uint64_t idx)
{
    if (idx >= d->cap_memo || d->memo[idx] == MEMO_EMPTY)
        return fail(d, "memo index not defined");
    return push(d, d->memo[idx]);
}

/* ---- containers */

/* May container idx (of the given kind) be changed? See the file comment. */
static int check_target(dec_t *d, uint32_t idx, enum kind kind)
{
    const obj_t *o = &d->arena[idx];
    if (o->kind != kind)
        return fail(d, kind == K_LIST ? "APPEND to something not a list"
                                      : "SETITEM to something not a dict");
    if (o->v->refcount != 2)
        return fail(d, "container changed after being shared (cycle)");
    return 0;
}

/* Accounts for child (weight extra: separators and key) going into parent. */
static int account(dec_t *d, obj_t *parent, const obj_t *child, uint64_t extra)
{
    if (++d->slots > SH_PICKLE_MAX_VALUES)
        return fail(d, "too many elements");
    if (child->depth + 1 > parent->depth) {
        if (child->depth + 1 > SH_PICKLE_MAX_DEPTH)
            return fail(d, "nested too deep");
        parent->depth = (uint8_t)(child->depth + 1);
    }
    parent->weight = add_weight(parent->weight, add_weight(child->weight, extra));
    if (parent->weight > SH_PICKLE_MAX_EXPANDED)
        return fail(d, "value expands too much");
    return 0;
}

/* Appends stack[from..nstack) to the list stack[from - 1] and pops them. */
static int append_items(dec_t *d, size_t from)
{
    uint32_t t = d->stack[from - 1];
    if (check_target(d, t, K_LIST) < 0)
        return -1;
    for (size_t i = from; i < d->nstack; i++) {
        const obj_t *c = &d->arena[d->stack[i]];
        if (account(d, &d->arena[t], c, 1) < 0)
            return -1;
        json_array_append(d->arena[t].v, c->v);
    }
    pop_to(d, from);
    return 0;
}

/* Sets the key/value pairs stack[from..nstack) in the dict stack[from - 1]
 * and pops them. */
static int set_items(dec_t *d, size_t from)
{
    uint32_t t = d->stack[from - 1];
    if ((d->nstack - from) % 2)
        return fail(d, "SETITEMS with an odd number of values");
    if (check_target(d, t, K_DICT) < 0)
        return -1;
    for (size_t i = from; i < d->nstack; i += 2) {
        const obj_t *k = &d->arena[d->stack[i]];
        const obj_t *v = &d->arena[d->stack[i + 1]];
        if (k->kind != K_STR)
            return fail(d, "dict key is not a str");
        /* jansson writes such a key as "\u0000" but refuses to read it back
         * (as it refuses it in any Socket.IO packet). */
        if (strlen(json_string_value(k->v)) != json_string_length(k->v))
            return fail(d, "dict key holds NUL");
        /* key, colon and comma */
        if (account(d, &d->arena[t], v, add_weight(k->weight, 2)) < 0)
            return -1;
        if (json_object_setn(d->arena[t].v, json_string_value(k->v), json_string_length(k->v),
                             v->v) < 0)
            return fail(d, "dict key is not a str");
    }
    pop_to(d, from);
    return 0;
}

/* Replaces stack[from..nstack) by a tuple of them. */
static int make_tuple(dec_t *d, size_t from)
{
    json_t *a = json_array();
    int64_t t = new_value(d, a, K_TUPLE, 2, "out of memory");
    if (t < 0)
        return -1;
    for (size_t i = from; i < d->nstack; i++) {
        const obj_t *c = &d->arena[d->stack[i]];
        if (account(d, &d->arena[t], c, 1) < 0)
            return -1;
        json_array_append(a, c->v);
    }
    pop_to(d, from);
    return push(d, (uint32_t)t);
}

/* ---- scalars */

static int load_int(dec_t *d, int64_t v)
{
    return push_new(d, json_integer(v), K_SCALAR, W_INT, "out of memory");
}

static int load_float(dec_t *d)
{
    double x;
    if (sh_pickle_read_float(&d->in, &x) < 0)
        return -1;
    return push_new(d, json_real(x), K_SCALAR, W_REAL, "float is not finite");
}

static int load_str(dec_t *d, uint64_t len)
{
    if (sh_pickle_need(&d->in, len) < 0)
        return -1;
    const char *s = (const char *)d->in.p + d->in.pos;
    d->in.pos += (size_t)len;
    if (!sh_utf8_valid(s, (size_t)len))
        return fail(d, "str is not valid UTF-8");
    return push_new(d, json_stringn_nocheck(s, (size_t)len), K_STR, add_weight(len, 2),
                    "out of memory");
}

static int load_bytes(dec_t *d, uint64_t len)
{
    if (sh_pickle_need(&d->in, len) < 0)
        return -1;
    if (d->nbins == SH_PICKLE_MAX_BINS)
        return fail(d, "too many bytes values");
    json_t *ph = json_pack("{s:b,s:I}", "_placeholder", 1, "num", (json_int_t)d->nbins);
    if (push_new(d, ph, K_BYTES, W_PLACEHOLDER, "out of memory") < 0)
        return -1;
    if (!d->bins)
        d->bins = sh_calloc(SH_PICKLE_MAX_BINS, sizeof(*d->bins));
    d->bins[d->nbins++] = sh_msg_new(d->in.p + d->in.pos, (size_t)len, true);
    d->in.pos += (size_t)len;
    return 0;
}

/* ---- the loop */

static int step(void *w, uint8_t op)
{
    dec_t *d = w;
    uint64_t v;
    size_t h;

    switch (op) {
    case SH_PK_PROTO:
        return sh_pickle_read_proto(&d->in);
    case SH_PK_FRAME:
        return sh_pickle_read_frame(&d->in);
    case SH_PK_MARK:
        /* Python nests one mark per container being filled. */
        if (d->nmarks == SH_PICKLE_MAX_DEPTH + 1)
            return fail(d, "too many open MARKs");
        if (d->nmarks == d->cap_marks) {
            d->cap_marks = d->cap_marks ? d->cap_marks * 2 : 16;
            d->marks = sh_realloc(d->marks, d->cap_marks * sizeof(*d->marks));
        }
        d->marks[d->nmarks++] = d->nstack;
        return 0;
    case SH_PK_EMPTY_DICT:
        return push_new(d, json_object(), K_DICT, 2, "out of memory");
    case SH_PK_EMPTY_LIST:
        return push_new(d, json_array(), K_LIST, 2, "out of memory");
    case SH_PK_EMPTY_TUPLE:
        return push_new(d, json_array(), K_TUPLE, 2, "out of memory");
    case SH_PK_APPEND:
        if (above_fence(d) < 2)
            return fail(d, "stack underflow");
        return append_items(d, d->nstack - 1);
    case SH_PK_APPENDS:
        if (pop_mark(d, &h) < 0)
            return -1;
        if (h <= fence(d))
            return fail(d, "stack underflow");
        return append_items(d, h);
    case SH_PK_SETITEM:
        if (above_fence(d) < 3)
            return fail(d, "stack underflow");
        return set_items(d, d->nstack - 2);
    case SH_PK_SETITEMS:
        if (pop_mark(d, &h) < 0)
            return -1;
        if (h <= fence(d))
            return fail(d, "stack underflow");
        return set_items(d, h);
    case SH_PK_TUPLE:
        if (pop_mark(d, &h) < 0)
            return -1;
        return make_tuple(d, h);
    case SH_PK_TUPLE1:
    case SH_PK_TUPLE2:
    case SH_PK_TUPLE3: {
        size_t k = (size_t)(op - SH_PK_TUPLE1 + 1);
        if (above_fence(d) < k)
            return fail(d, "stack underflow");
        return make_tuple(d, d->nstack - k);
    }
    case SH_PK_BININT:
    case SH_PK_BININT1:
    case SH_PK_BININT2:
    case SH_PK_LONG1:
    case SH_PK_LONG4: {
        int64_t i;
        return sh_pickle_read_int(&d->in, op, &i) < 0 ? -1 : load_int(d, i);
    }
    case SH_PK_BINFLOAT:
        return load_float(d);
    case SH_PK_SHORT_BINUNICODE:
    case SH_PK_BINUNICODE:
    case SH_PK_BINUNICODE8:
        return sh_pickle_read_arg(&d->in, op, &v) < 0 ? -1 : load_str(d, v);
    case SH_PK_SHORT_BINBYTES:
    case SH_PK_BINBYTES:
    case SH_PK_BINBYTES8:
    case SH_PK_BYTEARRAY8:
        return sh_pickle_read_arg(&d->in, op, &v) < 0 ? -1 : load_bytes(d, v);
    case SH_PK_NEWTRUE:
        return push_new(d, json_true(), K_SCALAR, W_CONST, "out of memory");
    case SH_PK_NEWFALSE:
        return push_new(d, json_false(), K_SCALAR, W_CONST, "out of memory");
    case SH_PK_NONE:
        return push_new(d, json_null(), K_SCALAR, W_CONST, "out of memory");
    case SH_PK_MEMOIZE:
        return memo_put(d, d->memo_used);
    case SH_PK_BINPUT:
    case SH_PK_LONG_BINPUT:
        return sh_pickle_read_arg(&d->in, op, &v) < 0 ? -1 : memo_put(d, v);
    case SH_PK_BINGET:
    case SH_PK_LONG_BINGET:
        return sh_pickle_read_arg(&d->in, op, &v) < 0 ? -1 : memo_get(d, v);
    default:
        return sh_pickle_refuse(&d->in, op);
    }
}

static void dec_free(dec_t *d)
{
    pop_to(d, 0);
    for (size_t i = 0; i < d->narena; i++)
        json_decref(d->arena[i].v);
    for (size_t i = 0; i < d->nbins; i++)
        sh_msg_unref(d->bins[i]);
    free(d->arena);
    free(d->stack);
    free(d->marks);
    free(d->memo);
    free(d->bins);
}

int sh_pickle_decode(const void *p, size_t n, sh_pickle_t *out, const char **err)
{
    dec_t d = {.in = {.p = p, .n = n}};
    memset(out, 0, sizeof(*out));
    if (sh_pickle_walk(&d.in, step, &d, &d.nmarks, &d.nstack) < 0) {
        dec_free(&d);
        if (err)
            *err = d.in.err;
        return -EINVAL;
    }
    /* The stack's one slot holds the result's reference: hand it over. */
    out->value = d.arena[d.stack[0]].v;
    d.nstack = 0;
    for (size_t i = 0; i < d.narena; i++)
        if (d.arena[i].kind == K_TUPLE)
            out->ntuples++;
    if (out->ntuples) {
        out->tuples = sh_calloc(out->ntuples, sizeof(*out->tuples));
        size_t j = 0;
        for (size_t i = 0; i < d.narena; i++)
            if (d.arena[i].kind == K_TUPLE)
                out->tuples[j++] = json_incref(d.arena[i].v);
    }
    out->bins = d.bins;
    out->nbins = d.nbins;
    d.bins = NULL;
    d.nbins = 0;
    dec_free(&d);
    return 0;
}

bool sh_pickle_is_tuple(const sh_pickle_t *pk, const json_t *v)
{
    for (size_t i = 0; i < pk->ntuples; i++)
        if (pk->tuples[i] == v)
            return true;
    return false;
}

void sh_pickle_release(sh_pickle_t *pk)
{
    json_decref(pk->value);
    for (size_t i = 0; i < pk->nbins; i++)
        sh_msg_unref(pk->bins[i]);
    free(pk->bins);
    for (size_t i = 0; i < pk->ntuples; i++)
        json_decref(pk->tuples[i]);
    free(pk->tuples);
    memset(pk, 0, sizeof(*pk));
}
