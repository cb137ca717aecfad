/* auth/token.c — JWT verification with a pinned algorithm, on libjwt 1.10.
 *
 * Order of checks in sh_token_verify (nothing from the token is trusted
 * before the signature step, and nothing is handed to libjwt before the
 * header's algorithm is known to be the configured one):
 *   1. size, "sk-" API keys, exactly three segments, strict base64url;
 *   2. the header: a JSON object whose "alg" is exactly the configured
 *      name, "typ" JWT when present, no "crit";
 *   3. the payload parses as a JSON object (parsed, not yet believed);
 *   4. libjwt checks the signature with our key (never NULL or empty: libjwt
 *      1.10 skips the check then) and must agree on the algorithm;
 *   5. exp / nbf / iat with leeway, then the id.
 * libjwt's errors are positive errno values; they become negative here.
 */
#include "auth/token.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include "core/alloc.h"

/* A PEM public key is under 1 KiB; anything much larger is not one. */
#define KEY_FILE_MAX (64 * 1024)

struct sh_token_verifier {
    const char *alg_name; /* exactly as a JWS header spells it */
    jwt_alg_t jwt_alg;
    unsigned char *key; /* the secret, or the public key re-encoded as PEM */
    int key_len;        /* > 0 */
    int64_t leeway_ms;
};

/* ---- base64url (RFC 7515 section 2: the URL alphabet, no padding) */

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Decodes n characters into a new buffer (free() it; NUL-terminated for
 * convenience) or returns NULL. Strict: a length that no encoder makes
 * (n % 4 == 1) and non-zero leftover bits are refused, so each value has
 * exactly one text. */
static unsigned char *b64url_decode(const char *s, size_t n, size_t *out_len)
{
    if (n % 4 == 1)
        return NULL;
    unsigned char *out = sh_malloc(n / 4 * 3 + 3);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value((unsigned char)s[i]);
        if (v < 0)
            goto fail;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    if (acc & ((1u << bits) - 1))
        goto fail;
    out[o] = '\0';
    *out_len = o;
    return out;
fail:
    free(out);
    return NULL;
}

/* A segment as a JSON object, or NULL. */
static json_t *segment_object(const char *s, size_t n, bool *b64_ok)
{
    size_t len;
    unsigned char *raw = b64url_decode(s, n, &len);
    *b64_ok = raw != NULL;
    if (!raw)
        return NULL;
    json_error_t jerr;
    json_t *obj = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, &jerr);
    free(raw);
    if (obj && !json_is_object(obj)) {
        json_decref(obj);
        obj = NULL;
    }
    return obj;
}

/* ---- claims */

/* NULL when id is acceptable, else why not. */
static const char *id_problem(const json_t *id)
{
    if (!id)
        return "no id claim";
    if (json_is_integer(id))
        return NULL;
    if (!json_is_string(id))
        return "id is not a string or integer";
    if (json_string_length(id) == 0)
        return "id is empty";
    if (json_string_length(id) > SH_TOKEN_MAX_ID)
        return "id is longer than 256 bytes";
    return NULL;
}

static int64_t sat_add(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b)
        return INT64_MIN;
    return a + b;
}

/* A time claim (seconds, integer or real) in milliseconds, saturating.
 * 0 when absent (*present false), -EINVAL when not a number. */
static int claim_ms(const json_t *claims, const char *name, bool *present, int64_t *ms)
{
    const json_t *v = json_object_get(claims, name);
    *present = v != NULL;
    if (!v)
        return 0;
    if (json_is_integer(v)) {
        json_int_t s = json_integer_value(v);
        if (s > INT64_MAX / 1000)
            *ms = INT64_MAX;
        else if (s < INT64_MIN / 1000)
            *ms = INT64_MIN;
        else
            *ms = (int64_t)s * 1000;
        return 0;
    }
    if (json_is_real(v)) {
        /* jansson never holds NaN or infinity. */
        double d = json_real_value(v) * 1000.0;
        if (d >= 9.2e18)
            *ms = INT64_MAX;
        else if (d <= -9.2e18)
            *ms = INT64_MIN;
        else
            *ms = (int64_t)d;
        return 0;
    }
    return -EINVAL;
}

static int check_times(const sh_token_verifier_t *v, const json_t *claims, int64_t now_s,
                       const char **reason)
{
    int64_t now_ms = now_s > INT64_MAX / 1000   ? INT64_MAX
                     : now_s < INT64_MIN / 1000 ? INT64_MIN
                                                : now_s * 1000;
    int64_t early = sat_add(now_ms, -v->leeway_ms);
    int64_t late = sat_add(now_ms, v->leeway_ms);
    bool present;
    int64_t t;

    if (claim_ms(claims, "exp", &present, &t) < 0) {
        *reason = "exp is not a number";
        return -EINVAL;
    }
    if (present && t <= early) {
        *reason = "expired";
        return -EACCES;
    }
    if (claim_ms(claims, "nbf", &present, &t) < 0) {
        *reason = "nbf is not a number";
        return -EINVAL;
    }
    if (present && t > late) {
        *reason = "not yet valid (nbf)";
        return -EACCES;
    }
    if (claim_ms(claims, "iat", &present, &t) < 0) {
        *reason = "iat is not a number";
        return -EINVAL;
    }
    if (present && t > late) {
        *reason = "issued in the future (iat)";
        return -EACCES;
    }
    return 0;
}

/* ---- the header */

static int check_header(const sh_token_verifier_t *v, const json_t *hdr, const char **reason)
{
    const char *alg = json_string_value(json_object_get(hdr, "alg"));
    if (!alg) {
        *reason = "header has no alg";
        return -EINVAL;
    }
    /* Exact and case-sensitive (RFC 7515 4.1.1); libjwt would take "hs256"
     * and "NONE" too. */
    if (strcmp(alg, v->alg_name) != 0) {
        *reason = strcasecmp(alg, "none") == 0 ? "alg none refused"
                                               : "algorithm is not the configured one";
        return -EACCES;
    }
    const json_t *typ = json_object_get(hdr, "typ");
    if (typ && (!json_is_string(typ) || strcasecmp(json_string_value(typ), "JWT") != 0)) {
        /* libjwt refuses these too; saying so here gives the right reason. */
        *reason = "header typ is not JWT";
        return -EINVAL;
    }
    /* RFC 7515 4.1.11: extensions we do not understand must be refused,
     * and we understand none. */
    if (json_object_get(hdr, "crit")) {
        *reason = "header has crit extensions";
        return -EINVAL;
    }
    return 0;
}

/* ---- verification */

int sh_token_verify(const sh_token_verifier_t *v, const char *token, int64_t now_s, json_t **claims,
                    const char **reason)
{
    json_t *hdr = NULL, *payload = NULL;
    jwt_t *jwt = NULL;
    int rc = -EINVAL;
    bool b64_ok;

    if (!token || !*token) {
        *reason = "empty token";
        return -EINVAL;
    }
    size_t len = strnlen(token, SH_TOKEN_MAX_LEN + 1);
    if (len > SH_TOKEN_MAX_LEN) {
        *reason = "token is longer than 8 KiB";
        return -EINVAL;
    }
    if (strncmp(token, "sk-", 3) == 0) {
        *reason = "API key, not a session token";
        return -EACCES;
    }

    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token))) {
        *reason = "not three dot-separated parts";
        return -EINVAL;
    }
    const char *sig = dot2 + 1;
    size_t sig_len = len - (size_t)(sig - token);

    hdr = segment_object(token, (size_t)(dot1 - token), &b64_ok);
    if (!hdr) {
        *reason = b64_ok ? "header is not a JSON object" : "header is not base64url";
        goto fail;
    }
    rc = check_header(v, hdr, reason);
    if (rc < 0)
        goto fail;
    rc = -EINVAL;
    if (sig_len == 0) {
        *reason = "no signature";
        rc = -EACCES;
        goto fail;
    }
    size_t sig_bytes;
    unsigned char *sig_raw = b64url_decode(sig, sig_len, &sig_bytes);
    if (!sig_raw) {
        *reason = "signature is not base64url";
        goto fail;
    }
    free(sig_raw);
    payload = segment_object(dot1 + 1, (size_t)(dot2 - dot1 - 1), &b64_ok);
    if (!payload) {
        *reason = b64_ok ? "payload is not a JSON object" : "payload is not base64url";
        goto fail;
    }

    int jrc = jwt_decode(&jwt, token, v->key, v->key_len);
    if (jrc != 0) {
        rc = jrc == ENOMEM ? -ENOMEM : -EACCES;
        *reason = jrc == ENOMEM ? "out of memory" : "bad signature";
        goto fail;
    }
    if (jwt_get_alg(jwt) != v->jwt_alg) {
        /* Cannot happen after check_header; kept so a libjwt change that
         * verified with something else still authenticates nobody. */
        rc = -EACCES;
        *reason = "algorithm is not the configured one";
        goto fail;
    }

    rc = check_times(v, payload, now_s, reason);
    if (rc < 0)
        goto fail;
    json_t *id = json_object_get(payload, "id");
    const char *why = id_problem(id);
    if (why) {
        *reason = why;
        rc = -EINVAL;
        goto fail;
    }
    if (json_is_integer(id)) {
        char num[32];
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(id));
        json_object_set_new(payload, "id", json_string(num));
    }

    jwt_free(jwt);
    json_decref(hdr);
    *claims = payload;
    return 0;
fail:
    jwt_free(jwt);
    json_decref(hdr);
    json_decref(payload);
    return rc;
}

/* ---- key material */

static char *read_key_file(const char *path, size_t *len, sh_buf_t *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        sh_buf_appendf(err, "%s: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    char *text = sh_malloc(KEY_FILE_MAX + 1);
    size_t n = fread(text, 1, KEY_FILE_MAX + 1, f);
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad || n > KEY_FILE_MAX) {
        sh_buf_appendf(err, "%s: %s", path, bad ? "read error" : "too large for a public key");
        free(text);
        return NULL;
    }
    text[n] = '\0';
    *len = n;
    return text;
}

static bool is_p256(EVP_PKEY *pk)
{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    char group[80];
    size_t glen = 0;
    if (!EVP_PKEY_get_group_name(pk, group, sizeof(group), &glen))
        return false;
    int nid = OBJ_sn2nid(group);
    if (nid == NID_undef)
        nid = EC_curve_nist2nid(group);
    return nid == NID_X9_62_prime256v1;
#else
    const EC_KEY *ec = EVP_PKEY_get0_EC_KEY(pk);
    return ec && EC_GROUP_get_curve_name(EC_KEY_get0_group(ec)) == NID_X9_62_prime256v1;
#endif
}

/* Reads a PEM public key of the configured kind and re-encodes it, so
 * libjwt sees exactly one canonical key whatever else the file holds. */
static int load_public_key(sh_token_verifier_t *v, sh_config_jwt_alg_t alg, const char *path,
                           sh_buf_t *err)
{
    if (!path || !*path) {
        sh_buf_appendf(err, "%s needs a public key file", v->alg_name);
        return -EINVAL;
    }
    size_t len;
    char *text = read_key_file(path, &len, err);
    if (!text)
        return -EINVAL;
    int rc = -EINVAL;
    EVP_PKEY *pk = NULL;
    BIO *out = NULL;
    BIO *in = BIO_new_mem_buf(text, (int)len);
    if (in)
        pk = PEM_read_bio_PUBKEY(in, NULL, NULL, NULL);
    if (!pk) {
        if (strstr(text, "PRIVATE KEY"))
            sh_buf_appendf(err,
                           "%s: holds a private key; give the public key "
                           "(openssl pkey -in KEY -pubout)",
                           path);
        else if (strstr(text, "BEGIN CERTIFICATE"))
            sh_buf_appendf(err,
                           "%s: holds a certificate; give its public key "
                           "(openssl x509 -in CERT -pubkey -noout)",
                           path);
        else
            sh_buf_appendf(err, "%s: not a PEM public key", path);
        goto done;
    }
    if (alg == SH_CONFIG_JWT_RS256) {
        if (EVP_PKEY_base_id(pk) != EVP_PKEY_RSA) {
            sh_buf_appendf(err, "%s: RS256 needs an RSA public key", path);
            goto done;
        }
        if (EVP_PKEY_bits(pk) < 2048) {
            sh_buf_appendf(err, "%s: RSA key of %d bits; RS256 needs at least 2048", path,
                           EVP_PKEY_bits(pk));
            goto done;
        }
    } else if (EVP_PKEY_base_id(pk) != EVP_PKEY_EC || !is_p256(pk)) {
        sh_buf_appendf(err, "%s: ES256 needs an EC P-256 public key", path);
        goto done;
    }
    out = BIO_new(BIO_s_mem());
    char *pem;
    long pem_len;
    if (!out || !PEM_write_bio_PUBKEY(out, pk) || (pem_len = BIO_get_mem_data(out, &pem)) <= 0) {
        sh_buf_appendf(err, "%s: cannot re-encode the public key", path);
        goto done;
    }
    v->key = sh_memdup(pem, (size_t)pem_len);
    v->key_len = (int)pem_len;
    rc = 0;
done:
    ERR_clear_error(); /* leave no stale OpenSSL errors for other callers */
    BIO_free(in);
    BIO_free(out);
    EVP_PKEY_free(pk);
    free(text);
    return rc;
}

sh_token_verifier_t *sh_token_verifier_new(const sh_token_options_t *opts, sh_buf_t *err)
{
    if (opts->leeway_ms < 0) {
        sh_buf_appendf(err, "token leeway must not be negative");
        return NULL;
    }
    sh_token_verifier_t *v = sh_new0(sh_token_verifier_t);
    v->leeway_ms = opts->leeway_ms;
    switch (opts->alg) {
    case SH_CONFIG_JWT_HS256: {
        v->alg_name = "HS256";
        v->jwt_alg = JWT_ALG_HS256;
        size_t n = opts->secret ? strlen(opts->secret) : 0;
        /* An empty key would make libjwt skip the signature check. */
        if (n == 0 || n > INT_MAX) {
            sh_buf_appendf(err, "HS256 needs a non-empty secret");
            goto fail;
        }
        v->key = sh_memdup(opts->secret, n);
        v->key_len = (int)n;
        break;
    }
    case SH_CONFIG_JWT_RS256:
    case SH_CONFIG_JWT_ES256:
        v->alg_name = opts->alg == SH_CONFIG_JWT_RS256 ? "RS256" : "ES256";
        v->jwt_alg = opts->alg == SH_CONFIG_JWT_RS256 ? JWT_ALG_RS256 : JWT_ALG_ES256;
        if (load_public_key(v, opts->alg, opts->public_key_path, err) < 0)
            goto fail;
        break;
    default:
        sh_buf_appendf(err, "unknown token algorithm %d", (int)opts->alg);
        goto fail;
    }
    return v;
fail:
    sh_token_verifier_free(v);
    return NULL;
}

void sh_token_verifier_free(sh_token_verifier_t *v)
{
    if (!v)
        return;
    if (v->key) {
        OPENSSL_cleanse(v->key, (size_t)v->key_len);
        free(v->key);
    }
    free(v);
}

/* ---- minting */

int sh_token_mint(const char *secret, const json_t *claims, int64_t now_s, int64_t ttl_s,
                  char **out, sh_buf_t *err)
{
    size_t slen = secret ? strlen(secret) : 0;
    if (slen == 0 || slen > INT_MAX) {
        sh_buf_appendf(err, "no secret to sign with");
        return -EINVAL;
    }
    if (!json_is_object(claims)) {
        sh_buf_appendf(err, "claims are not a JSON object");
        return -EINVAL;
    }
    const char *why = id_problem(json_object_get(claims, "id"));
    if (why) {
        sh_buf_appendf(err, "claims: %s", why);
        return -EINVAL;
    }
    if (ttl_s > 0 && now_s > INT64_MAX - ttl_s) {
        sh_buf_appendf(err, "ttl is too large");
        return -EINVAL;
    }

    int rc = -EINVAL;
    jwt_t *jwt = NULL;
    char *text = NULL, *tok = NULL;
    json_t *copy = json_deep_copy(claims);
    json_object_set_new(copy, "iat", json_integer(now_s));
    if (ttl_s > 0)
        json_object_set_new(copy, "exp", json_integer(now_s + ttl_s));
    text = json_dumps(copy, JSON_COMPACT);
    if (!text || jwt_new(&jwt) != 0 ||
        jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret, (int)slen) != 0 ||
        jwt_add_grants_json(jwt, text) != 0 || !(tok = jwt_encode_str(jwt))) {
        sh_buf_appendf(err, "libjwt could not encode the token");
        goto done;
    }
    if (strlen(tok) > SH_TOKEN_MAX_LEN) {
        sh_buf_appendf(err, "token would be longer than 8 KiB");
        goto done;
    }
    *out = sh_strdup(tok);
    rc = 0;
done:
    if (tok) {
        OPENSSL_cleanse(tok, strlen(tok));
        free(tok);
    }
    free(text);
    jwt_free(jwt);
    json_decref(copy);
    return rc;
}
