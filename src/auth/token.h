/* auth/token.h — JSON Web Token checks for Socket.IO CONNECT auth, on
 * libjwt, with the algorithm pinned by configuration.
 *
 * Open WebUI signs HS256 tokens with WEBUI_SECRET_KEY; deployments that
 * front it with an identity provider may use RS256/ES256 with a public key
 * file. The algorithm in a token's header is never trusted: a token whose
 * header names any other algorithm (including "none") is refused before
 * its signature is looked at, which defeats algorithm confusion (an
 * RS256 public key used as an HS256 secret).
 *
 * What libjwt 1.10.2 does by itself (measured; the reason for the checks
 * here): jwt_decode() verifies with whatever algorithm the header names,
 * matched case-insensitively ("hs256", "NONE"); it checks no signature at
 * all when the key is NULL *or* key_len is 0, and then reports the
 * algorithm as none; with a key it refuses alg "none"; it accepts a
 * payload that is any JSON value (an array, say), a header without "typ",
 * and checks neither exp nor nbf nor iat. So: the header is decoded here
 * first and its "alg" must equal the configured name exactly, the key is
 * never empty, and the payload and time claims are checked here.
 *
 * Verification never calls back and never blocks; it only reads memory.
 */
#ifndef SH_AUTH_TOKEN_H
#define SH_AUTH_TOKEN_H

#include <stdint.h>

#include <jansson.h>

#include "config/config.h"
#include "core/buf.h"

/* Longer tokens are refused before any parsing (Open WebUI's are ~150
 * bytes; 8 KiB leaves room for a generous claims set). */
#define SH_TOKEN_MAX_LEN 8192
/* Longest "id" accepted (bytes, after an integer id became a string). */
#define SH_TOKEN_MAX_ID 256

typedef struct sh_token_verifier sh_token_verifier_t;

typedef struct sh_token_options {
    sh_config_jwt_alg_t alg;
    const char *secret;          /* HS256: any non-empty string */
    const char *public_key_path; /* RS256 (RSA >= 2048 bits) / ES256 (P-256): PEM file */
    int64_t leeway_ms;           /* clock skew tolerated for exp / nbf / iat, >= 0 */
} sh_token_options_t;

/* Loads the key material (copied: opts may go away). NULL with a reason
 * in err when the key file cannot be read, is not a PEM public key of the
 * configured kind (a private key is refused: give the public half), or the
 * HS256 secret is empty. */
sh_token_verifier_t *sh_token_verifier_new(const sh_token_options_t *opts, sh_buf_t *err);
/* Scrubs the key copy. NULL is a no-op. */
void sh_token_verifier_free(sh_token_verifier_t *v);

/* Checks token (NUL-terminated) at time now_s (Unix seconds). On success
 * returns 0 and sets *claims to a new reference to the payload object,
 * which has an "id" (string, or an integer turned into its decimal
 * string). On failure returns -EACCES (bad signature, wrong algorithm,
 * expired, not yet valid, an API key "sk-..."), -EINVAL (not a JWT, bad
 * base64url or JSON, a header "typ" other than JWT or any "crit", no
 * usable id, a time claim that is not a number) or -ENOMEM (libjwt could
 * not allocate), and points *reason at a static phrase for the debug log;
 * *claims is untouched. The token itself never appears in reasons (it is
 * a credential).
 *
 * The rules, PyJWT's where it has one: exp is expired when
 * exp <= now - leeway; nbf and iat refuse when > now + leeway; each is an
 * integer or real number of seconds when present. The id is a non-empty
 * string of at most SH_TOKEN_MAX_ID bytes, or an integer. Base64url is
 * strict (no padding, no stray bits), JSON objects may not repeat a key,
 * and tokens over SH_TOKEN_MAX_LEN bytes are refused unread. */
int sh_token_verify(const sh_token_verifier_t *v, const char *token, int64_t now_s, json_t **claims,
                    const char **reason);

/* Mints an HS256 token over claims (borrowed; must be an object with an
 * id as sh_token_verify wants it) for scripts and tests. A copy gets
 * "iat" = now_s and, with ttl_s > 0, "exp" = now_s + ttl_s, replacing any
 * there (ttl_s <= 0 keeps the claims' own exp, if any). *out is malloc'ed.
 * Returns 0 or -EINVAL with a reason in err (empty secret, bad claims, a
 * result over SH_TOKEN_MAX_LEN). Never puts the secret in err. */
int sh_token_mint(const char *secret, const json_t *claims, int64_t now_s, int64_t ttl_s,
                  char **out, sh_buf_t *err);

#endif
