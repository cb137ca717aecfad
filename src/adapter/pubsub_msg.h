/* adapter/pubsub_msg.h — python-socketio's pub/sub manager messages (the
 * ones its Redis manager publishes on channel "socketio"): parse them from
 * JSON or pickle into one model, and write the JSON siohub publishes. Pure,
 * no I/O.
 *
 * Source: miguelgrinberg/python-socketio, pubsub_manager.py and
 * async_pubsub_manager.py. Message shapes by version:
 *
 *   emit        {method, event, data, namespace, room, skip_sid, callback,
 *                host_id}; >= 5.14.2 adds "binary" (see below)
 *   callback    {method, host_id, sid, namespace, id, args}
 *   disconnect  {method, sid, namespace}; host_id from 5.10
 *   close_room  {method, room, namespace}; host_id from 5.10
 *   enter_room, leave_room  {method, sid, room, namespace, host_id}; 5.10 on
 *
 *   <= 5.13   pickle.dumps(message) (protocol 4 by default); reads pickle,
 *             then JSON. data is what the application passed: a tuple is
 *             the argument list, None no argument, anything else one
 *             argument. callback is a tuple (room, namespace, ack id) and
 *             args the ack's argument tuple.
 *   5.14.0-1  JSON only (json.dumps): data as above, a tuple arriving as a
 *             list that the receiver takes as ONE argument; bytes cannot be
 *             sent at all.
 *   5.14.2    "binary": true and data = [D, base64(attachment 0), ...] where
 *             D is data with each bytes value replaced by a Socket.IO
 *             placeholder {"_placeholder":true,"num":N}; "binary": false
 *             otherwise.
 *   >= 5.15.1 data is always wrapped into a list (tuple -> list, anything
 *             else -> [value]) before the binary step; the receiver turns a
 *             list of one back into that value and any other list into a
 *             tuple (the argument list).
 *
 * Reading data into an argument list (the contract's rule, with python-
 * socketio's own reading of None): a pickled tuple is the argument list,
 * None no argument, any other pickled value one argument; JSON null is no
 * argument, a JSON array the argument list, anything else one argument.
 * Binary values end up as placeholders in args with the attachments in
 * bins (pickle bytes are decoded that way directly; JSON "binary" messages
 * have their base64 attachments decoded). Every placeholder in args must
 * name an attachment that exists when there are attachments.
 *
 * What a receiver needs, as python-socketio reads it:
 *  - emit: event and namespace are required (python-socketio's manager
 *    drops an emit whose namespace is not a connected one; a missing
 *    namespace is never one). room is null (everyone in the namespace), a
 *    string or a list of strings; skip_sid null, a string or a list of
 *    strings; callback null or [room, namespace, id] (any other length is
 *    ignored, as python-socketio does).
 *  - callback: host_id, sid, id and args are required (python-socketio
 *    ignores the message otherwise); args is a list or tuple: the argument
 *    list, always.
 *  - disconnect: sid required; no namespace means "/" (Server.disconnect).
 *  - enter_room, leave_room: sid, room (a string) and namespace required.
 *  - close_room: room (a string) and namespace required.
 *  - Strings used as names (event, namespace, room, sid, host_id) must not
 *    contain NUL.
 * Unknown fields are ignored. Skipping messages that carry our own host_id
 * (all but callback) is the adapter's job, not this codec's.
 */
#ifndef SH_ADAPTER_PUBSUB_MSG_H
#define SH_ADAPTER_PUBSUB_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/json_span.h"
#include "core/msg.h"

typedef enum {
    SH_PUBSUB_EMIT,
    SH_PUBSUB_CALLBACK,
    SH_PUBSUB_DISCONNECT,
    SH_PUBSUB_ENTER_ROOM,
    SH_PUBSUB_LEAVE_ROOM,
    SH_PUBSUB_CLOSE_ROOM,
} sh_pubsub_method_t;

typedef enum { SH_PUBSUB_JSON, SH_PUBSUB_PICKLE } sh_pubsub_format_t;

/* Messages bigger than this are refused before parsing. */
#define SH_PUBSUB_MAX_MESSAGE (16u << 20)

/* One message. Parsed messages own every pointer (sh_pubsub_msg_release);
 * a message built for sh_pubsub_msg_encode may point at anything the caller
 * owns, and is not released. Fields a method does not use are NULL / 0. */
typedef struct sh_pubsub_msg {
    sh_pubsub_method_t method;
    sh_pubsub_format_t format; /* what it was parsed from (for logs) */
    char *host_id;             /* NULL when absent */
    char *nsp;                 /* NULL only for callback without one */
    char *event;               /* emit */
    /* emit: NULL means the whole namespace; else an array of strings (a
     * single room is an array of one). enter_room, leave_room, close_room:
     * an array of exactly one string. */
    json_t *rooms;
    json_t *skip_sids; /* emit: array of strings, NULL when none */
    /* emit: the ack the sender wants back (has_callback), the room (a sid),
     * namespace and ack id it handed python-socketio's callback tuple. */
    bool has_callback;
    char *cb_room;
    char *cb_nsp;
    int64_t cb_id;
    char *sid;  /* callback, disconnect, enter_room, leave_room */
    int64_t id; /* callback: the ack id */
    /* emit, callback: the argument list, a JSON array whose binary values
     * are placeholders for bins[N] (binary sh_msg_t). */
    json_t *args;
    sh_msg_t **bins;
    size_t nbins;
} sh_pubsub_msg_t;

/* Parses one message: pickle when the first byte is 0x80 (PROTO), JSON
 * otherwise. Returns 0 with *out filled (release it), or on failure
 * leaves nothing to release, points *err (when not NULL) at a static
 * reason and returns:
 *   -EINVAL   malformed or refused input (bad JSON, a forbidden pickle
 *             opcode, a field of the wrong type): worth a warning;
 *   -ENOTSUP  a well-formed message siohub does not act on (no "method", an
 *             unknown method, an emit without a namespace, a callback
 *             without host_id/sid/id/args): python-socketio ignores these. */
int sh_pubsub_msg_parse(const void *p, size_t n, sh_pubsub_msg_t *out, const char **err);

/* Frees what a parsed message owns; the message is zeroed. */
void sh_pubsub_msg_release(sh_pubsub_msg_t *m);

/* Appends the JSON form of m to out, keys in python-socketio's order.
 * Fields used per method as parse() fills them; m is only read. nsp is
 * required except for callback (where NULL writes "/"). For emit and
 * callback, args (NULL means none) and bins become:
 *   - emit data: null for no argument; the argument alone when there is
 *     exactly one and it is neither an array nor null (every python-socketio
 *     version reads that form the same way); otherwise the array of
 *     arguments (>= 5.15.1 and siohub read it as the argument list; older
 *     versions see one list argument).
 *   - callback args: the array of arguments.
 *   - with attachments: "binary": true and data (args for callback) =
 *     [that value, base64 of each attachment], the >= 5.14.2 form. No
 *     python-socketio version reads a binary callback in JSON (it cannot
 *     publish one either), and versions before 5.14.2 see the wrapper as
 *     one argument: binary arguments reach siohub nodes and python-socketio
 *     >= 5.14.2 emits only.
 *   Emits always carry "binary" (false without attachments), as >= 5.14.2
 *   writes them.
 * rooms for emit: NULL writes null, one room a string, more a list;
 * skip_sids: NULL or empty writes null, one a string, more a list.
 * Returns 0, or -EINVAL (out unchanged) when a required field is missing or
 * args is not an array. Calls sh_msg_base64 on the attachments (which
 * caches their base64 form). */
int sh_pubsub_msg_encode(const sh_pubsub_msg_t *m, sh_buf_t *out);

/* The JSON of an emit built from text instead of a tree, for a sender
 * that holds its one argument as JSON text already (the API forwarding a
 * backend's bytes): the bytes sh_pubsub_msg_encode writes for an emit of
 * event in nsp to rooms (nrooms 0: the whole namespace), no skip_sid, no
 * callback, no attachments, whose one argument is parts[0..nparts)
 * written one after the other. That text must be valid JSON and neither
 * an array nor null (a list would be read as the argument list, null as
 * none); it is written as given, unchecked. host_id may be NULL. Appends
 * to out and returns 0, or -EINVAL with out unchanged when a name (event,
 * nsp, a room, host_id) would need JSON escapes or is not UTF-8: encode
 * the tree then. */
int sh_pubsub_emit_encode_text(const char *host_id, const char *nsp, const char *event,
                               const char *const *rooms, size_t nrooms, const sh_json_span_t *parts,
                               size_t nparts, sh_buf_t *out);

/* "emit", "callback", ... */
const char *sh_pubsub_method_name(sh_pubsub_method_t method);

#endif
