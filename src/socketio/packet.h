/* socketio/packet.h — Socket.IO v5 packet codec: pure, no I/O.
 *
 * Spec: socketio/socket.io-protocol README (protocol v5).
 *   packet := type-digit [attachments "-"] [namespace ","] [ack-id] [JSON]
 *   type: 0 CONNECT 1 DISCONNECT 2 EVENT 3 ACK 4 CONNECT_ERROR
 *         5 BINARY_EVENT 6 BINARY_ACK
 * The namespace is present only when it is not "/" (it starts with '/').
 *
 * Binary data: a BINARY_* packet's JSON holds placeholders
 * {"_placeholder":true,"num":N}; its N attachments follow as separate binary
 * Engine.IO messages. The codec keeps that shape in memory too: decoded data
 * keeps the placeholders and the attachments are a list of sh_msg_t (binary)
 * gathered by sh_sio_packet_add_attachment(); encoding takes the same pair.
 * Applications that echo or forward binary therefore never re-encode bytes.
 *
 * Validation follows the reference parser (socket.io-parser 4.x): CONNECT
 * data is an object or absent; DISCONNECT has no data; CONNECT_ERROR data
 * is an object or string; EVENT data is a non-empty array whose first
 * element is a string that is not a reserved event name or a number; ACK
 * data is an array; attachments only on BINARY_* types; placeholders must
 * refer to attachments that exist.
 */
#ifndef SH_SOCKETIO_PACKET_H
#define SH_SOCKETIO_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/json_span.h"
#include "core/msg.h"

typedef enum {
    SH_SIO_CONNECT = 0,
    SH_SIO_DISCONNECT = 1,
    SH_SIO_EVENT = 2,
    SH_SIO_ACK = 3,
    SH_SIO_CONNECT_ERROR = 4,
    SH_SIO_BINARY_EVENT = 5,
    SH_SIO_BINARY_ACK = 6,
} sh_sio_type_t;

/* Largest attachment count accepted from a peer: bounds the memory a
 * packet header can make us reserve. */
#define SH_SIO_MAX_ATTACHMENTS 64
/* Longest namespace name accepted. */
#define SH_SIO_MAX_NSP 256

typedef struct sh_sio_packet {
    sh_sio_type_t type;
    char nsp[SH_SIO_MAX_NSP + 1]; /* "/" when absent on the wire */
    int64_t id;                   /* ack id, -1 when absent */
    json_t *data;                 /* owned; NULL when absent */
    size_t attachments;           /* announced count (BINARY_* only) */
    sh_msg_t **bins;              /* received attachments, owned refs */
    size_t nbins;
} sh_sio_packet_t;

/* Decodes the text of one Socket.IO packet (the Engine.IO message payload,
 * without the "4"). On success returns 0 and *out owns its data; release it
 * with sh_sio_packet_release. On failure returns -EINVAL, leaves nothing to
 * release and, when err is not NULL, points *err at a static reason. */
int sh_sio_packet_decode(const char *p, size_t n, sh_sio_packet_t *out, const char **err);

/* An EVENT packet read without decoding its JSON, for a handler that
 * takes some events as text (sh_sio_nsp_handler_t's on_event_text). */
#define SH_SIO_TEXT_MAX_ARGS 16
typedef struct sh_sio_event_text {
    char nsp[SH_SIO_MAX_NSP + 1];
    int64_t id;             /* ack id, -1 when absent */
    char event[256];        /* the name, NUL-terminated */
    sh_json_span_t payload; /* the JSON array, name first; not validated yet */
} sh_sio_event_text_t;

/* Reads the header and the event name of a text EVENT packet, p[0..n) as
 * for sh_sio_packet_decode, with the same rules for the header. -EINVAL
 * when it is not one whose name is a string without escapes or control
 * characters right after '[' (shorter than 256 bytes): such a packet is
 * left to sh_sio_packet_decode, which also says what is wrong with a bad
 * one. Nothing is validated past the name yet. */
int sh_sio_event_peek(const char *p, size_t n, sh_sio_event_text_t *ev);
/* Validates the payload of a peeked event and gives the spans of its
 * arguments (after the name), at most max (≤ SH_SIO_TEXT_MAX_ARGS).
 * -EINVAL when it is not valid JSON, holds anything a tree decoder reads
 * differently (sh_json_info_plain), has more arguments, or the name is a
 * reserved one: then sh_sio_packet_decode decides. */
int sh_sio_event_read_args(const sh_sio_event_text_t *ev, sh_json_span_t *args, size_t max,
                           size_t *nargs);

/* Adds one received binary attachment (takes a new reference to m).
 * Returns 1 when the packet is now complete, 0 when more are expected, or
 * -EINVAL when the packet expects no more attachments. */
int sh_sio_packet_add_attachment(sh_sio_packet_t *pkt, sh_msg_t *m);

/* True when every announced attachment has arrived. */
static inline bool sh_sio_packet_complete(const sh_sio_packet_t *pkt)
{
    return pkt->nbins == pkt->attachments;
}

void sh_sio_packet_release(sh_sio_packet_t *pkt);

/* Encodes a packet into Engine.IO messages: msgs[0] is the text message
 * ("4" + packet) and msgs[1..] the binary attachments (new references to
 * bins[i]). type is EVENT or ACK for plain data; when nbins > 0 the type is
 * turned into its BINARY_* form and the attachment count written. data may
 * be NULL (no payload) and is borrowed. nsp NULL or "/" omits the
 * namespace; id < 0 omits the ack id. Returns the number of messages
 * written (1 + nbins), or -ENOSPC when max_msgs is too small. */
int sh_sio_packet_encode(sh_sio_type_t type, const char *nsp, int64_t id, const json_t *data,
                         sh_msg_t *const *bins, size_t nbins, sh_msg_t **msgs, size_t max_msgs);

/* The Engine.IO message of an EVENT packet made from JSON text rather than
 * a tree: "42", the namespace (nsp as in sh_sio_packet_encode), then
 * ["<event>",<args>], where args is parts[0..nparts) written one after the
 * other: the caller's JSON text of the arguments after the event name,
 * commas included, valid JSON and UTF-8 (not checked: it is forwarded as
 * is, but for its \u escapes of characters from U+0080, which are written
 * as the characters: see sh_json_write_text_utf8). The same bytes as
 * sh_sio_packet_encode for the same values when the text is written
 * compact as jansson would, with or without the characters outside ASCII
 * escaped (as Python's json.dumps writes them). unicode_escapes false says
 * the parts hold no \u escape (sh_json_info_t's flag of the text they come
 * from): they are then copied, not searched for one. NULL when the
 * namespace cannot be written or the event (UTF-8) would need JSON escapes.
 * New reference. */
sh_msg_t *sh_sio_event_msg_from_text(const char *nsp, const char *event,
                                     const sh_json_span_t *parts, size_t nparts,
                                     bool unicode_escapes);

/* The same message made where its arguments already lie: m holds args (one
 * part, in m's buffer, no \u escape to rewrite), and becomes the message,
 * its head written over the bytes before args and its ']' over the one
 * after (sh_msg_reframe), so the arguments are not copied. For a message
 * received whole (a Redis one) whose bytes are not read again. A new
 * reference to m; NULL, m unchanged, when args is empty, the room before
 * or after it is too small, m is shared, or sh_sio_event_msg_from_text
 * would refuse the names. */
sh_msg_t *sh_sio_event_msg_in_place(sh_msg_t *m, const char *nsp, const char *event,
                                    sh_json_span_t args);

/* Serialises JSON the way JSON.stringify does for our purposes (compact, no
 * escaped '/', UTF-8 as is) and appends it to out. Returns 0 or -EINVAL. */
int sh_json_append(sh_buf_t *out, const json_t *value);

#endif
