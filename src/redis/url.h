/* url.h — Redis connection URLs, parsed strictly (pure: no I/O, no hiredis).
 *
 * Accepted forms (scheme case-insensitive, everything else exact):
 *
 *   redis://[[user]:password@]host[:port][/db]
 *   unix://[[user]:password@]/absolute/path[?db=N]
 *
 * host is a DNS name or IPv4 address (letters, digits, '-', '.', '_') or an
 * IPv6 address in brackets; port 1..65535 (default 6379); db 0..2147483647
 * (default 0). user and password are percent-decoded ('@', '/' and '?'
 * in either must be written %40, %2F, %3F, and ':' in a user name %3A: the
 * first ':' ends it); an empty password is an
 * error, so is user info without ':' (redis://name@host would silently not
 * authenticate). The unix path is percent-decoded and must fit sun_path.
 * Anything else — rediss:// (hiredis 0.14 has no TLS), query parameters on
 * redis://, a fragment, spaces or control bytes, a decoded NUL — is rejected
 * with a reason that never contains the password.
 */
#ifndef SH_REDIS_URL_H
#define SH_REDIS_URL_H

#include <stdbool.h>

#include "core/buf.h"

#define SH_REDIS_DEFAULT_PORT 6379
/* Longest URL accepted, in bytes. */
#define SH_REDIS_URL_MAX 2048

typedef struct sh_redis_url {
    char *host;     /* TCP: host without brackets; NULL for unix sockets */
    int port;       /* TCP port; 0 for unix sockets */
    char *path;     /* unix socket path; NULL for TCP */
    char *user;     /* ACL user (AUTH user password); NULL: none */
    char *password; /* NULL: no AUTH */
    int db;         /* SELECT db when not 0 */
} sh_redis_url_t;

/* Parses the NUL-terminated url into *u (owned strings; release with
 * sh_redis_url_release). Returns 0, or -EINVAL with a reason appended to err
 * (when err is not NULL) and *u left empty. */
int sh_redis_url_parse(sh_redis_url_t *u, const char *url, sh_buf_t *err);
void sh_redis_url_release(sh_redis_url_t *u);

/* Appends the canonical URL of u: parsing it gives u back. Only what
 * must be is percent-encoded, so it is no longer than the URL u came from
 * but for the default port and database. With show_password false the
 * password is written as "***" (for logs). */
void sh_redis_url_format(const sh_redis_url_t *u, sh_buf_t *out, bool show_password);
/* Appends where u connects, for log lines: "host:port", "[v6]:port" or
 * "unix:/path". */
void sh_redis_url_address(const sh_redis_url_t *u, sh_buf_t *out);

#endif
