#include "socketio/server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/list.h"
#include "core/log.h"
#include "core/map.h"
#include "core/random.h"
#include "socketio/packet.h"

#define MAX_MSGS (1 + SH_SIO_MAX_ATTACHMENTS)

typedef struct sio_client sio_client_t;

struct sh_sio_nsp {
    sh_list_t link;
    char *name;
    sh_sio_nsp_handler_t handler;
    void *data;
};

typedef struct pending_ack {
    sh_sio_ack_cb cb;
    void *data;
} pending_ack_t;

/* The acks a socket waits for; allocated with its first one (an idle
 * socket has none). */
typedef struct sock_acks {
    sh_map_t acks; /* decimal id -> pending_ack_t */
    int64_t next_ack_id;
    /* Acks of sh_sio_socket_dispatch: decimal id -> pending_ack_t, ids
     * from DISPATCH_ACK_BASE up, far from any id a client counts to. */
    sh_map_t local_acks;
    int64_t next_local_id;
} sock_acks_t;

struct sh_sio_socket {
    sh_list_t link; /* client->sockets */
    sio_client_t *client;
    sh_sio_nsp_t *nsp;
    char id[SH_ID_LEN + 1];
    bool connected;
    /* on_connect answered -EINPROGRESS: no CONNECT answer yet. */
    bool pending;
    bool answering; /* pending, and accepted: answer_defer is queued */
    json_t *auth;   /* pending: the CONNECT payload, for on_connected */
    sh_timer_t pending_timer;
    sh_defer_t answer_defer;
    const char *close_reason;
    void *slots[2];
    sock_acks_t *acks; /* NULL until the first ack is awaited */
    sh_defer_t end_defer;
};

struct sio_client {
    sh_sio_server_t *srv;
    sh_eio_session_t *eio;
    sh_list_t sockets;
    /* A BINARY_* packet waiting for attachments, or NULL: allocated only
     * then (a packet is 300 bytes; most clients never send binary). */
    sh_sio_packet_t *partial;
    bool attached; /* sh_sio_server_attach: the client sends no packets */
    sh_timer_t connect_timer;
};

#define DISPATCH_ACK_BASE ((int64_t)1 << 62)

struct sh_sio_server {
    sh_loop_t *loop;
    sh_sio_options_t opts;
    sh_list_t nsps;
    sh_map_t sockets; /* id -> socket (connected ones) */
    sh_map_t pending; /* id -> socket (CONNECT not answered yet) */
    sh_list_t ending; /* sockets between close and free */
    sh_sio_stats_t stats;
    sh_log_limit_t parse_error_log; /* info level at most once a while (core/log.h) */
};

/* ---- encoding helpers ---- */

json_t *sh_sio_event_array(const char *event, json_t *args)
{
    json_t *arr = json_array();
    json_array_append_new(arr, json_string(event));
    if (args)
        json_array_extend(arr, args); /* references, not copies */
    return arr;
}

static int send_packet(sh_sio_socket_t *sock, sh_sio_type_t type, int64_t id, const json_t *data,
                       sh_msg_t *const *bins, size_t nbins)
{
    sh_msg_t *msgs[MAX_MSGS];
    if (nbins > SH_SIO_MAX_ATTACHMENTS)
        return -E2BIG;
    int n = sh_sio_packet_encode(type, sock->nsp->name, id, data, bins, nbins, msgs, MAX_MSGS);
    if (n < 0)
        return n;
    sock->client->srv->stats.events_out++;
    for (int i = 0; i < n; i++)
        sh_eio_send(sock->client->eio, msgs[i]);
    return 0;
}

/* ---- sockets ---- */

/* Frees a socket and any acks still pending (their callbacks have run, or
 * are dropped on teardown). */
static void free_ack_map(sh_map_t *acks)
{
    sh_map_iter_t it;
    sh_map_iter_init(&it, acks);
    while (sh_map_iter_next(&it))
        free(sh_map_iter_remove(&it));
    sh_map_release(acks);
}

static sock_acks_t *acks_of(sh_sio_socket_t *sock)
{
    if (!sock->acks) {
        sock->acks = sh_new0(sock_acks_t);
        sock->acks->next_local_id = DISPATCH_ACK_BASE;
    }
    return sock->acks;
}

/* Removes and returns the pending ack with decimal id `key` (from the
 * dispatch acks when local), or NULL. */
static pending_ack_t *take_ack(sh_sio_socket_t *sock, bool local, const char *key)
{
    if (!sock->acks)
        return NULL;
    return sh_map_del(local ? &sock->acks->local_acks : &sock->acks->acks, key);
}

static void socket_free(sh_sio_socket_t *sock)
{
    json_decref(sock->auth);
    if (sock->acks) {
        free_ack_map(&sock->acks->acks);
        free_ack_map(&sock->acks->local_acks);
        free(sock->acks);
    }
    free(sock);
}

static void fail_ack_map(sh_sio_socket_t *sock, sh_map_t *acks)
{
    sh_sio_server_t *srv = sock->client ? sock->client->srv : NULL;
    sh_map_iter_t it;
    sh_map_iter_init(&it, acks);
    sh_map_entry_t *e;
    json_t *empty = json_array();
    sh_sio_args_t none = {.args = empty, .bins = NULL, .nbins = 0};
    while ((e = sh_map_iter_next(&it))) {
        pending_ack_t *p = sh_map_iter_remove(&it);
        if (srv)
            p->cb(srv, sock->id, -ECONNRESET, &none, p->data);
        free(p);
    }
    json_decref(empty);
}

static void fail_acks(sh_sio_socket_t *sock)
{
    if (!sock->acks)
        return;
    fail_ack_map(sock, &sock->acks->acks);
    fail_ack_map(sock, &sock->acks->local_acks);
}

static void on_socket_end(sh_loop_t *loop, sh_defer_t *d)
{
    sh_sio_socket_t *sock = d->data;
    sh_sio_server_t *srv = sock->client->srv;
    if (sock->nsp->handler.on_disconnect)
        sock->nsp->handler.on_disconnect(sock, sock->close_reason, sock->nsp->data);
    fail_acks(sock);
    sh_list_remove(&sock->link);
    socket_free(sock);
    (void)srv;
}

/* Ends the pending state (answered, or the socket ends): out of the
 * pending table, its deadline and any scheduled answer stopped. Returns
 * the CONNECT payload it kept (the caller's reference). */
static json_t *leave_pending(sh_sio_socket_t *sock)
{
    sh_sio_server_t *srv = sock->client->srv;
    json_t *auth = sock->auth;
    sock->auth = NULL;
    sock->pending = sock->answering = false;
    sh_map_del(&srv->pending, sock->id);
    srv->stats.pending--;
    sh_timer_stop(srv->loop, &sock->pending_timer);
    sh_defer_cancel(srv->loop, &sock->answer_defer);
    return auth;
}

/* Takes a connected or pending socket out of its id table and its
 * client's list, with its pending answer and deadline: nothing reaches it
 * by id any more. Its end (on_disconnect, the free) is the caller's. */
static void socket_unlink(sh_sio_socket_t *sock)
{
    sh_sio_server_t *srv = sock->client->srv;
    if (sock->connected) {
        sock->connected = false;
        sh_map_del(&srv->sockets, sock->id);
        srv->stats.sockets--;
    } else if (sock->pending) {
        json_decref(leave_pending(sock));
    }
    sh_list_remove(&sock->link);
}

/* Ends a connected or pending socket: it leaves the id tables and its
 * client at once; on_disconnect runs from the loop. */
static void socket_close(sh_sio_socket_t *sock, const char *reason)
{
    if (!sock->connected && !sock->pending)
        return;
    sh_sio_server_t *srv = sock->client->srv;
    sock->close_reason = reason;
    socket_unlink(sock);
    sh_list_insert_tail(&srv->ending, &sock->link);
    sh_defer_schedule(srv->loop, &sock->end_defer, on_socket_end, sock);
}

const char *sh_sio_socket_id(const sh_sio_socket_t *sock)
{
    return sock->id;
}

sh_sio_nsp_t *sh_sio_socket_nsp(const sh_sio_socket_t *sock)
{
    return sock->nsp;
}

sh_sio_server_t *sh_sio_socket_server(const sh_sio_socket_t *sock)
{
    return sock->client->srv;
}

sh_eio_session_t *sh_sio_socket_session(const sh_sio_socket_t *sock)
{
    return sock->client->eio;
}

bool sh_sio_socket_connected(const sh_sio_socket_t *sock)
{
    return sock->connected;
}

void *sh_sio_socket_slot(const sh_sio_socket_t *sock, int slot)
{
    return sock->slots[slot];
}

void sh_sio_socket_set_slot(sh_sio_socket_t *sock, int slot, void *p)
{
    sock->slots[slot] = p;
}

int sh_sio_socket_emit(sh_sio_socket_t *sock, const char *event, json_t *args,
                       sh_msg_t *const *bins, size_t nbins, sh_sio_ack_cb cb, void *cb_data,
                       int64_t *ack_id_out)
{
    if (!sock->connected)
        return -EPIPE;
    if (cb && sock->client->attached)
        return -ENOTSUP; /* its client sends nothing, acks included */
    int64_t id = -1;
    if (cb)
        id = acks_of(sock)->next_ack_id++;
    json_t *data = sh_sio_event_array(event, args);
    int rc = send_packet(sock, SH_SIO_EVENT, id, data, bins, nbins);
    json_decref(data);
    if (rc < 0)
        return rc;
    if (cb) {
        char key[24];
        snprintf(key, sizeof(key), "%lld", (long long)id);
        pending_ack_t *p = sh_new0(pending_ack_t);
        p->cb = cb;
        p->data = cb_data;
        sh_map_set(&acks_of(sock)->acks, key, p);
    }
    if (ack_id_out)
        *ack_id_out = id;
    return 0;
}

int sh_sio_socket_ack(sh_sio_socket_t *sock, int64_t id, json_t *args, sh_msg_t *const *bins,
                      size_t nbins)
{
    if (!sock->connected)
        return -EPIPE;
    json_t *empty = NULL;
    if (!args)
        args = empty = json_array();
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)id);
    pending_ack_t *local = id >= DISPATCH_ACK_BASE ? take_ack(sock, true, key) : NULL;
    if (local) {
        /* A dispatched event's answer: to its callback, not the wire. */
        sh_sio_args_t a = {.args = args, .bins = bins, .nbins = nbins};
        local->cb(sock->client->srv, sock->id, 0, &a, local->data);
        free(local);
        json_decref(empty);
        return 0;
    }
    int rc = send_packet(sock, SH_SIO_ACK, id, args, bins, nbins);
    json_decref(empty);
    return rc;
}

int sh_sio_socket_cancel_ack(sh_sio_socket_t *sock, int64_t id)
{
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)id);
    pending_ack_t *p = take_ack(sock, false, key);
    if (!p)
        return -ENOENT;
    free(p);
    return 0;
}

int sh_sio_socket_send_msgs(sh_sio_socket_t *sock, sh_msg_t *const *msgs, size_t n)
{
    if (!sock->connected)
        return -EPIPE;
    sock->client->srv->stats.events_out++;
    for (size_t i = 0; i < n; i++)
        sh_eio_send(sock->client->eio, sh_msg_ref(msgs[i]));
    return 0;
}

void sh_sio_socket_prefetch(const sh_sio_socket_t *sock, unsigned step)
{
    if (step == 0)
        __builtin_prefetch(sock->client);
    else if (sock->client->eio)
        sh_eio_session_prefetch(sock->client->eio, step - 1);
}

void sh_sio_socket_disconnect(sh_sio_socket_t *sock, bool close_session)
{
    if (!sock->connected)
        return;
    sio_client_t *client = sock->client;
    send_packet(sock, SH_SIO_DISCONNECT, -1, NULL, NULL, 0);
    socket_close(sock, "server namespace disconnect");
    if (close_session)
        sh_eio_close(client->eio);
}

/* ---- namespaces ---- */

sh_sio_nsp_t *sh_sio_server_add_nsp(sh_sio_server_t *srv, const char *name,
                                    const sh_sio_nsp_handler_t *handler, void *data)
{
    sh_sio_nsp_t *nsp = sh_new0(sh_sio_nsp_t);
    nsp->name = sh_strdup(name);
    nsp->handler = *handler;
    nsp->data = data;
    sh_list_insert_tail(&srv->nsps, &nsp->link);
    return nsp;
}

sh_sio_nsp_t *sh_sio_server_nsp(const sh_sio_server_t *srv, const char *name)
{
    const sh_list_t *pos;
    for (pos = srv->nsps.next; pos != &srv->nsps; pos = pos->next) {
        sh_sio_nsp_t *nsp = sh_container_of(pos, sh_sio_nsp_t, link);
        if (!strcmp(nsp->name, name))
            return nsp;
    }
    return NULL;
}

const char *sh_sio_nsp_name(const sh_sio_nsp_t *nsp)
{
    return nsp->name;
}

/* Every socket id here is sh_random_id's, SH_ID_LEN long: a name of
 * another length (a room name asked whether it is a socket's own room,
 * on every broadcast) is answered without hashing it. */
static bool id_shaped(const char *id)
{
    return strnlen(id, SH_ID_LEN + 1) == SH_ID_LEN;
}

sh_sio_socket_t *sh_sio_server_socket(const sh_sio_server_t *srv, const char *id)
{
    return id_shaped(id) ? sh_map_get(&srv->sockets, id) : NULL;
}

sh_sio_socket_t *sh_sio_server_pending_socket(const sh_sio_server_t *srv, const char *id)
{
    return id_shaped(id) ? sh_map_get(&srv->pending, id) : NULL;
}

/* ---- clients: packets from one Engine.IO session ---- */

static sh_sio_socket_t *client_socket(sio_client_t *client, const char *nsp)
{
    sh_list_t *pos;
    for (pos = client->sockets.next; pos != &client->sockets; pos = pos->next) {
        sh_sio_socket_t *sock = sh_container_of(pos, sh_sio_socket_t, link);
        if (!strcmp(sock->nsp->name, nsp))
            return sock;
    }
    return NULL;
}

/* Sends a packet on a namespace the client has no socket for (CONNECT
 * errors). */
static void send_raw(sio_client_t *client, sh_sio_type_t type, const char *nsp, const json_t *data)
{
    sh_msg_t *msgs[1];
    if (sh_sio_packet_encode(type, nsp, -1, data, NULL, 0, msgs, 1) == 1)
        sh_eio_send(client->eio, msgs[0]);
}

/* The CONNECT answer: the socket joins the id table, {"sid"} is queued,
 * then on_connected runs (so the first thing it sends follows the
 * answer). auth is borrowed. */
static void socket_connect(sh_sio_socket_t *sock, json_t *auth)
{
    sio_client_t *client = sock->client;
    sh_sio_server_t *srv = client->srv;
    sock->connected = true;
    sh_map_set(&srv->sockets, sock->id, sock);
    srv->stats.sockets++;
    srv->stats.connects++;
    sh_timer_stop(srv->loop, &client->connect_timer);
    json_t *ack = json_pack("{s:s}", "sid", sock->id);
    send_raw(client, SH_SIO_CONNECT, sock->nsp->name, ack);
    json_decref(ack);
    if (sock->nsp->handler.on_connected)
        sock->nsp->handler.on_connected(sock, auth, sock->nsp->data);
}

/* A refusal: CONNECT_ERROR with error (stolen; NULL: "Not authorized"). */
static void send_refusal(sio_client_t *client, const char *nsp, json_t *error)
{
    client->srv->stats.connect_errors++;
    if (!error)
        error = json_pack("{s:s}", "message", "Not authorized");
    send_raw(client, SH_SIO_CONNECT_ERROR, nsp, error);
    json_decref(error);
}

/* A CONNECT left unanswered for connect_timeout: the session closes, as
 * one that connects no namespace in time does (Node's connectTimeout), and
 * the client's reconnection tries again. */
static void on_pending_timeout(sh_loop_t *loop, sh_timer_t *t)
{
    sh_sio_socket_t *sock = t->data;
    sio_client_t *client = sock->client;
    sh_info("sio: session %s from %s: CONNECT to %s not answered within %llu ms; closing it",
            sh_eio_session_sid(client->eio), sh_eio_session_peer(client->eio), sock->nsp->name,
            (unsigned long long)client->srv->opts.connect_timeout);
    socket_close(sock, "connect timeout");
    sh_eio_close(client->eio);
}

static void handle_connect(sio_client_t *client, sh_sio_packet_t *pkt)
{
    sh_sio_server_t *srv = client->srv;
    sh_sio_nsp_t *nsp = sh_sio_server_nsp(srv, pkt->nsp);
    if (!nsp) {
        srv->stats.connect_errors++;
        json_t *err = json_pack("{s:s}", "message", "Invalid namespace");
        send_raw(client, SH_SIO_CONNECT_ERROR, pkt->nsp, err);
        json_decref(err);
        return;
    }
    if (client_socket(client, pkt->nsp)) {
        /* Node's client closes on this "invalid state" too. */
        sh_debug("sio: %s: second CONNECT to %s; closing", sh_eio_session_sid(client->eio),
                 pkt->nsp);
        sh_eio_close(client->eio);
        return;
    }
    sh_sio_socket_t *sock = sh_new0(sh_sio_socket_t);
    sock->client = client;
    sock->nsp = nsp;
    sh_random_id(sock->id);
    json_t *error = NULL;
    int rc =
        nsp->handler.on_connect ? nsp->handler.on_connect(sock, pkt->data, &error, nsp->data) : 0;
    if (rc && rc != -EINPROGRESS) {
        send_refusal(client, pkt->nsp, error);
        socket_free(sock);
        return;
    }
    json_decref(error);
    sh_list_insert_tail(&client->sockets, &sock->link);
    if (rc == 0) {
        socket_connect(sock, pkt->data);
        return;
    }
    /* Answered later by sh_sio_socket_accept or _refuse, or given up. */
    sock->pending = true;
    sock->auth = json_incref(pkt->data);
    sh_map_set(&srv->pending, sock->id, sock);
    srv->stats.pending++;
    sh_timer_start(srv->loop, &sock->pending_timer, srv->opts.connect_timeout, on_pending_timeout,
                   sock);
}

static void on_answer(sh_loop_t *loop, sh_defer_t *d)
{
    sh_sio_socket_t *sock = d->data;
    json_t *auth = leave_pending(sock);
    socket_connect(sock, auth);
    json_decref(auth);
}

int sh_sio_socket_accept(sh_sio_socket_t *sock)
{
    if (!sock->pending || sock->answering)
        return -EINVAL;
    sh_sio_server_t *srv = sock->client->srv;
    sock->answering = true;
    sh_timer_stop(srv->loop, &sock->pending_timer);
    sh_defer_schedule(srv->loop, &sock->answer_defer, on_answer, sock);
    return 0;
}

int sh_sio_socket_refuse(sh_sio_socket_t *sock, json_t *error)
{
    if (!sock->pending || sock->answering) {
        json_decref(error);
        return -EINVAL;
    }
    sio_client_t *client = sock->client;
    send_refusal(client, sock->nsp->name, error);
    socket_close(sock, "connect refused");
    /* A client that sends no packets cannot try again. */
    if (client->attached)
        sh_eio_close(client->eio);
    return 0;
}

static void dispatch_event(sh_sio_socket_t *sock, sh_sio_packet_t *pkt)
{
    sock->client->srv->stats.events_in++;
    json_t *first = json_array_get(pkt->data, 0);
    char numbuf[32];
    const char *event;
    if (json_is_string(first)) {
        event = json_string_value(first);
    } else {
        /* socket.io-parser allows numeric event names. */
        snprintf(numbuf, sizeof(numbuf), "%" JSON_INTEGER_FORMAT, json_integer_value(first));
        event = numbuf;
    }
    json_t *args = json_array();
    for (size_t i = 1; i < json_array_size(pkt->data); i++)
        json_array_append(args, json_array_get(pkt->data, i));
    sh_sio_args_t a = {.args = args, .bins = pkt->bins, .nbins = pkt->nbins};
    if (sock->nsp->handler.on_event)
        sock->nsp->handler.on_event(sock, event, &a, pkt->id, sock->nsp->data);
    json_decref(args);
}

static bool is_text_event(const char *const *names, const char *event)
{
    for (; names && *names; names++)
        if (!strcmp(*names, event))
            return true;
    return false;
}

/* A text EVENT whose handler takes it as text (text_events): delivered
 * from its spans, with the checks handle_packet makes. False when it is
 * not one, for sh_sio_packet_decode and handle_packet to take. */
static bool dispatch_event_text(sio_client_t *client, const char *msg, size_t len)
{
    sh_sio_event_text_t ev;
    if (sh_sio_event_peek(msg, len, &ev) < 0)
        return false;
    sh_sio_socket_t *sock = client_socket(client, ev.nsp);
    if (!sock || !sock->connected)
        return false;
    const sh_sio_nsp_handler_t *h = &sock->nsp->handler;
    if (!h->on_event_text || !is_text_event(h->text_events, ev.event))
        return false;
    sh_json_span_t args[SH_SIO_TEXT_MAX_ARGS];
    size_t nargs;
    if (sh_sio_event_read_args(&ev, args, SH_SIO_TEXT_MAX_ARGS, &nargs) < 0)
        return false;
    client->srv->stats.events_in++;
    h->on_event_text(sock, ev.event, args, nargs, ev.id, sock->nsp->data);
    return true;
}

static void dispatch_ack(sh_sio_socket_t *sock, sh_sio_packet_t *pkt)
{
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)pkt->id);
    pending_ack_t *p = take_ack(sock, false, key);
    if (!p) {
        sh_debug("sio: %s: ack %lld for nothing pending", sock->id, (long long)pkt->id);
        return;
    }
    json_t *empty = NULL;
    sh_sio_args_t a = {.args = pkt->data ? pkt->data : (empty = json_array()),
                       .bins = pkt->bins,
                       .nbins = pkt->nbins};
    p->cb(sock->client->srv, sock->id, 0, &a, p->data);
    json_decref(empty);
    free(p);
}

static void handle_packet(sio_client_t *client, sh_sio_packet_t *pkt)
{
    if (pkt->type == SH_SIO_CONNECT) {
        handle_connect(client, pkt);
        return;
    }
    sh_sio_socket_t *sock = client_socket(client, pkt->nsp);
    if (!sock || !sock->connected || pkt->type == SH_SIO_CONNECT_ERROR) {
        /* A packet for a namespace not connected (never, or its CONNECT
         * not answered yet), or one only servers send: Node's client
         * calls it an invalid state and closes. */
        sh_debug("sio: %s: packet type %d for %s namespace %s; closing",
                 sh_eio_session_sid(client->eio), (int)pkt->type,
                 !sock             ? "unconnected"
                 : sock->connected ? "connected"
                                   : "pending",
                 pkt->nsp);
        sh_eio_close(client->eio);
        return;
    }
    switch (pkt->type) {
    case SH_SIO_EVENT:
    case SH_SIO_BINARY_EVENT:
        dispatch_event(sock, pkt);
        break;
    case SH_SIO_ACK:
    case SH_SIO_BINARY_ACK:
        dispatch_ack(sock, pkt);
        break;
    case SH_SIO_DISCONNECT:
        socket_close(sock, "client namespace disconnect");
        break;
    default:
        /* CONNECT_ERROR is server-to-client only. */
        sh_debug("sio: %s: unexpected packet type %d", sock->id, (int)pkt->type);
        break;
    }
}

static void drop_partial(sio_client_t *client)
{
    if (!client->partial)
        return;
    sh_sio_packet_release(client->partial);
    free(client->partial);
    client->partial = NULL;
}

static void parse_error(sio_client_t *client, const char *why)
{
    client->srv->stats.parse_errors++;
    sh_log_limited(&client->srv->parse_error_log, SH_LOG_INFO,
                   "sio: session %s from %s: malformed packet (%s); closing it",
                   sh_eio_session_sid(client->eio), sh_eio_session_peer(client->eio), why);
    drop_partial(client);
    sh_eio_close(client->eio);
}

/* ---- the Engine.IO handler ---- */

static bool has_connected_socket(const sio_client_t *client)
{
    const sh_list_t *pos;
    for (pos = client->sockets.next; pos != &client->sockets; pos = pos->next)
        if (sh_container_of(pos, sh_sio_socket_t, link)->connected)
            return true;
    return false;
}

/* Pending CONNECTs do not count: in Node a namespace is connected once its
 * middlewares have answered. */
static void on_connect_timeout(sh_loop_t *loop, sh_timer_t *t)
{
    sio_client_t *client = t->data;
    if (!has_connected_socket(client)) {
        sh_debug("sio: session %s: no CONNECT within the connect timeout",
                 sh_eio_session_sid(client->eio));
        sh_eio_close(client->eio);
    }
}

static void on_eio_open(sh_eio_session_t *s, void *data)
{
    sh_sio_server_t *srv = data;
    sio_client_t *client = sh_new0(sio_client_t);
    client->srv = srv;
    client->eio = s;
    sh_list_init(&client->sockets);
    sh_eio_session_set_data(s, client);
    sh_timer_start(srv->loop, &client->connect_timer, srv->opts.connect_timeout, on_connect_timeout,
                   client);
}

static void on_eio_message(sh_eio_session_t *s, const char *msg, size_t len, bool binary,
                           void *data)
{
    sio_client_t *client = sh_eio_session_data(s);
    if (binary) {
        if (!client->partial) {
            parse_error(client, "unexpected binary attachment");
            return;
        }
        sh_msg_t *att = sh_msg_new(msg, len, true);
        int rc = sh_sio_packet_add_attachment(client->partial, att);
        sh_msg_unref(att);
        if (rc < 0) {
            parse_error(client, "too many attachments");
            return;
        }
        if (rc == 1) {
            sh_sio_packet_t pkt = *client->partial;
            free(client->partial);
            client->partial = NULL;
            handle_packet(client, &pkt);
            sh_sio_packet_release(&pkt);
        }
        return;
    }
    if (client->partial) {
        parse_error(client, "text packet while attachments were due");
        return;
    }
    if (len && msg[0] == '0' + SH_SIO_EVENT && dispatch_event_text(client, msg, len))
        return;
    sh_sio_packet_t pkt;
    const char *why = NULL;
    if (sh_sio_packet_decode(msg, len, &pkt, &why) < 0) {
        parse_error(client, why ? why : "invalid packet");
        return;
    }
    if (!sh_sio_packet_complete(&pkt)) {
        client->partial = sh_memdup(&pkt, sizeof(pkt));
        return;
    }
    handle_packet(client, &pkt);
    sh_sio_packet_release(&pkt);
}

static void on_eio_close(sh_eio_session_t *s, const char *reason, void *data)
{
    sio_client_t *client = sh_eio_session_data(s);
    if (!client)
        return;
    sh_sio_server_t *srv = client->srv;
    sh_timer_stop(srv->loop, &client->connect_timer);
    drop_partial(client);
    /* Sockets end now, in this callback (the session is going away), not
     * deferred: their handlers may still read the session. */
    sh_list_t *pos, *tmp;
    sh_list_foreach_safe (pos, tmp, &client->sockets) {
        sh_sio_socket_t *sock = sh_container_of(pos, sh_sio_socket_t, link);
        socket_unlink(sock);
        if (sock->nsp->handler.on_disconnect)
            sock->nsp->handler.on_disconnect(sock, reason, sock->nsp->data);
        fail_acks(sock);
        socket_free(sock);
    }
    /* Sockets closed earlier and still waiting for their deferred end
     * point at this client: run their ends now. */
    sh_list_foreach_safe (pos, tmp, &srv->ending) {
        sh_sio_socket_t *sock = sh_container_of(pos, sh_sio_socket_t, link);
        if (sock->client != client)
            continue;
        sh_defer_cancel(srv->loop, &sock->end_defer);
        on_socket_end(srv->loop, &sock->end_defer);
    }
    sh_eio_session_set_data(s, NULL);
    free(client);
}

static const sh_eio_handler_t eio_handler = {
    .on_open = on_eio_open,
    .on_message = on_eio_message,
    .on_close = on_eio_close,
};

const sh_eio_handler_t *sh_sio_eio_handler(void)
{
    return &eio_handler;
}

/* ---- the server ---- */

sh_sio_server_t *sh_sio_server_new(sh_loop_t *loop, const sh_sio_options_t *opts)
{
    sh_sio_server_t *srv = sh_new0(sh_sio_server_t);
    srv->loop = loop;
    srv->opts = *opts;
    sh_list_init(&srv->nsps);
    sh_list_init(&srv->ending);
    sh_map_borrow_keys(&srv->sockets); /* keyed by the sockets' own ids */
    return srv;
}

void sh_sio_server_free(sh_sio_server_t *srv)
{
    if (!srv)
        return;
    sh_list_t *pos, *tmp;
    sh_list_foreach_safe (pos, tmp, &srv->ending) {
        sh_sio_socket_t *sock = sh_container_of(pos, sh_sio_socket_t, link);
        sh_defer_cancel(srv->loop, &sock->end_defer);
        sh_list_remove(&sock->link);
        socket_free(sock);
    }
    /* Pending sockets belong to their clients, as connected ones do; only
     * their loop handles must not outlive the server. */
    sh_map_iter_t it;
    sh_map_iter_init(&it, &srv->pending);
    while (sh_map_iter_next(&it)) {
        sh_sio_socket_t *sock = sh_map_iter_remove(&it);
        sh_timer_stop(srv->loop, &sock->pending_timer);
        sh_defer_cancel(srv->loop, &sock->answer_defer);
    }
    sh_map_release(&srv->pending);
    sh_list_foreach_safe (pos, tmp, &srv->nsps) {
        sh_sio_nsp_t *nsp = sh_container_of(pos, sh_sio_nsp_t, link);
        free(nsp->name);
        free(nsp);
    }
    sh_map_release(&srv->sockets);
    free(srv);
}

const sh_sio_stats_t *sh_sio_server_stats(const sh_sio_server_t *srv)
{
    return &srv->stats;
}

/* ---- sessions without client packets (SSE) ---- */

sh_sio_socket_t *sh_sio_server_attach(sh_sio_server_t *srv, sh_eio_session_t *s, const char *nsp,
                                      json_t *auth)
{
    sio_client_t *client = sh_eio_session_data(s);
    if (!client || client->srv != srv || strlen(nsp) > SH_SIO_MAX_NSP)
        return NULL;
    client->attached = true;
    sh_sio_packet_t pkt = {.type = SH_SIO_CONNECT, .id = -1, .data = auth};
    snprintf(pkt.nsp, sizeof(pkt.nsp), "%s", nsp);
    handle_connect(client, &pkt);
    return client_socket(client, nsp);
}

int sh_sio_socket_dispatch(sh_sio_socket_t *sock, const char *event, json_t *args, sh_sio_ack_cb cb,
                           void *cb_data, int64_t *ack_id_out)
{
    if (!sock->connected)
        return -EPIPE;
    int64_t id = -1;
    if (cb) {
        id = acks_of(sock)->next_local_id++;
        char key[24];
        snprintf(key, sizeof(key), "%lld", (long long)id);
        pending_ack_t *p = sh_new0(pending_ack_t);
        p->cb = cb;
        p->data = cb_data;
        sh_map_set(&acks_of(sock)->local_acks, key, p);
    }
    if (ack_id_out)
        *ack_id_out = id;
    sock->client->srv->stats.events_in++;
    json_t *empty = NULL;
    sh_sio_args_t a = {.args = args ? args : (empty = json_array()), .bins = NULL, .nbins = 0};
    if (sock->nsp->handler.on_event)
        sock->nsp->handler.on_event(sock, event, &a, id, sock->nsp->data);
    json_decref(empty);
    return 0;
}

int sh_sio_socket_cancel_dispatch(sh_sio_socket_t *sock, int64_t id)
{
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)id);
    pending_ack_t *p = take_ack(sock, true, key);
    if (!p)
        return -ENOENT;
    free(p);
    return 0;
}
