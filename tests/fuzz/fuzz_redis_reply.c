/* fuzz_redis_reply — hiredis' reader with redis/reply.c's functions
 * against the same reader with hiredis' own, on arbitrary bytes fed in
 * chunks the input chooses: the same replies or the same error, and
 * nothing leaked (ASan) however a reply ends. The first byte sets the
 * chunk size, so splits inside headers and strings are explored. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <hiredis/hiredis.h>

#include "core/msg.h"
#include "redis/reply.h"
#include "tests/lib/reply_compare.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A message holds a long string only (the first few of a reply: the
 * rest are copied as short ones are), its data the string itself. */
static void check_msgs(const redisReply *r)
{
    const sh_msg_t *m = sh_redis_reply_msg(r);
    if (m && (r->type != REDIS_REPLY_STRING || r->len < SH_REDIS_REPLY_MSG_MIN ||
              m->data != r->str || m->len != r->len))
        abort();
    if (r->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < r->elements; i++)
            check_msgs(r->element[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* hiredis allocates an array's element vector when it reads the
     * header, whatever the count, with its functions as with ours: an
     * input may not ask for gigabytes that way (Redis, the peer, is
     * trusted; this checks our objects, not hiredis' limits). */
    for (size_t i = 0, digits = 0; i < size; i++) {
        digits = data[i] >= '0' && data[i] <= '9' ? digits + 1 : 0;
        if (digits > 6)
            return 0;
    }
    size_t step = data[0] % 32 + 1;
    data++;
    size--;
    redisReader *ours = redisReaderCreateWithFunctions(&sh_redis_reply_functions);
    redisReader *theirs = redisReaderCreate();
    for (size_t off = 0; off < size; off += step) {
        size_t len = size - off < step ? size - off : step;
        redisReaderFeed(ours, (const char *)data + off, len);
        redisReaderFeed(theirs, (const char *)data + off, len);
        int ra, rb;
        do {
            void *a = NULL, *b = NULL;
            ra = redisReaderGetReply(ours, &a);
            rb = redisReaderGetReply(theirs, &b);
            if (ra != rb || !sh_test_reply_equal(a, b)) {
                fprintf(stderr, "replies differ at byte %zu\n", off);
                abort();
            }
            if (a) {
                check_msgs(a);
                ours->fn->freeObject(a);
            }
            if (b)
                freeReplyObject(b);
            if (!a)
                break;
        } while (ra == REDIS_OK);
        if (ra != REDIS_OK)
            break;
    }
    redisReaderFree(ours);
    redisReaderFree(theirs);
    return 0;
}
