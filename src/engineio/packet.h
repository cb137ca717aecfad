/* engineio/packet.h — Engine.IO v4 packet and payload codec: pure, no I/O.
 *
 * Spec: socketio/engine.io-protocol README (protocol v4).
 *   packet  := type-digit [data]            (text; type 0 open .. 6 noop)
 *   payload := packet { "\x1e" packet }     (HTTP long-polling bodies)
 * A binary message travels as a binary WebSocket frame (raw bytes, no type
 * digit) or, inside a polling payload, as "b" + base64 of the bytes.
 *
 * Decoders return borrowed views into the input (or into a caller-supplied
 * scratch buffer for base64) and never allocate otherwise. Encoders build
 * sh_msg_t values (see core/msg.h), the unit every transport queues.
 */
#ifndef SH_ENGINEIO_PACKET_H
#define SH_ENGINEIO_PACKET_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/msg.h"

typedef enum {
    SH_EIO_OPEN = 0,
    SH_EIO_CLOSE = 1,
    SH_EIO_PING = 2,
    SH_EIO_PONG = 3,
    SH_EIO_MESSAGE = 4,
    SH_EIO_UPGRADE = 5,
    SH_EIO_NOOP = 6,
} sh_eio_type_t;

/* The record separator between packets of a polling payload. */
#define SH_EIO_SEPARATOR '\x1e'

typedef struct sh_eio_packet {
    sh_eio_type_t type;
    bool binary;      /* a binary MESSAGE (type is SH_EIO_MESSAGE) */
    const char *data; /* borrowed; not NUL-terminated in general */
    size_t len;
} sh_eio_packet_t;

/* Decodes one text packet ("4hello", "2probe", "6"). Returns 0, or -EINVAL
 * when p is empty or the first byte is not a type digit 0-6. */
int sh_eio_packet_decode_text(const char *p, size_t n, sh_eio_packet_t *out);

/* Iterates the packets of a polling payload. *pos starts at 0 and is
 * advanced past each packet. Returns 1 with *out filled, 0 at the end, or
 * -EINVAL for an empty packet, a bad type digit or bad base64 ("b..." is
 * decoded into *scratch, which must outlive the use of out->data and is
 * overwritten by the next call). An empty payload is an error (-EINVAL) on
 * the first call: Node's server rejects it too. */
int sh_eio_payload_next(const char *p, size_t n, size_t *pos, sh_eio_packet_t *out,
                        sh_buf_t *scratch);

/* Strict base64 (RFC 4648, padded, no whitespace) of p[0..n) appended to
 * out. Returns 0 or -EINVAL. */
int sh_base64_decode(const char *p, size_t n, sh_buf_t *out);

/* New text message: type digit + data. */
sh_msg_t *sh_eio_msg_text(sh_eio_type_t type, const char *data, size_t len);
/* New binary message holding a copy of the bytes. */
sh_msg_t *sh_eio_msg_binary(const void *data, size_t len);

/* Appends the polling wire form of m to a payload under construction:
 * text messages as they are, binary ones as "b" + base64 (the form cached in
 * the message). Used by tests and small payloads; the polling transport
 * itself builds an iovec over the messages to avoid copying. */
void sh_eio_payload_append(sh_buf_t *out, sh_msg_t *m, bool first);

#endif
