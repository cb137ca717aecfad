#include "redis/url.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "core/alloc.h"

#define HOST_MAX 253

static int fail(sh_buf_t *err, const char *msg)
{
    if (err)
        sh_buf_appendf(err, "invalid Redis URL: %s", msg);
    return -EINVAL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into a new string (*out). A '%' must start two hex
 * digits, and %00 is refused: the result is handed on as a C string. */
static int decode(const char *s, size_t n, char **out, const char *what, sh_buf_t *err)
{
    char *d = sh_malloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            d[k++] = s[i];
            continue;
        }
        int hi = i + 1 < n ? hexval(s[i + 1]) : -1;
        int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(d);
            if (err)
                sh_buf_appendf(err, "invalid Redis URL: bad percent-escape in the %s", what);
            return -EINVAL;
        }
        d[k++] = (char)(hi * 16 + lo);
        i += 2;
    }
    d[k] = '\0';
    *out = d;
    return 0;
}

/* A decimal number of at most 10 digits, no sign, no spaces, <= max. */
static bool parse_uint(const char *s, size_t n, long max, int *out)
{
    if (n == 0 || n > 10)
        return false;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max)
        return false;
    *out = (int)v;
    return true;
}

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

/* userinfo is "[user]:password" (percent-encoded). */
static int parse_userinfo(sh_redis_url_t *u, const char *s, size_t n, sh_buf_t *err)
{
    const char *colon = memchr(s, ':', n);
    if (!colon)
        return fail(err, "user info needs a ':' before the password "
                         "(redis://:password@host or redis://user:password@host)");
    size_t ulen = (size_t)(colon - s);
    size_t plen = n - ulen - 1;
    if (plen == 0)
        return fail(err, "empty password (leave out the user info to connect without AUTH)");
    if (ulen > 0 && decode(s, ulen, &u->user, "user name", err) < 0)
        return -EINVAL;
    if (decode(colon + 1, plen, &u->password, "password", err) < 0)
        return -EINVAL;
    return 0;
}

/* host[:port] or [v6][:port]. */
static int parse_hostport(sh_redis_url_t *u, const char *s, size_t n, sh_buf_t *err)
{
    const char *host = s, *port = NULL;
    size_t hlen, plen = 0;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close)
            return fail(err, "missing ']' after the IPv6 address");
        host = s + 1;
        hlen = (size_t)(close - host);
        size_t rest = n - (size_t)(close - s) - 1;
        if (rest > 0) {
            if (close[1] != ':')
                return fail(err, "unexpected characters after the IPv6 address");
            port = close + 2;
            plen = rest - 1;
        }
        char tmp[INET6_ADDRSTRLEN];
        struct in6_addr a;
        if (hlen == 0 || hlen >= sizeof(tmp))
            return fail(err, "invalid IPv6 address");
        memcpy(tmp, host, hlen);
        tmp[hlen] = '\0';
        if (inet_pton(AF_INET6, tmp, &a) != 1)
            return fail(err, "invalid IPv6 address");
    } else {
        const char *colon = memchr(s, ':', n);
        hlen = colon ? (size_t)(colon - s) : n;
        if (colon) {
            port = colon + 1;
            plen = n - hlen - 1;
            if (memchr(port, ':', plen))
                return fail(err, "an IPv6 address must be written in brackets: redis://[::1]:6379");
        }
        if (hlen == 0)
            return fail(err, "missing host");
        if (hlen > HOST_MAX)
            return fail(err, "host name too long");
        for (size_t i = 0; i < hlen; i++)
            if (!host_char(host[i]))
                return fail(err, "invalid character in the host name");
    }
    u->port = SH_REDIS_DEFAULT_PORT;
    if (port && (!parse_uint(port, plen, 65535, &u->port) || u->port == 0))
        return fail(err, "port must be a number from 1 to 65535");
    u->host = sh_strndup(host, hlen);
    return 0;
}

/* "db=N", the one query parameter of unix:// URLs. */
static int parse_query(sh_redis_url_t *u, const char *s, size_t n, sh_buf_t *err)
{
    if (n == 0)
        return fail(err, "empty query after '?'");
    bool have_db = false;
    while (n > 0) {
        const char *amp = memchr(s, '&', n);
        size_t len = amp ? (size_t)(amp - s) : n;
        if (len >= 3 && memcmp(s, "db=", 3) == 0) {
            if (have_db)
                return fail(err, "db given twice");
            if (!parse_uint(s + 3, len - 3, INT_MAX, &u->db))
                return fail(err, "db must be a number from 0 to 2147483647");
            have_db = true;
        } else {
            return fail(err, "unknown query parameter (only db=N is supported)");
        }
        if (!amp)
            break;
        s += len + 1;
        n -= len + 1;
        if (n == 0)
            return fail(err, "empty query parameter");
    }
    return 0;
}

static int parse(sh_redis_url_t *u, const char *url, sh_buf_t *err)
{
    size_t len = strlen(url);
    if (len == 0)
        return fail(err, "empty");
    if (len > SH_REDIS_URL_MAX)
        return fail(err, "longer than 2048 bytes");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f)
            return fail(err, "spaces, control characters and non-ASCII bytes must be "
                             "percent-encoded");
        if (c == '#')
            return fail(err, "'#' is not allowed (write %23 in a password)");
    }
    const char *sep = strstr(url, "://");
    if (!sep)
        return fail(err, "missing scheme (redis://host:port/db or unix:///path/to/socket)");
    size_t slen = (size_t)(sep - url);
    bool is_unix;
    if (slen == 5 && strncasecmp(url, "redis", 5) == 0)
        is_unix = false;
    else if (slen == 4 && strncasecmp(url, "unix", 4) == 0)
        is_unix = true;
    else if (slen == 6 && strncasecmp(url, "rediss", 6) == 0)
        return fail(err, "rediss:// (TLS) is not supported by this build's hiredis");
    else
        return fail(err, "unsupported scheme (redis:// or unix://)");

    const char *p = sep + 3;
    /* The authority ends at the first '/' or '?'; rest counts what follows. */
    size_t auth_len = strcspn(p, "/?");
    const char *auth_end = p + auth_len;
    size_t rest = strlen(auth_end);
    /* No '@' can follow in a redis:// URL: a password with a raw '/' or '?'
     * would otherwise be taken for the host. (A socket path may hold '@'.) */
    if (!is_unix && memchr(auth_end, '@', rest))
        return fail(err, "'/' and '?' in a user name or password must be written %2F and %3F");
    const char *at = memchr(p, '@', auth_len);
    if (at) {
        if (memchr(at + 1, '@', auth_len - (size_t)(at - p) - 1))
            return fail(err, "'@' in a user name or password must be written %40");
        if (parse_userinfo(u, p, (size_t)(at - p), err) < 0)
            return -EINVAL;
        p = at + 1;
    }

    const char *q = memchr(auth_end, '?', rest);
    const char *path_end = q ? q : auth_end + rest;
    if (!is_unix) {
        if (q)
            return fail(err, "query parameters are not supported in redis:// URLs "
                             "(the database goes in the path: redis://host:6379/0)");
        if (parse_hostport(u, p, (size_t)(auth_end - p), err) < 0)
            return -EINVAL;
        size_t plen = (size_t)(path_end - auth_end);
        if (plen > 1 && !parse_uint(auth_end + 1, plen - 1, INT_MAX, &u->db))
            return fail(err, "the path must be a database number from 0 to 2147483647");
        return 0;
    }

    if (auth_end != p)
        return fail(err, "unix:// URLs take no host: unix:///path/to/redis.sock");
    if (path_end - auth_end < 2 || *auth_end != '/')
        return fail(err, "missing socket path (unix:///path/to/redis.sock)");
    if (decode(auth_end, (size_t)(path_end - auth_end), &u->path, "socket path", err) < 0)
        return -EINVAL;
    if (strlen(u->path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return fail(err, "socket path too long");
    if (q && parse_query(u, q + 1, strlen(q + 1), err) < 0)
        return -EINVAL;
    return 0;
}

static size_t canonical_len(const sh_redis_url_t *u);

int sh_redis_url_parse(sh_redis_url_t *u, const char *url, sh_buf_t *err)
{
    memset(u, 0, sizeof(*u));
    if (!url)
        return fail(err, "empty");
    int rc = parse(u, url, err);
    if (rc == 0 && canonical_len(u) > SH_REDIS_URL_MAX)
        rc = fail(err, "longer than 2048 bytes with the default port and database written out");
    if (rc < 0)
        sh_redis_url_release(u);
    return rc;
}

void sh_redis_url_release(sh_redis_url_t *u)
{
    free(u->host);
    free(u->path);
    free(u->user);
    if (u->password) {
        /* Secrets do not linger in freed memory. */
        volatile char *v = u->password;
        while (*v)
            *v++ = 0;
        free(u->password);
    }
    memset(u, 0, sizeof(*u));
}

/* Where a decoded string goes back into a URL. */
typedef enum { PART_USER, PART_PASSWORD, PART_PATH } part_t;

/* Whether c must be percent-encoded in part: the bytes parse() refuses
 * raw (spaces, controls, non-ASCII, '#'), '%' itself, and the delimiters
 * that would end the part early. Everything else is written as is, so a
 * URL's canonical form is never longer than it was, but for the default
 * port and database written out (parse() checks that too). */
static bool must_escape(unsigned char c, part_t part)
{
    if (c <= 0x20 || c >= 0x7f || c == '#' || c == '%' || c == '?')
        return true;
    if (part == PART_PATH)
        return false; /* '/' separates nothing in a socket path; '@' may be in it */
    return c == '@' || c == '/' || (c == ':' && part == PART_USER);
}

static void encode(sh_buf_t *out, const char *s, part_t part)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!must_escape(c, part)) {
            sh_buf_append_byte(out, (char)c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            sh_buf_append(out, e, 3);
        }
    }
}

static size_t encoded_len(const char *s, part_t part)
{
    size_t n = 0;
    for (; *s; s++)
        n += must_escape((unsigned char)*s, part) ? 3 : 1;
    return n;
}

void sh_redis_url_format(const sh_redis_url_t *u, sh_buf_t *out, bool show_password)
{
    sh_buf_append_str(out, u->path ? "unix://" : "redis://");
    if (u->password) {
        if (u->user)
            encode(out, u->user, PART_USER);
        sh_buf_append_byte(out, ':');
        if (show_password)
            encode(out, u->password, PART_PASSWORD);
        else
            sh_buf_append_str(out, "***");
        sh_buf_append_byte(out, '@');
    }
    if (u->path) {
        encode(out, u->path, PART_PATH);
        sh_buf_appendf(out, "?db=%d", u->db);
    } else {
        sh_redis_url_address(u, out);
        sh_buf_appendf(out, "/%d", u->db);
    }
}

void sh_redis_url_address(const sh_redis_url_t *u, sh_buf_t *out)
{
    if (u->path)
        sh_buf_appendf(out, "unix:%s", u->path);
    else if (u->host && strchr(u->host, ':'))
        sh_buf_appendf(out, "[%s]:%d", u->host, u->port);
    else
        sh_buf_appendf(out, "%s:%d", u->host ? u->host : "", u->port);
}

/* The length of the canonical form, which must parse too. Measured on the
 * log form, the password's own length put back, so that the secret is not
 * copied into a buffer that grows (and frees old copies unwiped). */
static size_t canonical_len(const sh_redis_url_t *u)
{
    sh_buf_t b = SH_BUF_INIT;
    sh_redis_url_format(u, &b, false);
    size_t n = sh_buf_avail(&b);
    sh_buf_release(&b);
    if (u->password)
        n = n - 3 + encoded_len(u->password, PART_PASSWORD);
    return n;
}
