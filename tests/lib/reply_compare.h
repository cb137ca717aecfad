/* reply_compare.h — compares two hiredis reply trees, for the tests of
 * redis/reply.c against hiredis' own reply functions. */
#ifndef SH_TESTS_REPLY_COMPARE_H
#define SH_TESTS_REPLY_COMPARE_H

#include <stdbool.h>
#include <string.h>

#include <hiredis/hiredis.h>

/* True when a and b hold the same type, integer, string bytes and
 * elements, all the way down. */
static inline bool sh_test_reply_equal(const redisReply *a, const redisReply *b)
{
    if (!a || !b)
        return a == b;
    if (a->type != b->type || a->integer != b->integer || a->len != b->len ||
        a->elements != b->elements || !a->str != !b->str)
        return false;
    if (a->str && (memcmp(a->str, b->str, a->len) != 0 || a->str[a->len] != '\0'))
        return false;
    for (size_t i = 0; i < a->elements; i++)
        if (!sh_test_reply_equal(a->element[i], b->element[i]))
            return false;
    return true;
}

#endif
