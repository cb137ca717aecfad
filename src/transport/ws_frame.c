#include "transport/ws_frame.h"

#include <errno.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/utf8.h"

/* A message buffer that grew past this is freed once its message is
 * delivered, so an idle connection does not keep its largest message's
 * memory for life. */
#define WS_MESSAGE_KEEP (64 * 1024)

static bool opcode_known(uint8_t op)
{
    switch (op) {
    case SH_WS_OP_CONT:
    case SH_WS_OP_TEXT:
    case SH_WS_OP_BINARY:
    case SH_WS_OP_CLOSE:
    case SH_WS_OP_PING:
    case SH_WS_OP_PONG:
        return true;
    default:
        return false; /* 3-7 and B-F are reserved (§5.2) */
    }
}

static bool opcode_is_control(uint8_t op)
{
    return (op & 0x8) != 0;
}

int sh_ws_frame_parse_header(const void *p, size_t n, bool require_mask, sh_ws_frame_header_t *h)
{
    const uint8_t *b = p;

    /* Each byte is judged as soon as it is there, so a bad frame is
     * rejected without waiting for the rest of its header. */
    if (n < 1)
        return -EAGAIN;
    if (b[0] & 0x70)
        return -EPROTO; /* RSV1-3: no extension was negotiated (§5.2) */
    uint8_t op = b[0] & 0x0F;
    bool fin = (b[0] & 0x80) != 0;
    if (!opcode_known(op))
        return -EPROTO;
    if (opcode_is_control(op) && !fin)
        return -EPROTO; /* control frames must not be fragmented (§5.5) */

    if (n < 2)
        return -EAGAIN;
    bool masked = (b[1] & 0x80) != 0;
    uint8_t len7 = b[1] & 0x7F;
    if (require_mask && !masked)
        return -EPROTO; /* a client must mask every frame (§5.1) */
    if (opcode_is_control(op) && len7 > 125)
        return -EPROTO;

    size_t pos = 2;
    uint64_t len = len7;
    if (len7 == 126) {
        if (n < pos + 2)
            return -EAGAIN;
        len = (uint64_t)b[2] << 8 | b[3];
        if (len < 126)
            return -EPROTO; /* "the minimal number of bytes" (§5.2) */
        pos += 2;
    } else if (len7 == 127) {
        if (n < pos + 8)
            return -EAGAIN;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | b[2 + i];
        if (len >> 63)
            return -EPROTO; /* "the most significant bit MUST be 0" */
        if (len <= 0xFFFF)
            return -EPROTO;
        pos += 8;
    }
    if (masked) {
        if (n < pos + 4)
            return -EAGAIN;
        memcpy(h->mask, b + pos, 4);
        pos += 4;
    } else {
        memset(h->mask, 0, 4);
    }
    h->fin = fin;
    h->opcode = op;
    h->masked = masked;
    h->payload_len = len;
    h->header_len = pos;
    return (int)pos;
}

void sh_ws_unmask(void *data, size_t len, const uint8_t mask[4], uint64_t offset)
{
    uint8_t *p = data;
    /* The key rotated to this offset, twice: XOR 8 bytes per step. Since
     * m[] has period 4, m[i & 7] is the key byte for payload byte i. */
    uint8_t m[8];
    for (int k = 0; k < 8; k++)
        m[k] = mask[(offset + (uint64_t)k) & 3];
    uint64_t m64;
    memcpy(&m64, m, sizeof(m64));
    size_t i = 0;
    for (; len - i >= 8; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, sizeof(w));
        w ^= m64;
        memcpy(p + i, &w, sizeof(w));
    }
    for (; i < len; i++)
        p[i] ^= m[i & 7];
}

size_t sh_ws_frame_header_encode(uint8_t out[SH_WS_MAX_SERVER_HEADER], uint8_t opcode, bool fin,
                                 uint64_t len)
{
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

size_t sh_ws_close_payload(uint8_t out[125], uint16_t code, const char *reason)
{
    if (code == 0)
        return 0;
    out[0] = (uint8_t)(code >> 8);
    out[1] = (uint8_t)code;
    size_t n = reason ? strnlen(reason, 123) : 0;
    /* The peer fails the connection on a reason that is not UTF-8 (§8.1):
     * never cut a character in two, and drop whatever is not valid. */
    while (n > 0 && !sh_utf8_valid(reason, n))
        n--;
    if (n)
        memcpy(out + 2, reason, n);
    return 2 + n;
}

static bool base64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

int sh_ws_accept_key(const char *key, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

    /* The base64 of 16 bytes is exactly 22 symbols and "==" (§4.1 and
     * §11.3.1); the same test Node's ws makes. */
    if (!key)
        return -EINVAL;
    for (int i = 0; i < 22; i++) {
        if (!base64_char(key[i]))
            return -EINVAL;
    }
    if (key[22] != '=' || key[23] != '=' || key[24] != '\0')
        return -EINVAL;

    char in[24 + sizeof(guid)];
    memcpy(in, key, 24);
    memcpy(in + 24, guid, sizeof(guid) - 1);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    if (!EVP_Digest(in, 24 + sizeof(guid) - 1, digest, &dlen, EVP_sha1(), NULL) || dlen != 20)
        return -EINVAL;
    /* 20 bytes encode to 28 characters plus the NUL EVP_EncodeBlock adds. */
    EVP_EncodeBlock((unsigned char *)out, digest, 20);
    return 0;
}

/* ---- the reader ---- */

void sh_ws_reader_init(sh_ws_reader_t *r, size_t max_message, bool require_mask)
{
    memset(r, 0, sizeof(*r));
    r->max_message = max_message;
    r->require_mask = require_mask;
}

void sh_ws_reader_release(sh_ws_reader_t *r)
{
    sh_buf_release(&r->message);
    r->in_message = false;
    r->message_done = false;
    r->pending_consume = 0;
}

static int reader_fail(sh_ws_reader_t *r, int err, uint16_t code, uint16_t *close_code)
{
    r->error = err;
    r->error_code = code;
    *close_code = code;
    return err;
}

/* Codes a peer may send (§7.4.1, §7.4.2 and the IANA registry): 1004, 1005,
 * 1006 and 1015 are reserved or for local use only, 1016-2999 are
 * unassigned or for extensions, 3000-4999 belong to libraries and apps. */
static bool close_code_valid_on_wire(uint16_t code)
{
    if (code >= 1000 && code <= 1003)
        return true;
    if (code >= 1007 && code <= 1014)
        return true;
    return code >= 3000 && code <= 4999;
}

/* payload: the frame's unmasked payload, where it lies in the input. */
static int reader_control(sh_ws_reader_t *r, const sh_ws_frame_header_t *h, const uint8_t *payload,
                          sh_ws_event_t *ev, uint16_t *close_code)
{
    size_t n = (size_t)h->payload_len; /* <= 125, checked by the header */

    ev->data = (const char *)payload;
    ev->len = n;
    ev->close_code = 0;
    switch (h->opcode) {
    case SH_WS_OP_PING:
        ev->type = SH_WS_EV_PING;
        return 1;
    case SH_WS_OP_PONG:
        ev->type = SH_WS_EV_PONG;
        return 1;
    default:
        break;
    }
    ev->type = SH_WS_EV_CLOSE;
    if (n == 0) {
        ev->close_code = SH_WS_CLOSE_NO_STATUS;
        return 1;
    }
    if (n == 1)
        return reader_fail(r, -EPROTO, SH_WS_CLOSE_PROTOCOL, close_code);
    uint16_t code = (uint16_t)(payload[0] << 8 | payload[1]);
    if (!close_code_valid_on_wire(code))
        return reader_fail(r, -EPROTO, SH_WS_CLOSE_PROTOCOL, close_code);
    if (!sh_utf8_valid(payload + 2, n - 2))
        return reader_fail(r, -EILSEQ, SH_WS_CLOSE_INVALID_DATA, close_code);
    ev->close_code = code;
    ev->data = (const char *)payload + 2;
    ev->len = n - 2;
    return 1;
}

int sh_ws_reader_next(sh_ws_reader_t *r, sh_buf_t *in, sh_ws_event_t *ev, uint16_t *close_code)
{
    if (r->error)
        return reader_fail(r, r->error, r->error_code, close_code);

    /* Settle the previous event: its bytes may go now. */
    if (r->pending_consume) {
        size_t n = r->pending_consume;
        sh_buf_consume(in, n < sh_buf_avail(in) ? n : sh_buf_avail(in));
        r->pending_consume = 0;
    }
    if (r->message_done) {
        r->message_done = false;
        if (r->message.cap > WS_MESSAGE_KEEP)
            sh_buf_release(&r->message);
        else
            sh_buf_reset(&r->message);
    }

    for (;;) {
        size_t avail = sh_buf_avail(in);
        sh_ws_frame_header_t h;
        int rc = sh_ws_frame_parse_header(sh_buf_peek(in), avail, r->require_mask, &h);
        if (rc == -EAGAIN)
            return -EAGAIN;
        if (rc < 0)
            return reader_fail(r, -EPROTO, SH_WS_CLOSE_PROTOCOL, close_code);

        bool control = opcode_is_control(h.opcode);
        if (!control) {
            /* §5.4: a message is one start frame then continuations; only
             * control frames may come between them. */
            if (h.opcode == SH_WS_OP_CONT && !r->in_message)
                return reader_fail(r, -EPROTO, SH_WS_CLOSE_PROTOCOL, close_code);
            if (h.opcode != SH_WS_OP_CONT && r->in_message)
                return reader_fail(r, -EPROTO, SH_WS_CLOSE_PROTOCOL, close_code);
            /* Judge the announced length now, before any of the payload
             * is waited for or stored. */
            size_t have = r->in_message ? sh_buf_avail(&r->message) : 0;
            if (r->max_message &&
                (h.payload_len > r->max_message || h.payload_len > r->max_message - have))
                return reader_fail(r, -EMSGSIZE, SH_WS_CLOSE_TOO_BIG, close_code);
            /* Unlimited reader: still refuse what memory cannot address. */
            if (h.payload_len > SIZE_MAX - h.header_len - have)
                return reader_fail(r, -EMSGSIZE, SH_WS_CLOSE_TOO_BIG, close_code);
        }
        if (avail - h.header_len < h.payload_len)
            return -EAGAIN; /* the whole frame is not here yet */

        size_t plen = (size_t)h.payload_len;
        size_t frame_len = h.header_len + plen;
        uint8_t *payload = (uint8_t *)in->data + in->off + h.header_len;

        if (control) {
            /* Handed out where it lies, like a whole message: a reader
             * keeps no buffer of its own for the pings of an idle peer. */
            if (h.masked)
                sh_ws_unmask(payload, plen, h.mask, 0);
            r->pending_consume = frame_len;
            return reader_control(r, &h, payload, ev, close_code);
        }

        if (h.masked)
            sh_ws_unmask(payload, plen, h.mask, 0);

        if (!r->in_message && h.fin) {
            /* A whole message in one frame: hand out the bytes where they
             * lie and consume them on the next call. */
            if (h.opcode == SH_WS_OP_TEXT && !sh_utf8_valid(payload, plen))
                return reader_fail(r, -EILSEQ, SH_WS_CLOSE_INVALID_DATA, close_code);
            ev->type = h.opcode == SH_WS_OP_TEXT ? SH_WS_EV_TEXT : SH_WS_EV_BINARY;
            ev->data = (const char *)payload;
            ev->len = plen;
            ev->close_code = 0;
            r->pending_consume = frame_len;
            return 1;
        }

        if (!r->in_message) {
            r->in_message = true;
            r->message_opcode = h.opcode;
            sh_buf_reset(&r->message);
        }
        sh_buf_append(&r->message, payload, plen);
        sh_buf_consume(in, frame_len);
        if (!h.fin)
            continue;

        /* The last fragment: UTF-8 is judged on the whole message, since a
         * character may be split across fragments. */
        r->in_message = false;
        if (r->message_opcode == SH_WS_OP_TEXT &&
            !sh_utf8_valid(sh_buf_peek(&r->message), sh_buf_avail(&r->message)))
            return reader_fail(r, -EILSEQ, SH_WS_CLOSE_INVALID_DATA, close_code);
        ev->type = r->message_opcode == SH_WS_OP_TEXT ? SH_WS_EV_TEXT : SH_WS_EV_BINARY;
        ev->data = sh_buf_peek(&r->message);
        ev->len = sh_buf_avail(&r->message);
        ev->close_code = 0;
        r->message_done = true;
        return 1;
    }
}
