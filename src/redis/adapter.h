/* adapter.h — a hiredis async context driven by our loop (the shape of
 * hiredis' adapters/libuv.h).
 *
 * hiredis asks for read/write interest through five hooks; we keep one
 * level-triggered fd watch whose events follow those requests, and call
 * redisAsyncHandleRead/Write when the fd is ready. Level-triggered because
 * hiredis reads at most 16 KiB per call and relies on being called again
 * while bytes remain.
 *
 * Writes on a connected context do not wait for the fd: hiredis asks for
 * write interest after each command it buffers, and the socket almost
 * always has room, so the commands of an iteration go out in one deferred
 * call at its end, with no EPOLLOUT watch set and cleared (two epoll_ctl
 * calls and one more wake-up per publish). Only a write that could not
 * finish, or a connect in progress, watches the fd.
 *
 * Lifetime rules (hiredis 0.14 async.c):
 *  - hiredis frees the context itself when the connection fails, inside
 *    redisAsyncHandleRead/Write, and inside redisAsyncFree unless a reply
 *    callback of that context is running (then after it returns). Every
 *    path goes through the cleanup hook, exactly once: there we stop the
 *    watch, clear rio->ac and tell the owner through on_cleanup. After it
 *    the context is gone; rio (embedded in its owner) stays valid.
 *  - The watch callback checks rio->ac again between the read and the write
 *    handler, because the read may have freed the context.
 *  - on_dispatch (optional) brackets each event delivery: hiredis runs the
 *    owner's reply callbacks and then still touches rio (cleanup) before
 *    redisAsyncHandleRead returns, so an owner freed from inside a reply
 *    callback must postpone releasing its memory until the bracket closes.
 *  - onConnect callbacks must not free the context (0.14 does not check for
 *    it after the callback).
 */
#ifndef SH_REDIS_ADAPTER_H
#define SH_REDIS_ADAPTER_H

#include <stdbool.h>

#include <hiredis/async.h>

#include "loop/loop.h"

typedef struct sh_redis_io sh_redis_io_t;

struct sh_redis_io {
    sh_loop_t *loop;
    redisAsyncContext *ac; /* NULL when detached or freed by hiredis */
    sh_io_t io;
    unsigned want;          /* SH_IO_READ | SH_IO_WRITE as hiredis last asked */
    sh_defer_t write_defer; /* the end-of-iteration write */
    bool in_write;          /* inside that write: more to write needs the fd */
    /* hiredis is freeing rio->ac (still readable: ac->c.err, errstr). */
    void (*on_cleanup)(sh_redis_io_t *rio, const redisAsyncContext *ac);
    /* Called with true before and false after each event delivery. */
    void (*on_dispatch)(sh_redis_io_t *rio, bool enter);
    void *data;
    /* Set by sh_redis_io_read_replies: the replies are read here. */
    redisReader *reader;
    redisCallbackFn *on_reply;
    void *reply_data;
};

/* Hooks ac into loop through rio (zeroed, or detached since), and sets
 * ac->ev and ac->data = rio. The caller sets rio->on_cleanup, on_dispatch
 * and data. Returns 0, or -EINVAL if ac already has event hooks or a
 * negative fd. */
int sh_redis_io_attach(sh_redis_io_t *rio, sh_loop_t *loop, redisAsyncContext *ac);

/* From now on reads the replies of rio's context itself, with a reader of
 * its own (sh_redis_reply_functions), and hands each to fn as hiredis
 * would hand it to a callback (redisAsyncFree from inside it waits until
 * it returns); hiredis still connects, writes and closes the context.
 *
 * For a subscriber whose handshake is done and whose every later reply
 * goes to one callback: hiredis 0.14 looks up each reply of a subscribed
 * context in its channel table (an sds copy of the channel name, a dict
 * lookup, several strcasecmp: ~1,800 instructions per message, callgrind,
 * more than parsing it) and reads 16 KiB at a time. Nothing may be
 * pending on the context but subscription commands, whose confirmations
 * come to fn too; hiredis' own subscription bookkeeping then stays as the
 * commands left it, which only matters to a context that would leave
 * subscribed mode. The fd is read directly, so it must carry RESP in the
 * clear (TCP or a unix socket; url.c refuses rediss://). A read that
 * fails, a protocol error or end of file closes the context as hiredis
 * does (c->err and errstr set). Returns 0,
 * -EINVAL (no context, or called twice) or -ENOMEM. */
int sh_redis_io_read_replies(sh_redis_io_t *rio, redisCallbackFn *fn, void *data);

#endif
