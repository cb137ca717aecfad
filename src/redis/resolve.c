#include "redis/resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/alloc.h"

/* One record: '+' and the address, or '-' and the error; well below
 * PIPE_BUF, so the write is atomic. */
#define RECORD_MAX 256

struct sh_resolve {
    sh_loop_t *loop;
    int fd; /* the pipe's read end; -1 for a numeric host */
    sh_io_t io;
    sh_defer_t defer;
    sh_resolve_cb cb;
    void *data;
    char buf[RECORD_MAX];
    size_t len;
};

/* Owned by the lookup thread alone. */
typedef struct job {
    char *host;
    int fd; /* the pipe's write end */
} job_t;

static void *job_main(void *arg)
{
    job_t *j = arg;
    char rec[RECORD_MAX];
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(j->host, NULL, &hints, &res);
    if (rc != 0) {
        hints.ai_family = AF_INET6;
        rc = getaddrinfo(j->host, NULL, &hints, &res);
    }
    char ip[INET6_ADDRSTRLEN] = "";
    if (rc == 0) {
        const void *addr = res->ai_family == AF_INET
                               ? (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr
                               : (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr;
        if (!inet_ntop(res->ai_family, addr, ip, sizeof(ip)))
            ip[0] = '\0';
        freeaddrinfo(res);
    }
    if (ip[0])
        snprintf(rec, sizeof(rec), "+%s", ip);
    else
        snprintf(rec, sizeof(rec), "-%s", rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    /* EPIPE when the lookup was cancelled: nobody wants the answer. */
    ssize_t n = write(j->fd, rec, strlen(rec));
    (void)n;
    close(j->fd);
    free(j->host);
    free(j);
    return NULL;
}

static void finish(sh_resolve_t *q)
{
    char text[RECORD_MAX];
    bool ok = q->len > 1 && q->buf[0] == '+';
    if (q->len > 1)
        snprintf(text, sizeof(text), "%.*s", (int)(q->len - 1), q->buf + 1);
    else
        snprintf(text, sizeof(text), "the lookup ended without an answer");
    sh_resolve_cb cb = q->cb;
    void *data = q->data;
    sh_resolve_cancel(q); /* over before the callback, which may start another */
    if (ok)
        cb(text, NULL, data);
    else
        cb(NULL, text, data);
}

static void on_readable(sh_loop_t *loop, sh_io_t *io, unsigned events)
{
    sh_resolve_t *q = io->data;
    while (q->len < sizeof(q->buf) - 1) {
        ssize_t n = read(q->fd, q->buf + q->len, sizeof(q->buf) - 1 - q->len);
        if (n > 0) {
            q->len += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return; /* the rest, and the end, come later */
        break;      /* end of file: the thread is done */
    }
    finish(q);
}

static void on_numeric(sh_loop_t *loop, sh_defer_t *d)
{
    finish(d->data);
}

sh_resolve_t *sh_resolve_start(sh_loop_t *loop, const char *host, sh_resolve_cb cb, void *data)
{
    sh_resolve_t *q = sh_new0(sh_resolve_t);
    q->loop = loop;
    q->fd = -1;
    q->cb = cb;
    q->data = data;
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1) {
        q->len = (size_t)snprintf(q->buf, sizeof(q->buf), "+%s", host);
        sh_defer_schedule(loop, &q->defer, on_numeric, q);
        return q;
    }
    int fds[2] = {-1, -1}, err = 0;
    job_t *j = NULL;
    if (pipe2(fds, O_CLOEXEC) < 0 || fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0) {
        err = errno;
        goto fail;
    }
    j = sh_new0(job_t);
    j->host = sh_strdup(host);
    j->fd = fds[1];
    /* The thread inherits the creator's signal mask: block everything for
     * it, so no signal meant for the loop's signalfd lands there. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_attr_t attr;
    pthread_t tid;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_create(&tid, &attr, job_main, j);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (err != 0)
        goto fail;
    j = NULL; /* the thread's now, with fds[1] */
    fds[1] = -1;
    q->fd = fds[0];
    err = -sh_io_start(loop, &q->io, q->fd, SH_IO_READ, on_readable, q);
    if (err != 0)
        goto fail;
    return q;
fail:
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    if (j) {
        free(j->host);
        free(j);
    }
    free(q);
    errno = err;
    return NULL;
}

void sh_resolve_cancel(sh_resolve_t *q)
{
    if (!q)
        return;
    sh_defer_cancel(q->loop, &q->defer);
    if (q->fd >= 0) {
        sh_io_stop(q->loop, &q->io);
        close(q->fd);
    }
    free(q);
}
