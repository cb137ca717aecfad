/* adapter/pubsub_route.h — where a python-socketio pub/sub message goes,
 * read without decoding what it carries. Pure, no I/O.
 *
 * Every node of a fleet receives every emit published on the main channel,
 * and most are for rooms with no member on it. sh_pubsub_route_read reads
 * a message once and picks out only the fields that say where it goes —
 * method, host_id, namespace, room, sid, callback, id — stepping over the
 * rest (data, args, event, skip_sid, unknown fields) without building it.
 * JSON that validates as plain JSON is read by the validator, which lists
 * the top-level members in the same pass: a node that delivers the message
 * from its text (text_emit) has then read it once. Other JSON is skimmed
 * (strings stepped over by memchr, containers by counting brackets), so
 * that what is malformed or unusual reaches the decoder to say why. A
 * pickle is walked by its opcodes (sh_pickle_skim), str and bytes stepped
 * over by their length. Names are copied into the route itself; nothing is
 * allocated, save a pickle with many values (sh_pickle_skim) or a JSON name
 * with escapes (decoded by jansson, as sh_pubsub_msg_parse decodes it).
 *
 * The route agrees with sh_pubsub_msg_parse (see pubsub_msg.h for the
 * shapes): whenever both succeed on the same bytes, they give the same
 * method, host_id, namespace (disconnect's default "/" included), rooms,
 * callback room, sid and id; so a node may decide from the route whether
 * the message concerns it and decode only the ones it acts on.
 *
 * The read fails (-EINVAL) whenever the route cannot be told for sure:
 * malformed where it read, a pickle opcode the decoder refuses (GLOBAL,
 * REDUCE, ...: the skimmer refuses the same ones), a routing field of a
 * type or shape the parser refuses or ignores, a required field missing,
 * a method the parser does not act on, more than SH_PUBSUB_ROUTE_MAX_ROOMS
 * rooms, names longer than the route holds. The caller then decodes the
 * message in full, and the parser says what is wrong, as before. A read
 * that succeeds validated the message only when it says text_emit: what a
 * skim stepped over (the data above all) may still be refused when the
 * message is decoded.
 */
#ifndef SH_ADAPTER_PUBSUB_ROUTE_H
#define SH_ADAPTER_PUBSUB_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "adapter/pubsub_msg.h"
#include "core/json_span.h"

#define SH_PUBSUB_ROUTE_MAX_ROOMS 16
/* Bytes for all names, NUL-terminated (room names of Open WebUI are ~45). */
#define SH_PUBSUB_ROUTE_NAMES 2048

typedef struct sh_pubsub_route {
    sh_pubsub_method_t method;
    const char *host_id; /* NULL when absent */
    /* Never NULL but for a callback without one; "/" for a disconnect
     * without one. */
    const char *nsp;
    /* emit: none for the whole namespace; enter_room, leave_room,
     * close_room: the one room. */
    const char *rooms[SH_PUBSUB_ROUTE_MAX_ROOMS];
    size_t nrooms;
    /* emit that wants an ack: the sid that is to answer (python-socketio's
     * callback tuple (room, namespace, id)); NULL for a plain emit. */
    const char *cb_room;
    const char *sid; /* callback, disconnect, enter_room, leave_room */
    int64_t id;      /* callback: the ack id */
    /* A JSON emit without a callback, a skip_sid (other than null) or
     * "binary": true, whose whole text validated as plain JSON
     * (sh_json_validate and sh_json_info_plain: nothing a stricter decoder
     * could refuse or read otherwise): the raw text of its "event" and
     * "data" values (the event with its quotes), pointing into the
     * message. A node with a member may deliver it from that text instead
     * of decoding it (sh_adapter_receive). */
    bool text_emit;
    sh_json_span_t event_json, data_json;
    /* text_emit: a string of the message holds a \u escape (the data's
     * text then has its escapes written as characters on the way out). */
    bool text_unicode_escapes;
    /* Where the names above live. */
    char names[SH_PUBSUB_ROUTE_NAMES];
    size_t names_used;
} sh_pubsub_route_t;

/* Reads the route of message p[0..n) (JSON, or pickle when the first byte
 * is 0x80) into *r. Returns 0, or -EINVAL with *err (when not NULL)
 * pointing at a static reason: decode the message to know more. */
int sh_pubsub_route_read(const void *p, size_t n, sh_pubsub_route_t *r, const char **err);

#endif
