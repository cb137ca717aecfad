#include "redis_server.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_TRIES   5
#define READY_WAIT_MS 5000

static const char *server_path(void)
{
    const char *p = getenv("REDIS_SERVER");
    return p && *p ? p : NULL;
}

bool th_redis_available(void)
{
    const char *p = server_path();
    return p && access(p, X_OK) == 0;
}

uint16_t th_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* redis-server 7 refuses DEBUG unless told otherwise; older ones do not
 * know the option. */
static int server_major(void)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "'%s' --version 2>/dev/null", server_path());
    FILE *f = popen(cmd, "r");
    if (!f)
        return 0;
    char line[256] = "";
    if (!fgets(line, sizeof(line), f))
        line[0] = '\0';
    pclose(f);
    const char *v = strstr(line, "v=");
    return v ? atoi(v + 2) : 0;
}

static pid_t spawn(th_redis_t *s)
{
    char port[16], log[200];
    snprintf(port, sizeof(port), "%u", (unsigned)s->port);
    snprintf(log, sizeof(log), "%s/redis.log", s->dir);
    const char *argv[64];
    int n = 0;
    argv[n++] = server_path();
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--appendonly";
    argv[n++] = "no";
    argv[n++] = "--dir";
    argv[n++] = s->dir;
    argv[n++] = "--logfile";
    argv[n++] = log;
    if (s->sock[0]) {
        argv[n++] = "--unixsocket";
        argv[n++] = s->sock;
    }
    if (s->debug_opt) {
        argv[n++] = "--enable-debug-command";
        argv[n++] = "yes";
    }
    for (int i = 0; i < s->nargs; i++)
        argv[n++] = s->args[i];
    argv[n] = NULL;

    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* Dies with the test, whatever way the test ends. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Waits until the server answers PING (any answer: -NOAUTH counts). Returns
 * false when the server process exited (e.g. the port was taken). */
static bool wait_ready(th_redis_t *s)
{
    uint64_t deadline = now_ms() + READY_WAIT_MS;
    while (now_ms() < deadline) {
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            return false;
        }
        struct timeval tv = {0, 200000};
        redisContext *c = redisConnectWithTimeout("127.0.0.1", s->port, tv);
        if (c && !c->err) {
            redisReply *r = redisCommand(c, "PING");
            if (r) {
                freeReplyObject(r);
                redisFree(c);
                return true;
            }
        }
        if (c)
            redisFree(c);
        sleep_ms(10);
    }
    ck_abort_msg("redis-server on port %u did not answer PING", (unsigned)s->port);
    return false;
}

void th_redis_start(th_redis_t *s, uint16_t port, bool unixsocket, const char *const *extra)
{
    memset(s, 0, sizeof(*s));
    ck_assert_msg(th_redis_available(), "REDIS_SERVER is not set");
    const char *tmp = getenv("TMPDIR");
    snprintf(s->dir, sizeof(s->dir), "%s/siohub-redis-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(s->dir));
    s->debug_opt = server_major() >= 7;
    if (unixsocket)
        snprintf(s->sock, sizeof(s->sock), "%s/redis.sock", s->dir);
    for (int i = 0; extra && extra[i]; i++) {
        ck_assert_int_lt(s->nargs, TH_REDIS_MAX_ARGS);
        s->args[s->nargs++] = extra[i];
        if (strcmp(extra[i], "--requirepass") == 0 && extra[i + 1])
            snprintf(s->password, sizeof(s->password), "%s", extra[i + 1]);
    }
    /* Another test program may take the port between our probe and the
     * server's bind: then the server exits and we try another. */
    for (int tries = 0; tries < START_TRIES; tries++) {
        s->port = port ? port : th_free_port();
        s->pid = spawn(s);
        if (wait_ready(s))
            return;
    }
    ck_abort_msg("redis-server would not start (see its log in %s)", s->dir);
}

void th_redis_kill(th_redis_t *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGCONT);
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

void th_redis_restart(th_redis_t *s)
{
    th_redis_kill(s);
    /* The same port: redis sets SO_REUSEADDR, so TIME_WAIT is no bar. */
    for (int tries = 0; tries < START_TRIES; tries++) {
        s->pid = spawn(s);
        if (wait_ready(s))
            return;
        sleep_ms(50);
    }
    ck_abort_msg("redis-server would not restart on port %u", (unsigned)s->port);
}

void th_redis_pause(th_redis_t *s)
{
    ck_assert_int_eq(kill(s->pid, SIGSTOP), 0);
}

void th_redis_resume(th_redis_t *s)
{
    ck_assert_int_eq(kill(s->pid, SIGCONT), 0);
}

void th_redis_stop(th_redis_t *s)
{
    th_redis_kill(s);
    if (s->dir[0]) {
        char path[200];
        snprintf(path, sizeof(path), "%s/redis.log", s->dir);
        unlink(path);
        if (s->sock[0])
            unlink(s->sock);
        rmdir(s->dir);
        s->dir[0] = '\0';
    }
}

redisContext *th_redis_connect(th_redis_t *s)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", s->port, tv);
    ck_assert_msg(c && !c->err, "cannot connect to redis-server on port %u", (unsigned)s->port);
    redisSetTimeout(c, tv);
    if (s->password[0]) {
        redisReply *r = redisCommand(c, "AUTH %s", s->password);
        ck_assert_msg(r && r->type == REDIS_REPLY_STATUS, "AUTH failed");
        freeReplyObject(r);
    }
    return c;
}

redisReply *th_redis_cmd(th_redis_t *s, const char *fmt, ...)
{
    redisContext *c = th_redis_connect(s);
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    ck_assert_msg(r != NULL, "no reply from redis-server: %s", c->errstr);
    redisFree(c);
    return r;
}
