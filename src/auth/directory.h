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
 * Lookups are synchronous (both backends answer from memory).
 */
#ifndef SH_AUTH_DIRECTORY_H
#define SH_AUTH_DIRECTORY_H

#include <jansson.h>

#include "core/buf.h"

typedef struct sh_directory sh_directory_t;

typedef struct sh_directory_ops {
    const char *name;
    /* arg is what follows "file:" (NULL for claims). */
    int (*open)(void **state, const char *arg, sh_buf_t *err);
    /* The user object for id ({"id","name","email","role",...}, a new
     * reference) or NULL when unknown. claims are the verified token's. */
    json_t *(*user)(void *state, const char *id, const json_t *claims);
    /* The user's channel ids (a new reference to an array of strings). */
    json_t *(*channels)(void *state, const char *id, const json_t *claims);
    /* Re-reads the source; on error keeps the old data and says why. */
    int (*reload)(void *state, sh_buf_t *err);
    void (*close)(void *state);
} sh_directory_ops_t;

extern const sh_directory_ops_t sh_directory_claims;
extern const sh_directory_ops_t sh_directory_file;

/* spec is the `directory` setting: "claims" or "file:PATH". */
sh_directory_t *sh_directory_new(const char *spec, sh_buf_t *err);
void sh_directory_free(sh_directory_t *dir);
const char *sh_directory_name(const sh_directory_t *dir);

/* Resolves the user a verified token names. Returns 0 with *user (new
 * reference; the Open WebUI user dict: id, name, email, role and what else
 * the source knows) and, when channels is not NULL, *channels (new
 * reference, array of channel id strings). Returns -ENOENT (unknown user)
 * or -EACCES (role not user/admin) with *reason set for the debug log. */
int sh_directory_lookup(const sh_directory_t *dir, const json_t *claims, json_t **user,
                        json_t **channels, const char **reason);

/* Re-reads the backing source (SIGHUP). Returns 0, or a negative errno
 * with the reason in err and the previous data kept. */
int sh_directory_reload(sh_directory_t *dir, sh_buf_t *err);

/* The file backend's parser, exposed for tests and the fuzz target:
 *   {"users":    [{"id":"u1","name":"Ann","email":"a@x","role":"user",...}],
 *    "channels": [{"id":"c1","members":["u1","u2"]}]}
 * Users need a non-empty string id and unique ids; a channel needs an id
 * and a members array of user id strings (unknown ids are allowed: users
 * come and go). Returns a new object {"users":{id:user},"channels_of":
 * {uid:[cid...]}} or NULL with the reason (and a JSON line/column where it
 * applies) in err. */
json_t *sh_directory_file_parse(const char *text, size_t len, sh_buf_t *err);

#endif
