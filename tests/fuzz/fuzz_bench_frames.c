/* fuzz_bench_frames — libFuzzer target for what siohub-bench reads inside a
 * connection: the server's WebSocket frames (src/bench/ws.c), the events in
 * them or in an SSE block (src/bench/events.c) and the bench's own messages
 * (src/bench/payload.c).
 *
 * Input: the bytes from the server. The frame parser must give a frame
 * that fits in them, the same frame from exactly its own bytes, and wait
 * (-EAGAIN) for one byte fewer; the stream is walked frame by frame as the
 * client does. Every reader's spans must lie inside the input. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench/events.h"
#include "bench/payload.h"
#include "bench/ws.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile unsigned sink;

static void inside(const char *p, size_t n, const char *span, size_t len)
{
    CHECK(span >= p && len <= n && span + len <= p + n);
    for (size_t i = 0; i < len; i++)
        sink += (unsigned char)span[i];
}

/* The readers of the text a frame or an SSE block carries. */
static void read_text(const char *p, size_t n)
{
    const char *a, *b;
    size_t al, bl;
    if (sb_event_array_body(p, n, &a, &al))
        inside(p, n, a, al);
    if (sb_event_split(p, n, &a, &al, &b, &bl)) {
        inside(p, n, a, al);
        inside(p, n, b, bl);
        CHECK(a + al < b); /* the closing quote lies between */
    }
    char sid[32];
    if (sb_event_sid(p, n, sid, sizeof(sid))) {
        size_t len = strlen(sid);
        CHECK(len < sizeof(sid) && memmem(p, n, sid, len) && !memchr(sid, '"', len));
    }
    if (sb_sse_field(p, n, "event", &a, &al))
        inside(p, n, a, al);
    if (sb_sse_field(p, n, "data", &a, &al))
        inside(p, n, a, al);
    sb_payload_t m;
    if (sb_payload_parse(p, n, &m))
        CHECK(m.pub <= 65535 && m.seq < SB_SEQ_NONE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    read_text(p, size);

    size_t at = 0;
    for (;;) {
        sb_ws_frame_t f;
        const char *why = NULL;
        int rc = sb_ws_parse(p + at, size - at, &f, &why);
        if (rc == -EPROTO)
            CHECK(why != NULL);
        else
            CHECK(rc == 0 || rc == -EAGAIN);
        if (rc != 0)
            break;
        CHECK(f.size <= size - at && f.len <= SB_WS_MAX_FRAME && f.opcode <= 0xf);
        CHECK(f.payload == p + at + (f.size - f.len));
        inside(p, size, f.payload, f.len);
        sb_ws_frame_t again;
        CHECK(sb_ws_parse(p + at, f.size, &again, &why) == 0);
        CHECK(again.size == f.size && again.len == f.len && again.payload == f.payload &&
              again.opcode == f.opcode && again.fin == f.fin);
        CHECK(sb_ws_parse(p + at, f.size - 1, &again, &why) == -EAGAIN);
        read_text(f.payload, f.len);
        at += f.size;
    }
    return 0;
}
