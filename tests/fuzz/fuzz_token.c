/* fuzz_token — sh_token_verify on untrusted bytes, with an HS256 verifier.
 *
 * The first byte picks what the input is:
 *   '{'   a claims object: when sh_token_mint accepts it, the token it
 *         makes must verify and keep the id (a round trip through jansson,
 *         libjwt's encoder and our decoder);
 *   '!'   "header\npayload", raw bytes the target base64url-encodes and
 *         signs with SECRET, so arbitrary headers and payloads get past
 *         the signature (which random mutation never forges) into the
 *         algorithm pin, libjwt's own parsing and the claims checks;
 *   else  a token (cut at its first NUL), as a client sends it.
 * Verification must answer with a reason, or succeed with claims holding
 * a string id; the corpus holds tokens signed with SECRET.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/token.h"
#include "core/alloc.h"
#include "core/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "fuzz-secret"
#define NOW    1700000000

static void check_verified(int rc, json_t *claims, const char *reason)
{
    if (rc == 0) {
        const char *id = json_string_value(json_object_get(claims, "id"));
        if (!id || !*id || strlen(id) > SH_TOKEN_MAX_ID)
            abort();
        json_decref(claims);
    } else if ((rc != -EACCES && rc != -EINVAL) || !reason || !*reason) {
        abort();
    }
}

static void fuzz_claims(const sh_token_verifier_t *v, const uint8_t *data, size_t size)
{
    json_t *claims = json_loadb((const char *)data, size, 0, NULL);
    if (!json_is_object(claims))
        goto out;
    /* The minted token is valid now; claims of its own that say
     * otherwise are not the round trip's business. */
    json_object_del(claims, "nbf");
    json_object_del(claims, "exp");
    char *tok = NULL;
    sh_buf_t err = SH_BUF_INIT;
    if (sh_token_mint(SECRET, claims, NOW, 60, &tok, &err) == 0) {
        json_t *out = NULL;
        const char *reason = NULL;
        if (sh_token_verify(v, tok, NOW, &out, &reason) != 0)
            abort();
        json_t *id = json_object_get(claims, "id");
        const char *got = json_string_value(json_object_get(out, "id"));
        if (!got)
            abort();
        if (json_is_string(id) && strcmp(got, json_string_value(id)) != 0)
            abort();
        if (json_is_integer(id) && strtoll(got, NULL, 10) != json_integer_value(id))
            abort();
        json_decref(out);
        free(tok);
    } else if (sh_buf_avail(&err) == 0) {
        abort();
    }
    sh_buf_release(&err);
out:
    json_decref(claims);
}

static void b64url(sh_buf_t *out, const uint8_t *p, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | p[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            sh_buf_append_byte(out, abc[(acc >> bits) & 63]);
        }
    }
    if (bits > 0)
        sh_buf_append_byte(out, abc[(acc << (6 - bits)) & 63]);
}

static void fuzz_signed(const sh_token_verifier_t *v, const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hlen = nl ? (size_t)(nl - data) : size;
    sh_buf_t tok = SH_BUF_INIT;
    b64url(&tok, data, hlen);
    sh_buf_append_byte(&tok, '.');
    if (nl)
        b64url(&tok, nl + 1, size - hlen - 1);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)sh_buf_peek(&tok),
              sh_buf_avail(&tok), mac, &mac_len))
        abort();
    sh_buf_append_byte(&tok, '.');
    b64url(&tok, mac, mac_len);
    json_t *claims = NULL;
    const char *reason = NULL;
    int rc = sh_token_verify(v, sh_buf_peek(&tok), NOW, &claims, &reason);
    check_verified(rc, claims, reason);
    sh_buf_release(&tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sh_buf_t err = SH_BUF_INIT;
    sh_token_options_t opts = {.alg = SH_CONFIG_JWT_HS256, .secret = SECRET, .leeway_ms = 30000};
    sh_token_verifier_t *v = sh_token_verifier_new(&opts, &err);
    if (!v)
        abort();
    if (size > 0 && data[0] == '{') {
        fuzz_claims(v, data, size);
    } else if (size > 0 && data[0] == '!') {
        fuzz_signed(v, data + 1, size - 1);
    } else {
        char *tok = sh_strndup((const char *)data, size);
        json_t *claims = NULL;
        const char *reason = NULL;
        int rc = sh_token_verify(v, tok, NOW, &claims, &reason);
        check_verified(rc, claims, reason);
        free(tok);
    }
    sh_token_verifier_free(v);
    sh_buf_release(&err);
    return 0;
}
