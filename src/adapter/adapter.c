#include "adapter/adapter.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter/pubsub_msg.h"
#include "adapter/pubsub_route.h"
#include "core/alloc.h"
#include "core/list.h"
#include "core/log.h"
#include "core/map.h"
#include "core/random.h"
#include "redis/redis.h"
#include "socketio/packet.h"

/* A call waiting for its ack, here or on another node. */
typedef struct call {
    sh_adapter_t *a;
    uint64_t handle;
    bool local;
    char sid[64];   /* local: the socket, to cancel its ack */
    int64_t ack_id; /* local: the Socket.IO ack id */
    sh_adapter_call_cb cb;
    void *data;
} call_t;

/* A remote node's call being answered by a socket of ours: the socket's
 * pending ack points at it, and the adapter lists it so that its free can
 * cancel that ack (the answer would otherwise come back to a freed
 * adapter). */
typedef struct remote_ack {
    sh_list_t link;
    sh_adapter_t *a;
    char *host_id;
    char *sid;
    char *nsp;
    int64_t id;       /* the caller's ack id */
    int64_t sock_ack; /* the ack id our socket gave its client */
} remote_ack_t;

struct sh_adapter {
    sh_adapter_options_t opts;
    char *channel;
    char *pattern; /* CHANNEL#* when room_channels */
    char host_id[33];
    /* How every message this node publishes ends, but callbacks (see
     * is_own_message) */
    char own_suffix[sizeof(",\"host_id\":\"\"}") + 32];
    size_t own_suffix_len;
    sh_map_t calls;        /* handle (decimal) -> call_t */
    sh_list_t remote_acks; /* remote_ack_t */
    uint64_t next_handle;
    sh_adapter_stats_t stats;
};

static void handle_key(char *buf, size_t n, uint64_t handle)
{
    snprintf(buf, n, "%llu", (unsigned long long)handle);
}

/* ---- publishing ---- */

/* Publishes the encoded message in b (on the room's channel when there is
 * one room and room channels are on). */
static void publish_bytes(sh_adapter_t *a, const sh_buf_t *b, const char *nsp,
                          const char *room_channel_room)
{
    char chan[1024];
    const char *target = a->channel;
    if (room_channel_room && a->opts.room_channels) {
        /* A name too long for the buffer goes on the main channel, which
         * every node reads, rather than on a truncated (wrong) room's. */
        int w = snprintf(chan, sizeof(chan), "%s#%s#%s", a->channel, nsp ? nsp : "/",
                         room_channel_room);
        if (w > 0 && (size_t)w < sizeof(chan))
            target = chan;
    }
    /* Fire and forget, as python-socketio publishes; while Redis is away
     * nothing is queued (memory stays bounded) and other nodes miss it. */
    if (sh_redis_publish(a->opts.redis, target, sh_buf_peek(b), sh_buf_avail(b), NULL, NULL) < 0)
        a->stats.publish_fails++;
    else
        a->stats.published++;
}

static void publish(sh_adapter_t *a, const sh_pubsub_msg_t *m, const char *room_channel_room)
{
    if (!a->opts.redis)
        return;
    sh_buf_t b = SH_BUF_INIT;
    if (sh_pubsub_msg_encode(m, &b) < 0)
        sh_warn("adapter: cannot encode a %s message", sh_pubsub_method_name(m->method));
    else
        publish_bytes(a, &b, m->nsp, room_channel_room);
    sh_buf_release(&b);
}

static json_t *string_list(const char *const *v, size_t n)
{
    if (!n)
        return NULL;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_string(v[i]));
    return arr;
}

/* A fleet emit of one argument (not a list, not null) to rooms, with no
 * exceptions or attachments — a channel's typing, a presence change — has
 * its argument written once, and the browsers' message and the fleet's
 * made from that text (sh_adapter_emit_text): the same bytes as encoding
 * the tree for each, at half the cost (jansson's dump is most of what such
 * an emit costs). False, nothing sent, when it is not such an emit or a
 * name needs the encoder. */
static bool emit_once_as_text(sh_adapter_t *a, sh_hub_nsp_t *nsp, const sh_hub_target_t *to,
                              const char *event, json_t *args, size_t nbins, size_t *recipients)
{
    if (nbins || !to || to->nrooms == 0 || to->nexcept || json_array_size(args) != 1)
        return false;
    const json_t *arg = json_array_get(args, 0);
    if (json_is_array(arg) || json_is_null(arg))
        return false;
    sh_buf_t text = SH_BUF_INIT;
    bool sent = false;
    if (sh_json_append(&text, arg) == 0) {
        sh_json_span_t part = {sh_buf_peek(&text), sh_buf_avail(&text)};
        /* Ours writes characters as they are (and controls as \u00XX,
         * which stay escaped on the way out): a copy will do. */
        sent = sh_adapter_emit_text(a, nsp, to->rooms, to->nrooms, event, &part, 1, false,
                                    recipients) == 0;
    }
    sh_buf_release(&text);
    return sent;
}

size_t sh_adapter_emit(sh_adapter_t *a, sh_hub_nsp_t *nsp, const sh_hub_target_t *to,
                       const char *event, json_t *args, sh_msg_t *const *bins, size_t nbins)
{
    size_t n;
    if (a->opts.redis && emit_once_as_text(a, nsp, to, event, args, nbins, &n))
        return n;
    n = sh_hub_emit(nsp, to, event, args, bins, nbins);
    if (!a->opts.redis)
        return n;
    json_t *empty = NULL;
    sh_pubsub_msg_t m = {
        .method = SH_PUBSUB_EMIT,
        .host_id = a->host_id,
        .nsp = (char *)sh_hub_nsp_name(nsp),
        .event = (char *)event,
        .rooms = to ? string_list(to->rooms, to->nrooms) : NULL,
        .skip_sids = to ? string_list(to->except, to->nexcept) : NULL,
        .args = args ? args : (empty = json_array()),
        .bins = (sh_msg_t **)bins,
        .nbins = nbins,
    };
    const char *single = to && to->nrooms == 1 && to->nexcept == 0 ? to->rooms[0] : NULL;
    publish(a, &m, single);
    json_decref(m.rooms);
    json_decref(m.skip_sids);
    json_decref(empty);
    return n;
}

int sh_adapter_emit_text(sh_adapter_t *a, sh_hub_nsp_t *nsp, const char *const *rooms,
                         size_t nrooms, const char *event, const sh_json_span_t *parts,
                         size_t nparts, bool unicode_escapes, size_t *recipients)
{
    const char *nspname = sh_hub_nsp_name(nsp);
    /* Both messages are written before anything is sent, so that a name
     * one of them refuses leaves the whole emit to the tree way. */
    sh_buf_t b = SH_BUF_INIT;
    if (a->opts.redis && sh_pubsub_emit_encode_text(a->host_id, nspname, event, rooms, nrooms,
                                                    parts, nparts, &b) < 0) {
        sh_buf_release(&b);
        return -EINVAL;
    }
    sh_msg_t *msg = sh_sio_event_msg_from_text(nspname, event, parts, nparts, unicode_escapes);
    if (!msg) {
        sh_buf_release(&b);
        return -EINVAL;
    }
    sh_hub_target_t to = {.rooms = rooms, .nrooms = nrooms};
    *recipients = sh_hub_send(nsp, &to, &msg, 1);
    sh_msg_unref(msg);
    if (a->opts.redis)
        publish_bytes(a, &b, nspname, nrooms == 1 ? rooms[0] : NULL);
    sh_buf_release(&b);
    return 0;
}

/* ---- calls ---- */

static call_t *call_take(sh_adapter_t *a, uint64_t handle)
{
    char key[24];
    handle_key(key, sizeof(key), handle);
    return sh_map_del(&a->calls, key);
}

static void on_local_ack(sh_sio_server_t *srv, const char *socket_id, int status,
                         const sh_sio_args_t *args, void *data)
{
    call_t *c = data;
    call_take(c->a, c->handle);
    c->cb(status < 0 ? -ECONNRESET : 0, status < 0 ? NULL : args, c->data);
    free(c);
}

int sh_adapter_call(sh_adapter_t *a, sh_hub_nsp_t *nsp, const char *sid, const char *event,
                    json_t *args, sh_msg_t *const *bins, size_t nbins, sh_adapter_call_cb cb,
                    void *data, uint64_t *handle)
{
    sh_sio_socket_t *sock = sh_sio_server_socket(a->opts.sio, sid);
    if (sock && sh_hub_socket_nsp(sock) != nsp)
        sock = NULL;
    if (!sock && !a->opts.redis)
        return -EPIPE;
    call_t *c = sh_new0(call_t);
    c->a = a;
    c->handle = ++a->next_handle;
    c->cb = cb;
    c->data = data;
    snprintf(c->sid, sizeof(c->sid), "%s", sid);
    if (sock) {
        c->local = true;
        int rc = sh_sio_socket_emit(sock, event, args, bins, nbins, on_local_ack, c, &c->ack_id);
        if (rc < 0) {
            free(c);
            return rc;
        }
    } else {
        /* python-socketio's form: the target room is the sid and the
         * callback tuple (room, namespace, id) comes back in a "callback"
         * message addressed to our host_id. */
        json_t *empty = NULL;
        json_t *room = json_pack("[s]", sid);
        sh_pubsub_msg_t m = {
            .method = SH_PUBSUB_EMIT,
            .host_id = a->host_id,
            .nsp = (char *)sh_hub_nsp_name(nsp),
            .event = (char *)event,
            .rooms = room,
            .args = args ? args : (empty = json_array()),
            .bins = (sh_msg_t **)bins,
            .nbins = nbins,
            .has_callback = true,
            .cb_room = (char *)sid,
            .cb_nsp = (char *)sh_hub_nsp_name(nsp),
            .cb_id = (int64_t)c->handle,
        };
        publish(a, &m, sid);
        json_decref(room);
        json_decref(empty);
        a->stats.remote_calls++;
    }
    char key[24];
    handle_key(key, sizeof(key), c->handle);
    sh_map_set(&a->calls, key, c);
    if (handle)
        *handle = c->handle;
    return 0;
}

void sh_adapter_cancel_call(sh_adapter_t *a, uint64_t handle)
{
    call_t *c = call_take(a, handle);
    if (!c)
        return;
    if (c->local) {
        sh_sio_socket_t *sock = sh_sio_server_socket(a->opts.sio, c->sid);
        if (sock)
            sh_sio_socket_cancel_ack(sock, c->ack_id);
    }
    free(c);
}

/* ---- disconnects and rooms ---- */

static sh_sio_socket_t *local_socket(sh_adapter_t *a, sh_hub_nsp_t *nsp, const char *sid)
{
    sh_sio_socket_t *sock = sh_sio_server_socket(a->opts.sio, sid);
    return sock && sh_hub_socket_nsp(sock) == nsp ? sock : NULL;
}

int sh_adapter_disconnect(sh_adapter_t *a, sh_hub_nsp_t *nsp, const char *sid)
{
    sh_sio_socket_t *sock = local_socket(a, nsp, sid);
    if (sock) {
        sh_sio_socket_disconnect(sock, true);
        return 1;
    }
    sh_pubsub_msg_t m = {
        .method = SH_PUBSUB_DISCONNECT,
        .host_id = a->host_id,
        .nsp = (char *)sh_hub_nsp_name(nsp),
        .sid = (char *)sid,
    };
    publish(a, &m, NULL);
    return 0;
}

int sh_adapter_room(sh_adapter_t *a, sh_hub_nsp_t *nsp, const char *sid, const char *room,
                    bool join)
{
    sh_sio_socket_t *sock = local_socket(a, nsp, sid);
    if (sock) {
        if (join)
            sh_hub_join(sock, room);
        else
            sh_hub_leave(sock, room);
        return 1;
    }
    json_t *rooms = json_pack("[s]", room);
    sh_pubsub_msg_t m = {
        .method = join ? SH_PUBSUB_ENTER_ROOM : SH_PUBSUB_LEAVE_ROOM,
        .host_id = a->host_id,
        .nsp = (char *)sh_hub_nsp_name(nsp),
        .sid = (char *)sid,
        .rooms = rooms,
    };
    publish(a, &m, NULL);
    json_decref(rooms);
    return 0;
}

static void collect_sid(sh_sio_socket_t *sock, void *data)
{
    json_array_append_new(data, json_string(sh_sio_socket_id(sock)));
}

static void close_room_here(sh_adapter_t *a, sh_hub_nsp_t *nsp, const char *room)
{
    /* Collect first: leaving changes the room being walked. */
    json_t *sids = json_array();
    sh_hub_room_foreach(nsp, room, collect_sid, sids);
    size_t i;
    json_t *v;
    json_array_foreach (sids, i, v) {
        sh_sio_socket_t *sock = sh_sio_server_socket(a->opts.sio, json_string_value(v));
        if (sock)
            sh_hub_leave(sock, room);
    }
    json_decref(sids);
}

void sh_adapter_close_room(sh_adapter_t *a, sh_hub_nsp_t *nsp, const char *room)
{
    close_room_here(a, nsp, room);
    json_t *rooms = json_pack("[s]", room);
    sh_pubsub_msg_t m = {
        .method = SH_PUBSUB_CLOSE_ROOM,
        .host_id = a->host_id,
        .nsp = (char *)sh_hub_nsp_name(nsp),
        .rooms = rooms,
    };
    publish(a, &m, NULL);
    json_decref(rooms);
}

/* ---- receiving ---- */

static void remote_ack_free(remote_ack_t *r)
{
    sh_list_remove(&r->link);
    free(r->host_id);
    free(r->sid);
    free(r->nsp);
    free(r);
}

static void on_answer_for_remote(sh_sio_server_t *srv, const char *socket_id, int status,
                                 const sh_sio_args_t *args, void *data)
{
    remote_ack_t *r = data;
    if (status == 0) {
        /* The ack goes back to the node that asked, as python-socketio's
         * _return_callback publishes it. */
        sh_pubsub_msg_t m = {
            .method = SH_PUBSUB_CALLBACK,
            .host_id = r->host_id,
            .nsp = r->nsp,
            .sid = r->sid,
            .id = r->id,
            .args = args->args,
            .bins = (sh_msg_t **)args->bins,
            .nbins = args->nbins,
        };
        publish(r->a, &m, NULL);
    }
    remote_ack_free(r);
}

static void receive_emit(sh_adapter_t *a, sh_pubsub_msg_t *m)
{
    sh_hub_nsp_t *nsp = sh_hub_nsp(a->opts.hub, m->nsp);
    if (!nsp)
        return; /* not a namespace of ours: python-socketio drops it too */
    if (m->has_callback) {
        /* An emit that wants an ack targets one sid. */
        sh_sio_socket_t *sock = m->cb_room ? local_socket(a, nsp, m->cb_room) : NULL;
        if (!sock || !m->host_id)
            return;
        remote_ack_t *r = sh_new0(remote_ack_t);
        r->a = a;
        r->host_id = sh_strdup(m->host_id);
        r->sid = sh_strdup(m->cb_room);
        r->nsp = sh_strdup(m->cb_nsp ? m->cb_nsp : m->nsp);
        r->id = m->cb_id;
        sh_list_insert_tail(&a->remote_acks, &r->link);
        if (sh_sio_socket_emit(sock, m->event, m->args, m->bins, m->nbins, on_answer_for_remote, r,
                               &r->sock_ack) < 0)
            remote_ack_free(r);
        return;
    }
    size_t nrooms = json_array_size(m->rooms), nskip = json_array_size(m->skip_sids);
    const char **rooms = sh_calloc(nrooms + 1, sizeof(char *));
    const char **skip = sh_calloc(nskip + 1, sizeof(char *));
    for (size_t i = 0; i < nrooms; i++)
        rooms[i] = json_string_value(json_array_get(m->rooms, i));
    for (size_t i = 0; i < nskip; i++)
        skip[i] = json_string_value(json_array_get(m->skip_sids, i));
    sh_hub_target_t to = {.rooms = rooms, .nrooms = nrooms, .except = skip, .nexcept = nskip};
    sh_hub_emit(nsp, &to, m->event, m->args, m->bins, m->nbins);
    free(rooms);
    free(skip);
    if (!nrooms && a->opts.on_remote_broadcast)
        a->opts.on_remote_broadcast(m->nsp, m->event, m->args, a->opts.data);
}

static void receive_callback(sh_adapter_t *a, sh_pubsub_msg_t *m)
{
    if (!m->host_id || strcmp(m->host_id, a->host_id) || m->id <= 0)
        return; /* an ack for another node */
    char key[24];
    handle_key(key, sizeof(key), (uint64_t)m->id);
    call_t *c = sh_map_get(&a->calls, key);
    /* A local call is answered by its socket alone (its ack record points
     * at c): a message naming it is forged or confused, and ignored. */
    if (!c || c->local)
        return;
    call_take(a, c->handle);
    sh_sio_args_t args = {.args = m->args, .bins = m->bins, .nbins = m->nbins};
    c->cb(0, &args, c->data);
    free(c);
}

/* Would acting on a message with this route do anything here? Decided
 * the way the code below acts on a decoded message: an emit needs a local
 * member of one of its rooms (any socket of the namespace, or a presence
 * observer, for a broadcast; the socket that is to answer, for one that
 * wants an ack), a callback a remote call of ours waiting for it, the room
 * changes and disconnects a local socket (or room member). */
static bool route_is_for_us(sh_adapter_t *a, const sh_pubsub_route_t *r)
{
    if (r->method == SH_PUBSUB_CALLBACK) {
        if (!r->host_id || strcmp(r->host_id, a->host_id) || r->id <= 0)
            return false;
        char key[24];
        handle_key(key, sizeof(key), (uint64_t)r->id);
        call_t *c = sh_map_get(&a->calls, key);
        return c && !c->local;
    }
    sh_hub_nsp_t *nsp = sh_hub_nsp(a->opts.hub, r->nsp);
    if (!nsp)
        return false;
    switch (r->method) {
    case SH_PUBSUB_EMIT:
        if (r->cb_room)
            return r->host_id && local_socket(a, nsp, r->cb_room);
        if (!r->nrooms)
            return a->opts.on_remote_broadcast || sh_hub_count(nsp) > 0;
        for (size_t i = 0; i < r->nrooms; i++)
            if (sh_hub_room_size(nsp, r->rooms[i]) > 0)
                return true;
        return false;
    case SH_PUBSUB_DISCONNECT:
    case SH_PUBSUB_ENTER_ROOM:
    case SH_PUBSUB_LEAVE_ROOM:
        return local_socket(a, nsp, r->sid) != NULL;
    case SH_PUBSUB_CLOSE_ROOM:
        return sh_hub_room_size(nsp, r->rooms[0]) > 0;
    default:
        return true;
    }
}

/* What receive_emit_text did with a message. */
typedef enum {
    TEXT_NOT,       /* not one it takes: the decoder's */
    TEXT_DELIVERED, /* delivered from its text */
    TEXT_NOT_HERE,  /* one it takes, for rooms with no member here */
} text_emit_t;

typedef struct text_frame {
    const char *nsp, *event;
    sh_json_span_t args;
    size_t nargs;
    bool unicode_escapes;
    sh_msg_t *own; /* holds the message's bytes, to be rewritten; or NULL */
    bool in_place; /* the packet was built in own */
} text_frame_t;

/* The packet is written where the arguments lie when the message's bytes
 * are ours to rewrite and need no \u rewriting: a chat token's reply so far
 * (a kilobyte or more) is then not copied again (the copy and its
 * allocation were ~3% of siohubd's time in the chat bench via Redis, perf
 * with call graphs). Only when the arguments are half the message or
 * more: a queued packet then keeps the whole message's block, and the
 * output queues' byte limits, which count packets, should still bound
 * what a slow client holds to within about twice. */
static sh_msg_t *build_text_frame(void *arg)
{
    text_frame_t *f = arg;
    if (f->own && f->nargs == 1 && !f->unicode_escapes && f->args.len >= f->own->len / 2) {
        sh_msg_t *m = sh_sio_event_msg_in_place(f->own, f->nsp, f->event, f->args);
        f->in_place = m != NULL;
        if (m)
            return m;
    }
    return sh_sio_event_msg_from_text(f->nsp, f->event, &f->args, f->nargs, f->unicode_escapes);
}

/* Delivers an emit to its rooms from its own text, as the decoder and
 * sh_hub_emit would have delivered it, when it is a plain one (see
 * text_emit in pubsub_route.h: the route read validated the whole
 * message), the event a name without escapes. The Socket.IO arguments are
 * the data's text as the sender wrote it: null none, a list its elements,
 * anything else the one argument. The frame is written at the first
 * member found, so the rooms are looked up once, and not at all written
 * on a node with none. TEXT_NOT, nothing sent, when the message needs the
 * decoder. */
static text_emit_t receive_emit_text(sh_adapter_t *a, const sh_pubsub_route_t *r, sh_msg_t *own)
{
    sh_json_span_t event_text;
    char event[256];
    if (r->method != SH_PUBSUB_EMIT || !r->text_emit || r->nrooms == 0 ||
        !sh_json_plain_string(r->event_json, &event_text) || event_text.len >= sizeof(event))
        return TEXT_NOT;
    sh_hub_nsp_t *nsp = sh_hub_nsp(a->opts.hub, r->nsp);
    if (!nsp)
        return TEXT_NOT_HERE; /* route_is_for_us says the same */
    memcpy(event, event_text.p, event_text.len);
    event[event_text.len] = '\0';
    text_frame_t f = {.nsp = r->nsp,
                      .event = event,
                      .args = r->data_json,
                      .nargs = 1,
                      .unicode_escapes = r->text_unicode_escapes,
                      .own = own};
    if (sh_json_span_eq(f.args, "null")) {
        f.nargs = 0;
    } else if (f.args.p[0] == '[') {
        /* The list's elements, as written between its brackets. Only its
         * emptiness is read here: python-socketio from 5.15.1 wraps every
         * emit's data in a list, and reading through its one element
         * would read the whole data again, on every node, members or
         * not. */
        sh_json_cursor_t c;
        sh_json_array_begin(&c, f.args);
        if (sh_json_cursor_at_end(&c)) {
            f.nargs = 0;
        } else {
            f.args.p++;
            f.args.len -= 2;
        }
    }
    sh_hub_target_t to = {.rooms = r->rooms, .nrooms = r->nrooms};
    bool failed;
    size_t sent = sh_hub_send_built(nsp, &to, build_text_frame, &f, &failed);
    if (failed)
        return TEXT_NOT;
    if (!sent)
        return TEXT_NOT_HERE;
    a->stats.received++;
    a->stats.from_text++;
    a->stats.in_place += f.in_place;
    return TEXT_DELIVERED;
}

/* Redis hands every node its own messages back; skipping them used to
 * cost a full read (validation included: a typing event's ~500 bytes).
 * Our encoders write host_id last and compact in every message but a
 * callback (which names its addressee first), so a message that starts as
 * one of ours other than a callback and ends with our host_id is ours: in
 * JSON text the last '}' closes the top object, and the unescaped quote
 * after a comma opens a key, so the last member's key is host_id and its
 * value our id. Anything else is read as before. */
static bool is_own_message(const sh_adapter_t *a, const char *p, size_t len)
{
    static const char prefix[] = "{\"method\":\"";
    static const char callback[] = "{\"method\":\"callback\"";
    return len > a->own_suffix_len + sizeof(callback) &&
           memcmp(p + len - a->own_suffix_len, a->own_suffix, a->own_suffix_len) == 0 &&
           memcmp(p, prefix, sizeof(prefix) - 1) == 0 &&
           memcmp(p, callback, sizeof(callback) - 1) != 0;
}

static void receive(sh_adapter_t *a, const void *payload, size_t len, sh_msg_t *own);

void sh_adapter_receive(sh_adapter_t *a, const void *payload, size_t len)
{
    receive(a, payload, len, NULL);
}

/* own: a message whose data is the payload, which may be rewritten (the
 * payload is not read after a delivery from its text); or NULL. */
static void receive(sh_adapter_t *a, const void *payload, size_t len, sh_msg_t *own)
{
    if (is_own_message(a, payload, len)) {
        a->stats.skipped_own++;
        return;
    }
    /* Every node gets every emit of the fleet: read where the message goes
     * first, and decode only what this node acts on. A route that cannot
     * be read (malformed, refused, unusual) leaves it to the decoder to
     * say why. */
    sh_pubsub_route_t route;
    if (sh_pubsub_route_read(payload, len, &route, NULL) == 0) {
        if (route.method != SH_PUBSUB_CALLBACK && route.host_id &&
            !strcmp(route.host_id, a->host_id)) {
            a->stats.skipped_own++;
            return;
        }
        text_emit_t t = receive_emit_text(a, &route, own);
        if (t == TEXT_DELIVERED)
            return;
        if (t == TEXT_NOT_HERE || !route_is_for_us(a, &route)) {
            a->stats.skipped_not_here++;
            return;
        }
    }
    a->stats.decoded++;
    sh_pubsub_msg_t m;
    const char *why = NULL;
    int rc = sh_pubsub_msg_parse(payload, len, &m, &why);
    if (rc == -ENOTSUP) {
        a->stats.ignored++;
        sh_debug("adapter: message ignored: %s", why ? why : "?");
        return;
    }
    if (rc < 0) {
        a->stats.dropped++;
        sh_warn("adapter: message on %s dropped: %s", a->channel, why ? why : "malformed");
        return;
    }
    if (m.method != SH_PUBSUB_CALLBACK && m.host_id && !strcmp(m.host_id, a->host_id)) {
        a->stats.skipped_own++;
        sh_pubsub_msg_release(&m);
        return;
    }
    a->stats.received++;
    sh_hub_nsp_t *nsp = m.nsp ? sh_hub_nsp(a->opts.hub, m.nsp) : NULL;
    const char *room = json_string_value(json_array_get(m.rooms, 0));
    switch (m.method) {
    case SH_PUBSUB_EMIT:
        receive_emit(a, &m);
        break;
    case SH_PUBSUB_CALLBACK:
        receive_callback(a, &m);
        break;
    case SH_PUBSUB_DISCONNECT:
        if (nsp && m.sid) {
            sh_sio_socket_t *sock = local_socket(a, nsp, m.sid);
            if (sock)
                sh_sio_socket_disconnect(sock, true);
        }
        break;
    case SH_PUBSUB_ENTER_ROOM:
    case SH_PUBSUB_LEAVE_ROOM:
        if (nsp && m.sid && room) {
            sh_sio_socket_t *sock = local_socket(a, nsp, m.sid);
            if (sock && m.method == SH_PUBSUB_ENTER_ROOM)
                sh_hub_join(sock, room);
            else if (sock)
                sh_hub_leave(sock, room);
        }
        break;
    case SH_PUBSUB_CLOSE_ROOM:
        if (nsp && room)
            close_room_here(a, nsp, room);
        break;
    }
    sh_pubsub_msg_release(&m);
}

static void on_channel_message(const char *channel, const char *pattern, const char *payload,
                               size_t len, sh_msg_t *own, void *data)
{
    sh_adapter_t *a = data;
    if (pattern) {
        /* CHANNEL#NSP#ROOM: only rooms with members here are worth a
         * decode (that is the point of room channels). */
        const char *rest = channel + strlen(a->channel) + 1;
        const char *hash = strchr(rest, '#');
        if (!hash)
            return;
        char *nspname = sh_strndup(rest, (size_t)(hash - rest));
        sh_hub_nsp_t *nsp = sh_hub_nsp(a->opts.hub, nspname);
        free(nspname);
        if (!nsp || sh_hub_room_size(nsp, hash + 1) == 0)
            return;
    }
    receive(a, payload, len, own);
}

/* ---- life ---- */

sh_adapter_t *sh_adapter_new(const sh_adapter_options_t *opts)
{
    sh_adapter_t *a = sh_new0(sh_adapter_t);
    a->opts = *opts;
    a->channel = sh_strdup(opts->channel ? opts->channel : "socketio");
    a->opts.channel = a->channel;
    sh_list_init(&a->remote_acks);
    /* 32 hex digits, like python-socketio's uuid4().hex. */
    unsigned char raw[16];
    sh_random_bytes(raw, sizeof(raw));
    for (int i = 0; i < 16; i++)
        snprintf(a->host_id + 2 * i, 3, "%02x", raw[i]);
    a->own_suffix_len =
        (size_t)snprintf(a->own_suffix, sizeof(a->own_suffix), ",\"host_id\":\"%s\"}", a->host_id);
    if (opts->redis) {
        sh_redis_subscribe(opts->redis, a->channel, on_channel_message, a);
        if (opts->room_channels) {
            size_t n = strlen(a->channel) + 3;
            a->pattern = sh_malloc(n);
            snprintf(a->pattern, n, "%s#*", a->channel);
            sh_redis_psubscribe(opts->redis, a->pattern, on_channel_message, a);
        }
    }
    return a;
}

void sh_adapter_free(sh_adapter_t *a)
{
    if (!a)
        return;
    if (a->opts.redis) {
        sh_redis_unsubscribe(a->opts.redis, a->channel, on_channel_message, a);
        if (a->pattern)
            sh_redis_punsubscribe(a->opts.redis, a->pattern, on_channel_message, a);
    }
    sh_map_iter_t it;
    sh_map_iter_init(&it, &a->calls);
    while (sh_map_iter_next(&it)) {
        call_t *c = sh_map_iter_remove(&it);
        if (c->local) {
            sh_sio_socket_t *sock = sh_sio_server_socket(a->opts.sio, c->sid);
            if (sock)
                sh_sio_socket_cancel_ack(sock, c->ack_id);
        }
        c->cb(-ECANCELED, NULL, c->data);
        free(c);
    }
    sh_map_release(&a->calls);
    /* Answers our sockets still owe other nodes: nothing will carry them
     * now. */
    sh_list_t *pos, *tmp;
    sh_list_foreach_safe (pos, tmp, &a->remote_acks) {
        remote_ack_t *r = sh_container_of(pos, remote_ack_t, link);
        sh_sio_socket_t *sock = sh_sio_server_socket(a->opts.sio, r->sid);
        if (sock)
            sh_sio_socket_cancel_ack(sock, r->sock_ack);
        remote_ack_free(r);
    }
    free(a->pattern);
    free(a->channel);
    free(a);
}

const char *sh_adapter_host_id(const sh_adapter_t *a)
{
    return a->host_id;
}

const sh_adapter_stats_t *sh_adapter_stats(const sh_adapter_t *a)
{
    return &a->stats;
}
