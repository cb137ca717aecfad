/* auth/directory_claims.c — the claims backend: the verified token says
 * who its holder is. No state: the token is the whole source. */
#include "auth/directory.h"

#include <stddef.h>

/* The claim if it is a string, else NULL. */
static const char *claim_str(const json_t *claims, const char *key)
{
    return json_string_value(json_object_get(claims, key));
}

static int claims_open(void **state, const char *arg, sh_buf_t *err)
{
    (void)arg;
    (void)err;
    *state = NULL;
    return 0;
}

static json_t *claims_user(void *state, const char *id, const json_t *claims)
{
    (void)state;
    const char *name = claim_str(claims, "name");
    const char *email = claim_str(claims, "email");
    const char *pic = claim_str(claims, "profile_image_url");
    json_t *u = json_object();
    json_object_set_new(u, "id", json_string(id));
    json_object_set_new(u, "name", json_string(name && *name ? name : id));
    json_object_set_new(u, "email", json_string(email ? email : ""));
    /* A missing role is "user" (see directory.h); a role that is there
     * but not a string is kept as it is, and the lookup refuses it. */
    json_t *role = json_object_get(claims, "role");
    if (role)
        json_object_set_new(u, "role", json_deep_copy(role));
    else
        json_object_set_new(u, "role", json_string("user"));
    if (pic)
        json_object_set_new(u, "profile_image_url", json_string(pic));
    return u;
}

static json_t *claims_channels(void *state, const char *id, const json_t *claims)
{
    (void)state;
    (void)id;
    json_t *out = json_array();
    const json_t *list = json_object_get(claims, "channels");
    size_t i;
    const json_t *c;
    if (json_is_array(list)) {
        json_array_foreach (list, i, c) {
            size_t n = json_string_length(c);
            if (json_is_string(c) && n > 0 && n <= SH_DIRECTORY_MAX_ID)
                json_array_append_new(out, json_stringn(json_string_value(c), n));
        }
    }
    return out;
}

static int claims_reload(void *state, sh_buf_t *err)
{
    (void)state;
    (void)err;
    return 0;
}

static void claims_close(void *state)
{
    (void)state;
}

const sh_directory_ops_t sh_directory_claims = {
    .name = "claims",
    .open = claims_open,
    .user = claims_user,
    .channels = claims_channels,
    .reload = claims_reload,
    .close = claims_close,
};
