/* adapter/pickle_wire.h — internal to adapter/pickle.c and
 * adapter/pickle_skim.c: the opcodes of pickle protocols 2-5
 * (Lib/pickletools.py) and the bounds-checked input reader both walkers
 * use, so that they accept the same opcodes and refuse every other one
 * with the same reason. Not an interface for other modules.
 */
#ifndef SH_ADAPTER_PICKLE_WIRE_H
#define SH_ADAPTER_PICKLE_WIRE_H

#include <stddef.h>
#include <stdint.h>

enum {
    SH_PK_MARK = '(',
    SH_PK_STOP = '.',
    SH_PK_BININT = 'J',
    SH_PK_BININT1 = 'K',
    SH_PK_BININT2 = 'M',
    SH_PK_NONE = 'N',
    SH_PK_BINUNICODE = 'X',
    SH_PK_APPEND = 'a',
    SH_PK_EMPTY_DICT = '}',
    SH_PK_APPENDS = 'e',
    SH_PK_BINGET = 'h',
    SH_PK_LONG_BINGET = 'j',
    SH_PK_EMPTY_LIST = ']',
    SH_PK_BINPUT = 'q',
    SH_PK_LONG_BINPUT = 'r',
    SH_PK_SETITEM = 's',
    SH_PK_TUPLE = 't',
    SH_PK_EMPTY_TUPLE = ')',
    SH_PK_SETITEMS = 'u',
    SH_PK_BINFLOAT = 'G',
    SH_PK_PROTO = 0x80,
    SH_PK_TUPLE1 = 0x85,
    SH_PK_TUPLE2 = 0x86,
    SH_PK_TUPLE3 = 0x87,
    SH_PK_NEWTRUE = 0x88,
    SH_PK_NEWFALSE = 0x89,
    SH_PK_LONG1 = 0x8a,
    SH_PK_LONG4 = 0x8b,
    SH_PK_BINBYTES = 'B',
    SH_PK_SHORT_BINBYTES = 'C',
    SH_PK_SHORT_BINUNICODE = 0x8c,
    SH_PK_BINUNICODE8 = 0x8d,
    SH_PK_BINBYTES8 = 0x8e,
    SH_PK_MEMOIZE = 0x94,
    SH_PK_FRAME = 0x95,
    SH_PK_BYTEARRAY8 = 0x96,
};

/* The input being walked; err is the first failure's reason (static). */
typedef struct sh_pickle_in {
    const uint8_t *p;
    size_t n, pos;
    const char *err;
} sh_pickle_in_t;

/* Records reason (the first one wins) and returns -1. */
static inline int sh_pickle_fail(sh_pickle_in_t *in, const char *reason)
{
    if (!in->err)
        in->err = reason;
    return -1;
}

/* 0 when k more bytes are there. */
static inline int sh_pickle_need(sh_pickle_in_t *in, uint64_t k)
{
    return k > in->n - in->pos ? sh_pickle_fail(in, "truncated pickle") : 0;
}

static inline uint64_t sh_pickle_le(const uint8_t *p, int k)
{
    uint64_t v = 0;
    for (int i = k - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Reads a k-byte little-endian unsigned argument. */
static inline int sh_pickle_arg(sh_pickle_in_t *in, int k, uint64_t *v)
{
    if (sh_pickle_need(in, (uint64_t)k) < 0)
        return -1;
    *v = sh_pickle_le(in->p + in->pos, k);
    in->pos += (size_t)k;
    return 0;
}

/* The argument of a str or bytes opcode (its length), of a memo opcode
 * (BINPUT, LONG_BINPUT, BINGET, LONG_BINGET: the index) or of an int
 * opcode, whichever width the opcode gives it. */
int sh_pickle_read_arg(sh_pickle_in_t *in, uint8_t op, uint64_t *v);

/* The checks of PROTO's and FRAME's arguments (at the input position,
 * after the opcode). */
int sh_pickle_read_proto(sh_pickle_in_t *in);
int sh_pickle_read_frame(sh_pickle_in_t *in);
/* The value of BININT, BININT1, BININT2, LONG1 or LONG4 (little-endian
 * two's complement of any length); refused when it needs more than 64
 * bits. */
int sh_pickle_read_int(sh_pickle_in_t *in, uint8_t op, int64_t *v);
/* The payload of BINFLOAT; refused when not finite. */
int sh_pickle_read_float(sh_pickle_in_t *in, double *x);
/* Walks the whole input: checks its size (SH_PICKLE_MAX_INPUT) and the
 * PROTO that must come first, hands every opcode but STOP to step (called
 * after the opcode byte; it reads its arguments and returns 0, or -1 after
 * sh_pickle_fail), and at STOP checks that no MARK is open (*nmarks), that
 * exactly one value is left (*nstack) and that nothing follows. The
 * counters are the walker's own, read at STOP. Returns 0 or -1. */
int sh_pickle_walk(sh_pickle_in_t *in, int (*step)(void *w, uint8_t op), void *w,
                   const size_t *nmarks, const size_t *nstack);
/* Fails with the reason for an opcode neither walker acts on: the name of
 * a forbidden one (GLOBAL, REDUCE, ...), or "unknown opcode". */
int sh_pickle_refuse(sh_pickle_in_t *in, uint8_t op);

#endif
