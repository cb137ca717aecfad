/* WebSocket connections on real loopback sockets: the test plays the client
 * by hand (masked frames built here), the connection runs on the loop.
 * Callbacks are counted and checked never to run inside a call the owner
 * made; every test ends with the connection gone and the loop freed (the
 * sanitizer build turns a leak into a failure). */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/msg.h"
#include "harness.h"
#include "transport/ws.h"
#include "transport/ws_frame.h"

#define MAX_GOT 16

typedef struct fix {
    sh_loop_t *loop;
    int fds[2];
    sh_ws_conn_t *ws;
    th_conn_t peer;
    sh_ws_stats_t stats;
    bool in_call; /* the test is inside a call into the connection */
    int messages;
    sh_buf_t got[MAX_GOT];
    bool binary[MAX_GOT];
    int closes;
    uint16_t close_code;
    char close_reason[128];
    void *last_owner;
} fix_t;

static fix_t F;

static void on_message(sh_ws_conn_t *ws, const char *data, size_t len, bool binary, void *owner)
{
    fix_t *f = &F;
    ck_assert_msg(!f->in_call, "on_message ran inside a call made by the owner");
    ck_assert_ptr_eq(ws, f->ws);
    ck_assert_int_lt(f->messages, MAX_GOT);
    sh_buf_append(&f->got[f->messages], data, len);
    f->binary[f->messages] = binary;
    f->messages++;
    f->last_owner = owner;
}

static void on_close(sh_ws_conn_t *ws, uint16_t code, const char *reason, void *owner)
{
    fix_t *f = &F;
    ck_assert_msg(!f->in_call, "on_close ran inside a call made by the owner");
    ck_assert_ptr_eq(ws, f->ws);
    f->closes++;
    f->close_code = code;
    snprintf(f->close_reason, sizeof(f->close_reason), "%s", reason);
    f->ws = NULL; /* freed after we return */
}

static const sh_ws_handler_t handler = {.on_message = on_message, .on_close = on_close};

static sh_ws_options_t default_opts(void)
{
    return (sh_ws_options_t){
        .max_message = 1 << 20,
        .output_limit = 1 << 20,
        .close_linger = 100,
        .stats = &F.stats,
    };
}

/* A TCP pair: the server end goes to a new connection (with `extra`), the
 * client end is watched by the loop as F.peer. */
static void start(const sh_ws_options_t *opts, const void *extra, size_t extra_len)
{
    memset(&F, 0, sizeof(F));
    F.loop = sh_loop_new();
    th_tcp_pair(F.fds);
    F.in_call = true;
    F.ws = sh_ws_conn_new(F.loop, F.fds[0], extra, extra_len, opts, &handler, &F);
    F.in_call = false;
    ck_assert_ptr_nonnull(F.ws);
    th_conn_adopt(&F.peer, F.loop, F.fds[1]);
}

static bool closed_once(void *arg)
{
    return F.closes > 0;
}

static bool wait_closed(void)
{
    return th_run_until(F.loop, closed_once, NULL, TH_WAIT_MS);
}

/* Ends a test: the connection must be gone (closed or destroyed), every
 * deferred call run, the loop freed. */
static void finish(void)
{
    if (F.ws) {
        sh_ws_conn_destroy(F.ws);
        F.ws = NULL;
    }
    th_conn_close(&F.peer);
    sh_loop_run_deferred(F.loop);
    sh_loop_free(F.loop);
    for (int i = 0; i < MAX_GOT; i++)
        sh_buf_release(&F.got[i]);
}

static void peer_frame(uint8_t opcode, bool fin, const void *p, size_t n)
{
    sh_buf_t b = SH_BUF_INIT;
    th_ws_encode(&b, opcode, fin, p, n, true);
    th_conn_write(&F.peer, sh_buf_peek(&b), sh_buf_avail(&b));
    sh_buf_release(&b);
}

static void peer_close_frame(uint16_t code, const char *reason)
{
    uint8_t body[125];
    size_t n = sh_ws_close_payload(body, code, reason);
    peer_frame(SH_WS_OP_CLOSE, true, body, n);
}

static bool got_messages(void *arg)
{
    return F.messages >= *(int *)arg;
}

static void wait_messages(int n)
{
    ck_assert_msg(th_run_until(F.loop, got_messages, &n, TH_WAIT_MS), "got %d of %d messages",
                  F.messages, n);
}

static int send_msg(sh_msg_t *m)
{
    F.in_call = true;
    int rc = sh_ws_conn_send(F.ws, m);
    F.in_call = false;
    return rc;
}

static void close_conn(uint16_t code, const char *reason)
{
    F.in_call = true;
    sh_ws_conn_close(F.ws, code, reason);
    F.in_call = false;
}

/* Reads the next server frame; fails the test if none comes. */
static uint8_t read_frame(sh_buf_t *payload)
{
    uint8_t op = 0xff;
    ck_assert_msg(th_ws_read(&F.peer, &op, payload, TH_WAIT_MS), "no frame from the server");
    return op;
}

/* ---- messages in ---- */

START_TEST(test_text_and_binary_reach_on_message)
{
    sh_ws_options_t o = default_opts();
    start(&o, NULL, 0);
    static const uint8_t bin[] = {0x00, 0x01, 0xfe, 0xff, 0x80};
    peer_frame(SH_WS_OP_TEXT, true, "hello", 5);
    peer_frame(SH_WS_OP_BINARY, true, bin, sizeof(bin));
    /* A fragmented text message whose UTF-8 character straddles frames. */
    peer_frame(SH_WS_OP_TEXT, false, "caf\xc3", 4);
    peer_frame(SH_WS_OP_CONT, true, "\xa9!", 2);
    peer_frame(SH_WS_OP_TEXT, true, "", 0);
    /* 70,000 bytes: the 64-bit length form, over several reads. */
    size_t big = 70000;
    char *p = malloc(big);
    for (size_t i = 0; i < big; i++)
        p[i] = (char)('a' + i % 26);
    peer_frame(SH_WS_OP_BINARY, true, p, big);
    wait_messages(5);
    ck_assert_int_eq(F.messages, 5);
    ck_assert_uint_eq(sh_buf_avail(&F.got[0]), 5);
    ck_assert(!memcmp(sh_buf_peek(&F.got[0]), "hello", 5));
    ck_assert(!F.binary[0]);
    ck_assert_uint_eq(sh_buf_avail(&F.got[1]), sizeof(bin));
    ck_assert(!memcmp(sh_buf_peek(&F.got[1]), bin, sizeof(bin)));
    ck_assert(F.binary[1]);
    ck_assert_str_eq(sh_buf_peek(&F.got[2]), "caf\xc3\xa9!");
    ck_assert(!F.binary[2]);
    ck_assert_uint_eq(sh_buf_avail(&F.got[3]), 0);
    ck_assert(!F.binary[3]);
    ck_assert_uint_eq(sh_buf_avail(&F.got[4]), big);
    ck_assert(!memcmp(sh_buf_peek(&F.got[4]), p, big));
    ck_assert(F.binary[4]);
    ck_assert_ptr_eq(F.last_owner, &F);
    /* Frames: 6 data frames made 5 messages; bytes count the wire. */
    ck_assert_uint_eq(F.stats.frames_in, 5);
    ck_assert_uint_eq(F.stats.bytes_in, (2 + 4 + 5) + (2 + 4 + 5) + (2 + 4 + 4) + (2 + 4 + 2) +
                                            (2 + 4) + (10 + 4 + big));
    ck_assert_int_eq(F.closes, 0);
    free(p);
    finish();
    ck_assert_int_eq(F.closes, 0); /* destroy: no callback */
}
END_TEST

/* A second connection on the same loop, for the input buffer the loop's
 * connections share. */
static int other_messages;
static sh_buf_t other_got;

static void other_on_message(sh_ws_conn_t *ws, const char *data, size_t len, bool binary,
                             void *owner)
{
    sh_buf_append(&other_got, data, len);
    other_messages++;
}

static const sh_ws_handler_t other_handler = {.on_message = other_on_message};

static bool other_got_one(void *arg)
{
    return other_messages > 0;
}

static bool never(void *arg)
{
    return false;
}

/* Reads land in one buffer shared by the loop's connections; what a read
 * leaves (the start of a frame) must be kept by its own connection, not
 * overwritten by the next connection that reads. */
START_TEST(test_partial_frame_survives_other_connections_reads)
{
    sh_ws_options_t o = default_opts();
    start(&o, NULL, 0);
    int fds[2];
    th_tcp_pair(fds);
    sh_ws_conn_t *other = sh_ws_conn_new(F.loop, fds[0], NULL, 0, &o, &other_handler, NULL);
    ck_assert_ptr_nonnull(other);
    th_conn_t other_peer;
    th_conn_adopt(&other_peer, F.loop, fds[1]);
    other_messages = 0;

    char text[300];
    for (size_t i = 0; i < sizeof(text); i++)
        text[i] = (char)('a' + i % 26);
    sh_buf_t frame = SH_BUF_INIT;
    th_ws_encode(&frame, SH_WS_OP_TEXT, true, text, sizeof(text), true);
    /* The header and part of the payload, read on its own. */
    th_conn_write(&F.peer, sh_buf_peek(&frame), 40);
    th_run_until(F.loop, never, NULL, 50);
    ck_assert_int_eq(F.messages, 0);
    /* Another connection reads a whole frame meanwhile. */
    char other_text[500];
    memset(other_text, 'X', sizeof(other_text));
    sh_buf_t b = SH_BUF_INIT;
    th_ws_encode(&b, SH_WS_OP_TEXT, true, other_text, sizeof(other_text), true);
    th_conn_write(&other_peer, sh_buf_peek(&b), sh_buf_avail(&b));
    ck_assert(th_run_until(F.loop, other_got_one, NULL, TH_WAIT_MS));
    ck_assert_uint_eq(sh_buf_avail(&other_got), sizeof(other_text));
    ck_assert(!memcmp(sh_buf_peek(&other_got), other_text, sizeof(other_text)));
    /* The rest of the first frame completes it intact. */
    th_conn_write(&F.peer, sh_buf_peek(&frame) + 40, sh_buf_avail(&frame) - 40);
    wait_messages(1);
    ck_assert_uint_eq(sh_buf_avail(&F.got[0]), sizeof(text));
    ck_assert(!memcmp(sh_buf_peek(&F.got[0]), text, sizeof(text)));

    sh_buf_release(&frame);
    sh_buf_release(&b);
    sh_buf_release(&other_got);
    sh_ws_conn_destroy(other);
    th_conn_close(&other_peer);
    finish();
}
END_TEST

START_TEST(test_extra_bytes_come_first)
{
    /* `extra` holds a whole frame and the head of a second one, whose rest
     * is already waiting in the socket: the order must survive. */
    sh_buf_t all = SH_BUF_INIT;
    th_ws_encode(&all, SH_WS_OP_TEXT, true, "first", 5, true);
    size_t first_len = sh_buf_avail(&all);
    th_ws_encode(&all, SH_WS_OP_TEXT, true, "second", 6, true);
    size_t split = first_len + 3;
    sh_ws_options_t o = default_opts();
    memset(&F, 0, sizeof(F));
    F.loop = sh_loop_new();
    th_tcp_pair(F.fds);
    ck_assert_int_eq(write(F.fds[1], sh_buf_peek(&all) + split, sh_buf_avail(&all) - split),
                     (ssize_t)(sh_buf_avail(&all) - split));
    F.in_call = true;
    F.ws = sh_ws_conn_new(F.loop, F.fds[0], sh_buf_peek(&all), split, &o, &handler, &F);
    F.in_call = false;
    th_conn_adopt(&F.peer, F.loop, F.fds[1]);
    ck_assert_int_eq(F.messages, 0); /* processed from the loop, not inside new */
    peer_frame(SH_WS_OP_TEXT, true, "third", 5);
    wait_messages(3);
    ck_assert_str_eq(sh_buf_peek(&F.got[0]), "first");
    ck_assert_str_eq(sh_buf_peek(&F.got[1]), "second");
    ck_assert_str_eq(sh_buf_peek(&F.got[2]), "third");
    sh_buf_release(&all);
    finish();
}
END_TEST

START_TEST(test_extra_alone_without_socket_bytes)
{
    /* A client that sent its first message with the upgrade request and
     * then waits: the message must not wait for socket traffic. */
    sh_buf_t b = SH_BUF_INIT;
    th_ws_encode(&b, SH_WS_OP_BINARY, true, "\x01\x02", 2, true);
    sh_ws_options_t o = default_opts();
    start(&o, sh_buf_peek(&b), sh_buf_avail(&b));
    sh_buf_release(&b);
    ck_assert_int_eq(F.messages, 0);
    th_run_once(F.loop);
    ck_assert_int_eq(F.messages, 1);
    ck_assert(F.binary[0]);
    ck_assert(!memcmp(sh_buf_peek(&F.got[0]), "\x01\x02", 2));
    finish();
}
END_TEST

/* ---- messages out ---- */

START_TEST(test_sends_in_one_iteration_leave_in_one_write)
{
    /* A SEQPACKET pair keeps write boundaries: one recv returns exactly
     * what one sendmsg wrote, so three frames in one record prove one
     * write. */
    memset(&F, 0, sizeof(F));
    F.loop = sh_loop_new();
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, F.fds), 0);
    sh_ws_options_t o = default_opts();
    F.ws = sh_ws_conn_new(F.loop, F.fds[0], NULL, 0, &o, &handler, &F);
    sh_msg_t *a = sh_msg_new("a", 1, false);
    sh_msg_t *b = sh_msg_new("\x00\xff", 2, true);
    size_t clen = 300; /* 16-bit length form */
    char *cbody = malloc(clen);
    memset(cbody, 'c', clen);
    sh_msg_t *c = sh_msg_new(cbody, clen, false);
    sh_msg_ref(a);
    ck_assert_int_eq(send_msg(a), 0);
    ck_assert_int_eq(send_msg(b), 0);
    ck_assert_int_eq(send_msg(c), 0);
    /* Nothing leaves inside the calls: the flush is deferred. */
    char buf[4096];
    ck_assert_int_eq(recv(F.fds[1], buf, sizeof(buf), MSG_DONTWAIT), -1);
    ck_assert_int_eq(errno, EAGAIN);
    ck_assert_uint_eq(sh_ws_conn_queued(F.ws), (2 + 1) + (2 + 2) + (4 + clen));
    ck_assert_uint_eq(a->refs, 2); /* queued by reference, not copied */
    th_run_once(F.loop);
    ck_assert_uint_eq(sh_ws_conn_queued(F.ws), 0);
    ck_assert_uint_eq(a->refs, 1); /* the queue's reference is dropped once written */
    sh_msg_unref(a);
    ssize_t n = recv(F.fds[1], buf, sizeof(buf), MSG_DONTWAIT);
    ck_assert_int_eq(n, (ssize_t)((2 + 1) + (2 + 2) + (4 + clen)));
    ck_assert_int_eq(recv(F.fds[1], buf, sizeof(buf), MSG_DONTWAIT), -1);
    sh_buf_t in = SH_BUF_INIT, payload = SH_BUF_INIT;
    sh_buf_append(&in, buf, (size_t)n);
    uint8_t op;
    bool fin;
    ck_assert_int_eq(th_ws_decode(&in, &op, &fin, &payload), 1);
    ck_assert_uint_eq(op, SH_WS_OP_TEXT);
    ck_assert(fin);
    ck_assert_str_eq(sh_buf_peek(&payload), "a");
    ck_assert_int_eq(th_ws_decode(&in, &op, &fin, &payload), 1);
    ck_assert_uint_eq(op, SH_WS_OP_BINARY);
    ck_assert_uint_eq(sh_buf_avail(&payload), 2);
    ck_assert(!memcmp(sh_buf_peek(&payload), "\x00\xff", 2));
    ck_assert_int_eq(th_ws_decode(&in, &op, &fin, &payload), 1);
    ck_assert_uint_eq(op, SH_WS_OP_TEXT);
    ck_assert_uint_eq(sh_buf_avail(&payload), clen);
    ck_assert(!memcmp(sh_buf_peek(&payload), cbody, clen));
    ck_assert_uint_eq(sh_buf_avail(&in), 0);
    ck_assert_uint_eq(F.stats.frames_out, 3);
    ck_assert_uint_eq(F.stats.bytes_out, (uint64_t)n);
    sh_buf_release(&in);
    sh_buf_release(&payload);
    free(cbody);
    F.in_call = true;
    sh_ws_conn_destroy(F.ws);
    F.in_call = false;
    F.ws = NULL;
    close(F.fds[1]);
    sh_loop_run_deferred(F.loop);
    sh_loop_free(F.loop);
    ck_assert_int_eq(F.closes, 0);
}
END_TEST

START_TEST(test_ping_gets_pong)
{
    sh_ws_options_t o = default_opts();
    start(&o, NULL, 0);
    sh_buf_t payload = SH_BUF_INIT;
    peer_frame(SH_WS_OP_PING, true, "xyz", 3);
    ck_assert_uint_eq(read_frame(&payload), SH_WS_OP_PONG);
    ck_assert_str_eq(sh_buf_peek(&payload), "xyz");
    /* A ping between the fragments of a message (RFC 6455 §5.4). */
    peer_frame(SH_WS_OP_TEXT, false, "ab", 2);
    peer_frame(SH_WS_OP_PING, true, "", 0);
    peer_frame(SH_WS_OP_CONT, true, "cd", 2);
    ck_assert_uint_eq(read_frame(&payload), SH_WS_OP_PONG);
    ck_assert_uint_eq(sh_buf_avail(&payload), 0);
    wait_messages(1);
    ck_assert_str_eq(sh_buf_peek(&F.got[0]), "abcd");
    /* A pong from the peer is accepted silently. */
    peer_frame(SH_WS_OP_PONG, true, "u", 1);
    peer_frame(SH_WS_OP_TEXT, true, "after", 5);
    wait_messages(2);
    ck_assert_str_eq(sh_buf_peek(&F.got[1]), "after");
    ck_assert_int_eq(F.closes, 0);
    sh_buf_release(&payload);
    finish();
}
END_TEST

/* ---- closing ---- */

START_TEST(test_peer_close_is_echoed)
{
    sh_ws_options_t o = default_opts();
    start(&o, NULL, 0);
    sh_buf_t payload = SH_BUF_INIT;
    peer_close_frame(4001, "bye");
    ck_assert_uint_eq(read_frame(&payload), SH_WS_OP_CLOSE);
    ck_assert_uint_eq(th_ws_close_code(&payload), 4001);
    /* The server closes the TCP connection first (RFC 6455 §7.1.1). */
    ck_assert(th_conn_wait_eof(&F.peer, TH_WAIT_MS));
    ck_assert(wait_closed());
    ck_assert_int_eq(F.closes, 1);
    ck_assert_uint_eq(F.close_code, 4001);
    ck_assert_str_eq(F.close_reason, "bye");
    th_run_for(F.loop, 20);
    ck_assert_int_eq(F.closes, 1);
    sh_buf_release(&payload);
    finish();
}
END_TEST

START_TEST(test_peer_close_without_code)
{
    sh_ws_options_t o = default_opts();
    start(&o, NULL, 0);
    sh_buf_t payload = SH_BUF_INIT;
    /* Data after the close frame is not delivered. */
    sh_buf_t b = SH_BUF_INIT;
    th_ws_encode(&b, SH_WS_OP_CLOSE, true, "", 0, true);
    th_ws_encode(&b, SH_WS_OP_TEXT, true, "late", 4, true);
    th_conn_write(&F.peer, sh_buf_peek(&b), sh_buf_avail(&b));
    sh_buf_release(&b);
    ck_assert_uint_eq(read_frame(&payload), SH_WS_OP_CLOSE);
    ck_assert_uint_eq(sh_buf_avail(&payload), 0); /* 1005 is never sent */
    ck_assert(wait_closed());
    ck_assert_uint_eq(F.close_code, SH_WS_CLOSE_NO_STATUS);
    ck_assert_int_eq(F.messages, 0);
    sh_buf_release(&payload);
    finish();
}
END_TEST

START_TEST(test_owner_close_handshake)
{
    sh_ws_options_t o = default_opts();
    o.close_linger = 5000; /* far past wait_closed's bound */
    start(&o, NULL, 0);
    ck_assert_int_eq(send_msg(sh_msg_new("last", 4, false)), 0);
    close_conn(SH_WS_CLOSE_GOING_AWAY, "done");
    ck_assert(sh_ws_conn_closing(F.ws));
    ck_assert_int_eq(send_msg(sh_msg_new("x", 1, false)), -EPIPE);
    close_conn(SH_WS_CLOSE_NORMAL, "again"); /* no-op once closing */
    ck_assert_int_eq(F.closes, 0);
    sh_buf_t payload = SH_BUF_INIT;
    ck_assert_uint_eq(read_frame(&payload), SH_WS_OP_TEXT);
    ck_assert_str_eq(sh_buf_peek(&payload), "last");
    ck_assert_uint_eq(read_frame(&payload), SH_WS_OP_CLOSE);
    ck_assert_uint_eq(th_ws_close_code(&payload), SH_WS_CLOSE_GOING_AWAY);
    ck_assert_str_eq(sh_buf_peek(&payload) + 2, "done");
    /* Messages from the peer after our close frame are dropped; its close
     * frame completes the handshake well before the linger. */
    peer_frame(SH_WS_OP_TEXT, true, "ignored", 7);
    peer_close_frame(SH_WS_CLOSE_GOING_AWAY, "");
    ck_assert(wait_closed());
    ck_assert_int_eq(F.closes, 1);
    ck_assert_uint_eq(F.close_code, SH_WS_CLOSE_GOING_AWAY);
    ck_assert_str_eq(F.close_reason, "done");
    ck_assert_int_eq(F.messages, 0);
    ck_assert(th_conn_wait_eof(&F.peer, TH_WAIT_MS));
    sh_buf_release(&payload);
    finish();
}
END_TEST

START_TEST(test_owner_close_linger_expires)
{
    /* A peer that never answers our close frame: the connection ends after
     * close_linger anyway. */
    sh_ws_options_t o = default_opts();
    o.close_linger = 60;
    start(&o, NULL, 0);
    uint64_t t0 = sh_time_ms();
    close_conn(SH_WS_CLOSE_NORMAL, "bye");
    sh_buf_t payload = SH_BUF_INIT;
    ck_assert_uint_eq(read_frame(&payload), SH_WS_OP_CLOSE);
    ck_assert(wait_closed());
    ck_assert_uint_ge(sh_time_ms() - t0, 60);
    ck_assert_uint_eq(F.close_code, SH_WS_CLOSE_NORMAL);
    ck_assert(th_conn_wait_eof(&F.peer, TH_WAIT_MS));
    sh_buf_release(&payload);
    finish();
}
END_TEST

START_TEST(test_peer_vanishes)
{
    sh_ws_options_t o = default_opts();
    start(&o, NULL, 0);
    th_conn_close(&F.peer);
    ck_assert(wait_closed());
    ck_assert_int_eq(F.closes, 1);
    ck_assert_uint_eq(F.close_code, 1006);
    finish();
}
END_TEST

/* Protocol errors: the right close code on the wire and in on_close. */
typedef struct bad_case {
    const char *name;
    uint8_t opcode;
    bool fin;
    const char *data;
    size_t len;
    bool masked;
    uint16_t code;
} bad_case_t;

static const bad_case_t bad_cases[] = {
    {"unmasked frame", SH_WS_OP_TEXT, true, "hi", 2, false, SH_WS_CLOSE_PROTOCOL},
    {"invalid UTF-8", SH_WS_OP_TEXT, true, "\xc3\x28", 2, true, SH_WS_CLOSE_INVALID_DATA},
    {"overlong UTF-8", SH_WS_OP_TEXT, true, "\xc0\xaf", 2, true, SH_WS_CLOSE_INVALID_DATA},
    {"message over max_message", SH_WS_OP_BINARY, true, "0123456789abcdefg", 17, true,
     SH_WS_CLOSE_TOO_BIG},
    {"continuation without a message", SH_WS_OP_CONT, true, "x", 1, true, SH_WS_CLOSE_PROTOCOL},
    {"fragmented ping", SH_WS_OP_PING, false, "", 0, true, SH_WS_CLOSE_PROTOCOL},
};

START_TEST(test_protocol_errors_close_with_code)
{
    const bad_case_t *bc = &bad_cases[_i];
    sh_ws_options_t o = default_opts();
    o.max_message = 16;
    start(&o, NULL, 0);
    peer_frame(SH_WS_OP_TEXT, true, "ok", 2);
    sh_buf_t b = SH_BUF_INIT;
    th_ws_encode(&b, bc->opcode, bc->fin, bc->data, bc->len, bc->masked);
    th_conn_write(&F.peer, sh_buf_peek(&b), sh_buf_avail(&b));
    sh_buf_release(&b);
    sh_buf_t payload = SH_BUF_INIT;
    ck_assert_msg(read_frame(&payload) == SH_WS_OP_CLOSE, "%s: no close frame", bc->name);
    ck_assert_msg(th_ws_close_code(&payload) == bc->code, "%s: close code %u, want %u", bc->name,
                  th_ws_close_code(&payload), bc->code);
    /* The client answers; the server no longer reads after failing the
     * connection (RFC 6455 §7.1.7) and ends it within the linger. */
    peer_close_frame(bc->code, "");
    ck_assert_msg(wait_closed(), "%s: on_close did not run", bc->name);
    ck_assert_int_eq(F.closes, 1);
    ck_assert_uint_eq(F.close_code, bc->code);
    ck_assert_int_eq(F.messages, 1); /* the good message before it only */
    ck_assert(th_conn_wait_eof(&F.peer, TH_WAIT_MS));
    th_run_for(F.loop, 10);
    ck_assert_int_eq(F.closes, 1);
    sh_buf_release(&payload);
    finish();
}
END_TEST

/* A TCP pair whose server end goes to a new connection with a 4 KiB send
 * buffer, the client end left unwatched (not read) until the test adopts
 * it; a 4 KiB receive buffer too when the peer is never to read (a
 * window that small opens a few KiB per delayed ACK: too slow to read
 * through). */
static void start_unread(const sh_ws_options_t *o, bool never_read)
{
    memset(&F, 0, sizeof(F));
    F.loop = sh_loop_new();
    th_tcp_pair(F.fds);
    int small = 4096;
    setsockopt(F.fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    if (never_read)
        setsockopt(F.fds[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    F.ws = sh_ws_conn_new(F.loop, F.fds[0], NULL, 0, o, &handler, &F);
}

START_TEST(test_output_limit_drops_slow_peer)
{
    sh_ws_options_t o = default_opts();
    o.output_limit = 64 * 1024;
    /* Small kernel buffers so the queue, not the kernel, holds the
     * backlog. The peer never reads. */
    start_unread(&o, true);
    char chunk[4096];
    memset(chunk, 'z', sizeof(chunk));
    int rc = 0, sent = 0;
    for (int i = 0; i < 1000 && rc == 0; i++) {
        rc = send_msg(sh_msg_new(chunk, sizeof(chunk), true));
        sent++;
        if (rc == 0)
            th_run_once(F.loop);
    }
    ck_assert_int_eq(rc, -ENOBUFS);
    ck_assert_int_gt(sent, 16);    /* the kernel took some before the queue grew */
    ck_assert_int_eq(F.closes, 0); /* not from inside the send */
    ck_assert_uint_eq(F.stats.slow_dropped, 1);
    ck_assert_int_eq(send_msg(sh_msg_new("x", 1, false)), -EPIPE);
    ck_assert(wait_closed());
    ck_assert_int_eq(F.closes, 1);
    ck_assert_uint_eq(F.close_code, SH_WS_CLOSE_POLICY);
    ck_assert_str_eq(F.close_reason, "output queue limit");
    ck_assert_uint_eq(F.stats.slow_dropped, 1);
    close(F.fds[1]);
    sh_loop_run_deferred(F.loop);
    sh_loop_free(F.loop);
}
END_TEST

/* Frames leave in the order sent whatever the queue holds them in: inside
 * the connection (two), a pooled ring, rings from malloc as it doubles,
 * with partial writes leaving its head anywhere (small kernel buffers and
 * a peer that reads only at the end). */
START_TEST(test_queue_keeps_order_as_it_grows)
{
    /* More than the kernel holds for a peer not reading yet. */
    enum { FRAMES = 2000, SIZE = 300 };
    sh_ws_options_t o = default_opts();
    start_unread(&o, false);
    char body[SIZE];
    size_t most_queued = 0;
    for (int i = 0; i < FRAMES; i++) {
        memset(body, 'a' + i % 26, sizeof(body));
        int n = snprintf(body, sizeof(body), "frame %d ", i);
        body[n] = '.';
        ck_assert_int_eq(send_msg(sh_msg_new(body, sizeof(body), false)), 0);
        if (sh_ws_conn_queued(F.ws) > most_queued)
            most_queued = sh_ws_conn_queued(F.ws);
        if (i % 3 == 2)
            th_run_once(F.loop); /* a flush, often partial */
    }
    /* More than a pooled ring's 32 frames waited at once. */
    ck_assert_uint_gt(most_queued, 40 * (SIZE + 4));
    th_conn_adopt(&F.peer, F.loop, F.fds[1]); /* the peer reads from now on */
    sh_buf_t payload = SH_BUF_INIT;
    for (int i = 0; i < FRAMES; i++) {
        ck_assert_uint_eq(read_frame(&payload), SH_WS_OP_TEXT);
        char want[32];
        int n = snprintf(want, sizeof(want), "frame %d ", i);
        ck_assert_uint_eq(sh_buf_avail(&payload), SIZE);
        ck_assert_msg(!memcmp(sh_buf_peek(&payload), want, (size_t)n), "frame %d: got '%.12s'", i,
                      sh_buf_peek(&payload));
        sh_buf_reset(&payload);
    }
    sh_buf_release(&payload);
    ck_assert_uint_eq(sh_ws_conn_queued(F.ws), 0);
    ck_assert_uint_eq(F.stats.frames_out, FRAMES);
    finish();
}
END_TEST

/* The two frames a connection holds inside itself wrap around: A out, B
 * half out, C in A's place; D then moves them to a ring, B first. */
START_TEST(test_queue_wraps_inside_the_connection)
{
    enum { BIG = 1024 * 1024 };
    sh_ws_options_t o = default_opts();
    o.output_limit = 8 * BIG;
    start_unread(&o, false); /* B cannot leave whole */
    char *big = malloc(BIG);
    memset(big, 'B', BIG);
    ck_assert_int_eq(send_msg(sh_msg_new("A", 1, false)), 0);
    ck_assert_int_eq(send_msg(sh_msg_new(big, BIG, false)), 0);
    th_run_once(F.loop); /* A leaves whole, B in part: the kernel is full */
    size_t b_left = sh_ws_conn_queued(F.ws);
    ck_assert_uint_gt(b_left, 0);
    ck_assert_uint_lt(b_left, BIG);
    ck_assert_int_eq(send_msg(sh_msg_new("C", 1, false)), 0);
    ck_assert_int_eq(send_msg(sh_msg_new("D", 1, false)), 0);
    ck_assert_uint_eq(sh_ws_conn_queued(F.ws), b_left + 3 + 3);
    th_conn_adopt(&F.peer, F.loop, F.fds[1]);
    sh_buf_t payload = SH_BUF_INIT;
    static const char *const want[] = {"A", NULL, "C", "D"};
    for (int i = 0; i < 4; i++) {
        uint8_t op = 0xff;
        ck_assert_msg(th_ws_read(&F.peer, &op, &payload, TH_WAIT_MS), "frame %d: none", i);
        ck_assert_uint_eq(op, SH_WS_OP_TEXT);
        if (want[i])
            ck_assert_str_eq(sh_buf_peek(&payload), want[i]);
        else
            ck_assert(sh_buf_avail(&payload) == BIG && !memcmp(sh_buf_peek(&payload), big, BIG));
        sh_buf_reset(&payload);
    }
    sh_buf_release(&payload);
    free(big);
    ck_assert_uint_eq(sh_ws_conn_queued(F.ws), 0);
    finish();
}
END_TEST

/* A frame alone goes by send() rather than sendmsg(): one the kernel
 * takes in parts goes on from where each write stopped. */
START_TEST(test_lone_frame_leaves_in_parts)
{
    enum { BIG = 1024 * 1024 };
    sh_ws_options_t o = default_opts();
    o.output_limit = 2 * BIG;
    start_unread(&o, false);
    char *big = malloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        big[i] = (char)('a' + (i * 7 + i / 4096) % 26);
    ck_assert_int_eq(send_msg(sh_msg_new(big, BIG, false)), 0);
    th_run_once(F.loop); /* the kernel takes a part */
    size_t left = sh_ws_conn_queued(F.ws);
    ck_assert_uint_gt(left, 0);
    ck_assert_uint_lt(left, BIG);
    th_conn_adopt(&F.peer, F.loop, F.fds[1]);
    sh_buf_t payload = SH_BUF_INIT;
    uint8_t op = 0xff;
    ck_assert(th_ws_read(&F.peer, &op, &payload, TH_WAIT_MS));
    ck_assert_uint_eq(op, SH_WS_OP_TEXT);
    ck_assert(sh_buf_avail(&payload) == BIG && !memcmp(sh_buf_peek(&payload), big, BIG));
    sh_buf_release(&payload);
    free(big);
    ck_assert_uint_eq(sh_ws_conn_queued(F.ws), 0);
    ck_assert_uint_eq(F.stats.frames_out, 1);
    finish();
}
END_TEST

START_TEST(test_destroy_gives_no_callback)
{
    sh_buf_t b = SH_BUF_INIT;
    th_ws_encode(&b, SH_WS_OP_TEXT, true, "pending", 7, true);
    sh_ws_options_t o = default_opts();
    /* Input pending in `extra` and in the socket, output queued: destroy
     * drops all of it without a callback. */
    start(&o, sh_buf_peek(&b), sh_buf_avail(&b));
    th_conn_write(&F.peer, sh_buf_peek(&b), sh_buf_avail(&b));
    sh_buf_release(&b);
    ck_assert_int_eq(send_msg(sh_msg_new("queued", 6, false)), 0);
    F.in_call = true;
    sh_ws_conn_destroy(F.ws);
    F.in_call = false;
    F.ws = NULL;
    ck_assert(th_conn_wait_eof(&F.peer, TH_WAIT_MS));
    th_run_for(F.loop, 20);
    ck_assert_int_eq(F.messages, 0);
    ck_assert_int_eq(F.closes, 0);
    ck_assert_uint_eq(sh_buf_avail(&F.peer.in), 0); /* no frame, no close frame */
    finish();
}
END_TEST

static int other_messages;
static void on_other_message(sh_ws_conn_t *ws, const char *data, size_t len, bool binary,
                             void *owner)
{
    ck_assert_ptr_eq(owner, &other_messages);
    other_messages++;
}

static bool got_other(void *arg)
{
    return other_messages >= *(int *)arg;
}

START_TEST(test_set_owner_moves_callbacks)
{
    static const sh_ws_handler_t other = {.on_message = on_other_message, .on_close = on_close};
    sh_ws_options_t o = default_opts();
    start(&o, NULL, 0);
    peer_frame(SH_WS_OP_TEXT, true, "one", 3);
    wait_messages(1);
    other_messages = 0;
    sh_ws_conn_set_owner(F.ws, &other, &other_messages);
    peer_frame(SH_WS_OP_TEXT, true, "two", 3);
    peer_frame(SH_WS_OP_TEXT, true, "three", 5);
    int want = 2;
    ck_assert(th_run_until(F.loop, got_other, &want, TH_WAIT_MS));
    ck_assert_int_eq(other_messages, 2);
    ck_assert_int_eq(F.messages, 1);
    finish();
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("ws");
    TCase *tc = tcase_create("ws");
    tcase_set_timeout(tc, 8);
    tcase_add_test(tc, test_text_and_binary_reach_on_message);
    tcase_add_test(tc, test_partial_frame_survives_other_connections_reads);
    tcase_add_test(tc, test_extra_bytes_come_first);
    tcase_add_test(tc, test_extra_alone_without_socket_bytes);
    tcase_add_test(tc, test_sends_in_one_iteration_leave_in_one_write);
    tcase_add_test(tc, test_ping_gets_pong);
    tcase_add_test(tc, test_peer_close_is_echoed);
    tcase_add_test(tc, test_peer_close_without_code);
    tcase_add_test(tc, test_owner_close_handshake);
    tcase_add_test(tc, test_owner_close_linger_expires);
    tcase_add_test(tc, test_peer_vanishes);
    tcase_add_loop_test(tc, test_protocol_errors_close_with_code, 0,
                        (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
    tcase_add_test(tc, test_output_limit_drops_slow_peer);
    tcase_add_test(tc, test_queue_keeps_order_as_it_grows);
    tcase_add_test(tc, test_queue_wraps_inside_the_connection);
    tcase_add_test(tc, test_lone_frame_leaves_in_parts);
    tcase_add_test(tc, test_destroy_gives_no_callback);
    tcase_add_test(tc, test_set_owner_moves_callbacks);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
