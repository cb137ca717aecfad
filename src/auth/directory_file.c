/* auth/directory_file.c — the file backend: users and channel memberships
 * from a JSON file, parsed once into lookup tables and swapped whole on
 * reload, so a bad file never leaves half its data behind. */
#include "auth/directory.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"

typedef struct file_state {
    char *path;
    json_t *data; /* sh_directory_file_parse's result */
} file_state_t;

/* ---- the parser */

/* Appends s quoted, control bytes escaped and long ids cut, so an error
 * message stays one readable line whatever the file holds. */
static void append_quoted(sh_buf_t *b, const char *s)
{
    size_t n = strlen(s);
    size_t show = n > 64 ? 64 : n;
    sh_buf_append_byte(b, '\'');
    for (size_t i = 0; i < show; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == '\\' || c == '\'')
            sh_buf_appendf(b, "\\x%02x", c);
        else
            sh_buf_append_byte(b, (char)c);
    }
    if (show < n)
        sh_buf_append_str(b, "...");
    sh_buf_append_byte(b, '\'');
}

/* NULL when v is a usable id, else why not. */
static const char *id_problem(const json_t *v)
{
    if (!json_is_string(v) || json_string_length(v) == 0)
        return "id must be a non-empty string";
    if (json_string_length(v) > SH_DIRECTORY_MAX_ID)
        return "id is longer than 256 bytes";
    return NULL;
}

static const char *const user_string_fields[] = {"name", "email", "role", "profile_image_url",
                                                 NULL};

/* Adds users[i] to out ({id: user}); 0 or -EINVAL with the reason. */
static int parse_user(json_t *out, size_t i, const json_t *u, sh_buf_t *err)
{
    if (!json_is_object(u)) {
        sh_buf_appendf(err, "users[%zu]: not an object", i);
        return -EINVAL;
    }
    const json_t *idv = json_object_get(u, "id");
    const char *why = id_problem(idv);
    if (why) {
        sh_buf_appendf(err, "users[%zu]: %s", i, why);
        return -EINVAL;
    }
    const char *id = json_string_value(idv);
    if (json_object_get(out, id)) {
        sh_buf_appendf(err, "users[%zu]: duplicate id ", i);
        append_quoted(err, id);
        return -EINVAL;
    }
    for (size_t k = 0; user_string_fields[k]; k++) {
        const json_t *f = json_object_get(u, user_string_fields[k]);
        if (f && !json_is_string(f)) {
            sh_buf_appendf(err, "users[%zu]: %s must be a string", i, user_string_fields[k]);
            return -EINVAL;
        }
    }
    json_t *user = json_deep_copy(u);
    const char *name = json_string_value(json_object_get(user, "name"));
    if (!name || !*name)
        json_object_set_new(user, "name", json_string(id));
    if (!json_object_get(user, "email"))
        json_object_set_new(user, "email", json_string(""));
    if (!json_object_get(user, "role"))
        json_object_set_new(user, "role", json_string("user"));
    json_object_set_new(out, id, user);
    return 0;
}

/* Adds channels[i]'s id to channels_of[member] for each member; seen
 * holds the channel ids so far. 0 or -EINVAL with the reason. */
static int parse_channel(json_t *channels_of, json_t *seen, size_t i, const json_t *c,
                         sh_buf_t *err)
{
    if (!json_is_object(c)) {
        sh_buf_appendf(err, "channels[%zu]: not an object", i);
        return -EINVAL;
    }
    const json_t *idv = json_object_get(c, "id");
    const char *why = id_problem(idv);
    if (why) {
        sh_buf_appendf(err, "channels[%zu]: %s", i, why);
        return -EINVAL;
    }
    const char *cid = json_string_value(idv);
    if (json_object_get(seen, cid)) {
        sh_buf_appendf(err, "channels[%zu]: duplicate id ", i);
        append_quoted(err, cid);
        return -EINVAL;
    }
    json_object_set_new(seen, cid, json_true());
    const json_t *members = json_object_get(c, "members");
    if (!json_is_array(members)) {
        sh_buf_appendf(err, "channels[%zu]: members must be an array of user ids", i);
        return -EINVAL;
    }
    size_t k;
    const json_t *m;
    json_array_foreach (members, k, m) {
        if (id_problem(m)) {
            sh_buf_appendf(err, "channels[%zu].members[%zu]: %s", i, k, id_problem(m));
            return -EINVAL;
        }
        const char *uid = json_string_value(m);
        json_t *list = json_object_get(channels_of, uid);
        if (!list) {
            list = json_array();
            json_object_set_new(channels_of, uid, list);
        }
        /* Channels are read one at a time, so a member repeated within
         * this channel has it as the list's last entry. */
        size_t n = json_array_size(list);
        if (n > 0 && strcmp(json_string_value(json_array_get(list, n - 1)), cid) == 0)
            continue;
        json_array_append_new(list, json_string(cid));
    }
    return 0;
}

json_t *sh_directory_file_parse(const char *text, size_t len, sh_buf_t *err)
{
    if (len > SH_DIRECTORY_MAX_FILE) {
        sh_buf_appendf(err, "%zu bytes: larger than the 16 MiB limit", len);
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *users = json_object(), *channels_of = json_object(), *seen = json_object();
    json_t *out = NULL;
    if (!root) {
        sh_buf_appendf(err, "line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
        goto done;
    }
    if (!json_is_object(root)) {
        sh_buf_appendf(err, "the top level is not a JSON object");
        goto done;
    }
    const char *key;
    const json_t *val;
    json_object_foreach (root, key, val) {
        if (strcmp(key, "users") != 0 && strcmp(key, "channels") != 0) {
            sh_buf_appendf(err, "unknown key ");
            append_quoted(err, key);
            sh_buf_appendf(err, " (expected users, channels)");
            goto done;
        }
    }
    const json_t *ulist = json_object_get(root, "users");
    if (!json_is_array(ulist)) {
        sh_buf_appendf(err, "users must be an array");
        goto done;
    }
    const json_t *clist = json_object_get(root, "channels");
    if (clist && !json_is_array(clist)) {
        sh_buf_appendf(err, "channels must be an array");
        goto done;
    }
    size_t i;
    const json_t *e;
    json_array_foreach (ulist, i, e) {
        if (parse_user(users, i, e, err) < 0)
            goto done;
    }
    if (clist) {
        json_array_foreach (clist, i, e) {
            if (parse_channel(channels_of, seen, i, e, err) < 0)
                goto done;
        }
    }
    out = json_object();
    json_object_set(out, "users", users);
    json_object_set(out, "channels_of", channels_of);
done:
    json_decref(root);
    json_decref(users);
    json_decref(channels_of);
    json_decref(seen);
    return out;
}

/* ---- the backend */

/* Reads the whole file; "PATH: why" in err on failure. A file that grows
 * past the limit while being read is refused like a large one. */
static char *read_file(const char *path, size_t *len, sh_buf_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        sh_buf_appendf(err, "%s: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > SH_DIRECTORY_MAX_FILE) {
        sh_buf_appendf(err, "%s: %lld bytes: larger than the 16 MiB limit", path,
                       (long long)st.st_size);
        close(fd);
        return NULL;
    }
    sh_buf_t b = SH_BUF_INIT;
    for (;;) {
        char *w = sh_buf_reserve(&b, 64 * 1024);
        ssize_t n = read(fd, w, 64 * 1024);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            sh_buf_appendf(err, "%s: cannot read: %s", path, strerror(errno));
            goto fail;
        }
        if (n == 0)
            break;
        sh_buf_commit(&b, (size_t)n);
        if (sh_buf_avail(&b) > SH_DIRECTORY_MAX_FILE) {
            sh_buf_appendf(err, "%s: larger than the 16 MiB limit", path);
            goto fail;
        }
    }
    close(fd);
    return sh_buf_steal(&b, len);
fail:
    close(fd);
    sh_buf_release(&b);
    return NULL;
}

/* Reads and parses path: the new data or NULL with "PATH: why". */
static json_t *load(const char *path, sh_buf_t *err)
{
    size_t len;
    char *text = read_file(path, &len, err);
    if (!text)
        return NULL;
    sh_buf_t why = SH_BUF_INIT;
    json_t *data = sh_directory_file_parse(text, len, &why);
    if (!data)
        sh_buf_appendf(err, "%s: %s", path, sh_buf_peek(&why));
    sh_buf_release(&why);
    free(text);
    return data;
}

static int file_open(void **state, const char *arg, sh_buf_t *err)
{
    if (!arg || !*arg) {
        sh_buf_appendf(err, "directory file: no path");
        return -EINVAL;
    }
    json_t *data = load(arg, err);
    if (!data)
        return -EINVAL;
    file_state_t *fs = sh_new0(file_state_t);
    fs->path = sh_strdup(arg);
    fs->data = data;
    *state = fs;
    return 0;
}

static json_t *file_user(void *state, const char *id, const json_t *claims)
{
    file_state_t *fs = state;
    (void)claims;
    const json_t *u = json_object_get(json_object_get(fs->data, "users"), id);
    return u ? json_deep_copy(u) : NULL;
}

static json_t *file_channels(void *state, const char *id, const json_t *claims)
{
    file_state_t *fs = state;
    (void)claims;
    const json_t *list = json_object_get(json_object_get(fs->data, "channels_of"), id);
    return list ? json_deep_copy(list) : json_array();
}

static int file_reload(void *state, sh_buf_t *err)
{
    file_state_t *fs = state;
    json_t *data = load(fs->path, err);
    if (!data)
        return -EINVAL;
    json_decref(fs->data);
    fs->data = data;
    return 0;
}

static void file_close(void *state)
{
    file_state_t *fs = state;
    if (!fs)
        return;
    json_decref(fs->data);
    free(fs->path);
    free(fs);
}

const sh_directory_ops_t sh_directory_file = {
    .name = "file",
    .open = file_open,
    .user = file_user,
    .channels = file_channels,
    .reload = file_reload,
    .close = file_close,
};
