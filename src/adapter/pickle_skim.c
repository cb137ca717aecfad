/* adapter/pickle_skim.c — the fields of a dict pickle without building its
 * values (see pickle.h).
 *
 * The walk is the decoder's (pickle.c; CPython's Modules/_pickle.c
 * semantics: marks fence the stack, MEMOIZE stores at len(memo), a later
 * duplicate key wins), over light values of 16 bytes: a value is its kind
 * and, for a str, where its bytes lie; an int is its value. Only the
 * containers the caller will see have an entry in a table, with their
 * items kept (in one chain per container, through a shared table): the
 * first container when it is a dict — the message — and the lists and
 * tuples made while at most one MARK is open, i.e. as its values, not
 * inside them. Every other container, the data's above all, is its kind
 * alone: the checks need nothing more.
 *
 * The tables start in fixed buffers inside the skim state (on the caller's
 * stack) and move to the heap only for pickles with more values than a
 * routing decision usually meets (the memo grows with the strs and
 * containers of the data: Python memoizes each).
 */
#include <errno.h>
#include <string.h>

#include "adapter/pickle.h"
#include "adapter/pickle_wire.h"
#include "core/alloc.h"

#define NONE_IDX   UINT32_MAX
#define MEMO_EMPTY 0xff /* kind of a memo slot never stored to */

typedef struct val {
    uint8_t kind; /* sh_pickle_kind_t; MEMO_EMPTY in the memo */
    union {
        struct {
            uint32_t off, len; /* STR: its bytes (input <= SH_PICKLE_MAX_INPUT) */
        } s;
        int64_t i;     /* INT, BOOL */
        uint32_t cont; /* LIST, TUPLE, DICT: index in conts, or NONE_IDX */
    } u;
} val_t;

/* A container whose items are kept. */
typedef struct cont {
    uint32_t count;       /* items added (keys and values, for a dict) */
    uint32_t first, last; /* kept items, chained through kept[].next */
} cont_t;

typedef struct kept {
    val_t v;
    uint32_t next;
} kept_t;

enum { FIXED_STACK = 128, FIXED_MARKS = 16, FIXED_MEMO = 512, FIXED_CONTS = 32, FIXED_KEPT = 160 };

typedef struct skim {
    sh_pickle_in_t in;
    val_t *stack;
    size_t nstack, cap_stack;
    size_t *marks; /* stack heights at each open MARK */
    size_t nmarks, cap_marks;
    val_t *memo;
    size_t cap_memo, memo_used;
    cont_t *conts;
    size_t nconts, cap_conts;
    size_t nconts_made; /* containers made, kept or not */
    kept_t *kept;
    size_t nkept, cap_kept;
    size_t nbytes; /* bytes values seen */
    val_t fixed_stack[FIXED_STACK];
    size_t fixed_marks[FIXED_MARKS];
    val_t fixed_memo[FIXED_MEMO];
    cont_t fixed_conts[FIXED_CONTS];
    kept_t fixed_kept[FIXED_KEPT];
} skim_t;

static int fail(skim_t *s, const char *reason)
{
    return sh_pickle_fail(&s->in, reason);
}

/* Doubles an array of *cap elements of size, out of its fixed buffer into
 * the heap the first time. */
static void *grow(void *p, const void *fixed, size_t *cap, size_t size)
{
    size_t cap2 = *cap * 2;
    void *q;
    if (p == fixed) {
        q = sh_malloc(cap2 * size);
        memcpy(q, p, *cap * size);
    } else {
        q = sh_realloc(p, cap2 * size);
    }
    *cap = cap2;
    return q;
}

/* ---- stack, marks, memo */

static inline int push(skim_t *s, val_t v)
{
    if (s->nstack == SH_PICKLE_MAX_VALUES)
        return fail(s, "stack too deep");
    if (s->nstack == s->cap_stack)
        s->stack = grow(s->stack, s->fixed_stack, &s->cap_stack, sizeof(*s->stack));
    s->stack[s->nstack++] = v;
    return 0;
}

static size_t fence(const skim_t *s)
{
    return s->nmarks ? s->marks[s->nmarks - 1] : 0;
}

static size_t above_fence(const skim_t *s)
{
    return s->nstack - fence(s);
}

static int push_mark(skim_t *s)
{
    /* Python nests one mark per container being filled. */
    if (s->nmarks == SH_PICKLE_MAX_DEPTH + 1)
        return fail(s, "too many open MARKs");
    if (s->nmarks == s->cap_marks)
        s->marks = grow(s->marks, s->fixed_marks, &s->cap_marks, sizeof(*s->marks));
    s->marks[s->nmarks++] = s->nstack;
    return 0;
}

static int pop_mark(skim_t *s, size_t *h)
{
    if (!s->nmarks)
        return fail(s, "no MARK to close");
    *h = s->marks[--s->nmarks];
    return 0;
}

static int memo_put(skim_t *s, uint64_t idx)
{
    if (!above_fence(s))
        return fail(s, "memo store from an empty stack");
    if (idx >= SH_PICKLE_MAX_MEMO)
        return fail(s, "memo index too large");
    if (idx >= s->cap_memo) {
        size_t cap = s->cap_memo ? s->cap_memo : 64;
        while (cap <= idx)
            cap *= 2;
        if (cap > SH_PICKLE_MAX_MEMO)
            cap = SH_PICKLE_MAX_MEMO;
        if (cap > FIXED_MEMO) {
            if (s->memo == s->fixed_memo) {
                s->memo = sh_malloc(cap * sizeof(*s->memo));
                memcpy(s->memo, s->fixed_memo, s->cap_memo * sizeof(*s->memo));
            } else {
                s->memo = sh_realloc(s->memo, cap * sizeof(*s->memo));
            }
        }
        for (size_t i = s->cap_memo; i < cap; i++)
            s->memo[i].kind = MEMO_EMPTY;
        s->cap_memo = cap;
    }
    if (s->memo[idx].kind == MEMO_EMPTY)
        s->memo_used++;
    s->memo[idx] = s->stack[s->nstack - 1];
    return 0;
}

static int memo_get(skim_t *s, uint64_t idx)
{
    if (idx >= s->cap_memo || s->memo[idx].kind == MEMO_EMPTY)
        return fail(s, "memo index not defined");
    return push(s, s->memo[idx]);
}

/* ---- containers */

/* A new container of kind, not yet on the stack: its value in *v. The
 * message dict is the first container; its list and tuple values are made
 * while its own MARK (at most) is open: those get a table entry. */
static void new_cont(skim_t *s, sh_pickle_kind_t kind, val_t *v)
{
    bool keep =
        s->nconts_made++ == 0 ? kind == SH_PICKLE_DICT : kind != SH_PICKLE_DICT && s->nmarks <= 1;
    v->kind = (uint8_t)kind;
    v->u.cont = NONE_IDX;
    if (!keep)
        return;
    if (s->nconts == s->cap_conts)
        s->conts = grow(s->conts, s->fixed_conts, &s->cap_conts, sizeof(*s->conts));
    cont_t *c = &s->conts[s->nconts];
    c->count = 0;
    c->first = c->last = NONE_IDX;
    v->u.cont = (uint32_t)s->nconts++;
}

static int push_cont(skim_t *s, sh_pickle_kind_t kind)
{
    val_t v;
    new_cont(s, kind, &v);
    return push(s, v);
}

/* Adds v to kept container ci (NONE_IDX: not kept, nothing to do). */
static void add_item(skim_t *s, uint32_t ci, const val_t *v)
{
    if (ci == NONE_IDX)
        return;
    cont_t *c = &s->conts[ci];
    size_t cap = ci == 0 ? 2 * SH_PICKLE_SKIM_FIELDS : SH_PICKLE_SKIM_ITEMS;
    if (++c->count > cap)
        return;
    if (s->nkept == s->cap_kept)
        s->kept = grow(s->kept, s->fixed_kept, &s->cap_kept, sizeof(*s->kept));
    uint32_t k = (uint32_t)s->nkept++;
    s->kept[k].v = *v;
    s->kept[k].next = NONE_IDX;
    if (c->first == NONE_IDX)
        c->first = k;
    else
        s->kept[c->last].next = k;
    c->last = k;
}

/* Appends stack[from..nstack) to the list stack[from - 1] and pops them. */
static int append_items(skim_t *s, size_t from)
{
    const val_t *t = &s->stack[from - 1];
    if (t->kind != SH_PICKLE_LIST)
        return fail(s, "APPEND to something not a list");
    for (size_t i = from; t->u.cont != NONE_IDX && i < s->nstack; i++)
        add_item(s, t->u.cont, &s->stack[i]);
    s->nstack = from;
    return 0;
}

/* Sets the key/value pairs stack[from..nstack) in the dict stack[from - 1]
 * and pops them. */
static int set_items(skim_t *s, size_t from)
{
    const val_t *t = &s->stack[from - 1];
    if ((s->nstack - from) % 2)
        return fail(s, "SETITEMS with an odd number of values");
    if (t->kind != SH_PICKLE_DICT)
        return fail(s, "SETITEM to something not a dict");
    for (size_t i = from; i < s->nstack; i += 2) {
        const val_t *k = &s->stack[i];
        if (k->kind != SH_PICKLE_STR)
            return fail(s, "dict key is not a str");
        if (memchr(s->in.p + k->u.s.off, '\0', k->u.s.len))
            return fail(s, "dict key holds NUL");
        add_item(s, t->u.cont, k);
        add_item(s, t->u.cont, &s->stack[i + 1]);
    }
    s->nstack = from;
    return 0;
}

/* Replaces stack[from..nstack) by a tuple of them. */
static int make_tuple(skim_t *s, size_t from)
{
    val_t t;
    new_cont(s, SH_PICKLE_TUPLE, &t);
    for (size_t i = from; t.u.cont != NONE_IDX && i < s->nstack; i++)
        add_item(s, t.u.cont, &s->stack[i]);
    s->nstack = from;
    return push(s, t);
}

/* ---- scalars */

static int push_int(skim_t *s, sh_pickle_kind_t kind, int64_t i)
{
    val_t v = {.kind = (uint8_t)kind, .u.i = i};
    return push(s, v);
}

static int push_float(skim_t *s)
{
    double x;
    return sh_pickle_read_float(&s->in, &x) < 0 ? -1 : push_int(s, SH_PICKLE_FLOAT, 0);
}

/* A str or bytes of len bytes at the input position: stepped over. */
static int push_span(skim_t *s, sh_pickle_kind_t kind, uint64_t len)
{
    if (sh_pickle_need(&s->in, len) < 0)
        return -1;
    if (kind == SH_PICKLE_BYTES && s->nbytes++ == SH_PICKLE_MAX_BINS)
        return fail(s, "too many bytes values");
    val_t v = {.kind = (uint8_t)kind, .u.s = {(uint32_t)s->in.pos, (uint32_t)len}};
    s->in.pos += (size_t)len;
    return push(s, v);
}

/* ---- the loop */

static int step(void *w, uint8_t op)
{
    skim_t *s = w;
    uint64_t v;
    size_t h;

    switch (op) {
    case SH_PK_PROTO:
        return sh_pickle_read_proto(&s->in);
    case SH_PK_FRAME:
        return sh_pickle_read_frame(&s->in);
    case SH_PK_MARK:
        return push_mark(s);
    case SH_PK_EMPTY_DICT:
        return push_cont(s, SH_PICKLE_DICT);
    case SH_PK_EMPTY_LIST:
        return push_cont(s, SH_PICKLE_LIST);
    case SH_PK_EMPTY_TUPLE:
        return push_cont(s, SH_PICKLE_TUPLE);
    case SH_PK_APPEND:
        if (above_fence(s) < 2)
            return fail(s, "stack underflow");
        return append_items(s, s->nstack - 1);
    case SH_PK_APPENDS:
        if (pop_mark(s, &h) < 0)
            return -1;
        if (h <= fence(s))
            return fail(s, "stack underflow");
        return append_items(s, h);
    case SH_PK_SETITEM:
        if (above_fence(s) < 3)
            return fail(s, "stack underflow");
        return set_items(s, s->nstack - 2);
    case SH_PK_SETITEMS:
        if (pop_mark(s, &h) < 0)
            return -1;
        if (h <= fence(s))
            return fail(s, "stack underflow");
        return set_items(s, h);
    case SH_PK_TUPLE:
        if (pop_mark(s, &h) < 0)
            return -1;
        return make_tuple(s, h);
    case SH_PK_TUPLE1:
    case SH_PK_TUPLE2:
    case SH_PK_TUPLE3: {
        size_t k = (size_t)(op - SH_PK_TUPLE1 + 1);
        if (above_fence(s) < k)
            return fail(s, "stack underflow");
        return make_tuple(s, s->nstack - k);
    }
    case SH_PK_BININT:
    case SH_PK_BININT1:
    case SH_PK_BININT2:
    case SH_PK_LONG1:
    case SH_PK_LONG4: {
        int64_t i;
        return sh_pickle_read_int(&s->in, op, &i) < 0 ? -1 : push_int(s, SH_PICKLE_INT, i);
    }
    case SH_PK_BINFLOAT:
        return push_float(s);
    case SH_PK_SHORT_BINUNICODE:
    case SH_PK_BINUNICODE:
    case SH_PK_BINUNICODE8:
        return sh_pickle_read_arg(&s->in, op, &v) < 0 ? -1 : push_span(s, SH_PICKLE_STR, v);
    case SH_PK_SHORT_BINBYTES:
    case SH_PK_BINBYTES:
    case SH_PK_BINBYTES8:
    case SH_PK_BYTEARRAY8:
        return sh_pickle_read_arg(&s->in, op, &v) < 0 ? -1 : push_span(s, SH_PICKLE_BYTES, v);
    case SH_PK_NEWTRUE:
    case SH_PK_NEWFALSE:
        return push_int(s, SH_PICKLE_BOOL, op == SH_PK_NEWTRUE);
    case SH_PK_NONE:
        return push_int(s, SH_PICKLE_NONE, 0);
    case SH_PK_MEMOIZE:
        return memo_put(s, s->memo_used);
    case SH_PK_BINPUT:
    case SH_PK_LONG_BINPUT:
        return sh_pickle_read_arg(&s->in, op, &v) < 0 ? -1 : memo_put(s, v);
    case SH_PK_BINGET:
    case SH_PK_LONG_BINGET:
        return sh_pickle_read_arg(&s->in, op, &v) < 0 ? -1 : memo_get(s, v);
    default:
        return sh_pickle_refuse(&s->in, op);
    }
}

/* ---- handing out the fields */

static void to_item(const skim_t *s, const val_t *v, sh_pickle_item_t *out,
                    sh_pickle_item_t items[SH_PICKLE_SKIM_ITEMS])
{
    *out = (sh_pickle_item_t){.kind = (sh_pickle_kind_t)v->kind};
    switch (v->kind) {
    case SH_PICKLE_STR:
        out->str = (const char *)s->in.p + v->u.s.off;
        out->len = v->u.s.len;
        return;
    case SH_PICKLE_INT:
    case SH_PICKLE_BOOL:
        out->i = v->u.i;
        return;
    case SH_PICKLE_LIST:
    case SH_PICKLE_TUPLE:
        break;
    default:
        return;
    }
    /* Items of items are not handed out (items is NULL for them). */
    if (!items || v->u.cont == NONE_IDX || s->conts[v->u.cont].count > SH_PICKLE_SKIM_ITEMS)
        return;
    const cont_t *c = &s->conts[v->u.cont];
    for (uint32_t k = c->first; k != NONE_IDX; k = s->kept[k].next)
        to_item(s, &s->kept[k].v, &items[out->len++], NULL);
    out->items = items;
}

static int hand_out(skim_t *s, sh_pickle_field_cb fn, void *data)
{
    const val_t *root = &s->stack[0];
    if (root->kind != SH_PICKLE_DICT || root->u.cont != 0)
        return fail(s, "not a pickled dict");
    const cont_t *c = &s->conts[0];
    if (c->count > 2 * SH_PICKLE_SKIM_FIELDS)
        return fail(s, "too many fields to skim");
    sh_pickle_item_t items[SH_PICKLE_SKIM_ITEMS];
    for (uint32_t k = c->first; k != NONE_IDX; k = s->kept[s->kept[k].next].next) {
        const val_t *key = &s->kept[k].v;
        sh_pickle_item_t value;
        to_item(s, &s->kept[s->kept[k].next].v, &value, items);
        fn((const char *)s->in.p + key->u.s.off, key->u.s.len, &value, data);
    }
    return 0;
}

static void release(skim_t *s)
{
    if (s->stack != s->fixed_stack)
        free(s->stack);
    if (s->marks != s->fixed_marks)
        free(s->marks);
    if (s->memo != s->fixed_memo)
        free(s->memo);
    if (s->conts != s->fixed_conts)
        free(s->conts);
    if (s->kept != s->fixed_kept)
        free(s->kept);
}

int sh_pickle_skim(const void *p, size_t n, sh_pickle_field_cb fn, void *data, const char **err)
{
    skim_t s;
    s.in = (sh_pickle_in_t){.p = p, .n = n};
    s.stack = s.fixed_stack;
    s.cap_stack = FIXED_STACK;
    s.marks = s.fixed_marks;
    s.cap_marks = FIXED_MARKS;
    s.memo = s.fixed_memo;
    s.cap_memo = 0; /* slots are marked empty as they come into use */
    s.conts = s.fixed_conts;
    s.cap_conts = FIXED_CONTS;
    s.kept = s.fixed_kept;
    s.cap_kept = FIXED_KEPT;
    s.nstack = s.nmarks = s.memo_used = s.nconts = s.nconts_made = s.nkept = s.nbytes = 0;
    int rc = sh_pickle_walk(&s.in, step, &s, &s.nmarks, &s.nstack);
    if (rc == 0)
        rc = hand_out(&s, fn, data);
    release(&s);
    if (rc < 0 && err)
        *err = s.in.err;
    return rc < 0 ? -EINVAL : 0;
}
