/* redis.c — the client of redis.h: two connections, their handshakes and
 * reconnects, commands with loop-timer timeouts, scripts, pub/sub.
 *
 * Ownership of a command record (cmd_t): from the moment hiredis accepts
 * the command until hiredis calls on_reply for it — with the reply, or with
 * NULL when the context is freed — the record lives in its connection's
 * `pending` list, in send order, which is reply order. The user callback
 * may run earlier (timeout, cancel: `done` is set); the record itself is
 * freed only in on_reply, so hiredis never holds a dangling privdata.
 *
 * A connection's one timer means, by state: OFF — reconnect now; HANDSHAKE
 * — the connect deadline; READY — the deadline of the oldest command
 * (checked lazily: replies come in order, so only the head can be the
 * first to expire, and the timer is re-armed for the new head when it
 * fires early instead of on every reply).
 */
#include "redis/redis.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/async.h>
#include <openssl/evp.h>

#include "core/alloc.h"
#include "core/list.h"
#include "core/log.h"
#include "core/random.h"
#include "redis/adapter.h"
#include "redis/reply.h"
#include "redis/resolve.h"
#include "redis/url.h"

#define DEFAULT_COMMAND_TIMEOUT_MS 2000
#define DEFAULT_CONNECT_TIMEOUT_MS 2000
#define DEFAULT_RECONNECT_MIN_MS   100
#define DEFAULT_RECONNECT_MAX_MS   5000
#define DEFAULT_MAX_PENDING        10000
#define CLIENT_NAME_MAX            64
#define REASON_MAX                 256

typedef enum { CONN_CMD, CONN_SUB } conn_kind_t;

typedef enum {
    CONN_OFF,       /* no context; the timer reconnects */
    CONN_RESOLVING, /* looking the host name up (resolve.h) */
    CONN_HANDSHAKE, /* connecting, or AUTH/SELECT/SETNAME in flight */
    CONN_READY,     /* commands (or subscriptions) go out */
    CONN_BROKEN,    /* being freed: hiredis is failing the callbacks */
} conn_state_t;

typedef struct conn {
    sh_redis_t *r;
    conn_kind_t kind;
    conn_state_t state;
    bool wanted; /* the subscriber connection exists after the first subscribe */
    bool was_ready;
    bool ever_ready;
    bool dropping; /* redisAsyncFree called on the current context */
    sh_redis_io_t rio;
    sh_resolve_t *resolving;
    char ip[64];       /* the address the host name gave, for logs */
    sh_list_t pending; /* cmd_t in send order */
    size_t npending;
    sh_timer_t timer;
    /* Names this connection's script cache: a new value each time it
     * becomes ready (random start, so scripts shared between clients never
     * mistake one client's connection for another's). */
    uint64_t epoch;
    unsigned failures;       /* attempts in a row that did not reach READY */
    unsigned handshake_left; /* handshake replies still due */
    unsigned unconfirmed;    /* subscriber: (un)subscribe confirmations due */
    uint64_t confirm_due;
    char drop_reason[REASON_MAX]; /* why we dropped the context ourselves */
    char last_fail[REASON_MAX];   /* a failure repeated is logged at debug */
} conn_t;

typedef struct cmd {
    sh_list_t node;
    conn_t *conn;
    sh_redis_cb cb;
    void *data;
    uint64_t deadline;
    bool done;     /* the callback ran (timeout, cancel) */
    bool internal; /* a handshake command: no user callback */
    const char *label;
    /* EVALSHA: what is needed to resend it as EVAL. */
    sh_redis_script_t *script;
    int numkeys;
    int argc;
    char **argv;
    size_t *argvlen;
} cmd_t;

typedef struct sub {
    sh_list_t node;
    bool pattern;
    bool dead; /* removed during a dispatch; unlinked after it */
    uint64_t gen;
    char *name;
    size_t namelen;
    sh_redis_message_cb cb;
    void *data;
} sub_t;

struct sh_redis_script {
    unsigned refs;
    char *source;
    char sha[41];
    uint64_t loaded_epoch; /* the connection epoch it was last sent on in full */
};

typedef struct state_event {
    bool up;
    char reason[REASON_MAX];
} state_event_t;

struct sh_redis {
    sh_loop_t *loop;
    sh_redis_url_t url;
    char *address; /* host:port for log lines */
    char *client_name;
    unsigned command_timeout_ms;
    unsigned connect_timeout_ms;
    unsigned reconnect_min_ms;
    unsigned reconnect_max_ms;
    size_t max_pending;
    sh_redis_state_cb on_state;
    void *state_data;

    conn_t cmd, sub;
    bool up;
    /* Transitions not yet reported; two suffice because an (up, down) or
     * (down, up) pair followed by a third event collapses into it. */
    state_event_t events[2];
    unsigned nevents;
    bool reported_up;
    sh_defer_t state_defer;

    sh_list_t subs; /* sub_t */
    uint64_t sub_gen;
    unsigned dispatching;

    unsigned depth; /* our callbacks on the stack; the memory waits for 0 */
    bool freeing;
    char last_error[REASON_MAX];
    sh_redis_stats_t stats;
};

static void destroy(sh_redis_t *r);
static void conn_start(conn_t *c);
static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);
static void on_sub_reply(redisAsyncContext *ac, void *reply, void *privdata);

static const char *conn_name(const conn_t *c)
{
    return c->kind == CONN_CMD ? "commands" : "subscriber";
}

/* ---- re-entrancy: the memory is released when no callback of ours runs ---- */

static void enter(sh_redis_t *r)
{
    r->depth++;
}

static void leave(sh_redis_t *r)
{
    if (--r->depth == 0 && r->freeing)
        destroy(r);
}

/* ---- state reports ---- */

static void on_state_defer(sh_loop_t *loop, sh_defer_t *d)
{
    sh_redis_t *r = d->data;
    enter(r);
    while (r->nevents > 0 && !r->freeing) {
        state_event_t ev = r->events[0];
        r->events[0] = r->events[1];
        r->nevents--;
        r->reported_up = ev.up;
        if (r->on_state)
            r->on_state(r, ev.up, ev.reason, r->state_data);
    }
    leave(r);
}

static void queue_state(sh_redis_t *r, bool up, const char *reason)
{
    if (r->freeing)
        return;
    bool last = r->nevents ? r->events[r->nevents - 1].up : r->reported_up;
    if (last == up)
        return;
    if (r->nevents == 2)
        r->nevents = 0; /* the pending pair cancels out; the owner sees the net change */
    state_event_t *ev = &r->events[r->nevents++];
    ev->up = up;
    snprintf(ev->reason, sizeof(ev->reason), "%s", reason);
    sh_defer_schedule(r->loop, &r->state_defer, on_state_defer, r);
}

/* ---- command records ---- */

static void script_unref(sh_redis_script_t *s)
{
    if (s && --s->refs == 0) {
        free(s->source);
        free(s);
    }
}

static cmd_t *cmd_new(conn_t *c, sh_redis_cb cb, void *data)
{
    cmd_t *cmd = sh_new0(cmd_t);
    sh_list_init(&cmd->node);
    cmd->conn = c;
    cmd->cb = cb;
    cmd->data = data;
    return cmd;
}

static void cmd_free(cmd_t *cmd)
{
    script_unref(cmd->script);
    free(cmd->argv); /* argvlen and the bytes share the block */
    free(cmd);
}

/* Runs the user callback once. */
static void cmd_complete(cmd_t *cmd, int status, const redisReply *reply)
{
    if (cmd->done)
        return;
    cmd->done = true;
    if (cmd->internal)
        return;
    sh_redis_t *r = cmd->conn->r;
    if (status < 0 || reply->type == REDIS_REPLY_ERROR)
        r->stats.errors++;
    if (cmd->cb)
        cmd->cb(status, reply, cmd->data);
}

/* Puts an accepted command in line for its reply. */
static void cmd_track(cmd_t *cmd, uint64_t deadline)
{
    conn_t *c = cmd->conn;
    cmd->deadline = deadline;
    sh_list_insert_tail(&c->pending, &cmd->node);
    c->npending++;
}

static void on_conn_timer(sh_loop_t *loop, sh_timer_t *t);

static void arm_deadline(conn_t *c, uint64_t due)
{
    if (!sh_timer_active(&c->timer))
        sh_timer_start_at(c->r->loop, &c->timer, due, on_conn_timer, c);
}

/* ---- connection life ---- */

/* The context is going away (first sign: a NULL reply, the cleanup hook or
 * our own drop). Commands are refused from here on. */
static void conn_broken(conn_t *c)
{
    if (c->state == CONN_BROKEN || c->state == CONN_OFF || c->state == CONN_RESOLVING)
        return;
    c->was_ready = c->state == CONN_READY;
    c->state = CONN_BROKEN;
    if (c->kind == CONN_CMD)
        c->r->up = false;
}

/* Drops a live context ourselves (timeout, refused handshake, free), the
 * reason already in drop_reason. hiredis frees it now, or right after the
 * reply callback that is running; either way the pending commands get NULL
 * replies and the cleanup hook runs. */
static void conn_drop(conn_t *c)
{
    if (!c->rio.ac || c->dropping)
        return;
    c->dropping = true;
    conn_broken(c);
    redisAsyncFree(c->rio.ac);
}

static void conn_dropf(conn_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_dropf(conn_t *c, const char *fmt, ...)
{
    if (!c->rio.ac || c->dropping)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->drop_reason, sizeof(c->drop_reason), fmt, ap);
    va_end(ap);
    conn_drop(c);
}

static unsigned backoff_ms(conn_t *c)
{
    sh_redis_t *r = c->r;
    uint64_t cap = r->reconnect_min_ms;
    for (unsigned i = 0; i < c->failures && cap < r->reconnect_max_ms; i++)
        cap *= 2;
    if (cap > r->reconnect_max_ms)
        cap = r->reconnect_max_ms;
    uint32_t rnd;
    sh_random_bytes(&rnd, sizeof(rnd));
    return (unsigned)(rnd % (cap + 1));
}

/* The context is gone (or never came): report, log, schedule a retry. */
static void conn_down(conn_t *c, const char *reason)
{
    sh_redis_t *r = c->r;
    bool was_ready = c->was_ready;
    c->state = CONN_OFF;
    c->was_ready = false;
    c->handshake_left = 0;
    c->unconfirmed = 0;
    c->drop_reason[0] = '\0';
    c->dropping = false;
    sh_resolve_cancel(c->resolving);
    c->resolving = NULL;
    sh_timer_stop(r->loop, &c->timer);
    if (r->freeing)
        return;
    if (c->kind == CONN_CMD)
        snprintf(r->last_error, sizeof(r->last_error), "%s", reason);
    else
        snprintf(r->last_error, sizeof(r->last_error), "subscriber: %s", reason);
    unsigned delay = backoff_ms(c);
    if (was_ready) {
        sh_warn("redis: lost connection to %s (%s): %s; reconnecting in %u ms", r->address,
                conn_name(c), reason, delay);
        if (c->kind == CONN_CMD)
            queue_state(r, false, reason);
    } else if (strcmp(reason, c->last_fail) != 0) {
        sh_warn("redis: cannot connect to %s (%s): %s; retrying in %u ms", r->address, conn_name(c),
                reason, delay);
    } else {
        sh_debug("redis: cannot connect to %s (%s): %s; retrying in %u ms", r->address,
                 conn_name(c), reason, delay);
    }
    snprintf(c->last_fail, sizeof(c->last_fail), "%s", reason);
    if (!was_ready)
        c->failures++;
    sh_timer_start(r->loop, &c->timer, delay, on_conn_timer, c);
}

/* hiredis' cleanup hook: the context is being freed. Every pending command
 * has had its NULL reply by now. */
static void conn_on_cleanup(sh_redis_io_t *rio, const redisAsyncContext *ac)
{
    conn_t *c = rio->data;
    char reason[REASON_MAX];
    conn_broken(c);
    if (c->drop_reason[0])
        snprintf(reason, sizeof(reason), "%s", c->drop_reason);
    else if (ac->c.err)
        snprintf(reason, sizeof(reason), "%s", ac->c.errstr);
    else
        snprintf(reason, sizeof(reason), "connection closed");
    conn_down(c, reason);
}

static void conn_on_dispatch(sh_redis_io_t *rio, bool entering)
{
    conn_t *c = rio->data;
    if (entering)
        enter(c->r);
    else
        leave(c->r);
}

static void send_internal(conn_t *c, const char *label, int argc, const char **argv)
{
    cmd_t *cmd = cmd_new(c, NULL, NULL);
    cmd->internal = true;
    cmd->label = label;
    if (redisAsyncCommandArgv(c->rio.ac, on_reply, cmd, argc, argv, NULL) != REDIS_OK) {
        cmd_free(cmd);
        return; /* only on a context already failing: its cleanup follows */
    }
    cmd_track(cmd, c->timer.due);
    c->handshake_left++;
}

static void send_handshake(conn_t *c)
{
    sh_redis_t *r = c->r;
    if (r->url.password) {
        if (r->url.user) {
            const char *argv[] = {"AUTH", r->url.user, r->url.password};
            send_internal(c, "AUTH", 3, argv);
        } else {
            const char *argv[] = {"AUTH", r->url.password};
            send_internal(c, "AUTH", 2, argv);
        }
    }
    if (r->url.db != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", r->url.db);
        const char *argv[] = {"SELECT", db};
        send_internal(c, "SELECT", 2, argv);
    }
    if (r->client_name) {
        char name[CLIENT_NAME_MAX + 8];
        snprintf(name, sizeof(name), "%s%s", r->client_name, c->kind == CONN_SUB ? ":sub" : "");
        const char *argv[] = {"CLIENT", "SETNAME", name};
        send_internal(c, "CLIENT SETNAME", 3, argv);
    }
    /* With nothing to set up, a PING: "up" means Redis answered, not just
     * that a socket connected (a loading Redis answers -LOADING). */
    if (c->handshake_left == 0) {
        const char *argv[] = {"PING"};
        send_internal(c, "PING", 1, argv);
    }
}

static void send_sub(conn_t *c, bool pattern, const char *name, size_t namelen, bool subscribe)
{
    const char *verb = pattern ? (subscribe ? "PSUBSCRIBE" : "PUNSUBSCRIBE")
                               : (subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE");
    const char *argv[] = {verb, name};
    size_t argvlen[] = {strlen(verb), namelen};
    /* The reply goes to on_sub_reply through hiredis' channel table. */
    if (redisAsyncCommandArgv(c->rio.ac, on_sub_reply, c, 2, argv, argvlen) != REDIS_OK) {
        conn_dropf(c, "cannot send %s", verb);
        return;
    }
    if (c->unconfirmed++ == 0) {
        c->confirm_due = sh_loop_now(c->r->loop) + c->r->command_timeout_ms;
        arm_deadline(c, c->confirm_due);
    }
}

static bool sub_same(const sub_t *s, bool pattern, const char *name, size_t namelen)
{
    return !s->dead && s->pattern == pattern && s->namelen == namelen &&
           memcmp(s->name, name, namelen) == 0;
}

static void resubscribe(conn_t *c)
{
    sh_redis_t *r = c->r;
    sh_list_t *pos, *tmp;
    sh_list_foreach_safe (pos, tmp, &r->subs) {
        sub_t *s = sh_container_of(pos, sub_t, node);
        if (s->dead)
            continue;
        /* One command per distinct name: the first live entry sends it. */
        bool first = true;
        for (sh_list_t *p = r->subs.next; p != pos; p = p->next)
            if (sub_same(sh_container_of(p, sub_t, node), s->pattern, s->name, s->namelen))
                first = false;
        if (first)
            send_sub(c, s->pattern, s->name, s->namelen, true);
        if (c->state != CONN_READY)
            return;
    }
}

static void conn_ready(conn_t *c)
{
    sh_redis_t *r = c->r;
    c->state = CONN_READY;
    if (++c->epoch == 0)
        c->epoch = 1; /* 0 is a new script's "never sent" */
    c->failures = 0;
    c->last_fail[0] = '\0';
    sh_timer_stop(r->loop, &c->timer);
    if (c->ever_ready)
        r->stats.reconnects++;
    c->ever_ready = true;
    char via[80] = "";
    if (c->ip[0] && r->url.host && strcmp(c->ip, r->url.host) != 0)
        snprintf(via, sizeof(via), " [%s]", c->ip);
    if (r->url.db != 0)
        sh_info("redis: connected to %s%s db %d (%s)", r->address, via, r->url.db, conn_name(c));
    else
        sh_info("redis: connected to %s%s (%s)", r->address, via, conn_name(c));
    if (c->kind == CONN_CMD) {
        char reason[REASON_MAX];
        snprintf(reason, sizeof(reason), "connected to %s", r->address);
        r->up = true;
        queue_state(r, true, reason);
    } else {
        /* From here every reply is a message or a confirmation, read
         * without hiredis' per-message channel lookup (adapter.h). */
        int rc = sh_redis_io_read_replies(&c->rio, on_sub_reply, c);
        if (rc < 0) {
            conn_dropf(c, "cannot read the subscriber's replies: %s", strerror(-rc));
            return;
        }
        resubscribe(c);
    }
}

static void handshake_reply(conn_t *c, cmd_t *cmd, const redisReply *reply)
{
    if (c->state != CONN_HANDSHAKE)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        conn_dropf(c, "%s failed: %s", cmd->label, reply->str ? reply->str : "error");
        return;
    }
    if (--c->handshake_left == 0)
        conn_ready(c);
}

/* Opens the context (to ip, or to the unix socket) and sends the
 * handshake; the connect deadline is already armed. */
static void conn_connect(conn_t *c, const char *ip)
{
    sh_redis_t *r = c->r;
    char reason[REASON_MAX];
    redisAsyncContext *ac =
        ip ? redisAsyncConnect(ip, r->url.port) : redisAsyncConnectUnix(r->url.path);
    if (!ac) {
        snprintf(reason, sizeof(reason), "out of memory");
        goto fail;
    }
    if (ac->err) {
        snprintf(reason, sizeof(reason), "%s", ac->errstr);
        goto fail;
    }
    /* hiredis 0.14 does not set close-on-exec. */
    fcntl(ac->c.fd, F_SETFD, FD_CLOEXEC);
    /* hiredis frees its read buffer whenever it is empty and over 16 KiB,
     * and grows it again on the next burst: a subscriber that takes a tick
     * of tokens (tens of KiB) in one go paid a large malloc and free per
     * read, and each large malloc consolidates the heap's fast bins. Two
     * connections keep theirs (maxbuf 0: never freed). */
    ac->c.reader->maxbuf = 0;
    /* Replies in a block or two, not a malloc per object (reply.h). */
    sh_redis_reply_use(ac->c.reader);
    /* A subscriber may be silent for hours: keepalive finds a dead peer. */
    if (ip && redisEnableKeepAlive(&ac->c) != REDIS_OK) {
        snprintf(reason, sizeof(reason), "%s", ac->c.errstr);
        goto fail;
    }
    if (sh_redis_io_attach(&c->rio, r->loop, ac) < 0) {
        snprintf(reason, sizeof(reason), "cannot attach to the loop");
        goto fail;
    }
    c->rio.on_cleanup = conn_on_cleanup;
    c->rio.on_dispatch = conn_on_dispatch;
    c->rio.data = c;
    c->state = CONN_HANDSHAKE;
    c->drop_reason[0] = '\0';
    c->dropping = false;
    send_handshake(c);
    return;
fail:
    /* Never attached: freeing runs no hook and no callback. */
    if (ac)
        redisAsyncFree(ac);
    c->was_ready = false;
    conn_down(c, reason);
}

static void on_resolved(const char *ip, const char *error, void *data)
{
    conn_t *c = data;
    c->resolving = NULL;
    if (!ip) {
        char reason[REASON_MAX];
        snprintf(reason, sizeof(reason), "cannot resolve %s: %s", c->r->url.host, error);
        c->was_ready = false;
        conn_down(c, reason);
        return;
    }
    snprintf(c->ip, sizeof(c->ip), "%s", ip);
    conn_connect(c, ip);
}

/* One attempt: resolve (off the loop thread), connect, handshake, all
 * within connect_timeout_ms. */
static void conn_start(conn_t *c)
{
    sh_redis_t *r = c->r;
    sh_timer_start(r->loop, &c->timer, r->connect_timeout_ms, on_conn_timer, c);
    if (r->url.path) {
        conn_connect(c, NULL);
        return;
    }
    c->state = CONN_RESOLVING;
    c->resolving = sh_resolve_start(r->loop, r->url.host, on_resolved, c);
    if (!c->resolving) {
        char reason[REASON_MAX];
        snprintf(reason, sizeof(reason), "cannot start a name lookup: %s", strerror(errno));
        c->was_ready = false;
        conn_down(c, reason);
    }
}

/* ---- timers ---- */

static void check_deadlines(conn_t *c)
{
    sh_redis_t *r = c->r;
    uint64_t now = sh_loop_now(r->loop);
    if (c->kind == CONN_SUB) {
        if (c->unconfirmed == 0)
            return;
        if (now < c->confirm_due) {
            arm_deadline(c, c->confirm_due);
            return;
        }
        conn_dropf(c, "subscriptions not confirmed within %u ms", r->command_timeout_ms);
        return;
    }
    if (sh_list_empty(&c->pending))
        return;
    cmd_t *head = sh_container_of(c->pending.next, cmd_t, node);
    if (head->deadline <= now) {
        /* The loop runs due timers before I/O, so a reply that arrived in
         * the same instant may still sit in the socket: read once before
         * calling it a timeout. (This may run callbacks, or lose the
         * context; hence the checks again.) */
        redisAsyncHandleRead(c->rio.ac);
        if (c->state != CONN_READY || sh_list_empty(&c->pending))
            return;
        head = sh_container_of(c->pending.next, cmd_t, node);
    }
    if (head->deadline > now) {
        arm_deadline(c, head->deadline);
        return;
    }
    /* A reply that comes late would be taken for the next command's: the
     * connection goes. It is marked broken before the callback runs, so
     * the owner sees the client down and its new commands get -ENOTCONN. */
    snprintf(c->drop_reason, sizeof(c->drop_reason), "command timed out after %u ms",
             r->command_timeout_ms);
    conn_broken(c);
    r->stats.timeouts++;
    cmd_complete(head, -ETIMEDOUT, NULL);
    conn_drop(c);
}

static void on_conn_timer(sh_loop_t *loop, sh_timer_t *t)
{
    conn_t *c = t->data;
    sh_redis_t *r = c->r;
    enter(r);
    switch (c->state) {
    case CONN_OFF:
        conn_start(c);
        break;
    case CONN_RESOLVING: {
        /* The lookup thread finishes on its own; its answer is dropped. */
        char reason[REASON_MAX];
        snprintf(reason, sizeof(reason), "looking up %s took over %u ms", r->url.host,
                 r->connect_timeout_ms);
        c->was_ready = false;
        conn_down(c, reason);
        break;
    }
    case CONN_HANDSHAKE:
        conn_dropf(c, "no answer within %u ms of connecting", r->connect_timeout_ms);
        break;
    case CONN_READY:
        check_deadlines(c);
        break;
    case CONN_BROKEN:
        break;
    }
    leave(r);
}

/* ---- replies ---- */

static bool is_noscript(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_ERROR && reply->len >= 8 &&
           strncmp(reply->str, "NOSCRIPT", 8) == 0;
}

/* Sends "EVAL|EVALSHA first numkeys argv..." for cmd on c. */
static int send_script(conn_t *c, cmd_t *cmd, const char *verb, const char *first)
{
    int n = cmd->argc + 3;
    const char **argv = sh_calloc((size_t)n, sizeof(*argv));
    size_t *lens = sh_calloc((size_t)n, sizeof(*lens));
    char numkeys[16];
    snprintf(numkeys, sizeof(numkeys), "%d", cmd->numkeys);
    argv[0] = verb;
    argv[1] = first;
    argv[2] = numkeys;
    for (int i = 0; i < 3; i++)
        lens[i] = strlen(argv[i]);
    for (int i = 0; i < cmd->argc; i++) {
        argv[i + 3] = cmd->argv[i];
        lens[i + 3] = cmd->argvlen[i];
    }
    int rc = redisAsyncCommandArgv(c->rio.ac, on_reply, cmd, n, argv, lens);
    free(argv);
    free(lens);
    return rc == REDIS_OK ? 0 : -ENOTCONN;
}

static void on_reply(redisAsyncContext *ac, void *reply_, void *privdata)
{
    cmd_t *cmd = privdata;
    conn_t *c = cmd->conn;
    sh_redis_t *r = c->r;
    const redisReply *reply = reply_;
    sh_list_remove(&cmd->node);
    c->npending--;
    if (!reply) {
        conn_broken(c);
        cmd_complete(cmd, r->freeing ? -ECANCELED : -ECONNRESET, NULL);
        cmd_free(cmd);
        return;
    }
    if (cmd->internal) {
        handshake_reply(c, cmd, reply);
        cmd_free(cmd);
        return;
    }
    if (cmd->script && cmd->argv && !cmd->done && c->state == CONN_READY && is_noscript(reply) &&
        send_script(c, cmd, "EVAL", cmd->script->source) == 0) {
        /* Redis lost its script cache (restart, SCRIPT FLUSH): EVAL loads
         * it again. The record goes back in line, behind what was sent. */
        r->stats.noscript++;
        free(cmd->argv);
        cmd->argv = NULL;
        cmd->argc = 0;
        cmd_track(cmd, sh_loop_now(r->loop) + r->command_timeout_ms);
        arm_deadline(c, cmd->deadline);
        return;
    }
    cmd_complete(cmd, 0, reply);
    cmd_free(cmd);
}

/* ---- pub/sub dispatch ---- */

static void subs_reap(sh_redis_t *r)
{
    sh_list_t *pos, *tmp;
    sh_list_foreach_safe (pos, tmp, &r->subs) {
        sub_t *s = sh_container_of(pos, sub_t, node);
        if (s->dead) {
            sh_list_remove(&s->node);
            free(s->name);
            free(s);
        }
    }
}

static void dispatch(sh_redis_t *r, bool pattern, const redisReply *name, const char *channel,
                     const char *pat, const redisReply *payload)
{
    /* Entries added by a callback wait for the next message; removed ones
     * are only marked while the list is being walked. */
    uint64_t gen = r->sub_gen;
    /* The payload's message may be rewritten by the callback it is
     * offered to: only when that one alone receives it. */
    struct sh_msg *own = sh_redis_reply_msg(payload);
    size_t receivers = 0;
    for (sh_list_t *pos = r->subs.next; own && pos != &r->subs && receivers < 2; pos = pos->next) {
        sub_t *s = sh_container_of(pos, sub_t, node);
        receivers += s->gen < gen && sub_same(s, pattern, name->str, name->len);
    }
    if (receivers != 1)
        own = NULL;
    r->dispatching++;
    for (sh_list_t *pos = r->subs.next; pos != &r->subs && !r->freeing; pos = pos->next) {
        sub_t *s = sh_container_of(pos, sub_t, node);
        if (s->gen >= gen || !sub_same(s, pattern, name->str, name->len))
            continue;
        r->stats.messages++;
        s->cb(channel, pat, payload->str, payload->len, own, s->data);
    }
    if (--r->dispatching == 0 && !r->freeing)
        subs_reap(r);
}

static bool is_str(const redisReply *e)
{
    return e->type == REDIS_REPLY_STRING;
}

/* Every reply of the subscriber connection after its handshake: messages
 * and (un)subscribe confirmations. hiredis 0.14 may hand us a stale copy
 * of this callback for a reply it cannot place, so the shape is checked
 * here rather than trusted. */
static void on_sub_reply(redisAsyncContext *ac, void *reply_, void *privdata)
{
    conn_t *c = privdata;
    sh_redis_t *r = c->r;
    const redisReply *reply = reply_;
    if (!reply || c->state != CONN_READY)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        /* A refused (un)subscription (an ACL's NOPERM): the connection
         * goes, with Redis' words for the reason, as hiredis closed a
         * subscribed context on an error it had no callback for. */
        conn_dropf(c, "%s", reply->str ? reply->str : "error reply");
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 || !is_str(reply->element[0])) {
        sh_warn("redis: unexpected reply on the subscriber connection (type %d)", reply->type);
        return;
    }
    redisReply **e = reply->element;
    const char *kind = e[0]->str;
    if (strcasecmp(kind, "message") == 0 && reply->elements == 3 && is_str(e[1]) && is_str(e[2])) {
        dispatch(r, false, e[1], e[1]->str, NULL, e[2]);
    } else if (strcasecmp(kind, "pmessage") == 0 && reply->elements == 4 && is_str(e[1]) &&
               is_str(e[2]) && is_str(e[3])) {
        dispatch(r, true, e[1], e[2]->str, e[1]->str, e[3]);
    } else if (strcasecmp(kind, "subscribe") == 0 || strcasecmp(kind, "psubscribe") == 0 ||
               strcasecmp(kind, "unsubscribe") == 0 || strcasecmp(kind, "punsubscribe") == 0) {
        if (c->unconfirmed > 0 && --c->unconfirmed > 0)
            c->confirm_due = sh_loop_now(r->loop) + r->command_timeout_ms;
    } else {
        sh_warn("redis: unexpected '%.32s' on the subscriber connection", kind);
    }
}

/* ---- the client ---- */

static bool valid_client_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CLIENT_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '!' || s[i] > '~')
            return false;
    return true;
}

static void conn_init(conn_t *c, sh_redis_t *r, conn_kind_t kind)
{
    c->r = r;
    c->kind = kind;
    c->state = CONN_OFF;
    sh_list_init(&c->pending);
    sh_random_bytes(&c->epoch, sizeof(c->epoch));
}

sh_redis_t *sh_redis_new(sh_loop_t *loop, const sh_redis_options_t *opts, sh_buf_t *err)
{
    sh_redis_t *r = sh_new0(sh_redis_t);
    if (sh_redis_url_parse(&r->url, opts->url, err) < 0)
        goto fail;
    if (opts->client_name && !valid_client_name(opts->client_name)) {
        if (err)
            sh_buf_appendf(err,
                           "invalid Redis client name: 1 to %d printable ASCII characters "
                           "without spaces",
                           CLIENT_NAME_MAX);
        goto fail;
    }
    r->loop = loop;
    r->command_timeout_ms =
        opts->command_timeout_ms ? opts->command_timeout_ms : DEFAULT_COMMAND_TIMEOUT_MS;
    r->connect_timeout_ms =
        opts->connect_timeout_ms ? opts->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    r->reconnect_min_ms =
        opts->reconnect_min_ms ? opts->reconnect_min_ms : DEFAULT_RECONNECT_MIN_MS;
    r->reconnect_max_ms =
        opts->reconnect_max_ms ? opts->reconnect_max_ms : DEFAULT_RECONNECT_MAX_MS;
    if (r->reconnect_max_ms < r->reconnect_min_ms) {
        if (err)
            sh_buf_appendf(err, "Redis reconnect_max_ms (%u) is below reconnect_min_ms (%u)",
                           r->reconnect_max_ms, r->reconnect_min_ms);
        goto fail;
    }
    r->max_pending = opts->max_pending ? opts->max_pending : DEFAULT_MAX_PENDING;
    r->client_name = opts->client_name ? sh_strdup(opts->client_name) : NULL;
    r->on_state = opts->on_state;
    r->state_data = opts->state_data;
    sh_buf_t addr = SH_BUF_INIT;
    sh_redis_url_address(&r->url, &addr);
    r->address = sh_buf_steal(&addr, NULL);
    snprintf(r->last_error, sizeof(r->last_error), "connecting to %s", r->address);
    sh_list_init(&r->subs);
    conn_init(&r->cmd, r, CONN_CMD);
    conn_init(&r->sub, r, CONN_SUB);
    r->cmd.wanted = true;
    conn_start(&r->cmd);
    return r;
fail:
    sh_redis_url_release(&r->url);
    free(r);
    return NULL;
}

static void destroy(sh_redis_t *r)
{
    conn_t *conns[] = {&r->cmd, &r->sub};
    for (int i = 0; i < 2; i++) {
        sh_timer_stop(r->loop, &conns[i]->timer);
        sh_resolve_cancel(conns[i]->resolving);
        /* Freed in sh_redis_free, or by hiredis right after the callback
         * that called it; nothing can remain. */
        if (conns[i]->rio.ac)
            redisAsyncFree(conns[i]->rio.ac);
    }
    sh_defer_cancel(r->loop, &r->state_defer);
    sh_list_t *pos, *tmp;
    sh_list_foreach_safe (pos, tmp, &r->subs) {
        sub_t *s = sh_container_of(pos, sub_t, node);
        free(s->name);
        free(s);
    }
    sh_redis_url_release(&r->url);
    free(r->address);
    free(r->client_name);
    free(r);
}

void sh_redis_free(sh_redis_t *r)
{
    if (!r || r->freeing)
        return;
    r->freeing = true;
    r->up = false;
    enter(r);
    sh_defer_cancel(r->loop, &r->state_defer);
    conn_t *conns[] = {&r->cmd, &r->sub};
    for (int i = 0; i < 2; i++) {
        conn_t *c = conns[i];
        /* Callbacks cannot add commands now (-ENOTCONN), and records leave
         * the list only in on_reply, which hiredis does not run from here. */
        sh_list_t *pos, *tmp;
        sh_list_foreach_safe (pos, tmp, &c->pending) {
            cmd_complete(sh_container_of(pos, cmd_t, node), -ECANCELED, NULL);
        }
    }
    for (int i = 0; i < 2; i++) {
        conn_t *c = conns[i];
        sh_timer_stop(r->loop, &c->timer);
        sh_resolve_cancel(c->resolving);
        c->resolving = NULL;
        conn_drop(c);
    }
    leave(r);
}

/* ---- commands ---- */

static int admit(sh_redis_t *r)
{
    if (r->freeing || !r->up) {
        r->stats.rejected++;
        return -ENOTCONN;
    }
    if (r->cmd.npending >= r->max_pending) {
        r->stats.rejected++;
        return -ENOBUFS;
    }
    return 0;
}

static void accepted(sh_redis_t *r, cmd_t *cmd)
{
    conn_t *c = &r->cmd;
    cmd_track(cmd, sh_loop_now(r->loop) + r->command_timeout_ms);
    arm_deadline(c, cmd->deadline);
    r->stats.commands++;
}

int sh_redis_command_argv(sh_redis_t *r, sh_redis_cb cb, void *data, int argc, const char **argv,
                          const size_t *argvlen)
{
    if (argc < 1 || !argv)
        return -EINVAL;
    int rc = admit(r);
    if (rc < 0)
        return rc;
    cmd_t *cmd = cmd_new(&r->cmd, cb, data);
    if (redisAsyncCommandArgv(r->cmd.rio.ac, on_reply, cmd, argc, argv, argvlen) != REDIS_OK) {
        cmd_free(cmd);
        r->stats.rejected++;
        return -ENOTCONN;
    }
    accepted(r, cmd);
    return 0;
}

int sh_redis_command(sh_redis_t *r, sh_redis_cb cb, void *data, const char *fmt, ...)
{
    int rc = admit(r);
    if (rc < 0)
        return rc;
    cmd_t *cmd = cmd_new(&r->cmd, cb, data);
    va_list ap;
    va_start(ap, fmt);
    /* While up the context takes commands, so an error is the format's. */
    rc = redisvAsyncCommand(r->cmd.rio.ac, on_reply, cmd, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK) {
        cmd_free(cmd);
        return -EINVAL;
    }
    accepted(r, cmd);
    return 0;
}

int sh_redis_publish(sh_redis_t *r, const char *channel, const void *payload, size_t len,
                     sh_redis_cb cb, void *data)
{
    if (!channel || (!payload && len > 0))
        return -EINVAL;
    const char *argv[] = {"PUBLISH", channel, payload ? payload : ""};
    size_t argvlen[] = {7, strlen(channel), len};
    return sh_redis_command_argv(r, cb, data, 3, argv, argvlen);
}

/* ---- scripts ---- */

sh_redis_script_t *sh_redis_script_new(const char *lua)
{
    sh_redis_script_t *s = sh_new0(sh_redis_script_t);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    s->refs = 1;
    s->source = sh_strdup(lua);
    if (!EVP_Digest(s->source, strlen(s->source), md, &mdlen, EVP_sha1(), NULL) || mdlen != 20) {
        sh_error("redis: SHA-1 unavailable from libcrypto");
        abort(); /* as for memory: nothing sensible can follow */
    }
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(s->sha + 2 * i, 3, "%02x", md[i]);
    return s;
}

void sh_redis_script_free(sh_redis_script_t *s)
{
    script_unref(s);
}

const char *sh_redis_script_sha(const sh_redis_script_t *s)
{
    return s->sha;
}

int sh_redis_eval(sh_redis_t *r, sh_redis_script_t *s, sh_redis_cb cb, void *data, int numkeys,
                  int argc, const char **argv, const size_t *argvlen)
{
    if (!s || argc < 0 || numkeys < 0 || numkeys > argc || (argc > 0 && !argv))
        return -EINVAL;
    int rc = admit(r);
    if (rc < 0)
        return rc;
    cmd_t *cmd = cmd_new(&r->cmd, cb, data);
    /* The arguments are kept for a NOSCRIPT resend: one block holding the
     * pointers, the lengths and the bytes (each NUL-terminated). */
    size_t bytes = 0;
    for (int i = 0; i < argc; i++)
        bytes += (argvlen ? argvlen[i] : strlen(argv[i])) + 1;
    size_t head = (size_t)argc * (sizeof(char *) + sizeof(size_t));
    char *block = sh_malloc(head + bytes + 1);
    cmd->argv = (char **)block;
    cmd->argvlen = (size_t *)(block + (size_t)argc * sizeof(char *));
    char *p = block + head;
    for (int i = 0; i < argc; i++) {
        size_t n = argvlen ? argvlen[i] : strlen(argv[i]);
        memcpy(p, argv[i], n);
        p[n] = '\0';
        cmd->argv[i] = p;
        cmd->argvlen[i] = n;
        p += n + 1;
    }
    cmd->argc = argc;
    cmd->numkeys = numkeys;
    cmd->script = s;
    s->refs++;
    /* The first time on a connection the script goes as EVAL, which loads
     * it: an EVALSHA answered NOSCRIPT would be resent behind the commands
     * made after it, which would then run first (a store's session_add
     * overtaken by the read that follows it). After a SCRIPT FLUSH on a
     * live connection that can still happen; a restart is a new
     * connection. */
    bool load = s->loaded_epoch != r->cmd.epoch;
    if (send_script(&r->cmd, cmd, load ? "EVAL" : "EVALSHA", load ? s->source : s->sha) < 0) {
        cmd_free(cmd);
        r->stats.rejected++;
        return -ENOTCONN;
    }
    s->loaded_epoch = r->cmd.epoch;
    accepted(r, cmd);
    return 0;
}

/* ---- subscriptions ---- */

static sub_t *sub_find(sh_redis_t *r, bool pattern, const char *name, sh_redis_message_cb cb,
                       void *data)
{
    sh_list_t *pos, *tmp;
    size_t n = strlen(name);
    sh_list_foreach_safe (pos, tmp, &r->subs) {
        sub_t *s = sh_container_of(pos, sub_t, node);
        if (sub_same(s, pattern, name, n) && s->cb == cb && s->data == data)
            return s;
    }
    return NULL;
}

static bool sub_active(sh_redis_t *r, bool pattern, const char *name, size_t namelen)
{
    sh_list_t *pos, *tmp;
    sh_list_foreach_safe (pos, tmp, &r->subs) {
        if (sub_same(sh_container_of(pos, sub_t, node), pattern, name, namelen))
            return true;
    }
    return false;
}

static int sub_add(sh_redis_t *r, bool pattern, const char *name, sh_redis_message_cb cb,
                   void *data)
{
    if (!name || !cb || r->freeing)
        return -EINVAL;
    if (sub_find(r, pattern, name, cb, data))
        return -EEXIST;
    size_t n = strlen(name);
    bool first = !sub_active(r, pattern, name, n);
    sub_t *s = sh_new0(sub_t);
    s->pattern = pattern;
    s->name = sh_strdup(name);
    s->namelen = n;
    s->cb = cb;
    s->data = data;
    s->gen = r->sub_gen++;
    sh_list_insert_tail(&r->subs, &s->node);
    if (!r->sub.wanted) {
        r->sub.wanted = true;
        conn_start(&r->sub); /* its handshake subscribes to everything */
    } else if (first && r->sub.state == CONN_READY) {
        send_sub(&r->sub, pattern, s->name, n, true);
    }
    return 0;
}

static int sub_remove(sh_redis_t *r, bool pattern, const char *name, sh_redis_message_cb cb,
                      void *data)
{
    if (!name)
        return -ENOENT;
    sub_t *s = sub_find(r, pattern, name, cb, data);
    if (!s)
        return -ENOENT;
    size_t n = s->namelen;
    s->dead = true;
    if (!sub_active(r, pattern, name, n) && r->sub.state == CONN_READY)
        send_sub(&r->sub, pattern, name, n, false);
    if (!r->dispatching) {
        sh_list_remove(&s->node);
        free(s->name);
        free(s);
    }
    return 0;
}

int sh_redis_subscribe(sh_redis_t *r, const char *channel, sh_redis_message_cb cb, void *data)
{
    return sub_add(r, false, channel, cb, data);
}

int sh_redis_psubscribe(sh_redis_t *r, const char *pattern, sh_redis_message_cb cb, void *data)
{
    return sub_add(r, true, pattern, cb, data);
}

int sh_redis_unsubscribe(sh_redis_t *r, const char *channel, sh_redis_message_cb cb, void *data)
{
    return sub_remove(r, false, channel, cb, data);
}

int sh_redis_punsubscribe(sh_redis_t *r, const char *pattern, sh_redis_message_cb cb, void *data)
{
    return sub_remove(r, true, pattern, cb, data);
}

/* ---- state ---- */

bool sh_redis_up(const sh_redis_t *r)
{
    return r->up;
}

bool sh_redis_subscribed(const sh_redis_t *r)
{
    bool any = false;
    for (const sh_list_t *pos = r->subs.next; pos != &r->subs; pos = pos->next)
        if (!sh_container_of(pos, sub_t, node)->dead)
            any = true;
    return !any || (r->sub.state == CONN_READY && r->sub.unconfirmed == 0);
}

const char *sh_redis_last_error(const sh_redis_t *r)
{
    return r->last_error;
}

void sh_redis_stats(const sh_redis_t *r, sh_redis_stats_t *out)
{
    *out = r->stats;
    out->pending = r->cmd.npending;
}
