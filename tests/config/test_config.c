/* test_config — the settings table, every value type, the file parser
 * (vectors in tests/data/config/: bad-NAME.conf with the exact error in
 * bad-NAME.err), the environment, the command line, precedence, and the
 * shipped etc/siohub.conf and doc/siohubd.8 against the table. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* autoconf's, for PACKAGE_VERSION (see src/config/config.c). */
#include <config.h>

#include "config/config.h"
#include "core/alloc.h"
#include "core/buf.h"

#define DATA_DIR TESTS_DATADIR "/config"
#define ETC_FILE TESTS_DATADIR "/../../etc/siohub.conf"
#define MAN_FILE TESTS_DATADIR "/../../doc/siohubd.8"

/* ---- helpers */

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s: %s", path, strerror(errno));
    sh_buf_t b = SH_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        sh_buf_append(&b, chunk, n);
    fclose(f);
    return sh_buf_steal(&b, len);
}

/* Parses tests/data/config/NAME with NAME as the file's name in messages. */
static int parse_vector(sh_config_t *cfg, const char *name, sh_buf_t *err)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", DATA_DIR, name);
    size_t len;
    char *text = read_all(path, &len);
    int rc = sh_config_parse_text(cfg, name, text, len, err);
    free(text);
    return rc;
}

/* sh_config_set on a fresh buffer; the error text stays in err. */
static int set(sh_config_t *cfg, const char *key, const char *value, sh_buf_t *err)
{
    sh_buf_reset(err);
    return sh_config_set(cfg, key, value, err);
}

static int parse_str(sh_config_t *cfg, const char *text, sh_buf_t *err)
{
    sh_buf_reset(err);
    return sh_config_parse_text(cfg, "t.conf", text, strlen(text), err);
}

static int load(sh_config_t *cfg, char **argv, char **envp, sh_config_cmd_t *cmd, sh_buf_t *err)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    sh_buf_reset(err);
    return sh_config_load_default(cfg, NULL, argc, argv, envp, cmd, err);
}

static sh_config_t fresh(void)
{
    sh_config_t cfg;
    sh_config_init(&cfg);
    return cfg;
}

/* ---- the table */

START_TEST(test_table_is_sane)
{
    size_t n;
    const sh_config_option_t *o = sh_config_options(&n);
    ck_assert_uint_ge(n, 30);
    sh_buf_t err = SH_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(o[i].key && o[i].help && o[i].group && o[i].def, "entry %zu", i);
        /* --help indents it by 6 and stays within 80 columns. */
        ck_assert_msg(strlen(o[i].help) <= 72, "help of %s is too long", o[i].key);
        for (const char *k = o[i].key; *k; k++)
            ck_assert_msg((*k >= 'a' && *k <= 'z') || *k == '_', "key %s", o[i].key);
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(o[i].key, o[j].key);
        ck_assert_ptr_eq(sh_config_find(o[i].key), &o[i]);
        /* Every default parses (sh_config_init relies on it). */
        sh_config_t cfg = fresh();
        ck_assert_msg(set(&cfg, o[i].key, o[i].def, &err) == 0, "%s: %s", o[i].key,
                      sh_buf_peek(&err));
        sh_config_release(&cfg);
        /* Secrets are strings, which never echo a rejected value. */
        if (o[i].flags & SH_CONFIG_SECRET)
            ck_assert_int_eq(o[i].type, SH_CONFIG_STRING);
        if (o[i].type == SH_CONFIG_ENUM)
            ck_assert_ptr_nonnull(o[i].names);
        if (o[i].type == SH_CONFIG_INT || o[i].type == SH_CONFIG_DURATION ||
            o[i].type == SH_CONFIG_SIZE)
            ck_assert_int_le(o[i].min, o[i].max);
        if (o[i].type == SH_CONFIG_SIZE)
            ck_assert_int_ge(o[i].min, 0);
        if (o[i].env_scale)
            ck_assert(o[i].env && o[i].type == SH_CONFIG_DURATION);
        if (o[i].env_alt)
            ck_assert_ptr_nonnull(o[i].env);
        /* Groups are contiguous, so --help and the docs print each once. */
        if (i > 0 && strcmp(o[i].group, o[i - 1].group) != 0)
            for (size_t j = 0; j + 1 < i; j++)
                ck_assert_str_ne(o[j].group, o[i].group);
    }
    ck_assert_ptr_eq(sh_config_find("ping-interval"), sh_config_find("ping_interval"));
    ck_assert_ptr_eq(sh_config_find("PING_Interval"), sh_config_find("ping_interval"));
    ck_assert_ptr_null(sh_config_find("pingintervall"));
    ck_assert_ptr_null(sh_config_find(""));
    sh_buf_release(&err);
}
END_TEST

START_TEST(test_defaults)
{
    sh_config_t cfg = fresh();
    ck_assert_int_eq(cfg.app, SH_CONFIG_APP_OPENWEBUI);
    ck_assert_str_eq(cfg.listen.host, "127.0.0.1");
    ck_assert_int_eq(cfg.listen.port, 8090);
    ck_assert_str_eq(cfg.path, "");
    ck_assert_str_eq(sh_config_path(&cfg), "/ws/socket.io/");
    ck_assert_uint_eq(cfg.transports, SH_CONFIG_TRANSPORT_POLLING | SH_CONFIG_TRANSPORT_WEBSOCKET);
    ck_assert(cfg.cors_allow_origin.any);
    ck_assert_uint_eq(cfg.cors_allow_origin.n, 0);
    ck_assert_int_eq(cfg.log_level, SH_LOG_INFO);
    ck_assert_int_eq(cfg.ping_interval_ms, 25000);
    ck_assert_int_eq(cfg.ping_timeout_ms, 20000);
    ck_assert_int_eq(cfg.connect_timeout_ms, 45000);
    ck_assert_int_eq(cfg.upgrade_timeout_ms, 10000);
    ck_assert_uint_eq(cfg.max_payload, 1000000);
    ck_assert_uint_eq(cfg.output_queue_limit, 4 * 1024 * 1024);
    ck_assert_int_eq(cfg.max_connections, 10000);
    ck_assert_int_eq(cfg.http_timeout_ms, 60000);
    ck_assert_uint_eq(cfg.api_body_limit, 1024 * 1024);
    ck_assert_str_eq(cfg.secret, "");
    ck_assert_int_eq(cfg.jwt_algorithm, SH_CONFIG_JWT_HS256);
    ck_assert_str_eq(cfg.jwt_public_key, "");
    ck_assert_int_eq(cfg.jwt_leeway_ms, 30000);
    ck_assert_str_eq(cfg.directory, "claims");
    ck_assert_ptr_null(sh_config_directory_file(&cfg));
    ck_assert_str_eq(cfg.api_key, "");
    ck_assert(cfg.presence);
    ck_assert_int_eq(cfg.presence_window_ms, 250);
    ck_assert_int_eq(cfg.event_caller_timeout_ms, 0);
    ck_assert_int_eq(cfg.usage_cleanup_interval_ms, 3000);
    ck_assert_int_eq(cfg.usage_timeout_ms, 3000);
    ck_assert_int_eq(cfg.session_reap_age_ms, 120000);
    ck_assert_str_eq(cfg.websocket_manager, "");
    ck_assert(!sh_config_redis(&cfg));
    ck_assert_str_eq(cfg.redis_url, "");
    ck_assert_str_eq(cfg.redis_key_prefix, "open-webui");
    ck_assert_ptr_null(cfg.source_path);
    sh_buf_t err = SH_BUF_INIT;
    ck_assert_int_eq(sh_config_validate(&cfg, &err), 0);
    ck_assert_str_eq(sh_buf_peek(&err), "");
    sh_config_release(&cfg);
    sh_config_release(&cfg); /* twice is fine */
    sh_buf_release(&err);
}
END_TEST

/* ---- value types, through sh_config_set */

START_TEST(test_type_bool)
{
    static const struct {
        const char *v;
        int want;
    } cases[] = {
        {"true", 1}, {"TRUE", 1}, {"yes", 1}, {"On", 1}, {"1", 1},      {"false", 0}, {"no", 0},
        {"OFF", 0},  {"0", 0},    {"", -1},   {"2", -1}, {"maybe", -1}, {"t", -1},    {" true", -1},
    };
    sh_config_t cfg = fresh();
    sh_buf_t err = SH_BUF_INIT;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cfg.presence = !cases[i].want;
        int rc = set(&cfg, "presence", cases[i].v, &err);
        if (cases[i].want < 0) {
            ck_assert_msg(rc == -EINVAL, "'%s'", cases[i].v);
            ck_assert(cfg.presence == !cases[i].want); /* untouched */
        } else {
            ck_assert_msg(rc == 0, "'%s': %s", cases[i].v, sh_buf_peek(&err));
            ck_assert_int_eq(cfg.presence, cases[i].want);
        }
    }
    set(&cfg, "presence", "maybe", &err);
    ck_assert_str_eq(sh_buf_peek(&err),
                     "presence: 'maybe' is not a boolean (true/false, yes/no, on/off, 1/0)");
    sh_config_release(&cfg);
    sh_buf_release(&err);
}
END_TEST

START_TEST(test_type_duration)
{
    static const struct {
        const char *v;
        int64_t want; /* -1: rejected */
    } cases[] = {
        {"250", 250},
        {"250ms", 250},
        {"25s", 25000},
        {"25 s", 25000},
        {"1m", 60000},
        {"1h", 3600000},
        {"0", 0},
        {"86400000", 86400000},
        {"24h", 86400000},
        {"86400001", -1},
        {"25h", -1},
        {"", -1},
        {"s", -1},
        {"-5", -1},
        {"+5", -1},
        {"1.5s", -1},
        {"10x", -1},
        {"1d", -1},
        {"25S", -1},
        {"5 ms x", -1},
        {"99999999999999999999", -1},
        {"9999999999999999h", -1},
    };
    sh_config_t cfg = fresh();
    sh_buf_t err = SH_BUF_INIT;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cfg.jwt_leeway_ms = 777;
        int rc = set(&cfg, "jwt_leeway", cases[i].v, &err);
        if (cases[i].want < 0) {
            ck_assert_msg(rc < 0, "'%s' accepted", cases[i].v);
            ck_assert_int_eq(cfg.jwt_leeway_ms, 777);
        } else {
            ck_assert_msg(rc == 0, "'%s': %s", cases[i].v, sh_buf_peek(&err));
            ck_assert_int_eq(cfg.jwt_leeway_ms, cases[i].want);
        }
    }
    set(&cfg, "ping-interval", "abc", &err);
    ck_assert_str_eq(sh_buf_peek(&err), "ping_interval: 'abc' is not a duration (milliseconds, "
                                        "or with a unit: 250ms, 25s, 1m, 1h)");
    ck_assert_int_eq(set(&cfg, "ping_interval", "0", &err), -ERANGE);
    ck_assert_str_eq(sh_buf_peek(&err), "ping_interval: '0' is out of range (1ms..1d)");
    set(&cfg, "event_caller_timeout", "8d", &err);
    ck_assert_str_eq(sh_buf_peek(&err),
                     "event_caller_timeout: '8d' is not a duration (milliseconds, "
                     "or with a unit: 250ms, 25s, 1m, 1h)");
    set(&cfg, "event_caller_timeout", "169h", &err);
    ck_assert_str_eq(sh_buf_peek(&err), "event_caller_timeout: '169h' is out of range (0ms..7d)");
    sh_config_release(&cfg);
    sh_buf_release(&err);
}
END_TEST

START_TEST(test_type_size)
{
    static const struct {
        const char *v;
        int64_t want;
    } cases[] = {
        {"1000", 1000},
        {"64k", 65536},
        {"64K", 65536},
        {"4M", 4194304},
        {"4m", 4194304},
        {"1G", 1073741824},
        {"1 g", 1073741824},
        {"64G", 68719476736},
        {"65G", -1},
        {"0", -1},
        {"", -1},
        {"1T", -1},
        {"1kB", -1},
        {"1KiB", -1},
        {"-1", -1},
        {"k", -1},
        {"0x10", -1},
        {"18446744073709551615", -1},
        {"18446744073709551616", -1},
        {"17179869184G", -1},
    };
    sh_config_t cfg = fresh();
    sh_buf_t err = SH_BUF_INIT;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cfg.output_queue_limit = 777;
        int rc = set(&cfg, "output_queue_limit", cases[i].v, &err);
        if (cases[i].want < 0) {
            ck_assert_msg(rc < 0, "'%s' accepted", cases[i].v);
            ck_assert_uint_eq(cfg.output_queue_limit, 777);
        } else {
            ck_assert_msg(rc == 0, "'%s': %s", cases[i].v, sh_buf_peek(&err));
            ck_assert_uint_eq(cfg.output_queue_limit, (uint64_t)cases[i].want);
        }
    }
    set(&cfg, "max_payload", "2G", &err);
    ck_assert_str_eq(sh_buf_peek(&err), "max_payload: '2G' is out of range (1..1G)");
    set(&cfg, "api_body_limit", "1.5M", &err);
    ck_assert_str_eq(sh_buf_peek(&err), "api_body_limit: '1.5M' is not a size (bytes, or with a "
                                        "unit: 64k, 4M, 1G)");
    sh_config_release(&cfg);
    sh_buf_release(&err);
}
END_TEST

START_TEST(test_type_int)
{
    static const struct {
        const char *v;
        int64_t want;
    } cases[] = {
        {"1", 1},   {"+5", 5},       {"1000000", 1000000},
        {"007", 7}, {"1000001", -1}, {"0", -1},
        {"-1", -1}, {"1e3", -1},     {"0x10", -1},
        {" 5", -1}, {"5 ", -1},      {"5k", -1},
        {"", -1},   {"-", -1},       {"99999999999999999999", -1},
    };
    sh_config_t cfg = fresh();
    sh_buf_t err = SH_BUF_INIT;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cfg.max_connections = 777;
        int rc = set(&cfg, "max_connections", cases[i].v, &err);
        if (cases[i].want < 0) {
            ck_assert_msg(rc < 0, "'%s' accepted", cases[i].v);
            ck_assert_int_eq(cfg.max_connections, 777);
        } else {
            ck_assert_msg(rc == 0, "'%s': %s", cases[i].v, sh_buf_peek(&err));
            ck_assert_int_eq(cfg.max_connections, cases[i].want);
        }
    }
    set(&cfg, "max_connections", "lots", &err);
    ck_assert_str_eq(sh_buf_peek(&err), "max_connections: 'lots' is not a number");
    set(&cfg, "max_connections", "-1", &err);
    ck_assert_str_eq(sh_buf_peek(&err), "max_connections: '-1' is out of range (1..1000000)");
    sh_config_release(&cfg);
    sh_buf_release(&err);
}
END_TEST

START_TEST(test_type_enum)
{
    sh_config_t cfg = fresh();
    sh_buf_t err = SH_BUF_INIT;
    ck_assert_int_eq(set(&cfg, "app", "ECHO", &err), 0);
    ck_assert_int_eq(cfg.app, SH_CONFIG_APP_ECHO);
    ck_assert_str_eq(sh_config_path(&cfg), "/socket.io/");
    ck_assert_int_eq(set(&cfg, "log_level", "warn", &err), 0);
    ck_assert_int_eq(cfg.log_level, SH_LOG_WARN);
    ck_assert_int_eq(set(&cfg, "log_level", "debug", &err), 0);
    ck_assert_int_eq(cfg.log_level, SH_LOG_DEBUG);
    ck_assert_int_eq(set(&cfg, "log_level", "error", &err), 0);
    ck_assert_int_eq(cfg.log_level, SH_LOG_ERROR);
    ck_assert_int_eq(set(&cfg, "jwt_algorithm", "es256", &err), 0);
    ck_assert_int_eq(cfg.jwt_algorithm, SH_CONFIG_JWT_ES256);
    ck_assert_int_eq(set(&cfg, "jwt_algorithm", "RS256", &err), 0);
    ck_assert_int_eq(cfg.jwt_algorithm, SH_CONFIG_JWT_RS256);
    ck_assert_int_eq(set(&cfg, "log_level", "warning", &err), -EINVAL);
    ck_assert_str_eq(sh_buf_peek(&err),
                     "log_level: 'warning' is not one of: debug, info, warn, error");
    ck_assert_int_eq(cfg.log_level, SH_LOG_ERROR);
    ck_assert_int_eq(set(&cfg, "jwt_algorithm", "none", &err), -EINVAL);
    ck_assert_str_eq(sh_buf_peek(&err), "jwt_algorithm: 'none' is not one of: HS256, RS256, ES256");
    ck_assert_int_eq(set(&cfg, "app", "", &err), -EINVAL);
    sh_config_release(&cfg);
    sh_buf_release(&err);
}
END_TEST

START_TEST(test_type_listen)
{
    static const struct {
        const char *v;
        const char *host; /* NULL: rejected */
        int port;
    } cases[] = {
        {"127.0.0.1:80", "127.0.0.1", 80},
        {"[::1]:0", "::1", 0},
        {"[fe80::1%eth0]:1", NULL, 0},
        {"[2001:db8::1]:65535", "2001:db8::1", 65535},
        {":8090", "", 8090},
        {"*:8090", "", 8090},
        {"localhost:1", "localhost", 1},
        {"my-host.example_1:443", "my-host.example_1", 443},
        {"8090", NULL, 0},
        {"[::1]8090", NULL, 0},
        {"[zz]:1", NULL, 0},
        {"[]:1", NULL, 0},
        {"[::1]:", NULL, 0},
        {"host:", NULL, 0},
        {"host:-1", NULL, 0},
        {"host:1x", NULL, 0},
        {"a b:80", NULL, 0},
        {"::1:80", NULL, 0},
        {":65536", NULL, 0},
        {":99999999999999999999999", NULL, 0},
        {"", NULL, 0},
        {"[::1", NULL, 0},
    };
    sh_config_t cfg = fresh();
    sh_buf_t err = SH_BUF_INIT;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = set(&cfg, "listen", cases[i].v, &err);
        if (!cases[i].host) {
            ck_assert_msg(rc == -EINVAL, "'%s' accepted", cases[i].v);
            ck_assert_str_eq(cfg.listen.host, "127.0.0.1"); /* untouched */
            continue;
        }
        ck_assert_msg(rc == 0, "'%s': %s", cases[i].v, sh_buf_peek(&err));
        ck_assert_str_eq(cfg.listen.host, cases[i].host);
        ck_assert_int_eq(cfg.listen.port, cases[i].port);
        set(&cfg, "listen", "127.0.0.1:8090", &err);
    }
    set(&cfg, "listen", "8090", &err);
    ck_assert_str_eq(sh_buf_peek(&err), "listen: '8090' is not HOST:PORT, [IPV6]:PORT or :PORT");
    set(&cfg, "listen", "[zz]:1", &err);
    ck_assert_str_eq(sh_buf_peek(&err),
                     "listen: '[zz]:1': not an IPv6 address between the brackets");
    sh_config_release(&cfg);
    sh_buf_release(&err);
}
END_TEST

START_TEST(test_type_origins)
{
    sh_config_t cfg = fresh();
    sh_buf_t err = SH_BUF_INIT;
    ck_assert_int_eq(
        set(&cfg, "cors_allow_origin", "https://a.example;http://b.example:8080", &err), 0);
    ck_assert(!cfg.cors_allow_origin.any);
    ck_assert_uint_eq(cfg.cors_allow_origin.n, 2);
    ck_assert_str_eq(cfg.cors_allow_origin.v[0], "https://a.example");
    ck_assert_str_eq(cfg.cors_allow_origin.v[1], "http://b.example:8080");
    ck_assert(sh_config_origin_allowed(&cfg, "https://a.example", 17));
    ck_assert(sh_config_origin_allowed(&cfg, "HTTPS://A.example", 17));
    ck_assert(!sh_config_origin_allowed(&cfg, "https://a.example.evil", 22));
    ck_assert(!sh_config_origin_allowed(&cfg, "https://a.exampl", 16));
    ck_assert(!sh_config_origin_allowed(&cfg, "http://b.example", 16));

    /* Spaces, ',' as separator, case and one trailing '/' are normalised. */
    ck_assert_int_eq(
        set(&cfg, "cors_allow_origin", "  HTTPS://A.Example/ , http://[::1]:3000;; ", &err), 0);
    ck_assert_uint_eq(cfg.cors_allow_origin.n, 2);
    ck_assert_str_eq(cfg.cors_allow_origin.v[0], "https://a.example");
    ck_assert_str_eq(cfg.cors_allow_origin.v[1], "http://[::1]:3000");
    ck_assert_int_eq(set(&cfg, "cors_allow_origin", "app-x+y.z://desktop", &err), 0);
    ck_assert_str_eq(cfg.cors_allow_origin.v[0], "app-x+y.z://desktop");
    ck_assert_int_eq(set(&cfg, "cors_allow_origin", "http://[::ffff:1.2.3.4]", &err), 0);
    ck_assert_int_eq(set(&cfg, "cors_allow_origin", "http://a:65535", &err), 0);

    ck_assert_int_eq(set(&cfg, "cors_allow_origin", " * ", &err), 0);
    ck_assert(cfg.cors_allow_origin.any);
    ck_assert_uint_eq(cfg.cors_allow_origin.n, 0);
    ck_assert(sh_config_origin_allowed(&cfg, "http://anything", 15));

    static const char *const bad[] = {
        "",
        ";",
        " , ",
        "a.example",
        "https://",
        "https://a/b",
        "https://a/ b",
        "*,http://x",
        "http://x;*",
        "ftp//x",
        "1http://x",
        "https://a?b",
        "https://u@a",
        "http://a b",
        "http://][",
        "http://[]",
        "http://[::1",
        "http://[::1]x",
        "http://a:",
        "http://a:x",
        "http://a:123456",
        "http://:80",
        "http://a:1:2",
        "http://a]:1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(set(&cfg, "cors_allow_origin", bad[i], &err) == -EINVAL, "'%s' accepted",
                      bad[i]);
        ck_assert(cfg.cors_allow_origin.any); /* untouched */
    }
    set(&cfg, "cors_allow_origin", "", &err);
    ck_assert_str_eq(sh_buf_peek(&err), "cors_allow_origin: no origin given (use * to allow any)");
    set(&cfg, "cors_allow_origin", "https://ok.example;https://a/b", &err);
    ck_assert_str_eq(sh_buf_peek(&err),
                     "cors_allow_origin: 'https://a/b' is not an origin (scheme://host[:port])");
    sh_config_release(&cfg);
    sh_buf_release(&err);
}
END_TEST

START_TEST(test_type_transports)
{
    const unsigned P = SH_CONFIG_TRANSPORT_POLLING, W = SH_CONFIG_TRANSPORT_WEBSOCKET;
    sh_config_t cfg = fresh();
    sh_buf_t err = SH_BUF_INIT;
    ck_assert_int_eq(set(&cfg, "transports", "polling", &err), 0);
    ck_assert_uint_eq(cfg.transports, P);
    ck_assert_int_eq(set(&cfg, "transports", "websocket", &err), 0);
    ck_assert_uint_eq(cfg.transports, W);
    ck_assert_int_eq(set(&cfg, "transports", " WebSocket , polling,", &err), 0);
    ck_assert_uint_eq(cfg.transports, P | W);
    ck_assert_int_eq(set(&cfg, "transports", "polling,polling", &err), 0);
    ck_assert_uint_eq(cfg.transports, P);
    static const char *const bad[] = {"", ",", "sse", "polling;websocket", "poll", "websockets"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(set(&cfg, "transports", bad[i], &err) == -EINVAL, "'%s' accepted", bad[i]);
        ck_assert_uint_eq(cfg.transports, P);
    }
    set(&cfg, "transports", "polling;websocket", &err);
    ck_assert_str_eq(sh_buf_peek(&err),
                     "transports: 'polling;websocket' is not a transport (polling, websocket)");
    sh_config_release(&cfg);
    sh_buf_release(&err);
}
END_TEST

START_TEST(test_type_string_and_unknown_key)
{
    sh_config_t cfg = fresh();
    sh_buf_t err = SH_BUF_INIT;
    ck_assert_int_eq(set(&cfg, "redis-key-prefix", "", &err), 0);
    ck_assert_str_eq(cfg.redis_key_prefix, "");
    ck_assert_int_eq(set(&cfg, "secret", " any\tthing # at all ", &err), 0);
    ck_assert_str_eq(cfg.secret, " any\tthing # at all ");
    ck_assert_int_eq(set(&cfg, "nope", "1", &err), -EINVAL);
    ck_assert_str_eq(sh_buf_peek(&err), "unknown key 'nope'");
    ck_assert_int_eq(set(&cfg, "source_path", "/x", &err), -EINVAL); /* not a setting */
    sh_config_release(&cfg);
    sh_buf_release(&err);
}
END_TEST

/* ---- the file */

START_TEST(test_good_file)
{
    sh_config_t cfg = fresh();
    sh_buf_t err = SH_BUF_INIT;
    ck_assert_msg(parse_vector(&cfg, "good.conf", &err) == 0, "%s", sh_buf_peek(&err));
    ck_assert_int_eq(cfg.app, SH_CONFIG_APP_ECHO);
    ck_assert_str_eq(cfg.listen.host, "::1");
    ck_assert_int_eq(cfg.listen.port, 9000);
    ck_assert_str_eq(cfg.path, "/rt/");
    ck_assert_str_eq(sh_config_path(&cfg), "/rt/");
    ck_assert_uint_eq(cfg.transports, SH_CONFIG_TRANSPORT_POLLING | SH_CONFIG_TRANSPORT_WEBSOCKET);
    ck_assert_uint_eq(cfg.cors_allow_origin.n, 2);
    ck_assert_str_eq(cfg.cors_allow_origin.v[0], "https://app.example.com");
    ck_assert_str_eq(cfg.cors_allow_origin.v[1], "http://localhost:5173");
    ck_assert_int_eq(cfg.log_level, SH_LOG_DEBUG);
    ck_assert_int_eq(cfg.ping_interval_ms, 10000);
    ck_assert_int_eq(cfg.ping_timeout_ms, 60000);
    ck_assert_int_eq(cfg.connect_timeout_ms, 1500);
    ck_assert_int_eq(cfg.upgrade_timeout_ms, 2000);
    ck_assert_uint_eq(cfg.max_payload, 65536);
    ck_assert_uint_eq(cfg.output_queue_limit, 1073741824);
    ck_assert_int_eq(cfg.max_connections, 42);
    ck_assert_int_eq(cfg.http_timeout_ms, 3600000);
    ck_assert_uint_eq(cfg.api_body_limit, 2097152);
    ck_assert_str_eq(cfg.secret, "s3cret with \"quotes\", a \\ and # not a comment");
    ck_assert_int_eq(cfg.jwt_algorithm, SH_CONFIG_JWT_HS256);
    ck_assert_str_eq(cfg.jwt_public_key, "");
    ck_assert_int_eq(cfg.jwt_leeway_ms, 0);
    ck_assert_str_eq(cfg.directory, "file:/var/lib/siohub/users.json");
    ck_assert_str_eq(sh_config_directory_file(&cfg), "/var/lib/siohub/users.json");
    ck_assert_str_eq(cfg.api_key, "key#with-hash");
    ck_assert(!cfg.presence);
    ck_assert_int_eq(cfg.presence_window_ms, 100);
    ck_assert_int_eq(cfg.event_caller_timeout_ms, 300000);
    ck_assert_int_eq(cfg.usage_cleanup_interval_ms, 5000);
    ck_assert_int_eq(cfg.usage_timeout_ms, 6000);
    ck_assert_int_eq(cfg.session_reap_age_ms, 120000);
    ck_assert_str_eq(cfg.websocket_manager, "redis");
    ck_assert(sh_config_redis(&cfg));
    ck_assert_str_eq(cfg.redis_url, "redis://:pw@localhost:6379/2");
    ck_assert_str_eq(cfg.redis_key_prefix, "  spaced  ");
    ck_assert_int_eq(sh_config_validate(&cfg, &err), 0);
    sh_config_release(&cfg);
    sh_buf_release(&err);
}
END_TEST

START_TEST(test_bom_crlf_and_no_final_newline)
{
    sh_config_t cfg = fresh();
    sh_buf_t err = SH_BUF_INIT;
    ck_assert_msg(parse_vector(&cfg, "good-crlf.conf", &err) == 0, "%s", sh_buf_peek(&err));
    ck_assert_str_eq(cfg.listen.host, "");
    ck_assert_int_eq(cfg.listen.port, 8091);
    ck_assert_int_eq(cfg.log_level, SH_LOG_WARN);
    sh_config_release(&cfg);
    sh_buf_release(&err);
}
END_TEST

/* Every bad-NAME.conf fails with exactly the text in bad-NAME.err, and
 * leaves a config that releases cleanly. */
START_TEST(test_bad_file_vectors)
{
    DIR *d = opendir(DATA_DIR);
    ck_assert_ptr_nonnull(d);
    int count = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (strncmp(de->d_name, "bad-", 4) != 0 || n < 6 || strcmp(de->d_name + n - 5, ".conf"))
            continue;
        char errpath[512];
        snprintf(errpath, sizeof(errpath), "%s/%.*s.err", DATA_DIR, (int)(n - 5), de->d_name);
        size_t elen;
        char *want = read_all(errpath, &elen);
        while (elen > 0 && want[elen - 1] == '\n')
            want[--elen] = '\0';
        sh_config_t cfg = fresh();
        sh_buf_t err = SH_BUF_INIT;
        int rc = parse_vector(&cfg, de->d_name, &err);
        ck_assert_msg(rc < 0, "%s parsed", de->d_name);
        ck_assert_msg(strcmp(sh_buf_peek(&err), want) == 0, "%s:\n got  %s\n want %s", de->d_name,
                      sh_buf_peek(&err), want);
        sh_config_release(&cfg);
        sh_buf_release(&err);
        free(want);
        count++;
    }
    closedir(d);
    ck_assert_int_ge(count, 20);
}
END_TEST

START_TEST(test_comments_and_quotes)
{
    sh_config_t cfg = fresh();
    sh_buf_t err = SH_BUF_INIT;
    static const struct {
        const char *line;
        const char *want;
    } cases[] = {
        {"api_key = a#b", "a#b"},
        {"api_key = a #b", "a"},
        {"api_key = a\t# b", "a"},
        {"api_key = #b", ""},
        {"api_key =#b", ""},
        {"api_key =", ""},
        {"api_key =   \t", ""},
        {"api_key = \"\"", ""},
        {"api_key = \"a # b\"  # c", "a # b"},
        {"api_key = \"a\"# c", "a"},
        {"api_key = \"\\\"\\\\\"", "\"\\"},
        {"api_key = a \"b\" c", "a \"b\" c"},
        {"api_key=x", "x"},
        {"\t API-KEY \t=\t x y \t", "x y"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_msg(parse_str(&cfg, cases[i].line, &err) == 0, "%s: %s", cases[i].line,
                      sh_buf_peek(&err));
        ck_assert_msg(strcmp(cfg.api_key, cases[i].want) == 0, "%s: got '%s'", cases[i].line,
                      cfg.api_key);
    }
    ck_assert_int_eq(parse_str(&cfg, "", &err), 0);
    ck_assert_int_eq(parse_str(&cfg, "\n\n#\n   \n", &err), 0);
    ck_assert_int_eq(parse_str(&cfg, "api_key = \"a\\", &err), -EINVAL);
    ck_assert_str_eq(sh_buf_peek(&err), "t.conf:1: api_key: unterminated quoted value");
    ck_assert_int_eq(parse_str(&cfg, "api_key = \"a\\\xc3\xa9\"", &err), -EINVAL);
    ck_assert_str_eq(sh_buf_peek(&err), "t.conf:1: api_key: unknown escape (byte 0xc3 after '\\') "
                                        "in a quoted value (only \\\" and \\\\)");
    ck_assert_int_eq(parse_str(&cfg, "ke y = 1", &err), -EINVAL);
    ck_assert_str_eq(sh_buf_peek(&err), "t.conf:1: expected 'key = value'");
    /* A rejected value names the key as the table spells it. */
    ck_assert_int_eq(parse_str(&cfg, "\nPING-INTERVAL = 5x", &err), -EINVAL);
    ck_assert_str_eq(sh_buf_peek(&err), "t.conf:2: ping_interval: '5x' is not a duration "
                                        "(milliseconds, or with a unit: 250ms, 25s, 1m, 1h)");
    /* Hostile bytes in a message are escaped. */
    ck_assert_int_eq(parse_str(&cfg, "app = \"\xff\\\\\"", &err), -EINVAL);
    ck_assert_str_eq(sh_buf_peek(&err),
                     "t.conf:1: app: '\\xff\\x5c' is not one of: echo, openwebui");
    /* Long values are cut in messages. */
    char line[300];
    snprintf(line, sizeof(line), "app = %0200d", 0);
    parse_str(&cfg, line, &err);
    ck_assert_uint_lt(sh_buf_avail(&err), 160);
    ck_assert_ptr_nonnull(strstr(sh_buf_peek(&err), "...' is not one of"));
    sh_config_release(&cfg);
    sh_buf_release(&err);
}
END_TEST

START_TEST(test_file_limits)
{
    sh_config_t cfg = fresh();
    sh_buf_t err = SH_BUF_INIT;
    /* A line of exactly SH_CONFIG_MAX_LINE bytes is fine, one more is not. */
    size_t big = SH_CONFIG_MAX_FILE + 1;
    char *text = sh_malloc(big);
    memset(text, ' ', big);
    text[0] = '#';
    ck_assert_int_eq(sh_config_parse_text(&cfg, "l.conf", text, SH_CONFIG_MAX_LINE, &err), 0);
    ck_assert_int_eq(sh_config_parse_text(&cfg, "l.conf", text, SH_CONFIG_MAX_LINE + 1, &err),
                     -EINVAL);
    ck_assert_str_eq(sh_buf_peek(&err), "l.conf:1: line is longer than 8192 bytes");
    /* A trailing '\r' does not count. */
    text[SH_CONFIG_MAX_LINE] = '\r';
    sh_buf_reset(&err);
    ck_assert_int_eq(sh_config_parse_text(&cfg, "l.conf", text, SH_CONFIG_MAX_LINE + 1, &err), 0);
    /* 1 MiB of short lines is fine, one byte more is not. */
    for (size_t i = 0; i < big; i += 64)
        text[i] = '\n';
    ck_assert_int_eq(sh_config_parse_text(&cfg, "b.conf", text, big - 1, &err), 0);
    ck_assert_int_eq(sh_config_parse_text(&cfg, "b.conf", text, big, &err), -EFBIG);
    ck_assert_str_eq(sh_buf_peek(&err), "b.conf: file is larger than 1024 KiB");

    /* The same through a real file. */
    char path[] = "/tmp/siohub-test-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, big), (ssize_t)big);
    close(fd);
    sh_buf_reset(&err);
    ck_assert_int_eq(sh_config_read_file(&cfg, path, &err), -EFBIG);
    sh_buf_t want = SH_BUF_INIT;
    sh_buf_appendf(&want, "%s: file is larger than 1024 KiB", path);
    ck_assert_str_eq(sh_buf_peek(&err), sh_buf_peek(&want));
    unlink(path);
    free(text);

    sh_buf_reset(&err);
    ck_assert_int_eq(sh_config_read_file(&cfg, "/nonexistent/siohub.conf", &err), -ENOENT);
    ck_assert_str_eq(sh_buf_peek(&err),
                     "/nonexistent/siohub.conf: cannot read: No such file or directory");
    sh_buf_reset(&err);
    ck_assert_int_eq(sh_config_read_file(&cfg, DATA_DIR, &err), -EISDIR);
    sh_buf_reset(&want);
    sh_buf_appendf(&want, "%s: cannot read: Is a directory", DATA_DIR);
    ck_assert_str_eq(sh_buf_peek(&err), sh_buf_peek(&want));
    ck_assert_ptr_null(cfg.source_path);

    sh_buf_reset(&err);
    ck_assert_int_eq(sh_config_read_file(&cfg, DATA_DIR "/good-crlf.conf", &err), 0);
    ck_assert_str_eq(cfg.source_path, DATA_DIR "/good-crlf.conf");
    sh_config_release(&cfg);
    sh_buf_release(&err);
    sh_buf_release(&want);
}
END_TEST

/* ---- the environment */

START_TEST(test_env_seconds)
{
    sh_config_t cfg = fresh();
    sh_buf_t err = SH_BUF_INIT;
    char *env[] = {"PATH=/bin",
                   "WEBSOCKET_SERVER_PING_INTERVALX=9",
                   "WEBSOCKET_SERVER_PING_INTERVAL=7",
                   "WEBSOCKET_SERVER_PING_TIMEOUT= 8 ",
                   "WEBSOCKET_SERVER_PING_INTERVAL=99",
                   "WEBSOCKET_EVENT_CALLER_TIMEOUT=300",
                   NULL};
    ck_assert_int_eq(sh_config_apply_env(&cfg, env, &err), 0);
    ck_assert_int_eq(cfg.ping_interval_ms, 7000); /* first wins, like getenv */
    ck_assert_int_eq(cfg.ping_timeout_ms, 8000);
    ck_assert_int_eq(cfg.event_caller_timeout_ms, 300000);

    static const struct {
        const char *env;
        const char *err;
    } bad[] = {
        {"WEBSOCKET_SERVER_PING_INTERVAL=x",
         "environment WEBSOCKET_SERVER_PING_INTERVAL: 'x' is not a number"},
        {"WEBSOCKET_SERVER_PING_INTERVAL=1.5",
         "environment WEBSOCKET_SERVER_PING_INTERVAL: '1.5' is not a number"},
        {"WEBSOCKET_SERVER_PING_INTERVAL=25s",
         "environment WEBSOCKET_SERVER_PING_INTERVAL: '25s' is not a number"},
        {"WEBSOCKET_SERVER_PING_INTERVAL=0",
         "environment WEBSOCKET_SERVER_PING_INTERVAL: '0' is out of range (1ms..1d)"},
        {"WEBSOCKET_SERVER_PING_TIMEOUT=-5",
         "environment WEBSOCKET_SERVER_PING_TIMEOUT: '-5' is out of range (1ms..1d)"},
        {"WEBSOCKET_SERVER_PING_TIMEOUT=86401",
         "environment WEBSOCKET_SERVER_PING_TIMEOUT: '86401' is out of range (1ms..1d)"},
        {"WEBSOCKET_SERVER_PING_TIMEOUT=99999999999999999999",
         "environment WEBSOCKET_SERVER_PING_TIMEOUT: '99999999999999999999' is out of range "
         "(1ms..1d)"},
        {"WEBSOCKET_SERVER_PING_TIMEOUT=9223372036854775",
         "environment WEBSOCKET_SERVER_PING_TIMEOUT: '9223372036854775' is out of range (1ms..1d)"},
        {"WEBSOCKET_EVENT_CALLER_TIMEOUT=soon",
         "environment WEBSOCKET_EVENT_CALLER_TIMEOUT: 'soon' is not a number"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *e[] = {(char *)bad[i].env, NULL};
        sh_buf_reset(&err);
        ck_assert_int_lt(sh_config_apply_env(&cfg, e, &err), 0);
        ck_assert_str_eq(sh_buf_peek(&err), bad[i].err);
    }
    /* Empty means unset. */
    char *empty[] = {"WEBSOCKET_SERVER_PING_INTERVAL=", "CORS_ALLOW_ORIGIN=", NULL};
    ck_assert_int_eq(sh_config_apply_env(&cfg, empty, &err), 0);
    ck_assert_int_eq(cfg.ping_interval_ms, 7000);
    ck_assert_int_eq(sh_config_apply_env(&cfg, NULL, &err), 0);
    sh_config_release(&cfg);
    sh_buf_release(&err);
}
END_TEST

START_TEST(test_env_websocket_support)
{
    const unsigned P = SH_CONFIG_TRANSPORT_POLLING, W = SH_CONFIG_TRANSPORT_WEBSOCKET;
    static const struct {
        const char *env;
        unsigned want; /* 0: error */
    } cases[] = {
        {"ENABLE_WEBSOCKET_SUPPORT=false", 1}, {"ENABLE_WEBSOCKET_SUPPORT=False", 1},
        {"ENABLE_WEBSOCKET_SUPPORT=0", 1},     {"ENABLE_WEBSOCKET_SUPPORT=true", 3},
        {"ENABLE_WEBSOCKET_SUPPORT=True", 3},  {"ENABLE_WEBSOCKET_SUPPORT=maybe", 0},
    };
    sh_buf_t err = SH_BUF_INIT;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sh_config_t cfg = fresh();
        char *e[] = {(char *)cases[i].env, NULL};
        sh_buf_reset(&err);
        int rc = sh_config_apply_env(&cfg, e, &err);
        if (cases[i].want == 0) {
            ck_assert_int_eq(rc, -EINVAL);
            ck_assert_str_eq(sh_buf_peek(&err), "environment ENABLE_WEBSOCKET_SUPPORT: 'maybe' is "
                                                "not a boolean (true/false, yes/no, on/off, 1/0)");
        } else {
            ck_assert_int_eq(rc, 0);
            ck_assert_uint_eq(cfg.transports, cases[i].want == 1 ? P : (P | W));
        }
        sh_config_release(&cfg);
    }
    sh_buf_release(&err);
}
END_TEST

START_TEST(test_env_strings)
{
    sh_config_t cfg = fresh();
    sh_buf_t err = SH_BUF_INIT;
    char *env1[] = {"WEBUI_JWT_SECRET_KEY=old", "REDIS_URL=redis://fallback",
                    "WEBSOCKET_MANAGER=redis",  "CORS_ALLOW_ORIGIN=http://a:1;http://b:2",
                    "REDIS_KEY_PREFIX=owui",    NULL};
    ck_assert_int_eq(sh_config_apply_env(&cfg, env1, &err), 0);
    ck_assert_str_eq(cfg.secret, "old");
    ck_assert_str_eq(cfg.redis_url, "redis://fallback");
    ck_assert(sh_config_redis(&cfg));
    ck_assert_uint_eq(cfg.cors_allow_origin.n, 2);
    ck_assert_str_eq(cfg.cors_allow_origin.v[1], "http://b:2");
    ck_assert_str_eq(cfg.redis_key_prefix, "owui");

    char *env2[] = {"WEBUI_JWT_SECRET_KEY=old",   "WEBUI_SECRET_KEY=new",
                    "REDIS_URL=redis://fallback", "WEBSOCKET_REDIS_URL=redis://main",
                    "WEBSOCKET_MANAGER=Redis",    NULL};
    ck_assert_int_eq(sh_config_apply_env(&cfg, env2, &err), 0);
    ck_assert_str_eq(cfg.secret, "new");
    ck_assert_str_eq(cfg.redis_url, "redis://main");
    ck_assert_str_eq(cfg.websocket_manager, "Redis");
    ck_assert(!sh_config_redis(&cfg)); /* Open WebUI compares exactly */

    char *env3[] = {"CORS_ALLOW_ORIGIN=not an origin", NULL};
    sh_buf_reset(&err);
    ck_assert_int_eq(sh_config_apply_env(&cfg, env3, &err), -EINVAL);
    ck_assert_str_eq(sh_buf_peek(&err), "environment CORS_ALLOW_ORIGIN: 'not an origin' is not an "
                                        "origin (scheme://host[:port])");
    sh_config_release(&cfg);
    sh_buf_release(&err);
}
END_TEST

/* ---- the command line */

START_TEST(test_precedence)
{
    /* precedence.conf sets ping_interval, ping_timeout, connect_timeout
     * and max_connections; the environment two of them; argv one. */
    char *argv[] = {"siohubd", "-c", DATA_DIR "/precedence.conf", "--ping-timeout", "9s", NULL};
    char *envp[] = {"WEBSOCKET_SERVER_PING_INTERVAL=7", "WEBSOCKET_SERVER_PING_TIMEOUT=8", NULL};
    sh_config_t cfg;
    sh_config_cmd_t cmd;
    sh_buf_t err = SH_BUF_INIT;
    ck_assert_msg(load(&cfg, argv, envp, &cmd, &err) == 0, "%s", sh_buf_peek(&err));
    ck_assert_int_eq(cfg.ping_interval_ms, 7000);    /* env > file */
    ck_assert_int_eq(cfg.ping_timeout_ms, 9000);     /* argv > env > file */
    ck_assert_int_eq(cfg.connect_timeout_ms, 3000);  /* file > default */
    ck_assert_int_eq(cfg.upgrade_timeout_ms, 10000); /* default */
    ck_assert_int_eq(cfg.max_connections, 5);        /* file */
    ck_assert_str_eq(cfg.source_path, DATA_DIR "/precedence.conf");
    ck_assert_ptr_null(cmd.name);
    sh_config_release(&cfg);

    /* A later option overrides an earlier one. */
    char *argv2[] = {"siohubd", "--max-connections=1", "--max_connections", "2", NULL};
    ck_assert_int_eq(load(&cfg, argv2, NULL, &cmd, &err), 0);
    ck_assert_int_eq(cfg.max_connections, 2);
    sh_config_release(&cfg);
    sh_buf_release(&err);
}
END_TEST

START_TEST(test_long_options)
{
    sh_config_t cfg;
    sh_config_cmd_t cmd;
    sh_buf_t err = SH_BUF_INIT;
    char *argv[] = {"siohubd",
                    "--ping-interval",
                    "5s",
                    "--ping_timeout=6s",
                    "--listen=:1234",
                    "--no-presence",
                    "--app",
                    "echo",
                    "--cors-allow-origin=https://x.example",
                    "--secret=",
                    "--transports",
                    "polling",
                    NULL};
    ck_assert_msg(load(&cfg, argv, NULL, &cmd, &err) == 0, "%s", sh_buf_peek(&err));
    ck_assert_int_eq(cfg.ping_interval_ms, 5000);
    ck_assert_int_eq(cfg.ping_timeout_ms, 6000);
    ck_assert_str_eq(cfg.listen.host, "");
    ck_assert_int_eq(cfg.listen.port, 1234);
    ck_assert(!cfg.presence);
    ck_assert_int_eq(cfg.app, SH_CONFIG_APP_ECHO);
    ck_assert_uint_eq(cfg.cors_allow_origin.n, 1);
    ck_assert_uint_eq(cfg.transports, SH_CONFIG_TRANSPORT_POLLING);
    sh_config_release(&cfg);

    static const struct {
        const char *arg;
        bool want;
    } bools[] = {
        {"--presence", true},     {"--no-presence", false}, {"--presence=false", false},
        {"--presence=yes", true}, {"--no_presence", false}, {"--presence=0", false},
    };
    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
        char *a[] = {"siohubd", "--presence=on", (char *)bools[i].arg, NULL};
        ck_assert_msg(load(&cfg, a, NULL, &cmd, &err) == 0, "%s: %s", bools[i].arg,
                      sh_buf_peek(&err));
        ck_assert_msg(cfg.presence == bools[i].want, "%s", bools[i].arg);
        sh_config_release(&cfg);
    }

    /* -c in all its spellings. */
    static const char *const cforms[][3] = {
        {"-c", DATA_DIR "/precedence.conf", NULL},
        {"-c" DATA_DIR "/precedence.conf", NULL, NULL},
        {"--config", DATA_DIR "/precedence.conf", NULL},
        {"--config=" DATA_DIR "/precedence.conf", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(cforms) / sizeof(cforms[0]); i++) {
        char *a[] = {"siohubd", (char *)cforms[i][0], (char *)cforms[i][1], NULL};
        ck_assert_msg(load(&cfg, a, NULL, &cmd, &err) == 0, "%s: %s", cforms[i][0],
                      sh_buf_peek(&err));
        ck_assert_str_eq(cfg.source_path, DATA_DIR "/precedence.conf");
        ck_assert_int_eq(cfg.max_connections, 5);
        sh_config_release(&cfg);
    }
    sh_buf_release(&err);
}
END_TEST

START_TEST(test_option_errors)
{
    static const struct {
        const char *args[4];
        const char *err;
    } cases[] = {
        {{"--nope"}, "unknown option '--nope'"},
        {{"--nope=3"}, "unknown option '--nope'"},
        {{"-x"}, "unknown option '-x'"},
        {{"-hV"}, "unknown option '-hV'"},
        {{"--no-app"}, "unknown option '--no-app'"},
        {{"--no-"}, "unknown option '--no-'"},
        {{"---"}, "unknown option '---'"},
        {{"--ping-interval"}, "option '--ping-interval' needs a value"},
        {{"-c"}, "option '-c' needs a value"},
        {{"--config"}, "option '--config' needs a value"},
        {{"--no-presence=1"}, "option '--no-presence' takes no value"},
        {{"--presence=maybe"},
         "option '--presence': 'maybe' is not a boolean (true/false, yes/no, on/off, 1/0)"},
        {{"--ping-interval=abc"},
         "option '--ping-interval': 'abc' is not a duration "
         "(milliseconds, or with a unit: 250ms, 25s, 1m, 1h)"},
        {{"--ping_interval", "abc"},
         "option '--ping_interval': 'abc' is not a duration "
         "(milliseconds, or with a unit: 250ms, 25s, 1m, 1h)"},
        {{"-c", "/nonexistent/siohub.conf"},
         "/nonexistent/siohub.conf: cannot read: No such file or directory"},
        {{"--path=x/"}, "path: 'x/' must start and end with '/'"},
    };
    sh_buf_t err = SH_BUF_INIT;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *a[6] = {"siohubd"};
        for (int j = 0; cases[i].args[j]; j++)
            a[j + 1] = (char *)cases[i].args[j];
        sh_config_t cfg;
        sh_config_cmd_t cmd;
        ck_assert_int_lt(load(&cfg, a, NULL, &cmd, &err), 0);
        ck_assert_str_eq(sh_buf_peek(&err), cases[i].err);
        sh_config_release(&cfg);
    }
    sh_buf_release(&err);
}
END_TEST

START_TEST(test_subcommand)
{
    sh_config_t cfg;
    sh_config_cmd_t cmd;
    sh_buf_t err = SH_BUF_INIT;
    char *argv[] = {"siohubd", "--ping-interval", "5s", "token", "--user", "1", "--presence", NULL};
    ck_assert_int_eq(load(&cfg, argv, NULL, &cmd, &err), 0);
    ck_assert_str_eq(cmd.name, "token");
    ck_assert_int_eq(cmd.argc, 4);
    ck_assert_ptr_eq(cmd.argv, argv + 3);
    ck_assert_str_eq(cmd.argv[1], "--user");
    ck_assert_int_eq(cfg.ping_interval_ms, 5000);
    ck_assert(cfg.presence); /* the subcommand's --presence is not ours */
    sh_config_release(&cfg);

    /* A boolean does not swallow the next word; "--" ends our options. */
    char *argv2[] = {"siohubd", "--no-presence", "token", NULL};
    ck_assert_int_eq(load(&cfg, argv2, NULL, &cmd, &err), 0);
    ck_assert_str_eq(cmd.name, "token");
    ck_assert_int_eq(cmd.argc, 1);
    ck_assert(!cfg.presence);
    sh_config_release(&cfg);
    char *argv3[] = {"siohubd", "--", "--weird", NULL};
    ck_assert_int_eq(load(&cfg, argv3, NULL, &cmd, &err), 0);
    ck_assert_str_eq(cmd.name, "--weird");
    sh_config_release(&cfg);
    char *argv4[] = {"siohubd", "--", NULL};
    ck_assert_int_eq(load(&cfg, argv4, NULL, &cmd, &err), 0);
    ck_assert_ptr_null(cmd.name);
    sh_config_release(&cfg);

    /* Without a cmd to fill, a subcommand is an error. */
    ck_assert_int_eq(load(&cfg, argv2, NULL, NULL, &err), -EINVAL);
    ck_assert_str_eq(sh_buf_peek(&err), "unexpected argument 'token'");
    sh_config_release(&cfg);

    /* argc 0 (an exec without argv[0]) is survived. */
    char *none[] = {NULL};
    ck_assert_int_eq(load(&cfg, none, NULL, &cmd, &err), 0);
    sh_config_release(&cfg);
    sh_buf_release(&err);
}
END_TEST

START_TEST(test_default_file)
{
    sh_config_t cfg;
    sh_config_cmd_t cmd;
    sh_buf_t err = SH_BUF_INIT;
    char *argv[] = {"siohubd", NULL};
    /* Missing: defaults only. */
    ck_assert_int_eq(
        sh_config_load_default(&cfg, "/nonexistent/siohub.conf", 1, argv, NULL, &cmd, &err), 0);
    ck_assert_ptr_null(cfg.source_path);
    sh_config_release(&cfg);
    /* Present: read. */
    ck_assert_int_eq(
        sh_config_load_default(&cfg, DATA_DIR "/precedence.conf", 1, argv, NULL, &cmd, &err), 0);
    ck_assert_str_eq(cfg.source_path, DATA_DIR "/precedence.conf");
    ck_assert_int_eq(cfg.max_connections, 5);
    sh_config_release(&cfg);
    /* Present but unreadable as a file: an error, not silently skipped. */
    ck_assert_int_eq(sh_config_load_default(&cfg, DATA_DIR, 1, argv, NULL, &cmd, &err), -EISDIR);
    sh_config_release(&cfg);
    /* -c wins over the default file. */
    char *argv2[] = {"siohubd", "-c", DATA_DIR "/good-crlf.conf", NULL};
    sh_buf_reset(&err);
    ck_assert_int_eq(
        sh_config_load_default(&cfg, DATA_DIR "/precedence.conf", 3, argv2, NULL, &cmd, &err), 0);
    ck_assert_str_eq(cfg.source_path, DATA_DIR "/good-crlf.conf");
    ck_assert_int_eq(cfg.max_connections, 10000);
    sh_config_release(&cfg);
    /* Errors in the file stop the load. */
    char *argv3[] = {"siohubd", "-c", DATA_DIR "/bad-duration.conf", NULL};
    sh_buf_reset(&err);
    ck_assert_int_eq(sh_config_load_default(&cfg, NULL, 3, argv3, NULL, &cmd, &err), -EINVAL);
    ck_assert_str_eq(sh_buf_peek(&err),
                     DATA_DIR "/bad-duration.conf:3: ping_interval: 'abc' is not a "
                              "duration (milliseconds, or with a unit: 250ms, "
                              "25s, 1m, 1h)");
    sh_config_release(&cfg);
    sh_buf_release(&err);
}
END_TEST

/* Runs a load with stdout captured; returns what it printed. */
static char *load_capturing(char **argv, int *rc)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    fflush(stdout);
    int saved = dup(1);
    FILE *tmp = tmpfile();
    ck_assert_ptr_nonnull(tmp);
    dup2(fileno(tmp), 1);
    sh_config_t cfg;
    sh_config_cmd_t cmd;
    sh_buf_t err = SH_BUF_INIT;
    *rc = sh_config_load_default(&cfg, NULL, argc, argv, NULL, &cmd, &err);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    sh_config_release(&cfg);
    sh_buf_release(&err);
    sh_buf_t out = SH_BUF_INIT;
    rewind(tmp);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), tmp)) > 0)
        sh_buf_append(&out, chunk, n);
    fclose(tmp);
    return sh_buf_steal(&out, NULL);
}

START_TEST(test_help_and_version)
{
    int rc;
    char *argv[] = {"/usr/sbin/siohubd", "--ping-interval=5s", "--help", "--nope", NULL};
    char *help = load_capturing(argv, &rc);
    ck_assert_int_eq(rc, 1);
    ck_assert_ptr_nonnull(strstr(help, "Usage: siohubd [OPTION]... [COMMAND [ARG]...]\n"));
    ck_assert_ptr_nonnull(strstr(help, "-c, --config=FILE"));
    size_t n;
    const sh_config_option_t *o = sh_config_options(&n);
    for (size_t i = 0; i < n; i++) {
        /* "--ping-interval=DURATION\n      <help>\n      default: 25000" */
        sh_buf_t want = SH_BUF_INIT;
        sh_buf_append_str(&want, o[i].type == SH_CONFIG_BOOL ? "  --[no-]" : "  --");
        for (const char *k = o[i].key; *k; k++)
            sh_buf_append_byte(&want, *k == '_' ? '-' : *k);
        sh_buf_appendf(&want, "%s", o[i].type == SH_CONFIG_BOOL ? "\n" : "=");
        const char *at = strstr(help, sh_buf_peek(&want));
        ck_assert_msg(at != NULL, "--help lacks %s", sh_buf_peek(&want));
        const char *line_end = strchr(at + 2, '\n');
        sh_buf_reset(&want);
        sh_buf_appendf(&want, "\n      %s\n      default: %s", o[i].help,
                       (o[i].flags & SH_CONFIG_SECRET) ? "none"
                       : *o[i].def                     ? o[i].def
                                                       : "(empty)");
        ck_assert_msg(strncmp(line_end, sh_buf_peek(&want), sh_buf_avail(&want)) == 0,
                      "--help entry of %s", o[i].key);
        if (o[i].env) {
            const char *eol = strchr(line_end + 1, '\n');
            eol = strchr(eol + 1, '\n');
            const char *env = strstr(line_end, o[i].env);
            ck_assert_msg(env && env < eol, "--help lacks %s", o[i].env);
        }
        sh_buf_release(&want);
    }
    ck_assert_ptr_nonnull(strstr(help, "environment: WEBSOCKET_SERVER_PING_INTERVAL (seconds)"));
    ck_assert_ptr_nonnull(strstr(help, "environment: WEBUI_SECRET_KEY or WEBUI_JWT_SECRET_KEY"));
    free(help);

    char *argv2[] = {"siohubd", "-V", NULL};
    char *version = load_capturing(argv2, &rc);
    ck_assert_int_eq(rc, 1);
    ck_assert_str_eq(version, "siohubd (siohub) " PACKAGE_VERSION "\n");
    free(version);
    char *argv3[] = {"siohubd", "--version", NULL};
    version = load_capturing(argv3, &rc);
    ck_assert_int_eq(rc, 1);
    free(version);
}
END_TEST

START_TEST(test_validate)
{
    static const struct {
        const char *text;
        const char *err; /* NULL: valid */
    } cases[] = {
        {"path = /", NULL},
        {"path = /a/b/", NULL},
        {"path = x", "path: 'x' must start and end with '/'"},
        {"path = /x", "path: '/x' must start and end with '/'"},
        {"path = x/", "path: 'x/' must start and end with '/'"},
        {"path = \"/a b/\"", "path: '/a b/' may hold only printable ASCII without spaces, '?', '#' "
                             "or '%'"},
        {"path = /a?b/", "path: '/a?b/' may hold only printable ASCII without spaces, '?', '#' "
                         "or '%'"},
        {"max_payload = 4M\noutput_queue_limit = 4M", NULL},
        {"max_payload = 1G\noutput_queue_limit = 4M",
         "max_payload (1073741824) must not exceed output_queue_limit (4194304): a client could "
         "not receive a message it may send"},
        {"jwt_algorithm = RS256", "jwt_algorithm RS256 needs jwt_public_key"},
        {"jwt_algorithm = ES256\njwt_public_key = /nonexistent.pem",
         "jwt_public_key: /nonexistent.pem: cannot read: No such file or directory"},
        {"jwt_algorithm = ES256\njwt_public_key = " DATA_DIR "/good.conf", NULL},
        {"jwt_public_key = /nonexistent.pem", NULL}, /* unused with HS256 */
        {"directory = file:/x.json", NULL},
        {"directory = file:", "directory: 'file:' is not 'claims' or 'file:PATH'"},
        {"directory = ldap", "directory: 'ldap' is not 'claims' or 'file:PATH'"},
        {"directory = ", "directory: '' is not 'claims' or 'file:PATH'"},
        {"websocket_manager = redis",
         "websocket_manager is 'redis' but redis_url is empty (WEBSOCKET_REDIS_URL or REDIS_URL)"},
        {"websocket_manager = redis\nredis_url = redis://h", NULL},
        {"websocket_manager = none", NULL},
    };
    sh_buf_t err = SH_BUF_INIT;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sh_config_t cfg = fresh();
        ck_assert_msg(parse_str(&cfg, cases[i].text, &err) == 0, "%s", sh_buf_peek(&err));
        int rc = sh_config_validate(&cfg, &err);
        if (!cases[i].err) {
            ck_assert_msg(rc == 0, "%s: %s", cases[i].text, sh_buf_peek(&err));
        } else {
            ck_assert_msg(rc < 0, "%s: valid", cases[i].text);
            ck_assert_str_eq(sh_buf_peek(&err), cases[i].err);
        }
        sh_config_release(&cfg);
    }
    /* Fields set by hand are checked too. */
    sh_config_t cfg = fresh();
    cfg.transports = 0;
    sh_buf_reset(&err);
    ck_assert_int_eq(sh_config_validate(&cfg, &err), -EINVAL);
    ck_assert_str_eq(sh_buf_peek(&err), "transports: no transport given (polling, websocket)");
    cfg.transports = SH_CONFIG_TRANSPORT_POLLING;
    cfg.ping_timeout_ms = 0;
    sh_buf_reset(&err);
    ck_assert_int_eq(sh_config_validate(&cfg, &err), -EINVAL);
    ck_assert_str_eq(sh_buf_peek(&err), "ping_interval and ping_timeout must be greater than 0");
    sh_config_release(&cfg);
    sh_buf_release(&err);
}
END_TEST

START_TEST(test_dump_round_trip)
{
    sh_config_t a = fresh(), b = fresh();
    sh_buf_t err = SH_BUF_INIT, da = SH_BUF_INIT, db = SH_BUF_INIT;
    ck_assert_int_eq(parse_vector(&a, "good.conf", &err), 0);
    sh_config_dump(&a, &da, true);
    ck_assert_msg(parse_str(&b, sh_buf_peek(&da), &err) == 0, "%s\n%s", sh_buf_peek(&err),
                  sh_buf_peek(&da));
    sh_config_dump(&b, &db, true);
    ck_assert_str_eq(sh_buf_peek(&da), sh_buf_peek(&db));
    ck_assert_str_eq(b.secret, a.secret);
    ck_assert_str_eq(b.redis_key_prefix, "  spaced  ");
    ck_assert_ptr_nonnull(strstr(sh_buf_peek(&da), "\nlisten = [::1]:9000\n"));
    ck_assert_ptr_nonnull(strstr(
        sh_buf_peek(&da), "\ncors_allow_origin = https://app.example.com;http://localhost:5173\n"));
    ck_assert_ptr_nonnull(strstr(sh_buf_peek(&da), "\ntransports = polling,websocket\n"));
    ck_assert_ptr_nonnull(strstr(sh_buf_peek(&da), "\napi_key = \"key#with-hash\"\n"));

    /* Without secrets: for logs. */
    sh_buf_reset(&db);
    sh_config_dump(&a, &db, false);
    ck_assert_ptr_null(strstr(sh_buf_peek(&db), "s3cret"));
    ck_assert_ptr_null(strstr(sh_buf_peek(&db), "key#with"));
    ck_assert_ptr_null(strstr(sh_buf_peek(&db), ":pw@"));
    ck_assert_ptr_nonnull(strstr(sh_buf_peek(&db), "\nsecret = (hidden)\n"));
    ck_assert_ptr_nonnull(strstr(sh_buf_peek(&db), "\nredis_url = (hidden)\n"));

    /* An enum field set by hand to a value no parser makes. */
    a.app = (sh_config_app_t)7;
    sh_buf_reset(&db);
    sh_config_dump(&a, &db, false);
    ck_assert_ptr_nonnull(strstr(sh_buf_peek(&db), "app = (invalid)\n"));

    /* Defaults dump as the table's defaults read back. */
    sh_config_t d = fresh();
    sh_buf_reset(&db);
    sh_config_dump(&d, &db, false);
    ck_assert_ptr_nonnull(strstr(sh_buf_peek(&db), "app = openwebui\nlisten = 127.0.0.1:8090\n"
                                                   "path = \"\"\ntransports = polling,websocket\n"
                                                   "cors_allow_origin = *\n"));
    ck_assert_ptr_nonnull(strstr(sh_buf_peek(&db), "\nsecret = \"\"\n"));
    ck_assert_ptr_nonnull(strstr(sh_buf_peek(&db), "\noutput_queue_limit = 4194304\n"));
    sh_config_release(&d);
    sh_config_release(&a);
    sh_config_release(&b);
    sh_buf_release(&err);
    sh_buf_release(&da);
    sh_buf_release(&db);
}
END_TEST

/* ---- the shipped files cannot drift from the table */

/* etc/siohub.conf: every "# key = value" line, uncommented, is a setting
 * at its default; each key appears exactly once, in table order. */
START_TEST(test_shipped_conf)
{
    size_t len, n;
    char *text = read_all(ETC_FILE, &len);
    const sh_config_option_t *o = sh_config_options(&n);
    sh_buf_t err = SH_BUF_INIT, uncommented = SH_BUF_INIT;

    /* As shipped, it sets nothing. */
    sh_config_t cfg = fresh();
    ck_assert_msg(sh_config_parse_text(&cfg, "siohub.conf", text, len, &err) == 0, "%s",
                  sh_buf_peek(&err));
    sh_config_release(&cfg);

    size_t next = 0; /* index of the option the next setting must be */
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "# ", 2) != 0)
            continue;
        const char *k = line + 2;
        size_t klen = strspn(k, "abcdefghijklmnopqrstuvwxyz_");
        if (klen == 0 || strncmp(k + klen, " = ", 3) != 0)
            continue;
        ck_assert_msg(next < n, "extra setting: %s", line);
        ck_assert_msg(strlen(o[next].key) == klen && strncmp(k, o[next].key, klen) == 0,
                      "expected '%s' next, found: %s", o[next].key, line);
        /* The value as written, quotes removed, is the table's default. */
        const char *v = k + klen + 3;
        char value[256];
        snprintf(value, sizeof(value), "%s", v);
        size_t vlen = strlen(value);
        if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
            memmove(value, value + 1, vlen - 2);
            value[vlen - 2] = '\0';
        }
        ck_assert_msg(strcmp(value, o[next].def) == 0, "%s: file says '%s', table '%s'",
                      o[next].key, value, o[next].def);
        sh_buf_appendf(&uncommented, "%s\n", line + 2);
        next++;
    }
    ck_assert_msg(next == n, "etc/siohub.conf lacks '%s'", next < n ? o[next].key : "");

    /* Uncommented, it parses (no duplicates) to exactly the defaults. */
    sh_config_t a = fresh(), b = fresh();
    ck_assert_msg(sh_config_parse_text(&a, "siohub.conf", sh_buf_peek(&uncommented),
                                       sh_buf_avail(&uncommented), &err) == 0,
                  "%s", sh_buf_peek(&err));
    ck_assert_int_eq(sh_config_validate(&a, &err), 0);
    sh_buf_t da = SH_BUF_INIT, db = SH_BUF_INIT;
    sh_config_dump(&a, &da, true);
    sh_config_dump(&b, &db, true);
    ck_assert_str_eq(sh_buf_peek(&da), sh_buf_peek(&db));
    sh_config_release(&a);
    sh_config_release(&b);
    sh_buf_release(&da);
    sh_buf_release(&db);
    sh_buf_release(&err);
    sh_buf_release(&uncommented);
    free(text);
}
END_TEST

/* Appends s with groff's escape for '-'. */
static void man_escape(sh_buf_t *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '-')
            sh_buf_append_str(b, "\\-");
        else
            sh_buf_append_byte(b, *s);
    }
}

/* doc/siohubd.8: every setting has an entry (.BI \-\-key= or
 * .B \-\-[no\-]key) whose paragraph states the table's default and the
 * environment variables, and ENVIRONMENT lists each variable. */
START_TEST(test_man_page)
{
    size_t len, n;
    char *man = read_all(MAN_FILE, &len);
    const sh_config_option_t *o = sh_config_options(&n);
    const char *env_section = strstr(man, "\n.SH ENVIRONMENT\n");
    ck_assert_ptr_nonnull(env_section);
    for (size_t i = 0; i < n; i++) {
        sh_buf_t head = SH_BUF_INIT, want = SH_BUF_INIT, lopt = SH_BUF_INIT;
        for (const char *k = o[i].key; *k; k++)
            sh_buf_append_byte(&lopt, *k == '_' ? '-' : *k);
        if (o[i].type == SH_CONFIG_BOOL) {
            sh_buf_append_str(&head, "\n.TP\n.B \\-\\-[no\\-]");
            man_escape(&head, sh_buf_peek(&lopt));
            sh_buf_append_str(&head, "\n");
        } else {
            sh_buf_append_str(&head, "\n.TP\n.BI \\-\\-");
            man_escape(&head, sh_buf_peek(&lopt));
            sh_buf_append_str(&head, "= ");
        }
        const char *at = strstr(man, sh_buf_peek(&head));
        ck_assert_msg(at != NULL, "doc/siohubd.8 lacks %s", sh_buf_peek(&head));
        ck_assert_msg(at < env_section, "%s is not under OPTIONS", o[i].key);
        /* The entry runs to the next .TP, .SS or .SH. */
        const char *end = at + sh_buf_avail(&head);
        while (*end && strncmp(end, "\n.TP", 4) != 0 && strncmp(end, "\n.SS", 4) != 0 &&
               strncmp(end, "\n.SH", 4) != 0)
            end++;
        size_t elen = (size_t)(end - at) + (*end ? 1 : 0); /* with its last '\n' */
        char *entry = sh_strndup(at, elen);
        if (*o[i].def) {
            sh_buf_append_str(&want, "\nDefault: \\fB");
            man_escape(&want, o[i].def);
            sh_buf_append_str(&want, "\\fR.\n");
        } else {
            sh_buf_append_str(&want, "\nDefault: empty.\n");
        }
        ck_assert_msg(strstr(entry, sh_buf_peek(&want)) != NULL, "%s: no '%s' in:%s", o[i].key,
                      sh_buf_peek(&want), entry);
        const char *envs[] = {o[i].env, o[i].env_alt};
        for (size_t j = 0; j < 2; j++) {
            if (!envs[j])
                continue;
            sh_buf_reset(&want);
            sh_buf_appendf(&want, "\\fB%s\\fR", envs[j]);
            ck_assert_msg(strstr(entry, sh_buf_peek(&want)) != NULL, "%s: no %s", o[i].key,
                          envs[j]);
            ck_assert_msg(strstr(env_section, envs[j]) != NULL, "ENVIRONMENT lacks %s", envs[j]);
        }
        free(entry);
        sh_buf_release(&head);
        sh_buf_release(&want);
        sh_buf_release(&lopt);
    }
    free(man);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("table");
    tcase_add_test(tc, test_table_is_sane);
    tcase_add_test(tc, test_defaults);
    suite_add_tcase(s, tc);
    tc = tcase_create("types");
    tcase_add_test(tc, test_type_bool);
    tcase_add_test(tc, test_type_duration);
    tcase_add_test(tc, test_type_size);
    tcase_add_test(tc, test_type_int);
    tcase_add_test(tc, test_type_enum);
    tcase_add_test(tc, test_type_listen);
    tcase_add_test(tc, test_type_origins);
    tcase_add_test(tc, test_type_transports);
    tcase_add_test(tc, test_type_string_and_unknown_key);
    suite_add_tcase(s, tc);
    tc = tcase_create("file");
    tcase_add_test(tc, test_good_file);
    tcase_add_test(tc, test_bom_crlf_and_no_final_newline);
    tcase_add_test(tc, test_bad_file_vectors);
    tcase_add_test(tc, test_comments_and_quotes);
    tcase_add_test(tc, test_file_limits);
    suite_add_tcase(s, tc);
    tc = tcase_create("env");
    tcase_add_test(tc, test_env_seconds);
    tcase_add_test(tc, test_env_websocket_support);
    tcase_add_test(tc, test_env_strings);
    suite_add_tcase(s, tc);
    tc = tcase_create("argv");
    tcase_add_test(tc, test_precedence);
    tcase_add_test(tc, test_long_options);
    tcase_add_test(tc, test_option_errors);
    tcase_add_test(tc, test_subcommand);
    tcase_add_test(tc, test_default_file);
    tcase_add_test(tc, test_help_and_version);
    suite_add_tcase(s, tc);
    tc = tcase_create("checks");
    tcase_add_test(tc, test_validate);
    tcase_add_test(tc, test_dump_round_trip);
    suite_add_tcase(s, tc);
    tc = tcase_create("shipped");
    tcase_add_test(tc, test_shipped_conf);
    tcase_add_test(tc, test_man_page);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
