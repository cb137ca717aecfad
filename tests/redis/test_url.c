/* Redis URL parser: vectors from tests/data/redis_url/urls.txt, plus the
 * cases a text file cannot hold. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "redis/url.h"

#define VECTORS TESTS_DATADIR "/redis_url/urls.txt"
#define PREFIX  "invalid Redis URL: "

/* Parses url and compares with the expectation ("= canonical" or
 * "! reason"); returns NULL or a description of the mismatch (static). */
static const char *check_one(const char *url, const char *expect)
{
    static char why[1024];
    sh_redis_url_t u;
    sh_buf_t err = SH_BUF_INIT, out = SH_BUF_INIT;
    int rc = sh_redis_url_parse(&u, url, &err);
    why[0] = '\0';
    if (expect[0] == '=') {
        if (rc != 0) {
            snprintf(why, sizeof(why), "%s: expected success, got \"%s\"", url, sh_buf_peek(&err));
        } else {
            sh_redis_url_format(&u, &out, true);
            if (strcmp(sh_buf_peek(&out), expect + 2) != 0)
                snprintf(why, sizeof(why), "%s: canonical \"%s\", expected \"%s\"", url,
                         sh_buf_peek(&out), expect + 2);
            /* The canonical form parses back to itself. */
            sh_redis_url_t again;
            sh_buf_t out2 = SH_BUF_INIT;
            if (!why[0] && sh_redis_url_parse(&again, sh_buf_peek(&out), NULL) != 0)
                snprintf(why, sizeof(why), "%s: canonical form does not parse", url);
            if (!why[0]) {
                sh_redis_url_format(&again, &out2, true);
                if (strcmp(sh_buf_peek(&out2), sh_buf_peek(&out)) != 0)
                    snprintf(why, sizeof(why), "%s: canonical form not stable", url);
                sh_redis_url_release(&again);
            }
            sh_buf_release(&out2);
        }
    } else {
        if (rc != -EINVAL) {
            snprintf(why, sizeof(why), "%s: expected -EINVAL, got %d", url, rc);
        } else if (strncmp(sh_buf_peek(&err), PREFIX, strlen(PREFIX)) != 0 ||
                   strcmp(sh_buf_peek(&err) + strlen(PREFIX), expect + 2) != 0) {
            snprintf(why, sizeof(why), "%s: reason \"%s\", expected \"%s\"", url, sh_buf_peek(&err),
                     expect + 2);
        } else if (strstr(sh_buf_peek(&err), "secret")) {
            snprintf(why, sizeof(why), "%s: reason shows the password", url);
        } else if (u.host || u.path || u.user || u.password) {
            snprintf(why, sizeof(why), "%s: fields left set after an error", url);
        }
    }
    if (rc == 0)
        sh_redis_url_release(&u);
    sh_buf_release(&err);
    sh_buf_release(&out);
    return why[0] ? why : NULL;
}

START_TEST(test_vectors)
{
    FILE *f = fopen(VECTORS, "r");
    ck_assert_ptr_nonnull(f);
    char line[4096];
    int n = 0, ok = 0, bad = 0;
    while (fgets(line, sizeof(line), f)) {
        size_t len = strlen(line);
        if (len && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        char *tab = strchr(line, '\t');
        ck_assert_msg(tab && (tab[1] == '=' || tab[1] == '!') && tab[2] == ' ', "bad vector: %s",
                      line);
        *tab = '\0';
        const char *why = check_one(line, tab + 1);
        ck_assert_msg(why == NULL, "%s", why);
        n++;
        if (tab[1] == '=')
            ok++;
        else
            bad++;
    }
    fclose(f);
    ck_assert_int_ge(ok, 20);
    ck_assert_int_ge(bad, 60);
    ck_assert_int_eq(n, ok + bad);
}
END_TEST

START_TEST(test_fields)
{
    sh_redis_url_t u;
    ck_assert_int_eq(sh_redis_url_parse(&u, "redis://al%69ce:p%40ss@[::1]:7000/3", NULL), 0);
    ck_assert_str_eq(u.host, "::1");
    ck_assert_int_eq(u.port, 7000);
    ck_assert_ptr_null(u.path);
    ck_assert_str_eq(u.user, "alice");
    ck_assert_str_eq(u.password, "p@ss");
    ck_assert_int_eq(u.db, 3);
    sh_buf_t b = SH_BUF_INIT;
    sh_redis_url_format(&u, &b, false);
    ck_assert_str_eq(sh_buf_peek(&b), "redis://alice:***@[::1]:7000/3");
    sh_buf_reset(&b);
    sh_redis_url_address(&u, &b);
    ck_assert_str_eq(sh_buf_peek(&b), "[::1]:7000");
    sh_redis_url_release(&u);
    ck_assert_ptr_null(u.host);

    ck_assert_int_eq(sh_redis_url_parse(&u, "unix:///run/r.sock?db=2", NULL), 0);
    ck_assert_ptr_null(u.host);
    ck_assert_int_eq(u.port, 0);
    ck_assert_str_eq(u.path, "/run/r.sock");
    ck_assert_ptr_null(u.user);
    ck_assert_ptr_null(u.password);
    ck_assert_int_eq(u.db, 2);
    sh_buf_reset(&b);
    sh_redis_url_address(&u, &b);
    ck_assert_str_eq(sh_buf_peek(&b), "unix:/run/r.sock");
    sh_redis_url_release(&u);

    ck_assert_int_eq(sh_redis_url_parse(&u, "redis://h", NULL), 0);
    ck_assert_ptr_null(u.password);
    sh_buf_reset(&b);
    sh_redis_url_format(&u, &b, false);
    ck_assert_str_eq(sh_buf_peek(&b), "redis://h:6379/0");
    sh_redis_url_release(&u);
    sh_buf_release(&b);
}
END_TEST

START_TEST(test_edges)
{
    sh_redis_url_t u;
    sh_buf_t err = SH_BUF_INIT;
    ck_assert_int_eq(sh_redis_url_parse(&u, "", &err), -EINVAL);
    ck_assert_str_eq(sh_buf_peek(&err), PREFIX "empty");
    sh_buf_reset(&err);
    ck_assert_int_eq(sh_redis_url_parse(&u, NULL, &err), -EINVAL);
    ck_assert_str_eq(sh_buf_peek(&err), PREFIX "empty");
    sh_buf_reset(&err);
    /* Control bytes (a tab, a newline) cannot sit in the vector file. */
    ck_assert_int_eq(sh_redis_url_parse(&u, "redis://host\t", &err), -EINVAL);
    ck_assert_int_eq(sh_redis_url_parse(&u, "redis://host\n/0", NULL), -EINVAL);
    ck_assert_int_eq(sh_redis_url_parse(&u, "redis://:a\x7f@host", NULL), -EINVAL);
    sh_buf_reset(&err);
    /* The length bound: 2048 bytes pass, 2049 do not. */
    char url[2100];
    memset(url, 'a', sizeof(url));
    memcpy(url, "redis://", 8);
    url[SH_REDIS_URL_MAX] = '\0';
    ck_assert_int_eq(sh_redis_url_parse(&u, url, &err), -EINVAL);
    ck_assert_str_eq(sh_buf_peek(&err), PREFIX "host name too long");
    /* ... its canonical form (port and database written out) too. */
    memcpy(url, "redis://:", 9);
    memcpy(url + SH_REDIS_URL_MAX - 12, "@host:6379/0", 12);
    ck_assert_int_eq(sh_redis_url_parse(&u, url, NULL), 0);
    ck_assert_uint_eq(strlen(u.password), SH_REDIS_URL_MAX - 9 - 12);
    sh_redis_url_release(&u);
    url[SH_REDIS_URL_MAX] = 'a';
    url[SH_REDIS_URL_MAX + 1] = '\0';
    sh_buf_reset(&err);
    ck_assert_int_eq(sh_redis_url_parse(&u, url, &err), -EINVAL);
    ck_assert_str_eq(sh_buf_peek(&err), PREFIX "longer than 2048 bytes");
    memset(url, 'a', sizeof(url));
    memcpy(url, "redis://:", 9);
    memcpy(url + SH_REDIS_URL_MAX - 5, "@host", 5);
    url[SH_REDIS_URL_MAX] = '\0';
    sh_buf_reset(&err);
    ck_assert_int_eq(sh_redis_url_parse(&u, url, &err), -EINVAL);
    ck_assert_str_eq(sh_buf_peek(&err), PREFIX
                     "longer than 2048 bytes with the default port and database written out");
    /* Characters a password may hold raw stay raw in the canonical form:
     * escaped, 1,500 of them would not fit (found by fuzz_redis_url). */
    memset(url, '*', sizeof(url));
    memcpy(url, "redis://:", 9);
    memcpy(url + 9 + 1500, "@host:6379/0", 13);
    ck_assert_int_eq(sh_redis_url_parse(&u, url, NULL), 0);
    sh_buf_t canon = SH_BUF_INIT;
    sh_redis_url_format(&u, &canon, true);
    ck_assert_str_eq(sh_buf_peek(&canon), url);
    sh_buf_release(&canon);
    sh_redis_url_release(&u);
    /* A 253-byte host is the most DNS allows. */
    char host[300] = "redis://";
    memset(host + 8, 'h', 253);
    host[8 + 253] = '\0';
    ck_assert_int_eq(sh_redis_url_parse(&u, host, NULL), 0);
    sh_redis_url_release(&u);
    host[8 + 253] = 'h';
    host[8 + 254] = '\0';
    ck_assert_int_eq(sh_redis_url_parse(&u, host, NULL), -EINVAL);
    /* Releasing twice, or an empty url, is harmless. */
    sh_redis_url_release(&u);
    sh_buf_release(&err);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("redis_url");
    TCase *tc = tcase_create("url");
    tcase_add_test(tc, test_vectors);
    tcase_add_test(tc, test_fields);
    tcase_add_test(tc, test_edges);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
