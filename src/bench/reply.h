/* bench/reply.h — the text a chat token carries: the reply so far.
 *
 * Open WebUI's middleware emits a chat:completion event for every delta
 * of a model's stream, and its content is the whole reply up to that
 * delta (serialize_content_blocks of the blocks so far), not the delta:
 * a reply of N tokens is N events whose content grows from one token to
 * all N. With --reply-tokens N the chat scenario sends that shape, so a
 * server's per-byte costs (reading, encoding, copying the text) weigh as
 * they do behind Open WebUI; without it every token is " tok".
 *
 * A reply is a fixed text of N tokens, the same in every process: words
 * with a leading space, punctuation, markdown marks and paragraph breaks
 * (~5 bytes a token, about what English text gives in GPT-style tokenizers). It
 * is ASCII and escapes only '\n' and '"', which JSON.stringify,
 * Python's json.dumps and a pass-through server all write the same way,
 * so a tab can compare the bytes it gets with the bytes that were sent.
 * Token seq of a user carries tokens 0 .. seq mod N of the reply.
 */
#ifndef SB_REPLY_H
#define SB_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The reply's language (--reply-language). Chinese is sent as Python's
 * json.dumps writes it, which is how Open WebUI's backend publishes every
 * event: each character a \uXXXX escape (~12 bytes a token). A server that
 * decodes and re-encodes it with JSON.stringify (Node) sends the UTF-8
 * instead; the check takes either. */
typedef enum sb_reply_language { SB_REPLY_EN, SB_REPLY_ZH } sb_reply_language_t;

typedef struct sb_reply {
    char *json;    /* the whole reply, JSON-escaped, no quotes */
    uint32_t *end; /* [k]: bytes of json up to and including token k */
    char *raw;     /* zh: the same as JSON.stringify writes it (UTF-8); else NULL */
    uint32_t *raw_end;
    unsigned tokens;
} sb_reply_t;

/* Builds the reply of tokens (> 0) tokens. */
void sb_reply_init(sb_reply_t *r, unsigned tokens, sb_reply_language_t language);
void sb_reply_release(sb_reply_t *r);

/* The escaped content token seq carries; returns its length. */
size_t sb_reply_content(const sb_reply_t *r, uint64_t seq, const char **text);

/* Whether a chat event's argument text carries exactly that content as
 * its "content" string. */
bool sb_reply_check(const sb_reply_t *r, uint64_t seq, const char *args, size_t alen);

#endif
