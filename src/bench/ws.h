/* bench/ws.h — the client side of RFC 6455: the upgrade request and its
 * Sec-WebSocket-Accept check, masked frames out, unmasked frames in.
 *
 * Pure: no I/O. The parser takes untrusted bytes, checks lengths before it
 * reads, never aborts.
 */
#ifndef SB_WS_H
#define SB_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench/buf.h"

#define SB_WS_ACCEPT_LEN 28
#define SB_WS_MAX_FRAME  (16u * 1024 * 1024)

enum {
    SB_WS_TEXT = 0x1,
    SB_WS_BINARY = 0x2,
    SB_WS_CLOSE = 0x8,
    SB_WS_PING = 0x9,
    SB_WS_PONG = 0xA
};

/* Appends the upgrade request for target (path and query) and writes the
 * Sec-WebSocket-Accept the server must answer into accept (NUL-terminated).
 * r1, r2: random bits for the key. */
void sb_ws_request(sb_buf_t *out, const char *target, const char *host, uint64_t r1, uint64_t r2,
                   char accept[SB_WS_ACCEPT_LEN + 1]);

/* Appends one final frame with payload p[0..n) masked with mask. */
void sb_ws_frame(sb_buf_t *out, unsigned opcode, const void *p, size_t n, uint32_t mask);

typedef struct sb_ws_frame {
    unsigned opcode;
    bool fin;
    const char *payload; /* borrowed from the parsed bytes */
    size_t len;
    size_t size; /* header + payload: the bytes to consume */
} sb_ws_frame_t;

/* Parses the frame at p[0..n): 0, -EAGAIN, or -EPROTO with *why set (a
 * masked or oversize frame, a reserved bit). */
int sb_ws_parse(const char *p, size_t n, sb_ws_frame_t *f, const char **why);

#endif
