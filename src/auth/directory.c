/* auth/directory.c — the directory front: picks a backend from the
 * `directory` setting and applies the rule every backend shares (only
 * roles "user" and "admin" authenticate). */
#include "auth/directory.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

struct sh_directory {
    const sh_directory_ops_t *ops;
    void *state;
};

sh_directory_t *sh_directory_new(const char *spec, sh_buf_t *err)
{
    const sh_directory_ops_t *ops;
    const char *arg = NULL;
    if (spec && strcmp(spec, "claims") == 0) {
        ops = &sh_directory_claims;
    } else if (spec && strncmp(spec, "file:", 5) == 0 && spec[5] != '\0') {
        ops = &sh_directory_file;
        arg = spec + 5;
    } else {
        sh_buf_appendf(err, "directory must be 'claims' or 'file:PATH'");
        return NULL;
    }
    void *state = NULL;
    if (ops->open(&state, arg, err) < 0)
        return NULL;
    sh_directory_t *dir = sh_new0(sh_directory_t);
    dir->ops = ops;
    dir->state = state;
    return dir;
}

void sh_directory_free(sh_directory_t *dir)
{
    if (!dir)
        return;
    dir->ops->close(dir->state);
    free(dir);
}

const char *sh_directory_name(const sh_directory_t *dir)
{
    return dir->ops->name;
}

int sh_directory_lookup(const sh_directory_t *dir, const json_t *claims, json_t **user,
                        json_t **channels, const char **reason)
{
    const char *id = json_string_value(json_object_get(claims, "id"));
    if (!id || !*id) {
        *reason = "claims have no string id";
        return -EINVAL;
    }
    json_t *u = dir->ops->user(dir->state, id, claims);
    if (!u) {
        *reason = "unknown user";
        return -ENOENT;
    }
    const char *role = json_string_value(json_object_get(u, "role"));
    if (!role || (strcmp(role, "user") != 0 && strcmp(role, "admin") != 0)) {
        *reason =
            role && strcmp(role, "pending") == 0 ? "user is pending" : "role is not user or admin";
        json_decref(u);
        return -EACCES;
    }
    if (channels)
        *channels = dir->ops->channels(dir->state, id, claims);
    *user = u;
    return 0;
}

int sh_directory_reload(sh_directory_t *dir, sh_buf_t *err)
{
    return dir->ops->reload(dir->state, err);
}
