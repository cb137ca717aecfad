/* auth/directory.h — who a user id is, and which channels they belong to.
 *
 * A small ops table chosen by the `directory` setting:
 *   claims       the verified token's own claims: "name", "email", "role",
 *                "profile_image_url" and a "channels" array of ids;
 *   file:PATH    a JSON file (see sh_directory_file_parse for its shape),
 *                re-read on SIGHUP; a bad file keeps the previous one and
 *                the reason is logged.
 * Users whose role is not "user" or "admin" (Open WebUI's "pending", say)
 * are not authenticated: lookups refuse them.
 *
 * The user dict is what Open WebUI keeps in SESSION_POOL: always "id",
 * "name", "email" and "role", plus "profile_image_url" when known (and,
 * from the file, any other field the entry has). Both backends fill gaps
 * the same way: no name -> the id, no email -> "", no role -> "user".
 * The role default is a choice: Open WebUI's own tokens carry only "id"
 * (and exp, jti), so with the claims backend every holder of a token the
 * secret signed is a "user" — a token signed with the secret already
 * proves Open WebUI let that user in, but it cannot tell a "pending" user
 * apart. Deployments that need pending users refused use the file
 * backend (or tokens that carry "role").
 *
 * Channels from claims: the "channels" array's non-empty strings of at
 * most SH_DIRECTORY_MAX_ID bytes, in order; any other element, or a
 * "channels" that is not an array, is ignored.
 *
 * Lookups are synchronous (both backends answer from memory) and hand out
 * copies: the caller may change what it gets (add "last_seen_at", say).
 */
#ifndef SH_AUTH_DIRECTORY_H
#define SH_AUTH_DIRECTORY_H

#include <jansson.h>

#include "core/buf.h"

/* Directory files larger than this are refused, not truncated. */
#define SH_DIRECTORY_MAX_FILE (16 * 1024 * 1024)
/* Longest user or channel id (bytes), as tokens allow (SH_TOKEN_MAX_ID). */
#define SH_DIRECTORY_MAX_ID 256

typedef struct sh_directory sh_directory_t;

typedef struct sh_directory_ops {
    const char *name;
    /* arg is what follows "file:" (NULL for claims). On error returns a
     * negative errno with the reason in err and *state untouched. */
    int (*open)(void **state, const char *arg, sh_buf_t *err);
    /* The user object for id ({"id","name","email","role",...}, a new
     * object the caller owns) or NULL when unknown. claims are the
     * verified token's (borrowed). */
    json_t *(*user)(void *state, const char *id, const json_t *claims);
    /* The user's channel ids (a new array of strings the caller owns;
     * empty when none). */
    json_t *(*channels)(void *state, const char *id, const json_t *claims);
    /* Re-reads the source; on error keeps the old data and says why in
     * err. The claims backend has nothing to re-read: always 0. */
    int (*reload)(void *state, sh_buf_t *err);
    void (*close)(void *state);
} sh_directory_ops_t;

extern const sh_directory_ops_t sh_directory_claims;
extern const sh_directory_ops_t sh_directory_file;

/* spec is the `directory` setting: "claims" or "file:PATH". NULL with the
 * reason in err (an unknown spec; for a file, "PATH: " and why it could
 * not be read or parsed). */
sh_directory_t *sh_directory_new(const char *spec, sh_buf_t *err);
/* NULL is a no-op. */
void sh_directory_free(sh_directory_t *dir);
/* "claims" or "file". Static storage. */
const char *sh_directory_name(const sh_directory_t *dir);

/* Resolves the user a verified token names (claims as sh_token_verify
 * returns them: "id" is a string). Returns 0 with *user (new reference;
 * the Open WebUI user dict: id, name, email, role and what else the
 * source knows) and, when channels is not NULL, *channels (new reference,
 * array of channel id strings). Returns -EINVAL (claims without a string
 * id), -ENOENT (unknown user) or -EACCES (role not user/admin) with
 * *reason pointing at a static phrase for the debug log; *user and
 * *channels are then untouched. */
int sh_directory_lookup(const sh_directory_t *dir, const json_t *claims, json_t **user,
                        json_t **channels, const char **reason);

/* Re-reads the backing source (SIGHUP). Returns 0, or a negative errno
 * with the reason in err and the previous data kept. */
int sh_directory_reload(sh_directory_t *dir, sh_buf_t *err);

/* The file backend's parser, exposed for tests and the fuzz target:
 *   {"users":    [{"id":"u1","name":"Ann","email":"a@x","role":"user",...}],
 *    "channels": [{"id":"c1","members":["u1","u2"]}]}
 * "users" is required, "channels" optional; no other top-level key (a typo
 * would silently drop data). A user needs a non-empty string id of at most
 * SH_DIRECTORY_MAX_ID bytes, unique; "name", "email", "role" and
 * "profile_image_url" are strings when present; other fields are kept.
 * Token ids that were integers arrive as decimal strings, so write "42".
 * A channel needs a unique id as users do and a "members" array of user
 * id strings (unknown ids are allowed: users come and go; a repeated
 * member counts once); its other fields ("name", say) are ignored.
 * Returns a new object {"users":{id:user dict with the defaults filled
 * in},"channels_of":{uid:[cid...]}} or NULL with the reason in err:
 * "line L, column C: ..." for JSON syntax (and repeated keys),
 * "users[3]: duplicate id 'u1'" style for the rest, and a size error past
 * SH_DIRECTORY_MAX_FILE. text need not be NUL-terminated. */
json_t *sh_directory_file_parse(const char *text, size_t len, sh_buf_t *err);

#endif
