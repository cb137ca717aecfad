/* msg.h — an immutable, reference-counted encoded packet.
 *
 * Encode once: a broadcast to N sockets builds one sh_msg_t and each socket's
 * output queue holds a reference (sh_msg_ref). Transports add only their own
 * framing around msg->data (a WebSocket header, a polling separator, an SSE
 * field); they never copy or alter the bytes.
 *
 * A message is either text (an Engine.IO text packet: type digit + payload,
 * valid UTF-8) or binary (raw bytes of an Engine.IO binary message). Polling
 * carries binary as "b" + base64; that form is computed at most once per
 * message (sh_msg_base64) and shared by every polling recipient. Other
 * transports get the same for their own forms: sh_msg_form(m, render) builds
 * a derived message at most once per message and renderer (an SSE event
 * made from an Engine.IO packet, say) and every recipient shares it. The
 * renderer is the caller's: core knows nothing of the protocols above it.
 *
 * A transport whose header for a message is the same for every recipient
 * (a server's WebSocket frame header: unmasked, so it depends only on the
 * opcode and the length) writes it once into the room reserved right in
 * front of data (sh_msg_set_head); each recipient then sends head + data
 * as one contiguous span, with no per-recipient header and one iovec.
 *
 * A message may also be made around bytes that arrived whole, a Redis
 * message say, and then be rewritten into the packet they carry before it
 * is shared (sh_msg_reframe): the packet's bytes stay where they came,
 * where a copy would cost as much as everything else done with them.
 *
 * Refcounts are plain integers: all messages live on the loop thread.
 */
#ifndef SH_CORE_MSG_H
#define SH_CORE_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for one transport header in front of a message's data. */
#define SH_MSG_HEAD_ROOM 14

struct sh_msg_form;

typedef struct sh_msg {
    unsigned refs;
    bool binary;
    uint8_t head_len;   /* bytes of head in use (its last ones); 0: none */
    uint8_t head_tag;   /* what they encode, the writer's tag (an opcode) */
    uint8_t pool_class; /* msg.c's: the free list it returns to, 0 none */
    size_t len;
    size_t cap;                /* bytes of buffer */
    struct sh_msg *base64;     /* lazily built "b<base64>" text form; owned */
    struct sh_msg_form *forms; /* derived forms (sh_msg_form); owned */
    /* len bytes in buffer, then a NUL not counted in len, with
     * SH_MSG_HEAD_ROOM bytes or more of buffer before them for a transport
     * header: at buffer + SH_MSG_HEAD_ROOM but after sh_msg_reframe. */
    char *data;
    char buffer[];
} sh_msg_t;

/* Builds a derived form of m: a new message (refcount 1, handed to the
 * cache), or NULL when m has no such form (cached as well). Must not keep m
 * and must give the same answer for the same bytes. */
typedef sh_msg_t *(*sh_msg_render_cb)(const sh_msg_t *m);

/* New message holding a copy of p[0..len), refcount 1. */
sh_msg_t *sh_msg_new(const void *p, size_t len, bool binary);
/* New message of len bytes to be filled by the caller before it is shared. */
sh_msg_t *sh_msg_alloc(size_t len, bool binary);
/* New text message: prefix byte (Engine.IO type) followed by p[0..len). */
sh_msg_t *sh_msg_new_prefixed(char prefix, const void *p, size_t len);

/* Makes data[0..len) m's data: a span of m's own buffer with
 * SH_MSG_HEAD_ROOM bytes of it before the span and one after (the NUL
 * written here), so that a packet built where its bytes arrived is sent
 * from there. Only before m is shared (one reference, no header or form
 * yet); -EINVAL, m unchanged, when that or the span's room does not hold. */
int sh_msg_reframe(sh_msg_t *m, char *data, size_t len, bool binary);

static inline sh_msg_t *sh_msg_ref(sh_msg_t *m)
{
    m->refs++;
    return m;
}
/* Drops one reference; frees on the last. NULL is a no-op. */
void sh_msg_unref(sh_msg_t *m);
/* Frees the small messages kept for reuse (msg.c keeps a bounded few
 * after their last unref): at exit, so that nothing is left allocated. */
void sh_msg_pool_drain(void);

/* Writes the header h[0..n) (n <= SH_MSG_HEAD_ROOM) right in front of m's
 * data, tagged with tag, so that sh_msg_framed gives head + data. Only the
 * first writer writes: returns 0, or -EEXIST when m already carries a
 * header with another tag (the caller then needs a message of its own). */
int sh_msg_set_head(sh_msg_t *m, uint8_t tag, const void *h, size_t n);

/* The header written by sh_msg_set_head followed by the data, contiguous. */
static inline const char *sh_msg_framed(const sh_msg_t *m)
{
    return m->data - m->head_len;
}

/* The "b" + base64 text form of a binary message (borrowed: lives as long as
 * m). For a text message returns m itself. */
sh_msg_t *sh_msg_base64(sh_msg_t *m);

/* m's form made by render: rendered on the first call for this (m, render)
 * pair, then the cached result (NULL included). Borrowed: lives as long as
 * m; take a reference (sh_msg_ref) to keep it longer. */
sh_msg_t *sh_msg_form(sh_msg_t *m, sh_msg_render_cb render);

#endif
