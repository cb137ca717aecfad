/* tests/lib/redis_server.h — a real redis-server for a test, on a free
 * 127.0.0.1 port (compiled into the test programs that need one).
 *
 * The binary comes from the REDIS_SERVER environment variable (make check
 * exports what configure found); a program calls th_redis_available() in
 * main and exits 77 (skip) without it. The server runs in the foreground
 * as a child of the test process with PR_SET_PDEATHSIG, so it dies with
 * the test even when the test crashes or Check kills it on a timeout;
 * th_redis_stop kills it explicitly too. Its files (log, unix socket) live
 * in a fresh directory under $TMPDIR (or /tmp) that stop removes.
 * Helpers that cannot go on fail the test with ck_abort_msg.
 */
#ifndef SH_TESTS_REDIS_SERVER_H
#define SH_TESTS_REDIS_SERVER_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

#define TH_REDIS_MAX_ARGS 16

typedef struct th_redis {
    pid_t pid;     /* 0: not running */
    uint16_t port; /* picked by th_redis_start; kept for restarts */
    char dir[128];
    char sock[160];                      /* unix socket path when started with unixsocket */
    char password[64];                   /* requirepass given to the server, for th_redis_connect */
    const char *args[TH_REDIS_MAX_ARGS]; /* extra arguments, for restarts */
    int nargs;
    bool debug_opt; /* --enable-debug-command (redis-server 7+) */
} th_redis_t;

/* Whether REDIS_SERVER names a program. */
bool th_redis_available(void);

/* Starts redis-server (no persistence, debug command enabled where the
 * version knows the option) on port (0: a free one), with the extra arguments
 * (NULL-terminated, may be NULL; they must outlive s), and waits until it
 * answers PING. With unixsocket true it also listens on s->sock. A
 * "--requirepass" among the arguments is remembered for th_redis_connect. */
void th_redis_start(th_redis_t *s, uint16_t port, bool unixsocket, const char *const *extra);
/* SIGKILL and reap; the port and directory stay for th_redis_restart. */
void th_redis_kill(th_redis_t *s);
/* Starts it again on the same port with the same arguments. */
void th_redis_restart(th_redis_t *s);
/* SIGSTOP / SIGCONT: a server that accepts connections but never answers. */
void th_redis_pause(th_redis_t *s);
void th_redis_resume(th_redis_t *s);
/* Kills the server (if running) and removes its directory. Idempotent. */
void th_redis_stop(th_redis_t *s);

/* A blocking hiredis connection to the server, authenticated when it has a
 * password. Free with redisFree. */
redisContext *th_redis_connect(th_redis_t *s);
/* Runs one command on its own connection and returns the reply (free with
 * freeReplyObject); fails the test when there is none. */
redisReply *th_redis_cmd(th_redis_t *s, const char *fmt, ...);

/* A port on 127.0.0.1 that nothing listens on right now. */
uint16_t th_free_port(void);

#endif
