/* ws_frame.h — RFC 6455 WebSocket framing: a pure codec, no I/O.
 *
 * The server side of the protocol: frames from the client must be masked
 * (RFC 6455 §5.1), frames we send are not. The reader turns a byte stream
 * into whole messages (reassembling fragments, validating UTF-8 of text
 * messages, enforcing a size limit) and control frames (ping, pong, close),
 * which may arrive between the fragments of a message (§5.4).
 *
 * Errors carry the close code the server must send (§7.4.1):
 * 1002 protocol error, 1007 invalid UTF-8, 1009 message too big.
 */
#ifndef SH_TRANSPORT_WS_FRAME_H
#define SH_TRANSPORT_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

typedef enum {
    SH_WS_OP_CONT = 0x0,
    SH_WS_OP_TEXT = 0x1,
    SH_WS_OP_BINARY = 0x2,
    SH_WS_OP_CLOSE = 0x8,
    SH_WS_OP_PING = 0x9,
    SH_WS_OP_PONG = 0xA,
} sh_ws_opcode_t;

enum {
    SH_WS_CLOSE_NORMAL = 1000,
    SH_WS_CLOSE_GOING_AWAY = 1001,
    SH_WS_CLOSE_PROTOCOL = 1002,
    SH_WS_CLOSE_UNSUPPORTED = 1003,
    SH_WS_CLOSE_NO_STATUS = 1005, /* never sent on the wire */
    SH_WS_CLOSE_INVALID_DATA = 1007,
    SH_WS_CLOSE_POLICY = 1008,
    SH_WS_CLOSE_TOO_BIG = 1009,
    SH_WS_CLOSE_INTERNAL = 1011,
};

/* Largest header a server frame needs: 2 + 8 bytes (no mask). */
#define SH_WS_MAX_SERVER_HEADER 10

typedef struct sh_ws_frame_header {
    bool fin;
    uint8_t opcode;
    bool masked;
    uint8_t mask[4];
    uint64_t payload_len;
    size_t header_len; /* bytes of header, including the mask key */
} sh_ws_frame_header_t;

/* Parses one frame header from p[0..n). Returns the header length (> 0),
 * -EAGAIN when more bytes are needed, or -EPROTO for a malformed header
 * (reserved bits set, unknown opcode, fragmented or oversized (> 125)
 * control frame, non-minimal or 64-bit length with the top bit set, or an
 * unmasked frame when require_mask). */
int sh_ws_frame_parse_header(const void *p, size_t n, bool require_mask, sh_ws_frame_header_t *h);

/* XORs len bytes in place with the mask, starting at byte `offset` of the
 * frame payload (so a payload can be unmasked in pieces). */
void sh_ws_unmask(void *data, size_t len, const uint8_t mask[4], uint64_t offset);

/* Writes an unmasked server frame header for a payload of len bytes
 * (len < 2^63) into out; returns its length (2, 4 or 10). */
size_t sh_ws_frame_header_encode(uint8_t out[SH_WS_MAX_SERVER_HEADER], uint8_t opcode, bool fin,
                                 uint64_t len);

/* Builds a close frame payload (2-byte code + UTF-8 reason truncated to fit
 * 125 bytes) into out[125]; returns its length. code 0 gives an empty body. */
size_t sh_ws_close_payload(uint8_t out[125], uint16_t code, const char *reason);

/* Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (RFC 6455 §4.2.2):
 * base64(SHA-1(key + GUID)), 28 chars + NUL, via libcrypto. Returns 0, or
 * -EINVAL when key is not the base64 of 16 bytes. */
int sh_ws_accept_key(const char *key, char out[29]);

/* ---- the reader: bytes in, events out ---- */

typedef enum {
    SH_WS_EV_TEXT,   /* a whole text message, valid UTF-8 */
    SH_WS_EV_BINARY, /* a whole binary message */
    SH_WS_EV_PING,
    SH_WS_EV_PONG,
    SH_WS_EV_CLOSE, /* peer's close: close_code (1005 if none) + reason */
} sh_ws_event_type_t;

typedef struct sh_ws_event {
    sh_ws_event_type_t type;
    /* Borrowed: valid until the next sh_ws_reader_next or _release call. */
    const char *data;
    size_t len;
    uint16_t close_code; /* SH_WS_EV_CLOSE only */
} sh_ws_event_t;

typedef struct sh_ws_reader {
    size_t max_message; /* largest message accepted (0: unlimited) */
    bool require_mask;  /* true on the server side */
    /* private */
    sh_buf_t message; /* fragments of the message being assembled */
    uint8_t message_opcode;
    bool in_message;
    bool message_done; /* message holds the last event's data: reset next call */
    /* Bytes at the front of `in` that still back the last event (a whole
     * message or a control frame, returned without copying); consumed at
     * the start of the next call. */
    size_t pending_consume;
    int error; /* sticky: once failed, every call returns it again */
    uint16_t error_code;
} sh_ws_reader_t;

/* Sets up a reader; max_message 0 means no limit. */
void sh_ws_reader_init(sh_ws_reader_t *r, size_t max_message, bool require_mask);
void sh_ws_reader_release(sh_ws_reader_t *r);

/* Takes the next event from the bytes in `in`, consuming what it used (the
 * payload of a data frame is unmasked in place in `in`). Returns 1 with *ev
 * filled, -EAGAIN when `in` holds no complete event yet, or a negative
 * error with *close_code set to what the server must send:
 *   -EPROTO  1002 (bad header, continuation without a message, new message
 *                  inside a fragmented one, bad close payload or code)
 *   -EILSEQ  1007 (text message or close reason that is not UTF-8)
 *   -EMSGSIZE 1009 (message, or a single frame, over max_message)
 * After an error the reader is done: further calls return the same error;
 * release it.
 *
 * A frame is taken only once it is whole in `in` (its header is checked,
 * including the size limit, as soon as the header is there, so nothing is
 * ever reserved for an announced length). An unfragmented message or a
 * control frame is returned without a copy, pointing into `in` (unmasked
 * in place); the reader consumes its bytes
 * at the start of the next call. So between a call that returned 1 and the
 * next call, the caller must not change `in` (in particular not append to
 * it: that may move its bytes); after -EAGAIN it appends what it reads and
 * calls again, always with the same `in`. Event data is not NUL-terminated.
 * Control frames are limited to 125 bytes by the protocol and are not
 * counted against max_message. Frames after a close event are still parsed:
 * stopping there is the caller's choice. */
int sh_ws_reader_next(sh_ws_reader_t *r, sh_buf_t *in, sh_ws_event_t *ev, uint16_t *close_code);

#endif
