/* adapter/adapter.h — one fleet from many processes: emits, acks and room
 * changes cross nodes through Redis pub/sub in python-socketio's own
 * message format, so siohub nodes and Open WebUI's Python backend (running
 * python-socketio's AsyncRedisManager) act on each other's messages.
 *
 * Every operation acts on this node at once (through the hub and the
 * Socket.IO server) and, with Redis, is published on the channel for the
 * others, carrying this node's random host_id; a node skips the messages
 * that carry its own host_id, except "callback" (an ack travelling back to
 * the node that asked for it), as python-socketio does. Without Redis the
 * adapter is the local half alone. One module instead of an ops table with
 * "local" and "redis" entries: the local half is the same code either way,
 * and the Redis half only adds publishing and the receive path.
 *
 * Messages from Redis are untrusted input: they are parsed by
 * adapter/pubsub_msg.c (JSON, or the plain-values pickle subset), and a
 * message that does not parse is logged and dropped; nothing in it is
 * executed. Every node receives every emit of the fleet, so a message is
 * first read for its routing fields only (adapter/pubsub_route.c, which
 * steps over the data without building it), and decoded only when it
 * concerns this node: a room with a member here, a socket here, a call
 * of ours.
 */
#ifndef SH_ADAPTER_ADAPTER_H
#define SH_ADAPTER_ADAPTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/json_span.h"
#include "core/msg.h"
#include "hub/hub.h"
#include "loop/loop.h"
#include "socketio/server.h"

struct sh_redis;
typedef struct sh_adapter sh_adapter_t;

/* The answer to sh_adapter_call: status 0 with the client's ack args;
 * -ECONNRESET when the socket went away (or was never there) and
 * -ECANCELED when the adapter is freed. args NULL on failure. */
typedef void (*sh_adapter_call_cb)(int status, const sh_sio_args_t *args, void *data);
/* A broadcast to a whole namespace that another node published (used to
 * keep presence lists in step across nodes). Borrowed arguments. */
typedef void (*sh_adapter_observe_cb)(const char *nsp, const char *event, json_t *args, void *data);

typedef struct sh_adapter_options {
    sh_loop_t *loop;
    sh_sio_server_t *sio;
    sh_hub_t *hub;
    struct sh_redis *redis; /* NULL: this process only */
    const char *channel;    /* "socketio" */
    bool room_channels;     /* also CHANNEL#NSP#ROOM for single-room emits */
    sh_adapter_observe_cb on_remote_broadcast;
    void *data;
} sh_adapter_options_t;

/* Each message received ends in exactly one of received, skipped_own,
 * skipped_not_here, dropped and ignored. */
typedef struct sh_adapter_stats {
    uint64_t published;
    uint64_t received;    /* messages decoded and acted on */
    uint64_t skipped_own; /* our own messages coming back */
    /* For rooms with no member here, sockets or calls not here: skipped
     * after reading only the routing fields, the data never decoded. */
    uint64_t skipped_not_here;
    uint64_t dropped; /* malformed or refused (e.g. a pickle with GLOBAL) */
    uint64_t ignored; /* well-formed but nothing for us (unknown method) */
    uint64_t decoded; /* messages decoded in full (data and all) */
    /* Emits delivered from their own text (validated, not decoded; also
     * counted in received): plain JSON emits to rooms. */
    uint64_t from_text;
    /* Of those, the ones whose packet was written where the message
     * arrived (sh_sio_event_msg_in_place) rather than copied out. */
    uint64_t in_place;
    uint64_t publish_fails; /* Redis away or full */
    uint64_t remote_calls;  /* calls sent to other nodes */
} sh_adapter_stats_t;

sh_adapter_t *sh_adapter_new(const sh_adapter_options_t *opts);
/* Pending calls get -ECANCELED; answers this node's sockets still owe
 * other nodes' calls are dropped (their acks cancelled); subscriptions
 * end. Free it before the Socket.IO server, the hub and the Redis client. */
void sh_adapter_free(sh_adapter_t *a);
const char *sh_adapter_host_id(const sh_adapter_t *a);
const sh_adapter_stats_t *sh_adapter_stats(const sh_adapter_t *a);

/* Emits event(args, bins) to the target on every node (to = NULL or no
 * rooms: the whole namespace); sockets in any `except` room are skipped.
 * Returns the number of local recipients. args borrowed. */
size_t sh_adapter_emit(sh_adapter_t *a, sh_hub_nsp_t *nsp, const sh_hub_target_t *to,
                       const char *event, json_t *args, sh_msg_t *const *bins, size_t nbins);

/* The same for an event whose ONE argument the caller holds as JSON text,
 * parts[0..nparts) one after the other (valid JSON, neither an array nor
 * null: see sh_sio_event_msg_from_text and sh_pubsub_emit_encode_text),
 * to rooms, no exceptions: the message for the browsers and the one for
 * the fleet are written from that text, no tree built. unicode_escapes
 * false: the text holds no \u escape, and is copied as it is (see
 * sh_sio_event_msg_from_text); true when it may. Returns 0 with the
 * number of local recipients in *recipients, or -EINVAL, with nothing
 * sent anywhere, when a name (namespace, event, a room) cannot be written
 * without a JSON encoder: emit the tree then. */
int sh_adapter_emit_text(sh_adapter_t *a, sh_hub_nsp_t *nsp, const char *const *rooms,
                         size_t nrooms, const char *event, const sh_json_span_t *parts,
                         size_t nparts, bool unicode_escapes, size_t *recipients);
/* Emits to the socket `sid` wherever it is and asks for an ack; cb runs
 * exactly once (never inside this call) unless cancelled. Returns 0 and a
 * handle for sh_adapter_cancel_call, or -EPIPE (not here and no Redis to
 * reach elsewhere). A socket on no node never answers: the caller's
 * timeout ends the wait. */
int sh_adapter_call(sh_adapter_t *a, sh_hub_nsp_t *nsp, const char *sid, const char *event,
                    json_t *args, sh_msg_t *const *bins, size_t nbins, sh_adapter_call_cb cb,
                    void *data, uint64_t *handle);
/* Forgets a pending call; its callback will not run. */
void sh_adapter_cancel_call(sh_adapter_t *a, uint64_t handle);

/* Disconnects socket sid (Socket.IO DISCONNECT, then its session closes)
 * wherever it is. Returns 1 when it was here, 0 when published. */
int sh_adapter_disconnect(sh_adapter_t *a, sh_hub_nsp_t *nsp, const char *sid);
/* Makes socket sid join (or leave) room wherever it is. Returns 1 when it
 * was here, 0 when published. */
int sh_adapter_room(sh_adapter_t *a, sh_hub_nsp_t *nsp, const char *sid, const char *room,
                    bool join);
/* Every socket in room leaves it, on every node. */
void sh_adapter_close_room(sh_adapter_t *a, sh_hub_nsp_t *nsp, const char *room);

/* Acts on one pub/sub message (payload borrowed, any bytes) as if it had
 * arrived on the adapter's channel: the subscription calls it, and tests
 * and benchmarks feed it directly. It may emit to, join, leave or
 * disconnect local sockets, and answer calls; not to be called from inside
 * one of those sockets' callbacks. */
void sh_adapter_receive(sh_adapter_t *a, const void *payload, size_t len);

#endif
