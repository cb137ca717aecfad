/* bench/jwt.c — HS256 minting (see jwt.h). */
#include "bench/jwt.h"

#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "bench/buf.h"
#include "bench/util.h"

/* Appends base64url (no padding) of p[0..n). */
static void b64url(sb_buf_t *out, const void *p, size_t n)
{
    char *w = sb_buf_reserve(out, 4 * ((n + 2) / 3) + 1);
    int len = EVP_EncodeBlock((unsigned char *)w, p, (int)n);
    while (len > 0 && w[len - 1] == '=')
        len--;
    for (int i = 0; i < len; i++) {
        if (w[i] == '+')
            w[i] = '-';
        else if (w[i] == '/')
            w[i] = '_';
    }
    out->len += (size_t)len;
}

char *sb_jwt_hs256(const char *secret, const char *claims_json)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    sb_buf_t t = {0};
    b64url(&t, header, sizeof(header) - 1);
    sb_buf_puts(&t, ".");
    b64url(&t, claims_json, strlen(claims_json));
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)sb_buf_head(&t),
              sb_buf_avail(&t), mac, &maclen))
        sb_die("HMAC-SHA256 failed");
    sb_buf_puts(&t, ".");
    b64url(&t, mac, maclen);
    sb_buf_append(&t, "", 1);
    char *token = sb_xstrdup(sb_buf_head(&t));
    sb_buf_release(&t);
    return token;
}

char *sb_jwt_user(const char *secret, const char *id, const char *name, const char *const *channels,
                  unsigned nchannels, int64_t ttl_s)
{
    sb_buf_t c = {0};
    sb_buf_printf(&c, "{\"id\":\"%s\",\"name\":\"%s\",\"role\":\"user\",\"channels\":[", id,
                  name ? name : id);
    for (unsigned i = 0; i < nchannels; i++)
        sb_buf_printf(&c, "%s\"%s\"", i ? "," : "", channels[i]);
    sb_buf_printf(&c, "],\"exp\":%lld}", (long long)time(NULL) + (long long)ttl_s);
    sb_buf_append(&c, "", 1);
    char *token = sb_jwt_hs256(secret, sb_buf_head(&c));
    sb_buf_release(&c);
    return token;
}
