/* transport/sse_wire.h — the SSE transport's wire pieces: pure, no I/O.
 *
 * Event ids. Each event of an SSE session carries "id: <session>:<seq>":
 * the Engine.IO session id and a sequence number counting that session's
 * events from 1. EventSource sends the last one back in Last-Event-ID when
 * it reconnects, so the id alone says which session to resume and from
 * where (the "id: <seq>", with the session in front so that no
 * other state is needed to find it). Clients that cannot set headers pass
 * it as the lastEventId query parameter.
 *
 * Client -> server. POST <path>sse/<socket id> carries one event as JSON:
 *   {"event": "name", "args": [ ... ], "ack": true}
 * "args" (default []) and "ack" (default false) are optional; other keys
 * are ignored. The name follows Socket.IO's rules for a client's EVENT: a
 * non-empty string, not a reserved name (connect, connect_error,
 * disconnect, disconnecting, newListener, removeListener).
 *
 * Parsers check lengths before reading, never abort, and name the reason
 * of a refusal.
 */
#ifndef SH_TRANSPORT_SSE_WIRE_H
#define SH_TRANSPORT_SSE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Longest session id an event id may carry (ours are SH_ID_LEN). */
#define SH_SSE_MAX_SID 64
/* Longest event id written or accepted: sid, ':', 20 digits. */
#define SH_SSE_MAX_EVENT_ID (SH_SSE_MAX_SID + 1 + 20)
/* Longest event name accepted in a POST. */
#define SH_SSE_MAX_EVENT_NAME 256

/* Parses an event id "<sid>:<seq>" (s[0..n), not NUL-terminated in
 * general): sid is 1..SH_SSE_MAX_SID characters of [A-Za-z0-9_-], seq a
 * decimal uint64 without sign, spaces or leading zeros. Returns 0 with sid
 * (NUL-terminated) and *seq set, or -EINVAL with *why (may be NULL) naming
 * the flaw. */
int sh_sse_parse_event_id(const char *s, size_t n, char sid[SH_SSE_MAX_SID + 1], uint64_t *seq,
                          const char **why);

/* Writes "<sid>:<seq>" into out (at least SH_SSE_MAX_EVENT_ID + 1 bytes)
 * and returns its length. */
size_t sh_sse_format_event_id(char *out, const char *sid, uint64_t seq);

typedef struct sh_sse_post {
    char *event;  /* owned, NUL-free UTF-8 */
    json_t *args; /* owned JSON array */
    bool ack;
} sh_sse_post_t;

/* Parses a POST body (len bytes, need not be NUL-terminated). Returns 0
 * with *out owning its fields (sh_sse_post_release), or -EINVAL with *why
 * naming the flaw and nothing to release. */
int sh_sse_parse_post(const char *body, size_t len, sh_sse_post_t *out, const char **why);
void sh_sse_post_release(sh_sse_post_t *p);

#endif
