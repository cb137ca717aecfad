/* auth/token_cmd.c — the `token` subcommand (see token_cmd.h). Options are
 * parsed by hand rather than with getopt, whose global state would make a
 * second call in the same process (the tests) misbehave. */
#include "auth/token_cmd.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "auth/token.h"
#include "core/alloc.h"
#include "core/buf.h"

#define PREFIX "siohubd token: "

/* 100 years: any longer is a typo. */
#define TTL_MAX (100LL * 366 * 24 * 3600)

typedef struct token_args {
    const char *user, *name, *email, *role, *channels, *ttl;
    bool help;
} token_args_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: siohubd [OPTIONS] token --user ID [--name N] [--email E] [--role R]\n"
            "                               [--channels c1,c2] [--ttl SECONDS]\n"
            "Prints an HS256 token signed with the configured secret (WEBUI_SECRET_KEY).\n"
            "--ttl defaults to %d seconds; --ttl 0 mints a token that never expires.\n",
            SH_TOKEN_CMD_DEFAULT_TTL);
}

/* Fills a from argv[1..]; 0, or -EINVAL after printing why to stderr. */
static int parse_args(int argc, char **argv, token_args_t *a)
{
    static const struct {
        const char *name;
        size_t offset;
    } opts[] = {
        {"user", offsetof(token_args_t, user)},         {"name", offsetof(token_args_t, name)},
        {"email", offsetof(token_args_t, email)},       {"role", offsetof(token_args_t, role)},
        {"channels", offsetof(token_args_t, channels)}, {"ttl", offsetof(token_args_t, ttl)},
    };
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            a->help = true;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, PREFIX "unexpected argument '%s'\n", arg);
            return -EINVAL;
        }
        const char *key = arg + 2;
        const char *eq = strchr(key, '=');
        size_t klen = eq ? (size_t)(eq - key) : strlen(key);
        size_t k;
        for (k = 0; k < sizeof(opts) / sizeof(opts[0]); k++)
            if (strlen(opts[k].name) == klen && strncmp(opts[k].name, key, klen) == 0)
                break;
        if (k == sizeof(opts) / sizeof(opts[0])) {
            fprintf(stderr, PREFIX "unknown option '--%.*s'\n", (int)klen, key);
            return -EINVAL;
        }
        const char *value;
        if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            fprintf(stderr, PREFIX "--%s needs a value\n", opts[k].name);
            return -EINVAL;
        }
        const char **slot = (const char **)((char *)a + opts[k].offset);
        if (*slot) {
            fprintf(stderr, PREFIX "--%s given twice\n", opts[k].name);
            return -EINVAL;
        }
        *slot = value;
    }
    return 0;
}

static int parse_ttl(const char *s, int64_t *ttl)
{
    if (!s) {
        *ttl = SH_TOKEN_CMD_DEFAULT_TTL;
        return 0;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v > TTL_MAX) {
        fprintf(stderr, PREFIX "--ttl: '%s' is not a number of seconds (0 to %lld)\n", s,
                (long long)TTL_MAX);
        return -EINVAL;
    }
    *ttl = v;
    return 0;
}

/* "c1,c2" as a JSON array; NULL after printing why. */
static json_t *parse_channels(const char *s)
{
    json_t *list = json_array();
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 0 || n > SH_TOKEN_MAX_ID) {
            fprintf(stderr, PREFIX "--channels: %s channel id in '%s'\n",
                    n ? "too long a" : "empty", s);
            json_decref(list);
            return NULL;
        }
        json_t *c = json_stringn(p, n);
        if (!c) {
            fprintf(stderr, PREFIX "--channels: not UTF-8\n");
            json_decref(list);
            return NULL;
        }
        json_array_append_new(list, c);
        if (!comma)
            return list;
        p = comma + 1;
    }
}

/* Adds key = value to claims; false (after printing why) when value is not
 * UTF-8, which jansson refuses. */
static bool set_string(json_t *claims, const char *key, const char *value)
{
    json_t *v = json_string(value);
    if (!v) {
        fprintf(stderr, PREFIX "--%s: not UTF-8\n", key);
        return false;
    }
    json_object_set_new(claims, key, v);
    return true;
}

int sh_token_cmd(const sh_config_t *cfg, int argc, char **argv)
{
    token_args_t a = {0};
    if (parse_args(argc, argv, &a) < 0) {
        usage(stderr);
        return 2;
    }
    if (a.help) {
        usage(stdout);
        return 0;
    }
    if (!a.user || !*a.user) {
        fprintf(stderr, PREFIX "--user ID is required\n");
        usage(stderr);
        return 2;
    }
    if (strlen(a.user) > SH_TOKEN_MAX_ID) {
        fprintf(stderr, PREFIX "--user: the id is longer than %d bytes\n", SH_TOKEN_MAX_ID);
        return 2;
    }
    int64_t ttl;
    if (parse_ttl(a.ttl, &ttl) < 0)
        return 2;

    if (cfg->jwt_algorithm != SH_CONFIG_JWT_HS256) {
        fprintf(stderr,
                PREFIX "jwt_algorithm is %s, and siohub holds only its public key: "
                       "this command mints HS256 tokens only\n",
                cfg->jwt_algorithm == SH_CONFIG_JWT_RS256 ? "RS256" : "ES256");
        return 1;
    }
    if (!cfg->secret || !*cfg->secret) {
        fprintf(stderr, PREFIX "no secret configured: set WEBUI_SECRET_KEY "
                               "(or secret in siohub.conf)\n");
        return 1;
    }

    int status = 2;
    char *tok = NULL;
    sh_buf_t err = SH_BUF_INIT;
    json_t *claims = json_object();
    if (!set_string(claims, "id", a.user) || (a.name && !set_string(claims, "name", a.name)) ||
        (a.email && !set_string(claims, "email", a.email)) ||
        (a.role && !set_string(claims, "role", a.role)))
        goto done;
    if (a.channels) {
        json_t *list = parse_channels(a.channels);
        if (!list)
            goto done;
        json_object_set_new(claims, "channels", list);
    }
    status = 1;
    if (sh_token_mint(cfg->secret, claims, (int64_t)time(NULL), ttl, &tok, &err) < 0) {
        fprintf(stderr, PREFIX "%s\n", sh_buf_peek(&err));
        goto done;
    }
    if (printf("%s\n", tok) < 0 || fflush(stdout) != 0) {
        fprintf(stderr, PREFIX "cannot write to stdout: %s\n", strerror(errno));
        goto done;
    }
    status = 0;
done:
    free(tok);
    sh_buf_release(&err);
    json_decref(claims);
    return status;
}
