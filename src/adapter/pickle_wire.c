/* adapter/pickle_wire.c — what the restricted unpickler (pickle.c) and the
 * skimmer (pickle_skim.c) read the same way: the arguments of PROTO, FRAME,
 * LONG1/4 and BINFLOAT, and the refusal of every opcode outside the plain
 * values subset (see pickle_wire.h and pickle.h). Opcode semantics follow
 * CPython's Modules/_pickle.c. */
#include "adapter/pickle_wire.h"

#include "adapter/pickle.h"

#include <math.h>
#include <string.h>

/* Every other opcode Python knows, by name, so a rejection says what was
 * refused. None of them is ever acted on. */
static const struct {
    uint8_t op;
    const char *reason;
} forbidden[] = {
    {'0', "forbidden opcode POP"},
    {'1', "forbidden opcode POP_MARK"},
    {'2', "forbidden opcode DUP"},
    {'F', "forbidden opcode FLOAT (protocol 0)"},
    {'I', "forbidden opcode INT (protocol 0)"},
    {'L', "forbidden opcode LONG (protocol 0)"},
    {'P', "forbidden opcode PERSID"},
    {'Q', "forbidden opcode BINPERSID"},
    {'R', "forbidden opcode REDUCE"},
    {'S', "forbidden opcode STRING (protocol 0)"},
    {'T', "forbidden opcode BINSTRING"},
    {'U', "forbidden opcode SHORT_BINSTRING"},
    {'V', "forbidden opcode UNICODE (protocol 0)"},
    {'b', "forbidden opcode BUILD"},
    {'c', "forbidden opcode GLOBAL"},
    {'d', "forbidden opcode DICT (protocol 0)"},
    {'g', "forbidden opcode GET (protocol 0)"},
    {'i', "forbidden opcode INST"},
    {'l', "forbidden opcode LIST (protocol 0)"},
    {'o', "forbidden opcode OBJ"},
    {'p', "forbidden opcode PUT (protocol 0)"},
    {0x81, "forbidden opcode NEWOBJ"},
    {0x82, "forbidden opcode EXT1"},
    {0x83, "forbidden opcode EXT2"},
    {0x84, "forbidden opcode EXT4"},
    {0x8f, "forbidden opcode EMPTY_SET"},
    {0x90, "forbidden opcode ADDITEMS"},
    {0x91, "forbidden opcode FROZENSET"},
    {0x92, "forbidden opcode NEWOBJ_EX"},
    {0x93, "forbidden opcode STACK_GLOBAL"},
    {0x97, "forbidden opcode NEXT_BUFFER"},
    {0x98, "forbidden opcode READONLY_BUFFER"},
};

int sh_pickle_refuse(sh_pickle_in_t *in, uint8_t op)
{
    for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++)
        if (forbidden[i].op == op)
            return sh_pickle_fail(in, forbidden[i].reason);
    return sh_pickle_fail(in, "unknown opcode");
}

int sh_pickle_read_proto(sh_pickle_in_t *in)
{
    uint64_t v;
    if (sh_pickle_arg(in, 1, &v) < 0)
        return -1;
    if (v < 2 || v > 5)
        return sh_pickle_fail(in, "unsupported pickle protocol (2 to 5 only)");
    return 0;
}

int sh_pickle_read_frame(sh_pickle_in_t *in)
{
    /* Frames only group opcodes for buffered reads; the input is all
     * here, so the length is checked and otherwise ignored. */
    uint64_t v;
    if (sh_pickle_arg(in, 8, &v) < 0)
        return -1;
    return v > in->n - in->pos ? sh_pickle_fail(in, "FRAME past the end of the input") : 0;
}

/* LONG1/LONG4 payload of len bytes. */
static int read_long(sh_pickle_in_t *in, uint64_t len, int64_t *v)
{
    if (sh_pickle_need(in, len) < 0)
        return -1;
    const uint8_t *p = in->p + in->pos;
    in->pos += (size_t)len;
    *v = 0;
    if (len == 0)
        return 0;
    uint8_t fill = (p[len - 1] & 0x80) ? 0xff : 0x00;
    /* Beyond 8 bytes only sign extension may follow, and the 64-bit value
     * must carry the same sign. */
    for (uint64_t i = 8; i < len; i++)
        if (p[i] != fill)
            return sh_pickle_fail(in, "int does not fit int64");
    if (len >= 8 && ((p[7] & 0x80) ? 0xff : 0x00) != fill)
        return sh_pickle_fail(in, "int does not fit int64");
    size_t k = len < 8 ? (size_t)len : 8;
    uint64_t u = sh_pickle_le(p, (int)k);
    if (k < 8 && fill)
        u |= ~(uint64_t)0 << (8 * k);
    *v = (int64_t)u;
    return 0;
}

int sh_pickle_read_arg(sh_pickle_in_t *in, uint8_t op, uint64_t *v)
{
    int width;
    switch (op) {
    case SH_PK_BININT1:
    case SH_PK_LONG1:
    case SH_PK_SHORT_BINUNICODE:
    case SH_PK_SHORT_BINBYTES:
    case SH_PK_BINPUT:
    case SH_PK_BINGET:
        width = 1;
        break;
    case SH_PK_BININT2:
        width = 2;
        break;
    case SH_PK_BININT:
    case SH_PK_LONG4:
    case SH_PK_BINUNICODE:
    case SH_PK_BINBYTES:
    case SH_PK_LONG_BINPUT:
    case SH_PK_LONG_BINGET:
        width = 4;
        break;
    default: /* BINUNICODE8, BINBYTES8, BYTEARRAY8 */
        width = 8;
        break;
    }
    return sh_pickle_arg(in, width, v);
}

int sh_pickle_read_int(sh_pickle_in_t *in, uint8_t op, int64_t *v)
{
    uint64_t arg;
    if (sh_pickle_read_arg(in, op, &arg) < 0)
        return -1;
    switch (op) {
    case SH_PK_BININT:
        *v = (int32_t)(uint32_t)arg;
        return 0;
    case SH_PK_BININT1:
    case SH_PK_BININT2:
        *v = (int64_t)arg;
        return 0;
    case SH_PK_LONG4:
        if (arg & 0x80000000u)
            return sh_pickle_fail(in, "negative LONG4 length");
        return read_long(in, arg, v);
    default:
        return read_long(in, arg, v);
    }
}

int sh_pickle_read_float(sh_pickle_in_t *in, double *x)
{
    /* BINFLOAT: a big-endian IEEE 754 double. */
    if (sh_pickle_need(in, 8) < 0)
        return -1;
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | in->p[in->pos + (size_t)i];
    in->pos += 8;
    memcpy(x, &u, sizeof(*x));
    return isfinite(*x) ? 0 : sh_pickle_fail(in, "float is not finite");
}

int sh_pickle_walk(sh_pickle_in_t *in, int (*step)(void *w, uint8_t op), void *w,
                   const size_t *nmarks, const size_t *nstack)
{
    if (in->n > SH_PICKLE_MAX_INPUT)
        return sh_pickle_fail(in, "pickle too large");
    if (in->n == 0 || in->p[0] != SH_PK_PROTO)
        return sh_pickle_fail(in, "not a protocol 2-5 pickle (no PROTO opcode first)");
    while (in->pos < in->n) {
        uint8_t op = in->p[in->pos++];
        if (op == SH_PK_STOP) {
            if (*nmarks)
                return sh_pickle_fail(in, "STOP with an open MARK");
            if (*nstack != 1)
                return sh_pickle_fail(in, "STOP must leave exactly one value");
            if (in->pos != in->n)
                return sh_pickle_fail(in, "bytes after STOP");
            return 0;
        }
        if (step(w, op) < 0)
            return -1;
    }
    return sh_pickle_fail(in, "truncated pickle (no STOP)");
}
