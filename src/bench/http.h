/* bench/http.h — the HTTP/1.1 client side siohub-bench needs: response
 * heads, whole responses, chunked streams (SSE), request writing, and a
 * lenient integer lookup in JSON text.
 *
 * Parsers take untrusted bytes, check lengths before reading, never
 * abort: 0 when done, -EAGAIN for "need more bytes", -EPROTO when the
 * bytes are not what was expected.
 */
#ifndef SB_HTTP_H
#define SB_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench/buf.h"

#define SB_HTTP_MAX_HEAD 65536

typedef struct sb_http_head {
    int status;
    size_t head_len;          /* bytes up to and including the blank line */
    long long content_length; /* -1: none */
    bool close;               /* Connection: close */
    bool chunked;             /* Transfer-Encoding: chunked */
    const char *accept;       /* Sec-WebSocket-Accept value (borrowed), or NULL */
    size_t accept_len;
} sb_http_head_t;

/* Parses a response head at p[0..n). */
int sb_http_parse_head(const char *p, size_t n, sb_http_head_t *h);

/* Parses one whole response (Content-Length or chunked body) at p[0..n).
 * On 0: *body / *blen is the body (de-chunked into *scratch when
 * chunked, else in place) and *used the response's bytes. A response
 * with neither length nor chunking is -EPROTO (we need keep-alive). */
int sb_http_parse_response(const char *p, size_t n, sb_http_head_t *h, const char **body,
                           size_t *blen, size_t *used, sb_buf_t *scratch);

/* Called for each whole response: the head and the body (borrowed, valid
 * during the call). Returns false to stop (the connection was closed or
 * reopened meanwhile). */
typedef bool (*sb_http_response_cb)(void *arg, const sb_http_head_t *h, const char *body,
                                    size_t blen, uint64_t now);
/* Calls fn for each whole response in p[0..n) until it returns false.
 * Returns the bytes of the responses handed over (all of n when fn
 * stopped), or -EPROTO (nothing was handed over after the bad one). */
long sb_http_responses(const char *p, size_t n, sb_http_response_cb fn, void *arg, uint64_t now);

/* An incremental chunked-body decoder for streams; the zero value starts
 * at a chunk size line. */
typedef struct sb_chunked {
    uint64_t left; /* data bytes left in the current chunk */
    uint8_t state;
} sb_chunked_t;

/* Decodes p[0..n): appends the data to *out, sets *used. Returns 0 (more
 * may come), 1 at the end of the body (the last chunk), -EPROTO. */
int sb_chunked_feed(sb_chunked_t *d, const char *p, size_t n, size_t *used, sb_buf_t *out);

/* Appends a request: "METHOD target HTTP/1.1", Host, the extra header
 * lines (each ending in \r\n, may be NULL), and when body is not NULL a
 * Content-Length and the body. */
void sb_http_request(sb_buf_t *out, const char *method, const char *target, const char *host,
                     const char *headers, const char *body, size_t blen);

/* Finds key (with its quotes and colon, e.g. "\"seq\":") in p[0..n) and
 * reads the integer after it (spaces allowed before it). */
bool sb_json_int(const char *p, size_t n, const char *key, int64_t *out);

#endif
