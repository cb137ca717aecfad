/* adapter/pubsub_route.c — the routing fields of a pub/sub message, read
 * without decoding its data (see pubsub_route.h).
 *
 * Both formats fill one table of fields, a later repeated key replacing an
 * earlier one (json.loads, jansson and pickle all keep the last); the route
 * is then assembled from the table with the rules sh_pubsub_msg_parse
 * applies (pubsub_msg.c), and refused wherever those rules would refuse or
 * ignore the message, so that the caller decodes it and the parser speaks.
 */
#include "adapter/pubsub_route.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "adapter/pickle.h"
#include "core/utf8.h"

_Static_assert(SH_PICKLE_SKIM_ITEMS <= SH_PUBSUB_ROUTE_MAX_ROOMS,
               "a kept pickle list must fit a field's items");

/* ---- the table of fields */

/* Keys before K_EVENT are routing fields, their values read; the others
 * count only by presence and kind, their values stepped over. Every other
 * key is stepped over. */
enum key {
    K_METHOD,
    K_HOST_ID,
    K_NAMESPACE,
    K_ROOM,
    K_SID,
    K_CALLBACK,
    K_ID,
    K_EVENT,
    K_DATA,
    K_ARGS,
    K_SKIP_SID,
    K_BINARY,
    NKEYS,
    K_OTHER = NKEYS,
};

typedef enum {
    F_ABSENT,
    F_NULL,
    F_NAME,       /* a string; of a routing field: kept in the route's names */
    F_UNREADABLE, /* a string that cannot be a name: NUL, not UTF-8, too long */
    F_INT,
    F_LIST,
    F_OTHER,
} fkind_t;

typedef struct item {
    fkind_t kind;
    const char *s; /* F_NAME of a routing field */
    int64_t i;     /* F_INT */
} item_t;

typedef struct field {
    item_t v;
    size_t start, end; /* JSON: where the value's text lies in the message */
    size_t n;          /* F_LIST: its length */
    bool listed;       /* F_LIST of a routing field: items[] holds all n */
    item_t items[SH_PUBSUB_ROUTE_MAX_ROOMS];
} field_t;

typedef struct reader {
    sh_pubsub_route_t *r;
    const char *json; /* the message, when it is JSON */
    /* The whole message validated as plain JSON (read_validated): its
     * strings are then known to be UTF-8 without NUL or control bytes. */
    bool validated;
    bool unicode_escapes; /* validated: sh_json_info_t's */
    field_t f[NKEYS];
    const char *err;
} reader_t;

static int reject(reader_t *rd, const char *reason)
{
    rd->err = reason;
    return -EINVAL;
}

/* Whether the n bytes at s are the literal: a compare of a constant
 * length, which the compiler turns into a load or two and a compare
 * rather than a call. */
#define IS_KEY(s, n, lit) ((n) == sizeof(lit) - 1 && memcmp((s), lit, sizeof(lit) - 1) == 0)

/* Every top-level key of every message goes through here: the length
 * picks the candidates (one to three), so a key costs a compare or three
 * of a few bytes instead of a walk of a table. */
static enum key key_of(const char *s, size_t n)
{
    switch (n) {
    case 2:
        return IS_KEY(s, n, "id") ? K_ID : K_OTHER;
    case 3:
        return IS_KEY(s, n, "sid") ? K_SID : K_OTHER;
    case 4:
        return IS_KEY(s, n, "room")   ? K_ROOM
               : IS_KEY(s, n, "data") ? K_DATA
               : IS_KEY(s, n, "args") ? K_ARGS
                                      : K_OTHER;
    case 5:
        return IS_KEY(s, n, "event") ? K_EVENT : K_OTHER;
    case 6:
        return IS_KEY(s, n, "method") ? K_METHOD : IS_KEY(s, n, "binary") ? K_BINARY : K_OTHER;
    case 7:
        return IS_KEY(s, n, "host_id") ? K_HOST_ID : K_OTHER;
    case 8:
        return IS_KEY(s, n, "callback")   ? K_CALLBACK
               : IS_KEY(s, n, "skip_sid") ? K_SKIP_SID
                                          : K_OTHER;
    case 9:
        return IS_KEY(s, n, "namespace") ? K_NAMESPACE : K_OTHER;
    default:
        return K_OTHER;
    }
}
#undef IS_KEY

static bool routing(enum key k)
{
    return k < K_EVENT;
}

/* Copies s[0..n) into the route's names; NULL when it cannot be a name
 * (NUL inside, not UTF-8) or there is no room left. */
static const char *keep_name(reader_t *rd, const char *s, size_t n)
{
    sh_pubsub_route_t *r = rd->r;
    if (n >= sizeof(r->names) - r->names_used ||
        (!rd->validated && (memchr(s, '\0', n) || !sh_utf8_valid(s, n))))
        return NULL;
    char *d = r->names + r->names_used;
    memcpy(d, s, n);
    d[n] = '\0';
    r->names_used += n + 1;
    return d;
}

static void set_name(reader_t *rd, item_t *it, const char *s, size_t n, bool keep)
{
    it->s = keep ? keep_name(rd, s, n) : NULL;
    it->kind = keep && !it->s ? F_UNREADABLE : F_NAME;
}

/* ---- pickle: the fields sh_pickle_skim hands out */

static void item_from_pickle(reader_t *rd, const sh_pickle_item_t *v, bool keep, item_t *out)
{
    out->s = NULL;
    switch (v->kind) {
    case SH_PICKLE_NONE:
        out->kind = F_NULL;
        return;
    case SH_PICKLE_STR:
        set_name(rd, out, v->str, v->len, keep);
        return;
    case SH_PICKLE_INT:
        out->kind = F_INT;
        out->i = v->i;
        return;
    case SH_PICKLE_LIST:
    case SH_PICKLE_TUPLE:
        out->kind = F_LIST;
        return;
    default:
        /* bool, float, bytes, dict: never a name or an id (the decoder
         * makes JSON true/false, reals, placeholders, objects of them) */
        out->kind = F_OTHER;
        return;
    }
}

static void on_pickle_field(const char *key, size_t klen, const sh_pickle_item_t *v, void *data)
{
    reader_t *rd = data;
    enum key k = key_of(key, klen);
    if (k == K_OTHER)
        return;
    field_t *f = &rd->f[k];
    item_from_pickle(rd, v, routing(k), &f->v);
    /* A list's length is known only with its items. */
    f->listed = f->v.kind == F_LIST && routing(k) && v->items;
    f->n = f->listed ? v->len : 0;
    for (size_t i = 0; f->listed && i < f->n; i++)
        item_from_pickle(rd, &v->items[i], true, &f->items[i]);
}

/* ---- JSON: one pass over the top-level object */

typedef struct jr {
    const char *p;
    size_t n, pos;
} jr_t;

/* Bytes that open or close something inside a value being stepped over. */
static const unsigned char structural[256] = {
    ['"'] = 1, ['['] = 1, [']'] = 1, ['{'] = 1, ['}'] = 1,
};

static void ws(jr_t *j)
{
    while (j->pos < j->n && (j->p[j->pos] == ' ' || j->p[j->pos] == '\n' || j->p[j->pos] == '\r' ||
                             j->p[j->pos] == '\t'))
        j->pos++;
}

static bool eat(jr_t *j, char c)
{
    if (j->pos < j->n && j->p[j->pos] == c) {
        j->pos++;
        return true;
    }
    return false;
}

static char peek(const jr_t *j)
{
    return j->pos < j->n ? j->p[j->pos] : '\0';
}

/* At a '"': steps over the string; [*start, *end) is its raw contents.
 * A quote ends it unless an odd run of backslashes comes before it. */
static int string_span(jr_t *j, size_t *start, size_t *end)
{
    size_t s = ++j->pos;
    for (;;) {
        const char *q = memchr(j->p + j->pos, '"', j->n - j->pos);
        if (!q)
            return -1;
        size_t at = (size_t)(q - j->p), bs = 0;
        while (at - bs > s && j->p[at - bs - 1] == '\\')
            bs++;
        j->pos = at + 1;
        if (bs % 2 == 0) {
            *start = s;
            *end = at;
            return 0;
        }
    }
}

static bool delimiter(char c)
{
    return c == ',' || c == '}' || c == ']' || c == ':' || c == ' ' || c == '\n' || c == '\r' ||
           c == '\t';
}

/* A number or a literal: the bytes up to the next delimiter, at least one. */
static int scalar_span(jr_t *j, size_t *start)
{
    *start = j->pos;
    while (j->pos < j->n && !delimiter(j->p[j->pos]))
        j->pos++;
    return j->pos > *start ? 0 : -1;
}

/* Steps over one value without looking inside it: strings by memchr,
 * containers by counting brackets outside strings. */
static int skip_value(jr_t *j)
{
    size_t s, e;
    char c = peek(j);
    if (c == '"')
        return string_span(j, &s, &e);
    if (c != '[' && c != '{')
        return scalar_span(j, &s);
    size_t depth = 0;
    while (j->pos < j->n) {
        while (j->pos < j->n && !structural[(unsigned char)j->p[j->pos]])
            j->pos++;
        if (j->pos == j->n)
            break;
        c = j->p[j->pos];
        if (c == '"') {
            if (string_span(j, &s, &e) < 0)
                return -1;
            continue;
        }
        j->pos++;
        if (c == '[' || c == '{')
            depth++;
        else if (--depth == 0)
            return 0;
    }
    return -1;
}

/* A string value at '"' into *it: kept as a name when keep. A string with
 * escapes is decoded by jansson, the decoder sh_pubsub_msg_parse uses. */
static int read_string(reader_t *rd, jr_t *j, bool keep, item_t *it)
{
    size_t s, e;
    if (string_span(j, &s, &e) < 0)
        return reject(rd, "unterminated JSON string");
    if (!keep || !memchr(j->p + s, '\\', e - s)) {
        for (size_t i = s; keep && !rd->validated && i < e; i++)
            if ((unsigned char)j->p[i] < 0x20)
                return reject(rd, "control character in a JSON string");
        set_name(rd, it, j->p + s, e - s, keep);
        return 0;
    }
    json_t *v = json_loadb(j->p + s - 1, e - s + 2, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!v)
        return reject(rd, "bad JSON string");
    set_name(rd, it, json_string_value(v), json_string_length(v), true);
    json_decref(v);
    return 0;
}

/* An integer as jansson reads one (-?(0|[1-9][0-9]*), in int64 range);
 * a number with a fraction or an exponent is a real: F_OTHER. */
static int read_number(reader_t *rd, jr_t *j, item_t *it)
{
    size_t s;
    scalar_span(j, &s);
    const char *p = j->p + s;
    size_t n = j->pos - s, i = p[0] == '-';
    if (i == n || (p[i] == '0' && n > i + 1 && p[i + 1] >= '0' && p[i + 1] <= '9'))
        return reject(rd, "bad JSON number");
    for (size_t k = i; k < n; k++) {
        if (p[k] < '0' || p[k] > '9') {
            it->kind = F_OTHER;
            return 0;
        }
    }
    char buf[24];
    if (n >= sizeof(buf))
        return reject(rd, "JSON integer out of range");
    memcpy(buf, p, n);
    buf[n] = '\0';
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno == ERANGE)
        return reject(rd, "JSON integer out of range");
    it->kind = F_INT;
    it->i = v;
    return 0;
}

static int json_scalar(reader_t *rd, jr_t *j, bool keep, item_t *it)
{
    size_t s;
    it->s = NULL;
    switch (peek(j)) {
    case '"':
        return read_string(rd, j, keep, it);
    case 'n':
        if (scalar_span(j, &s) < 0 || j->pos - s != 4 || memcmp(j->p + s, "null", 4))
            return reject(rd, "bad JSON literal");
        it->kind = F_NULL;
        return 0;
    case '[':
        it->kind = F_LIST;
        break;
    default:
        if (keep && (peek(j) == '-' || (peek(j) >= '0' && peek(j) <= '9')))
            return read_number(rd, j, it);
        it->kind = F_OTHER; /* true, false, an object; a number we need not */
        break;
    }
    return skip_value(j) < 0 ? reject(rd, "bad JSON value") : 0;
}

/* A routing field's list: its first items read, the rest stepped over. */
static int json_list(reader_t *rd, jr_t *j, field_t *f)
{
    f->v.kind = F_LIST;
    f->v.s = NULL;
    f->n = 0;
    j->pos++;
    ws(j);
    if (!eat(j, ']')) {
        for (;;) {
            ws(j);
            if (f->n < SH_PUBSUB_ROUTE_MAX_ROOMS) {
                if (json_scalar(rd, j, true, &f->items[f->n]) < 0)
                    return -EINVAL;
            } else if (skip_value(j) < 0) {
                return reject(rd, "bad JSON value");
            }
            f->n++;
            ws(j);
            if (eat(j, ','))
                continue;
            if (eat(j, ']'))
                break;
            return reject(rd, "bad JSON array");
        }
    }
    f->listed = f->n <= SH_PUBSUB_ROUTE_MAX_ROOMS;
    return 0;
}

static int json_field(reader_t *rd, jr_t *j, enum key k)
{
    field_t *f = &rd->f[k];
    f->start = j->pos;
    int rc;
    if (routing(k) && peek(j) == '[') {
        rc = json_list(rd, j, f);
    } else {
        f->n = 0;
        f->listed = false;
        rc = json_scalar(rd, j, routing(k), &f->v);
    }
    f->end = j->pos;
    return rc;
}

/* The key at '"': K_OTHER for any key but ours; -1 when the JSON is bad
 * (a key with NUL: jansson refuses the whole message). */
static int json_key(reader_t *rd, jr_t *j, enum key *k)
{
    size_t s, e;
    if (string_span(j, &s, &e) < 0)
        return reject(rd, "unterminated JSON string");
    if (!memchr(j->p + s, '\\', e - s)) {
        *k = key_of(j->p + s, e - s);
        return 0;
    }
    json_t *v = json_loadb(j->p + s - 1, e - s + 2, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!v || memchr(json_string_value(v), '\0', json_string_length(v))) {
        json_decref(v);
        return reject(rd, "bad JSON key");
    }
    *k = key_of(json_string_value(v), json_string_length(v));
    json_decref(v);
    return 0;
}

static int read_json(reader_t *rd, const char *p, size_t n)
{
    jr_t j = {.p = p, .n = n};
    ws(&j);
    if (!eat(&j, '{'))
        return reject(rd, "not a JSON object");
    ws(&j);
    if (!eat(&j, '}')) {
        for (;;) {
            enum key k;
            ws(&j);
            if (peek(&j) != '"')
                return reject(rd, "bad JSON object");
            if (json_key(rd, &j, &k) < 0)
                return -EINVAL;
            ws(&j);
            if (!eat(&j, ':'))
                return reject(rd, "bad JSON object");
            ws(&j);
            if (k == K_OTHER && skip_value(&j) < 0)
                return reject(rd, "bad JSON value");
            if (k != K_OTHER && json_field(rd, &j, k) < 0)
                return -EINVAL;
            ws(&j);
            if (eat(&j, ','))
                continue;
            if (eat(&j, '}'))
                break;
            return reject(rd, "bad JSON object");
        }
    }
    ws(&j);
    return j.pos == n ? 0 : reject(rd, "bytes after the JSON object");
}

/* ---- JSON that validates: one pass for the route and the validation */

/* Top-level members the validator hands out; a message with more goes
 * the skimming way (Python's have 8). */
#define MAX_MEMBERS 32

/* A value of a field whose value is not read, from its validated text:
 * the kinds json_scalar gives when it does not keep. */
static void validated_kind(field_t *f, const char *value)
{
    f->v.s = NULL;
    f->n = 0;
    f->listed = false;
    f->v.kind = value[0] == '"'   ? F_NAME
                : value[0] == 'n' ? F_NULL
                : value[0] == '[' ? F_LIST
                                  : F_OTHER;
}

/* A routing field's value that is null or a string without escapes, read
 * from its validated text: where it ends is known, and that it holds no
 * NUL, control byte or bad UTF-8. Anything else (a list, a number, an
 * escape) is left to json_field: false. */
static bool validated_name(reader_t *rd, field_t *f, sh_json_span_t value, size_t start, size_t end)
{
    f->n = 0;
    f->listed = false;
    f->start = start;
    f->end = end;
    f->v.s = NULL;
    if (value.p[0] == 'n') { /* the literal null */
        f->v.kind = F_NULL;
        return true;
    }
    if (value.p[0] != '"')
        return false;
    const char *s = value.p + 1;
    size_t n = value.len - 2;
    /* memchr rather than a byte loop: the loop was ~40 instructions a
     * routing name, ~170 a chat token's message (callgrind). */
    if (memchr(s, '\\', n))
        return false;
    set_name(rd, &f->v, s, n, true);
    return true;
}

/* Validates the message as sh_json_validate does and, in the same pass,
 * has the validator list the top-level object's members, from which the
 * fields are read: a node that delivers the message from its text
 * (text_emit) then has read it once, not once for the route and once more
 * to validate it. Returns 1 when read so, 0 when the message is not plain
 * JSON with at most MAX_MEMBERS members (anything a stricter decoder
 * could refuse or read otherwise: repeated or escaped keys above all),
 * which read_json then skims as before, -EINVAL when a routing value is
 * refused. */
static int read_validated(reader_t *rd, const char *p, size_t n)
{
    sh_json_member_t m[MAX_MEMBERS];
    size_t nm = 0;
    sh_json_info_t info;
    /* An object only: the validator would list an array's elements'
     * members instead. */
    jr_t lead = {.p = p, .n = n};
    ws(&lead);
    if (peek(&lead) != '{' ||
        sh_json_validate_batch(p, n, &info, NULL, 0, NULL, m, MAX_MEMBERS, &nm) < 0 ||
        !sh_json_info_plain(&info) || nm > MAX_MEMBERS)
        return 0;
    rd->validated = true;
    rd->unicode_escapes = info.unicode_escapes;
    for (size_t i = 0; i < nm; i++) {
        enum key k = key_of(m[i].key.p, m[i].key.len);
        if (k == K_OTHER)
            continue;
        field_t *f = &rd->f[k];
        size_t start = (size_t)(m[i].value.p - p), end = start + m[i].value.len;
        if (!routing(k)) {
            validated_kind(f, m[i].value.p);
            f->start = start;
            f->end = end;
            continue;
        }
        if (validated_name(rd, f, m[i].value, start, end))
            continue;
        jr_t j = {.p = p, .n = end, .pos = start};
        if (json_field(rd, &j, k) < 0)
            return -EINVAL;
    }
    return 1;
}

/* ---- the route, with sh_pubsub_msg_parse's rules */

/* A name field: absent and null are the same (python-socketio's .get()). */
static int name_field(reader_t *rd, enum key k, bool required, const char **out)
{
    const item_t *v = &rd->f[k].v;
    *out = NULL;
    if (v->kind == F_ABSENT || v->kind == F_NULL)
        return required ? reject(rd, "a required field is missing") : 0;
    if (v->kind != F_NAME)
        return reject(rd, "a name field is not a name");
    *out = v->s;
    return 0;
}

static bool present(const reader_t *rd, enum key k)
{
    return rd->f[k].v.kind != F_ABSENT && rd->f[k].v.kind != F_NULL;
}

/* The one room of enter_room, leave_room, close_room. */
static int one_room(reader_t *rd)
{
    sh_pubsub_route_t *r = rd->r;
    if (name_field(rd, K_ROOM, true, &r->rooms[0]) < 0)
        return -EINVAL;
    r->nrooms = 1;
    return 0;
}

/* room: null (the namespace), a name, or a non-empty list of names. */
static int emit_rooms(reader_t *rd)
{
    sh_pubsub_route_t *r = rd->r;
    const field_t *f = &rd->f[K_ROOM];
    if (f->v.kind != F_LIST) {
        if (name_field(rd, K_ROOM, false, &r->rooms[0]) < 0)
            return -EINVAL;
        r->nrooms = r->rooms[0] ? 1 : 0;
        return 0;
    }
    if (!f->listed || f->n == 0)
        return reject(rd, "room list empty or too long");
    for (size_t i = 0; i < f->n; i++) {
        if (f->items[i].kind != F_NAME)
            return reject(rd, "room list holds something not a name");
        r->rooms[i] = f->items[i].s;
    }
    r->nrooms = f->n;
    return 0;
}

/* callback: null, or [room, namespace, id] (another length is ignored, as
 * python-socketio ignores it). */
static int emit_callback(reader_t *rd)
{
    const field_t *f = &rd->f[K_CALLBACK];
    if (!present(rd, K_CALLBACK))
        return 0;
    if (f->v.kind != F_LIST || !f->listed)
        return reject(rd, "callback is not a list, or one not read");
    if (f->n != 3)
        return 0;
    if (f->items[0].kind != F_NAME || f->items[1].kind != F_NAME || f->items[2].kind != F_INT)
        return reject(rd, "callback is not [room, namespace, id]");
    rd->r->cb_room = f->items[0].s;
    return 0;
}

/* A JSON emit that its text can deliver: see text_emit in the header. */
static void emit_text(reader_t *rd)
{
    sh_pubsub_route_t *r = rd->r;
    const field_t *event = &rd->f[K_EVENT], *data = &rd->f[K_DATA];
    const field_t *binary = &rd->f[K_BINARY];
    if (!rd->validated || r->cb_room || present(rd, K_SKIP_SID))
        return;
    if (binary->v.kind != F_ABSENT && binary->end - binary->start == 4 &&
        memcmp(rd->json + binary->start, "true", 4) == 0)
        return;
    r->event_json = (sh_json_span_t){rd->json + event->start, event->end - event->start};
    r->data_json = (sh_json_span_t){rd->json + data->start, data->end - data->start};
    r->text_emit = true;
    r->text_unicode_escapes = rd->unicode_escapes;
}

static int build(reader_t *rd)
{
    sh_pubsub_route_t *r = rd->r;
    const item_t *m = &rd->f[K_METHOD].v;
    if (m->kind != F_NAME)
        return reject(rd, "no method");
    int i = SH_PUBSUB_EMIT;
    while (i <= SH_PUBSUB_CLOSE_ROOM && strcmp(m->s, sh_pubsub_method_name(i)))
        i++;
    if (i > SH_PUBSUB_CLOSE_ROOM)
        return reject(rd, "unknown method");
    r->method = (sh_pubsub_method_t)i;
    switch (r->method) {
    case SH_PUBSUB_EMIT:
        if (rd->f[K_EVENT].v.kind != F_NAME || rd->f[K_DATA].v.kind == F_ABSENT)
            return reject(rd, "emit without event or data");
        if (name_field(rd, K_NAMESPACE, true, &r->nsp) < 0 ||
            name_field(rd, K_HOST_ID, false, &r->host_id) < 0 || emit_rooms(rd) < 0 ||
            emit_callback(rd) < 0)
            return -EINVAL;
        emit_text(rd);
        return 0;
    case SH_PUBSUB_CALLBACK:
        if (name_field(rd, K_HOST_ID, true, &r->host_id) < 0 ||
            name_field(rd, K_SID, true, &r->sid) < 0 ||
            name_field(rd, K_NAMESPACE, false, &r->nsp) < 0)
            return -EINVAL;
        if (rd->f[K_ID].v.kind != F_INT || !present(rd, K_ARGS))
            return reject(rd, "callback without an integer id or args");
        r->id = rd->f[K_ID].v.i;
        return 0;
    case SH_PUBSUB_DISCONNECT:
        if (name_field(rd, K_SID, true, &r->sid) < 0 ||
            name_field(rd, K_NAMESPACE, false, &r->nsp) < 0 ||
            name_field(rd, K_HOST_ID, false, &r->host_id) < 0)
            return -EINVAL;
        if (!r->nsp)
            r->nsp = "/"; /* Server.disconnect(): namespace or '/' */
        return 0;
    case SH_PUBSUB_ENTER_ROOM:
    case SH_PUBSUB_LEAVE_ROOM:
        if (name_field(rd, K_SID, true, &r->sid) < 0)
            return -EINVAL;
        /* fall through */
    case SH_PUBSUB_CLOSE_ROOM:
        if (name_field(rd, K_NAMESPACE, true, &r->nsp) < 0 ||
            name_field(rd, K_HOST_ID, false, &r->host_id) < 0 || one_room(rd) < 0)
            return -EINVAL;
        return 0;
    }
    return reject(rd, "unknown method");
}

int sh_pubsub_route_read(const void *p, size_t n, sh_pubsub_route_t *r, const char **err)
{
    /* Only the kinds are set: the rest of a field is written before it is
     * read, and zeroing every field's items would cost more than the read
     * of a small message. */
    reader_t rd;
    rd.r = r;
    rd.json = NULL;
    rd.validated = false;
    rd.err = NULL;
    for (int k = 0; k < NKEYS; k++)
        rd.f[k].v.kind = F_ABSENT;
    r->host_id = r->nsp = r->cb_room = r->sid = NULL;
    r->nrooms = 0;
    r->id = 0;
    r->names_used = 0;
    r->text_emit = false;
    r->event_json = r->data_json = (sh_json_span_t){0};
    int rc;
    if (n > SH_PUBSUB_MAX_MESSAGE) {
        rc = reject(&rd, "message too large");
    } else if (n > 0 && *(const unsigned char *)p == 0x80) {
        const char *why = NULL;
        rc = sh_pickle_skim(p, n, on_pickle_field, &rd, &why) < 0 ? reject(&rd, why) : 0;
    } else {
        rd.json = p;
        rc = read_validated(&rd, p, n);
        if (rc == 0)
            rc = read_json(&rd, p, n);
        else if (rc > 0)
            rc = 0;
    }
    if (rc == 0)
        rc = build(&rd);
    if (rc < 0 && err)
        *err = rd.err;
    return rc;
}
