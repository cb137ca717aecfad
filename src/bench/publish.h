/* bench/publish.h — the publisher: bench messages (payload.h) at a fixed
 * rate, each one HTTP POST, over --publishers keep-alive connections to
 * the emit port, one request in flight on each. Publisher k (connection
 * k) numbers its messages from 0 and stamps each with the time just
 * before its request is written. Runs in the parent's loop.
 *
 * Bodies:
 *   --emit-api emit         POST /api/v1/emit
 *                           {"event":"bench","data":MSG,"to":{"room":ROOM}}
 *   --emit-api chat-events  POST /api/v1/chat-events {"user_id":USER,
 *                           "chat_id":"bench","message_id":"bench","data":MSG}
 *   --protocol raw-ws       POST --pub-path, MSG itself as the body
 * with "Authorization: Bearer --api-key" when a key is given.
 *
 * With --redis each message is instead one PUBLISH to --redis-channel of
 * python-socketio's pub/sub emit, {"method":"emit","event":E,"data":D,
 * "namespace":"/","room":R,"skip_sid":null,"callback":null,"host_id":..}
 * in JSON (what Open WebUI's backend publishes when it runs a fleet), on
 * one connection to Redis with any number of commands in flight: Redis
 * keeps their order, and each reply must count at least one subscriber.
 *
 * Message i of a window is due at start + i / rate. When every connection
 * waits for an answer the message waits too (the lag is measured): the
 * offered rate is then not met, which the scenario sees in the delivery
 * rate.
 */
#ifndef SB_PUBLISH_H
#define SB_PUBLISH_H

#include <stdbool.h>
#include <stdint.h>

#include "bench/cli.h"
#include "bench/loop.h"

typedef struct sb_pub sb_pub_t;

typedef struct sb_pub_stats {
    uint64_t sent;       /* requests written in the window */
    uint64_t answered;   /* 2xx answers */
    uint64_t errors;     /* other answers, lost connections */
    uint64_t max_lag_ns; /* worst delay of a message past its due time */
    uint64_t t_start;    /* the window's start */
    uint64_t t_last;     /* the last request written */
    char first_error[200];
} sb_pub_stats_t;

/* Writes the body of message seq of publisher pub, stamped t_ns, to out
 * (sb_payload_format makes the message itself). */
typedef void (*sb_pub_body_fn)(void *arg, sb_buf_t *out, uint32_t pub, uint64_t seq, uint64_t t_ns);

sb_pub_t *sb_pub_new(sb_loop_t *l, const sb_opts_t *o);
/* True when messages go to Redis (--redis): bodies are then pub/sub
 * emits, made with the two calls below. */
bool sb_pub_via_redis(const sb_pub_t *p);
/* A pub/sub emit of event: sb_pub_emit_head, then the data (JSON), then
 * sb_pub_emit_tail with the room. */
void sb_pub_emit_head(sb_buf_t *out, const char *event);
void sb_pub_emit_tail(sb_buf_t *out, const char *room_fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Posts to target with bodies from fn instead of the ones above (a
 * scenario's own API calls: chat-events to many users...). Before
 * sb_pub_start; target and arg are borrowed for the publisher's life. */
void sb_pub_set_body(sb_pub_t *p, const char *target, sb_pub_body_fn fn, void *arg);
void sb_pub_free(sb_pub_t *p);
/* Opens the connections (sb_pub_is_open tells when they are up). */
void sb_pub_open(sb_pub_t *p);
/* For sb_coord_run_until: every connection is up, or one failed. */
bool sb_pub_is_open(void *p);
/* Each publisher's next sequence number (--publishers entries): the
 * first of the next window. */
void sb_pub_bases(const sb_pub_t *p, uint32_t *base);
/* Starts a window of count messages at rate per second, from now. */
void sb_pub_start(sb_pub_t *p, double rate, uint64_t count);
/* Pull mode, for bodies whose number and timing are the scenario's (chat:
 * every token due in a tick, several per request): whenever connection
 * conn is idle the publisher calls fn, which either writes one body to
 * out (stamping it with now) and returns 1, or returns 0 when nothing is
 * due for conn yet (*wake: when to ask again; UINT64_MAX: after the next
 * answer), or -1 when conn has nothing more to send in this window. So
 * what one connection carries stays in order. Posts to target. On Redis
 * the connection is never busy: fn is called again at once after each
 * body, and what it gave in one go leaves in one write. */
typedef int (*sb_pub_pull_fn)(void *arg, unsigned conn, sb_buf_t *out, uint64_t now,
                              uint64_t *wake);
/* Starts a pull window from now (replaces the rate window's pacing); fn
 * and arg are borrowed until sb_pub_is_done. */
void sb_pub_start_pull(sb_pub_t *p, const char *target, sb_pub_pull_fn fn, void *arg);
/* For sb_coord_run_until: every message of the window was written and
 * answered (or failed); in pull mode, every connection said -1 (or could
 * not connect) and has its answer. */
bool sb_pub_is_done(void *p);
/* The window's figures; count receives how many each publisher sent. */
void sb_pub_window(const sb_pub_t *p, sb_pub_stats_t *st, uint32_t *count);

#endif
