/* hub/hub.h — rooms and broadcast for Socket.IO namespaces.
 *
 * The hub owns membership: every socket of a namespace registered here is
 * in its own sid room from connect to disconnect, and in any rooms joined
 * since. Rooms exist while they have members (as in Node's adapter).
 *
 * Broadcast encodes once: sh_hub_emit builds the packet's Engine.IO
 * messages one time, when it meets the first recipient (an emit that
 * reaches nobody builds nothing), and each recipient's queue takes a
 * reference. A socket in several target rooms gets the packet once;
 * sockets in any "except" room get nothing. Cost: O(recipients) queue
 * pushes, no payload copies.
 *
 * The hub wraps the application's namespace handler: membership is set up
 * before the application's on_connected runs and torn down after its
 * on_disconnect returns, so the application sees consistent rooms.
 */
#ifndef SH_HUB_HUB_H
#define SH_HUB_HUB_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/msg.h"
#include "socketio/server.h"

typedef struct sh_hub sh_hub_t;
typedef struct sh_hub_nsp sh_hub_nsp_t;

typedef struct sh_hub_target {
    const char *const *rooms; /* none: every socket of the namespace */
    size_t nrooms;
    const char *const *except; /* rooms whose members are skipped */
    size_t nexcept;
} sh_hub_target_t;

typedef struct sh_hub_stats {
    uint64_t broadcasts;
    uint64_t deliveries; /* recipients summed over broadcasts */
    uint64_t packets;    /* emits encoded: those that had a recipient */
    uint64_t rooms;      /* rooms now, over all namespaces */
} sh_hub_stats_t;

sh_hub_t *sh_hub_new(sh_sio_server_t *sio);
void sh_hub_free(sh_hub_t *hub);
const sh_hub_stats_t *sh_hub_stats(const sh_hub_t *hub);

/* Registers namespace `name` with the Socket.IO server, wrapping app. */
sh_hub_nsp_t *sh_hub_add_nsp(sh_hub_t *hub, const char *name, const sh_sio_nsp_handler_t *app,
                             void *data);
sh_hub_nsp_t *sh_hub_nsp(const sh_hub_t *hub, const char *name);
const char *sh_hub_nsp_name(const sh_hub_nsp_t *nsp);
/* The hub namespace a socket belongs to. */
sh_hub_nsp_t *sh_hub_socket_nsp(const sh_sio_socket_t *sock);

/* Membership. Joining twice or leaving a room one is not in is a no-op. */
void sh_hub_join(sh_sio_socket_t *sock, const char *room);
void sh_hub_leave(sh_sio_socket_t *sock, const char *room);
bool sh_hub_in_room(const sh_sio_socket_t *sock, const char *room);
size_t sh_hub_room_size(const sh_hub_nsp_t *nsp, const char *room);
/* Calls fn for each member of room (no membership changes inside fn). */
void sh_hub_room_foreach(sh_hub_nsp_t *nsp, const char *room,
                         void (*fn)(sh_sio_socket_t *sock, void *data), void *data);
/* Calls fn for every socket of the namespace (no membership changes
 * inside fn). */
void sh_hub_foreach(sh_hub_nsp_t *nsp, void (*fn)(sh_sio_socket_t *sock, void *data), void *data);
/* Sockets of the namespace. */
size_t sh_hub_count(const sh_hub_nsp_t *nsp);
/* Calls fn for each room the socket is in (its sid room included). */
void sh_hub_socket_rooms(const sh_sio_socket_t *sock, void (*fn)(const char *room, void *data),
                         void *data);

/* Emits event(args, bins) to the target; returns the number of sockets it
 * was queued for. args is borrowed. */
size_t sh_hub_emit(sh_hub_nsp_t *nsp, const sh_hub_target_t *to, const char *event, json_t *args,
                   sh_msg_t *const *bins, size_t nbins);
/* Sends pre-encoded Engine.IO messages to the target (references taken). */
size_t sh_hub_send(sh_hub_nsp_t *nsp, const sh_hub_target_t *to, sh_msg_t *const *msgs, size_t n);
/* Sends one Engine.IO message that build(arg) makes (a new reference) at
 * the first recipient, so that a target with no member here costs no
 * message. Returns the number of sockets it was queued for; when build
 * fails (NULL) nothing was sent, and *failed is set. */
size_t sh_hub_send_built(sh_hub_nsp_t *nsp, const sh_hub_target_t *to,
                         sh_msg_t *(*build)(void *arg), void *arg, bool *failed);

#endif
