/* Replies built by redis/reply.c: the same trees hiredis' own functions
 * build, from the same bytes fed whole or a byte at a time; nothing left
 * allocated after a reply is freed, or when the reader fails or is freed
 * in the middle of one (ASan and valgrind tell). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/buf.h"
#include "redis/reply.h"
#include "tests/lib/reply_compare.h"

/* Feeds p to a reader of each kind in chunks of step bytes and checks
 * that they hand out equal replies; returns how many there were. */
static int compare_replies(const char *p, size_t n, size_t step)
{
    redisReader *ours = redisReaderCreateWithFunctions(&sh_redis_reply_functions);
    redisReader *theirs = redisReaderCreate();
    int count = 0;
    for (size_t off = 0; off < n; off += step) {
        size_t len = n - off < step ? n - off : step;
        ck_assert_int_eq(redisReaderFeed(ours, p + off, len), REDIS_OK);
        ck_assert_int_eq(redisReaderFeed(theirs, p + off, len), REDIS_OK);
        for (;;) {
            void *a = NULL, *b = NULL;
            int ra = redisReaderGetReply(ours, &a), rb = redisReaderGetReply(theirs, &b);
            ck_assert_int_eq(ra, rb);
            ck_assert_msg(sh_test_reply_equal(a, b), "reply %d differs (step %zu)", count, step);
            if (a)
                ours->fn->freeObject(a);
            if (b)
                freeReplyObject(b);
            if (ra != REDIS_OK || !a)
                break;
            count++;
        }
        if (ours->err)
            break;
    }
    redisReaderFree(ours);
    redisReaderFree(theirs);
    return count;
}

static void both_ways(const char *p, size_t n, int want)
{
    ck_assert_int_eq(compare_replies(p, n, n ? n : 1), want);
    ck_assert_int_eq(compare_replies(p, n, 1), want);
    ck_assert_int_eq(compare_replies(p, n, 7), want);
}

START_TEST(test_pubsub_messages)
{
    const char *m = "*3\r\n$7\r\nmessage\r\n$8\r\nsocketio\r\n$5\r\nhello\r\n"
                    "*4\r\n$8\r\npmessage\r\n$3\r\na#*\r\n$5\r\na#b#c\r\n$0\r\n\r\n"
                    "*3\r\n$9\r\nsubscribe\r\n$8\r\nsocketio\r\n:1\r\n";
    both_ways(m, strlen(m), 3);
}
END_TEST

START_TEST(test_every_kind)
{
    const char *m = "+OK\r\n-ERR wrong\r\n:-42\r\n$-1\r\n*-1\r\n*0\r\n$0\r\n\r\n"
                    "*2\r\n*2\r\n:1\r\n$-1\r\n*1\r\n*1\r\n+deep\r\n";
    /* the last line is one reply: [[1, nil], [["deep"]]] */
    both_ways(m, strlen(m), 8);
}
END_TEST

/* Strings bigger than a block, and more elements than the first block
 * holds, so replies take several blocks of both kinds. */
START_TEST(test_large_replies)
{
    sh_buf_t b = SH_BUF_INIT;
    size_t sizes[] = {900, 4000, 5000, 70000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        sh_buf_appendf(&b, "*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$%zu\r\n", sizes[i]);
        for (size_t k = 0; k < sizes[i]; k++)
            sh_buf_append(&b, &"abcdefgh"[k % 8], 1);
        sh_buf_append(&b, "\r\n", 2);
    }
    sh_buf_appendf(&b, "*1000\r\n");
    for (int k = 0; k < 1000; k++)
        sh_buf_appendf(&b, "$%d\r\n%d\r\n", k < 10 ? 1 : k < 100 ? 2 : 3, k);
    both_ways(sh_buf_peek(&b), sh_buf_avail(&b), 5);
    sh_buf_release(&b);
}
END_TEST

/* A reply reads one large string; returns it (still owned by the reader's
 * functions). */
static redisReply *read_large(redisReader *r, char fill, size_t size)
{
    sh_buf_t b = SH_BUF_INIT;
    sh_buf_appendf(&b, "*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$%zu\r\n", size);
    for (size_t k = 0; k < size; k++)
        sh_buf_append(&b, &fill, 1);
    sh_buf_append(&b, "\r\n", 2);
    void *reply = NULL;
    ck_assert_int_eq(redisReaderFeed(r, sh_buf_peek(&b), sh_buf_avail(&b)), REDIS_OK);
    ck_assert_int_eq(redisReaderGetReply(r, &reply), REDIS_OK);
    sh_buf_release(&b);
    redisReply *rr = reply;
    ck_assert(rr && rr->elements == 3 && rr->element[2]->len == size);
    return rr;
}

static void assert_filled(const redisReply *rr, char fill)
{
    const redisReply *s = rr->element[2];
    for (size_t k = 0; k < s->len; k++)
        ck_assert_int_eq(s->str[k], fill);
}

/* The block a freed reply leaves for the next one is never one a reply
 * still alive uses: replies of two readers, one kept while the other's
 * come and go, each as it was read. */
START_TEST(test_block_reuse)
{
    redisReader *a = redisReaderCreateWithFunctions(&sh_redis_reply_functions);
    redisReader *b = redisReaderCreateWithFunctions(&sh_redis_reply_functions);
    redisReply *kept = read_large(a, 'k', 3000);
    for (int i = 0; i < 4; i++) {
        redisReply *r = read_large(b, (char)('a' + i), i % 2 ? 6000 : 2500);
        assert_filled(kept, 'k');
        assert_filled(r, (char)('a' + i));
        b->fn->freeObject(r);
    }
    redisReply *next = read_large(a, 'n', 2000);
    assert_filled(kept, 'k');
    assert_filled(next, 'n');
    a->fn->freeObject(kept);
    a->fn->freeObject(next);
    redisReaderFree(a);
    redisReaderFree(b);
    sh_redis_reply_drain();
    sh_redis_reply_drain(); /* twice: nothing kept */
}
END_TEST

/* A protocol error in the middle of a reply: the reader frees the part it
 * built (the root), and says so the same way. */
START_TEST(test_error_mid_reply)
{
    const char *m = "*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n!bad\r\n";
    ck_assert_int_eq(compare_replies(m, strlen(m), strlen(m)), 0);
    ck_assert_int_eq(compare_replies(m, strlen(m), 1), 0);
}
END_TEST

/* A reader freed with half a reply in it frees that half. */
START_TEST(test_free_mid_reply)
{
    const char *m = "*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$10\r\nhal";
    redisReader *r = redisReaderCreateWithFunctions(&sh_redis_reply_functions);
    void *reply = NULL;
    ck_assert_int_eq(redisReaderFeed(r, m, strlen(m)), REDIS_OK);
    ck_assert_int_eq(redisReaderGetReply(r, &reply), REDIS_OK);
    ck_assert_ptr_null(reply);
    redisReaderFree(r);
}
END_TEST

/* sh_redis_reply_use turns a reader made with hiredis' functions. */
START_TEST(test_use_on_a_reader)
{
    redisReader *r = redisReaderCreate();
    sh_redis_reply_use(r);
    ck_assert_ptr_eq(r->fn, &sh_redis_reply_functions);
    const char *m = "*2\r\n$1\r\na\r\n:7\r\n";
    void *reply = NULL;
    ck_assert_int_eq(redisReaderFeed(r, m, strlen(m)), REDIS_OK);
    ck_assert_int_eq(redisReaderGetReply(r, &reply), REDIS_OK);
    redisReply *rr = reply;
    ck_assert(rr && rr->type == REDIS_REPLY_ARRAY && rr->elements == 2);
    ck_assert_str_eq(rr->element[0]->str, "a");
    ck_assert(rr->element[1]->integer == 7);
    r->fn->freeObject(reply);
    redisReaderFree(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("redis_reply");
    TCase *tc = tcase_create("redis_reply");
    tcase_add_test(tc, test_pubsub_messages);
    tcase_add_test(tc, test_every_kind);
    tcase_add_test(tc, test_large_replies);
    tcase_add_test(tc, test_block_reuse);
    tcase_add_test(tc, test_error_mid_reply);
    tcase_add_test(tc, test_free_mid_reply);
    tcase_add_test(tc, test_use_on_a_reader);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    sh_redis_reply_drain();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
