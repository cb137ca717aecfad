#include "redis/adapter.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core/log.h"
#include "redis/reply.h"

/* hiredis reads 16 KiB per call. A publisher's tick (a backend's tokens
 * for many users) is often more, and whatever the loop does not read now
 * waits for the next iteration, after the sockets were flushed: a user's
 * burst of tokens split across two reads left as two writes to each of its
 * tabs. So read on while the kernel holds more, up to this many reads. */
#define READS_PER_WAKE 16

/* A subscriber's own reads (sh_redis_io_read_replies): 64 KiB per read,
 * on until the socket is empty, up to this many (256 KiB a wake, as
 * hiredis' reads above). A short read is not the end: Redis writes a
 * publisher's tick to its subscribers a part at a time (it reads 16 KiB
 * of commands per turn), and what it wrote while the last read's messages
 * were handled is read now, before the loop flushes the sockets, so that
 * a tab gets the tick's tokens in one write rather than two. In the chat
 * bench (tokens through Redis, bursts of 20) that took the tabs' writes
 * from ~1,100 to ~1,010 a second for 999 tabs and the loop's sleeps by a
 * third, for one more read a wake that finds nothing. */
#define REPLY_READ_BYTES  65536
#define REPLY_READS_LIMIT 4
#define REPLY_FEED_BYTES  2048
#define REPLY_KEEP_BYTES  65536 /* the reader's buffer kept when empty */

/* Closes the context the way hiredis closes it on a failed read: with
 * c->err set, redisAsyncHandleRead's first step (redisBufferRead) fails at
 * once and it disconnects, which runs the pending callbacks and the
 * cleanup hook with the reason in errstr. */
static void fail_read(redisAsyncContext *ac, int err, const char *reason)
{
    ac->c.err = err;
    size_t n = strlen(reason);
    if (n >= sizeof(ac->c.errstr))
        n = sizeof(ac->c.errstr) - 1;
    memcpy(ac->c.errstr, reason, n);
    ac->c.errstr[n] = '\0';
    redisAsyncHandleRead(ac);
}

/* Hands every complete reply in rio->reader to its callback; false when
 * the context went away (or is going) inside one. */
static bool deliver_replies(sh_redis_io_t *rio)
{
    redisAsyncContext *ac = rio->ac;
    redisContext *c = &ac->c;
    for (;;) {
        void *reply = NULL;
        if (redisReaderGetReply(rio->reader, &reply) != REDIS_OK) {
            char reason[sizeof(rio->reader->errstr) + 20];
            snprintf(reason, sizeof(reason), "Protocol error: %s", rio->reader->errstr);
            fail_read(ac, REDIS_ERR_PROTOCOL, reason);
            return false;
        }
        if (!reply)
            return true;
        /* As hiredis runs a callback: a redisAsyncFree from inside it
         * waits until it returns (REDIS_FREEING), and is done here. */
        c->flags |= REDIS_IN_CALLBACK;
        rio->on_reply(ac, reply, rio->reply_data);
        c->flags &= ~REDIS_IN_CALLBACK;
        rio->reader->fn->freeObject(reply);
        if (c->flags & REDIS_FREEING) {
            redisAsyncFree(ac);
            return false;
        }
    }
}

static void read_replies(sh_redis_io_t *rio)
{
    char buf[REPLY_READ_BYTES];
    for (int i = 0; i < REPLY_READS_LIMIT; i++) {
        ssize_t n = read(rio->ac->c.fd, buf, sizeof(buf));
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        if (n <= 0) {
            fail_read(rio->ac, n == 0 ? REDIS_ERR_EOF : REDIS_ERR_IO,
                      n == 0 ? "Server closed the connection" : strerror(errno));
            return;
        }
        /* Fed a slice at a time, each slice's replies taken before the
         * next: the reader moves its unread bytes to the front of its
         * buffer each time it has consumed 1 KiB (sdsrange), so a whole
         * read fed at once was moved again and again, ~32 times its size
         * for 64 KiB of small messages (perf: 1.2% of siohubd's CPU). */
        for (size_t at = 0; at < (size_t)n; at += REPLY_FEED_BYTES) {
            size_t len = (size_t)n - at < REPLY_FEED_BYTES ? (size_t)n - at : REPLY_FEED_BYTES;
            if (redisReaderFeed(rio->reader, buf + at, len) != REDIS_OK) {
                fail_read(rio->ac, REDIS_ERR_OOM, "Out of memory");
                return;
            }
            if (!deliver_replies(rio))
                return;
        }
    }
}

static void on_ready(sh_loop_t *loop, sh_io_t *io, unsigned events)
{
    sh_redis_io_t *rio = io->data;
    if (rio->on_dispatch)
        rio->on_dispatch(rio, true);
    /* An error (ECONNREFUSED while connecting, a reset) is found by the
     * handler that reads or checks the socket: the read side when hiredis
     * watches it, else the write side (connect in progress). */
    if (rio->ac && rio->reader && (events & SH_IO_READ)) {
        read_replies(rio);
    } else if (rio->ac && (events & SH_IO_READ)) {
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
        /* Ahead of the sockets' flushes: Redis (and the nodes behind it)
         * then work on a publish while this loop writes to its own
         * clients, and its answer is often in by the time the loop waits
         * again, which then costs no sleep and wake-up. */
        sh_defer_schedule_first(rio->loop, &rio->write_defer, on_write_defer, rio);
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
    if (rio->reader) {
        redisReaderFree(rio->reader);
        rio->reader = NULL;
    }
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
    rio->reader = NULL;
    ac->data = rio;
    ac->ev.data = rio;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    return 0;
}

int sh_redis_io_read_replies(sh_redis_io_t *rio, redisCallbackFn *fn, void *data)
{
    if (!rio->ac || rio->reader)
        return -EINVAL;
    rio->reader = redisReaderCreateWithFunctions(&sh_redis_reply_functions);
    if (!rio->reader)
        return -ENOMEM;
    /* Fed 2 KiB at a time and drained after each slice, the buffer holds
     * a slice and the start of one message: it grows only for a message
     * larger than that, and gives such a buffer back once it is read
     * (hiredis frees an empty buffer whose free space passes maxbuf), so
     * one huge message does not pin its size for the connection's life. */
    rio->reader->maxbuf = REPLY_KEEP_BYTES;
    rio->on_reply = fn;
    rio->reply_data = data;
    return 0;
}
