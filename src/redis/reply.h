/* redis/reply.h — hiredis replies built in a few blocks instead of a
 * malloc per object.
 *
 * hiredis' reader builds each reply as a tree of redisReply objects with
 * its default functions: a malloc for every object, another for every
 * string's copy and for every array's element vector, and a free for each
 * again. A pub/sub message is an array of three strings, so a subscriber
 * paid eight mallocs and eight frees per message: under a fleet's stream
 * of tokens that was half of what hiredis cost, more than parsing the
 * RESP itself (callgrind: ~2,000 of ~3,800 instructions per message).
 *
 * The reader lets its owner make the objects (redisReplyObjectFunctions,
 * hiredis' documented hook): sh_redis_reply_use gives a reader functions
 * that put a whole reply — objects, strings, vectors — into one block
 * (more when it outgrows it), and free the blocks when hiredis frees the
 * reply's root, the only object hiredis ever frees (after the reply
 * callback, on a reader error, with the reader). The objects are the
 * redisReply that hiredis' async layer and our callbacks read, with the
 * same lifetime: until the callback returns.
 *
 * A long string (a pub/sub message's payload) is copied into a message
 * (core/msg.h) instead, which a subscriber may keep and turn into the
 * packet the payload carries where its bytes lie (sh_redis_reply_msg).
 */
#ifndef SH_REDIS_REPLY_H
#define SH_REDIS_REPLY_H

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

/* Makes reader build its replies with these functions; before its first
 * reply. */
void sh_redis_reply_use(redisReader *reader);

/* The functions themselves, for a reader made with them. */
extern redisReplyObjectFunctions sh_redis_reply_functions;

/* Strings of this many bytes or more are built as messages. */
#define SH_REDIS_REPLY_MSG_MIN 256

/* The message whose data is the string r (bulk string replies of
 * SH_REDIS_REPLY_MSG_MIN bytes or more, binary, with room before them),
 * borrowed: it lives as long as the reply unless referenced
 * (sh_msg_ref). NULL for a shorter string or another type. Only for
 * replies these functions built. */
struct sh_msg;
struct sh_msg *sh_redis_reply_msg(const redisReply *r);

/* Frees the block kept for the next reply (at exit, for a clean leak
 * report). */
void sh_redis_reply_drain(void);

#endif
