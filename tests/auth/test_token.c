/* test_token — sh_token_verify against a table of valid and hostile tokens
 * (built at run time: signatures need the keys), sh_token_mint, the
 * `token` subcommand, and the libjwt 1.10 behaviours token.c works around.
 *
 * RSA and EC keys are generated per run with EVP_PKEY_keygen; only their
 * public halves touch the disk (a temporary directory removed at the end).
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "auth/token.h"
#include "auth/token_cmd.h"
#include "config/config.h"
#include "core/alloc.h"
#include "core/buf.h"

#define SECRET "test-secret-0123456789"
#define NOW    1700000000LL
#define LEEWAY 30000

/* ---- helpers: encoding and signing */

static char *b64url(const void *p, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *s = p;
    char *out = sh_malloc(n / 3 * 4 + 5);
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = abc[(v >> 6) & 63];
        out[o++] = abc[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)s[i] << 16;
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8;
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = abc[(v >> 6) & 63];
    }
    out[o] = '\0';
    return out;
}

static char *b64s(const char *s)
{
    return b64url(s, strlen(s));
}

/* "b64(header).b64(payload)" */
static char *signing_input(const char *header, const char *payload)
{
    char *h = b64s(header), *p = b64s(payload);
    sh_buf_t b = SH_BUF_INIT;
    sh_buf_appendf(&b, "%s.%s", h, p);
    free(h);
    free(p);
    return sh_buf_steal(&b, NULL);
}

static char *hmac_sig(const EVP_MD *md, const void *key, size_t key_len, const char *input)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    ck_assert_ptr_nonnull(
        HMAC(md, key, (int)key_len, (const unsigned char *)input, strlen(input), mac, &mac_len));
    return b64url(mac, mac_len);
}

/* input "." sig (sig NULL: no third part at all). */
static char *join(const char *input, const char *sig)
{
    sh_buf_t b = SH_BUF_INIT;
    sh_buf_append_str(&b, input);
    if (sig) {
        sh_buf_append_byte(&b, '.');
        sh_buf_append_str(&b, sig);
    }
    return sh_buf_steal(&b, NULL);
}

/* An HMAC token over header and payload with key (md SHA-256 or -512). */
static char *hmac_token(const EVP_MD *md, const char *key, size_t key_len, const char *header,
                        const char *payload)
{
    char *in = signing_input(header, payload);
    char *sig = hmac_sig(md, key, key_len, in);
    char *tok = join(in, sig);
    free(in);
    free(sig);
    return tok;
}

static char *hs256(const char *header, const char *payload)
{
    return hmac_token(EVP_sha256(), SECRET, strlen(SECRET), header, payload);
}

#define HS256_HDR "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

/* A token signed by libjwt with a private key PEM (RS256 / ES256). */
static char *libjwt_token(jwt_alg_t alg, const char *priv_pem, const char *payload)
{
    jwt_t *j = NULL;
    ck_assert_int_eq(jwt_new(&j), 0);
    ck_assert_int_eq(jwt_set_alg(j, alg, (const unsigned char *)priv_pem, (int)strlen(priv_pem)),
                     0);
    ck_assert_int_eq(jwt_add_grants_json(j, payload), 0);
    char *s = jwt_encode_str(j);
    ck_assert_ptr_nonnull(s);
    char *tok = sh_strdup(s);
    free(s);
    jwt_free(j);
    return tok;
}

/* ---- keys: generated once per test case, in the parent process */

static char tmpdir[64];
static char rsa_pub_path[128], ec_pub_path[128], rsa_priv_path[128];
static char rsa1024_pub_path[128], p384_pub_path[128], junk_path[128];
static char *rsa_priv_pem, *ec_priv_pem, *rsa_pub_pem;

static EVP_PKEY *gen_key(int type, int param)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(type, NULL);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(EVP_PKEY_keygen_init(c), 1);
    if (type == EVP_PKEY_RSA)
        ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_keygen_bits(c, param), 1);
    else
        ck_assert_int_eq(EVP_PKEY_CTX_set_ec_paramgen_curve_nid(c, param), 1);
    EVP_PKEY *k = NULL;
    ck_assert_int_eq(EVP_PKEY_keygen(c, &k), 1);
    EVP_PKEY_CTX_free(c);
    return k;
}

static char *pem_of(EVP_PKEY *k, int private_key)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (private_key)
        ck_assert_int_eq(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
    else
        ck_assert_int_eq(PEM_write_bio_PUBKEY(b, k), 1);
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *s = sh_strndup(p, (size_t)n);
    BIO_free(b);
    return s;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
}

static void keys_setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/sh-test-token-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(rsa_pub_path, sizeof(rsa_pub_path), "%s/rsa.pub", tmpdir);
    snprintf(ec_pub_path, sizeof(ec_pub_path), "%s/ec.pub", tmpdir);
    snprintf(rsa_priv_path, sizeof(rsa_priv_path), "%s/rsa.key", tmpdir);
    snprintf(rsa1024_pub_path, sizeof(rsa1024_pub_path), "%s/rsa1024.pub", tmpdir);
    snprintf(p384_pub_path, sizeof(p384_pub_path), "%s/p384.pub", tmpdir);
    snprintf(junk_path, sizeof(junk_path), "%s/junk.pub", tmpdir);

    EVP_PKEY *rsa = gen_key(EVP_PKEY_RSA, 2048);
    EVP_PKEY *ec = gen_key(EVP_PKEY_EC, NID_X9_62_prime256v1);
    EVP_PKEY *rsa1024 = gen_key(EVP_PKEY_RSA, 1024);
    EVP_PKEY *p384 = gen_key(EVP_PKEY_EC, NID_secp384r1);
    rsa_priv_pem = pem_of(rsa, 1);
    ec_priv_pem = pem_of(ec, 1);
    rsa_pub_pem = pem_of(rsa, 0);
    char *ec_pub = pem_of(ec, 0), *r1024 = pem_of(rsa1024, 0), *p384_pub = pem_of(p384, 0);
    write_file(rsa_pub_path, rsa_pub_pem);
    write_file(ec_pub_path, ec_pub);
    write_file(rsa_priv_path, rsa_priv_pem); /* only to be refused as a public key */
    write_file(rsa1024_pub_path, r1024);
    write_file(p384_pub_path, p384_pub);
    write_file(junk_path,
               "-----BEGIN PUBLIC KEY-----\nnot base64 at all\n-----END PUBLIC KEY-----\n");
    free(ec_pub);
    free(r1024);
    free(p384_pub);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa1024);
    EVP_PKEY_free(p384);
}

static void keys_teardown(void)
{
    const char *paths[] = {rsa_pub_path,     ec_pub_path,   rsa_priv_path,
                           rsa1024_pub_path, p384_pub_path, junk_path};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        unlink(paths[i]);
    rmdir(tmpdir);
    free(rsa_priv_pem);
    free(ec_priv_pem);
    free(rsa_pub_pem);
}

static sh_token_verifier_t *verifier(sh_config_jwt_alg_t alg)
{
    sh_buf_t err = SH_BUF_INIT;
    sh_token_options_t o = {.alg = alg, .secret = SECRET, .leeway_ms = LEEWAY};
    if (alg == SH_CONFIG_JWT_RS256)
        o.public_key_path = rsa_pub_path;
    else if (alg == SH_CONFIG_JWT_ES256)
        o.public_key_path = ec_pub_path;
    sh_token_verifier_t *v = sh_token_verifier_new(&o, &err);
    ck_assert_msg(v != NULL, "verifier: %s", sh_buf_peek(&err));
    sh_buf_release(&err);
    return v;
}

/* Verifies and checks the outcome; claims untouched on failure. Returns
 * the claims on success (caller decrefs), else NULL. */
static int sentinel_storage;
#define SENTINEL ((json_t *)&sentinel_storage)

static json_t *expect(const sh_token_verifier_t *v, const char *name, const char *tok, int want_rc,
                      const char *want_reason)
{
    json_t *claims = SENTINEL;
    const char *reason = NULL;
    int rc = sh_token_verify(v, tok, NOW, &claims, &reason);
    ck_assert_msg(rc == want_rc, "%s: rc %d, want %d (reason: %s)", name, rc, want_rc,
                  reason ? reason : "none");
    if (want_rc == 0) {
        ck_assert_msg(json_is_object(claims) && claims != SENTINEL, "%s: no claims", name);
        return claims;
    }
    ck_assert_msg(claims == SENTINEL, "%s: claims touched on failure", name);
    ck_assert_msg(reason && strcmp(reason, want_reason) == 0, "%s: reason '%s', want '%s'", name,
                  reason ? reason : "(null)", want_reason);
    return NULL;
}

/* ---- the HS256 table */

enum sig_kind {
    SIG_SECRET,  /* HMAC-SHA256 with SECRET */
    SIG_WRONG,   /* HMAC-SHA256 with another secret */
    SIG_HS512,   /* HMAC-SHA512 with SECRET */
    SIG_EMPTY,   /* "h.p." */
    SIG_ABSENT,  /* "h.p" */
    SIG_BORROW,  /* the signature of a valid HS256 token over other content */
    SIG_NOT_B64, /* "h.p.!!!" */
};

struct vec {
    const char *name;
    const char *header; /* NULL: HS256_HDR */
    const char *payload;
    enum sig_kind sig;
    int rc;
    const char *reason; /* exact */
};

#define P_OK "{\"id\":\"u1\",\"iat\":1699999990,\"exp\":1700003600}"

static const struct vec hs_vectors[] = {
    {"valid", NULL, P_OK, SIG_SECRET, 0, NULL},
    {"valid without typ", "{\"alg\":\"HS256\"}", P_OK, SIG_SECRET, 0, NULL},
    {"typ in lower case", "{\"alg\":\"HS256\",\"typ\":\"jwt\"}", P_OK, SIG_SECRET, 0, NULL},
    {"valid without exp", NULL, "{\"id\":\"u1\"}", SIG_SECRET, 0, NULL},
    {"wrong secret", NULL, P_OK, SIG_WRONG, -EACCES, "bad signature"},
    {"signature of other content", NULL, "{\"id\":\"admin\"}", SIG_BORROW, -EACCES,
     "bad signature"},
    {"alg none, empty signature", "{\"alg\":\"none\",\"typ\":\"JWT\"}", P_OK, SIG_EMPTY, -EACCES,
     "alg none refused"},
    {"alg none, no signature part", "{\"alg\":\"none\",\"typ\":\"JWT\"}", P_OK, SIG_ABSENT, -EINVAL,
     "not three dot-separated parts"},
    {"alg none with a signature", "{\"alg\":\"none\",\"typ\":\"JWT\"}", P_OK, SIG_SECRET, -EACCES,
     "alg none refused"},
    {"alg NONE", "{\"alg\":\"NONE\"}", P_OK, SIG_EMPTY, -EACCES, "alg none refused"},
    /* libjwt alone accepts this one: it verifies with the header's alg. */
    {"alg HS512 signed with the secret", "{\"alg\":\"HS512\",\"typ\":\"JWT\"}", P_OK, SIG_HS512,
     -EACCES, "algorithm is not the configured one"},
    {"alg RS256 header", "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", P_OK, SIG_SECRET, -EACCES,
     "algorithm is not the configured one"},
    {"alg hs256 (case)", "{\"alg\":\"hs256\",\"typ\":\"JWT\"}", P_OK, SIG_SECRET, -EACCES,
     "algorithm is not the configured one"},
    {"no alg", "{\"typ\":\"JWT\"}", P_OK, SIG_SECRET, -EINVAL, "header has no alg"},
    {"alg not a string", "{\"alg\":256}", P_OK, SIG_SECRET, -EINVAL, "header has no alg"},
    {"typ JOSE", "{\"alg\":\"HS256\",\"typ\":\"JOSE\"}", P_OK, SIG_SECRET, -EINVAL,
     "header typ is not JWT"},
    {"typ not a string", "{\"alg\":\"HS256\",\"typ\":1}", P_OK, SIG_SECRET, -EINVAL,
     "header typ is not JWT"},
    {"crit", "{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}", P_OK, SIG_SECRET, -EINVAL,
     "header has crit extensions"},
    {"header repeats alg", "{\"alg\":\"none\",\"alg\":\"HS256\"}", P_OK, SIG_SECRET, -EINVAL,
     "header is not a JSON object"},
    {"header not JSON", "nope", P_OK, SIG_SECRET, -EINVAL, "header is not a JSON object"},
    {"header an array", "[\"HS256\"]", P_OK, SIG_SECRET, -EINVAL, "header is not a JSON object"},
    {"header empty", "", P_OK, SIG_SECRET, -EINVAL, "header is not a JSON object"},
    {"empty signature", NULL, P_OK, SIG_EMPTY, -EACCES, "no signature"},
    {"signature not base64url", NULL, P_OK, SIG_NOT_B64, -EINVAL, "signature is not base64url"},
    {"payload not JSON", NULL, "id=u1", SIG_SECRET, -EINVAL, "payload is not a JSON object"},
    {"payload an array", NULL, "[{\"id\":\"u1\"}]", SIG_SECRET, -EINVAL,
     "payload is not a JSON object"},
    {"payload a string", NULL, "\"u1\"", SIG_SECRET, -EINVAL, "payload is not a JSON object"},
    {"payload repeats id", NULL, "{\"id\":\"u1\",\"id\":\"admin\"}", SIG_SECRET, -EINVAL,
     "payload is not a JSON object"},
    {"missing id", NULL, "{\"sub\":\"u1\"}", SIG_SECRET, -EINVAL, "no id claim"},
    {"empty id", NULL, "{\"id\":\"\"}", SIG_SECRET, -EINVAL, "id is empty"},
    {"null id", NULL, "{\"id\":null}", SIG_SECRET, -EINVAL, "id is not a string or integer"},
    {"real id", NULL, "{\"id\":1.5}", SIG_SECRET, -EINVAL, "id is not a string or integer"},
    {"object id", NULL, "{\"id\":{}}", SIG_SECRET, -EINVAL, "id is not a string or integer"},
    {"expired beyond leeway", NULL, "{\"id\":\"u1\",\"exp\":1699999960}", SIG_SECRET, -EACCES,
     "expired"},
    {"expired at the leeway edge", NULL, "{\"id\":\"u1\",\"exp\":1699999970}", SIG_SECRET, -EACCES,
     "expired"},
    {"expired within leeway", NULL, "{\"id\":\"u1\",\"exp\":1699999971}", SIG_SECRET, 0, NULL},
    {"exp as a real", NULL, "{\"id\":\"u1\",\"exp\":1699999980.5}", SIG_SECRET, 0, NULL},
    {"exp huge", NULL, "{\"id\":\"u1\",\"exp\":9223372036854775807}", SIG_SECRET, 0, NULL},
    {"exp huge real", NULL, "{\"id\":\"u1\",\"exp\":1e300}", SIG_SECRET, 0, NULL},
    {"exp most negative", NULL, "{\"id\":\"u1\",\"exp\":-9223372036854775808}", SIG_SECRET, -EACCES,
     "expired"},
    {"exp a string", NULL, "{\"id\":\"u1\",\"exp\":\"1700003600\"}", SIG_SECRET, -EINVAL,
     "exp is not a number"},
    {"exp null", NULL, "{\"id\":\"u1\",\"exp\":null}", SIG_SECRET, -EINVAL, "exp is not a number"},
    {"nbf in the future", NULL, "{\"id\":\"u1\",\"nbf\":1700000031}", SIG_SECRET, -EACCES,
     "not yet valid (nbf)"},
    {"nbf within leeway", NULL, "{\"id\":\"u1\",\"nbf\":1700000030}", SIG_SECRET, 0, NULL},
    {"nbf a bool", NULL, "{\"id\":\"u1\",\"nbf\":true}", SIG_SECRET, -EINVAL,
     "nbf is not a number"},
    {"iat in the future", NULL, "{\"id\":\"u1\",\"iat\":1700000040}", SIG_SECRET, -EACCES,
     "issued in the future (iat)"},
    {"iat within leeway", NULL, "{\"id\":\"u1\",\"iat\":1700000010}", SIG_SECRET, 0, NULL},
    {"iat an array", NULL, "{\"id\":\"u1\",\"iat\":[]}", SIG_SECRET, -EINVAL,
     "iat is not a number"},
};

static char *build(const struct vec *t)
{
    const char *hdr = t->header ? t->header : HS256_HDR;
    char *in = signing_input(hdr, t->payload);
    char *sig = NULL, *tok;
    switch (t->sig) {
    case SIG_SECRET:
        sig = hmac_sig(EVP_sha256(), SECRET, strlen(SECRET), in);
        break;
    case SIG_WRONG:
        sig = hmac_sig(EVP_sha256(), "not-the-secret", 14, in);
        break;
    case SIG_HS512:
        sig = hmac_sig(EVP_sha512(), SECRET, strlen(SECRET), in);
        break;
    case SIG_EMPTY:
        sig = sh_strdup("");
        break;
    case SIG_ABSENT:
        break;
    case SIG_BORROW: {
        char *other = signing_input(hdr, "{\"id\":\"u1\"}");
        sig = hmac_sig(EVP_sha256(), SECRET, strlen(SECRET), other);
        free(other);
        break;
    }
    case SIG_NOT_B64:
        sig = sh_strdup("!!!!");
        break;
    }
    tok = join(in, sig);
    free(in);
    free(sig);
    return tok;
}

START_TEST(test_hs256_table)
{
    sh_token_verifier_t *v = verifier(SH_CONFIG_JWT_HS256);
    const struct vec *t = &hs_vectors[_i];
    char *tok = build(t);
    json_t *claims = expect(v, t->name, tok, t->rc, t->reason);
    if (claims)
        ck_assert_str_eq(json_string_value(json_object_get(claims, "id")), "u1");
    json_decref(claims);
    free(tok);
    sh_token_verifier_free(v);
}
END_TEST

START_TEST(test_valid_claims_copy)
{
    sh_token_verifier_t *v = verifier(SH_CONFIG_JWT_HS256);
    char *tok =
        hs256(HS256_HDR, "{\"id\":\"u1\",\"name\":\"Ann\",\"jti\":\"j1\",\"exp\":1700003600}");
    json_t *claims = expect(v, "valid", tok, 0, NULL);
    json_t *want = json_pack("{s:s,s:s,s:s,s:I}", "id", "u1", "name", "Ann", "jti", "j1", "exp",
                             (json_int_t)1700003600);
    ck_assert(json_equal(claims, want));
    json_decref(want);
    json_decref(claims);
    free(tok);
    sh_token_verifier_free(v);
}
END_TEST

START_TEST(test_numeric_id)
{
    sh_token_verifier_t *v = verifier(SH_CONFIG_JWT_HS256);
    static const struct {
        const char *payload, *id;
    } cases[] = {
        {"{\"id\":42}", "42"},
        {"{\"id\":-7}", "-7"},
        {"{\"id\":0}", "0"},
        {"{\"id\":9223372036854775807}", "9223372036854775807"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *tok = hs256(HS256_HDR, cases[i].payload);
        json_t *claims = expect(v, cases[i].payload, tok, 0, NULL);
        ck_assert_str_eq(json_string_value(json_object_get(claims, "id")), cases[i].id);
        json_decref(claims);
        free(tok);
    }
    sh_token_verifier_free(v);
}
END_TEST

START_TEST(test_id_length)
{
    sh_token_verifier_t *v = verifier(SH_CONFIG_JWT_HS256);
    char id[SH_TOKEN_MAX_ID + 2];
    for (int n = SH_TOKEN_MAX_ID; n <= SH_TOKEN_MAX_ID + 1; n++) {
        memset(id, 'a', (size_t)n);
        id[n] = '\0';
        json_t *p = json_pack("{s:s}", "id", id);
        char *payload = json_dumps(p, JSON_COMPACT);
        char *tok = hs256(HS256_HDR, payload);
        json_t *claims =
            expect(v, n == SH_TOKEN_MAX_ID ? "id of 256 bytes" : "id of 257 bytes", tok,
                   n == SH_TOKEN_MAX_ID ? 0 : -EINVAL, "id is longer than 256 bytes");
        json_decref(claims);
        free(tok);
        free(payload);
        json_decref(p);
    }
    /* Bytes, not characters: 86 three-byte characters are 258 bytes. */
    sh_buf_t b = SH_BUF_INIT;
    for (int i = 0; i < 86; i++)
        sh_buf_append_str(&b, "\xe2\x82\xac");
    json_t *p = json_pack("{s:s}", "id", sh_buf_peek(&b));
    char *payload = json_dumps(p, JSON_COMPACT);
    char *tok = hs256(HS256_HDR, payload);
    expect(v, "id of 86 euro signs", tok, -EINVAL, "id is longer than 256 bytes");
    free(tok);
    free(payload);
    json_decref(p);
    sh_buf_release(&b);
    sh_token_verifier_free(v);
}
END_TEST

START_TEST(test_raw_hostile)
{
    sh_token_verifier_t *v = verifier(SH_CONFIG_JWT_HS256);
    char *good = hs256(HS256_HDR, P_OK);
    static const struct {
        const char *tok;
        int rc;
        const char *reason;
    } cases[] = {
        {"", -EINVAL, "empty token"},
        {"sk-0123456789abcdef0123456789abcdef", -EACCES, "API key, not a session token"},
        {"sk-", -EACCES, "API key, not a session token"},
        {"a", -EINVAL, "not three dot-separated parts"},
        {"a.b", -EINVAL, "not three dot-separated parts"},
        {"..", -EINVAL, "header is not a JSON object"},
        {"...", -EINVAL, "not three dot-separated parts"},
        {"a.b.c.d.e", -EINVAL, "not three dot-separated parts"},
        {"!!!!.e30.AAAA", -EINVAL, "header is not base64url"},
        /* standard-alphabet and padded base64 are not base64url */
        {"eyJhbGciOiJIUzI1NiJ9.eyJpZCI6InUxIn0=.AAAA", -EINVAL, "payload is not base64url"},
        {"eyJhbGciOiJIUzI1NiJ9.e+30.AAAA", -EINVAL, "payload is not base64url"},
        /* length 4n+1 and stray low bits: no encoder makes these */
        {"eyJhbGciOiJIUzI1NiJ9.e30AA.AAAA", -EINVAL, "payload is not base64url"},
        {"eyJhbGciOiJIUzI1NiJ9.e31.AAAA", -EINVAL, "payload is not base64url"},
        {"eyJhbGciOiJIUzI1NiJ9.e30.A", -EINVAL, "signature is not base64url"},
        {"eyJhbGciOiJIUzI1NiJ9.e30.AAAA", -EACCES, "bad signature"},
        {"eyJhbGciOiJIUzI1NiJ9 .e30.AAAA", -EINVAL, "header is not base64url"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect(v, cases[i].tok, cases[i].tok, cases[i].rc, cases[i].reason);
    /* NULL token */
    const char *reason = NULL;
    json_t *claims = SENTINEL;
    ck_assert_int_eq(sh_token_verify(v, NULL, NOW, &claims, &reason), -EINVAL);
    ck_assert_ptr_eq(claims, SENTINEL);

    /* extra segments after a valid token */
    char *extra = join(good, "");
    expect(v, "valid token + '.'", extra, -EINVAL, "not three dot-separated parts");
    free(extra);
    extra = join(good, "e30");
    expect(v, "valid token + '.e30'", extra, -EINVAL, "not three dot-separated parts");
    free(extra);
    /* a valid token with a flipped signature character */
    char *flip = sh_strdup(good);
    char *last = flip + strlen(flip) - 2;
    *last = *last == 'A' ? 'B' : 'A';
    expect(v, "flipped signature", flip, -EACCES, "bad signature");
    free(flip);
    /* sk- even with a JWT after it */
    char *sk = join("sk-x", good);
    expect(v, "sk- prefix", sk, -EACCES, "API key, not a session token");
    free(sk);
    free(good);
    sh_token_verifier_free(v);
}
END_TEST

START_TEST(test_every_prefix_refused)
{
    sh_token_verifier_t *v = verifier(SH_CONFIG_JWT_HS256);
    char *good = hs256(HS256_HDR, P_OK);
    size_t n = strlen(good);
    json_t *claims = expect(v, "whole", good, 0, NULL);
    json_decref(claims);
    for (size_t len = 0; len < n; len++) {
        char *prefix = sh_strndup(good, len);
        const char *reason = NULL;
        claims = SENTINEL;
        int rc = sh_token_verify(v, prefix, NOW, &claims, &reason);
        ck_assert_msg(rc == -EINVAL || rc == -EACCES, "prefix %zu: rc %d", len, rc);
        ck_assert_msg(reason && *reason, "prefix %zu: no reason", len);
        ck_assert_ptr_eq(claims, SENTINEL);
        free(prefix);
    }
    free(good);
    sh_token_verifier_free(v);
}
END_TEST

START_TEST(test_size_limit)
{
    sh_token_verifier_t *v = verifier(SH_CONFIG_JWT_HS256);
    /* The longest signed token that fits, and one a few bytes longer. */
    char *fit = NULL, *over = NULL;
    sh_buf_t pad = SH_BUF_INIT;
    for (size_t k = 5900; k < 6200 && !over; k++) {
        sh_buf_reset(&pad);
        sh_buf_appendf(&pad, "{\"id\":\"u1\",\"pad\":\"");
        for (size_t i = 0; i < k; i++)
            sh_buf_append_byte(&pad, 'x');
        sh_buf_append_str(&pad, "\"}");
        char *tok = hs256(HS256_HDR, sh_buf_peek(&pad));
        if (strlen(tok) <= SH_TOKEN_MAX_LEN) {
            free(fit);
            fit = tok;
        } else {
            over = tok;
        }
    }
    sh_buf_release(&pad);
    ck_assert_ptr_nonnull(fit);
    ck_assert_ptr_nonnull(over);
    ck_assert_uint_ge(strlen(fit), SH_TOKEN_MAX_LEN - 3);
    json_t *claims = expect(v, "token at the limit", fit, 0, NULL);
    json_decref(claims);
    expect(v, "signed token over the limit", over, -EINVAL, "token is longer than 8 KiB");
    free(fit);
    free(over);

    /* 9 KiB of base64url-looking junk */
    char *big = sh_malloc(9 * 1024 + 1);
    memset(big, 'A', 9 * 1024);
    big[100] = '.';
    big[200] = '.';
    big[9 * 1024] = '\0';
    expect(v, "9 KiB token", big, -EINVAL, "token is longer than 8 KiB");
    free(big);
    sh_token_verifier_free(v);
}
END_TEST

/* ---- RS256 / ES256 */

START_TEST(test_rs256_es256)
{
    sh_token_verifier_t *rs = verifier(SH_CONFIG_JWT_RS256);
    sh_token_verifier_t *es = verifier(SH_CONFIG_JWT_ES256);
    sh_token_verifier_t *hs = verifier(SH_CONFIG_JWT_HS256);
    char *rtok = libjwt_token(JWT_ALG_RS256, rsa_priv_pem, P_OK);
    char *etok = libjwt_token(JWT_ALG_ES256, ec_priv_pem, P_OK);

    json_t *claims = expect(rs, "RS256 valid", rtok, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(claims, "id")), "u1");
    json_decref(claims);
    claims = expect(es, "ES256 valid", etok, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(claims, "id")), "u1");
    json_decref(claims);

    expect(es, "RS256 token, ES256 verifier", rtok, -EACCES, "algorithm is not the configured one");
    expect(rs, "ES256 token, RS256 verifier", etok, -EACCES, "algorithm is not the configured one");
    expect(hs, "RS256 token, HS256 verifier", rtok, -EACCES, "algorithm is not the configured one");
    expect(hs, "ES256 token, HS256 verifier", etok, -EACCES, "algorithm is not the configured one");

    /* An RS256 signature moved onto other claims. */
    char *in = signing_input("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", "{\"id\":\"admin\"}");
    char *forged = join(in, strrchr(rtok, '.') + 1);
    expect(rs, "RS256 signature on other claims", forged, -EACCES, "bad signature");
    free(forged);
    free(in);
    /* Expiry is ours to check for every algorithm. */
    char *old = libjwt_token(JWT_ALG_ES256, ec_priv_pem, "{\"id\":\"u1\",\"exp\":1600000000}");
    expect(es, "ES256 expired", old, -EACCES, "expired");
    free(old);
    /* alg none on a key verifier */
    in = signing_input("{\"alg\":\"none\"}", P_OK);
    char *none = join(in, "");
    expect(rs, "alg none, RS256 verifier", none, -EACCES, "alg none refused");
    expect(es, "alg none, ES256 verifier", none, -EACCES, "alg none refused");
    free(none);
    free(in);

    free(rtok);
    free(etok);
    sh_token_verifier_free(rs);
    sh_token_verifier_free(es);
    sh_token_verifier_free(hs);
}
END_TEST

START_TEST(test_algorithm_confusion)
{
    /* The classic: HS256 "signed" with the RS256 public key's PEM text as
     * the HMAC secret. libjwt 1.10 accepts it when handed that PEM as the
     * key (see test_libjwt_facts); the pin must refuse it. */
    sh_token_verifier_t *rs = verifier(SH_CONFIG_JWT_RS256);
    char *tok = hmac_token(EVP_sha256(), rsa_pub_pem, strlen(rsa_pub_pem), HS256_HDR, P_OK);
    expect(rs, "HS256 with the public key as secret", tok, -EACCES,
           "algorithm is not the configured one");
    free(tok);
    /* Same with the file's bytes minus the final newline, another common
     * form of the attack. */
    tok = hmac_token(EVP_sha256(), rsa_pub_pem, strlen(rsa_pub_pem) - 1, HS256_HDR, P_OK);
    expect(rs, "HS256 with the trimmed public key", tok, -EACCES,
           "algorithm is not the configured one");
    free(tok);
    sh_token_verifier_free(rs);
}
END_TEST

START_TEST(test_verifier_errors)
{
    static const struct {
        sh_config_jwt_alg_t alg;
        const char *secret;
        const char *path;
        int64_t leeway;
        const char *want;
    } cases[] = {
        {SH_CONFIG_JWT_HS256, "", NULL, 0, "HS256 needs a non-empty secret"},
        {SH_CONFIG_JWT_HS256, NULL, NULL, 0, "HS256 needs a non-empty secret"},
        {SH_CONFIG_JWT_HS256, SECRET, NULL, -1, "leeway must not be negative"},
        {SH_CONFIG_JWT_RS256, NULL, NULL, 0, "RS256 needs a public key file"},
        {SH_CONFIG_JWT_ES256, NULL, "", 0, "ES256 needs a public key file"},
        {SH_CONFIG_JWT_RS256, NULL, "/nonexistent/k.pub", 0,
         "/nonexistent/k.pub: cannot read: No such file or directory"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sh_buf_t err = SH_BUF_INIT;
        sh_token_options_t o = {.alg = cases[i].alg,
                                .secret = cases[i].secret,
                                .public_key_path = cases[i].path,
                                .leeway_ms = cases[i].leeway};
        ck_assert_ptr_null(sh_token_verifier_new(&o, &err));
        ck_assert_msg(strstr(sh_buf_peek(&err), cases[i].want), "case %zu: '%s'", i,
                      sh_buf_peek(&err));
        sh_buf_release(&err);
    }
    static const struct {
        sh_config_jwt_alg_t alg;
        const char *path;
        const char *want;
    } keys[] = {
        {SH_CONFIG_JWT_RS256, ec_pub_path, "RS256 needs an RSA public key"},
        {SH_CONFIG_JWT_ES256, rsa_pub_path, "ES256 needs an EC P-256 public key"},
        {SH_CONFIG_JWT_ES256, p384_pub_path, "ES256 needs an EC P-256 public key"},
        {SH_CONFIG_JWT_RS256, rsa1024_pub_path, "RSA key of 1024 bits; RS256 needs at least 2048"},
        {SH_CONFIG_JWT_RS256, rsa_priv_path, "holds a private key"},
        {SH_CONFIG_JWT_RS256, junk_path, "not a PEM public key"},
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        sh_buf_t err = SH_BUF_INIT;
        sh_token_options_t o = {.alg = keys[i].alg, .public_key_path = keys[i].path};
        ck_assert_ptr_null(sh_token_verifier_new(&o, &err));
        ck_assert_msg(strstr(sh_buf_peek(&err), keys[i].want), "key %zu: '%s'", i,
                      sh_buf_peek(&err));
        ck_assert_msg(strstr(sh_buf_peek(&err), keys[i].path), "key %zu names no path", i);
        sh_buf_release(&err);
    }
    sh_token_verifier_free(NULL);
}
END_TEST

/* ---- what libjwt 1.10 does by itself (why token.c checks first) */

START_TEST(test_libjwt_facts)
{
    jwt_t *j = NULL;
    char *hs512 = hmac_token(EVP_sha512(), SECRET, strlen(SECRET),
                             "{\"alg\":\"HS512\",\"typ\":\"JWT\"}", P_OK);
    char *in = signing_input("{\"alg\":\"none\"}", P_OK);
    char *none = join(in, "");
    char *confused = hmac_token(EVP_sha256(), rsa_pub_pem, strlen(rsa_pub_pem), HS256_HDR, P_OK);
    char *wrong = hmac_token(EVP_sha256(), "x", 1, HS256_HDR, P_OK);
    const unsigned char *key = (const unsigned char *)SECRET;

    /* It verifies with the header's algorithm: HS512 passes an HS256 key. */
    ck_assert_int_eq(jwt_decode(&j, hs512, key, (int)strlen(SECRET)), 0);
    ck_assert_int_eq(jwt_get_alg(j), JWT_ALG_HS512);
    jwt_free(j);
    /* The public key PEM as an HMAC secret passes. */
    ck_assert_int_eq(
        jwt_decode(&j, confused, (const unsigned char *)rsa_pub_pem, (int)strlen(rsa_pub_pem)), 0);
    jwt_free(j);
    /* NULL key or zero length: no signature check at all. */
    ck_assert_int_eq(jwt_decode(&j, wrong, NULL, 0), 0);
    jwt_free(j);
    ck_assert_int_eq(jwt_decode(&j, wrong, key, 0), 0);
    jwt_free(j);
    /* With a key, alg none is refused, with a positive errno. */
    ck_assert_int_eq(jwt_decode(&j, none, key, (int)strlen(SECRET)), EINVAL);
    ck_assert_ptr_null(j);
    /* Without one, alg none passes. */
    ck_assert_int_eq(jwt_decode(&j, none, NULL, 0), 0);
    jwt_free(j);
    /* A wrong signature: EINVAL, positive. */
    ck_assert_int_eq(jwt_decode(&j, wrong, key, (int)strlen(SECRET)), EINVAL);

    free(hs512);
    free(in);
    free(none);
    free(confused);
    free(wrong);
}
END_TEST

/* ---- minting */

START_TEST(test_mint_roundtrip)
{
    sh_token_verifier_t *v = verifier(SH_CONFIG_JWT_HS256);
    json_t *in = json_pack("{s:s,s:s,s:[s,s],s:I}", "id", "u1", "name", "Ann", "channels", "c1",
                           "c2", "iat", (json_int_t)5);
    char *tok = NULL;
    sh_buf_t err = SH_BUF_INIT;
    ck_assert_int_eq(sh_token_mint(SECRET, in, NOW, 600, &tok, &err), 0);
    json_t *claims = expect(v, "minted", tok, 0, NULL);
    json_t *want = json_pack("{s:s,s:s,s:[s,s],s:I,s:I}", "id", "u1", "name", "Ann", "channels",
                             "c1", "c2", "iat", (json_int_t)NOW, "exp", (json_int_t)(NOW + 600));
    ck_assert(json_equal(claims, want));
    ck_assert_int_eq(json_integer_value(json_object_get(in, "iat")), 5); /* borrowed, untouched */
    json_decref(want);
    json_decref(claims);
    free(tok);

    /* libjwt's header is {"alg":"HS256","typ":"JWT"}, as PyJWT's is. */
    ck_assert_int_eq(sh_token_mint(SECRET, in, NOW, 0, &tok, &err), 0);
    char *dot = strchr(tok, '.');
    char *hdr = b64s("{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
    ck_assert_int_eq(strncmp(tok, hdr, (size_t)(dot - tok)), 0);
    ck_assert_uint_eq(strlen(hdr), (size_t)(dot - tok));
    free(hdr);
    claims = expect(v, "minted, no ttl", tok, 0, NULL);
    ck_assert_ptr_null(json_object_get(claims, "exp"));
    json_decref(claims);
    free(tok);
    /* Expires: verified after ttl + leeway, refused. */
    ck_assert_int_eq(sh_token_mint(SECRET, in, NOW - 700, 600, &tok, &err), 0);
    expect(v, "minted, expired", tok, -EACCES, "expired");
    free(tok);
    /* Numeric id */
    json_t *num = json_pack("{s:i}", "id", 42);
    ck_assert_int_eq(sh_token_mint(SECRET, num, NOW, 60, &tok, &err), 0);
    claims = expect(v, "minted numeric id", tok, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(claims, "id")), "42");
    json_decref(claims);
    free(tok);
    json_decref(num);
    json_decref(in);
    ck_assert_uint_eq(sh_buf_avail(&err), 0);
    sh_buf_release(&err);
    sh_token_verifier_free(v);
}
END_TEST

START_TEST(test_mint_errors)
{
    static const struct {
        const char *secret;
        const char *claims; /* JSON */
        int64_t ttl;
        const char *want;
    } cases[] = {
        {"", "{\"id\":\"u1\"}", 60, "no secret to sign with"},
        {NULL, "{\"id\":\"u1\"}", 60, "no secret to sign with"},
        {SECRET, "[1]", 60, "claims are not a JSON object"},
        {SECRET, "{\"name\":\"x\"}", 60, "claims: no id claim"},
        {SECRET, "{\"id\":\"\"}", 60, "claims: id is empty"},
        {SECRET, "{\"id\":true}", 60, "claims: id is not a string or integer"},
        {SECRET, "{\"id\":\"u1\"}", INT64_MAX, "ttl is too large"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *c = json_loads(cases[i].claims, 0, NULL);
        char *tok = (char *)"untouched";
        sh_buf_t err = SH_BUF_INIT;
        ck_assert_int_eq(sh_token_mint(cases[i].secret, c, NOW, cases[i].ttl, &tok, &err), -EINVAL);
        ck_assert_str_eq(tok, "untouched");
        ck_assert_msg(strcmp(sh_buf_peek(&err), cases[i].want) == 0, "case %zu: '%s'", i,
                      sh_buf_peek(&err));
        sh_buf_release(&err);
        json_decref(c);
    }
    /* Too large a result */
    sh_buf_t pad = SH_BUF_INIT;
    for (int i = 0; i < 7000; i++)
        sh_buf_append_byte(&pad, 'x');
    json_t *c = json_pack("{s:s,s:s}", "id", "u1", "pad", sh_buf_peek(&pad));
    char *tok = NULL;
    sh_buf_t err = SH_BUF_INIT;
    ck_assert_int_eq(sh_token_mint(SECRET, c, NOW, 60, &tok, &err), -EINVAL);
    ck_assert_str_eq(sh_buf_peek(&err), "token would be longer than 8 KiB");
    ck_assert_ptr_null(strstr(sh_buf_peek(&err), SECRET));
    json_decref(c);
    sh_buf_release(&pad);
    sh_buf_release(&err);
}
END_TEST

/* ---- the token subcommand */

typedef struct captured {
    int status;
    char *out; /* stdout */
    char *err; /* stderr */
} captured_t;

static char *slurp_fd(int fd)
{
    sh_buf_t b = SH_BUF_INIT;
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    for (;;) {
        char *w = sh_buf_reserve(&b, 4096);
        ssize_t n = read(fd, w, 4096);
        ck_assert_int_ge(n, 0);
        if (n == 0)
            break;
        sh_buf_commit(&b, (size_t)n);
    }
    close(fd);
    return sh_buf_steal(&b, NULL);
}

/* Runs sh_token_cmd with args (NULL-terminated, after "token") under a
 * config with secret (NULL: none) and algorithm alg, capturing output. */
static captured_t run_cmd(const char *secret, const char *alg, const char *const *args)
{
    sh_config_t cfg;
    sh_config_init(&cfg);
    sh_buf_t err = SH_BUF_INIT;
    if (secret)
        ck_assert_int_eq(sh_config_set(&cfg, "secret", secret, &err), 0);
    if (alg)
        ck_assert_int_eq(sh_config_set(&cfg, "jwt_algorithm", alg, &err), 0);
    sh_buf_release(&err);

    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"token";
    for (; args[argc - 1]; argc++)
        argv[argc] = (char *)args[argc - 1];
    argv[argc] = NULL;

    FILE *out = tmpfile(), *errf = tmpfile();
    ck_assert_ptr_nonnull(out);
    ck_assert_ptr_nonnull(errf);
    fflush(stdout);
    fflush(stderr);
    int save_out = dup(1), save_err = dup(2);
    dup2(fileno(out), 1);
    dup2(fileno(errf), 2);
    captured_t c;
    c.status = sh_token_cmd(&cfg, argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(save_out, 1);
    dup2(save_err, 2);
    close(save_out);
    close(save_err);
    c.out = slurp_fd(dup(fileno(out)));
    c.err = slurp_fd(dup(fileno(errf)));
    fclose(out);
    fclose(errf);
    sh_config_release(&cfg);
    return c;
}

static void captured_free(captured_t *c)
{
    free(c->out);
    free(c->err);
}

/* The printed token, verified now. */
static json_t *verify_printed(const captured_t *c)
{
    ck_assert_msg(c->status == 0, "status %d, stderr: %s", c->status, c->err);
    ck_assert_str_eq(c->err, "");
    size_t n = strlen(c->out);
    ck_assert_uint_gt(n, 1);
    ck_assert_int_eq(c->out[n - 1], '\n');
    ck_assert_ptr_null(strchr(c->out, ' '));
    char *tok = sh_strndup(c->out, n - 1);
    sh_buf_t err = SH_BUF_INIT;
    sh_token_options_t o = {.alg = SH_CONFIG_JWT_HS256, .secret = SECRET, .leeway_ms = LEEWAY};
    sh_token_verifier_t *v = sh_token_verifier_new(&o, &err);
    json_t *claims = NULL;
    const char *reason = NULL;
    int rc = sh_token_verify(v, tok, (int64_t)time(NULL), &claims, &reason);
    ck_assert_msg(rc == 0, "printed token refused: %s", reason);
    sh_token_verifier_free(v);
    sh_buf_release(&err);
    free(tok);
    return claims;
}

START_TEST(test_cmd_mints)
{
    const char *args[] = {"--user",          "u1",     "--name", "Ann Lee",    "--email",
                          "ann@example.org", "--role", "admin",  "--channels", "c1,c2",
                          "--ttl",           "120",    NULL};
    captured_t c = run_cmd(SECRET, NULL, args);
    json_t *claims = verify_printed(&c);
    json_t *want = json_pack("{s:s,s:s,s:s,s:s,s:[s,s]}", "id", "u1", "name", "Ann Lee", "email",
                             "ann@example.org", "role", "admin", "channels", "c1", "c2");
    json_t *iat = json_object_get(claims, "iat"), *exp = json_object_get(claims, "exp");
    ck_assert(json_is_integer(iat) && json_is_integer(exp));
    ck_assert_int_eq(json_integer_value(exp) - json_integer_value(iat), 120);
    ck_assert_int_le(llabs((long long)json_integer_value(iat) - (long long)time(NULL)), 5);
    json_object_del(claims, "iat");
    json_object_del(claims, "exp");
    ck_assert(json_equal(claims, want));
    json_decref(want);
    json_decref(claims);
    captured_free(&c);
}
END_TEST

START_TEST(test_cmd_defaults_and_forms)
{
    const char *a1[] = {"--user=u2", NULL};
    captured_t c = run_cmd(SECRET, NULL, a1);
    json_t *claims = verify_printed(&c);
    ck_assert_int_eq(json_object_size(claims), 3); /* id, iat, exp */
    ck_assert_str_eq(json_string_value(json_object_get(claims, "id")), "u2");
    ck_assert_int_eq(json_integer_value(json_object_get(claims, "exp")) -
                         json_integer_value(json_object_get(claims, "iat")),
                     SH_TOKEN_CMD_DEFAULT_TTL);
    json_decref(claims);
    captured_free(&c);

    const char *a2[] = {"--ttl", "0", "--user", "u3", NULL};
    c = run_cmd(SECRET, NULL, a2);
    claims = verify_printed(&c);
    ck_assert_ptr_null(json_object_get(claims, "exp"));
    json_decref(claims);
    captured_free(&c);

    const char *a3[] = {"--help", NULL};
    c = run_cmd(NULL, NULL, a3);
    ck_assert_int_eq(c.status, 0);
    ck_assert_ptr_nonnull(strstr(c.out, "usage: siohubd"));
    captured_free(&c);
}
END_TEST

START_TEST(test_cmd_errors)
{
    static const struct {
        const char *secret, *alg;
        const char *args[6];
        int status;
        const char *want; /* in stderr */
    } cases[] = {
        {SECRET, NULL, {NULL}, 2, "--user ID is required"},
        {SECRET, NULL, {"--user", "", NULL}, 2, "--user ID is required"},
        {SECRET, NULL, {"--user", NULL}, 2, "--user needs a value"},
        {SECRET, NULL, {"--user", "u1", "--bogus", "x", NULL}, 2, "unknown option '--bogus'"},
        {SECRET, NULL, {"--user", "u1", "stray", NULL}, 2, "unexpected argument 'stray'"},
        {SECRET, NULL, {"--user", "u1", "--user", "u2", NULL}, 2, "--user given twice"},
        {SECRET, NULL, {"--user", "u1", "--ttl", "abc", NULL}, 2, "--ttl: 'abc' is not a number"},
        {SECRET, NULL, {"--user", "u1", "--ttl", "-5", NULL}, 2, "--ttl: '-5' is not a number"},
        {SECRET, NULL, {"--user", "u1", "--ttl", "99999999999999", NULL}, 2, "is not a number"},
        {SECRET, NULL, {"--user", "u1", "--channels", "a,,b", NULL}, 2, "empty channel id"},
        {SECRET, NULL, {"--user", "u1", "--channels", "", NULL}, 2, "empty channel id"},
        {SECRET, NULL, {"--user", "u1", "--name", "\xff", NULL}, 2, "--name: not UTF-8"},
        {"", NULL, {"--user", "u1", NULL}, 1, "no secret configured"},
        {NULL, NULL, {"--user", "u1", NULL}, 1, "no secret configured"},
        {SECRET, "RS256", {"--user", "u1", NULL}, 1, "jwt_algorithm is RS256"},
        {SECRET, "ES256", {"--user", "u1", NULL}, 1, "HS256 tokens only"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        captured_t c = run_cmd(cases[i].secret, cases[i].alg, cases[i].args);
        ck_assert_msg(c.status == cases[i].status, "case %zu: status %d", i, c.status);
        ck_assert_msg(strstr(c.err, cases[i].want), "case %zu: stderr '%s'", i, c.err);
        ck_assert_msg(strcmp(c.out, "") == 0, "case %zu: stdout not empty", i);
        ck_assert_msg(!strstr(c.err, SECRET), "case %zu: the secret in stderr", i);
        captured_free(&c);
    }
    /* A long id */
    char id[SH_TOKEN_MAX_ID + 2];
    memset(id, 'a', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    const char *args[] = {"--user", id, NULL};
    captured_t c = run_cmd(SECRET, NULL, args);
    ck_assert_int_eq(c.status, 2);
    ck_assert_ptr_nonnull(strstr(c.err, "longer than 256 bytes"));
    captured_free(&c);
}
END_TEST

static Suite *token_suite(void)
{
    Suite *s = suite_create("token");
    TCase *tc = tcase_create("hs256");
    tcase_add_loop_test(tc, test_hs256_table, 0, (int)(sizeof(hs_vectors) / sizeof(hs_vectors[0])));
    tcase_add_test(tc, test_valid_claims_copy);
    tcase_add_test(tc, test_numeric_id);
    tcase_add_test(tc, test_id_length);
    tcase_add_test(tc, test_raw_hostile);
    tcase_add_test(tc, test_every_prefix_refused);
    tcase_add_test(tc, test_size_limit);
    suite_add_tcase(s, tc);

    tc = tcase_create("keys");
    tcase_add_unchecked_fixture(tc, keys_setup, keys_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_rs256_es256);
    tcase_add_test(tc, test_algorithm_confusion);
    tcase_add_test(tc, test_verifier_errors);
    tcase_add_test(tc, test_libjwt_facts);
    suite_add_tcase(s, tc);

    tc = tcase_create("mint");
    tcase_add_test(tc, test_mint_roundtrip);
    tcase_add_test(tc, test_mint_errors);
    tcase_add_test(tc, test_cmd_mints);
    tcase_add_test(tc, test_cmd_defaults_and_forms);
    tcase_add_test(tc, test_cmd_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(token_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
