#include "hub/hub.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/list.h"
#include "core/log.h"
#include "core/map.h"
#include "socketio/packet.h"

typedef struct room {
    char *name;
    sh_list_t members; /* membership_t.in_room */
    size_t count;
} room_t;

/* A socket's own room (named by its id, as in Node's adapter) is not a
 * room_t: every socket is in one, alone, so it would cost each idle
 * socket a room, a membership and a map entry. It is found through the
 * Socket.IO server's id table instead, and left only by name. */
typedef struct member {
    sh_list_t link; /* nsp->members */
    sh_sio_socket_t *sock;
    sh_hub_nsp_t *nsp;
    sh_list_t memberships; /* membership_t.in_member: the other rooms */
    uint64_t mark;         /* last broadcast epoch that reached or skipped it */
    bool left_own_room;
} member_t;

typedef struct membership {
    sh_list_t in_room;
    sh_list_t in_member;
    room_t *room;
    member_t *member;
} membership_t;

struct sh_hub_nsp {
    sh_list_t link;
    sh_hub_t *hub;
    char *name;
    sh_sio_nsp_handler_t app;
    void *app_data;
    sh_map_t rooms; /* name -> room_t (own rooms aside) */
    sh_list_t members;
    size_t nmembers;
    uint64_t epoch;
};

struct sh_hub {
    sh_sio_server_t *sio;
    sh_list_t nsps;
    sh_hub_stats_t stats;
};

static member_t *member_of(const sh_sio_socket_t *sock)
{
    return sh_sio_socket_slot(sock, SH_SIO_SLOT_HUB);
}

/* ---- membership ---- */

static bool is_own_room(const member_t *m, const char *room)
{
    return !strcmp(room, sh_sio_socket_id(m->sock));
}

/* The member whose own room `room` is, if it is in it. */
static member_t *own_room_member(const sh_hub_nsp_t *nsp, const char *room)
{
    sh_sio_socket_t *sock = sh_sio_server_socket(nsp->hub->sio, room);
    member_t *m = sock ? member_of(sock) : NULL;
    return m && m->nsp == nsp && !m->left_own_room ? m : NULL;
}

static void set_in_own_room(member_t *m, bool in)
{
    if (m->left_own_room != in)
        return;
    m->left_own_room = !in;
    if (in)
        m->nsp->hub->stats.rooms++;
    else
        m->nsp->hub->stats.rooms--;
}

static membership_t *find_membership(const member_t *m, const char *room)
{
    const sh_list_t *pos;
    for (pos = m->memberships.next; pos != &m->memberships; pos = pos->next) {
        membership_t *ms = sh_container_of(pos, membership_t, in_member);
        if (!strcmp(ms->room->name, room))
            return ms;
    }
    return NULL;
}

static void remove_membership(sh_hub_nsp_t *nsp, membership_t *ms)
{
    room_t *r = ms->room;
    sh_list_remove(&ms->in_room);
    sh_list_remove(&ms->in_member);
    free(ms);
    if (--r->count == 0) {
        sh_map_del(&nsp->rooms, r->name);
        nsp->hub->stats.rooms--;
        free(r->name);
        free(r);
    }
}

void sh_hub_join(sh_sio_socket_t *sock, const char *room)
{
    member_t *m = member_of(sock);
    if (m && is_own_room(m, room)) {
        set_in_own_room(m, true);
        return;
    }
    if (!m || find_membership(m, room))
        return;
    sh_hub_nsp_t *nsp = m->nsp;
    room_t *r = sh_map_get(&nsp->rooms, room);
    if (!r) {
        r = sh_new0(room_t);
        r->name = sh_strdup(room);
        sh_list_init(&r->members);
        sh_map_set(&nsp->rooms, r->name, r);
        nsp->hub->stats.rooms++;
    }
    membership_t *ms = sh_new0(membership_t);
    ms->room = r;
    ms->member = m;
    sh_list_insert_tail(&r->members, &ms->in_room);
    sh_list_insert_tail(&m->memberships, &ms->in_member);
    r->count++;
}

void sh_hub_leave(sh_sio_socket_t *sock, const char *room)
{
    member_t *m = member_of(sock);
    if (!m)
        return;
    if (is_own_room(m, room)) {
        set_in_own_room(m, false);
        return;
    }
    membership_t *ms = find_membership(m, room);
    if (ms)
        remove_membership(m->nsp, ms);
}

bool sh_hub_in_room(const sh_sio_socket_t *sock, const char *room)
{
    const member_t *m = member_of(sock);
    if (m && is_own_room(m, room))
        return !m->left_own_room;
    return m && find_membership(m, room);
}

size_t sh_hub_room_size(const sh_hub_nsp_t *nsp, const char *room)
{
    const room_t *r = sh_map_get(&nsp->rooms, room);
    return (r ? r->count : 0) + (own_room_member(nsp, room) ? 1 : 0);
}

void sh_hub_room_foreach(sh_hub_nsp_t *nsp, const char *room,
                         void (*fn)(sh_sio_socket_t *sock, void *data), void *data)
{
    member_t *own = own_room_member(nsp, room);
    if (own)
        fn(own->sock, data);
    room_t *r = sh_map_get(&nsp->rooms, room);
    if (!r)
        return;
    sh_list_t *pos;
    for (pos = r->members.next; pos != &r->members; pos = pos->next)
        fn(sh_container_of(pos, membership_t, in_room)->member->sock, data);
}

void sh_hub_foreach(sh_hub_nsp_t *nsp, void (*fn)(sh_sio_socket_t *sock, void *data), void *data)
{
    sh_list_t *pos;
    for (pos = nsp->members.next; pos != &nsp->members; pos = pos->next)
        fn(sh_container_of(pos, member_t, link)->sock, data);
}

size_t sh_hub_count(const sh_hub_nsp_t *nsp)
{
    return nsp->nmembers;
}

void sh_hub_socket_rooms(const sh_sio_socket_t *sock, void (*fn)(const char *room, void *data),
                         void *data)
{
    const member_t *m = member_of(sock);
    if (!m)
        return;
    if (!m->left_own_room)
        fn(sh_sio_socket_id(sock), data);
    const sh_list_t *pos;
    for (pos = m->memberships.next; pos != &m->memberships; pos = pos->next)
        fn(sh_container_of(pos, membership_t, in_member)->room->name, data);
}

/* ---- broadcast ---- */

/* Calls deliver once for each socket the target names (0: it took the
 * message); returns how many took it. */
typedef int (*deliver_fn)(sh_sio_socket_t *sock, void *ctx);

/* Recipients gathered before they are delivered to. Delivering reaches
 * through each socket's layers (the Socket.IO socket, its Engine.IO
 * session, the WebSocket connection), structures of their own that the
 * kernel's sends since the last broadcast have pushed out of the cache.
 * Delivered as the room's list was walked, each recipient's misses waited
 * for the walk's; walked first, a batch's sockets are fetched while the
 * walk goes on, and delivered from the cache, in the same order. */
#define GATHER 64

typedef struct gather {
    sh_sio_socket_t *socks[GATHER];
    size_t n, sent;
    deliver_fn deliver;
    void *ctx;
} gather_t;

static void gather_flush(gather_t *g)
{
    /* Layer by layer, each for the whole batch: a layer's misses overlap,
     * where one recipient at a time each waited for the one before. */
    for (unsigned step = 0; step < SH_SIO_PREFETCH_STEPS; step++)
        for (size_t i = 0; i < g->n; i++)
            sh_sio_socket_prefetch(g->socks[i], step);
    for (size_t i = 0; i < g->n; i++)
        if (g->deliver(g->socks[i], g->ctx) == 0)
            g->sent++;
    g->n = 0;
}

static inline void gather_add(gather_t *g, sh_sio_socket_t *sock)
{
    __builtin_prefetch(sock);
    g->socks[g->n++] = sock;
    if (g->n == GATHER)
        gather_flush(g);
}

static size_t broadcast(sh_hub_nsp_t *nsp, const sh_hub_target_t *to, deliver_fn deliver, void *ctx)
{
    uint64_t epoch = ++nsp->epoch;
    gather_t g;
    g.n = g.sent = 0;
    g.deliver = deliver;
    g.ctx = ctx;
    sh_list_t *pos, *p2;
    for (size_t i = 0; to && i < to->nexcept; i++) {
        member_t *own = own_room_member(nsp, to->except[i]);
        if (own)
            own->mark = epoch;
        room_t *r = sh_map_get(&nsp->rooms, to->except[i]);
        if (!r)
            continue;
        for (pos = r->members.next; pos != &r->members; pos = pos->next)
            sh_container_of(pos, membership_t, in_room)->member->mark = epoch;
    }
    if (!to || to->nrooms == 0) {
        for (pos = nsp->members.next; pos != &nsp->members; pos = pos->next) {
            member_t *m = sh_container_of(pos, member_t, link);
            if (m->mark == epoch)
                continue;
            m->mark = epoch;
            gather_add(&g, m->sock);
        }
    } else {
        for (size_t i = 0; i < to->nrooms; i++) {
            member_t *own = own_room_member(nsp, to->rooms[i]);
            if (own && own->mark != epoch) {
                own->mark = epoch;
                gather_add(&g, own->sock);
            }
            room_t *r = sh_map_get(&nsp->rooms, to->rooms[i]);
            if (!r)
                continue;
            for (p2 = r->members.next; p2 != &r->members; p2 = p2->next) {
                member_t *m = sh_container_of(p2, membership_t, in_room)->member;
                if (m->mark == epoch)
                    continue;
                m->mark = epoch;
                gather_add(&g, m->sock);
            }
        }
    }
    gather_flush(&g);
    nsp->hub->stats.broadcasts++;
    nsp->hub->stats.deliveries += g.sent;
    return g.sent;
}

typedef struct msgs {
    sh_msg_t *const *msgs;
    size_t n;
} msgs_t;

static int deliver_msgs(sh_sio_socket_t *sock, void *ctx)
{
    const msgs_t *m = ctx;
    return sh_sio_socket_send_msgs(sock, m->msgs, m->n);
}

size_t sh_hub_send(sh_hub_nsp_t *nsp, const sh_hub_target_t *to, sh_msg_t *const *msgs, size_t n)
{
    msgs_t m = {msgs, n};
    return broadcast(nsp, to, deliver_msgs, &m);
}

typedef struct built {
    sh_msg_t *(*build)(void *arg);
    void *arg;
    sh_msg_t *msg;
    bool failed;
} built_t;

static int deliver_built(sh_sio_socket_t *sock, void *ctx)
{
    built_t *b = ctx;
    if (!b->msg && !b->failed && !(b->msg = b->build(b->arg)))
        b->failed = true;
    return b->failed ? -EINVAL : sh_sio_socket_send_msgs(sock, &b->msg, 1);
}

size_t sh_hub_send_built(sh_hub_nsp_t *nsp, const sh_hub_target_t *to,
                         sh_msg_t *(*build)(void *arg), void *arg, bool *failed)
{
    built_t b = {.build = build, .arg = arg};
    size_t sent = broadcast(nsp, to, deliver_built, &b);
    sh_msg_unref(b.msg);
    *failed = b.failed;
    return sent;
}

/* An emit whose packet is built at its first recipient, so that one that
 * reaches nobody here (a room with no member on this node, everyone
 * excepted) costs no encoding. */
typedef struct lazy_emit {
    sh_hub_nsp_t *nsp;
    const char *event;
    json_t *args;
    sh_msg_t *const *bins;
    size_t nbins;
    int n; /* messages in msgs; 0 not built yet, < 0 cannot be */
    sh_msg_t *msgs[1 + SH_SIO_MAX_ATTACHMENTS];
} lazy_emit_t;

static int deliver_emit(sh_sio_socket_t *sock, void *ctx)
{
    lazy_emit_t *e = ctx;
    if (e->n == 0) {
        json_t *data = sh_sio_event_array(e->event, e->args);
        e->n = sh_sio_packet_encode(SH_SIO_EVENT, e->nsp->name, -1, data, e->bins, e->nbins,
                                    e->msgs, 1 + SH_SIO_MAX_ATTACHMENTS);
        json_decref(data);
        if (e->n == 0)
            e->n = -EINVAL;
        if (e->n > 0)
            e->nsp->hub->stats.packets++;
    }
    return e->n < 0 ? e->n : sh_sio_socket_send_msgs(sock, e->msgs, (size_t)e->n);
}

size_t sh_hub_emit(sh_hub_nsp_t *nsp, const sh_hub_target_t *to, const char *event, json_t *args,
                   sh_msg_t *const *bins, size_t nbins)
{
    if (nbins > SH_SIO_MAX_ATTACHMENTS)
        return 0;
    lazy_emit_t e = {.nsp = nsp, .event = event, .args = args, .bins = bins, .nbins = nbins};
    size_t sent = broadcast(nsp, to, deliver_emit, &e);
    for (int i = 0; i < e.n; i++)
        sh_msg_unref(e.msgs[i]);
    return sent;
}

/* ---- the namespace wrapper ---- */

static int hub_on_connect(sh_sio_socket_t *sock, json_t *auth, json_t **error, void *data)
{
    sh_hub_nsp_t *nsp = data;
    return nsp->app.on_connect ? nsp->app.on_connect(sock, auth, error, nsp->app_data) : 0;
}

static void hub_on_connected(sh_sio_socket_t *sock, json_t *auth, void *data)
{
    sh_hub_nsp_t *nsp = data;
    member_t *m = sh_new0(member_t);
    m->sock = sock;
    m->nsp = nsp;
    sh_list_init(&m->memberships);
    sh_list_insert_tail(&nsp->members, &m->link);
    nsp->nmembers++;
    m->left_own_room = true; /* joined just below */
    sh_sio_socket_set_slot(sock, SH_SIO_SLOT_HUB, m);
    sh_hub_join(sock, sh_sio_socket_id(sock));
    if (nsp->app.on_connected)
        nsp->app.on_connected(sock, auth, nsp->app_data);
}

static void hub_on_event(sh_sio_socket_t *sock, const char *event, const sh_sio_args_t *args,
                         int64_t ack_id, void *data)
{
    sh_hub_nsp_t *nsp = data;
    if (nsp->app.on_event)
        nsp->app.on_event(sock, event, args, ack_id, nsp->app_data);
}

static void hub_on_event_text(sh_sio_socket_t *sock, const char *event, const sh_json_span_t *args,
                              size_t nargs, int64_t ack_id, void *data)
{
    sh_hub_nsp_t *nsp = data;
    nsp->app.on_event_text(sock, event, args, nargs, ack_id, nsp->app_data);
}

static void member_free(member_t *m)
{
    set_in_own_room(m, false);
    while (!sh_list_empty(&m->memberships))
        remove_membership(m->nsp, sh_container_of(m->memberships.next, membership_t, in_member));
    sh_list_remove(&m->link);
    m->nsp->nmembers--;
    free(m);
}

static void hub_on_disconnect(sh_sio_socket_t *sock, const char *reason, void *data)
{
    sh_hub_nsp_t *nsp = data;
    if (nsp->app.on_disconnect)
        nsp->app.on_disconnect(sock, reason, nsp->app_data);
    member_t *m = member_of(sock);
    if (m) {
        member_free(m);
        sh_sio_socket_set_slot(sock, SH_SIO_SLOT_HUB, NULL);
    }
}

static const sh_sio_nsp_handler_t hub_handler = {
    .on_connect = hub_on_connect,
    .on_connected = hub_on_connected,
    .on_event = hub_on_event,
    .on_disconnect = hub_on_disconnect,
};

sh_hub_t *sh_hub_new(sh_sio_server_t *sio)
{
    sh_hub_t *hub = sh_new0(sh_hub_t);
    hub->sio = sio;
    sh_list_init(&hub->nsps);
    return hub;
}

sh_hub_nsp_t *sh_hub_add_nsp(sh_hub_t *hub, const char *name, const sh_sio_nsp_handler_t *app,
                             void *data)
{
    sh_hub_nsp_t *nsp = sh_new0(sh_hub_nsp_t);
    nsp->hub = hub;
    nsp->name = sh_strdup(name);
    nsp->app = *app;
    nsp->app_data = data;
    sh_list_init(&nsp->members);
    sh_map_borrow_keys(&nsp->rooms); /* keyed by the rooms' own names */
    sh_list_insert_tail(&hub->nsps, &nsp->link);
    /* The server copies the handler: the app's text events pass through. */
    sh_sio_nsp_handler_t handler = hub_handler;
    if (app->on_event_text) {
        handler.text_events = app->text_events;
        handler.on_event_text = hub_on_event_text;
    }
    sh_sio_server_add_nsp(hub->sio, name, &handler, nsp);
    return nsp;
}

sh_hub_nsp_t *sh_hub_nsp(const sh_hub_t *hub, const char *name)
{
    const sh_list_t *pos;
    for (pos = hub->nsps.next; pos != &hub->nsps; pos = pos->next) {
        sh_hub_nsp_t *nsp = sh_container_of(pos, sh_hub_nsp_t, link);
        if (!strcmp(nsp->name, name))
            return nsp;
    }
    return NULL;
}

const char *sh_hub_nsp_name(const sh_hub_nsp_t *nsp)
{
    return nsp->name;
}

sh_hub_nsp_t *sh_hub_socket_nsp(const sh_sio_socket_t *sock)
{
    const member_t *m = member_of(sock);
    return m ? m->nsp : NULL;
}

const sh_hub_stats_t *sh_hub_stats(const sh_hub_t *hub)
{
    return &hub->stats;
}

void sh_hub_free(sh_hub_t *hub)
{
    if (!hub)
        return;
    sh_list_t *pos, *tmp;
    sh_list_foreach_safe (pos, tmp, &hub->nsps) {
        sh_hub_nsp_t *nsp = sh_container_of(pos, sh_hub_nsp_t, link);
        sh_list_t *mp, *mt;
        sh_list_foreach_safe (mp, mt, &nsp->members) {
            member_t *m = sh_container_of(mp, member_t, link);
            sh_sio_socket_set_slot(m->sock, SH_SIO_SLOT_HUB, NULL);
            member_free(m);
        }
        sh_map_release(&nsp->rooms);
        free(nsp->name);
        free(nsp);
    }
    free(hub);
}
