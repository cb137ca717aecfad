/* fuzz_sse — the SSE transport's parsers and renderer on arbitrary bytes.
 * The first byte picks the target, the rest is its input:
 *   0  Last-Event-ID ("<sid>:<seq>"): what parses formats back to itself.
 *   1  a POST body: what parses has a valid name and an args array.
 *   2+ an Engine.IO message rendered as an SSE event: a form is exactly
 *      "event: <name>\ndata: <JSON>\n\n", one event, no other line break,
 *      and the data line reads back as JSON; the form is made once.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "socketio/sse.h"
#include "transport/sse_wire.h"

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

static void fuzz_event_id(const char *p, size_t n)
{
    char sid[SH_SSE_MAX_SID + 1];
    uint64_t seq;
    const char *why = NULL;
    if (sh_sse_parse_event_id(p, n, sid, &seq, &why) != 0) {
        check(why != NULL, "refusal without a reason");
        return;
    }
    char out[SH_SSE_MAX_EVENT_ID + 1];
    size_t len = sh_sse_format_event_id(out, sid, seq);
    check(len == n && memcmp(out, p, n) == 0, "event id round trip");
}

static void fuzz_post(const char *p, size_t n)
{
    sh_sse_post_t post;
    const char *why = NULL;
    if (sh_sse_parse_post(p, n, &post, &why) != 0) {
        check(why != NULL, "refusal without a reason");
        check(post.event == NULL && post.args == NULL, "nothing owned after a refusal");
        return;
    }
    size_t len = strlen(post.event);
    check(len > 0 && len <= SH_SSE_MAX_EVENT_NAME, "event name length");
    check(strcmp(post.event, "connect") && strcmp(post.event, "disconnect"), "reserved name");
    check(json_is_array(post.args), "args array");
    sh_sse_post_release(&post);
}

static void fuzz_render(const char *p, size_t n, int binary)
{
    sh_msg_t *m = sh_msg_new(p, n, binary);
    sh_msg_t *form = sh_msg_form(m, sh_sio_sse_render);
    check(sh_msg_form(m, sh_sio_sse_render) == form, "rendered once");
    if (form) {
        const char *d = form->data;
        size_t len = form->len;
        check(!form->binary, "text form");
        check(len >= 16 && !memcmp(d, "event: ", 7), "starts with the event line");
        check(d[len - 1] == '\n' && d[len - 2] == '\n', "ends with a blank line");
        const char *nl = memchr(d, '\n', len);
        check(nl && (size_t)(nl - d) + 7 <= len && !memcmp(nl + 1, "data: ", 6), "data line");
        const char *json = nl + 7;
        size_t jlen = (size_t)(d + len - 2 - json);
        check(!memchr(d, '\r', len), "no CR");
        check(!memchr(json, '\n', jlen), "one data line");
        check(strlen(d) == len, "no NUL");
        json_error_t jerr;
        json_t *j = json_loadb(json, jlen, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        check(j != NULL, "data is JSON");
        json_decref(j);
    }
    sh_msg_unref(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0]) {
    case 0:
        fuzz_event_id(p, n);
        break;
    case 1:
        fuzz_post(p, n);
        break;
    default:
        fuzz_render(p, n, data[0] == 0xff);
        break;
    }
    return 0;
}
