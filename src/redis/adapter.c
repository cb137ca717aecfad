#include "redis/adapter.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "core/log.h"

/* hiredis reads 16 KiB per call. A publisher's tick (a backend's tokens
 * for many users) is often more, and whatever the loop does not read now
 * waits for the next iteration, after the sockets were flushed: a user's
 * burst of tokens split across two reads left as two writes to each of its
 * tabs. So read on while the kernel holds more, up to this many reads. */
#define READS_PER_WAKE 16

static void on_ready(sh_loop_t *loop, sh_io_t *io, unsigned events)
{
    sh_redis_io_t *rio = io->data;
    if (rio->on_dispatch)
        rio->on_dispatch(rio, true);
    /* An error (ECONNREFUSED while connecting, a reset) is found by the
     * handler that reads or checks the socket: the read side when hiredis
     * watches it, else the write side (connect in progress). */
    if (rio->ac && (events & SH_IO_READ)) {
        redisAsyncHandleRead(rio->ac);
        int pending = 0;
        for (int i = 1; i < READS_PER_WAKE && rio->ac && (rio->want & SH_IO_READ) &&
                        ioctl(rio->ac->c.fd, FIONREAD, &pending) == 0 && pending > 0;
             i++)
            redisAsyncHandleRead(rio->ac);
    }
    if (rio->ac && (events & SH_IO_WRITE))
        redisAsyncHandleWrite(rio->ac);
    if (rio->on_dispatch)
        rio->on_dispatch(rio, false);
}

static void update(sh_redis_io_t *rio)
{
    if (rio->want == 0) {
        sh_io_stop(rio->loop, &rio->io);
        return;
    }
    int rc = sh_io_start(rio->loop, &rio->io, rio->ac->c.fd, rio->want, on_ready, rio);
    if (rc < 0)
        sh_error("redis: cannot watch fd %d: %s", rio->ac->c.fd, strerror(-rc));
}

static void add_read(void *privdata)
{
    sh_redis_io_t *rio = privdata;
    if (rio->want & SH_IO_READ)
        return;
    rio->want |= SH_IO_READ;
    update(rio);
}

static void del_read(void *privdata)
{
    sh_redis_io_t *rio = privdata;
    if (!(rio->want & SH_IO_READ))
        return;
    rio->want &= ~(unsigned)SH_IO_READ;
    update(rio);
}

static void on_write_defer(sh_loop_t *loop, sh_defer_t *d)
{
    (void)loop;
    sh_redis_io_t *rio = d->data;
    if (!rio->ac)
        return;
    if (rio->on_dispatch)
        rio->on_dispatch(rio, true);
    /* A write that cannot finish asks again from in here: then the fd. */
    rio->in_write = true;
    redisAsyncHandleWrite(rio->ac);
    rio->in_write = false;
    if (rio->on_dispatch)
        rio->on_dispatch(rio, false);
}

static void add_write(void *privdata)
{
    sh_redis_io_t *rio = privdata;
    if (rio->want & SH_IO_WRITE)
        return;
    if ((rio->ac->c.flags & REDIS_CONNECTED) && !rio->in_write) {
        sh_defer_schedule(rio->loop, &rio->write_defer, on_write_defer, rio);
        return;
    }
    rio->want |= SH_IO_WRITE;
    update(rio);
}

static void del_write(void *privdata)
{
    sh_redis_io_t *rio = privdata;
    sh_defer_cancel(rio->loop, &rio->write_defer);
    if (!(rio->want & SH_IO_WRITE))
        return;
    rio->want &= ~(unsigned)SH_IO_WRITE;
    update(rio);
}

static void cleanup(void *privdata)
{
    sh_redis_io_t *rio = privdata;
    const redisAsyncContext *ac = rio->ac;
    /* Before redisFree() closes the fd: the watch goes first. */
    sh_io_stop(rio->loop, &rio->io);
    sh_defer_cancel(rio->loop, &rio->write_defer);
    rio->in_write = false;
    rio->want = 0;
    rio->ac = NULL;
    if (ac && rio->on_cleanup)
        rio->on_cleanup(rio, ac);
}

int sh_redis_io_attach(sh_redis_io_t *rio, sh_loop_t *loop, redisAsyncContext *ac)
{
    if (ac->ev.data || ac->c.fd < 0)
        return -EINVAL;
    rio->loop = loop;
    rio->ac = ac;
    rio->want = 0;
    rio->in_write = false;
    ac->data = rio;
    ac->ev.data = rio;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    return 0;
}
