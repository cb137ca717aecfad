/* siohub-bench's HS256 tokens (src/bench/jwt.c): the well-known jwt.io
 * example token comes out byte for byte, and the tokens it mints for users
 * pass siohubd's own verifier (src/auth/token.c, on libjwt) with their
 * claims, and fail it with another secret, a changed byte or an expiry in
 * the past. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "auth/token.h"
#include "bench/jwt.h"

START_TEST(test_known_token)
{
    char *t = sb_jwt_hs256("your-256-bit-secret",
                           "{\"sub\":\"1234567890\",\"name\":\"John Doe\",\"iat\":1516239022}");
    ck_assert_str_eq(t,
                     "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
                     "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
                     "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c");
    free(t);
}
END_TEST

static sh_token_verifier_t *verifier(const char *secret)
{
    sh_token_options_t o = {.alg = SH_CONFIG_JWT_HS256, .secret = secret};
    sh_buf_t err = SH_BUF_INIT;
    sh_token_verifier_t *v = sh_token_verifier_new(&o, &err);
    ck_assert_ptr_nonnull(v);
    sh_buf_release(&err);
    return v;
}

START_TEST(test_user_tokens_pass_the_daemon)
{
    static const char *const channels[] = {"bench-c1", "bench-c2"};
    char *t = sb_jwt_user("s3cr3t", "bench-7", NULL, channels, 2, 3600);
    sh_token_verifier_t *v = verifier("s3cr3t");
    json_t *claims = NULL;
    const char *reason = NULL;
    ck_assert_int_eq(sh_token_verify(v, t, (int64_t)time(NULL), &claims, &reason), 0);
    ck_assert_str_eq(json_string_value(json_object_get(claims, "id")), "bench-7");
    ck_assert_str_eq(json_string_value(json_object_get(claims, "name")), "bench-7");
    ck_assert_str_eq(json_string_value(json_object_get(claims, "role")), "user");
    json_t *ch = json_object_get(claims, "channels");
    ck_assert_uint_eq(json_array_size(ch), 2);
    ck_assert_str_eq(json_string_value(json_array_get(ch, 1)), "bench-c2");
    json_int_t exp = json_integer_value(json_object_get(claims, "exp"));
    ck_assert(exp >= (json_int_t)time(NULL) + 3500 && exp <= (json_int_t)time(NULL) + 3600);
    json_decref(claims);

    /* Another secret, one changed byte of the signature, an expiry past. */
    sh_token_verifier_t *other = verifier("another");
    ck_assert_int_eq(sh_token_verify(other, t, (int64_t)time(NULL), &claims, &reason), -EACCES);
    sh_token_verifier_free(other);
    size_t n = strlen(t);
    t[n - 2] = t[n - 2] == 'A' ? 'B' : 'A';
    ck_assert_int_lt(sh_token_verify(v, t, (int64_t)time(NULL), &claims, &reason), 0);
    free(t);
    t = sb_jwt_user("s3cr3t", "bench-8", "Eight", NULL, 0, -60);
    ck_assert_int_eq(sh_token_verify(v, t, (int64_t)time(NULL), &claims, &reason), -EACCES);
    free(t);
    sh_token_verifier_free(v);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bench_jwt");
    TCase *tc = tcase_create("jwt");
    tcase_add_test(tc, test_known_token);
    tcase_add_test(tc, test_user_tokens_pass_the_daemon);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
