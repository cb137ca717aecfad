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

/* Chinese words (UTF-8), for --reply-language zh; a few of them are
 * characters above U+FFFF (an emoji), which JSON escapes as a surrogate
 * pair. */
static const char *const words_zh[] = {
    "的",   "的",   "是",   "在",   "一个", "我们", "可以", "这个", "服务器", "客户端",
    "消息", "模型", "返回", "每个", "连接", "请求", "数据", "房间", "事件",   "函数",
    "设置", "例如", "响应", "首先", "然后", "当",   "需要", "使用", "所有",   "更多",
    "也",   "如何", "时间", "只有", "代码", "文件", "运行", "列表", "新的",   "你的",
    "流式", "输出", "令牌", "频道", "用户", "正在", "输入", "😀",
};
#define NWORDS_ZH (sizeof(words_zh) / sizeof(words_zh[0]))

/* Appends UTF-8 text to the two renderings of a reply: esc as Python's
 * json.dumps writes it (every character above U+007F a lowercase \uXXXX,
 * a surrogate pair above U+FFFF), raw as JSON.stringify does (the UTF-8
 * itself). '"' and '\n' are escaped in both. The text is this file's own
 * (valid UTF-8). */
static void put_text(const char *utf8, char *esc, size_t *elen, char *raw, size_t *rlen)
{
    const unsigned char *p = (const unsigned char *)utf8;
    while (*p) {
        if (*p < 0x80) {
            const char *e = *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;
            size_t n = e ? 2 : 1;
            memcpy(esc + *elen, e ? e : (const char *)p, n);
            memcpy(raw + *rlen, e ? e : (const char *)p, n);
            *elen += n;
            *rlen += n;
            p++;
            continue;
        }
        unsigned len = *p >= 0xF0 ? 4 : *p >= 0xE0 ? 3 : 2;
        unsigned cp = *p & (0x7F >> len);
        for (unsigned i = 1; i < len; i++)
            cp = cp << 6 | (p[i] & 0x3F);
        memcpy(raw + *rlen, p, len);
        *rlen += len;
        p += len;
        if (cp > 0xFFFF) {
            cp -= 0x10000;
            *elen += (size_t)sprintf(esc + *elen, "\\u%04x\\u%04x", 0xD800 + (cp >> 10),
                                     0xDC00 + (cp & 0x3FF));
        } else {
            *elen += (size_t)sprintf(esc + *elen, "\\u%04x", cp);
        }
    }
}

/* The next token of a Chinese reply, as put_text writes it. */
static void token_text_zh(char *esc, size_t *elen, char *raw, size_t *rlen, uint64_t *rng,
                          unsigned *para)
{
    uint64_t x = sb_rand_next(rng);
    const char *word = words_zh[(x >> 8) % NWORDS_ZH];
    unsigned kind = (unsigned)(x % 100);
    char text[64];
    if (*para == 0) {
        *para = 30 + (unsigned)((x >> 16) % 40);
        snprintf(text, sizeof(text), "\n\n");
    } else {
        (*para)--;
        if (kind < 8)
            snprintf(text, sizeof(text), "%s", kind < 5 ? "，" : "。");
        else if (kind < 11)
            snprintf(text, sizeof(text), " `%s` ", word);
        else if (kind < 13)
            snprintf(text, sizeof(text), "“%s”", word); /* Chinese quotes */
        else if (kind < 14)
            snprintf(text, sizeof(text), "\"%s\"", word);
        else
            snprintf(text, sizeof(text), "%s", word);
    }
    put_text(text, esc, elen, raw, rlen);
}

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

void sb_reply_init(sb_reply_t *r, unsigned tokens, sb_reply_language_t language)
{
    /* The longest English token is " \"function\"" escaped, the longest
     * Chinese one " `服务器` " (three \uXXXX): well under 32 bytes. */
    r->json = sb_xcalloc((size_t)tokens * 32 + 1, 1);
    r->end = sb_xcalloc(tokens, sizeof(*r->end));
    r->raw = NULL;
    r->raw_end = NULL;
    r->tokens = tokens;
    uint64_t rng = 0x5eed0f0e9b3a7c41ull; /* the same reply in every process */
    unsigned para = 40;
    size_t len = 0, raw_len = 0;
    if (language == SB_REPLY_ZH) {
        r->raw = sb_xcalloc((size_t)tokens * 32 + 1, 1);
        r->raw_end = sb_xcalloc(tokens, sizeof(*r->raw_end));
    }
    for (unsigned k = 0; k < tokens; k++) {
        if (language == SB_REPLY_ZH) {
            token_text_zh(r->json, &len, r->raw, &raw_len, &rng, &para);
            r->raw_end[k] = (uint32_t)raw_len;
        } else {
            len += token_text(r->json + len, &rng, &para);
        }
        r->end[k] = (uint32_t)len;
    }
}

void sb_reply_release(sb_reply_t *r)
{
    free(r->json);
    free(r->end);
    free(r->raw);
    free(r->raw_end);
    memset(r, 0, sizeof(*r));
}

size_t sb_reply_content(const sb_reply_t *r, uint64_t seq, const char **text)
{
    *text = r->json;
    return r->end[seq % r->tokens];
}

/* Whether the string at q (after its opening quote, before end) is want. */
static bool string_is(const char *q, const char *end, const char *want, size_t n)
{
    return (size_t)(end - q) > n && !memcmp(q, want, n) && q[n] == '"';
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
    /* ASCII is written by every server as it was sent; a server that
     * decodes and re-encodes Chinese with JSON.stringify writes the
     * characters, not their escapes. */
    return string_is(q, end, want, n) ||
           (r->raw && string_is(q, end, r->raw, r->raw_end[seq % r->tokens]));
}
