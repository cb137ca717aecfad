/* Tests for the RFC 6455 frame codec. The reader and header parser are
 * driven by the vectors in tests/data/ws_frame/ (their format is described
 * at the top of each file); the encoders by the cases below. */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "transport/ws_frame.h"

/* ---------------------------------------------------------------- vectors */

typedef struct rec_event {
    int type;
    uint16_t code;
    sh_buf_t data;
} rec_event_t;

typedef struct rec_list {
    rec_event_t *ev;
    size_t n, cap;
} rec_list_t;

typedef struct reader_case {
    char name[160];
    int line;
    bool mask;
    size_t max;
    sh_buf_t in;
    rec_list_t expect;
    int end; /* -EAGAIN or the error */
    uint16_t code;
    size_t rest; /* with -EAGAIN: bytes left in `in` */
    bool has_end;
} reader_case_t;

typedef struct header_case {
    int line;
    sh_buf_t in;
    bool require_mask;
    int result; /* > 0 (header_len), -EAGAIN or -EPROTO */
    sh_ws_frame_header_t h;
} header_case_t;

/* Loaded once in main(); the forked test processes read them. */
static reader_case_t *reader_cases;
static size_t n_reader_cases;
static header_case_t *header_cases;
static size_t n_header_cases;

static const char *vec_file;
static int vec_line;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s:%d: ", vec_file, vec_line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(99);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static const char *skip_space(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* Parses BYTES (see reader.vec) from s into out, up to the end of the
 * string, or up to the ')' closing an m( when nested. Returns the position
 * after what it read. */
static const char *parse_bytes(const char *s, sh_buf_t *out, bool nested)
{
    for (;;) {
        s = skip_space(s);
        if (*s == '\0' || *s == '\n') {
            if (nested)
                die("unclosed m(");
            return s;
        }
        if (*s == ')') {
            if (!nested)
                die("unexpected ')'");
            return s + 1;
        }
        if (*s == '"') {
            s++;
            while (*s != '"') {
                if (*s == '\0' || *s == '\n')
                    die("unterminated string");
                if (*s != '\\') {
                    sh_buf_append_byte(out, *s++);
                    continue;
                }
                s++;
                switch (*s) {
                case 'n':
                    sh_buf_append_byte(out, '\n');
                    s++;
                    break;
                case 'r':
                    sh_buf_append_byte(out, '\r');
                    s++;
                    break;
                case '\\':
                case '"':
                    sh_buf_append_byte(out, *s++);
                    break;
                case 'x':
                    if (hexval(s[1]) < 0 || hexval(s[2]) < 0)
                        die("bad \\x escape");
                    sh_buf_append_byte(out, (char)(hexval(s[1]) << 4 | hexval(s[2])));
                    s += 3;
                    break;
                default:
                    die("bad escape \\%c", *s);
                }
            }
            s++;
            continue;
        }
        if (s[0] == 'm' && s[1] == '(') {
            s = skip_space(s + 2);
            uint8_t key[4];
            for (int i = 0; i < 4; i++) {
                if (hexval(s[2 * i]) < 0 || hexval(s[2 * i + 1]) < 0)
                    die("m( needs an 8-digit hex key");
                key[i] = (uint8_t)(hexval(s[2 * i]) << 4 | hexval(s[2 * i + 1]));
            }
            sh_buf_t inner = SH_BUF_INIT;
            s = parse_bytes(s + 8, &inner, true);
            /* Mask byte by byte here: an independent check of sh_ws_unmask. */
            for (size_t i = 0; i < sh_buf_avail(&inner); i++)
                sh_buf_append_byte(out, (char)(inner.data[i] ^ key[i & 3]));
            sh_buf_release(&inner);
            continue;
        }
        if (hexval(s[0]) < 0 || hexval(s[1]) < 0)
            die("bad byte syntax at \"%.20s\"", s);
        char byte = (char)(hexval(s[0]) << 4 | hexval(s[1]));
        s += 2;
        if (*s == '*') {
            char *end;
            unsigned long count = strtoul(s + 1, &end, 10);
            if (end == s + 1)
                die("bad repeat count");
            for (unsigned long i = 0; i < count; i++)
                sh_buf_append_byte(out, byte);
            s = end;
        } else {
            sh_buf_append_byte(out, byte);
        }
    }
}

static void rec_push(rec_list_t *l, int type, uint16_t code, const void *data, size_t len)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->ev = sh_realloc(l->ev, l->cap * sizeof(*l->ev));
    }
    rec_event_t *e = &l->ev[l->n++];
    memset(e, 0, sizeof(*e));
    e->type = type;
    e->code = code;
    sh_buf_append(&e->data, data, len);
}

static void rec_free(rec_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        sh_buf_release(&l->ev[i].data);
    free(l->ev);
    memset(l, 0, sizeof(*l));
}

static int errno_by_name(const char *s)
{
    if (!strcmp(s, "EPROTO"))
        return -EPROTO;
    if (!strcmp(s, "EILSEQ"))
        return -EILSEQ;
    if (!strcmp(s, "EMSGSIZE"))
        return -EMSGSIZE;
    die("unknown errno name %s", s);
}

static const char *ev_name(int type)
{
    static const char *const names[] = {"text", "binary", "ping", "pong", "close"};
    return type >= 0 && type <= SH_WS_EV_CLOSE ? names[type] : "?";
}

static int ev_by_name(const char *s, size_t n)
{
    for (int t = 0; t <= SH_WS_EV_CLOSE; t++) {
        if (strlen(ev_name(t)) == n && !memcmp(s, ev_name(t), n))
            return t;
    }
    die("unknown event %.*s", (int)n, s);
}

static FILE *open_vectors(const char *name)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/ws_frame/%s", TESTS_DATADIR, name);
    vec_file = path;
    vec_line = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        die("cannot open");
    return f;
}

static void finish_reader_case(reader_case_t *c)
{
    if (!c->has_end)
        die("case \"%s\" has no end: line", c->name);
    n_reader_cases++;
}

static void load_reader_cases(void)
{
    FILE *f = open_vectors("reader.vec");
    char line[4096];
    size_t cap = 0;
    reader_case_t *c = NULL;
    while (fgets(line, sizeof(line), f)) {
        vec_line++;
        if (!strchr(line, '\n') && !feof(f))
            die("line too long");
        line[strcspn(line, "\r\n")] = '\0';
        const char *s = skip_space(line);
        if (*s == '#')
            continue;
        if (*s == '\0') {
            if (c) {
                finish_reader_case(c);
                c = NULL;
            }
            continue;
        }
        const char *colon = strchr(s, ':');
        if (!colon)
            die("expected KEY: VALUE");
        size_t klen = (size_t)(colon - s);
        const char *v = skip_space(colon + 1);
        if (klen == 4 && !memcmp(s, "case", 4)) {
            if (c)
                die("case without a blank line before it");
            if (n_reader_cases == cap) {
                cap = cap ? cap * 2 : 64;
                reader_cases = sh_realloc(reader_cases, cap * sizeof(*reader_cases));
            }
            c = &reader_cases[n_reader_cases];
            memset(c, 0, sizeof(*c));
            snprintf(c->name, sizeof(c->name), "%s", v);
            c->line = vec_line;
            c->mask = true;
            continue;
        }
        if (!c)
            die("%.*s: outside a case", (int)klen, s);
        if (klen == 4 && !memcmp(s, "mask", 4)) {
            if (strcmp(v, "yes") && strcmp(v, "no"))
                die("mask: yes or no");
            c->mask = !strcmp(v, "yes");
        } else if (klen == 3 && !memcmp(s, "max", 3)) {
            c->max = strtoull(v, NULL, 10);
        } else if (klen == 2 && !memcmp(s, "in", 2)) {
            parse_bytes(v, &c->in, false);
        } else if (klen == 2 && !memcmp(s, "ev", 2)) {
            size_t wlen = strcspn(v, " \t");
            int type = ev_by_name(v, wlen);
            v += wlen;
            uint16_t code = 0;
            if (type == SH_WS_EV_CLOSE) {
                char *end;
                unsigned long n = strtoul(v, &end, 10);
                if (end == v || n > 65535)
                    die("close needs a decimal code");
                code = (uint16_t)n;
                v = end;
            }
            sh_buf_t data = SH_BUF_INIT;
            parse_bytes(v, &data, false);
            rec_push(&c->expect, type, code, sh_buf_peek(&data), sh_buf_avail(&data));
            sh_buf_release(&data);
        } else if (klen == 3 && !memcmp(s, "end", 3)) {
            char word[16], err[16];
            unsigned long a;
            if (sscanf(v, "again %lu", &a) == 1) {
                c->end = -EAGAIN;
                c->rest = a;
            } else if (sscanf(v, "%15s %15s %lu", word, err, &a) == 3 && !strcmp(word, "error")) {
                c->end = errno_by_name(err);
                c->code = (uint16_t)a;
            } else {
                die("end: again N | error ERRNO CODE");
            }
            c->has_end = true;
        } else {
            die("unknown key %.*s", (int)klen, s);
        }
    }
    if (c)
        finish_reader_case(c);
    fclose(f);
    if (n_reader_cases == 0)
        die("no cases");
}

static void load_header_cases(void)
{
    FILE *f = open_vectors("header.vec");
    char line[1024];
    size_t cap = 0;
    while (fgets(line, sizeof(line), f)) {
        vec_line++;
        line[strcspn(line, "\r\n")] = '\0';
        const char *s = skip_space(line);
        if (*s == '#' || *s == '\0')
            continue;
        char *bar1 = strchr(line, '|');
        char *bar2 = bar1 ? strchr(bar1 + 1, '|') : NULL;
        if (!bar2)
            die("expected HEX | MASK | RESULT");
        *bar1 = *bar2 = '\0';
        if (n_header_cases == cap) {
            cap = cap ? cap * 2 : 64;
            header_cases = sh_realloc(header_cases, cap * sizeof(*header_cases));
        }
        header_case_t *c = &header_cases[n_header_cases++];
        memset(c, 0, sizeof(*c));
        c->line = vec_line;
        parse_bytes(line, &c->in, false);
        char mask[8];
        if (sscanf(bar1 + 1, "%7s", mask) != 1 || (strcmp(mask, "yes") && strcmp(mask, "no")))
            die("mask: yes or no");
        c->require_mask = !strcmp(mask, "yes");
        const char *r = skip_space(bar2 + 1);
        if (!strncmp(r, "again", 5)) {
            c->result = -EAGAIN;
            continue;
        }
        if (!strncmp(r, "eproto", 6)) {
            c->result = -EPROTO;
            continue;
        }
        unsigned fin, op, masked;
        uint64_t len;
        size_t hl;
        int used = 0;
        if (sscanf(r, "%u %u %u %" SCNu64 " %zu%n", &fin, &op, &masked, &len, &hl, &used) != 5)
            die("bad result");
        c->h.fin = fin;
        c->h.opcode = (uint8_t)op;
        c->h.masked = masked;
        c->h.payload_len = len;
        c->h.header_len = hl;
        c->result = (int)hl;
        if (masked) {
            sh_buf_t key = SH_BUF_INIT;
            parse_bytes(r + used, &key, false);
            if (sh_buf_avail(&key) != 4)
                die("masked result needs a 4-byte key");
            memcpy(c->h.mask, key.data, 4);
            sh_buf_release(&key);
        }
    }
    fclose(f);
}

/* ---------------------------------------------------------------- reader runs */

/* xorshift32: chunk sizes that are random but the same on every run. */
static uint32_t next_rand(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

enum { MODE_WHOLE, MODE_BYTES, MODE_SMALL, MODE_LARGE };

typedef struct run_result {
    rec_list_t events;
    int end;
    uint16_t code;
    size_t rest;
} run_result_t;

/* Feeds c->in to a fresh reader the way a transport does: append what was
 * "read", take events until -EAGAIN, read again. */
static void run_reader(const reader_case_t *c, int mode, uint32_t seed, run_result_t *out)
{
    sh_ws_reader_t r;
    sh_ws_reader_init(&r, c->max, c->mask);
    sh_buf_t in = SH_BUF_INIT;
    size_t total = sh_buf_avail(&c->in), pos = 0;
    int rc;
    uint16_t code = 0;

    memset(out, 0, sizeof(*out));
    for (;;) {
        sh_ws_event_t ev;
        while ((rc = sh_ws_reader_next(&r, &in, &ev, &code)) == 1) {
            if (ev.type != SH_WS_EV_CLOSE)
                ck_assert_uint_eq(ev.close_code, 0);
            rec_push(&out->events, (int)ev.type, ev.close_code, ev.data, ev.len);
        }
        if (rc != -EAGAIN || pos == total)
            break;
        size_t n = total - pos;
        if (mode == MODE_BYTES)
            n = 1;
        else if (mode == MODE_SMALL)
            n = 1 + next_rand(&seed) % 17;
        else if (mode == MODE_LARGE)
            n = 1 + next_rand(&seed) % 5000;
        if (n > total - pos)
            n = total - pos;
        sh_buf_append(&in, c->in.data + pos, n);
        pos += n;
    }
    out->end = rc;
    out->code = code;
    out->rest = sh_buf_avail(&in);
    if (rc != -EAGAIN) {
        /* A failed reader keeps failing the same way. */
        sh_ws_event_t ev;
        uint16_t again = 0;
        ck_assert_int_eq(sh_ws_reader_next(&r, &in, &ev, &again), rc);
        ck_assert_uint_eq(again, code);
    }
    sh_ws_reader_release(&r);
    sh_buf_release(&in);
}

static void check_run(const reader_case_t *c, const run_result_t *got, const char *how)
{
    for (size_t i = 0; i < got->events.n && i < c->expect.n; i++) {
        const rec_event_t *g = &got->events.ev[i], *e = &c->expect.ev[i];
        ck_assert_msg(g->type == e->type, "%s (line %d) %s: event %zu is %s, expected %s", c->name,
                      c->line, how, i, ev_name(g->type), ev_name(e->type));
        ck_assert_msg(g->code == e->code, "%s (line %d) %s: event %zu close code %u, expected %u",
                      c->name, c->line, how, i, g->code, e->code);
        ck_assert_msg(sh_buf_avail(&g->data) == sh_buf_avail(&e->data),
                      "%s (line %d) %s: event %zu has %zu bytes, expected %zu", c->name, c->line,
                      how, i, sh_buf_avail(&g->data), sh_buf_avail(&e->data));
        ck_assert_msg(!memcmp(sh_buf_peek(&g->data), sh_buf_peek(&e->data), sh_buf_avail(&e->data)),
                      "%s (line %d) %s: event %zu data differs", c->name, c->line, how, i);
    }
    ck_assert_msg(got->events.n == c->expect.n, "%s (line %d) %s: %zu events, expected %zu",
                  c->name, c->line, how, got->events.n, c->expect.n);
    ck_assert_msg(got->end == c->end, "%s (line %d) %s: ended with %d (%s), expected %d (%s)",
                  c->name, c->line, how, got->end, strerror(-got->end), c->end, strerror(-c->end));
    if (c->end == -EAGAIN)
        ck_assert_msg(got->rest == c->rest, "%s (line %d) %s: %zu bytes left, expected %zu",
                      c->name, c->line, how, got->rest, c->rest);
    else
        ck_assert_msg(got->code == c->code, "%s (line %d) %s: close code %u, expected %u", c->name,
                      c->line, how, got->code, c->code);
}

START_TEST(test_reader_vector)
{
    const reader_case_t *c = &reader_cases[_i];
    run_result_t got;
    char how[64];

    run_reader(c, MODE_WHOLE, 0, &got);
    check_run(c, &got, "whole");
    rec_free(&got.events);

    run_reader(c, MODE_BYTES, 0, &got);
    check_run(c, &got, "byte by byte");
    rec_free(&got.events);

    for (uint32_t seed = 1; seed <= 6; seed++) {
        int mode = seed <= 3 ? MODE_SMALL : MODE_LARGE;
        snprintf(how, sizeof(how), "%s chunks, seed %" PRIu32,
                 mode == MODE_SMALL ? "small" : "large", seed);
        run_reader(c, mode, seed * 2654435761u, &got);
        check_run(c, &got, how);
        rec_free(&got.events);
    }
}
END_TEST

/* ---------------------------------------------------------------- header parser */

START_TEST(test_header_vector)
{
    const header_case_t *c = &header_cases[_i];
    size_t n = sh_buf_avail(&c->in);
    bool failed = false;

    /* Every prefix, from an exactly sized copy (so ASan sees overreads). */
    for (size_t k = 0; k <= n; k++) {
        uint8_t *copy = sh_malloc(k);
        if (k)
            memcpy(copy, c->in.data, k);
        sh_ws_frame_header_t h;
        memset(&h, 0xA5, sizeof(h));
        int rc = sh_ws_frame_parse_header(copy, k, c->require_mask, &h);
        free(copy);
        if (k < n) {
            if (c->result == -EPROTO) {
                ck_assert_msg(rc == -EAGAIN || rc == -EPROTO, "line %d prefix %zu: %d", c->line, k,
                              rc);
                ck_assert_msg(!(failed && rc != -EPROTO), "line %d prefix %zu: eproto then %d",
                              c->line, k, rc);
                failed = rc == -EPROTO;
            } else {
                ck_assert_msg(rc == -EAGAIN, "line %d prefix %zu: %d", c->line, k, rc);
            }
            continue;
        }
        ck_assert_msg(rc == c->result, "line %d: got %d, expected %d", c->line, rc, c->result);
        if (rc <= 0)
            continue;
        ck_assert_int_eq(h.fin, c->h.fin);
        ck_assert_uint_eq(h.opcode, c->h.opcode);
        ck_assert_int_eq(h.masked, c->h.masked);
        ck_assert_uint_eq(h.payload_len, c->h.payload_len);
        ck_assert_uint_eq(h.header_len, c->h.header_len);
        ck_assert_mem_eq(h.mask, c->h.mask, 4);
    }
}
END_TEST

/* ---------------------------------------------------------------- encoders */

START_TEST(test_header_encode_lengths)
{
    static const struct {
        uint64_t len;
        size_t n;
        uint8_t bytes[10];
    } cases[] = {
        {0, 2, {0x82, 0x00}},
        {125, 2, {0x82, 0x7d}},
        {126, 4, {0x82, 0x7e, 0x00, 0x7e}},
        {65535, 4, {0x82, 0x7e, 0xff, 0xff}},
        {65536, 10, {0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}},
        {UINT64_C(4294967296), 10, {0x82, 0x7f, 0, 0, 0, 0x01, 0, 0, 0, 0}},
        {UINT64_C(0x0102030405060708), 10, {0x82, 0x7f, 1, 2, 3, 4, 5, 6, 7, 8}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t out[SH_WS_MAX_SERVER_HEADER];
        memset(out, 0xEE, sizeof(out));
        size_t n = sh_ws_frame_header_encode(out, SH_WS_OP_BINARY, true, cases[i].len);
        ck_assert_uint_eq(n, cases[i].n);
        ck_assert_mem_eq(out, cases[i].bytes, n);

        /* What we write, we (as a client would) parse back identically. */
        sh_ws_frame_header_t h;
        ck_assert_int_eq(sh_ws_frame_parse_header(out, n, false, &h), (int)n);
        ck_assert_uint_eq(h.payload_len, cases[i].len);
        ck_assert(h.fin);
        ck_assert(!h.masked);
        ck_assert_uint_eq(h.opcode, SH_WS_OP_BINARY);
        /* A server frame is never accepted where a mask is required. */
        ck_assert_int_eq(sh_ws_frame_parse_header(out, n, true, &h), -EPROTO);
    }
}
END_TEST

START_TEST(test_header_encode_opcodes_and_fin)
{
    uint8_t out[SH_WS_MAX_SERVER_HEADER];
    ck_assert_uint_eq(sh_ws_frame_header_encode(out, SH_WS_OP_TEXT, true, 5), 2);
    ck_assert_mem_eq(out, "\x81\x05", 2);
    ck_assert_uint_eq(sh_ws_frame_header_encode(out, SH_WS_OP_TEXT, false, 3), 2);
    ck_assert_mem_eq(out, "\x01\x03", 2);
    ck_assert_uint_eq(sh_ws_frame_header_encode(out, SH_WS_OP_CONT, true, 2), 2);
    ck_assert_mem_eq(out, "\x80\x02", 2);
    ck_assert_uint_eq(sh_ws_frame_header_encode(out, SH_WS_OP_PING, true, 0), 2);
    ck_assert_mem_eq(out, "\x89\x00", 2);
    ck_assert_uint_eq(sh_ws_frame_header_encode(out, SH_WS_OP_PONG, true, 125), 2);
    ck_assert_mem_eq(out, "\x8a\x7d", 2);
    ck_assert_uint_eq(sh_ws_frame_header_encode(out, SH_WS_OP_CLOSE, true, 2), 2);
    ck_assert_mem_eq(out, "\x88\x02", 2);
}
END_TEST

START_TEST(test_unmask_offsets)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint8_t plain[64], masked[64], work[72];
    for (size_t i = 0; i < sizeof(plain); i++) {
        plain[i] = (uint8_t)(i * 7 + 3);
        masked[i] = plain[i] ^ key[i & 3];
    }
    /* Unmask [0, len) in two pieces split at every point, from every
     * alignment of the buffer: the result is the plain text. */
    for (size_t align = 0; align < 8; align++) {
        for (size_t len = 0; len <= sizeof(plain); len++) {
            for (size_t split = 0; split <= len; split++) {
                uint8_t *p = work + align;
                memcpy(p, masked, len);
                sh_ws_unmask(p, split, key, 0);
                sh_ws_unmask(p + split, len - split, key, split);
                ck_assert_msg(!memcmp(p, plain, len), "align %zu len %zu split %zu", align, len,
                              split);
            }
        }
    }
    /* Offsets past 2^32 keep the phase (offset mod 4). */
    memcpy(work, masked + 1, 20);
    sh_ws_unmask(work, 20, key, UINT64_C(0x100000001));
    ck_assert_mem_eq(work, plain + 1, 20);
    /* Masking twice is the identity; length 0 touches nothing. */
    memcpy(work, plain, 64);
    sh_ws_unmask(work, 64, key, 3);
    sh_ws_unmask(work, 64, key, 3);
    ck_assert_mem_eq(work, plain, 64);
    sh_ws_unmask(NULL, 0, key, 0);
}
END_TEST

START_TEST(test_accept_key)
{
    char out[29];
    /* RFC 6455 §1.3 */
    ck_assert_int_eq(sh_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
    ck_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    ck_assert_int_eq(sh_ws_accept_key("x3JJHMbDL1EzLkh9GBhXDw==", out), 0);
    ck_assert_str_eq(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
    ck_assert_int_eq(sh_ws_accept_key("AAAAAAAAAAAAAAAAAAAAAA==", out), 0);
    ck_assert_str_eq(out, "ICX+Yqv66kxgM0FcWaLWlFLwTAI=");
    ck_assert_int_eq(sh_ws_accept_key("+/+/+/+/+/+/+/+/+/+/+w==", out), 0);
    ck_assert_str_eq(out, "M0DUs3om0SqzerhOhYSMM7WQuBQ=");

    static const char *const bad[] = {
        "",
        "dGhlIHNhbXBsZSBub25jZQ=",    /* 23 characters */
        "dGhlIHNhbXBsZSBub25jZQ===",  /* 25 */
        "dGhlIHNhbXBsZSBub25jZQ== ",  /* trailing space: trimmed by HTTP, not here */
        " dGhlIHNhbXBsZSBub25jZQ==",  /* leading space */
        "dGhlIHNhbXBsZSBub25jZQAA",   /* 18 bytes, no padding */
        "dGhlIHNhbXBsZSBub25j====",   /* padding too early */
        "dGhlIHNhbXBsZSBub25jZ-==",   /* base64url is not base64 */
        "dGhlIHNhbXBsZSBub25jZ_==",   /* base64url */
        "dGhlIHNhbXBsZSBub2\n5jZQ==", /* a newline */
        "dGhlIHNhbXBsZSBub25jZQ=A",   /* '=' then data */
        "c2hvcnQ=",                   /* 5 bytes */
        "dGhlIHNhbXBsZSBub25jZQ==dGhlIHNhbXBsZSBub25jZQ==",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(sh_ws_accept_key(bad[i], out) == -EINVAL, "accepted \"%s\"", bad[i]);
    ck_assert_int_eq(sh_ws_accept_key(NULL, out), -EINVAL);
}
END_TEST

START_TEST(test_close_payload)
{
    uint8_t out[125];
    char reason[300];

    ck_assert_uint_eq(sh_ws_close_payload(out, 0, "ignored"), 0);
    ck_assert_uint_eq(sh_ws_close_payload(out, 1000, NULL), 2);
    ck_assert_mem_eq(out, "\x03\xe8", 2);
    ck_assert_uint_eq(sh_ws_close_payload(out, 1009, ""), 2);
    ck_assert_mem_eq(out, "\x03\xf1", 2);
    ck_assert_uint_eq(sh_ws_close_payload(out, 4000, "bye"), 5);
    ck_assert_mem_eq(out,
                     "\x0f\xa0"
                     "bye",
                     5);

    /* Longer than fits: cut at 123 bytes of reason. */
    memset(reason, 'r', 200);
    reason[200] = '\0';
    ck_assert_uint_eq(sh_ws_close_payload(out, 1001, reason), 125);
    ck_assert_mem_eq(out + 2, reason, 123);

    /* A 2-byte character that would straddle the cut is left out whole. */
    memset(reason, 'a', 122);
    memcpy(reason + 122, "\xc3\xa9zz", 5);
    ck_assert_uint_eq(sh_ws_close_payload(out, 1000, reason), 2 + 122);
    /* ...and kept when it fits exactly. */
    memcpy(reason + 121, "\xc3\xa9", 3);
    ck_assert_uint_eq(sh_ws_close_payload(out, 1000, reason), 125);
    ck_assert_mem_eq(out + 2 + 121, "\xc3\xa9", 2);
    /* A 4-byte character straddling the cut. */
    memset(reason, 'a', 121);
    memcpy(reason + 121, "\xf0\x9f\x98\x80", 5);
    ck_assert_uint_eq(sh_ws_close_payload(out, 1000, reason), 2 + 121);

    /* Bytes that are not UTF-8 never reach the wire. */
    ck_assert_uint_eq(sh_ws_close_payload(out, 1011, "ok\xff tail"), 4);
    ck_assert_mem_eq(out, "\x03\xf3ok", 4);

    /* The payloads we build pass our own reader's checks. */
    sh_ws_reader_t r;
    sh_ws_reader_init(&r, 0, false);
    sh_buf_t in = SH_BUF_INIT;
    size_t n = sh_ws_close_payload(out, 1000, "done");
    uint8_t hdr[SH_WS_MAX_SERVER_HEADER];
    size_t hn = sh_ws_frame_header_encode(hdr, SH_WS_OP_CLOSE, true, n);
    sh_buf_append(&in, hdr, hn);
    sh_buf_append(&in, out, n);
    sh_ws_event_t ev;
    uint16_t code;
    ck_assert_int_eq(sh_ws_reader_next(&r, &in, &ev, &code), 1);
    ck_assert_int_eq(ev.type, SH_WS_EV_CLOSE);
    ck_assert_uint_eq(ev.close_code, 1000);
    ck_assert_uint_eq(ev.len, 4);
    ck_assert_mem_eq(ev.data, "done", 4);
    sh_ws_reader_release(&r);
    sh_buf_release(&in);
}
END_TEST

/* ---------------------------------------------------------------- reader internals */

static void append_masked_frame(sh_buf_t *b, uint8_t first, const void *payload, size_t n)
{
    static const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
    uint8_t hdr[SH_WS_MAX_SERVER_HEADER];
    size_t hn = sh_ws_frame_header_encode(hdr, first & 0x0F, first & 0x80, n);
    hdr[1] |= 0x80;
    sh_buf_append(b, hdr, hn);
    sh_buf_append(b, key, 4);
    char *w = sh_buf_reserve(b, n);
    if (n)
        memcpy(w, payload, n);
    sh_ws_unmask(w, n, key, 0);
    sh_buf_commit(b, n);
}

START_TEST(test_reader_zero_copy)
{
    sh_ws_reader_t r;
    sh_ws_reader_init(&r, 0, true);
    sh_buf_t in = SH_BUF_INIT;
    append_masked_frame(&in, 0x81, "hello", 5);
    append_masked_frame(&in, 0x82, "\x01\x02", 2);
    sh_ws_event_t ev;
    uint16_t code;

    ck_assert_int_eq(sh_ws_reader_next(&r, &in, &ev, &code), 1);
    ck_assert_int_eq(ev.type, SH_WS_EV_TEXT);
    /* The text lies unmasked where it arrived, and is still unconsumed. */
    ck_assert_ptr_eq(ev.data, in.data + 6);
    ck_assert_mem_eq(ev.data, "hello", 5);
    ck_assert_uint_eq(in.off, 0);

    ck_assert_int_eq(sh_ws_reader_next(&r, &in, &ev, &code), 1);
    ck_assert_int_eq(ev.type, SH_WS_EV_BINARY);
    ck_assert_ptr_eq(ev.data, in.data + 11 + 6);
    ck_assert_uint_eq(in.off, 11);

    ck_assert_int_eq(sh_ws_reader_next(&r, &in, &ev, &code), -EAGAIN);
    ck_assert_uint_eq(sh_buf_avail(&in), 0);
    /* Nothing was copied into the reader. */
    ck_assert_ptr_null(r.message.data);
    sh_ws_reader_release(&r);
    sh_buf_release(&in);
}
END_TEST

/* Control frames too lie where they arrived, also between the fragments
 * of a message, which still assembles. */
START_TEST(test_reader_control_zero_copy)
{
    sh_ws_reader_t r;
    sh_ws_reader_init(&r, 0, true);
    sh_buf_t in = SH_BUF_INIT;
    append_masked_frame(&in, 0x01, "ab", 2);
    append_masked_frame(&in, 0x89, "ping!", 5);
    append_masked_frame(&in, 0x80, "cd", 2);
    append_masked_frame(&in, 0x88,
                        "\x03\xe8"
                        "bye",
                        5);
    sh_ws_event_t ev;
    uint16_t code;

    ck_assert_int_eq(sh_ws_reader_next(&r, &in, &ev, &code), 1);
    ck_assert_int_eq(ev.type, SH_WS_EV_PING);
    ck_assert_ptr_eq(ev.data, in.data + 8 + 6);
    ck_assert_mem_eq(ev.data, "ping!", 5);
    ck_assert_uint_eq(in.off, 8);

    ck_assert_int_eq(sh_ws_reader_next(&r, &in, &ev, &code), 1);
    ck_assert_int_eq(ev.type, SH_WS_EV_TEXT);
    ck_assert_uint_eq(ev.len, 4);
    ck_assert_mem_eq(ev.data, "abcd", 4);

    ck_assert_int_eq(sh_ws_reader_next(&r, &in, &ev, &code), 1);
    ck_assert_int_eq(ev.type, SH_WS_EV_CLOSE);
    ck_assert_uint_eq(ev.close_code, 1000);
    ck_assert_ptr_eq(ev.data, in.data + 8 + 11 + 8 + 6 + 2);
    ck_assert_mem_eq(ev.data, "bye", 3);

    ck_assert_int_eq(sh_ws_reader_next(&r, &in, &ev, &code), -EAGAIN);
    ck_assert_uint_eq(sh_buf_avail(&in), 0);
    sh_ws_reader_release(&r);
    sh_buf_release(&in);
}
END_TEST

START_TEST(test_reader_announced_length_reserves_nothing)
{
    /* Unlimited reader, a fragmented message whose second fragment
     * announces 2^62 bytes: the reader waits, holding only what came. */
    sh_ws_reader_t r;
    sh_ws_reader_init(&r, 0, true);
    sh_buf_t in = SH_BUF_INIT;
    append_masked_frame(&in, 0x01, "a", 1);
    static const uint8_t huge[] = {0x00, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    sh_buf_append(&in, huge, sizeof(huge));
    sh_ws_event_t ev;
    uint16_t code;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(sh_ws_reader_next(&r, &in, &ev, &code), -EAGAIN);
    ck_assert_uint_le(r.message.cap, 64);
    ck_assert_uint_eq(sh_buf_avail(&in), sizeof(huge));
    ck_assert_uint_le(in.cap, 256);
    sh_ws_reader_release(&r);
    ck_assert_ptr_null(r.message.data);
    sh_buf_release(&in);
}
END_TEST

START_TEST(test_reader_releases_big_message_buffer)
{
    sh_ws_reader_t r;
    sh_ws_reader_init(&r, 1 << 20, true);
    sh_buf_t in = SH_BUF_INIT;
    char *big = sh_malloc(100000);
    memset(big, 'q', 100000);
    append_masked_frame(&in, 0x02, big, 50000);
    append_masked_frame(&in, 0x80, big, 50000);
    append_masked_frame(&in, 0x01, "a", 1);
    append_masked_frame(&in, 0x80, "b", 1);
    sh_ws_event_t ev;
    uint16_t code;

    ck_assert_int_eq(sh_ws_reader_next(&r, &in, &ev, &code), 1);
    ck_assert_int_eq(ev.type, SH_WS_EV_BINARY);
    ck_assert_uint_eq(ev.len, 100000);
    ck_assert_mem_eq(ev.data, big, 100000);
    ck_assert_ptr_eq(ev.data, r.message.data);

    /* The 100 KB buffer goes once its message is delivered... */
    ck_assert_int_eq(sh_ws_reader_next(&r, &in, &ev, &code), 1);
    ck_assert_int_eq(ev.type, SH_WS_EV_TEXT);
    ck_assert_mem_eq(ev.data, "ab", 2);
    ck_assert_uint_lt(r.message.cap, 1024);
    /* ...a small one is kept for the next message. */
    ck_assert_int_eq(sh_ws_reader_next(&r, &in, &ev, &code), -EAGAIN);
    ck_assert_ptr_nonnull(r.message.data);
    ck_assert_uint_eq(sh_buf_avail(&r.message), 0);
    free(big);
    sh_ws_reader_release(&r);
    sh_buf_release(&in);
}
END_TEST

START_TEST(test_reader_release_mid_message)
{
    /* Released halfway through a fragmented message (the sanitizer build
     * checks nothing leaks), then reused after init. */
    sh_ws_reader_t r;
    sh_ws_reader_init(&r, 0, true);
    sh_buf_t in = SH_BUF_INIT;
    append_masked_frame(&in, 0x01, "part", 4);
    sh_ws_event_t ev;
    uint16_t code;
    ck_assert_int_eq(sh_ws_reader_next(&r, &in, &ev, &code), -EAGAIN);
    ck_assert(r.in_message);
    sh_ws_reader_release(&r);
    sh_ws_reader_release(&r);

    sh_ws_reader_init(&r, 0, true);
    append_masked_frame(&in, 0x89, "p", 1);
    ck_assert_int_eq(sh_ws_reader_next(&r, &in, &ev, &code), 1);
    ck_assert_int_eq(ev.type, SH_WS_EV_PING);
    sh_ws_reader_release(&r);
    sh_buf_release(&in);
}
END_TEST

START_TEST(test_reader_unlimited_accepts_large)
{
    sh_ws_reader_t r;
    sh_ws_reader_init(&r, 0, true);
    sh_buf_t in = SH_BUF_INIT;
    size_t n = 3u << 20;
    char *big = sh_malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    append_masked_frame(&in, 0x81, big, n);
    sh_ws_event_t ev;
    uint16_t code;
    ck_assert_int_eq(sh_ws_reader_next(&r, &in, &ev, &code), 1);
    ck_assert_int_eq(ev.type, SH_WS_EV_TEXT);
    ck_assert_uint_eq(ev.len, n);
    ck_assert(!memcmp(ev.data, big, n));
    free(big);
    sh_ws_reader_release(&r);
    sh_buf_release(&in);
}
END_TEST

int main(void)
{
    load_reader_cases();
    load_header_cases();

    Suite *s = suite_create("ws_frame");
    TCase *tc = tcase_create("vectors");
    /* Large vectors fed byte by byte take a while under sanitizers. */
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_reader_vector, 0, (int)n_reader_cases);
    tcase_add_loop_test(tc, test_header_vector, 0, (int)n_header_cases);
    suite_add_tcase(s, tc);

    tc = tcase_create("codec");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_header_encode_lengths);
    tcase_add_test(tc, test_header_encode_opcodes_and_fin);
    tcase_add_test(tc, test_unmask_offsets);
    tcase_add_test(tc, test_accept_key);
    tcase_add_test(tc, test_close_payload);
    tcase_add_test(tc, test_reader_zero_copy);
    tcase_add_test(tc, test_reader_control_zero_copy);
    tcase_add_test(tc, test_reader_announced_length_reserves_nothing);
    tcase_add_test(tc, test_reader_releases_big_message_buffer);
    tcase_add_test(tc, test_reader_release_mid_message);
    tcase_add_test(tc, test_reader_unlimited_accepts_large);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);

    for (size_t i = 0; i < n_reader_cases; i++) {
        sh_buf_release(&reader_cases[i].in);
        rec_free(&reader_cases[i].expect);
    }
    free(reader_cases);
    for (size_t i = 0; i < n_header_cases; i++)
        sh_buf_release(&header_cases[i].in);
    free(header_cases);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
