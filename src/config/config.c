/* config.c — everything the settings table (options.c) drives: defaults,
 * the file parser, the environment, the command line, --help and dumps.
 *
 * Every value, wherever it comes from, goes through one setter per type
 * (set_value), so the file, the environment and argv accept exactly the
 * same syntax and report the same reasons; only the prefix that says where
 * the value came from differs. A setter parses into a temporary and writes
 * the field only on success, so a rejected value never leaves half a list
 * behind.
 */
#include "config/config.h"

/* Autoconf's config.h (PACKAGE_NAME, PACKAGE_VERSION) lives in the build
 * directory; angle brackets skip this directory, whose config.h is ours. */
#include <config.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/internal.h"
#include "core/alloc.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_FILE SYSCONFDIR "/siohub.conf"

/* Enum fields are written through an int (memcpy), so they must be one. */
_Static_assert(sizeof(sh_config_app_t) == sizeof(int), "enum size");
_Static_assert(sizeof(sh_config_jwt_alg_t) == sizeof(int), "enum size");
_Static_assert(sizeof(sh_log_level_t) == sizeof(int), "enum size");

/* The table lives in options.c. */
static const sh_config_option_t *table(void)
{
    return sh_config_options(NULL);
}

static size_t table_size(void)
{
    size_t n;
    sh_config_options(&n);
    return n;
}

/* Bit i of sh_config_t.transports is transport_names[i]. */
static const char *const transport_names[] = {"polling", "websocket", NULL};

/* Keys are at most this long; longer input is simply unknown. */
#define KEY_MAX 64

/* Copies key lower-cased, with '-' as '_', into out (KEY_MAX + 1 bytes);
 * false if too long. */
static bool normalize_key(const char *key, size_t len, char *out)
{
    if (len > KEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        out[i] = key[i] == '-' ? '_' : (char)tolower((unsigned char)key[i]);
    out[len] = '\0';
    return true;
}

static const sh_config_option_t *find_key(const char *key, size_t len)
{
    char k[KEY_MAX + 1];
    if (!normalize_key(key, len, k))
        return NULL;
    for (size_t i = 0; i < table_size(); i++)
        if (strcmp(table()[i].key, k) == 0)
            return &table()[i];
    return NULL;
}

const sh_config_option_t *sh_config_find(const char *key)
{
    return find_key(key, strlen(key));
}

/* ---- error text */

static void err_add(sh_buf_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void err_add(sh_buf_t *err, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    sh_buf_vappendf(err, fmt, ap);
    va_end(ap);
}

/* Appends 'text' for a message: at most 80 bytes, bytes that are not
 * printable ASCII as \xNN, so a hostile value cannot spoof log lines or
 * drive a terminal. */
static void quote_n(sh_buf_t *b, const char *s, size_t n)
{
    if (!b)
        return;
    size_t shown = n > 80 ? 77 : n;
    sh_buf_append_byte(b, '\'');
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            sh_buf_append_byte(b, (char)c);
        else
            sh_buf_appendf(b, "\\x%02x", c);
    }
    if (shown < n)
        sh_buf_append_str(b, "...");
    sh_buf_append_byte(b, '\'');
}

static void quote(sh_buf_t *b, const char *s)
{
    quote_n(b, s, strlen(s));
}

/* ---- value parsers: each writes a reason (without the key) to why. */

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

static const char *skip_space(const char *s)
{
    while (is_space(*s))
        s++;
    return s;
}

/* Unsigned decimal digits at *p (at least one); -ERANGE past UINT64_MAX. */
static int parse_digits(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t n = 0;
    if (*s < '0' || *s > '9')
        return -EINVAL;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (n > (UINT64_MAX - d) / 10)
            return -ERANGE;
        n = n * 10 + d;
    }
    *p = s;
    *out = n;
    return 0;
}

static int parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

static void why_not_bool(sh_buf_t *why, const char *v)
{
    quote(why, v);
    sh_buf_append_str(why, " is not a boolean (true/false, yes/no, on/off, 1/0)");
}

/* Renders n for a range message in the type's units ("1s", "4M", "7"). */
static void format_amount(sh_buf_t *b, sh_config_type_t type, int64_t n)
{
    static const struct {
        sh_config_type_t type;
        int64_t unit;
        const char *suffix;
    } units[] = {
        {SH_CONFIG_DURATION, MS_DAY, "d"},    {SH_CONFIG_DURATION, MS_HOUR, "h"},
        {SH_CONFIG_DURATION, MS_MINUTE, "m"}, {SH_CONFIG_DURATION, MS_SECOND, "s"},
        {SH_CONFIG_DURATION, 1, "ms"},        {SH_CONFIG_SIZE, GIB, "G"},
        {SH_CONFIG_SIZE, MIB, "M"},           {SH_CONFIG_SIZE, KIB, "k"},
    };
    if (n != 0) {
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            if (units[i].type == type && n % units[i].unit == 0) {
                sh_buf_appendf(b, "%" PRId64 "%s", n / units[i].unit, units[i].suffix);
                return;
            }
        }
    }
    sh_buf_appendf(b, "%" PRId64 "%s", n, type == SH_CONFIG_DURATION ? "ms" : "");
}

static void why_out_of_range(sh_buf_t *why, const sh_config_option_t *o, const char *v)
{
    quote(why, v);
    sh_buf_append_str(why, " is out of range (");
    format_amount(why, o->type, o->min);
    sh_buf_append_str(why, "..");
    format_amount(why, o->type, o->max);
    sh_buf_append_str(why, ")");
}

static void why_not_number(sh_buf_t *why, const sh_config_option_t *o, const char *v)
{
    quote(why, v);
    switch (o->type) {
    case SH_CONFIG_DURATION:
        sh_buf_append_str(why, " is not a duration (milliseconds, or with a unit: 250ms, 25s, 1m, "
                               "1h)");
        break;
    case SH_CONFIG_SIZE:
        sh_buf_append_str(why, " is not a size (bytes, or with a unit: 64k, 4M, 1G)");
        break;
    default:
        sh_buf_append_str(why, " is not a number");
        break;
    }
}

/* INT: [+-]digits. DURATION: digits [unit], unit ms/s/m/h, none = ms.
 * SIZE: digits [unit], unit k/M/G (either case, 1024-based), none = bytes.
 * -EINVAL: not the syntax; -ERANGE: too big for int64 (range checked by
 * the caller). */
static int parse_amount(const sh_config_option_t *o, const char *v, int64_t *out)
{
    const char *s = v;
    bool neg = false;
    if (o->type == SH_CONFIG_INT && (*s == '-' || *s == '+'))
        neg = *s++ == '-';
    uint64_t n;
    int rc = parse_digits(&s, &n);
    if (rc < 0)
        return rc;
    uint64_t mul = 1;
    if (o->type == SH_CONFIG_DURATION) {
        s = skip_space(s);
        if (*s == '\0' || strcmp(s, "ms") == 0)
            mul = 1;
        else if (strcmp(s, "s") == 0)
            mul = MS_SECOND;
        else if (strcmp(s, "m") == 0)
            mul = MS_MINUTE;
        else if (strcmp(s, "h") == 0)
            mul = MS_HOUR;
        else
            return -EINVAL;
    } else if (o->type == SH_CONFIG_SIZE) {
        s = skip_space(s);
        if (*s == '\0')
            mul = 1;
        else if (s[1] != '\0')
            return -EINVAL;
        else if (*s == 'k' || *s == 'K')
            mul = KIB;
        else if (*s == 'm' || *s == 'M')
            mul = MIB;
        else if (*s == 'g' || *s == 'G')
            mul = GIB;
        else
            return -EINVAL;
    } else if (*s != '\0') {
        return -EINVAL;
    }
    if (n > (uint64_t)INT64_MAX / mul)
        return -ERANGE;
    int64_t x = (int64_t)(n * mul);
    *out = neg ? -x : x;
    return 0;
}

static void store_amount(sh_config_t *cfg, const sh_config_option_t *o, int64_t n)
{
    void *field = (char *)cfg + o->offset;
    if (o->type == SH_CONFIG_SIZE) {
        uint64_t u = (uint64_t)n; /* min >= 0 for sizes: checked before */
        memcpy(field, &u, sizeof(u));
    } else {
        memcpy(field, &n, sizeof(n));
    }
}

static int parse_enum(const sh_config_option_t *o, const char *v, int *out, sh_buf_t *why)
{
    for (int i = 0; o->names[i]; i++) {
        if (strcasecmp(v, o->names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    quote(why, v);
    sh_buf_append_str(why, " is not one of: ");
    for (int i = 0; o->names[i]; i++)
        sh_buf_appendf(why, "%s%s", i ? ", " : "", o->names[i]);
    return -EINVAL;
}

/* names[i], or "(invalid)" for a value no parser produced (a field set by
 * hand), so dumps and messages never read past the table. */
static const char *enum_name(const sh_config_option_t *o, int i)
{
    for (int k = 0; o->names[k]; k++)
        if (k == i)
            return o->names[k];
    return "(invalid)";
}

static bool is_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

static int parse_listen(const char *v, sh_config_listen_t *out, sh_buf_t *why)
{
    const char *host, *colon;
    size_t hlen;
    if (*v == '[') {
        const char *close = strchr(v, ']');
        if (!close || close[1] != ':')
            goto bad;
        host = v + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
        char tmp[INET6_ADDRSTRLEN + 1];
        struct in6_addr a6;
        if (hlen == 0 || hlen >= sizeof(tmp))
            goto bad_v6;
        memcpy(tmp, host, hlen);
        tmp[hlen] = '\0';
        if (inet_pton(AF_INET6, tmp, &a6) != 1)
            goto bad_v6;
    } else {
        colon = strrchr(v, ':');
        if (!colon)
            goto bad;
        host = v;
        hlen = (size_t)(colon - v);
        if (memchr(v, ':', hlen)) {
            quote(why, v);
            sh_buf_append_str(why, ": an IPv6 address needs brackets, e.g. [::1]:8090");
            return -EINVAL;
        }
        if (hlen == 1 && *host == '*')
            hlen = 0;
        if (hlen > 253)
            goto bad;
        for (size_t i = 0; i < hlen; i++)
            if (!is_host_char(host[i]))
                goto bad;
    }
    const char *p = colon + 1;
    uint64_t port;
    if (parse_digits(&p, &port) < 0 || *p != '\0' || port > 65535 || p - (colon + 1) > 5)
        goto bad_port;
    out->host = sh_strndup(host, hlen);
    out->port = (int)port;
    return 0;
bad_port:
    quote(why, v);
    sh_buf_append_str(why, ": the port must be a number from 0 to 65535");
    return -EINVAL;
bad_v6:
    quote(why, v);
    sh_buf_append_str(why, ": not an IPv6 address between the brackets");
    return -EINVAL;
bad:
    quote(why, v);
    sh_buf_append_str(why, " is not HOST:PORT, [IPV6]:PORT or :PORT");
    return -EINVAL;
}

static void origins_release(sh_config_origins_t *o)
{
    for (size_t i = 0; i < o->n; i++)
        free(o->v[i]);
    free(o->v);
    o->v = NULL;
    o->n = 0;
    o->any = false;
}

/* One origin as a browser sends it: scheme "://" host [":" port], where
 * host may be a bracketed IPv6 literal. One trailing '/' is forgiven (it
 * never matches, and people paste URLs); anything else after the host is
 * an error because the origin could never match. */
static int parse_origin(const char *s, size_t n, char **out, sh_buf_t *why)
{
    size_t i = 0;
    if (n > 0 && s[n - 1] == '/')
        n--;
    if (i < n && isalpha((unsigned char)s[i]))
        for (i++;
             i < n && (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '.' || s[i] == '-');
             i++)
            ;
    if (i == 0 || n - i < 4 || memcmp(s + i, "://", 3) != 0)
        goto bad;
    i += 3;
    size_t host = i;
    if (s[i] == '[') {
        /* An IPv6 literal: hex digits, ':' and '.' (a mapped IPv4). */
        for (i++; i < n && (isxdigit((unsigned char)s[i]) || s[i] == ':' || s[i] == '.'); i++)
            ;
        if (i == host + 1 || i >= n || s[i] != ']')
            goto bad;
        i++;
    } else {
        while (i < n && is_host_char(s[i]))
            i++;
        if (i == host)
            goto bad;
    }
    if (i < n) {
        size_t port = ++i;
        if (s[port - 1] != ':')
            goto bad;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
        if (i != n || i == port || i - port > 5)
            goto bad;
    }
    char *o = sh_strndup(s, n);
    for (char *c = o; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    *out = o;
    return 0;
bad:
    quote_n(why, s, n);
    sh_buf_append_str(why, " is not an origin (scheme://host[:port])");
    return -EINVAL;
}

static int parse_origins(const char *v, sh_config_origins_t *out, sh_buf_t *why)
{
    sh_config_origins_t r = {0};
    size_t cap = 0;
    bool star = false;
    const char *s = v;
    while (*s) {
        size_t n = strcspn(s, ";,");
        const char *item = s;
        s += n;
        if (*s)
            s++;
        while (n > 0 && is_space(*item))
            item++, n--;
        while (n > 0 && is_space(item[n - 1]))
            n--;
        if (n == 0)
            continue;
        if (n == 1 && *item == '*') {
            star = true;
            continue;
        }
        char *o;
        if (parse_origin(item, n, &o, why) < 0) {
            origins_release(&r);
            return -EINVAL;
        }
        if (r.n == cap) {
            cap = cap ? cap * 2 : 4;
            r.v = sh_realloc(r.v, cap * sizeof(*r.v));
        }
        r.v[r.n++] = o;
    }
    if (star && r.n > 0) {
        origins_release(&r);
        sh_buf_append_str(why, "'*' cannot be combined with other origins");
        return -EINVAL;
    }
    if (!star && r.n == 0) {
        sh_buf_append_str(why, "no origin given (use * to allow any)");
        return -EINVAL;
    }
    r.any = star;
    *out = r;
    return 0;
}

static int parse_transports(const char *v, unsigned *out, sh_buf_t *why)
{
    unsigned bits = 0;
    const char *s = v;
    while (*s) {
        size_t n = strcspn(s, ",");
        const char *item = s;
        s += n;
        if (*s)
            s++;
        while (n > 0 && is_space(*item))
            item++, n--;
        while (n > 0 && is_space(item[n - 1]))
            n--;
        if (n == 0)
            continue;
        int i;
        for (i = 0; transport_names[i]; i++)
            if (strlen(transport_names[i]) == n && strncasecmp(item, transport_names[i], n) == 0)
                break;
        if (!transport_names[i]) {
            quote_n(why, item, n);
            sh_buf_append_str(why, " is not a transport (polling, websocket)");
            return -EINVAL;
        }
        bits |= 1u << i;
    }
    if (!bits) {
        sh_buf_append_str(why, "no transport given (polling, websocket)");
        return -EINVAL;
    }
    *out = bits;
    return 0;
}

/* Checks the range of n (already in the field's units) and stores it. */
static int set_amount(sh_config_t *cfg, const sh_config_option_t *o, int64_t n, const char *v,
                      sh_buf_t *why)
{
    if (n < o->min || n > o->max) {
        why_out_of_range(why, o, v);
        return -ERANGE;
    }
    store_amount(cfg, o, n);
    return 0;
}

/* The one setter: v in the file's syntax. Writes the field only on
 * success; on failure appends the reason to why (never NULL, as for every
 * parser below). SH_CONFIG_SECRET options are strings, which accept
 * anything, so their values never reach why. */
static int set_value(sh_config_t *cfg, const sh_config_option_t *o, const char *v, sh_buf_t *why)
{
    void *field = (char *)cfg + o->offset;
    switch (o->type) {
    case SH_CONFIG_STRING: {
        char **s = field;
        free(*s);
        *s = sh_strdup(v);
        return 0;
    }
    case SH_CONFIG_BOOL: {
        bool b;
        if (parse_bool(v, &b) < 0) {
            why_not_bool(why, v);
            return -EINVAL;
        }
        *(bool *)field = b;
        return 0;
    }
    case SH_CONFIG_INT:
    case SH_CONFIG_DURATION:
    case SH_CONFIG_SIZE: {
        int64_t n;
        int rc = parse_amount(o, v, &n);
        if (rc == -ERANGE) {
            why_out_of_range(why, o, v);
            return rc;
        }
        if (rc < 0) {
            why_not_number(why, o, v);
            return rc;
        }
        return set_amount(cfg, o, n, v, why);
    }
    case SH_CONFIG_ENUM: {
        int i;
        if (parse_enum(o, v, &i, why) < 0)
            return -EINVAL;
        memcpy(field, &i, sizeof(i));
        return 0;
    }
    case SH_CONFIG_LISTEN: {
        sh_config_listen_t l;
        if (parse_listen(v, &l, why) < 0)
            return -EINVAL;
        sh_config_listen_t *dst = field;
        free(dst->host);
        *dst = l;
        return 0;
    }
    case SH_CONFIG_ORIGINS: {
        sh_config_origins_t r;
        if (parse_origins(v, &r, why) < 0)
            return -EINVAL;
        origins_release(field);
        *(sh_config_origins_t *)field = r;
        return 0;
    }
    case SH_CONFIG_TRANSPORTS: {
        unsigned bits;
        if (parse_transports(v, &bits, why) < 0)
            return -EINVAL;
        *(unsigned *)field = bits;
        return 0;
    }
    }
    return -EINVAL;
}

/* ---- lifecycle */

void sh_config_init(sh_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    sh_buf_t why = SH_BUF_INIT;
    /* The unit tests check that every default parses, so this cannot
     * fail in a tested build. */
    for (size_t i = 0; i < table_size(); i++)
        set_value(cfg, &table()[i], table()[i].def, &why);
    sh_buf_release(&why);
}

void sh_config_release(sh_config_t *cfg)
{
    for (size_t i = 0; i < table_size(); i++) {
        void *field = (char *)cfg + table()[i].offset;
        switch (table()[i].type) {
        case SH_CONFIG_STRING:
            free(*(char **)field);
            *(char **)field = NULL;
            break;
        case SH_CONFIG_LISTEN:
            free(((sh_config_listen_t *)field)->host);
            ((sh_config_listen_t *)field)->host = NULL;
            break;
        case SH_CONFIG_ORIGINS:
            origins_release(field);
            break;
        default:
            break;
        }
    }
    free(cfg->source_path);
    cfg->source_path = NULL;
}

int sh_config_set(sh_config_t *cfg, const char *key, const char *value, sh_buf_t *err)
{
    const sh_config_option_t *o = sh_config_find(key);
    if (!o) {
        err_add(err, "unknown key ");
        quote(err, key);
        return -EINVAL;
    }
    sh_buf_t why = SH_BUF_INIT;
    int rc = set_value(cfg, o, value, &why);
    if (rc < 0)
        err_add(err, "%s: %s", o->key, sh_buf_peek(&why));
    sh_buf_release(&why);
    return rc;
}

/* ---- the file */

/* Value part of a line (after '=' and its spaces) into val. Quoted:
 * "..." with \" and \\, then only a comment may follow. Unquoted: up to a
 * '#' that starts the value or follows a space or tab, trailing spaces
 * trimmed. */
static int parse_file_value(const char *s, sh_buf_t *val, sh_buf_t *why)
{
    if (*s == '"') {
        for (s++; *s && *s != '"'; s++) {
            if (*s == '\\') {
                s++;
                if (*s != '"' && *s != '\\') {
                    if (*s == '\0')
                        break;
                    unsigned char c = (unsigned char)*s;
                    if (c > 0x20 && c < 0x7f)
                        sh_buf_appendf(why, "unknown escape '\\%c'", c);
                    else
                        sh_buf_appendf(why, "unknown escape (byte 0x%02x after '\\')", c);
                    sh_buf_append_str(why, " in a quoted value (only \\\" and \\\\)");
                    return -EINVAL;
                }
            }
            sh_buf_append_byte(val, *s);
        }
        if (*s != '"') {
            sh_buf_append_str(why, "unterminated quoted value");
            return -EINVAL;
        }
        s = skip_space(s + 1);
        if (*s != '\0' && *s != '#') {
            sh_buf_append_str(why, "unexpected text after the closing quote");
            return -EINVAL;
        }
        return 0;
    }
    size_t n = 0;
    while (s[n] && !(s[n] == '#' && (n == 0 || is_space(s[n - 1]))))
        n++;
    while (n > 0 && is_space(s[n - 1]))
        n--;
    sh_buf_append(val, s, n);
    return 0;
}

/* One line (no '\n', no control characters): blank, a comment or
 * "key = value". first[i] is the line that set table()[i], for duplicates.
 * On error the reason goes to why. */
static int parse_line(sh_config_t *cfg, const char *line, unsigned lineno, unsigned *first,
                      sh_buf_t *why)
{
    const char *s = skip_space(line);
    if (*s == '\0' || *s == '#')
        return 0;
    const char *key = s;
    while (*s && (isalnum((unsigned char)*s) || *s == '_' || *s == '-'))
        s++;
    size_t klen = (size_t)(s - key);
    s = skip_space(s);
    if (klen == 0 || *s != '=') {
        sh_buf_append_str(why, "expected 'key = value'");
        return -EINVAL;
    }
    const sh_config_option_t *o = find_key(key, klen);
    if (!o) {
        sh_buf_append_str(why, "unknown key ");
        quote_n(why, key, klen);
        return -EINVAL;
    }
    size_t idx = (size_t)(o - table());
    if (first[idx]) {
        sh_buf_appendf(why, "duplicate key '%s' (first set on line %u)", o->key, first[idx]);
        return -EINVAL;
    }
    first[idx] = lineno;
    sh_buf_t val = SH_BUF_INIT, reason = SH_BUF_INIT;
    int rc = parse_file_value(skip_space(s + 1), &val, &reason);
    if (rc == 0)
        rc = set_value(cfg, o, sh_buf_peek(&val), &reason);
    if (rc < 0)
        sh_buf_appendf(why, "%s: %s", o->key, sh_buf_peek(&reason));
    sh_buf_release(&val);
    sh_buf_release(&reason);
    return rc;
}

int sh_config_parse_text(sh_config_t *cfg, const char *name, const char *text, size_t len,
                         sh_buf_t *err)
{
    if (len > SH_CONFIG_MAX_FILE) {
        err_add(err, "%s: file is larger than %d KiB", name, SH_CONFIG_MAX_FILE / 1024);
        return -EFBIG;
    }
    unsigned first[SH_CONFIG_MAX_OPTIONS];
    memset(first, 0, sizeof(first));
    sh_buf_t line = SH_BUF_INIT, why = SH_BUF_INIT;
    int rc = 0;
    unsigned lineno = 0;
    const char *p = text, *end = text + len;
    /* A UTF-8 byte order mark, as some editors write. */
    if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
        p += 3;
    while (rc == 0 && p < end) {
        lineno++;
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((eol ? eol : end) - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n > SH_CONFIG_MAX_LINE) {
            sh_buf_appendf(&why, "line is longer than %d bytes", SH_CONFIG_MAX_LINE);
            rc = -EINVAL;
            break;
        }
        /* Checked here, so a value never carries a byte that could end or
         * forge a log line. */
        for (size_t i = 0; i < n && rc == 0; i++) {
            unsigned char c = (unsigned char)p[i];
            if (c == 0) {
                sh_buf_append_str(&why, "NUL byte in the file");
                rc = -EINVAL;
            } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
                sh_buf_appendf(&why, "control character 0x%02x in the line", c);
                rc = -EINVAL;
            }
        }
        if (rc == 0) {
            sh_buf_reset(&line);
            sh_buf_append(&line, p, n);
            rc = parse_line(cfg, sh_buf_peek(&line), lineno, first, &why);
        }
        p = eol ? eol + 1 : end;
    }
    if (rc < 0)
        err_add(err, "%s:%u: %s", name, lineno, sh_buf_peek(&why));
    sh_buf_release(&line);
    sh_buf_release(&why);
    return rc;
}

/* Reads the whole file (at most SH_CONFIG_MAX_FILE bytes) into out.
 * Returns 0, -errno from open/read, or -EFBIG. */
static int slurp(const char *path, sh_buf_t *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = 0;
    for (;;) {
        char *w = sh_buf_reserve(out, 64 * 1024);
        ssize_t n = read(fd, w, 64 * 1024);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        if (n == 0)
            break;
        sh_buf_commit(out, (size_t)n);
        if (sh_buf_avail(out) > SH_CONFIG_MAX_FILE) {
            rc = -EFBIG;
            break;
        }
    }
    close(fd);
    return rc;
}

static int read_file(sh_config_t *cfg, const char *path, bool missing_ok, sh_buf_t *err)
{
    sh_buf_t text = SH_BUF_INIT;
    int rc = slurp(path, &text);
    if (rc == -ENOENT && missing_ok) {
        rc = 0;
        goto out;
    }
    if (rc == -EFBIG) {
        err_add(err, "%s: file is larger than %d KiB", path, SH_CONFIG_MAX_FILE / 1024);
        goto out;
    }
    if (rc < 0) {
        err_add(err, "%s: cannot read: %s", path, strerror(-rc));
        goto out;
    }
    free(cfg->source_path);
    cfg->source_path = sh_strdup(path);
    rc = sh_config_parse_text(cfg, path, sh_buf_peek(&text), sh_buf_avail(&text), err);
out:
    sh_buf_release(&text);
    return rc;
}

int sh_config_read_file(sh_config_t *cfg, const char *path, sh_buf_t *err)
{
    return read_file(cfg, path, false, err);
}

/* ---- the environment */

static const char *env_get(char **envp, const char *name)
{
    if (!envp || !name)
        return NULL;
    size_t n = strlen(name);
    for (char **e = envp; *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

/* ENABLE_WEBSOCKET_SUPPORT=false: Open WebUI's client polls only, so
 * offer polling only; true: both (the client may start either way).
 * Used by the table in options.c. */
int sh_config_env_websocket_support(const char *value, sh_buf_t *out, sh_buf_t *err)
{
    bool b;
    if (parse_bool(value, &b) < 0) {
        why_not_bool(err, value);
        return -EINVAL;
    }
    sh_buf_append_str(out, b ? "polling,websocket" : "polling");
    return 0;
}

/* A scaled variable: a plain integer like Python's int(), spaces around
 * allowed, in units of o->env_scale. */
static int set_scaled(sh_config_t *cfg, const sh_config_option_t *o, const char *v, sh_buf_t *why)
{
    const char *s = skip_space(v);
    bool neg = false;
    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    uint64_t n;
    int rc = parse_digits(&s, &n);
    if (rc == 0 && *skip_space(s) != '\0')
        rc = -EINVAL;
    if (rc == -EINVAL) {
        quote(why, v);
        sh_buf_append_str(why, " is not a number");
        return rc;
    }
    if (rc < 0 || n > (uint64_t)INT64_MAX / (uint64_t)o->env_scale) {
        why_out_of_range(why, o, v);
        return -ERANGE;
    }
    int64_t x = (int64_t)n * o->env_scale;
    return set_amount(cfg, o, neg ? -x : x, v, why);
}

int sh_config_apply_env(sh_config_t *cfg, char **envp, sh_buf_t *err)
{
    for (size_t i = 0; i < table_size(); i++) {
        const sh_config_option_t *o = &table()[i];
        const char *name = o->env;
        const char *v = env_get(envp, name);
        if ((!v || !*v) && o->env_alt) {
            name = o->env_alt;
            v = env_get(envp, name);
        }
        if (!v || !*v)
            continue;
        sh_buf_t why = SH_BUF_INIT, mapped = SH_BUF_INIT;
        int rc;
        if (o->env_map) {
            rc = o->env_map(v, &mapped, &why);
            if (rc == 0)
                rc = set_value(cfg, o, sh_buf_peek(&mapped), &why);
        } else if (o->env_scale > 0) {
            rc = set_scaled(cfg, o, v, &why);
        } else {
            rc = set_value(cfg, o, v, &why);
        }
        if (rc < 0)
            err_add(err, "environment %s: %s", name, sh_buf_peek(&why));
        sh_buf_release(&why);
        sh_buf_release(&mapped);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- cross-field checks */

int sh_config_validate(const sh_config_t *cfg, sh_buf_t *err)
{
    const char *path = cfg->path ? cfg->path : "";
    size_t plen = strlen(path);
    if (plen > 0) {
        if (path[0] != '/' || path[plen - 1] != '/') {
            err_add(err, "path: ");
            quote(err, path);
            err_add(err, " must start and end with '/'");
            return -EINVAL;
        }
        for (size_t i = 0; i < plen; i++) {
            unsigned char c = (unsigned char)path[i];
            if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#' || c == '%') {
                err_add(err, "path: ");
                quote(err, path);
                err_add(err, " may hold only printable ASCII without spaces, '?', '#' or '%%'");
                return -EINVAL;
            }
        }
    }
    if (cfg->transports == 0) {
        err_add(err, "transports: no transport given (polling, websocket)");
        return -EINVAL;
    }
    if (cfg->ping_interval_ms <= 0 || cfg->ping_timeout_ms <= 0) {
        err_add(err, "ping_interval and ping_timeout must be greater than 0");
        return -EINVAL;
    }
    if (cfg->max_payload > cfg->output_queue_limit) {
        err_add(err,
                "max_payload (%" PRIu64 ") must not exceed output_queue_limit (%" PRIu64
                "): a client could not receive a message it may send",
                cfg->max_payload, cfg->output_queue_limit);
        return -EINVAL;
    }
    if (cfg->jwt_algorithm != SH_CONFIG_JWT_HS256) {
        const char *alg = enum_name(sh_config_find("jwt_algorithm"), (int)cfg->jwt_algorithm);
        if (!cfg->jwt_public_key || !*cfg->jwt_public_key) {
            err_add(err, "jwt_algorithm %s needs jwt_public_key", alg);
            return -EINVAL;
        }
        if (access(cfg->jwt_public_key, R_OK) < 0) {
            int e = errno;
            err_add(err, "jwt_public_key: %s: cannot read: %s", cfg->jwt_public_key, strerror(e));
            return -e;
        }
    }
    const char *dir = cfg->directory ? cfg->directory : "";
    if (strcmp(dir, "claims") != 0 && !(strncmp(dir, "file:", 5) == 0 && dir[5] != '\0')) {
        err_add(err, "directory: ");
        quote(err, dir);
        err_add(err, " is not 'claims' or 'file:PATH'");
        return -EINVAL;
    }
    if (sh_config_redis(cfg) && (!cfg->redis_url || !*cfg->redis_url)) {
        err_add(err, "websocket_manager is 'redis' but redis_url is empty "
                     "(WEBSOCKET_REDIS_URL or REDIS_URL)");
        return -EINVAL;
    }
    return 0;
}

/* ---- the command line */

typedef struct pending {
    const sh_config_option_t *o;
    const char *value;
    const char *arg; /* as given, for messages */
    size_t arglen;   /* of the option's name in arg (before any '=') */
} pending_t;

static bool is_option(const char *arg, const char *name)
{
    return strcmp(arg, name) == 0;
}

/* Splits argv into settings, -c's file, help/version and the subcommand.
 * Returns 0, 1 (help), 2 (version) or -EINVAL. */
static int parse_argv(int argc, char **argv, pending_t *pend, size_t *npend, const char **file,
                      sh_config_cmd_t *cmd, sh_buf_t *err)
{
    *npend = 0;
    int i;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (is_option(a, "--")) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == '\0')
            break;
        if (is_option(a, "-h") || is_option(a, "--help"))
            return 1;
        if (is_option(a, "-V") || is_option(a, "--version"))
            return 2;
        if (strncmp(a, "-c", 2) == 0 || is_option(a, "--config") ||
            strncmp(a, "--config=", 9) == 0) {
            if (a[1] == 'c' && a[2] != '\0')
                *file = a + 2;
            else if (a[1] == '-' && a[8] == '=')
                *file = a + 9;
            else if (i + 1 < argc)
                *file = argv[++i];
            else
                goto needs_value;
            continue;
        }
        if (a[1] != '-') {
            err_add(err, "unknown option ");
            quote(err, a);
            return -EINVAL;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const sh_config_option_t *o = find_key(name, nlen);
        const char *value = eq ? eq + 1 : NULL;
        if (!o && nlen > 3 && (strncmp(name, "no-", 3) == 0 || strncmp(name, "no_", 3) == 0)) {
            const sh_config_option_t *b = find_key(name + 3, nlen - 3);
            if (b && b->type == SH_CONFIG_BOOL) {
                if (eq) {
                    err_add(err, "option ");
                    quote_n(err, a, nlen + 2);
                    err_add(err, " takes no value");
                    return -EINVAL;
                }
                o = b;
                value = "false";
            }
        }
        if (!o) {
            err_add(err, "unknown option ");
            quote_n(err, a, nlen + 2);
            return -EINVAL;
        }
        if (!value) {
            /* A boolean takes its value only after '=', so "--presence
             * token" leaves "token" to be the subcommand. */
            if (o->type == SH_CONFIG_BOOL)
                value = "true";
            else if (i + 1 < argc)
                value = argv[++i];
            else
                goto needs_value;
        }
        pend[*npend] = (pending_t){.o = o, .value = value, .arg = a, .arglen = nlen + 2};
        (*npend)++;
    }
    if (i < argc) {
        if (!cmd) {
            err_add(err, "unexpected argument ");
            quote(err, argv[i]);
            return -EINVAL;
        }
        cmd->name = argv[i];
        cmd->argc = argc - i;
        cmd->argv = argv + i;
    }
    return 0;
needs_value:
    err_add(err, "option ");
    quote(err, argv[i]);
    err_add(err, " needs a value");
    return -EINVAL;
}

static const char *base_name(const char *progname)
{
    if (!progname || !*progname)
        return "siohubd";
    const char *slash = strrchr(progname, '/');
    return slash ? slash + 1 : progname;
}

int sh_config_load_default(sh_config_t *cfg, const char *default_file, int argc, char **argv,
                           char **envp, sh_config_cmd_t *cmd, sh_buf_t *err)
{
    sh_config_init(cfg);
    if (cmd)
        *cmd = (sh_config_cmd_t){0};
    const char *file = NULL;
    size_t npend = 0;
    pending_t *pend = sh_calloc(argc > 0 ? (size_t)argc : 1, sizeof(*pend));
    int rc = parse_argv(argc, argv, pend, &npend, &file, cmd, err);
    if (rc == 1 || rc == 2) {
        const char *prog = argc > 0 ? argv[0] : NULL;
        if (rc == 1)
            sh_config_usage(stdout, prog);
        else
            sh_config_version(stdout, prog);
        fflush(stdout);
        rc = 1;
        goto out;
    }
    if (rc < 0)
        goto out;
    if (file)
        rc = read_file(cfg, file, false, err);
    else if (default_file)
        rc = read_file(cfg, default_file, true, err);
    if (rc < 0)
        goto out;
    rc = sh_config_apply_env(cfg, envp, err);
    if (rc < 0)
        goto out;
    for (size_t i = 0; i < npend; i++) {
        sh_buf_t why = SH_BUF_INIT;
        rc = set_value(cfg, pend[i].o, pend[i].value, &why);
        if (rc < 0) {
            err_add(err, "option ");
            quote_n(err, pend[i].arg, pend[i].arglen);
            err_add(err, ": %s", sh_buf_peek(&why));
        }
        sh_buf_release(&why);
        if (rc < 0)
            goto out;
    }
    rc = sh_config_validate(cfg, err);
out:
    free(pend);
    return rc;
}

int sh_config_load(sh_config_t *cfg, int argc, char **argv, char **envp, sh_config_cmd_t *cmd,
                   sh_buf_t *err)
{
    return sh_config_load_default(cfg, DEFAULT_FILE, argc, argv, envp, cmd, err);
}

/* ---- output */

/* A key as an option's name: '_' as '-', without the leading "--". */
static void option_name(sh_buf_t *b, const char *key)
{
    for (const char *k = key; *k; k++)
        sh_buf_append_byte(b, *k == '_' ? '-' : *k);
}

static void metavar(sh_buf_t *b, const sh_config_option_t *o)
{
    if (o->metavar) {
        sh_buf_append_str(b, o->metavar);
        return;
    }
    switch (o->type) {
    case SH_CONFIG_ENUM:
        for (int i = 0; o->names[i]; i++)
            sh_buf_appendf(b, "%s%s", i ? "|" : "", o->names[i]);
        break;
    case SH_CONFIG_DURATION:
        sh_buf_append_str(b, "DURATION");
        break;
    case SH_CONFIG_SIZE:
        sh_buf_append_str(b, "SIZE");
        break;
    case SH_CONFIG_INT:
        sh_buf_append_str(b, "N");
        break;
    default:
        sh_buf_append_str(b, "VALUE");
        break;
    }
}

void sh_config_usage(FILE *out, const char *progname)
{
    sh_buf_t b = SH_BUF_INIT;
    sh_buf_appendf(&b,
                   "Usage: %s [OPTION]... [COMMAND [ARG]...]\n"
                   "Realtime gateway: a Socket.IO v5 / Engine.IO v4 server that serves Open "
                   "WebUI's\nrealtime contract. Runs in the foreground and logs to stderr.\n\n"
                   "  -c, --config=FILE  read settings from FILE (default: %s,\n"
                   "                     if it exists)\n"
                   "  -h, --help         print this help and exit\n"
                   "  -V, --version      print the version and exit\n\n"
                   "Every setting is an option and a config file key (--ping-interval and\n"
                   "ping_interval). Precedence: default < config file < environment < option.\n"
                   "DURATION: milliseconds, or with a unit: 250ms, 25s, 1m, 1h.\n"
                   "SIZE: bytes, or with a unit: 64k, 4M, 1G (1024-based).\n"
                   "A boolean option alone means true, --no-OPTION false.\n",
                   base_name(progname), DEFAULT_FILE);
    const char *group = NULL;
    for (size_t i = 0; i < table_size(); i++) {
        const sh_config_option_t *o = &table()[i];
        if (!group || strcmp(group, o->group) != 0) {
            group = o->group;
            sh_buf_appendf(&b, "\n%s:\n", group);
        }
        sh_buf_append_str(&b, o->type == SH_CONFIG_BOOL ? "  --[no-]" : "  --");
        option_name(&b, o->key);
        if (o->type != SH_CONFIG_BOOL) {
            sh_buf_append_byte(&b, '=');
            metavar(&b, o);
        }
        sh_buf_appendf(&b, "\n      %s\n      default: ", o->help);
        if (o->flags & SH_CONFIG_SECRET)
            sh_buf_append_str(&b, "none");
        else if (!*o->def)
            sh_buf_append_str(&b, "(empty)");
        else
            sh_buf_append_str(&b, o->def);
        if (o->env) {
            sh_buf_appendf(&b, "; environment: %s", o->env);
            if (o->env_alt)
                sh_buf_appendf(&b, " or %s", o->env_alt);
            if (o->env_scale == MS_SECOND)
                sh_buf_append_str(&b, " (seconds)");
        }
        sh_buf_append_byte(&b, '\n');
    }
    fputs(sh_buf_peek(&b), out);
    sh_buf_release(&b);
}

void sh_config_version(FILE *out, const char *progname)
{
    fprintf(out, "%s (%s) %s\n", base_name(progname), PACKAGE_NAME, PACKAGE_VERSION);
}

/* A string in the file's syntax: bare when that reads back the same,
 * else quoted with \" and \\. */
static void dump_string(sh_buf_t *out, const char *s)
{
    size_t n = strlen(s);
    bool bare =
        n > 0 && !is_space(s[0]) && !is_space(s[n - 1]) && s[0] != '"' && strchr(s, '#') == NULL;
    if (bare) {
        sh_buf_append(out, s, n);
        return;
    }
    sh_buf_append_byte(out, '"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            sh_buf_append_byte(out, '\\');
        sh_buf_append_byte(out, s[i]);
    }
    sh_buf_append_byte(out, '"');
}

static void dump_value(sh_buf_t *out, const sh_config_t *cfg, const sh_config_option_t *o,
                       bool show_secrets)
{
    const void *field = (const char *)cfg + o->offset;
    switch (o->type) {
    case SH_CONFIG_STRING: {
        const char *s = *(char *const *)field;
        if (!s)
            s = "";
        if ((o->flags & SH_CONFIG_SECRET) && !show_secrets && *s)
            s = "(hidden)";
        dump_string(out, s);
        break;
    }
    case SH_CONFIG_BOOL:
        sh_buf_append_str(out, *(const bool *)field ? "true" : "false");
        break;
    case SH_CONFIG_INT:
    case SH_CONFIG_DURATION: {
        int64_t n;
        memcpy(&n, field, sizeof(n));
        sh_buf_appendf(out, "%" PRId64, n);
        break;
    }
    case SH_CONFIG_SIZE: {
        uint64_t n;
        memcpy(&n, field, sizeof(n));
        sh_buf_appendf(out, "%" PRIu64, n);
        break;
    }
    case SH_CONFIG_ENUM: {
        int i;
        memcpy(&i, field, sizeof(i));
        sh_buf_append_str(out, enum_name(o, i));
        break;
    }
    case SH_CONFIG_LISTEN: {
        const sh_config_listen_t *l = field;
        const char *h = l->host ? l->host : "";
        if (strchr(h, ':'))
            sh_buf_appendf(out, "[%s]:%d", h, l->port);
        else
            sh_buf_appendf(out, "%s:%d", h, l->port);
        break;
    }
    case SH_CONFIG_ORIGINS: {
        const sh_config_origins_t *r = field;
        if (r->any)
            sh_buf_append_str(out, "*");
        for (size_t i = 0; i < r->n; i++)
            sh_buf_appendf(out, "%s%s", i ? ";" : "", r->v[i]);
        break;
    }
    case SH_CONFIG_TRANSPORTS: {
        unsigned bits = *(const unsigned *)field;
        bool first = true;
        for (int i = 0; transport_names[i]; i++) {
            if (bits & (1u << i)) {
                sh_buf_appendf(out, "%s%s", first ? "" : ",", transport_names[i]);
                first = false;
            }
        }
        break;
    }
    }
}

void sh_config_dump(const sh_config_t *cfg, sh_buf_t *out, bool show_secrets)
{
    for (size_t i = 0; i < table_size(); i++) {
        sh_buf_appendf(out, "%s = ", table()[i].key);
        dump_value(out, cfg, &table()[i], show_secrets);
        sh_buf_append_byte(out, '\n');
    }
}

/* ---- derived values */

const char *sh_config_path(const sh_config_t *cfg)
{
    if (cfg->path && *cfg->path)
        return cfg->path;
    return cfg->app == SH_CONFIG_APP_ECHO ? "/socket.io/" : "/ws/socket.io/";
}

const char *sh_config_directory_file(const sh_config_t *cfg)
{
    if (cfg->directory && strncmp(cfg->directory, "file:", 5) == 0)
        return cfg->directory + 5;
    return NULL;
}

bool sh_config_redis(const sh_config_t *cfg)
{
    /* Open WebUI compares exactly: WEBSOCKET_MANAGER == "redis". */
    return cfg->websocket_manager && strcmp(cfg->websocket_manager, "redis") == 0;
}

bool sh_config_origin_allowed(const sh_config_t *cfg, const char *origin, size_t len)
{
    const sh_config_origins_t *r = &cfg->cors_allow_origin;
    if (r->any)
        return true;
    for (size_t i = 0; i < r->n; i++)
        if (strlen(r->v[i]) == len && strncasecmp(r->v[i], origin, len) == 0)
            return true;
    return false;
}
