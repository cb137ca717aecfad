/* bench/ws.c — WebSocket client codec (see ws.h). */
#include "bench/ws.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "bench/util.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

void sb_ws_request(sb_buf_t *out, const char *target, const char *host, uint64_t r1, uint64_t r2,
                   char accept[SB_WS_ACCEPT_LEN + 1])
{
    unsigned char raw[16];
    char key[25];
    memcpy(raw, &r1, 8);
    memcpy(raw + 8, &r2, 8);
    EVP_EncodeBlock((unsigned char *)key, raw, 16);
    char cat[64];
    int n = snprintf(cat, sizeof(cat), "%s%s", key, WS_GUID);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (!EVP_Digest(cat, (size_t)n, md, &mdlen, EVP_sha1(), NULL))
        sb_die("SHA-1 failed");
    EVP_EncodeBlock((unsigned char *)accept, md, (int)mdlen);
    sb_buf_printf(out,
                  "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                  target, host, key);
}

void sb_ws_frame(sb_buf_t *out, unsigned opcode, const void *p, size_t n, uint32_t mask32)
{
    uint8_t h[14];
    size_t hl = 2;
    h[0] = (uint8_t)(0x80 | opcode);
    if (n < 126) {
        h[1] = (uint8_t)(0x80 | n);
    } else if (n <= 0xffff) {
        h[1] = 0x80 | 126;
        h[2] = (uint8_t)(n >> 8);
        h[3] = (uint8_t)n;
        hl = 4;
    } else {
        h[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
        hl = 10;
    }
    uint8_t mask[4];
    memcpy(mask, &mask32, 4);
    memcpy(h + hl, mask, 4);
    hl += 4;
    sb_buf_append(out, h, hl);
    char *w = sb_buf_reserve(out, n);
    const char *src = p;
    for (size_t i = 0; i < n; i++)
        w[i] = (char)(src[i] ^ mask[i & 3]);
    out->len += n;
}

int sb_ws_parse(const char *p, size_t n, sb_ws_frame_t *f, const char **why)
{
    const uint8_t *q = (const uint8_t *)p;
    if (n < 2)
        return -EAGAIN;
    if (q[0] & 0x70) {
        *why = "reserved bits set";
        return -EPROTO;
    }
    if (q[1] & 0x80) {
        *why = "masked frame from the server";
        return -EPROTO;
    }
    uint64_t len = q[1] & 0x7f;
    size_t h = 2;
    if (len == 126) {
        if (n < 4)
            return -EAGAIN;
        len = ((uint64_t)q[2] << 8) | q[3];
        h = 4;
    } else if (len == 127) {
        if (n < 10)
            return -EAGAIN;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = (len << 8) | q[2 + i];
        h = 10;
    }
    if (len > SB_WS_MAX_FRAME) {
        *why = "frame over 16 MiB";
        return -EPROTO;
    }
    if (n - h < len)
        return -EAGAIN;
    f->opcode = q[0] & 0x0f;
    f->fin = q[0] & 0x80;
    f->payload = p + h;
    f->len = (size_t)len;
    f->size = h + (size_t)len;
    return 0;
}
