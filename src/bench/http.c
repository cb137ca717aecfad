/* bench/http.c — HTTP/1.1 client codec (see http.h). */
#include "bench/http.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

enum { CH_SIZE, CH_SIZE_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER, CH_END };

static bool header_is(const char *name, size_t nl, const char *want)
{
    return strlen(want) == nl && !strncasecmp(name, want, nl);
}

int sb_http_parse_head(const char *p, size_t n, sb_http_head_t *h)
{
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end)
        return n > SB_HTTP_MAX_HEAD ? -EPROTO : -EAGAIN;
    memset(h, 0, sizeof(*h));
    h->head_len = (size_t)(end - p) + 4;
    h->content_length = -1;
    if (h->head_len < 16 || memcmp(p, "HTTP/1.", 7) || p[8] != ' ')
        return -EPROTO;
    for (int i = 9; i < 12; i++)
        if (p[i] < '0' || p[i] > '9')
            return -EPROTO;
    h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    const char *line = memchr(p, '\n', h->head_len);
    if (!line)
        return -EPROTO;
    line++;
    while (line < end) {
        const char *eol = memchr(line, '\r', (size_t)(end + 2 - line));
        if (!eol)
            return -EPROTO;
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon) {
            size_t nl = (size_t)(colon - line);
            const char *v = colon + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            size_t vl = (size_t)(eol - v);
            if (header_is(line, nl, "content-length")) {
                long long cl = 0;
                if (!vl)
                    return -EPROTO;
                for (size_t i = 0; i < vl; i++) {
                    if (v[i] < '0' || v[i] > '9' || cl > (1ll << 40))
                        return -EPROTO;
                    cl = cl * 10 + (v[i] - '0');
                }
                h->content_length = cl;
            } else if (header_is(line, nl, "connection")) {
                h->close = vl >= 5 && !strncasecmp(v, "close", 5);
            } else if (header_is(line, nl, "transfer-encoding")) {
                h->chunked = vl >= 7 && !strncasecmp(v, "chunked", 7);
            } else if (header_is(line, nl, "sec-websocket-accept")) {
                h->accept = v;
                h->accept_len = vl;
            }
        }
        line = eol + 2;
    }
    return 0;
}

int sb_chunked_feed(sb_chunked_t *d, const char *p, size_t n, size_t *used, sb_buf_t *out)
{
    size_t i = 0;
    while (i < n && d->state != CH_END) {
        char ch = p[i];
        switch (d->state) {
        case CH_SIZE: {
            int v = ch >= '0' && ch <= '9'   ? ch - '0'
                    : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                    : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                             : -1;
            if (v >= 0) {
                if (d->left >> 56)
                    return -EPROTO;
                d->left = d->left * 16 + (uint64_t)v;
            } else if (ch == ';' || ch == ' ') {
                d->state = CH_SIZE_EXT;
            } else if (ch == '\r') {
                d->state = CH_SIZE_LF;
            } else {
                return -EPROTO;
            }
            i++;
            break;
        }
        case CH_SIZE_EXT:
            if (ch == '\r')
                d->state = CH_SIZE_LF;
            i++;
            break;
        case CH_SIZE_LF:
            if (ch != '\n')
                return -EPROTO;
            d->state = d->left ? CH_DATA : CH_TRAILER;
            i++;
            break;
        case CH_DATA: {
            size_t take = n - i < d->left ? n - i : (size_t)d->left;
            sb_buf_append(out, p + i, take);
            d->left -= take;
            i += take;
            if (!d->left)
                d->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (ch != '\r')
                return -EPROTO;
            d->state = CH_DATA_LF;
            i++;
            break;
        case CH_DATA_LF:
            if (ch != '\n')
                return -EPROTO;
            d->state = CH_SIZE;
            i++;
            break;
        case CH_TRAILER:
            /* Only an empty trailer: the final CRLF. */
            if (ch == '\r') {
                i++;
            } else if (ch == '\n') {
                d->state = CH_END;
                i++;
            } else {
                return -EPROTO;
            }
            break;
        }
    }
    *used = i;
    return d->state == CH_END ? 1 : 0;
}

int sb_http_parse_response(const char *p, size_t n, sb_http_head_t *h, const char **body,
                           size_t *blen, size_t *used, sb_buf_t *scratch)
{
    int rc = sb_http_parse_head(p, n, h);
    if (rc < 0)
        return rc;
    const char *b = p + h->head_len;
    size_t left = n - h->head_len;
    if (h->chunked) {
        sb_chunked_t d = {0};
        size_t u = 0;
        sb_buf_reset(scratch);
        rc = sb_chunked_feed(&d, b, left, &u, scratch);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return -EAGAIN;
        *body = sb_buf_head(scratch);
        *blen = sb_buf_avail(scratch);
        *used = h->head_len + u;
        return 0;
    }
    if (h->content_length < 0) {
        /* 1xx, 204 and 304 have no body. */
        if (h->status < 200 || h->status == 204 || h->status == 304) {
            *body = b;
            *blen = 0;
            *used = h->head_len;
            return 0;
        }
        return -EPROTO;
    }
    if (left < (unsigned long long)h->content_length)
        return -EAGAIN;
    *body = b;
    *blen = (size_t)h->content_length;
    *used = h->head_len + (size_t)h->content_length;
    return 0;
}

long sb_http_responses(const char *p, size_t n, sb_http_response_cb fn, void *arg, uint64_t now)
{
    size_t used = 0;
    long rc = 0;
    sb_buf_t scratch = {0}; /* only a chunked answer allocates */
    while (used < n) {
        sb_http_head_t h;
        const char *body;
        size_t blen, u;
        int prc = sb_http_parse_response(p + used, n - used, &h, &body, &blen, &u, &scratch);
        if (prc == -EAGAIN)
            break;
        if (prc < 0) {
            rc = -EPROTO;
            break;
        }
        used += u;
        if (!fn(arg, &h, body, blen, now)) {
            used = n;
            break;
        }
    }
    sb_buf_release(&scratch);
    return rc < 0 ? rc : (long)used;
}

void sb_http_request(sb_buf_t *out, const char *method, const char *target, const char *host,
                     const char *headers, const char *body, size_t blen)
{
    sb_buf_printf(out, "%s %s HTTP/1.1\r\nHost: %s\r\n%s", method, target, host,
                  headers ? headers : "");
    if (body) {
        sb_buf_printf(out, "Content-Length: %zu\r\n\r\n", blen);
        sb_buf_append(out, body, blen);
    } else {
        sb_buf_puts(out, "\r\n");
    }
}

bool sb_json_int(const char *p, size_t n, const char *key, int64_t *out)
{
    size_t kl = strlen(key);
    const char *k = memmem(p, n, key, kl);
    if (!k)
        return false;
    const char *q = k + kl, *end = p + n;
    while (q < end && *q == ' ')
        q++;
    bool neg = q < end && *q == '-';
    if (neg)
        q++;
    if (q >= end || *q < '0' || *q > '9')
        return false;
    int64_t v = 0;
    while (q < end && *q >= '0' && *q <= '9' && v < (INT64_MAX - 9) / 10)
        v = v * 10 + (*q++ - '0');
    *out = neg ? -v : v;
    return true;
}
