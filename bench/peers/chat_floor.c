/* chat_floor — the floor of siohub-bench's chat scenario with its tokens
 * coming through Redis (--redis): the least a Socket.IO server can do to
 * serve it, as bench/peers/floor is the fan-out scenario's, so that
 * bench/run can show how far each server is from the kernel's cost of the
 * same deliveries.
 *
 * It makes the syscalls a server that coalesces well must make, and little
 * else. Per wake: the Redis subscription is read in 64 KiB reads until
 * EAGAIN (at most four, as siohubd reads it), each complete pub/sub message
 * becomes one WebSocket frame, built once and queued by reference for
 * each tab in its room; at the end of the epoll batch each tab with output
 * gets exactly one send() (one frame) or sendmsg() (several) of all its
 * frames together, as siohubd writes them. No JSON is parsed or
 * validated: a message is taken apart by the fixed key order siohub-bench
 * (like python-socketio) publishes,
 *   {"method":"emit","event":E,"data":D,"namespace":"/","room":R,...}
 * E after its fixed prefix, R after the last ',"namespace":' (searched from
 * the end), D the bytes between, copied and never read.
 *
 * Just enough Engine.IO v4 / Socket.IO v5 over WebSocket for the bench's
 * tabs, as bench/peers/node_socketio.js serves them:
 *   - a GET with "Upgrade: websocket" at any path: 101, then the Engine.IO
 *     open packet;
 *   - CONNECT 40{"token":T}: answered 40{"sid":...}; joins "user:<id>".
 *     T's claims ({"id","name","role","channels"}) are read from its
 *     base64url payload by their keys, in compact JSON as siohub-bench
 *     mints them, the signature unchecked (a floor); a CONNECT without a
 *     readable token is answered and joins nothing;
 *   - "join-channels" {auth: {token}}: joins "channel:<cid>" for each cid
 *     of the token's channels; "user-join" the same plus "user:<id>", and
 *     acks {id, name} when asked;
 *   - "channel-events" / "events:channel" {channel_id, ...} from a tab in
 *     "channel:<channel_id>": to every tab of that room, the sender's own
 *     included, as {channel_id, message_id, data, user: {id, name, role}}:
 *     the arguments as sent, with "user" (the CONNECT token's) spliced in
 *     before their closing brace;
 *   - a close frame, an Engine.IO close, a Socket.IO DISCONNECT or the end
 *     of the stream closes the socket, which leaves its rooms.
 * Left out, since siohub-bench needs none of it: pings (its client times
 * no server out), polling, namespaces other than "/", skip_sid (the bench
 * publishes null), emits to no room, fragmented frames, other acks.
 *
 * Usage: chat_floor --port P --redis redis://127.0.0.1:PORT/0
 *        [--host 127.0.0.1] [--redis-channel socketio]
 * --port 0 takes a free port. Prints "ready HOST:PORT" on stdout once it is
 * subscribed and accepts connections. Loopback (127.0.0.0/8) only. SIGTERM
 * or SIGINT stops it, with its counts on stderr; it exits 0. A lost Redis
 * connection is fatal (exit 1).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "peer.h"

enum {
    HEADER_MAX = 16 * 1024,   /* an upgrade request */
    FRAME_MAX = 1000000,      /* a client's frame: the maxPayload we announce */
    TAB_READ = 4096,          /* free room asked of a tab's input per read */
    REDIS_READ = 64 * 1024,   /* bytes asked of one read of the subscription */
    REDIS_READS_PER_WAKE = 4, /* as siohubd's REPLY_READS_LIMIT */
    NAME_MAX_LEN = 512,       /* a room name we build */
    SEND_IOV_MAX = 1024,      /* frames one sendmsg() takes, the kernel's UIO_MAXIOV */
    EVENTS_PER_WAIT = 256,
};

typedef enum {
    CONN_LISTENER,
    CONN_SIGNAL,
    CONN_REDIS,
    CONN_HTTP, /* before its upgrade */
    CONN_TAB,  /* a WebSocket */
    CONN_CLOSED,
} conn_kind_t;

/* A byte buffer: data[off, len) is pending; the zero value is empty. */
typedef struct buf {
    char *data;
    size_t len, off, cap;
} buf_t;

typedef struct span {
    const char *p;
    size_t n;
} span_t;

/* Bytes to send, shared by every tab they go to (refs of them), so that a
 * delivery costs a reference and not a copy: a floor that copied each
 * frame into each tab's buffer spent 8% of its CPU in memmove. */
typedef struct frame {
    size_t refs, len;
    char data[];
} frame_t;

typedef struct room room_t;

typedef struct conn {
    conn_kind_t kind;
    int fd;
    buf_t in;      /* HTTP: the request so far; tab: bytes of frames not yet whole */
    frame_t **out; /* tab: frames not yet sent, in order */
    size_t nout, out_cap;
    size_t out_sent;          /* bytes of out[0] already sent */
    struct conn *prev, *next; /* every HTTP connection and tab */
    struct conn *next_dirty;  /* the batch's tabs with output */
    bool dirty;               /* in that list */
    bool blocked;             /* a short send: waiting for EPOLLOUT */
    room_t **rooms;           /* the rooms it is in */
    size_t nrooms, rooms_cap;
    char *user; /* "user":{"id":...,"name":...,"role":...}, from CONNECT's token */
    size_t user_len;
} conn_t;

struct room {
    char *name;
    size_t len;
    uint64_t hash;
    conn_t **members;
    size_t n, cap;
};

/* Room name -> room: open addressing, linear probing, never shrinks (a
 * room emptied by its tabs' closes stays for the next). */
typedef struct rooms {
    room_t **slots;
    size_t cap, count;
} rooms_t;

typedef struct server {
    int epfd;
    conn_t listener, signals, redis;
    conn_t *conns;   /* HTTP connections and tabs */
    conn_t *dirty;   /* tabs with output, sent at the end of the batch */
    conn_t **closed; /* closed in this batch: freed at its end */
    size_t nclosed, closed_cap;
    rooms_t rooms;
    unsigned long long sid_next;
    unsigned long long messages, typings, frames, deliveries, sends, short_sends, ignored;
} server_t;

/* ---- buffers */

/* Room for n more bytes at data + len. */
static char *buf_reserve(buf_t *b, size_t n)
{
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n)
            cap *= 2;
        b->data = peer_xrealloc(b->data, cap);
        b->cap = cap;
    }
    return b->data + b->len;
}

static void buf_append(buf_t *b, const void *p, size_t n)
{
    memcpy(buf_reserve(b, n), p, n);
    b->len += n;
}

static void buf_puts(buf_t *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

/* Drops data[0, off): what is left moves to the front. */
static void buf_compact(buf_t *b)
{
    if (b->off == b->len) {
        b->len = b->off = 0;
    } else if (b->off) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
}

static void buf_release(buf_t *b)
{
    free(b->data);
    *b = (buf_t){0};
}

/* A frame of room for n bytes, len 0 and no reference yet. */
static frame_t *frame_new(size_t n)
{
    frame_t *f = peer_xrealloc(NULL, sizeof(*f) + n);
    f->refs = f->len = 0;
    return f;
}

static void frame_append(frame_t *f, const void *p, size_t n)
{
    memcpy(f->data + f->len, p, n);
    f->len += n;
}

/* A WebSocket text frame of len payload bytes: its header written, the
 * payload to follow with frame_append. */
static frame_t *text_frame(size_t len)
{
    frame_t *f = frame_new(PEER_WS_HEADER_MAX + len);
    f->len = peer_ws_text_header((unsigned char *)f->data, len);
    return f;
}

/* Frees f if no tab holds it. */
static void frame_drop(frame_t *f)
{
    if (f->refs == 0)
        free(f);
}

static void frame_unref(frame_t *f)
{
    f->refs--;
    frame_drop(f);
}

/* ---- rooms */

static uint64_t name_hash(const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

static room_t **rooms_slot(rooms_t *rs, const char *name, size_t len, uint64_t h)
{
    size_t mask = rs->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        room_t *r = rs->slots[i];
        if (!r || (r->hash == h && r->len == len && !memcmp(r->name, name, len)))
            return &rs->slots[i];
    }
}

/* The room of that name, or NULL; made when create. */
static room_t *rooms_get(rooms_t *rs, const char *name, size_t len, bool create)
{
    if (!rs->cap) {
        if (!create)
            return NULL;
        rs->cap = 1024;
        rs->slots = calloc(rs->cap, sizeof(*rs->slots));
        if (!rs->slots)
            peer_die("calloc");
    }
    uint64_t h = name_hash(name, len);
    room_t **slot = rooms_slot(rs, name, len, h);
    if (*slot || !create)
        return *slot;
    room_t *r = peer_xrealloc(NULL, sizeof(*r));
    *r = (room_t){.name = peer_xrealloc(NULL, len ? len : 1), .len = len, .hash = h};
    memcpy(r->name, name, len);
    *slot = r;
    if (++rs->count * 2 > rs->cap) {
        rooms_t bigger = {.cap = rs->cap * 2};
        bigger.slots = calloc(bigger.cap, sizeof(*bigger.slots));
        if (!bigger.slots)
            peer_die("calloc");
        for (size_t i = 0; i < rs->cap; i++) {
            room_t *q = rs->slots[i];
            if (q)
                *rooms_slot(&bigger, q->name, q->len, q->hash) = q;
        }
        free(rs->slots);
        rs->slots = bigger.slots;
        rs->cap = bigger.cap;
    }
    return r;
}

static void rooms_release(rooms_t *rs)
{
    for (size_t i = 0; i < rs->cap; i++) {
        room_t *r = rs->slots[i];
        if (r) {
            free(r->name);
            free(r->members);
            free(r);
        }
    }
    free(rs->slots);
    *rs = (rooms_t){0};
}

static bool tab_in(const conn_t *c, const room_t *r)
{
    for (size_t i = 0; i < c->nrooms; i++)
        if (c->rooms[i] == r)
            return true;
    return false;
}

/* Joins prefix + name (e.g. "user:" and an id); a second join is none. */
static void tab_join(server_t *s, conn_t *c, const char *prefix, span_t name)
{
    char full[NAME_MAX_LEN];
    size_t plen = strlen(prefix);
    if (plen + name.n > sizeof(full))
        return;
    memcpy(full, prefix, plen);
    memcpy(full + plen, name.p, name.n);
    room_t *r = rooms_get(&s->rooms, full, plen + name.n, true);
    if (tab_in(c, r))
        return;
    r->members = peer_grow(r->members, r->n, &r->cap, sizeof(*r->members));
    r->members[r->n++] = c;
    c->rooms = peer_grow(c->rooms, c->nrooms, &c->rooms_cap, sizeof(*c->rooms));
    c->rooms[c->nrooms++] = r;
}

static void tab_leave_all(conn_t *c)
{
    for (size_t i = 0; i < c->nrooms; i++) {
        room_t *r = c->rooms[i];
        for (size_t j = 0; j < r->n; j++) {
            if (r->members[j] == c) {
                r->members[j] = r->members[--r->n];
                break;
            }
        }
    }
    c->nrooms = 0;
}

/* ---- connections */

static void watch(server_t *s, conn_t *c, uint32_t events, int op)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(s->epfd, op, c->fd, &ev) < 0)
        peer_die("epoll_ctl");
}

static void mark_dirty(server_t *s, conn_t *c)
{
    if (!c->dirty) {
        c->dirty = true;
        c->next_dirty = s->dirty;
        s->dirty = c;
    }
}

/* Closing the fd also takes it out of the epoll set (it is never dup()ed);
 * the memory waits for the end of the batch, which may still name c. */
static void conn_close(server_t *s, conn_t *c)
{
    if (c->kind == CONN_CLOSED)
        return;
    tab_leave_all(c);
    close(c->fd);
    c->kind = CONN_CLOSED;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->closed = peer_grow(s->closed, s->nclosed, &s->closed_cap, sizeof(*s->closed));
    s->closed[s->nclosed++] = c;
}

static void closed_free(server_t *s)
{
    for (size_t i = 0; i < s->nclosed; i++) {
        conn_t *c = s->closed[i];
        buf_release(&c->in);
        for (size_t j = 0; j < c->nout; j++)
            frame_unref(c->out[j]);
        free(c->out);
        free(c->rooms);
        free(c->user);
        free(c);
    }
    s->nclosed = 0;
}

/* One send() of everything c has pending. What the socket does not take
 * waits for EPOLLOUT. */
static void tab_send(server_t *s, conn_t *c)
{
    bool blocked = false;
    while (c->nout && !blocked) { /* more than once only past SEND_IOV_MAX frames */
        /* One frame by send(), several by sendmsg(), as siohubd writes them. */
        struct iovec iov[SEND_IOV_MAX];
        size_t n = c->nout < SEND_IOV_MAX ? c->nout : SEND_IOV_MAX, total = 0;
        for (size_t i = 0; i < n; i++) {
            size_t skip = i ? 0 : c->out_sent;
            iov[i] = (struct iovec){c->out[i]->data + skip, c->out[i]->len - skip};
            total += iov[i].iov_len;
        }
        ssize_t w = n == 1 ? send(c->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL)
                           : sendmsg(c->fd, &(struct msghdr){.msg_iov = iov, .msg_iovlen = n},
                                     MSG_NOSIGNAL);
        s->sends++;
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            conn_close(s, c);
            return;
        }
        size_t sent = w > 0 ? (size_t)w : 0, left = sent, done = 0;
        while (done < n && left >= iov[done].iov_len) {
            left -= iov[done].iov_len;
            frame_unref(c->out[done++]);
        }
        /* What was sent of the frame now first. */
        c->out_sent = done < n ? (done ? 0 : c->out_sent) + left : 0;
        memmove(c->out, c->out + done, (c->nout - done) * sizeof(*c->out));
        c->nout -= done;
        if (sent < total) {
            s->short_sends++;
            blocked = true;
        }
    }
    if (blocked != c->blocked) {
        c->blocked = blocked;
        watch(s, c, blocked ? EPOLLIN | EPOLLOUT : EPOLLIN, EPOLL_CTL_MOD);
    }
}

/* The end of a batch: one send() per tab with output. */
static void flush(server_t *s)
{
    conn_t *c = s->dirty;
    s->dirty = NULL;
    while (c) {
        conn_t *next = c->next_dirty;
        c->dirty = false;
        if (c->kind == CONN_TAB && c->nout)
            tab_send(s, c);
        c = next;
    }
}

/* Queues f for c, in order after what c already has. */
static void tab_push(server_t *s, conn_t *c, frame_t *f)
{
    c->out = peer_grow(c->out, c->nout, &c->out_cap, sizeof(*c->out));
    c->out[c->nout++] = f;
    f->refs++;
    if (!c->blocked)
        mark_dirty(s, c);
}

/* Queues bytes that are c's alone (the upgrade's answer, a pong). */
static void tab_bytes(server_t *s, conn_t *c, const void *p, size_t n)
{
    frame_t *f = frame_new(n);
    frame_append(f, p, n);
    tab_push(s, c, f);
}

/* Queues the text frame of p[0, n) for c alone. */
static void tab_text(server_t *s, conn_t *c, const char *p, size_t n)
{
    frame_t *f = text_frame(n);
    frame_append(f, p, n);
    tab_push(s, c, f);
}

/* The text frame of the EVENT 42["<name>",<parts>], the parts one after
 * the other, built once. */
static frame_t *event_frame(span_t name, const span_t *parts, size_t nparts)
{
    size_t len = 4 + name.n + 2 + 1;
    for (size_t i = 0; i < nparts; i++)
        len += parts[i].n;
    frame_t *f = text_frame(len);
    frame_append(f, "42[\"", 4);
    frame_append(f, name.p, name.n);
    frame_append(f, "\",", 2);
    for (size_t i = 0; i < nparts; i++)
        frame_append(f, parts[i].p, parts[i].n);
    frame_append(f, "]", 1);
    return f;
}

/* f to every tab in r: a reference each. */
static void deliver(server_t *s, const room_t *r, frame_t *f)
{
    s->frames++;
    for (size_t i = 0; i < r->n; i++)
        tab_push(s, r->members[i], f);
    s->deliveries += r->n;
    frame_drop(f);
}

/* ---- tokens: the claims of a JWT's payload, unverified */

static int b64url_value(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '-' || ch == '+')
        return 62;
    if (ch == '_' || ch == '/')
        return 63;
    return -1;
}

/* The payload of token (header.payload.signature) decoded into out; false
 * when it is not one. */
static bool jwt_claims(span_t token, buf_t *out)
{
    const char *dot = memchr(token.p, '.', token.n);
    if (!dot)
        return false;
    const char *p = dot + 1, *end = token.p + token.n;
    const char *dot2 = memchr(p, '.', (size_t)(end - p));
    if (!dot2)
        return false;
    out->len = out->off = 0;
    char *w = buf_reserve(out, (size_t)(dot2 - p) * 3 / 4 + 3);
    uint32_t acc = 0;
    int bits = 0;
    for (; p < dot2 && *p != '='; p++) {
        int v = b64url_value(*p);
        if (v < 0)
            return false;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *w++ = (char)(acc >> bits);
        }
    }
    out->len = (size_t)(w - out->data);
    return true;
}

/* The end of the JSON string whose text starts at p (after its opening
 * quote): its closing quote, or NULL. */
static const char *string_end(const char *p, const char *end)
{
    while (p < end && *p != '"')
        p += *p == '\\' ? 2 : 1;
    return p < end ? p : NULL;
}

/* The text of the string value after key (which ends with its opening
 * quote, e.g. "\"id\":\""), escapes as they are; false when absent. */
static bool string_after(span_t json, const char *key, span_t *v)
{
    size_t klen = strlen(key);
    const char *k = memmem(json.p, json.n, key, klen);
    if (!k)
        return false;
    const char *p = k + klen, *e = string_end(p, json.p + json.n);
    if (!e)
        return false;
    *v = (span_t){p, (size_t)(e - p)};
    return true;
}

typedef struct claims {
    span_t id, name, role;
    span_t channels; /* after "channels":[ to its end */
    bool has_channels;
} claims_t;

/* The claims of the token in args (..."token":"T"...), decoded into
 * scratch; false when there is no readable token with an id. */
static bool token_claims(span_t args, buf_t *scratch, claims_t *cl)
{
    span_t token, json;
    if (!string_after(args, "\"token\":\"", &token) || !jwt_claims(token, scratch))
        return false;
    json = (span_t){scratch->data, scratch->len};
    *cl = (claims_t){.name = {"", 0}, .role = {"user", 4}};
    if (!string_after(json, "\"id\":\"", &cl->id))
        return false;
    string_after(json, "\"name\":\"", &cl->name);
    string_after(json, "\"role\":\"", &cl->role);
    static const char key[] = "\"channels\":[";
    const char *k = memmem(json.p, json.n, key, sizeof(key) - 1);
    if (k) {
        cl->has_channels = true;
        cl->channels.p = k + sizeof(key) - 1;
        cl->channels.n = (size_t)(json.p + json.n - cl->channels.p);
    }
    return true;
}

/* Joins "channel:<cid>" for each string of the channels claim. */
static void join_channels(server_t *s, conn_t *c, const claims_t *cl)
{
    if (!cl->has_channels)
        return;
    const char *p = cl->channels.p, *end = p + cl->channels.n;
    while (p < end && *p != ']') {
        if (*p != '"') {
            p++; /* a comma or a blank */
            continue;
        }
        const char *e = string_end(p + 1, end);
        if (!e)
            return;
        tab_join(s, c, "channel:", (span_t){p + 1, (size_t)(e - p - 1)});
        p = e + 1;
    }
}

/* ---- Socket.IO from a tab */

static void sio_connect(server_t *s, conn_t *c, span_t rest)
{
    buf_t scratch = {0};
    claims_t cl;
    if (!c->user && rest.n && rest.p[0] == '{' && token_claims(rest, &scratch, &cl)) {
        buf_t u = {0};
        buf_puts(&u, "\"user\":{\"id\":\"");
        buf_append(&u, cl.id.p, cl.id.n);
        buf_puts(&u, "\",\"name\":\"");
        buf_append(&u, cl.name.p, cl.name.n);
        buf_puts(&u, "\",\"role\":\"");
        buf_append(&u, cl.role.p, cl.role.n);
        buf_puts(&u, "\"}");
        c->user = u.data;
        c->user_len = u.len;
        tab_join(s, c, "user:", cl.id);
    }
    buf_release(&scratch);
    char answer[64];
    int n = snprintf(answer, sizeof(answer), "40{\"sid\":\"s%019llx\"}", s->sid_next++);
    tab_text(s, c, answer, (size_t)n);
}

/* join-channels, and user-join (also the user's room and an ack). */
static void sio_join(server_t *s, conn_t *c, span_t args, bool user_join, span_t ack)
{
    buf_t scratch = {0}, answer = {0};
    claims_t cl;
    if (token_claims(args, &scratch, &cl)) {
        if (user_join)
            tab_join(s, c, "user:", cl.id);
        join_channels(s, c, &cl);
        if (user_join && ack.n) {
            buf_puts(&answer, "43");
            buf_append(&answer, ack.p, ack.n);
            buf_puts(&answer, "[{\"id\":\"");
            buf_append(&answer, cl.id.p, cl.id.n);
            buf_puts(&answer, "\",\"name\":\"");
            buf_append(&answer, cl.name.p, cl.name.n);
            buf_puts(&answer, "\"}]");
            tab_text(s, c, answer.data, answer.len);
        }
    }
    buf_release(&scratch);
    buf_release(&answer);
}

/* Typing from a member of the channel, to the channel: the arguments as
 * sent with the sender's "user" before their closing brace. */
static void sio_channel_event(server_t *s, conn_t *c, span_t name, span_t args)
{
    static const char key[] = "{\"channel_id\":\"";
    size_t klen = sizeof(key) - 1;
    if (!c->user || args.n < klen + 2 || memcmp(args.p, key, klen) || args.p[args.n - 1] != '}')
        return;
    const char *cid = args.p + klen, *e = string_end(cid, args.p + args.n);
    char room[NAME_MAX_LEN];
    size_t clen = e ? (size_t)(e - cid) : 0;
    if (!e || 8 + clen > sizeof(room))
        return;
    memcpy(room, "channel:", 8);
    memcpy(room + 8, cid, clen);
    room_t *r = rooms_get(&s->rooms, room, 8 + clen, false);
    if (!r || !tab_in(c, r))
        return;
    s->typings++;
    const span_t parts[] = {{args.p, args.n - 1}, {",", 1}, {c->user, c->user_len}, {"}", 1}};
    deliver(s, r, event_frame(name, parts, sizeof(parts) / sizeof(parts[0])));
}

static bool span_is(span_t v, const char *s)
{
    return v.n == strlen(s) && !memcmp(v.p, s, v.n);
}

/* An EVENT's body after "42": [ack id] ["name",args...]. */
static void sio_event(server_t *s, conn_t *c, span_t body)
{
    span_t ack = {body.p, 0};
    while (ack.n < body.n && body.p[ack.n] >= '0' && body.p[ack.n] <= '9')
        ack.n++;
    const char *p = body.p + ack.n, *end = body.p + body.n;
    if (end - p < 4 || p[0] != '[' || p[1] != '"' || end[-1] != ']')
        return;
    const char *ne = string_end(p + 2, end - 1);
    if (!ne)
        return;
    span_t name = {p + 2, (size_t)(ne - p - 2)};
    span_t args = {ne + 1, (size_t)(end - 1 - ne - 1)};
    if (args.n && args.p[0] == ',') {
        args.p++;
        args.n--;
    }
    if (span_is(name, "channel-events") || span_is(name, "events:channel"))
        sio_channel_event(s, c, name, args);
    else if (span_is(name, "join-channels"))
        sio_join(s, c, args, false, ack);
    else if (span_is(name, "user-join"))
        sio_join(s, c, args, true, ack);
}

/* An Engine.IO packet (a text frame's payload). */
static void eio_packet(server_t *s, conn_t *c, const char *p, size_t n)
{
    if (n >= 2 && p[0] == '4') {
        span_t rest = {p + 2, n - 2};
        if (rest.n && rest.p[0] == '/')
            return; /* another namespace: not served */
        switch (p[1]) {
        case '0':
            sio_connect(s, c, rest);
            return;
        case '1':
            conn_close(s, c);
            return;
        case '2':
            sio_event(s, c, rest);
            return;
        default:
            return;
        }
    }
    if (n >= 1 && p[0] == '1')
        conn_close(s, c);
    /* "3" (a pong) and the rest: nothing to do */
}

/* ---- WebSocket from a tab */

/* Handles every whole frame in c->in (unmasking it in place). */
static void tab_frames(server_t *s, conn_t *c)
{
    buf_t *in = &c->in;
    while (c->kind == CONN_TAB) {
        unsigned char *q = (unsigned char *)in->data + in->off;
        size_t avail = in->len - in->off;
        if (avail < 2)
            break;
        uint64_t len = q[1] & 0x7f;
        size_t h = 2;
        if (len == 126) {
            if (avail < 4)
                break;
            len = ((uint64_t)q[2] << 8) | q[3];
            h = 4;
        } else if (len == 127) {
            if (avail < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = (len << 8) | q[2 + i];
            h = 10;
        }
        /* A client masks every frame (RFC 6455 5.1); we take no fragments
         * and nothing over the maxPayload we announced. */
        if (!(q[1] & 0x80) || !(q[0] & 0x80) || len > FRAME_MAX) {
            conn_close(s, c);
            return;
        }
        if (avail - h < 4 + len)
            break;
        unsigned char *mask = q + h, *payload = q + h + 4;
        for (size_t i = 0; i < len; i++)
            payload[i] ^= mask[i & 3];
        in->off += h + 4 + (size_t)len;
        switch (q[0] & 0x0f) {
        case 0x1: /* text */
            eio_packet(s, c, (const char *)payload, (size_t)len);
            break;
        case 0x8: /* close */
            conn_close(s, c);
            return;
        case 0x9: { /* ping: a pong with its payload (at most 125 bytes, 5.5) */
            unsigned char pong[2 + 125] = {0x8a, (unsigned char)(len & 0x7f)};
            memcpy(pong + 2, payload, (size_t)(len & 0x7f));
            tab_bytes(s, c, pong, 2 + (size_t)(len & 0x7f));
            break;
        }
        case 0x0: /* a continuation: we never let a fragment start */
            conn_close(s, c);
            return;
        default: /* binary, pong */
            break;
        }
    }
    if (c->kind == CONN_TAB)
        buf_compact(in);
}

/* One recv() into c->in: true when it brought bytes; the end of the
 * stream or an error closes c. */
static bool conn_recv(server_t *s, conn_t *c)
{
    char *w = buf_reserve(&c->in, TAB_READ);
    ssize_t r = recv(c->fd, w, c->in.cap - c->in.len, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return false;
    if (r <= 0) {
        conn_close(s, c);
        return false;
    }
    c->in.len += (size_t)r;
    return true;
}

static void tab_read(server_t *s, conn_t *c)
{
    if (conn_recv(s, c))
        tab_frames(s, c);
}

/* ---- HTTP: the upgrade */

static void http_refuse(server_t *s, conn_t *c, const char *status)
{
    char buf[160];
    int n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status);
    (void)send(c->fd, buf, (size_t)n, MSG_NOSIGNAL); /* a courtesy: it may not fit */
    conn_close(s, c);
}

static void http_read(server_t *s, conn_t *c)
{
    if (!conn_recv(s, c))
        return;
    const char *head = c->in.data;
    const char *end = memmem(head, c->in.len, "\r\n\r\n", 4);
    if (!end) {
        if (c->in.len > HEADER_MAX)
            http_refuse(s, c, "431 Request Header Fields Too Large");
        return;
    }
    size_t head_len = (size_t)(end - head) + 4, key_len;
    const char *key = peer_header(head, head_len, "Sec-WebSocket-Key", &key_len);
    char accept[PEER_WS_ACCEPT_SIZE];
    if (head_len < 4 || memcmp(head, "GET ", 4) || !key ||
        !peer_header_has(head, head_len, "Upgrade", "websocket") ||
        !peer_ws_accept(key, key_len, accept)) {
        http_refuse(s, c, "400 Bad Request");
        return;
    }
    static const char open_packet[] =
        "0{\"sid\":\"s%019llx\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000,"
        "\"maxPayload\":1000000}";
    char buf[512];
    int n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                     "Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    tab_bytes(s, c, buf, (size_t)n);
    n = snprintf(buf, sizeof(buf), open_packet, s->sid_next++);
    c->kind = CONN_TAB;
    tab_text(s, c, buf, (size_t)n);
    c->in.off = head_len; /* what follows the request is frames */
    tab_frames(s, c);
}

static void accept_all(server_t *s)
{
    for (int fd; (fd = peer_accept(s->listener.fd)) >= 0;) {
        conn_t *c = peer_xrealloc(NULL, sizeof(*c));
        *c = (conn_t){.kind = CONN_HTTP, .fd = fd, .next = s->conns};
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
        watch(s, c, EPOLLIN, EPOLL_CTL_ADD);
    }
}

/* ---- Redis: the subscription */

/* A RESP integer line of the given type ('*', '$', ':') at *pp: 0 with
 * *pp past it, -EAGAIN when incomplete, -EPROTO. */
static int resp_int(const char **pp, const char *end, char type, long long *v)
{
    const char *p = *pp;
    if (p >= end)
        return -EAGAIN;
    if (*p++ != type)
        return -EPROTO;
    bool neg = p < end && *p == '-';
    long long x = 0;
    for (p += neg; p < end && *p != '\r'; p++) {
        if (*p < '0' || *p > '9' || x > (1ll << 40))
            return -EPROTO;
        x = x * 10 + (*p - '0');
    }
    if (end - p < 2)
        return -EAGAIN;
    if (p[1] != '\n')
        return -EPROTO;
    *v = neg ? -x : x;
    *pp = p + 2;
    return 0;
}

/* An element of a push: a bulk string into *v, or an integer (v empty). */
static int resp_elem(const char **pp, const char *end, span_t *v)
{
    long long n;
    if (*pp < end && **pp == ':') {
        *v = (span_t){*pp, 0};
        return resp_int(pp, end, ':', &n);
    }
    int rc = resp_int(pp, end, '$', &n);
    if (rc < 0)
        return rc;
    if (n < 0)
        return -EPROTO;
    if (end - *pp < n + 2)
        return -EAGAIN;
    *v = (span_t){*pp, (size_t)n};
    *pp += n + 2;
    return 0;
}

/* A push (["message", channel, payload], or a subscribe's confirmation) at
 * *pp: 0 with *pp past it, -EAGAIN, -EPROTO. */
static int resp_push(const char **pp, const char *end, span_t *kind, span_t *payload)
{
    const char *p = *pp;
    long long n;
    span_t channel;
    int rc = resp_int(&p, end, '*', &n);
    if (rc < 0)
        return rc;
    if (n != 3)
        return -EPROTO;
    if ((rc = resp_elem(&p, end, kind)) < 0 || (rc = resp_elem(&p, end, &channel)) < 0 ||
        (rc = resp_elem(&p, end, payload)) < 0)
        return rc;
    *pp = p;
    return 0;
}

/* The last place needle stands in hay, or NULL. */
static const char *memrmem(const char *hay, size_t n, const char *needle, size_t nlen)
{
    for (size_t i = n >= nlen ? n - nlen + 1 : 0; i-- > 0;)
        if (hay[i] == needle[0] && !memcmp(hay + i, needle, nlen))
            return hay + i;
    return NULL;
}

/* One pub/sub emit: its frame to its room. */
static void redis_emit(server_t *s, span_t m)
{
    static const char head[] = "{\"method\":\"emit\",\"event\":\"";
    static const char data_key[] = ",\"data\":";
    static const char ns_key[] = ",\"namespace\":";
    static const char room_key[] = ",\"room\":\"";
    const char *end = m.p + m.n;
    s->messages++;
    if (m.n < sizeof(head) || memcmp(m.p, head, sizeof(head) - 1))
        goto ignored;
    span_t event = {m.p + sizeof(head) - 1, 0};
    const char *ee = memchr(event.p, '"', (size_t)(end - event.p));
    if (!ee || (size_t)(end - ee) < sizeof(data_key) ||
        memcmp(ee + 1, data_key, sizeof(data_key) - 1))
        goto ignored;
    event.n = (size_t)(ee - event.p);
    const char *data = ee + sizeof(data_key);
    const char *ns = memrmem(data, (size_t)(end - data), ns_key, sizeof(ns_key) - 1);
    if (!ns)
        goto ignored;
    const char *rk = memmem(ns, (size_t)(end - ns), room_key, sizeof(room_key) - 1);
    if (!rk)
        goto ignored; /* room null: python-socketio's broadcast, which the bench never sends */
    const char *room = rk + sizeof(room_key) - 1, *re = memchr(room, '"', (size_t)(end - room));
    room_t *r = re ? rooms_get(&s->rooms, room, (size_t)(re - room), false) : NULL;
    if (!r || !r->n)
        goto ignored;
    const span_t parts[] = {{data, (size_t)(ns - data)}};
    deliver(s, r, event_frame(event, parts, 1));
    return;
ignored:
    s->ignored++;
}

/* Handles every whole push in the subscription's input. */
static void redis_pushes(server_t *s)
{
    buf_t *in = &s->redis.in;
    const char *end = in->data + in->len;
    for (;;) {
        const char *p = in->data + in->off;
        span_t kind, payload;
        int rc = resp_push(&p, end, &kind, &payload);
        if (rc == -EAGAIN)
            break;
        if (rc < 0) {
            fprintf(stderr, "chat_floor: redis: not a pub/sub push\n");
            exit(1);
        }
        in->off = (size_t)(p - in->data);
        if (span_is(kind, "message"))
            redis_emit(s, payload);
    }
    buf_compact(in);
}

/* Reads until EAGAIN, at most REDIS_READS_PER_WAKE times (level-triggered:
 * the rest wakes the next batch), handling each read's pushes. */
static void redis_read(server_t *s)
{
    buf_t *in = &s->redis.in;
    for (int i = 0; i < REDIS_READS_PER_WAKE; i++) {
        char *w = buf_reserve(in, REDIS_READ);
        ssize_t r = read(s->redis.fd, w, REDIS_READ);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (r <= 0) {
            fprintf(stderr, "chat_floor: redis: %s\n", r ? strerror(errno) : "connection closed");
            exit(1);
        }
        in->len += (size_t)r;
        redis_pushes(s);
    }
}

/* Connects to redis://127.x.x.x:PORT[/DB] and subscribes, blocking until
 * Redis confirms, so that no emit published after "ready" is missed. */
static int redis_subscribe(const char *url, const char *channel, buf_t *in)
{
    static const char scheme[] = "redis://";
    char host[64];
    unsigned port;
    const char *hp = url + sizeof(scheme) - 1;
    const char *colon = strncmp(url, scheme, sizeof(scheme) - 1) ? NULL : strchr(hp, ':');
    struct sockaddr_in a = {.sin_family = AF_INET};
    if (!colon || (size_t)(colon - hp) >= sizeof(host) || sscanf(colon + 1, "%u", &port) != 1 ||
        !port || port > 65535) {
        fprintf(stderr, "chat_floor: --redis is a redis://127.x.x.x:PORT/DB URL\n");
        exit(2);
    }
    memcpy(host, hp, (size_t)(colon - hp));
    host[colon - hp] = '\0';
    a.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1 || (ntohl(a.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "chat_floor: --redis must name an IPv4 address in 127.0.0.0/8\n");
        exit(2);
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        peer_die("redis connect");
    char cmd[320];
    int n = snprintf(cmd, sizeof(cmd), "*2\r\n$9\r\nSUBSCRIBE\r\n$%zu\r\n%s\r\n", strlen(channel),
                     channel);
    if (n <= 0 || (size_t)n >= sizeof(cmd) || write(fd, cmd, (size_t)n) != n)
        peer_die("redis SUBSCRIBE");
    for (;;) {
        char *w = buf_reserve(in, 4096);
        ssize_t r = read(fd, w, 4096);
        if (r <= 0)
            peer_die("redis read");
        in->len += (size_t)r;
        const char *p = in->data;
        span_t kind, payload;
        int rc = resp_push(&p, in->data + in->len, &kind, &payload);
        if (rc == -EAGAIN)
            continue;
        if (rc < 0 || !span_is(kind, "subscribe")) {
            fprintf(stderr, "chat_floor: redis: SUBSCRIBE answered %.*s\n",
                    (int)(in->len < 120 ? in->len : 120), in->data);
            exit(1);
        }
        in->off = (size_t)(p - in->data);
        buf_compact(in);
        break;
    }
    if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
        peer_die("fcntl");
    return fd;
}

/* ---- start, run, stop */

static void usage(FILE *out)
{
    fputs("usage: chat_floor --port P --redis redis://127.0.0.1:PORT/0 [--host 127.0.0.1]\n"
          "                  [--redis-channel socketio]\n"
          "The floor of siohub-bench's chat scenario with --redis: just enough Socket.IO\n"
          "over WebSocket, each pub/sub emit framed once, one send() per tab per wake.\n",
          out);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"host", required_argument, NULL, 'H'},  {"port", required_argument, NULL, 'p'},
        {"redis", required_argument, NULL, 'r'}, {"redis-channel", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    const char *host = "127.0.0.1", *redis_url = NULL, *channel = "socketio";
    long port = -1;
    for (int o; (o = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        switch (o) {
        case 'H':
            host = optarg;
            break;
        case 'p':
            port = peer_port_arg(optarg);
            break;
        case 'r':
            redis_url = optarg;
            break;
        case 'c':
            channel = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (port < 0 || !redis_url || !*channel || strlen(channel) > 256 || optind != argc) {
        usage(stderr);
        return 2;
    }
    server_t s = {0};
    peer_raise_nofile(); /* each tab is one descriptor */
    s.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s.epfd < 0)
        peer_die("epoll_create1");
    s.signals = (conn_t){.kind = CONN_SIGNAL, .fd = peer_stop_signals()};
    s.redis = (conn_t){.kind = CONN_REDIS};
    s.redis.fd = redis_subscribe(redis_url, channel, &s.redis.in);
    s.listener = (conn_t){.kind = CONN_LISTENER, .fd = peer_listen(host, (int)port)};
    watch(&s, &s.signals, EPOLLIN, EPOLL_CTL_ADD);
    watch(&s, &s.redis, EPOLLIN, EPOLL_CTL_ADD);
    watch(&s, &s.listener, EPOLLIN, EPOLL_CTL_ADD);
    peer_say_ready(host, s.listener.fd);

    struct epoll_event evs[EVENTS_PER_WAIT];
    for (bool running = true; running;) {
        int n = epoll_wait(s.epfd, evs, EVENTS_PER_WAIT, -1);
        if (n < 0 && errno != EINTR)
            peer_die("epoll_wait");
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            switch (c->kind) {
            case CONN_SIGNAL:
                running = false;
                break;
            case CONN_LISTENER:
                accept_all(&s);
                break;
            case CONN_REDIS:
                redis_read(&s);
                break;
            case CONN_HTTP:
                http_read(&s, c);
                break;
            case CONN_TAB:
                if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                    tab_read(&s, c);
                if (c->kind == CONN_TAB && (evs[i].events & EPOLLOUT) && c->blocked)
                    mark_dirty(&s, c); /* sent with the batch's others */
                break;
            case CONN_CLOSED: /* earlier in this batch */
                break;
            }
        }
        flush(&s);
        closed_free(&s);
    }
    fprintf(stderr,
            "chat_floor: %llu Redis messages (%llu ignored), %llu typing events, %llu frames "
            "built, %llu deliveries, %llu sends (%llu short)\n",
            s.messages, s.ignored, s.typings, s.frames, s.deliveries, s.sends, s.short_sends);
    while (s.conns)
        conn_close(&s, s.conns);
    closed_free(&s);
    free(s.closed);
    rooms_release(&s.rooms);
    buf_release(&s.redis.in);
    close(s.redis.fd);
    close(s.listener.fd);
    close(s.signals.fd);
    close(s.epfd);
    return 0;
}
