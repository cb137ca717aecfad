/* socketio/packet.c — Socket.IO v5 packet codec (see packet.h).
 *
 * The decoder follows socket.io-parser 4.2 (Decoder.decodeString,
 * Decoder.isPayloadValid, reconstructPacket) field by field. Where the
 * reference reads input through JavaScript's Number() or JSON.parse in ways
 * no encoder produces, we reject instead of guessing:
 *
 * - The type, attachment count and ack id are ASCII digits only. The
 *   reference takes whitespace as a digit (Number(" ") is 0), so "2 [...]"
 *   there is an EVENT with ack id 0; here a payload may not start with
 *   whitespace. An empty packet is an error (the reference makes it a
 *   CONNECT).
 * - EVENT, ACK, BINARY_* and CONNECT_ERROR must carry a payload (the spec
 *   says it is mandatory; the reference checks isPayloadValid only when a
 *   payload is present, but isPacketValid requires it).
 * - Up to SH_SIO_MAX_ATTACHMENTS (64) attachments; the reference's default
 *   maxAttachments is 10.
 * - An ack id has at most 18 digits, so it always fits an int64_t (the
 *   reference would round it to a double).
 * - A namespace is at most SH_SIO_MAX_NSP bytes of valid UTF-8 without NUL.
 * - JSON is jansson's: integers must fit in 64 bits, reals must be finite,
 *   nesting is limited to 2048 levels, object keys may not hold NUL and
 *   "\ud800" (a lone surrogate) is refused. JSON.parse accepts all of these.
 * - A placeholder's "num" must be an integer; the reference quietly turns a
 *   fractional one into undefined.
 */
#include "socketio/packet.h"

#include "core/utf8.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/json_write.h"

/* Event names an application may not receive from a peer: they mean
 * something to the Socket.IO or Node EventEmitter API (socket.io-parser's
 * RESERVED_EVENTS). */
static const char *const reserved_events[] = {
    "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener",
};

/* More digits than this could overflow an int64_t. */
#define ACK_ID_MAX_DIGITS 18

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_binary_type(sh_sio_type_t t)
{
    return t == SH_SIO_BINARY_EVENT || t == SH_SIO_BINARY_ACK;
}

/* The namespace is the only text of a packet outside its JSON (which
 * jansson checks): it must be strict UTF-8 with no control characters, so
 * it can never carry the polling separator 0x1e or a NUL into a message. */
static bool nsp_text_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return sh_utf8_valid(s, n);
}

static bool is_reserved_event(const json_t *name)
{
    const char *s = json_string_value(name);
    size_t n = json_string_length(name); /* may hold NUL (JSON_ALLOW_NUL) */
    for (size_t i = 0; i < sizeof(reserved_events) / sizeof(reserved_events[0]); i++)
        if (strlen(reserved_events[i]) == n && memcmp(reserved_events[i], s, n) == 0)
            return true;
    return false;
}

/* Decoder.isPayloadValid, applied to an absent payload too (see the top). */
static const char *check_payload(sh_sio_type_t type, const json_t *data)
{
    switch (type) {
    case SH_SIO_CONNECT:
        return !data || json_is_object(data) ? NULL : "CONNECT payload must be an object";
    case SH_SIO_DISCONNECT:
        return !data ? NULL : "DISCONNECT takes no payload";
    case SH_SIO_CONNECT_ERROR:
        return json_is_object(data) || json_is_string(data)
                   ? NULL
                   : "CONNECT_ERROR payload must be an object or a string";
    case SH_SIO_EVENT:
    case SH_SIO_BINARY_EVENT: {
        if (!json_is_array(data) || json_array_size(data) == 0)
            return "EVENT payload must be a non-empty array";
        const json_t *name = json_array_get(data, 0);
        if (json_is_number(name))
            return NULL;
        if (!json_is_string(name))
            return "EVENT name must be a string or a number";
        return is_reserved_event(name) ? "reserved event name" : NULL;
    }
    case SH_SIO_ACK:
    case SH_SIO_BINARY_ACK:
        return json_is_array(data) ? NULL : "ACK payload must be an array";
    }
    return "unknown packet type";
}

/* Every {"_placeholder":true,...} must name an announced attachment, as
 * reconstructPacket requires. Recursion depth is bounded by jansson's
 * parser (2048 levels). */
static const char *check_placeholders(const json_t *v, size_t attachments)
{
    if (json_is_object(v)) {
        if (json_is_true(json_object_get(v, "_placeholder"))) {
            const json_t *num = json_object_get(v, "num");
            if (!json_is_integer(num) || json_integer_value(num) < 0 ||
                (uint64_t)json_integer_value(num) >= attachments)
                return "placeholder refers to a missing attachment";
            return NULL; /* the reference does not look inside */
        }
        const char *key;
        json_t *child;
        json_object_foreach ((json_t *)v, key, child) {
            const char *why = check_placeholders(child, attachments);
            if (why)
                return why;
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            const char *why = check_placeholders(json_array_get(v, i), attachments);
            if (why)
                return why;
        }
    }
    return NULL;
}

static const char *json_reason(const json_error_t *jerr)
{
    switch (json_error_code(jerr)) {
    case json_error_stack_overflow:
        return "JSON payload nested too deeply";
    case json_error_numeric_overflow:
        return "number out of range in JSON payload";
    case json_error_invalid_utf8:
        return "invalid UTF-8 in JSON payload";
    default:
        return "invalid JSON payload";
    }
}

static void packet_reset(sh_sio_packet_t *pkt)
{
    pkt->type = SH_SIO_CONNECT;
    pkt->nsp[0] = '/';
    pkt->nsp[1] = '\0';
    pkt->id = -1;
    pkt->data = NULL;
    pkt->attachments = 0;
    pkt->bins = NULL;
    pkt->nbins = 0;
}

/* The header: type digit, attachment count, namespace, ack id. Leaves
 * *at on the payload's first byte (n when there is none); NULL, or the
 * reason. */
static const char *read_header(const char *p, size_t n, sh_sio_packet_t *out, size_t *at)
{
    size_t i = 0;
    if (n == 0)
        return "empty packet";
    if (p[0] < '0' || p[0] > '6')
        return "unknown packet type";
    out->type = (sh_sio_type_t)(p[0] - '0');
    i = 1;

    if (is_binary_type(out->type)) {
        size_t start = i, count = 0;
        for (; i < n && is_digit(p[i]); i++)
            if (count <= SH_SIO_MAX_ATTACHMENTS) /* saturate: no overflow */
                count = count * 10 + (size_t)(p[i] - '0');
        if (i == start || i == n || p[i] != '-' || count == 0)
            return "invalid attachment count";
        if (count > SH_SIO_MAX_ATTACHMENTS)
            return "too many attachments";
        out->attachments = count;
        i++; /* the '-' */
    }

    if (i < n && p[i] == '/') {
        /* Up to ',' or the end of the input, as the reference reads it. */
        size_t room = n - i;
        const char *comma =
            memchr(p + i, ',', room < SH_SIO_MAX_NSP + 1 ? room : SH_SIO_MAX_NSP + 1);
        size_t len = comma ? (size_t)(comma - (p + i)) : room;
        if (len > SH_SIO_MAX_NSP)
            return "namespace too long";
        if (!nsp_text_valid(p + i, len))
            return "invalid namespace";
        memcpy(out->nsp, p + i, len);
        out->nsp[len] = '\0';
        i += comma ? len + 1 : len;
    }

    if (i < n && is_digit(p[i])) {
        size_t start = i;
        int64_t id = 0;
        for (; i < n && is_digit(p[i]); i++) {
            if (i - start == ACK_ID_MAX_DIGITS)
                return "ack id too long";
            id = id * 10 + (p[i] - '0');
        }
        out->id = id;
    }

    if (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        return "whitespace before payload";
    *at = i;
    return NULL;
}

int sh_sio_packet_decode(const char *p, size_t n, sh_sio_packet_t *out, const char **err)
{
    const char *why;
    size_t i = 0;

    packet_reset(out);
    if ((why = read_header(p, n, out, &i)))
        goto fail;
    if (i < n) {
        json_error_t jerr;
        /* The payload is the whole rest: jansson rejects anything but
         * whitespace after the value. */
        out->data = json_loadb(p + i, n - i, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (!out->data) {
            why = json_reason(&jerr);
            goto fail;
        }
    }

    why = check_payload(out->type, out->data);
    if (!why && is_binary_type(out->type))
        why = check_placeholders(out->data, out->attachments);
    if (why)
        goto fail;
    return 0;

fail:
    json_decref(out->data);
    packet_reset(out);
    if (err)
        *err = why;
    return -EINVAL;
}

int sh_sio_event_peek(const char *p, size_t n, sh_sio_event_text_t *ev)
{
    sh_sio_packet_t head;
    size_t i = 0;
    packet_reset(&head);
    if (n == 0 || p[0] != '0' + SH_SIO_EVENT || read_header(p, n, &head, &i))
        return -EINVAL;
    /* ["name" with no escape in the name: anything else is the tree's. */
    if (n - i < 3 || p[i] != '[' || p[i + 1] != '"')
        return -EINVAL;
    const char *name = p + i + 2, *end = p + n;
    const char *q = name;
    while (q < end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
        q++;
    size_t len = (size_t)(q - name);
    if (q == end || *q != '"' || len >= sizeof(ev->event))
        return -EINVAL;
    memcpy(ev->nsp, head.nsp, sizeof(ev->nsp));
    ev->id = head.id;
    memcpy(ev->event, name, len);
    ev->event[len] = '\0';
    ev->payload = (sh_json_span_t){p + i, n - i};
    return 0;
}

int sh_sio_event_read_args(const sh_sio_event_text_t *ev, sh_json_span_t *args, size_t max,
                           size_t *nargs)
{
    /* One more slot for the name; more arguments than max are the tree's. */
    sh_json_span_t items[SH_SIO_TEXT_MAX_ARGS + 1];
    size_t nitems = 0;
    sh_json_info_t info;
    if (max > SH_SIO_TEXT_MAX_ARGS)
        max = SH_SIO_TEXT_MAX_ARGS;
    if (sh_json_validate_array(ev->payload.p, ev->payload.len, &info, items, max + 1, &nitems) <
            0 ||
        !sh_json_info_plain(&info) || nitems == 0 || nitems > max + 1)
        return -EINVAL;
    /* The name, checked as the decoder would (UTF-8 above: the validator). */
    for (size_t i = 0; i < sizeof(reserved_events) / sizeof(reserved_events[0]); i++)
        if (!strcmp(reserved_events[i], ev->event))
            return -EINVAL;
    for (size_t i = 1; i < nitems; i++)
        args[i - 1] = items[i];
    *nargs = nitems - 1;
    return 0;
}

int sh_sio_packet_add_attachment(sh_sio_packet_t *pkt, sh_msg_t *m)
{
    /* A text message where an attachment is due is a protocol error too
     * (the reference: "got plaintext data when reconstructing a packet"). */
    if (pkt->nbins >= pkt->attachments || !m->binary)
        return -EINVAL;
    if (!pkt->bins)
        pkt->bins = sh_calloc(pkt->attachments, sizeof(*pkt->bins));
    pkt->bins[pkt->nbins++] = sh_msg_ref(m);
    return pkt->nbins == pkt->attachments ? 1 : 0;
}

void sh_sio_packet_release(sh_sio_packet_t *pkt)
{
    json_decref(pkt->data);
    pkt->data = NULL;
    for (size_t i = 0; i < pkt->nbins; i++)
        sh_msg_unref(pkt->bins[i]);
    free(pkt->bins);
    pkt->bins = NULL;
    pkt->nbins = 0;
    pkt->attachments = 0;
}

/* A namespace we can write is one we would read back: "/name" without the
 * ',' that ends it on the wire, short enough, and valid UTF-8 (it goes into
 * a text message). */
static bool nsp_writable(const char *nsp, size_t len)
{
    return nsp[0] == '/' && len <= SH_SIO_MAX_NSP && !memchr(nsp, ',', len) &&
           nsp_text_valid(nsp, len);
}

int sh_sio_packet_encode(sh_sio_type_t type, const char *nsp, int64_t id, const json_t *data,
                         sh_msg_t *const *bins, size_t nbins, sh_msg_t **msgs, size_t max_msgs)
{
    if (nbins >= max_msgs)
        return -ENOSPC;
    if (nbins > SH_SIO_MAX_ATTACHMENTS)
        return -EINVAL;
    for (size_t i = 0; i < nbins; i++)
        if (!bins[i]->binary)
            return -EINVAL;

    /* The attachment count decides between EVENT and BINARY_EVENT (ACK and
     * BINARY_ACK): a BINARY_* packet without attachments is invalid. */
    switch (type) {
    case SH_SIO_EVENT:
    case SH_SIO_BINARY_EVENT:
        type = nbins ? SH_SIO_BINARY_EVENT : SH_SIO_EVENT;
        break;
    case SH_SIO_ACK:
    case SH_SIO_BINARY_ACK:
        type = nbins ? SH_SIO_BINARY_ACK : SH_SIO_ACK;
        break;
    case SH_SIO_CONNECT:
    case SH_SIO_DISCONNECT:
    case SH_SIO_CONNECT_ERROR:
        if (nbins)
            return -EINVAL;
        break;
    default:
        return -EINVAL;
    }

    size_t nsp_len = 0;
    if (nsp && nsp[0] && strcmp(nsp, "/") != 0) {
        nsp_len = strlen(nsp);
        if (!nsp_writable(nsp, nsp_len))
            return -EINVAL;
    }

    /* Built once in a buffer, then copied once into the message (the JSON
     * length is not known before it is written). */
    sh_buf_t b = SH_BUF_INIT;
    char *w = sh_buf_reserve(&b, 2);
    w[0] = '4'; /* Engine.IO MESSAGE */
    w[1] = (char)('0' + type);
    sh_buf_commit(&b, 2);
    if (nbins)
        sh_buf_appendf(&b, "%zu-", nbins);
    if (nsp_len) {
        sh_buf_append(&b, nsp, nsp_len);
        sh_buf_append_byte(&b, ',');
    }
    if (id >= 0)
        sh_buf_appendf(&b, "%" PRId64, id);
    if (data && sh_json_append(&b, data) < 0) {
        sh_buf_release(&b);
        return -EINVAL;
    }
    msgs[0] = sh_msg_new(b.data, b.len, false);
    sh_buf_release(&b);
    for (size_t i = 0; i < nbins; i++)
        msgs[1 + i] = sh_msg_ref(bins[i]);
    return (int)(1 + nbins);
}

/* The bytes of an EVENT message before its arguments: "42", the namespace
 * and its ',' (none for "/"), '[', the event's string and, when arguments
 * follow, their ','. */
typedef struct event_head {
    const char *nsp, *event;
    size_t nsp_len, event_len, len;
    bool args;
} event_head_t;

/* Measures h's bytes; false when the namespace cannot be written or the
 * event would need JSON escapes. */
static bool event_head_init(event_head_t *h, const char *nsp, const char *event, bool args)
{
    h->nsp = nsp;
    h->nsp_len = 0;
    if (nsp && nsp[0] && strcmp(nsp, "/") != 0) {
        h->nsp_len = strlen(nsp);
        if (!nsp_writable(nsp, h->nsp_len))
            return false;
    }
    h->event = event;
    h->event_len = strlen(event);
    if (!sh_json_text_plain(event, h->event_len))
        return false;
    h->args = args;
    h->len = 2 + (h->nsp_len ? h->nsp_len + 1 : 0) + 2 + h->event_len + 1 + (args ? 1 : 0);
    return true;
}

static void event_head_write(const event_head_t *h, char *w)
{
    *w++ = '4'; /* Engine.IO MESSAGE */
    *w++ = (char)('0' + SH_SIO_EVENT);
    if (h->nsp_len) {
        memcpy(w, h->nsp, h->nsp_len);
        w += h->nsp_len;
        *w++ = ',';
    }
    *w++ = '[';
    *w++ = '"';
    memcpy(w, h->event, h->event_len);
    w += h->event_len;
    *w++ = '"';
    if (h->args)
        *w = ',';
}

sh_msg_t *sh_sio_event_msg_from_text(const char *nsp, const char *event,
                                     const sh_json_span_t *parts, size_t nparts,
                                     bool unicode_escapes)
{
    event_head_t h;
    if (!event_head_init(&h, nsp, event, nparts > 0))
        return NULL;
    size_t len = h.len + 1; /* and ']' */
    for (size_t i = 0; i < nparts; i++)
        len += parts[i].len;
    sh_msg_t *m = sh_msg_alloc(len, false);
    event_head_write(&h, m->data);
    char *w = m->data + h.len;
    /* A copy runs at memcpy's speed, several times the search's: the
     * reply so far of a chat token is kilobytes of text without one. */
    for (size_t i = 0; i < nparts; i++) {
        if (unicode_escapes) {
            w += sh_json_write_text_utf8(w, parts[i].p, parts[i].len);
        } else if (parts[i].len) {
            memcpy(w, parts[i].p, parts[i].len);
            w += parts[i].len;
        }
    }
    *w++ = ']';
    /* Escapes written as characters take fewer bytes. */
    m->len = (size_t)(w - m->data);
    *w = '\0';
    return m;
}

sh_msg_t *sh_sio_event_msg_in_place(sh_msg_t *m, const char *nsp, const char *event,
                                    sh_json_span_t args)
{
    event_head_t h;
    char *at = (char *)args.p;
    if (args.len == 0 || at < m->buffer || at > m->buffer + m->cap ||
        !event_head_init(&h, nsp, event, true) ||
        (size_t)(at - m->buffer) < SH_MSG_HEAD_ROOM + h.len)
        return NULL;
    /* Everything is checked before a byte is written (sh_msg_reframe
     * checks the rest): a refusal leaves m as it was, for the caller to
     * read otherwise. */
    if (sh_msg_reframe(m, at - h.len, h.len + args.len + 1, false) < 0)
        return NULL;
    event_head_write(&h, at - h.len);
    at[args.len] = ']';
    return sh_msg_ref(m);
}

/* jansson against JSON.stringify, both compact:
 * - Strings are identical (UTF-8 as is, '/' not escaped, U+2028 raw) except
 *   that jansson writes control characters as "\u001F", JS as "\u001f".
 * - Integers (json_integer) are identical.
 * - Reals are written with 17 significant digits so that every double
 *   reads back to itself; JS writes the shortest such form. 1.5 is "1.5" in
 *   both, but 0.1 is "0.10000000000000001" (JS "0.1"), 1.0 is "1.0" (JS
 *   "1"), -0.0 is "-0.0" (JS "0"), 1e21 is "1e21" (JS "1e+21"), 1e20 is
 *   "1e20" (JS "100000000000000000000"), 5e-7 is "4.9999999999999998e-7"
 *   (JS "5e-7"). JSON.parse reads each to the same number. */
int sh_json_append(sh_buf_t *out, const json_t *value)
{
    /* jansson's compact output (JSON_REAL_PRECISION(17)), written faster:
     * see core/json_write.h. */
    return sh_json_write(out, value);
}
