/* adapter/pubsub_msg.c — python-socketio pub/sub messages (see
 * pubsub_msg.h for the shapes and the rules). */
#include "adapter/pubsub_msg.h"

#include <errno.h>
#include <string.h>

#include "adapter/pickle.h"
#include "core/alloc.h"
#include "core/json_write.h"
#include "core/utf8.h"
#include "engineio/packet.h"

/* Attachments a JSON "binary" message may carry: as many as a pickle. */
#define MAX_BINS SH_PICKLE_MAX_BINS

static const char *const method_names[] = {
    [SH_PUBSUB_EMIT] = "emit",
    [SH_PUBSUB_CALLBACK] = "callback",
    [SH_PUBSUB_DISCONNECT] = "disconnect",
    [SH_PUBSUB_ENTER_ROOM] = "enter_room",
    [SH_PUBSUB_LEAVE_ROOM] = "leave_room",
    [SH_PUBSUB_CLOSE_ROOM] = "close_room",
};

const char *sh_pubsub_method_name(sh_pubsub_method_t method)
{
    return (unsigned)method < sizeof(method_names) / sizeof(method_names[0]) ? method_names[method]
                                                                             : "unknown";
}

/* ---- parsing */

typedef struct ctx {
    json_t *root;    /* the message object (borrowed) */
    sh_pickle_t *pk; /* NULL for JSON */
    sh_pubsub_msg_t *m;
    const char *err;
} ctx_t;

static int reject(ctx_t *c, int rc, const char *reason)
{
    c->err = reason;
    return rc;
}

/* A field that python-socketio reads with message.get(): absent and null
 * are the same. */
static json_t *field(const ctx_t *c, const char *key)
{
    json_t *v = json_object_get(c->root, key);
    return json_is_null(v) ? NULL : v;
}

/* A name: a string without NUL. */
static bool is_name(const json_t *v)
{
    return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

/* Copies the name in field key to *out. Absent: *out stays NULL and the
 * result is missing_rc with reason missing (0 for optional fields). */
static int get_name(ctx_t *c, const char *key, char **out, int missing_rc, const char *missing,
                    const char *bad)
{
    json_t *v = field(c, key);
    if (!v)
        return missing_rc ? reject(c, missing_rc, missing) : 0;
    if (!is_name(v))
        return reject(c, -EINVAL, bad);
    *out = sh_strdup(json_string_value(v));
    return 0;
}

/* A room or sid list: a name, or an array of names (a pickled tuple too:
 * python-socketio takes any non-string sequence as a list of rooms). Sets
 * *out to a new array; NULL when v is NULL. */
static int name_list(ctx_t *c, json_t *v, json_t **out, const char *bad)
{
    if (!v)
        return 0;
    if (is_name(v)) {
        *out = json_array();
        json_array_append(*out, v);
        return 0;
    }
    if (!json_is_array(v))
        return reject(c, -EINVAL, bad);
    size_t i;
    json_t *e;
    json_array_foreach (v, i, e) {
        if (!is_name(e))
            return reject(c, -EINVAL, bad);
    }
    *out = json_array();
    json_array_extend(*out, v);
    return 0;
}

/* The argument list from an emit's data (or the payload inside a binary
 * JSON wrapper): see the header. */
static json_t *args_from_data(const ctx_t *c, json_t *data)
{
    if (!data)
        return json_array();
    bool list = c->pk ? sh_pickle_is_tuple(c->pk, data) : json_is_array(data);
    if (list)
        return json_incref(data);
    json_t *a = json_array();
    json_array_append(a, data);
    return a;
}

/* JSON "binary": true: v is [payload, base64, ...]. Decodes the
 * attachments into the message and returns the payload (borrowed). */
static int unwrap_binary(ctx_t *c, json_t *v, json_t **payload)
{
    if (!json_is_array(v) || json_array_size(v) < 1)
        return reject(c, -EINVAL, "binary message data is not [payload, attachments...]");
    size_t n = json_array_size(v) - 1;
    if (n > MAX_BINS)
        return reject(c, -EINVAL, "too many attachments");
    sh_pubsub_msg_t *m = c->m;
    m->bins = sh_calloc(n ? n : 1, sizeof(*m->bins));
    sh_buf_t b = SH_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(v, i + 1);
        sh_buf_reset(&b);
        if (!json_is_string(s) ||
            sh_base64_decode(json_string_value(s), json_string_length(s), &b) < 0) {
            sh_buf_release(&b);
            return reject(c, -EINVAL, "attachment is not base64");
        }
        m->bins[m->nbins++] = sh_msg_new(sh_buf_peek(&b), sh_buf_avail(&b), true);
    }
    sh_buf_release(&b);
    *payload = json_array_get(v, 0);
    return 0;
}

/* Every placeholder must name an attachment (socket.io-parser refuses a
 * packet whose placeholder does not). Without attachments the arguments
 * travel as a plain EVENT, where nothing is a placeholder. */
static bool placeholders_ok(const json_t *v, size_t nbins)
{
    size_t i;
    const char *k;
    json_t *e;
    if (json_is_array(v)) {
        json_array_foreach (v, i, e) {
            if (!placeholders_ok(e, nbins))
                return false;
        }
        return true;
    }
    if (!json_is_object(v))
        return true;
    if (json_is_true(json_object_get(v, "_placeholder"))) {
        json_t *num = json_object_get(v, "num");
        return json_is_integer(num) && json_integer_value(num) >= 0 &&
               (json_int_t)nbins > json_integer_value(num);
    }
    json_object_foreach ((json_t *)v, k, e) {
        if (!placeholders_ok(e, nbins))
            return false;
    }
    return true;
}

/* Sets m->args from v (emit data or callback args) and checks the
 * placeholders. as_list: callback args, always the argument list. */
static int take_args(ctx_t *c, json_t *v, bool as_list)
{
    sh_pubsub_msg_t *m = c->m;
    if (!c->pk && json_is_true(json_object_get(c->root, "binary"))) {
        int rc = unwrap_binary(c, v, &v);
        if (rc < 0)
            return rc;
        if (json_is_null(v))
            v = NULL;
    }
    if (as_list) {
        if (!json_is_array(v))
            return reject(c, -EINVAL, "callback args is not a list");
        m->args = json_incref(v);
    } else {
        m->args = args_from_data(c, v);
    }
    if (m->nbins && !placeholders_ok(m->args, m->nbins))
        return reject(c, -EINVAL, "placeholder names no attachment");
    return 0;
}

static int parse_emit(ctx_t *c)
{
    sh_pubsub_msg_t *m = c->m;
    int rc;
    if ((rc = get_name(c, "event", &m->event, -EINVAL, "emit without event",
                       "event is not a string")) < 0 ||
        (rc = get_name(c, "namespace", &m->nsp, -ENOTSUP, "emit without namespace",
                       "namespace is not a string")) < 0 ||
        (rc = get_name(c, "host_id", &m->host_id, 0, NULL, "host_id is not a string")) < 0)
        return rc;
    if (!json_object_get(c->root, "data"))
        return reject(c, -EINVAL, "emit without data");
    if ((rc = name_list(c, field(c, "room"), &m->rooms, "room is not a string or list")) < 0)
        return rc;
    if (m->rooms && json_array_size(m->rooms) == 0)
        return reject(c, -EINVAL, "emit to an empty room list");
    if ((rc = name_list(c, field(c, "skip_sid"), &m->skip_sids,
                        "skip_sid is not a string or list")) < 0)
        return rc;
    if (m->skip_sids && json_array_size(m->skip_sids) == 0) {
        json_decref(m->skip_sids);
        m->skip_sids = NULL;
    }
    json_t *cb = field(c, "callback");
    if (cb && !json_is_array(cb))
        return reject(c, -EINVAL, "callback is not a list");
    /* python-socketio sets up the ack only for exactly three items. */
    if (cb && json_array_size(cb) == 3) {
        json_t *room = json_array_get(cb, 0), *nsp = json_array_get(cb, 1);
        json_t *id = json_array_get(cb, 2);
        if (!is_name(room) || !is_name(nsp) || !json_is_integer(id))
            return reject(c, -EINVAL, "callback is not [room, namespace, id]");
        m->has_callback = true;
        m->cb_room = sh_strdup(json_string_value(room));
        m->cb_nsp = sh_strdup(json_string_value(nsp));
        m->cb_id = json_integer_value(id);
    }
    return take_args(c, field(c, "data"), false);
}

static int parse_callback(ctx_t *c)
{
    sh_pubsub_msg_t *m = c->m;
    int rc;
    if ((rc = get_name(c, "host_id", &m->host_id, -ENOTSUP, "callback without host_id",
                       "host_id is not a string")) < 0 ||
        (rc = get_name(c, "sid", &m->sid, -ENOTSUP, "callback without sid",
                       "sid is not a string")) < 0 ||
        (rc = get_name(c, "namespace", &m->nsp, 0, NULL, "namespace is not a string")) < 0)
        return rc;
    json_t *id = field(c, "id"), *args = field(c, "args");
    if (!id)
        return reject(c, -ENOTSUP, "callback without id");
    if (!json_is_integer(id))
        return reject(c, -EINVAL, "callback id is not an integer");
    m->id = json_integer_value(id);
    if (!args)
        return reject(c, -ENOTSUP, "callback without args");
    return take_args(c, args, true);
}

static int parse_room_op(ctx_t *c)
{
    sh_pubsub_msg_t *m = c->m;
    int rc;
    bool sid = m->method != SH_PUBSUB_CLOSE_ROOM;
    if ((sid && (rc = get_name(c, "sid", &m->sid, -ENOTSUP, "room change without sid",
                               "sid is not a string")) < 0) ||
        (rc = get_name(c, "namespace", &m->nsp, -ENOTSUP, "room change without namespace",
                       "namespace is not a string")) < 0 ||
        (rc = get_name(c, "host_id", &m->host_id, 0, NULL, "host_id is not a string")) < 0)
        return rc;
    json_t *room = field(c, "room");
    if (!room)
        return reject(c, -ENOTSUP, "room change without room");
    if (!is_name(room))
        return reject(c, -EINVAL, "room is not a string");
    m->rooms = json_array();
    json_array_append(m->rooms, room);
    return 0;
}

static int parse_disconnect(ctx_t *c)
{
    sh_pubsub_msg_t *m = c->m;
    int rc;
    if ((rc = get_name(c, "sid", &m->sid, -ENOTSUP, "disconnect without sid",
                       "sid is not a string")) < 0 ||
        (rc = get_name(c, "namespace", &m->nsp, 0, NULL, "namespace is not a string")) < 0 ||
        (rc = get_name(c, "host_id", &m->host_id, 0, NULL, "host_id is not a string")) < 0)
        return rc;
    /* Server.disconnect(): namespace = namespace or '/'. */
    if (!m->nsp)
        m->nsp = sh_strdup("/");
    return 0;
}

static int parse_message(ctx_t *c)
{
    if (!json_is_object(c->root))
        return reject(c, -EINVAL, "message is not an object");
    json_t *method = json_object_get(c->root, "method");
    if (!method)
        return reject(c, -ENOTSUP, "message without method");
    const char *name = json_string_value(method);
    size_t i = 0;
    for (; name && i < sizeof(method_names) / sizeof(method_names[0]); i++)
        if (strcmp(name, method_names[i]) == 0 && strlen(name) == json_string_length(method))
            break;
    if (!name || i == sizeof(method_names) / sizeof(method_names[0]))
        return reject(c, -ENOTSUP, "unknown method");
    c->m->method = (sh_pubsub_method_t)i;
    switch (c->m->method) {
    case SH_PUBSUB_EMIT:
        return parse_emit(c);
    case SH_PUBSUB_CALLBACK:
        return parse_callback(c);
    case SH_PUBSUB_DISCONNECT:
        return parse_disconnect(c);
    default:
        return parse_room_op(c);
    }
}

int sh_pubsub_msg_parse(const void *p, size_t n, sh_pubsub_msg_t *out, const char **err)
{
    memset(out, 0, sizeof(*out));
    ctx_t c = {.m = out};
    sh_pickle_t pk;
    int rc;

    if (n > SH_PUBSUB_MAX_MESSAGE) {
        rc = reject(&c, -EINVAL, "message too large");
        goto fail;
    }
    if (n > 0 && *(const unsigned char *)p == 0x80) {
        if (sh_pickle_decode(p, n, &pk, &c.err) < 0) {
            rc = -EINVAL;
            goto fail;
        }
        out->format = SH_PUBSUB_PICKLE;
        c.pk = &pk;
        c.root = pk.value;
        /* The attachments are numbered over the whole pickle. */
        out->bins = pk.bins;
        out->nbins = pk.nbins;
        pk.bins = NULL;
        pk.nbins = 0;
    } else {
        out->format = SH_PUBSUB_JSON;
        c.root = json_loadb(p, n, JSON_ALLOW_NUL, NULL);
        if (!c.root) {
            rc = reject(&c, -EINVAL, "invalid JSON");
            goto fail;
        }
    }
    rc = parse_message(&c);
    /* Bytes elsewhere in a message without arguments have nowhere to go. */
    if (rc == 0 && out->method != SH_PUBSUB_EMIT && out->method != SH_PUBSUB_CALLBACK) {
        for (size_t i = 0; i < out->nbins; i++)
            sh_msg_unref(out->bins[i]);
        free(out->bins);
        out->bins = NULL;
        out->nbins = 0;
    }
    if (c.pk)
        sh_pickle_release(c.pk);
    else
        json_decref(c.root);
    if (rc == 0)
        return 0;
fail:
    sh_pubsub_msg_release(out);
    if (err)
        *err = c.err;
    return rc;
}

void sh_pubsub_msg_release(sh_pubsub_msg_t *m)
{
    free(m->host_id);
    free(m->nsp);
    free(m->event);
    json_decref(m->rooms);
    json_decref(m->skip_sids);
    free(m->cb_room);
    free(m->cb_nsp);
    free(m->sid);
    json_decref(m->args);
    for (size_t i = 0; i < m->nbins; i++)
        sh_msg_unref(m->bins[i]);
    free(m->bins);
    memset(m, 0, sizeof(*m));
}

/* ---- encoding */

/* Sets key to v (a new reference); a NULL v (jansson refused a string
 * that is not UTF-8) clears *ok. */
static void put(json_t *o, const char *key, json_t *v, bool *ok)
{
    if (!v || json_object_set_new(o, key, v) < 0)
        *ok = false;
}

static void set_str(json_t *o, const char *key, const char *s, bool *ok)
{
    put(o, key, s ? json_string(s) : json_null(), ok);
}

/* null, a string for one name, a list for more. */
static json_t *names_value(const json_t *a)
{
    if (!a || json_array_size(a) == 0)
        return json_null();
    if (json_array_size(a) == 1)
        return json_incref(json_array_get(a, 0));
    return json_incref((json_t *)a);
}

static bool names_ok(const json_t *a)
{
    if (!a)
        return true;
    if (!json_is_array(a))
        return false;
    size_t i;
    json_t *e;
    json_array_foreach (a, i, e) {
        if (!is_name(e))
            return false;
    }
    return true;
}

/* Wraps v (a new reference) as [v, base64...] when there are attachments
 * (all binary: encodable() checked). */
static json_t *with_bins(json_t *v, sh_msg_t *const *bins, size_t nbins)
{
    if (!nbins)
        return v;
    json_t *w = json_array();
    json_array_append_new(w, v);
    for (size_t i = 0; i < nbins; i++) {
        const sh_msg_t *b64 = sh_msg_base64(bins[i]); /* "b" + base64 */
        json_array_append_new(w, json_stringn(b64->data + 1, b64->len - 1));
    }
    return w;
}

/* The emit data for an argument list: see the header. */
static json_t *data_value(const json_t *args)
{
    size_t n = args ? json_array_size(args) : 0;
    if (n == 0)
        return json_null();
    json_t *one = json_array_get(args, 0);
    if (n == 1 && !json_is_array(one) && !json_is_null(one))
        return json_incref(one);
    return json_incref((json_t *)args);
}

/* Are the fields the method needs there and well-formed? */
static bool encodable(const sh_pubsub_msg_t *m)
{
    if ((m->args && !json_is_array(m->args)) || (m->nbins && !m->bins))
        return false;
    for (size_t i = 0; i < m->nbins; i++)
        if (!m->bins[i] || !m->bins[i]->binary)
            return false;
    switch (m->method) {
    case SH_PUBSUB_EMIT:
        return m->event && m->nsp && names_ok(m->rooms) && names_ok(m->skip_sids) &&
               (!m->rooms || json_array_size(m->rooms) > 0) &&
               (!m->has_callback || (m->cb_room && m->cb_nsp));
    case SH_PUBSUB_CALLBACK:
        return m->host_id && m->sid;
    case SH_PUBSUB_DISCONNECT:
        return m->sid && m->nsp;
    case SH_PUBSUB_ENTER_ROOM:
    case SH_PUBSUB_LEAVE_ROOM:
        if (!m->sid)
            return false;
        /* fall through */
    case SH_PUBSUB_CLOSE_ROOM:
        return m->nsp && m->rooms && names_ok(m->rooms) && json_array_size(m->rooms) == 1;
    }
    return false;
}

/* The message object in python-socketio's key order; NULL when a string
 * is not UTF-8. */
static json_t *build(const sh_pubsub_msg_t *m)
{
    json_t *o = json_object();
    bool ok = true;
    bool bin = m->nbins > 0;

    set_str(o, "method", sh_pubsub_method_name(m->method), &ok);
    switch (m->method) {
    case SH_PUBSUB_EMIT:
        set_str(o, "event", m->event, &ok);
        put(o, "data", with_bins(data_value(m->args), m->bins, m->nbins), &ok);
        put(o, "binary", json_boolean(bin), &ok);
        set_str(o, "namespace", m->nsp, &ok);
        put(o, "room", names_value(m->rooms), &ok);
        put(o, "skip_sid", names_value(m->skip_sids), &ok);
        put(o, "callback",
            m->has_callback ? json_pack("[ssI]", m->cb_room, m->cb_nsp, (json_int_t)m->cb_id)
                            : json_null(),
            &ok);
        break;
    case SH_PUBSUB_CALLBACK:
        /* host_id first: it is the addressee, not the sender. */
        set_str(o, "host_id", m->host_id, &ok);
        set_str(o, "sid", m->sid, &ok);
        set_str(o, "namespace", m->nsp ? m->nsp : "/", &ok);
        put(o, "id", json_integer(m->id), &ok);
        put(o, "args", with_bins(m->args ? json_incref(m->args) : json_array(), m->bins, m->nbins),
            &ok);
        if (bin)
            put(o, "binary", json_true(), &ok);
        break;
    case SH_PUBSUB_DISCONNECT:
        set_str(o, "sid", m->sid, &ok);
        set_str(o, "namespace", m->nsp, &ok);
        break;
    case SH_PUBSUB_ENTER_ROOM:
    case SH_PUBSUB_LEAVE_ROOM:
    case SH_PUBSUB_CLOSE_ROOM:
        if (m->method != SH_PUBSUB_CLOSE_ROOM)
            set_str(o, "sid", m->sid, &ok);
        put(o, "room", json_incref(json_array_get(m->rooms, 0)), &ok);
        set_str(o, "namespace", m->nsp, &ok);
        break;
    }
    if (m->host_id && m->method != SH_PUBSUB_CALLBACK)
        set_str(o, "host_id", m->host_id, &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int sh_pubsub_msg_encode(const sh_pubsub_msg_t *m, sh_buf_t *out)
{
    json_t *o = encodable(m) ? build(m) : NULL;
    if (!o)
        return -EINVAL;
    /* jansson's compact text, written faster (core/json_write.h); out is
     * left as it was on failure. */
    int rc = sh_json_write(out, o);
    json_decref(o);
    return rc;
}

/* A name as the text encoder writes it: between quotes, as is. */
static bool text_name(const char *s)
{
    size_t n = strlen(s);
    return sh_json_text_plain(s, n) && sh_utf8_valid(s, n);
}

static void append_name(sh_buf_t *b, const char *s)
{
    sh_buf_append(b, "\"", 1);
    sh_buf_append(b, s, strlen(s));
    sh_buf_append(b, "\"", 1);
}

#define APPEND_LIT(b, s) sh_buf_append((b), (s), sizeof(s) - 1)

int sh_pubsub_emit_encode_text(const char *host_id, const char *nsp, const char *event,
                               const char *const *rooms, size_t nrooms, const sh_json_span_t *parts,
                               size_t nparts, sh_buf_t *out)
{
    if (!nsp || !event || !text_name(nsp) || !text_name(event) || (host_id && !text_name(host_id)))
        return -EINVAL;
    for (size_t i = 0; i < nrooms; i++)
        if (!rooms[i] || !text_name(rooms[i]))
            return -EINVAL;
    /* build()'s keys, in its order. */
    APPEND_LIT(out, "{\"method\":\"emit\",\"event\":");
    append_name(out, event);
    APPEND_LIT(out, ",\"data\":");
    for (size_t i = 0; i < nparts; i++)
        sh_buf_append(out, parts[i].p, parts[i].len);
    APPEND_LIT(out, ",\"binary\":false,\"namespace\":");
    append_name(out, nsp);
    APPEND_LIT(out, ",\"room\":");
    if (nrooms == 0) {
        APPEND_LIT(out, "null");
    } else if (nrooms == 1) {
        append_name(out, rooms[0]);
    } else {
        for (size_t i = 0; i < nrooms; i++) {
            sh_buf_append(out, i ? "," : "[", 1);
            append_name(out, rooms[i]);
        }
        APPEND_LIT(out, "]");
    }
    APPEND_LIT(out, ",\"skip_sid\":null,\"callback\":null");
    if (host_id) {
        APPEND_LIT(out, ",\"host_id\":");
        append_name(out, host_id);
    }
    APPEND_LIT(out, "}");
    return 0;
}
