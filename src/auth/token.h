/* auth/token.h — JSON Web Token checks for Socket.IO CONNECT auth, on
 * libjwt, with the algorithm pinned by configuration.
 *
 * Open WebUI signs HS256 tokens with WEBUI_SECRET_KEY; deployments that
 * front it with an identity provider may use RS256/ES256 with a public key
 * file. The algorithm in a token's header is never trusted: a token whose
 * header names any other algorithm (including "none") is refused before
 * its signature is looked at, which defeats algorithm confusion (an
 * RS256 public key used as an HS256 secret). libjwt 1.10 checks no
 * signature at all when given a NULL key, so a key is always passed.
 *
 * Verification never calls back and never blocks; it only reads memory.
 */
#ifndef SH_AUTH_TOKEN_H
#define SH_AUTH_TOKEN_H

#include <stdint.h>

#include <jansson.h>

#include "config/config.h"
#include "core/buf.h"

typedef struct sh_token_verifier sh_token_verifier_t;

typedef struct sh_token_options {
    sh_config_jwt_alg_t alg;
    const char *secret;          /* HS256 */
    const char *public_key_path; /* RS256 / ES256: PEM file */
    int64_t leeway_ms;           /* clock skew tolerated for exp / nbf / iat */
} sh_token_options_t;

/* Loads the key material. NULL with a reason in err when the key file
 * cannot be read or is not a key of the configured kind, or the HS256
 * secret is empty. */
sh_token_verifier_t *sh_token_verifier_new(const sh_token_options_t *opts, sh_buf_t *err);
void sh_token_verifier_free(sh_token_verifier_t *v);

/* Checks token at time now_s (Unix seconds). On success returns 0 and sets
 * *claims to a new reference to the payload object, which has an "id"
 * (string, or a number turned into its decimal string). On failure returns
 * -EACCES (bad signature, wrong algorithm, expired, not yet valid, an API
 * key "sk-...") or -EINVAL (not a JWT, bad JSON, no id) and points *reason
 * at a static phrase for the debug log; *claims is untouched. The token
 * itself never appears in reasons (it is a credential). */
int sh_token_verify(const sh_token_verifier_t *v, const char *token, int64_t now_s, json_t **claims,
                    const char **reason);

/* Mints an HS256 token over claims (borrowed; "iat" and, with ttl_s > 0,
 * "exp" are added to a copy) for scripts and tests. *out is malloc'ed.
 * Returns 0 or -EINVAL with a reason in err. */
int sh_token_mint(const char *secret, const json_t *claims, int64_t now_s, int64_t ttl_s,
                  char **out, sh_buf_t *err);

#endif
