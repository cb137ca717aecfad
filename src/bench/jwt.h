/* bench/jwt.h — HS256 JSON Web Tokens minted with libcrypto's HMAC, so a
 * run needs only the server's secret (Open WebUI's WEBUI_SECRET_KEY; the
 * peers take the same one), not a token per user made beforehand.
 */
#ifndef SB_JWT_H
#define SB_JWT_H

#include <stdint.h>

/* A new token (free() it) signing claims_json (a JSON object, used as
 * is) with secret. */
char *sb_jwt_hs256(const char *secret, const char *claims_json);

/* A new token for user id: {"id":id,"name":name,"role":"user",
 * "channels":[channels...],"exp":now+ttl_s}. name may be NULL (= id);
 * channels is an array of nchannels ids (may be NULL). Ids are written
 * as given: keep them to JSON-safe characters. */
char *sb_jwt_user(const char *secret, const char *id, const char *name, const char *const *channels,
                  unsigned nchannels, int64_t ttl_s);

#endif
