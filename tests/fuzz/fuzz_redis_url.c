/* fuzz_redis_url — the Redis URL parser on untrusted bytes.
 *
 * The input (up to its first NUL) is a URL. A success must format to a
 * canonical URL that parses back to the same canonical URL, with a
 * non-empty address and either a host and port or an absolute path; a
 * failure must say why, after the "invalid Redis URL: " prefix. Every path
 * releases what it parsed: LeakSanitizer checks it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "redis/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *url = sh_malloc(size + 1);
    memcpy(url, data, size);
    url[size] = '\0';
    sh_redis_url_t u, again;
    sh_buf_t err = SH_BUF_INIT, a = SH_BUF_INIT, b = SH_BUF_INIT, addr = SH_BUF_INIT;
    if (sh_redis_url_parse(&u, url, &err) == 0) {
        if (!(u.host && u.port >= 1 && u.port <= 65535 && !u.path) &&
            !(u.path && u.path[0] == '/' && !u.host && u.port == 0))
            abort();
        if (u.db < 0 || (u.password && !u.password[0]) || (u.user && !u.password))
            abort();
        sh_redis_url_format(&u, &a, true);
        if (sh_redis_url_parse(&again, sh_buf_peek(&a), NULL) != 0)
            abort(); /* the canonical form parses ... */
        sh_redis_url_format(&again, &b, true);
        if (strcmp(sh_buf_peek(&a), sh_buf_peek(&b)) != 0)
            abort(); /* ... to itself */
        sh_redis_url_address(&u, &addr);
        if (sh_buf_avail(&addr) == 0)
            abort();
        sh_buf_reset(&a);
        sh_redis_url_format(&u, &a, false); /* the log form */
        sh_redis_url_release(&again);
        sh_redis_url_release(&u);
    } else {
        static const char prefix[] = "invalid Redis URL: ";
        if (sh_buf_avail(&err) <= sizeof(prefix) - 1 ||
            memcmp(sh_buf_peek(&err), prefix, sizeof(prefix) - 1) != 0)
            abort();
        if (u.host || u.path || u.user || u.password)
            abort();
    }
    sh_buf_release(&err);
    sh_buf_release(&a);
    sh_buf_release(&b);
    sh_buf_release(&addr);
    free(url);
    return 0;
}
