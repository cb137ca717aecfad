/* bench/reply.c — see reply.h. */
#include "bench/reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/util.h"

/* Words a reply is made of; frequent ones first and more than once, so
 * the text reads like prose to anything that compresses or scans it. */
static const char *const words[] = {
    "the",   "the",     "a",        "to",      "of",      "and",      "in",     "is",
    "that",  "for",     "it",       "with",    "as",      "on",       "this",   "be",
    "you",   "can",     "are",      "or",      "by",      "server",   "client", "message",
    "model", "returns", "each",     "socket",  "value",   "request",  "stream", "token",
    "room",  "event",   "function", "setting", "example", "response", "data",   "first",
    "then",  "when",    "which",    "should",  "will",    "not",      "use",    "one",
    "all",   "more",    "also",     "how",     "into",    "time",     "only",   "set",
    "code",  "file",    "run",      "list",    "like",    "see",      "new",    "your",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

/* Writes the next token's escaped text to out; *para counts the tokens
 * left before the next paragraph break. */
static size_t token_text(char *out, uint64_t *rng, unsigned *para)
{
    uint64_t x = sb_rand_next(rng);
    const char *word = words[(x >> 8) % NWORDS];
    unsigned kind = (unsigned)(x % 100);
    if (*para == 0) {
        *para = 30 + (unsigned)((x >> 16) % 40);
        memcpy(out, "\\n\\n", 4); /* "\n\n", escaped */
        return 4;
    }
    (*para)--;
    if (kind < 8)
        return (size_t)sprintf(out, "%s", kind < 5 ? "," : ".");
    if (kind < 11)
        return (size_t)sprintf(out, " `%s`", word);
    if (kind < 13)
        return (size_t)sprintf(out, " \\\"%s\\\"", word); /* a quoted word */
    if (kind < 15)
        return (size_t)sprintf(out, " **%s**", word);
    return (size_t)sprintf(out, " %s", word);
}

void sb_reply_init(sb_reply_t *r, unsigned tokens)
{
    /* The longest token is " \"function\"" escaped: well under 32 bytes. */
    r->json = sb_xcalloc((size_t)tokens * 32 + 1, 1);
    r->end = sb_xcalloc(tokens, sizeof(*r->end));
    r->tokens = tokens;
    uint64_t rng = 0x5eed0f0e9b3a7c41ull; /* the same reply in every process */
    unsigned para = 40;
    size_t len = 0;
    for (unsigned k = 0; k < tokens; k++) {
        len += token_text(r->json + len, &rng, &para);
        r->end[k] = (uint32_t)len;
    }
}

void sb_reply_release(sb_reply_t *r)
{
    free(r->json);
    free(r->end);
    memset(r, 0, sizeof(*r));
}

size_t sb_reply_content(const sb_reply_t *r, uint64_t seq, const char **text)
{
    *text = r->json;
    return r->end[seq % r->tokens];
}

bool sb_reply_check(const sb_reply_t *r, uint64_t seq, const char *args, size_t alen)
{
    static const char key[] = "\"content\":";
    const char *k = memmem(args, alen, key, sizeof(key) - 1);
    if (!k)
        return false;
    const char *q = k + sizeof(key) - 1, *end = args + alen;
    while (q < end && *q == ' ')
        q++;
    if (q == end || *q++ != '"')
        return false;
    const char *want;
    size_t n = sb_reply_content(r, seq, &want);
    return (size_t)(end - q) > n && !memcmp(q, want, n) && q[n] == '"';
}
