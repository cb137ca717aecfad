#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "socketio/packet.h"

/* ---- vector files (tests/data/socketio/decode.txt and encode.txt, described at
 * the top of each file). Loaded once in main(), before the runner forks. */

#define MAX_VECTORS 512
#define MAX_FIELDS  7

typedef struct vector {
    int line;
    int nfields;
    char *field[MAX_FIELDS]; /* field[0] is the kind: ok, bad, enc */
} vector_t;

typedef struct vector_file {
    const char *name;
    vector_t v[MAX_VECTORS];
    int n;
} vector_file_t;

static vector_file_t decode_vectors = {.name = "decode.txt"};
static vector_file_t encode_vectors = {.name = "encode.txt"};

static void load_vectors(vector_file_t *vf)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/socketio/%s", TESTS_DATADIR, vf->name);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(EXIT_FAILURE);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        if (vf->n == MAX_VECTORS) {
            fprintf(stderr, "%s: more than %d vectors\n", path, MAX_VECTORS);
            exit(EXIT_FAILURE);
        }
        vector_t *v = &vf->v[vf->n++];
        v->line = lineno;
        char *s = sh_strdup(line);
        for (char *tok = s; tok && v->nfields < MAX_FIELDS; v->nfields++) {
            v->field[v->nfields] = tok;
            tok = strchr(tok, '|');
            if (tok)
                *tok++ = '\0';
        }
    }
    free(line);
    fclose(f);
}

/* %HH is the byte 0xHH; everything else is itself. Returns the length; out
 * needs strlen(s) + 1 bytes and is NUL-terminated. */
static size_t pct_decode(const char *s, char *out)
{
    size_t n = 0;
    while (*s) {
        unsigned v;
        if (s[0] == '%' && s[1] && s[2] && sscanf(s + 1, "%2x", &v) == 1) {
            out[n++] = (char)v;
            s += 3;
        } else {
            out[n++] = *s++;
        }
    }
    out[n] = '\0';
    return n;
}

static json_t *json_from_field(const char *field, int line)
{
    char *buf = sh_malloc(strlen(field) + 1);
    size_t n = pct_decode(field, buf);
    json_error_t jerr;
    json_t *j = json_loadb(buf, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    ck_assert_msg(j != NULL, "line %d: bad expected JSON: %s", line, jerr.text);
    free(buf);
    return j;
}

START_TEST(test_decode_vector)
{
    const vector_t *v = &decode_vectors.v[_i];
    const char *kind = v->field[0];
    ck_assert_msg((strcmp(kind, "ok") == 0 && v->nfields == 7) ||
                      (strcmp(kind, "bad") == 0 && v->nfields == 3),
                  "%s line %d: malformed vector", decode_vectors.name, v->line);

    char *in = sh_malloc(strlen(v->field[1]) + 1);
    size_t n = pct_decode(v->field[1], in);
    sh_sio_packet_t pkt;
    const char *err = NULL;
    int rc = sh_sio_packet_decode(in, n, &pkt, &err);

    if (strcmp(kind, "bad") == 0) {
        ck_assert_msg(rc == -EINVAL, "line %d: '%s' decoded, expected rejection", v->line,
                      v->field[1]);
        ck_assert_msg(err && strstr(err, v->field[2]), "line %d: reason '%s', expected '%s'",
                      v->line, err ? err : "(null)", v->field[2]);
        /* Nothing to release, and releasing is harmless. */
        ck_assert_ptr_null(pkt.data);
        ck_assert_ptr_null(pkt.bins);
        sh_sio_packet_release(&pkt);
        free(in);
        return;
    }

    ck_assert_msg(rc == 0, "line %d: '%s' rejected: %s", v->line, v->field[1], err);
    ck_assert_msg((int)pkt.type == atoi(v->field[2]), "line %d: type %d", v->line, pkt.type);
    char nsp[SH_SIO_MAX_NSP * 3 + 1];
    pct_decode(v->field[3], nsp);
    ck_assert_msg(strcmp(pkt.nsp, nsp) == 0, "line %d: nsp '%s'", v->line, pkt.nsp);
    int64_t id = strcmp(v->field[4], "-") == 0 ? -1 : strtoll(v->field[4], NULL, 10);
    ck_assert_msg(pkt.id == id, "line %d: id %lld", v->line, (long long)pkt.id);
    ck_assert_msg(pkt.attachments == strtoul(v->field[5], NULL, 10), "line %d: attachments %zu",
                  v->line, pkt.attachments);
    ck_assert_uint_eq(pkt.nbins, 0);
    ck_assert_ptr_null(pkt.bins);
    if (strcmp(v->field[6], "-") == 0) {
        ck_assert_msg(pkt.data == NULL, "line %d: unexpected payload", v->line);
    } else {
        json_t *want = json_from_field(v->field[6], v->line);
        ck_assert_msg(pkt.data && json_equal(pkt.data, want), "line %d: payload differs", v->line);
        json_decref(want);
    }
    sh_sio_packet_release(&pkt);
    free(in);
}
END_TEST

/* The text reader over every decode vector: what it takes, the decoder
 * takes too, as an EVENT with the same namespace, ack id, name and
 * argument values; it never takes what the decoder refuses. */
START_TEST(test_event_text_agrees_with_decoder)
{
    const vector_t *v = &decode_vectors.v[_i];
    char *in = sh_malloc(strlen(v->field[1]) + 1);
    size_t n = pct_decode(v->field[1], in);
    sh_sio_event_text_t ev;
    sh_json_span_t args[SH_SIO_TEXT_MAX_ARGS];
    size_t nargs = 0;
    bool text = sh_sio_event_peek(in, n, &ev) == 0 &&
                sh_sio_event_read_args(&ev, args, SH_SIO_TEXT_MAX_ARGS, &nargs) == 0;
    sh_sio_packet_t pkt;
    int rc = sh_sio_packet_decode(in, n, &pkt, NULL);
    if (text) {
        ck_assert_msg(rc == 0, "line %d: read as text, refused by the decoder", v->line);
        ck_assert_int_eq(pkt.type, SH_SIO_EVENT);
        ck_assert_str_eq(ev.nsp, pkt.nsp);
        ck_assert_int_eq(ev.id, pkt.id);
        ck_assert_str_eq(ev.event, json_string_value(json_array_get(pkt.data, 0)));
        ck_assert_uint_eq(nargs + 1, json_array_size(pkt.data));
        for (size_t i = 0; i < nargs; i++) {
            json_t *arg = json_loadb(args[i].p, args[i].len, JSON_DECODE_ANY, NULL);
            ck_assert_msg(json_equal(arg, json_array_get(pkt.data, i + 1)),
                          "line %d: argument %zu differs", v->line, i);
            json_decref(arg);
        }
    }
    if (rc == 0)
        sh_sio_packet_release(&pkt);
    free(in);
}
END_TEST

START_TEST(test_event_text)
{
    static const struct {
        const char *in;
        bool text;
        const char *nsp, *event;
        int64_t id;
        size_t nargs;
    } cases[] = {
        {"2[\"typing\",{\"a\":1}]", true, "/", "typing", -1, 1},
        {"2/chat,17[\"x\"]", true, "/chat", "x", 17, 0},
        {"2[\"x\",1,[2],\"3\"]", true, "/", "x", -1, 3},
        {"2[\"x\", 1 ]", true, "/", "x", -1, 1},
        {"2[\"\xc3\xa9\",1]", true, "/", "\xc3\xa9", -1, 1},
        {"2[\"x\\u0041\",1]", false, NULL, NULL, 0, 0}, /* escaped name */
        {"2[ \"x\",1]", false, NULL, NULL, 0, 0},       /* space before the name */
        {"2[42,1]", false, NULL, NULL, 0, 0},           /* numeric name */
        {"2 [\"x\"]", false, NULL, NULL, 0, 0},         /* space before payload */
        {"3[\"x\"]", false, NULL, NULL, 0, 0},          /* an ACK */
        {"51-[\"x\",{\"_placeholder\":true,\"num\":0}]", false, NULL, NULL, 0, 0},
        {"2[\"x\",{\"a\":1,\"a\":1}]", false, NULL, NULL, 0, 0}, /* repeated key */
        {"2[\"x\",\"\\u0000\"]", false, NULL, NULL, 0, 0},
        {"2[\"x\",1e400]", false, NULL, NULL, 0, 0},
        {"2[\"x\",]", false, NULL, NULL, 0, 0},
        {"2[\"x\"]x", false, NULL, NULL, 0, 0},
        {"2[\"x\xff\"]", false, NULL, NULL, 0, 0},     /* not UTF-8 */
        {"2[\"connect\",1]", false, NULL, NULL, 0, 0}, /* reserved */
        {"2[\"x", false, NULL, NULL, 0, 0},
        {"2", false, NULL, NULL, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sh_sio_event_text_t ev;
        sh_json_span_t args[SH_SIO_TEXT_MAX_ARGS];
        size_t nargs = 99;
        const char *in = cases[i].in;
        bool text = sh_sio_event_peek(in, strlen(in), &ev) == 0 &&
                    sh_sio_event_read_args(&ev, args, SH_SIO_TEXT_MAX_ARGS, &nargs) == 0;
        ck_assert_msg(text == cases[i].text, "%s: %s", in, text ? "read" : "not read");
        if (!text)
            continue;
        ck_assert_str_eq(ev.nsp, cases[i].nsp);
        ck_assert_str_eq(ev.event, cases[i].event);
        ck_assert_int_eq(ev.id, cases[i].id);
        ck_assert_uint_eq(nargs, cases[i].nargs);
    }
    /* A name of 255 bytes is read, 256 is the tree's; more arguments
     * than asked for too. */
    char in[300];
    int n = snprintf(in, sizeof(in), "2[\"%0255d\"]", 0);
    sh_sio_event_text_t ev;
    sh_json_span_t args[2];
    size_t nargs;
    ck_assert_int_eq(sh_sio_event_peek(in, (size_t)n, &ev), 0);
    ck_assert_uint_eq(strlen(ev.event), 255);
    n = snprintf(in, sizeof(in), "2[\"%0256d\"]", 0);
    ck_assert_int_eq(sh_sio_event_peek(in, (size_t)n, &ev), -EINVAL);
    const char *three = "2[\"x\",1,2,3]", *two = "2[\"x\",1,2]";
    ck_assert_int_eq(sh_sio_event_peek(three, strlen(three), &ev), 0);
    ck_assert_int_eq(sh_sio_event_read_args(&ev, args, 2, &nargs), -EINVAL);
    ck_assert_int_eq(sh_sio_event_peek(two, strlen(two), &ev), 0);
    ck_assert_int_eq(sh_sio_event_read_args(&ev, args, 2, &nargs), 0);
    ck_assert_uint_eq(nargs, 2);
    ck_assert_int_eq(args[1].len, 1);
    ck_assert_int_eq(args[1].p[0], '2');
}
END_TEST

START_TEST(test_encode_vector)
{
    const vector_t *v = &encode_vectors.v[_i];
    ck_assert_msg(strcmp(v->field[0], "enc") == 0 && v->nfields == 7,
                  "%s line %d: malformed vector", encode_vectors.name, v->line);

    sh_sio_type_t type = (sh_sio_type_t)atoi(v->field[1]);
    char nspbuf[1024];
    const char *nsp = NULL;
    if (strcmp(v->field[2], "-") != 0) {
        pct_decode(v->field[2], nspbuf);
        nsp = nspbuf;
    }
    int64_t id = strcmp(v->field[3], "-") == 0 ? -1 : strtoll(v->field[3], NULL, 10);
    size_t nbins = strtoul(v->field[4], NULL, 10);
    json_t *data = strcmp(v->field[5], "-") == 0 ? NULL : json_from_field(v->field[5], v->line);
    char *want = sh_malloc(strlen(v->field[6]) + 1);
    size_t want_len = pct_decode(v->field[6], want);

    sh_msg_t *bins[SH_SIO_MAX_ATTACHMENTS];
    for (size_t i = 0; i < nbins; i++) {
        unsigned char byte = (unsigned char)i;
        bins[i] = sh_msg_new(&byte, 1, true);
    }
    sh_msg_t *msgs[SH_SIO_MAX_ATTACHMENTS + 1];
    int rc =
        sh_sio_packet_encode(type, nsp, id, data, bins, nbins, msgs, SH_SIO_MAX_ATTACHMENTS + 1);
    ck_assert_msg(rc == (int)(1 + nbins), "line %d: encode returned %d", v->line, rc);
    ck_assert(!msgs[0]->binary);
    ck_assert_msg(msgs[0]->len == want_len && memcmp(msgs[0]->data, want, want_len) == 0,
                  "line %d: got '%s'", v->line, msgs[0]->data);
    ck_assert_int_eq(msgs[0]->data[msgs[0]->len], '\0');
    for (size_t i = 0; i < nbins; i++) {
        ck_assert_ptr_eq(msgs[1 + i], bins[i]);
        ck_assert_uint_eq(bins[i]->refs, 2);
    }

    /* What we write, we read back as the same packet. */
    sh_sio_packet_t pkt;
    const char *err = NULL;
    ck_assert_msg(sh_sio_packet_decode(msgs[0]->data + 1, msgs[0]->len - 1, &pkt, &err) == 0,
                  "line %d: own output rejected: %s", v->line, err);
    ck_assert_int_eq(pkt.type, msgs[0]->data[1] - '0');
    ck_assert_uint_eq(pkt.attachments, nbins);
    ck_assert_int_eq(pkt.id, id);
    ck_assert_str_eq(pkt.nsp, nsp && nsp[0] ? nsp : "/");
    ck_assert(data ? json_equal(pkt.data, data) : pkt.data == NULL);
    for (size_t i = 0; i < nbins; i++)
        ck_assert_int_eq(sh_sio_packet_add_attachment(&pkt, msgs[1 + i]), i + 1 == nbins);
    ck_assert(sh_sio_packet_complete(&pkt));
    sh_sio_packet_release(&pkt);

    for (int i = 0; i < rc; i++)
        sh_msg_unref(msgs[i]);
    for (size_t i = 0; i < nbins; i++) {
        ck_assert_uint_eq(bins[i]->refs, 1);
        sh_msg_unref(bins[i]);
    }
    json_decref(data);
    free(want);
}
END_TEST

/* ---- decoding: what the vector files cannot say in one line */

static int decode_str(const char *s, sh_sio_packet_t *pkt, const char **err)
{
    return sh_sio_packet_decode(s, strlen(s), pkt, err);
}

START_TEST(test_deep_nesting_rejected)
{
    /* jansson stops at 2048 levels; a 100000-deep input must fail cleanly
     * (no stack overflow in the parser or in our walks). */
    size_t depth = 100000;
    char *s = sh_malloc(2 * depth + 3);
    memcpy(s, "51-", 3);
    memset(s + 3, '[', depth);
    sh_sio_packet_t pkt;
    const char *err = NULL;
    ck_assert_int_eq(sh_sio_packet_decode(s, depth + 3, &pkt, &err), -EINVAL);
    ck_assert_str_eq(err, "JSON payload nested too deeply");
    /* The same as an EVENT: "2[[[[..." */
    ck_assert_int_eq(sh_sio_packet_decode(s + 2, depth + 1, &pkt, &err), -EINVAL);
    ck_assert_str_eq(err, "unknown packet type");
    s[2] = '2';
    ck_assert_int_eq(sh_sio_packet_decode(s + 2, depth + 1, &pkt, &err), -EINVAL);
    ck_assert_str_eq(err, "JSON payload nested too deeply");
    /* Closed again: still too deep. */
    memset(s + 3 + depth, ']', depth);
    ck_assert_int_eq(sh_sio_packet_decode(s + 2, 2 * depth + 1, &pkt, &err), -EINVAL);
    ck_assert_str_eq(err, "JSON payload nested too deeply");
    free(s);
}
END_TEST

/* "<type><header>[\"a\"," + (depth - 1) nested arrays, the innermost holding
 * tail, + "]"...: a payload nested exactly depth levels. */
static char *nested(const char *head, size_t depth, const char *tail)
{
    sh_buf_t b = SH_BUF_INIT;
    sh_buf_append_str(&b, head);
    sh_buf_append_str(&b, "[\"a\",");
    for (size_t i = 1; i < depth; i++)
        sh_buf_append_byte(&b, '[');
    sh_buf_append_str(&b, tail);
    for (size_t i = 0; i < depth; i++)
        sh_buf_append_byte(&b, ']');
    return sh_buf_steal(&b, NULL);
}

START_TEST(test_nesting_limit)
{
    sh_sio_packet_t pkt;
    const char *err = NULL;
    char *s = nested("2", 2048, "");
    ck_assert_int_eq(decode_str(s, &pkt, &err), 0);
    ck_assert_uint_eq(json_array_size(pkt.data), 2);
    sh_sio_packet_release(&pkt);
    free(s);

    s = nested("2", 2049, "");
    ck_assert_int_eq(decode_str(s, &pkt, &err), -EINVAL);
    ck_assert_str_eq(err, "JSON payload nested too deeply");
    free(s);

    /* A placeholder as deep as jansson accepts one (it counts the values
     * inside the object as a level too): the walk gets there and checks it. */
    s = nested("51-", 2046, "{\"_placeholder\":true,\"num\":0}");
    ck_assert_int_eq(decode_str(s, &pkt, &err), 0);
    sh_sio_packet_release(&pkt);
    free(s);
    s = nested("51-", 2046, "{\"_placeholder\":true,\"num\":1}");
    ck_assert_int_eq(decode_str(s, &pkt, &err), -EINVAL);
    ck_assert_str_eq(err, "placeholder refers to a missing attachment");
    free(s);
}
END_TEST

START_TEST(test_namespace_length)
{
    char s[SH_SIO_MAX_NSP + 16];
    sh_sio_packet_t pkt;
    const char *err = NULL;

    /* Exactly SH_SIO_MAX_NSP bytes, with and without the ',' */
    s[0] = '0';
    s[1] = '/';
    memset(s + 2, 'n', SH_SIO_MAX_NSP - 1);
    strcpy(s + 1 + SH_SIO_MAX_NSP, ",{}");
    ck_assert_int_eq(decode_str(s, &pkt, &err), 0);
    ck_assert_uint_eq(strlen(pkt.nsp), SH_SIO_MAX_NSP);
    ck_assert_int_eq(pkt.nsp[SH_SIO_MAX_NSP - 1], 'n');
    ck_assert(json_is_object(pkt.data));
    sh_sio_packet_release(&pkt);
    s[1 + SH_SIO_MAX_NSP] = '\0';
    ck_assert_int_eq(decode_str(s, &pkt, &err), 0);
    ck_assert_uint_eq(strlen(pkt.nsp), SH_SIO_MAX_NSP);
    ck_assert_ptr_null(pkt.data);

    /* One more byte is too long, whether a ',' follows or not. */
    memset(s + 2, 'n', SH_SIO_MAX_NSP);
    strcpy(s + 2 + SH_SIO_MAX_NSP, ",{}");
    ck_assert_int_eq(decode_str(s, &pkt, &err), -EINVAL);
    ck_assert_str_eq(err, "namespace too long");
    s[2 + SH_SIO_MAX_NSP] = '\0';
    ck_assert_int_eq(decode_str(s, &pkt, &err), -EINVAL);
    ck_assert_str_eq(err, "namespace too long");
}
END_TEST

START_TEST(test_err_may_be_null)
{
    sh_sio_packet_t pkt;
    ck_assert_int_eq(decode_str("2[]", &pkt, NULL), -EINVAL);
    ck_assert_int_eq(decode_str("2[\"a\"]", &pkt, NULL), 0);
    sh_sio_packet_release(&pkt);
}
END_TEST

START_TEST(test_decode_does_not_read_past_n)
{
    /* The length is the packet, not the NUL: "2[\"a\"]" followed by bytes
     * that would be garbage if read. */
    const char s[] = "2[\"a\"]garbage";
    sh_sio_packet_t pkt;
    const char *err = NULL;
    ck_assert_int_eq(sh_sio_packet_decode(s, 6, &pkt, &err), 0);
    ck_assert_str_eq(json_string_value(json_array_get(pkt.data, 0)), "a");
    sh_sio_packet_release(&pkt);
    /* An ack id that ends at n, and a namespace that ends at n. */
    ck_assert_int_eq(sh_sio_packet_decode("012345", 3, &pkt, &err), 0);
    ck_assert_int_eq(pkt.id, 12);
    ck_assert_int_eq(sh_sio_packet_decode("0/ab,", 3, &pkt, &err), 0);
    ck_assert_str_eq(pkt.nsp, "/a");
}
END_TEST

/* ---- attachments */

START_TEST(test_attachments_complete)
{
    sh_sio_packet_t pkt;
    const char *err = NULL;
    const char *s =
        "62-/admin,4[{\"_placeholder\":true,\"num\":1},{\"_placeholder\":true,\"num\":0}]";
    ck_assert_int_eq(decode_str(s, &pkt, &err), 0);
    ck_assert_int_eq(pkt.type, SH_SIO_BINARY_ACK);
    ck_assert_uint_eq(pkt.attachments, 2);
    ck_assert(!sh_sio_packet_complete(&pkt));

    sh_msg_t *a = sh_msg_new("\x01\x02", 2, true);
    sh_msg_t *b = sh_msg_new("\x03", 1, true);
    sh_msg_t *text = sh_msg_new("4x", 2, false);
    ck_assert_int_eq(sh_sio_packet_add_attachment(&pkt, text), -EINVAL);
    ck_assert_uint_eq(text->refs, 1);
    ck_assert_int_eq(sh_sio_packet_add_attachment(&pkt, a), 0);
    ck_assert(!sh_sio_packet_complete(&pkt));
    ck_assert_int_eq(sh_sio_packet_add_attachment(&pkt, b), 1);
    ck_assert(sh_sio_packet_complete(&pkt));
    ck_assert_uint_eq(a->refs, 2);
    ck_assert_ptr_eq(pkt.bins[0], a);
    ck_assert_ptr_eq(pkt.bins[1], b);
    ck_assert_int_eq(sh_sio_packet_add_attachment(&pkt, a), -EINVAL); /* one too many */
    ck_assert_uint_eq(a->refs, 2);

    sh_sio_packet_release(&pkt);
    ck_assert_uint_eq(a->refs, 1);
    ck_assert_uint_eq(b->refs, 1);
    ck_assert_ptr_null(pkt.data);
    ck_assert_ptr_null(pkt.bins);
    sh_sio_packet_release(&pkt); /* twice is fine */
    sh_msg_unref(a);
    sh_msg_unref(b);
    sh_msg_unref(text);
}
END_TEST

START_TEST(test_attachments_none_expected)
{
    sh_sio_packet_t pkt;
    const char *err = NULL;
    ck_assert_int_eq(decode_str("2[\"a\",{\"_placeholder\":true,\"num\":0}]", &pkt, &err), 0);
    ck_assert(sh_sio_packet_complete(&pkt));
    sh_msg_t *a = sh_msg_new("\x01", 1, true);
    ck_assert_int_eq(sh_sio_packet_add_attachment(&pkt, a), -EINVAL);
    ck_assert_uint_eq(a->refs, 1);
    sh_msg_unref(a);
    sh_sio_packet_release(&pkt);
}
END_TEST

START_TEST(test_release_with_partial_attachments)
{
    sh_sio_packet_t pkt;
    const char *err = NULL;
    ck_assert_int_eq(decode_str("53-[\"a\"]", &pkt, &err), 0);
    sh_msg_t *a = sh_msg_new("\x01", 1, true);
    ck_assert_int_eq(sh_sio_packet_add_attachment(&pkt, a), 0);
    ck_assert_uint_eq(a->refs, 2);
    sh_sio_packet_release(&pkt); /* a peer went away mid-packet */
    ck_assert_uint_eq(a->refs, 1);
    sh_msg_unref(a);
}
END_TEST

/* ---- encoding: argument errors */

START_TEST(test_encode_nospc)
{
    sh_msg_t *bin = sh_msg_new("\x01", 1, true);
    sh_msg_t *msgs[2] = {NULL, NULL};
    json_t *data = json_pack("[s{sbsi}]", "a", "_placeholder", 1, "num", 0);
    ck_assert_int_eq(sh_sio_packet_encode(SH_SIO_EVENT, NULL, -1, data, &bin, 1, msgs, 1), -ENOSPC);
    ck_assert_int_eq(sh_sio_packet_encode(SH_SIO_EVENT, NULL, -1, data, &bin, 1, msgs, 0), -ENOSPC);
    ck_assert_int_eq(sh_sio_packet_encode(SH_SIO_EVENT, NULL, -1, data, NULL, 0, msgs, 0), -ENOSPC);
    ck_assert_ptr_null(msgs[0]);
    ck_assert_uint_eq(bin->refs, 1);
    ck_assert_int_eq(sh_sio_packet_encode(SH_SIO_EVENT, NULL, -1, data, &bin, 1, msgs, 2), 2);
    ck_assert_str_eq(msgs[0]->data, "451-[\"a\",{\"_placeholder\":true,\"num\":0}]");
    ck_assert_ptr_eq(msgs[1], bin);
    sh_msg_unref(msgs[0]);
    sh_msg_unref(msgs[1]);
    sh_msg_unref(bin);
    json_decref(data);
}
END_TEST

START_TEST(test_encode_invalid)
{
    sh_msg_t *bin = sh_msg_new("\x01", 1, true);
    sh_msg_t *text = sh_msg_new("x", 1, false);
    sh_msg_t *msgs[4] = {NULL};
    json_t *obj = json_object();
    /* Attachments only on EVENT and ACK, and only binary ones. */
    ck_assert_int_eq(sh_sio_packet_encode(SH_SIO_CONNECT, NULL, -1, obj, &bin, 1, msgs, 4),
                     -EINVAL);
    ck_assert_int_eq(sh_sio_packet_encode(SH_SIO_CONNECT_ERROR, NULL, -1, obj, &bin, 1, msgs, 4),
                     -EINVAL);
    ck_assert_int_eq(sh_sio_packet_encode(SH_SIO_DISCONNECT, NULL, -1, NULL, &bin, 1, msgs, 4),
                     -EINVAL);
    ck_assert_int_eq(sh_sio_packet_encode(SH_SIO_EVENT, NULL, -1, obj, &text, 1, msgs, 4), -EINVAL);
    ck_assert_int_eq(sh_sio_packet_encode((sh_sio_type_t)7, NULL, -1, obj, NULL, 0, msgs, 4),
                     -EINVAL);
    /* Namespaces a peer could not read back. */
    ck_assert_int_eq(sh_sio_packet_encode(SH_SIO_CONNECT, "admin", -1, NULL, NULL, 0, msgs, 4),
                     -EINVAL);
    ck_assert_int_eq(sh_sio_packet_encode(SH_SIO_CONNECT, "/a,b", -1, NULL, NULL, 0, msgs, 4),
                     -EINVAL);
    ck_assert_int_eq(sh_sio_packet_encode(SH_SIO_CONNECT, "/a\xff", -1, NULL, NULL, 0, msgs, 4),
                     -EINVAL);
    char longnsp[SH_SIO_MAX_NSP + 2];
    longnsp[0] = '/';
    memset(longnsp + 1, 'n', SH_SIO_MAX_NSP);
    longnsp[SH_SIO_MAX_NSP + 1] = '\0';
    ck_assert_int_eq(sh_sio_packet_encode(SH_SIO_CONNECT, longnsp, -1, NULL, NULL, 0, msgs, 4),
                     -EINVAL);
    longnsp[SH_SIO_MAX_NSP] = '\0'; /* SH_SIO_MAX_NSP bytes: fine */
    ck_assert_int_eq(sh_sio_packet_encode(SH_SIO_CONNECT, longnsp, -1, NULL, NULL, 0, msgs, 4), 1);
    ck_assert_uint_eq(msgs[0]->len, 2 + SH_SIO_MAX_NSP + 1);
    sh_msg_unref(msgs[0]);
    ck_assert_uint_eq(bin->refs, 1);
    ck_assert_uint_eq(text->refs, 1);
    sh_msg_unref(bin);
    sh_msg_unref(text);
    json_decref(obj);
}
END_TEST

START_TEST(test_encode_too_many_attachments)
{
    size_t n = SH_SIO_MAX_ATTACHMENTS + 1;
    sh_msg_t *bins[SH_SIO_MAX_ATTACHMENTS + 1];
    sh_msg_t *msgs[SH_SIO_MAX_ATTACHMENTS + 2];
    for (size_t i = 0; i < n; i++)
        bins[i] = sh_msg_new("\x01", 1, true);
    json_t *data = json_pack("[s]", "a");
    ck_assert_int_eq(sh_sio_packet_encode(SH_SIO_EVENT, NULL, -1, data, bins, n, msgs, n + 1),
                     -EINVAL);
    ck_assert_int_eq(sh_sio_packet_encode(SH_SIO_EVENT, NULL, -1, data, bins, n - 1, msgs, n + 1),
                     (int)n);
    ck_assert_str_eq(msgs[0]->data, "4564-[\"a\"]");
    for (size_t i = 0; i < n; i++)
        sh_msg_unref(msgs[i]);
    for (size_t i = 0; i < n; i++)
        sh_msg_unref(bins[i]);
    json_decref(data);
}
END_TEST

START_TEST(test_encode_bad_json)
{
    /* A string jansson was told not to check: the dump fails, so does the
     * encode, and nothing leaks. */
    json_t *data = json_array();
    json_array_append_new(data, json_string_nocheck("bad \xff utf-8"));
    sh_msg_t *msgs[1] = {NULL};
    ck_assert_int_eq(sh_sio_packet_encode(SH_SIO_EVENT, NULL, -1, data, NULL, 0, msgs, 1), -EINVAL);
    ck_assert_ptr_null(msgs[0]);
    json_decref(data);
}
END_TEST

/* ---- sh_json_append */

static void assert_json_text(const char *in, const char *want)
{
    json_error_t jerr;
    json_t *j = json_loads(in, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    ck_assert_msg(j != NULL, "%s: %s", in, jerr.text);
    sh_buf_t b = SH_BUF_INIT;
    sh_buf_append_str(&b, "x");
    ck_assert_int_eq(sh_json_append(&b, j), 0);
    ck_assert_str_eq(sh_buf_peek(&b) + 1, want);
    sh_buf_release(&b);
    json_decref(j);
}

START_TEST(test_json_append)
{
    /* What JSON.stringify writes, and where jansson differs (see the
     * comment above sh_json_append). */
    assert_json_text("1.5", "1.5");
    assert_json_text("0.1", "0.10000000000000001");    /* JS: 0.1 */
    assert_json_text("1e21", "1e21");                  /* JS: 1e+21 */
    assert_json_text("-0.0", "-0.0");                  /* JS: 0 */
    assert_json_text("1.0", "1.0");                    /* JS: 1 */
    assert_json_text("5e-7", "4.9999999999999998e-7"); /* JS: 5e-7 */
    assert_json_text("0.30000000000000004", "0.30000000000000004");
    assert_json_text("-9223372036854775808", "-9223372036854775808");
    assert_json_text("\"a/b\"", "\"a/b\"");
    assert_json_text("\"\\u00e9\\u65e5\\ud83d\\ude00\"",
                     "\"\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80\"");
    assert_json_text("\"\\u001f\\u007f\"", "\"\\u001F\x7f\"");
    assert_json_text("{ \"b\" : [ 1 , 2 ] , \"a\" : { } }", "{\"b\":[1,2],\"a\":{}}");
    assert_json_text("null", "null");

    /* Strings holding NUL survive. */
    sh_buf_t b = SH_BUF_INIT;
    json_t *s = json_stringn("a\0b", 3);
    ck_assert_int_eq(sh_json_append(&b, s), 0);
    ck_assert_uint_eq(sh_buf_avail(&b), 10);
    ck_assert_mem_eq(sh_buf_peek(&b), "\"a\\u0000b\"", 10);
    json_decref(s);
    sh_buf_release(&b);
}
END_TEST

START_TEST(test_json_append_failure_leaves_buffer)
{
    sh_buf_t b = SH_BUF_INIT;
    sh_buf_append_str(&b, "keep");
    ck_assert_int_eq(sh_json_append(&b, NULL), -EINVAL);
    ck_assert_str_eq(sh_buf_peek(&b), "keep");

    /* A partial dump is taken back, also after the buffer compacted. */
    json_t *arr = json_array();
    json_array_append_new(arr, json_string("ok"));
    json_array_append_new(arr, json_string_nocheck("\xff"));
    sh_buf_consume(&b, 2);
    ck_assert_int_eq(sh_json_append(&b, arr), -EINVAL);
    ck_assert_uint_eq(sh_buf_avail(&b), 2);
    ck_assert_str_eq(sh_buf_peek(&b), "ep");
    json_decref(arr);
    sh_buf_release(&b);
}
END_TEST

/* ---- round trip through real attachments */

/* ---- EVENT messages from JSON text ---- */

/* The member of a chat event's text named key (the test's bodies have it). */
static sh_json_span_t member(const char *text, const char *key)
{
    sh_json_span_t all = {text, strlen(text)}, k, v;
    sh_json_cursor_t c;
    ck_assert(sh_json_object_begin(&c, all));
    while (sh_json_object_next(&c, &k, &v))
        if (sh_json_span_eq(k, key))
            return v;
    ck_abort_msg("no %s in %s", key, text);
    return v;
}

/* The chat event as the tree way sends it: {chat_id, message_id, data}. */
static sh_msg_t *chat_from_tree(const char *nsp, const char *event, const char *text)
{
    json_error_t err;
    json_t *body = json_loads(text, JSON_REJECT_DUPLICATES, &err);
    ck_assert_msg(body != NULL, "%s: %s", text, err.text);
    json_t *args =
        json_pack("[{s:O,s:O,s:O}]", "chat_id", json_object_get(body, "chat_id"), "message_id",
                  json_object_get(body, "message_id"), "data", json_object_get(body, "data"));
    json_t *arr = json_array();
    json_array_append_new(arr, json_string(event));
    json_array_extend(arr, args);
    sh_msg_t *msgs[1];
    ck_assert_int_eq(sh_sio_packet_encode(SH_SIO_EVENT, nsp, -1, arr, NULL, 0, msgs, 1), 1);
    json_decref(arr);
    json_decref(args);
    json_decref(body);
    return msgs[0];
}

static sh_msg_t *chat_from_text(const char *nsp, const char *event, const char *text)
{
    const sh_json_span_t parts[] = {
        {"{\"chat_id\":", 11},
        member(text, "chat_id"),
        {",\"message_id\":", 14},
        member(text, "message_id"),
        {",\"data\":", 8},
        member(text, "data"),
        {"}", 1},
    };
    /* Copied as it is unless the validator saw a \u escape, as the
     * callers do. */
    sh_json_info_t info;
    ck_assert_int_eq(sh_json_validate(text, strlen(text), &info), 0);
    return sh_sio_event_msg_from_text(nsp, event, parts, 7, info.unicode_escapes);
}

/* The JSON after "42" and the namespace. */
static json_t *packet_json(const sh_msg_t *m)
{
    const char *p = memchr(m->data, '[', m->len);
    ck_assert(p != NULL);
    json_error_t err;
    json_t *v = json_loadb(p, m->len - (size_t)(p - m->data), 0, &err);
    ck_assert_msg(v != NULL, "%s: %s", m->data, err.text);
    return v;
}

START_TEST(test_event_from_text_same_bytes)
{
    /* Written compact, as jansson writes: the same bytes either way. */
    static const char *const bodies[] = {
        "{\"user_id\":\"u\",\"chat_id\":\"c1\",\"message_id\":\"m1\",\"data\":{\"type\":"
        "\"chat:completion\",\"data\":{\"content\":\"Hello\",\"done\":false}}}",
        "{\"data\":[1,-2,3.5,true,null,\"\xc3\xa9\xf0\x9f\x98\x80/\"],\"message_id\":null,"
        "\"chat_id\":42,\"user_id\":\"u\"}",
        "{\"user_id\":\"u\",\"chat_id\":\"c\",\"message_id\":\"m\",\"data\":\"a\\\"b\\\\c\\n\"}",
        "{\"user_id\":\"u\",\"chat_id\":{},\"message_id\":[],\"data\":{\"a\":{\"b\":[[]]}}}",
        /* As Python's json.dumps writes it: every character outside ASCII
         * a \u escape, which the browsers get as the character. */
        "{\"user_id\":\"u\",\"chat_id\":\"c\",\"message_id\":\"m\",\"data\":{\"content\":"
        "\"\\u4e2d\\u6587 caf\\u00e9 \\ud83d\\ude00\\n\\\"\\u00e9\\\"\"}}",
    };
    static const char *const nsps[] = {"/", "/admin", NULL};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        for (size_t k = 0; k < 3; k++) {
            sh_msg_t *tree = chat_from_tree(nsps[k], "chat-events", bodies[i]);
            sh_msg_t *text = chat_from_text(nsps[k], "chat-events", bodies[i]);
            ck_assert_ptr_nonnull(text);
            ck_assert(!text->binary);
            ck_assert_msg(tree->len == text->len && !memcmp(tree->data, text->data, tree->len),
                          "tree %s\ntext %s", tree->data, text->data);
            ck_assert_int_eq(text->data[text->len], '\0');
            sh_msg_unref(tree);
            sh_msg_unref(text);
        }
    }
}
END_TEST

START_TEST(test_event_from_text_same_values)
{
    /* Written otherwise: other bytes, the same values for every reader. */
    static const char *const bodies[] = {
        "{ \"user_id\" : \"u\" ,\n \"chat_id\" : \"c\", \"message_id\":\"m\",\n"
        "  \"data\" : { \"n\" : 1.50 , \"e\": 1e2, \"s\": \"\\u00e9\\/\\uD83D\\uDE00\" } }",
        "{\"user_id\":\"u\",\"chat_id\":-0,\"message_id\":1E-3,\"data\":[ ]}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        sh_msg_t *tree = chat_from_tree("/", "events", bodies[i]);
        sh_msg_t *text = chat_from_text("/", "events", bodies[i]);
        ck_assert_int_eq(memcmp(text->data, "42[\"events\",{", 13), 0);
        json_t *a = packet_json(tree), *b = packet_json(text);
        ck_assert_msg(json_equal(a, b), "tree %s\ntext %s", tree->data, text->data);
        json_decref(a);
        json_decref(b);
        sh_msg_unref(tree);
        sh_msg_unref(text);
    }
}
END_TEST

START_TEST(test_event_from_text_refused)
{
    const sh_json_span_t arg = {"1", 1};
    ck_assert_ptr_null(sh_sio_event_msg_from_text("/", "a\"b", &arg, 1, true));
    ck_assert_ptr_null(sh_sio_event_msg_from_text("/", "a\\b", &arg, 1, true));
    ck_assert_ptr_null(sh_sio_event_msg_from_text("/", "a\nb", &arg, 1, true));
    ck_assert_ptr_null(sh_sio_event_msg_from_text("nsp", "e", &arg, 1, true)); /* no leading '/' */
    ck_assert_ptr_null(sh_sio_event_msg_from_text("/a,b", "e", &arg, 1, true));
    sh_msg_t *m = sh_sio_event_msg_from_text("/", "e", NULL, 0, true);
    ck_assert_str_eq(m->data, "42[\"e\"]");
    sh_msg_unref(m);
}
END_TEST

/* The packet written where its arguments lie in a received message is
 * the one sh_sio_event_msg_from_text copies out, byte for byte; a message
 * without the room for its head, or names it refuses, is left as it was. */
START_TEST(test_event_in_place)
{
    static const char payload[] = "{\"method\": \"emit\", \"event\": \"chat-events\", "
                                  "\"data\": [{\"n\": 1}, \"x\"], \"namespace\": \"/\"}";
    const char *nsps[] = {"/", "/ns"};
    for (size_t i = 0; i < 2; i++) {
        sh_msg_t *m = sh_msg_new(payload, sizeof(payload) - 1, true);
        const char *list = strchr(m->data, '[');
        sh_json_span_t args = {list + 1, (size_t)(strchr(list, ']') - list - 1)};
        sh_msg_t *want = sh_sio_event_msg_from_text(nsps[i], "chat-events", &args, 1, false);
        sh_msg_t *got = sh_sio_event_msg_in_place(m, nsps[i], "chat-events", args);
        ck_assert_ptr_eq(got, m);
        ck_assert_uint_eq(m->refs, 2);
        ck_assert(!got->binary);
        ck_assert_str_eq(got->data, want->data);
        ck_assert_uint_eq(got->len, want->len);
        ck_assert_ptr_eq(got->data + got->len - 1, args.p + args.len); /* its ']' */
        sh_msg_unref(got);
        sh_msg_unref(want);
        sh_msg_unref(m);
    }
    /* Arguments too near the start for the head and the transport's room
     * before it; a refused event name; empty arguments; a shared message. */
    sh_msg_t *m = sh_msg_new("[1]", 3, true);
    sh_json_span_t args = {m->data + 1, 1};
    ck_assert_ptr_null(sh_sio_event_msg_in_place(m, "/", "e", args));
    sh_msg_unref(m);
    m = sh_msg_new(payload, sizeof(payload) - 1, true);
    args = (sh_json_span_t){strchr(m->data, '[') + 1, 10};
    ck_assert_ptr_null(sh_sio_event_msg_in_place(m, "/", "a\"b", args));
    ck_assert_ptr_null(sh_sio_event_msg_in_place(m, "/a,b", "e", args));
    ck_assert_ptr_null(sh_sio_event_msg_in_place(m, "/", "e", (sh_json_span_t){args.p, 0}));
    sh_msg_t *shared = sh_msg_ref(m);
    ck_assert_ptr_null(sh_sio_event_msg_in_place(m, "/", "e", args));
    sh_msg_unref(shared);
    ck_assert_str_eq(m->data, payload);
    ck_assert(m->binary);
    sh_msg_unref(m);
}
END_TEST

START_TEST(test_binary_round_trip)
{
    sh_msg_t *bins[2] = {sh_msg_new("\x01\x02\x03\x04", 4, true), sh_msg_new("", 0, true)};
    json_t *data =
        json_pack("[s,{s:o},o]", "upload", "file", json_pack("{sbsi}", "_placeholder", 1, "num", 0),
                  json_pack("{sbsi}", "_placeholder", 1, "num", 1));
    sh_msg_t *msgs[3];
    ck_assert_int_eq(sh_sio_packet_encode(SH_SIO_EVENT, "/files", 9, data, bins, 2, msgs, 3), 3);
    ck_assert_str_eq(msgs[0]->data, "452-/files,9[\"upload\",{\"file\":{\"_placeholder\":true,"
                                    "\"num\":0}},{\"_placeholder\":true,\"num\":1}]");

    sh_sio_packet_t pkt;
    const char *err = NULL;
    ck_assert_int_eq(sh_sio_packet_decode(msgs[0]->data + 1, msgs[0]->len - 1, &pkt, &err), 0);
    ck_assert_int_eq(pkt.type, SH_SIO_BINARY_EVENT);
    ck_assert_str_eq(pkt.nsp, "/files");
    ck_assert_int_eq(pkt.id, 9);
    ck_assert(json_equal(pkt.data, data));
    ck_assert_int_eq(sh_sio_packet_add_attachment(&pkt, msgs[1]), 0);
    ck_assert_int_eq(sh_sio_packet_add_attachment(&pkt, msgs[2]), 1);
    ck_assert_uint_eq(bins[0]->refs, 3); /* ours, msgs[1], pkt.bins[0] */

    /* Forwarding the decoded packet re-uses the same attachment bytes. */
    sh_msg_t *fwd[3];
    ck_assert_int_eq(sh_sio_packet_encode(SH_SIO_BINARY_EVENT, pkt.nsp, -1, pkt.data, pkt.bins,
                                          pkt.nbins, fwd, 3),
                     3);
    ck_assert_ptr_eq(fwd[1], bins[0]);
    ck_assert_ptr_eq(fwd[2], bins[1]);
    ck_assert_uint_eq(bins[0]->refs, 4);
    sh_sio_packet_release(&pkt);
    for (int i = 0; i < 3; i++) {
        sh_msg_unref(msgs[i]);
        sh_msg_unref(fwd[i]);
    }
    ck_assert_uint_eq(bins[0]->refs, 1);
    sh_msg_unref(bins[0]);
    sh_msg_unref(bins[1]);
    json_decref(data);
}
END_TEST

int main(void)
{
    load_vectors(&decode_vectors);
    load_vectors(&encode_vectors);

    Suite *s = suite_create("socketio_packet");
    TCase *tc = tcase_create("vectors");
    tcase_add_loop_test(tc, test_decode_vector, 0, decode_vectors.n);
    tcase_add_loop_test(tc, test_encode_vector, 0, encode_vectors.n);
    tcase_add_loop_test(tc, test_event_text_agrees_with_decoder, 0, decode_vectors.n);
    suite_add_tcase(s, tc);

    tc = tcase_create("decode");
    tcase_add_test(tc, test_deep_nesting_rejected);
    tcase_add_test(tc, test_nesting_limit);
    tcase_add_test(tc, test_namespace_length);
    tcase_add_test(tc, test_err_may_be_null);
    tcase_add_test(tc, test_decode_does_not_read_past_n);
    tcase_add_test(tc, test_event_text);
    suite_add_tcase(s, tc);

    tc = tcase_create("attachments");
    tcase_add_test(tc, test_attachments_complete);
    tcase_add_test(tc, test_attachments_none_expected);
    tcase_add_test(tc, test_release_with_partial_attachments);
    tcase_add_test(tc, test_binary_round_trip);
    suite_add_tcase(s, tc);

    tc = tcase_create("encode");
    tcase_add_test(tc, test_encode_nospc);
    tcase_add_test(tc, test_encode_invalid);
    tcase_add_test(tc, test_encode_too_many_attachments);
    tcase_add_test(tc, test_encode_bad_json);
    tcase_add_test(tc, test_json_append);
    tcase_add_test(tc, test_event_from_text_same_bytes);
    tcase_add_test(tc, test_event_from_text_same_values);
    tcase_add_test(tc, test_event_from_text_refused);
    tcase_add_test(tc, test_event_in_place);
    tcase_add_test(tc, test_json_append_failure_leaves_buffer);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    for (int i = 0; i < decode_vectors.n; i++)
        free(decode_vectors.v[i].field[0]);
    for (int i = 0; i < encode_vectors.n; i++)
        free(encode_vectors.v[i].field[0]);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
