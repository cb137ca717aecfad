/* test_directory — the claims and file backends, the file parser against
 * the vectors in tests/data/directory (good-*.json with the exact parse
 * in good-*.expected.json; bad-*.json with the expected error in
 * bad-*.err), role rules, lookups and reload.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/directory.h"
#include "core/alloc.h"
#include "core/buf.h"

#define DATA TESTS_DATADIR "/directory"

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    sh_buf_t b = SH_BUF_INIT;
    for (;;) {
        char *w = sh_buf_reserve(&b, 4096);
        size_t n = fread(w, 1, 4096, f);
        if (n == 0)
            break;
        sh_buf_commit(&b, n);
    }
    fclose(f);
    return sh_buf_steal(&b, len);
}

static void write_all(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_ge(fputs(text, f), 0);
    ck_assert_int_eq(fclose(f), 0);
}

/* Names in DATA starting with prefix and ending with ".json" (not
 * ".expected.json"), sorted. */
static size_t list_vectors(const char *prefix, char ***out)
{
    DIR *d = opendir(DATA);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    char **v = NULL;
    size_t n = 0;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || len < 5 ||
            strcmp(e->d_name + len - 5, ".json") != 0 ||
            (len > 14 && strcmp(e->d_name + len - 14, ".expected.json") == 0))
            continue;
        v = sh_realloc(v, (n + 1) * sizeof(*v));
        v[n++] = sh_strdup(e->d_name);
    }
    closedir(d);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(v[j - 1], v[j]) > 0; j--) {
            char *t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    *out = v;
    return n;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* ---- the parser */

START_TEST(test_parse_good_vectors)
{
    char **names;
    size_t n = list_vectors("good", &names);
    ck_assert_uint_ge(n, 3);
    for (size_t i = 0; i < n; i++) {
        char path[512], want_path[512];
        snprintf(path, sizeof(path), DATA "/%s", names[i]);
        snprintf(want_path, sizeof(want_path), DATA "/%.*s.expected.json",
                 (int)(strlen(names[i]) - 5), names[i]);
        size_t len;
        char *text = read_all(path, &len);
        sh_buf_t err = SH_BUF_INIT;
        json_t *got = sh_directory_file_parse(text, len, &err);
        ck_assert_msg(got != NULL, "%s: %s", names[i], sh_buf_peek(&err));
        json_error_t jerr;
        json_t *want = json_load_file(want_path, 0, &jerr);
        ck_assert_msg(want != NULL, "%s: %s", want_path, jerr.text);
        char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
        ck_assert_msg(json_equal(got, want), "%s: got %s", names[i], g);
        free(g);
        json_decref(got);
        json_decref(want);
        sh_buf_release(&err);
        free(text);
    }
    free_list(names, n);
}
END_TEST

START_TEST(test_parse_bad_vectors)
{
    char **names;
    size_t n = list_vectors("bad-", &names);
    ck_assert_uint_ge(n, 30);
    for (size_t i = 0; i < n; i++) {
        char path[512], err_path[512];
        snprintf(path, sizeof(path), DATA "/%s", names[i]);
        snprintf(err_path, sizeof(err_path), DATA "/%.*s.err", (int)(strlen(names[i]) - 5),
                 names[i]);
        size_t len, wlen;
        char *text = read_all(path, &len);
        char *want = read_all(err_path, &wlen);
        while (wlen > 0 && want[wlen - 1] == '\n')
            want[--wlen] = '\0';
        ck_assert_uint_gt(wlen, 0);
        sh_buf_t err = SH_BUF_INIT;
        json_t *got = sh_directory_file_parse(text, len, &err);
        ck_assert_msg(got == NULL, "%s: parsed", names[i]);
        ck_assert_msg(strstr(sh_buf_peek(&err), want), "%s: error '%s', want '%s'", names[i],
                      sh_buf_peek(&err), want);
        ck_assert_ptr_null(strchr(sh_buf_peek(&err), '\n'));
        sh_buf_release(&err);
        free(text);
        free(want);
    }
    free_list(names, n);
}
END_TEST

START_TEST(test_parse_size_limit)
{
    /* The size is checked before a byte is read. */
    char *big = sh_calloc(SH_DIRECTORY_MAX_FILE + 1, 1);
    sh_buf_t err = SH_BUF_INIT;
    ck_assert_ptr_null(sh_directory_file_parse(big, SH_DIRECTORY_MAX_FILE + 1, &err));
    ck_assert_str_eq(sh_buf_peek(&err), "16777217 bytes: larger than the 16 MiB limit");
    sh_buf_reset(&err);
    /* At the limit it parses (spaces are JSON whitespace). */
    const char *doc = "{\"users\":[{\"id\":\"u1\"}]}";
    memset(big, ' ', SH_DIRECTORY_MAX_FILE);
    memcpy(big, doc, strlen(doc));
    json_t *out = sh_directory_file_parse(big, SH_DIRECTORY_MAX_FILE, &err);
    ck_assert_msg(out != NULL, "%s", sh_buf_peek(&err));
    json_decref(out);
    /* Not NUL-terminated: only len bytes count. */
    out = sh_directory_file_parse("{\"users\":[]}garbage", 12, &err);
    ck_assert_ptr_nonnull(out);
    json_decref(out);
    sh_buf_release(&err);
    free(big);
}
END_TEST

/* ---- claims backend */

static json_t *claims_of(const char *json)
{
    json_error_t e;
    json_t *c = json_loads(json, 0, &e);
    ck_assert_msg(c != NULL, "%s", e.text);
    return c;
}

/* Looks claims up in dir; checks rc, reason (failure) or the user JSON
 * and channels JSON (success, exact). */
static void expect_lookup(const sh_directory_t *dir, const char *claims_json, int want_rc,
                          const char *want)
{
    json_t *claims = claims_of(claims_json);
    json_t *user = (json_t *)1, *channels = (json_t *)1;
    const char *reason = NULL;
    int rc = sh_directory_lookup(dir, claims, &user, &channels, &reason);
    ck_assert_msg(rc == want_rc, "%s: rc %d (%s)", claims_json, rc, reason ? reason : "");
    if (rc == 0) {
        json_t *both = json_pack("{s:o,s:o}", "user", user, "channels", channels);
        json_t *w = claims_of(want);
        char *g = json_dumps(both, JSON_SORT_KEYS | JSON_COMPACT);
        ck_assert_msg(json_equal(both, w), "%s: got %s", claims_json, g);
        free(g);
        json_decref(w);
        json_decref(both);
    } else {
        ck_assert_ptr_eq(user, (json_t *)1);
        ck_assert_ptr_eq(channels, (json_t *)1);
        ck_assert_msg(reason && strcmp(reason, want) == 0, "%s: reason '%s'", claims_json,
                      reason ? reason : "(null)");
    }
    json_decref(claims);
}

START_TEST(test_claims_backend)
{
    sh_buf_t err = SH_BUF_INIT;
    sh_directory_t *dir = sh_directory_new("claims", &err);
    ck_assert_ptr_nonnull(dir);
    ck_assert_str_eq(sh_directory_name(dir), "claims");

    expect_lookup(dir, "{\"id\":\"u1\",\"exp\":1,\"jti\":\"j\"}", 0,
                  "{\"user\":{\"id\":\"u1\",\"name\":\"u1\",\"email\":\"\",\"role\":\"user\"},"
                  "\"channels\":[]}");
    expect_lookup(dir,
                  "{\"id\":\"u1\",\"name\":\"Ann\",\"email\":\"a@x\",\"role\":\"admin\","
                  "\"profile_image_url\":\"/p.png\",\"channels\":[\"c1\",5,\"\",null,\"c2\"]}",
                  0,
                  "{\"user\":{\"id\":\"u1\",\"name\":\"Ann\",\"email\":\"a@x\",\"role\":\"admin\","
                  "\"profile_image_url\":\"/p.png\"},\"channels\":[\"c1\",\"c2\"]}");
    /* Wrong types fall back to the defaults; "channels" not an array is
     * no channels. */
    expect_lookup(dir,
                  "{\"id\":\"u1\",\"name\":7,\"email\":null,\"profile_image_url\":1,"
                  "\"channels\":\"c1\"}",
                  0,
                  "{\"user\":{\"id\":\"u1\",\"name\":\"u1\",\"email\":\"\",\"role\":\"user\"},"
                  "\"channels\":[]}");
    expect_lookup(dir, "{\"id\":\"u1\",\"name\":\"\"}", 0,
                  "{\"user\":{\"id\":\"u1\",\"name\":\"u1\",\"email\":\"\",\"role\":\"user\"},"
                  "\"channels\":[]}");
    expect_lookup(dir, "{\"id\":\"p\",\"role\":\"pending\"}", -EACCES, "user is pending");
    expect_lookup(dir, "{\"id\":\"p\",\"role\":\"guest\"}", -EACCES, "role is not user or admin");
    expect_lookup(dir, "{\"id\":\"p\",\"role\":\"Admin\"}", -EACCES, "role is not user or admin");
    expect_lookup(dir, "{\"id\":\"p\",\"role\":1}", -EACCES, "role is not user or admin");
    expect_lookup(dir, "{\"id\":\"p\",\"role\":null}", -EACCES, "role is not user or admin");
    expect_lookup(dir, "{\"sub\":\"u1\"}", -EINVAL, "claims have no string id");
    expect_lookup(dir, "{\"id\":42}", -EINVAL, "claims have no string id");
    expect_lookup(dir, "{\"id\":\"\"}", -EINVAL, "claims have no string id");

    /* Channel ids longer than 256 bytes are dropped. */
    char long_id[300];
    memset(long_id, 'c', 257);
    long_id[257] = '\0';
    json_t *claims = json_pack("{s:s,s:[s,s]}", "id", "u1", "channels", long_id, "ok");
    json_t *user, *channels;
    const char *reason;
    ck_assert_int_eq(sh_directory_lookup(dir, claims, &user, &channels, &reason), 0);
    ck_assert_int_eq(json_array_size(channels), 1);
    ck_assert_str_eq(json_string_value(json_array_get(channels, 0)), "ok");
    json_decref(user);
    json_decref(channels);
    /* channels may be NULL */
    ck_assert_int_eq(sh_directory_lookup(dir, claims, &user, NULL, &reason), 0);
    json_decref(user);
    json_decref(claims);

    ck_assert_int_eq(sh_directory_reload(dir, &err), 0);
    sh_directory_free(dir);
    sh_directory_free(NULL);
    sh_buf_release(&err);
}
END_TEST

START_TEST(test_new_errors)
{
    static const struct {
        const char *spec, *want;
    } cases[] = {
        {"claim", "directory must be 'claims' or 'file:PATH'"},
        {"", "directory must be 'claims' or 'file:PATH'"},
        {"file:", "directory must be 'claims' or 'file:PATH'"},
        {"file:/nonexistent/users.json",
         "/nonexistent/users.json: cannot read: No such file or directory"},
        {"file:" DATA "/bad-user-duplicate.json", "bad-user-duplicate.json: users[3]: duplicate "
                                                  "id 'u1'"},
        {"file:" DATA "/bad-syntax.json", "bad-syntax.json: line 1, column"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sh_buf_t err = SH_BUF_INIT;
        ck_assert_ptr_null(sh_directory_new(cases[i].spec, &err));
        ck_assert_msg(strstr(sh_buf_peek(&err), cases[i].want), "%s: '%s'", cases[i].spec,
                      sh_buf_peek(&err));
        sh_buf_release(&err);
    }
    sh_buf_t err = SH_BUF_INIT;
    ck_assert_ptr_null(sh_directory_new(NULL, &err));
    sh_buf_release(&err);
}
END_TEST

/* ---- file backend */

START_TEST(test_file_lookups)
{
    sh_buf_t err = SH_BUF_INIT;
    sh_directory_t *dir = sh_directory_new("file:" DATA "/good.json", &err);
    ck_assert_msg(dir != NULL, "%s", sh_buf_peek(&err));
    ck_assert_str_eq(sh_directory_name(dir), "file");

    expect_lookup(dir, "{\"id\":\"u1\",\"name\":\"ignored\",\"role\":\"admin\"}", 0,
                  "{\"user\":{\"id\":\"u1\",\"name\":\"Ann Lee\",\"email\":\"ann@example.org\","
                  "\"role\":\"user\",\"profile_image_url\":\"/user.png\"},"
                  "\"channels\":[\"c1\",\"c2\",\"c3\"]}");
    expect_lookup(dir, "{\"id\":\"u2\"}", 0,
                  "{\"user\":{\"id\":\"u2\",\"name\":\"u2\",\"email\":\"\",\"role\":\"user\"},"
                  "\"channels\":[\"c1\"]}");
    expect_lookup(dir, "{\"id\":\"admin1\"}", 0,
                  "{\"user\":{\"id\":\"admin1\",\"name\":\"Zo\\u00eb \\u00d8deg\\u00e5rd\","
                  "\"role\":\"admin\",\"email\":\"zoe@example.org\",\"info\":{\"team\":\"ops\"}},"
                  "\"channels\":[\"c1\"]}");
    /* A token's integer id arrives as a string. */
    expect_lookup(dir, "{\"id\":\"42\"}", 0,
                  "{\"user\":{\"id\":\"42\",\"name\":\"42\",\"email\":\"\",\"role\":\"user\"},"
                  "\"channels\":[\"c2\"]}");
    expect_lookup(dir, "{\"id\":\"p1\"}", -EACCES, "user is pending");
    expect_lookup(dir, "{\"id\":\"odd\"}", -EACCES, "role is not user or admin");
    expect_lookup(dir, "{\"id\":\"ghost\"}", -ENOENT, "unknown user");
    expect_lookup(dir, "{\"id\":\"U1\"}", -ENOENT, "unknown user");

    /* Lookups hand out copies. */
    json_t *claims = claims_of("{\"id\":\"u1\"}");
    json_t *user, *channels;
    const char *reason;
    ck_assert_int_eq(sh_directory_lookup(dir, claims, &user, &channels, &reason), 0);
    json_object_set_new(user, "last_seen_at", json_integer(1));
    json_object_set_new(user, "name", json_string("changed"));
    json_array_clear(channels);
    json_decref(user);
    json_decref(channels);
    ck_assert_int_eq(sh_directory_lookup(dir, claims, &user, &channels, &reason), 0);
    ck_assert_ptr_null(json_object_get(user, "last_seen_at"));
    ck_assert_str_eq(json_string_value(json_object_get(user, "name")), "Ann Lee");
    ck_assert_int_eq(json_array_size(channels), 3);
    json_decref(user);
    json_decref(channels);
    json_decref(claims);

    sh_directory_free(dir);
    sh_buf_release(&err);
}
END_TEST

START_TEST(test_file_reload)
{
    char path[] = "/tmp/sh-test-directory-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    write_all(path, "{\"users\":[{\"id\":\"u1\",\"name\":\"Old\"}],"
                    "\"channels\":[{\"id\":\"c1\",\"members\":[\"u1\"]}]}");
    char spec[64];
    snprintf(spec, sizeof(spec), "file:%s", path);
    sh_buf_t err = SH_BUF_INIT;
    sh_directory_t *dir = sh_directory_new(spec, &err);
    ck_assert_msg(dir != NULL, "%s", sh_buf_peek(&err));
    const char *old_u1 = "{\"user\":{\"id\":\"u1\",\"name\":\"Old\",\"email\":\"\",\"role\":"
                         "\"user\"},\"channels\":[\"c1\"]}";
    expect_lookup(dir, "{\"id\":\"u1\"}", 0, old_u1);

    /* good -> bad: the old data stays, the error names file and place */
    write_all(path, "{\"users\":[{\"id\":\"u1\"},{\"id\":\"u2\",]}");
    ck_assert_int_lt(sh_directory_reload(dir, &err), 0);
    ck_assert_ptr_nonnull(strstr(sh_buf_peek(&err), path));
    ck_assert_ptr_nonnull(strstr(sh_buf_peek(&err), "line 1, column"));
    expect_lookup(dir, "{\"id\":\"u1\"}", 0, old_u1);
    expect_lookup(dir, "{\"id\":\"u2\"}", -ENOENT, "unknown user");
    sh_buf_reset(&err);

    /* a semantic error keeps the old data too */
    write_all(path, "{\"users\":[{\"id\":\"u1\"},{\"id\":\"u1\"}]}");
    ck_assert_int_lt(sh_directory_reload(dir, &err), 0);
    ck_assert_ptr_nonnull(strstr(sh_buf_peek(&err), "users[1]: duplicate id 'u1'"));
    expect_lookup(dir, "{\"id\":\"u1\"}", 0, old_u1);
    sh_buf_reset(&err);

    /* a file that went away */
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_lt(sh_directory_reload(dir, &err), 0);
    ck_assert_ptr_nonnull(strstr(sh_buf_peek(&err), "cannot read"));
    expect_lookup(dir, "{\"id\":\"u1\"}", 0, old_u1);
    sh_buf_reset(&err);

    /* bad -> good: the new data, whole */
    write_all(path, "{\"users\":[{\"id\":\"u2\",\"role\":\"admin\"},"
                    "{\"id\":\"u1\",\"role\":\"pending\"}],"
                    "\"channels\":[{\"id\":\"c9\",\"members\":[\"u2\"]}]}");
    ck_assert_int_eq(sh_directory_reload(dir, &err), 0);
    ck_assert_uint_eq(sh_buf_avail(&err), 0);
    expect_lookup(dir, "{\"id\":\"u1\"}", -EACCES, "user is pending");
    expect_lookup(dir, "{\"id\":\"u2\"}", 0,
                  "{\"user\":{\"id\":\"u2\",\"name\":\"u2\",\"email\":\"\",\"role\":\"admin\"},"
                  "\"channels\":[\"c9\"]}");

    /* over 16 MiB on disk: refused unread, old data kept */
    FILE *f = fopen(path, "r+");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(ftruncate(fileno(f), SH_DIRECTORY_MAX_FILE + 1), 0);
    fclose(f);
    ck_assert_int_lt(sh_directory_reload(dir, &err), 0);
    ck_assert_ptr_nonnull(strstr(sh_buf_peek(&err), "16777217 bytes: larger than the 16 MiB"));
    expect_lookup(dir, "{\"id\":\"u1\"}", -EACCES, "user is pending");

    sh_directory_free(dir);
    unlink(path);
    sh_buf_release(&err);
}
END_TEST

static Suite *directory_suite(void)
{
    Suite *s = suite_create("directory");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_parse_good_vectors);
    tcase_add_test(tc, test_parse_bad_vectors);
    tcase_add_test(tc, test_parse_size_limit);
    suite_add_tcase(s, tc);
    tc = tcase_create("backends");
    tcase_add_test(tc, test_claims_backend);
    tcase_add_test(tc, test_new_errors);
    tcase_add_test(tc, test_file_lookups);
    tcase_add_test(tc, test_file_reload);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(directory_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
