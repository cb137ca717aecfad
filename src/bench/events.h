/* bench/events.h — reading events out of the text a server sends: the
 * JSON array of a Socket.IO EVENT packet, and the fields of an SSE event
 * block.
 *
 * Pure: no I/O, no allocation. The readers take untrusted bytes, read only
 * inside p[0..n) and hand out spans into it; they check the framing the
 * bench relies on, not that the JSON inside is valid (the checks on the
 * messages themselves do that).
 */
#ifndef SB_EVENTS_H
#define SB_EVENTS_H

#include <stdbool.h>
#include <stddef.h>

/* The contents of a JSON array text "[...]" (trailing spaces and line ends
 * allowed), without its brackets; false if it is not one. */
bool sb_event_array_body(const char *p, size_t n, const char **body, size_t *blen);

/* An EVENT packet's array "[\"name\",args...]": the name as written
 * between its quotes (escapes left in) and the arguments after the comma,
 * without the brackets (empty when there are none). False when the text
 * is not an array that starts with a string. */
bool sb_event_split(const char *p, size_t n, const char **name, size_t *nlen, const char **args,
                    size_t *alen);

/* The session id in an Engine.IO open packet or an SSE connect event: the
 * string after the first "sid":" (no escapes in it), copied to sid with
 * its NUL. False when there is none, it is not closed, or it does not fit
 * in size bytes. */
bool sb_event_sid(const char *p, size_t n, char *sid, size_t size);

/* The value of the first line "name: value" of an SSE event block
 * p[0..n) (lines end in '\n'; one space after the colon is dropped). */
bool sb_sse_field(const char *p, size_t n, const char *name, const char **v, size_t *vl);

#endif
