/* fuzz_directory — the directory file parser on untrusted bytes.
 *
 * A parse either fails with a reason or yields {"users":{...},
 * "channels_of":{...}} whose every user has string id/name/email/role
 * (the id its key) and whose every channel list holds only strings.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/directory.h"
#include "core/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_result(json_t *out)
{
    json_t *users = json_object_get(out, "users");
    json_t *chans = json_object_get(out, "channels_of");
    if (!json_is_object(users) || !json_is_object(chans) || json_object_size(out) != 2)
        abort();
    const char *key;
    json_t *val;
    json_object_foreach (users, key, val) {
        const char *id = json_string_value(json_object_get(val, "id"));
        if (!id || strcmp(id, key) != 0 || !*id || strlen(id) > SH_DIRECTORY_MAX_ID)
            abort();
        if (!json_is_string(json_object_get(val, "name")) ||
            !json_is_string(json_object_get(val, "email")) ||
            !json_is_string(json_object_get(val, "role")))
            abort();
    }
    json_object_foreach (chans, key, val) {
        size_t i;
        json_t *c;
        if (!json_is_array(val) || json_array_size(val) == 0)
            abort();
        json_array_foreach (val, i, c) {
            if (!json_is_string(c))
                abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sh_buf_t err = SH_BUF_INIT;
    json_t *out = sh_directory_file_parse((const char *)data, size, &err);
    if (out)
        check_result(out);
    else if (sh_buf_avail(&err) == 0)
        abort(); /* every error has a reason */
    json_decref(out);
    sh_buf_release(&err);
    return 0;
}
