/* redis.h — a Redis client on our loop, for pools, locks and pub/sub.
 *
 * A client holds two hiredis async connections (adapter.h): one for
 * commands, and one for subscriptions, made on the first subscribe (a
 * subscribed connection can run nothing else). Each connects on its own,
 * runs AUTH / SELECT / CLIENT SETNAME before anything else is sent (a PING
 * when there is nothing to set up), and when lost reconnects after an
 * exponential backoff with full jitter:
 * delay = uniform[0, min(reconnect_max, reconnect_min * 2^failures)].
 *
 * Invariants:
 *  - Loop thread only, and nothing blocks it: host names are looked up on
 *    a helper thread (resolve.h; hiredis 0.14 would call getaddrinfo() on
 *    ours) and hiredis is handed the address. The process must ignore
 *    SIGPIPE (hiredis writes with write(2)).
 *  - "Up" means the command connection is connected and its handshake is
 *    done. While it is not up, every command call returns -ENOTCONN at
 *    once and never calls back: nothing is queued while Redis is away.
 *  - A command call that returns 0 calls back exactly once, later, never
 *    from inside the call: with status 0 and the reply, or -ETIMEDOUT, or
 *    -ECONNRESET (the connection was lost with the command in flight), or
 *    -ECANCELED (sh_redis_free). Replies come back in the order the
 *    commands were made.
 *  - Timeouts are loop timers (hiredis 0.14 has none). A command without a
 *    reply after command_timeout_ms fails with -ETIMEDOUT and the command
 *    connection is dropped and made again: a late reply could not be told
 *    apart from the next one. The other commands in flight get
 *    -ECONNRESET.
 *  - At most max_pending commands are in flight; more get -ENOBUFS, so a
 *    slow Redis bounds memory instead of growing it.
 *  - Subscriptions are remembered by the client and issued again after
 *    every reconnect of the subscriber connection; messages published
 *    while it was down are lost (Redis pub/sub keeps nothing).
 *  - State changes reach on_state from a deferred call, never from inside
 *    a call the owner made, alternating and starting with "up" (the client
 *    starts down). Each "up" is a fresh connection (the owner rewrites
 *    what it keeps in Redis); should three transitions pile up before the
 *    deferred call runs, the pair that cancels out is merged away, so the
 *    owner always ends on the current state.
 *  - Every object that gets callbacks here may be freed from inside them:
 *    sh_redis_free only marks the client when a callback is running, and
 *    the memory goes when the loop returns from it.
 *  - Log lines name host:port (or the socket path), never the password.
 */
#ifndef SH_REDIS_REDIS_H
#define SH_REDIS_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "core/buf.h"
#include "loop/loop.h"

typedef struct sh_redis sh_redis_t;
typedef struct sh_redis_script sh_redis_script_t;

/* A command's outcome. status 0: reply is Redis' answer — possibly a
 * REDIS_REPLY_ERROR, which the caller checks — borrowed for the duration of
 * the call. status < 0: reply is NULL. */
typedef void (*sh_redis_cb)(int status, const redisReply *reply, void *data);
/* Called on each up/down transition; reason says why ("connected to
 * host:port", "Connection refused", "command timed out after 2000 ms"). */
typedef void (*sh_redis_state_cb)(sh_redis_t *r, bool up, const char *reason, void *data);
/* One pub/sub message. pattern is NULL for a channel subscription; payload
 * is binary (len bytes) and borrowed for the duration of the call. own,
 * when not NULL, is a message (core/msg.h) whose data is the payload,
 * offered to the one subscription the message is for (NULL when more than
 * one match, or for a short payload): the callback may take a reference
 * and rewrite the bytes (sh_msg_reframe), since nothing reads the payload
 * after it returns. */
struct sh_msg;
typedef void (*sh_redis_message_cb)(const char *channel, const char *pattern, const char *payload,
                                    size_t len, struct sh_msg *own, void *data);

typedef struct sh_redis_options {
    const char *url;             /* see url.h; required */
    unsigned command_timeout_ms; /* 0: 2000 */
    unsigned connect_timeout_ms; /* name lookup + connect + handshake; 0: 2000 */
    unsigned reconnect_min_ms;   /* backoff base; 0: 100 */
    unsigned reconnect_max_ms;   /* backoff cap; 0: 5000 */
    unsigned max_pending;        /* commands in flight; 0: 10000 */
    /* CLIENT SETNAME on each connection ("NAME" and "NAME:sub"); NULL:
     * none. Printable ASCII without spaces, at most 64 bytes. */
    const char *client_name;
    sh_redis_state_cb on_state; /* may be NULL */
    void *state_data;
} sh_redis_options_t;

typedef struct sh_redis_stats {
    uint64_t commands;   /* accepted command calls (scripts, publishes too) */
    uint64_t errors;     /* completed with an error reply or a failure status */
    uint64_t timeouts;   /* commands that failed with -ETIMEDOUT */
    uint64_t reconnects; /* connections made again after a loss (either one) */
    uint64_t rejected;   /* calls refused with -ENOTCONN or -ENOBUFS */
    uint64_t noscript;   /* EVALSHA answered NOSCRIPT and resent as EVAL */
    uint64_t messages;   /* pub/sub messages handed to subscribers */
    uint64_t pending;    /* commands in flight now */
} sh_redis_stats_t;

/* Validates the options (the URL strictly, see url.h) and starts connecting;
 * the client is down until the command connection's handshake is done.
 * Returns NULL with a reason appended to err when the options are invalid.
 * Redis being unreachable is not an error: the client keeps retrying. */
sh_redis_t *sh_redis_new(sh_loop_t *loop, const sh_redis_options_t *opts, sh_buf_t *err);
/* Calls every pending command callback with -ECANCELED (before returning),
 * closes the connections and drops the subscriptions; no callback of any
 * kind runs after it returns. Safe from inside any of the client's
 * callbacks. NULL is a no-op. */
void sh_redis_free(sh_redis_t *r);

/* Sends one command (binary-safe arguments; argvlen NULL: strlen). cb may
 * be NULL (no callback). Returns 0, -ENOTCONN (not up), -ENOBUFS (too many
 * in flight) or -EINVAL (argc < 1). */
int sh_redis_command_argv(sh_redis_t *r, sh_redis_cb cb, void *data, int argc, const char **argv,
                          const size_t *argvlen);
/* The same with hiredis' format: "%s" a C string, "%b" a pointer and a
 * size_t length, each substitution one argument. -EINVAL on a bad format. */
int sh_redis_command(sh_redis_t *r, sh_redis_cb cb, void *data, const char *fmt, ...);
/* PUBLISH channel payload on the command connection; the reply is the
 * number of receivers. Same contract as sh_redis_command_argv. */
int sh_redis_publish(sh_redis_t *r, const char *channel, const void *payload, size_t len,
                     sh_redis_cb cb, void *data);

/* A Lua script and its SHA-1, run with EVALSHA. Scripts are refcounted:
 * sh_redis_script_free drops the caller's reference and a command in
 * flight keeps its own, so freeing one while it runs is safe. */
sh_redis_script_t *sh_redis_script_new(const char *lua);
void sh_redis_script_free(sh_redis_script_t *s);
/* The 40 lowercase hex digits of the SHA-1 of the source. */
const char *sh_redis_script_sha(const sh_redis_script_t *s);
/* EVALSHA sha numkeys argv...: the first numkeys entries of argv are keys,
 * the rest arguments. The script's first call on each new connection is
 * sent as EVAL instead, which loads it, so a restarted Redis keeps the
 * order of commands. When Redis still answers NOSCRIPT (SCRIPT FLUSH on a
 * live connection) the same call is resent once as EVAL, behind the
 * commands made meanwhile, which then run first; the callback sees only
 * the final answer, and that retry gets a fresh timeout. Same contract as
 * sh_redis_command_argv, plus -EINVAL when numkeys is not within
 * 0..argc. */
int sh_redis_eval(sh_redis_t *r, sh_redis_script_t *s, sh_redis_cb cb, void *data, int numkeys,
                  int argc, const char **argv, const size_t *argvlen);

/* Subscribes cb to a channel (SUBSCRIBE) or a glob pattern (PSUBSCRIBE).
 * The first call creates the subscriber connection. Works while Redis is
 * away: the subscription is remembered and issued when it connects.
 * Several callbacks may share a name; each gets every message. Returns 0,
 * -EEXIST (this cb and data already subscribed to name) or -EINVAL. */
int sh_redis_subscribe(sh_redis_t *r, const char *channel, sh_redis_message_cb cb, void *data);
int sh_redis_psubscribe(sh_redis_t *r, const char *pattern, sh_redis_message_cb cb, void *data);
/* Removes one subscription (UNSUBSCRIBE when it was the name's last);
 * safe from inside a message callback. Returns 0 or -ENOENT. */
int sh_redis_unsubscribe(sh_redis_t *r, const char *channel, sh_redis_message_cb cb, void *data);
int sh_redis_punsubscribe(sh_redis_t *r, const char *pattern, sh_redis_message_cb cb, void *data);

/* Whether commands are accepted now. */
bool sh_redis_up(const sh_redis_t *r);
/* Whether every subscription is confirmed by the server (true with none). */
bool sh_redis_subscribed(const sh_redis_t *r);
/* Why the client was last down or failing ("connecting to host:port"
 * before the first attempt ends); kept after recovery. Never NULL. */
const char *sh_redis_last_error(const sh_redis_t *r);
void sh_redis_stats(const sh_redis_t *r, sh_redis_stats_t *out);

#endif
