/* bench/events.c — see events.h. */
#include "bench/events.h"

#include <string.h>

bool sb_event_array_body(const char *p, size_t n, const char **body, size_t *blen)
{
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\n' || p[n - 1] == '\r'))
        n--;
    if (n < 2 || p[0] != '[' || p[n - 1] != ']')
        return false;
    *body = p + 1;
    *blen = n - 2;
    return true;
}

bool sb_event_split(const char *p, size_t n, const char **name, size_t *nlen, const char **args,
                    size_t *alen)
{
    const char *b;
    size_t bl;
    if (!sb_event_array_body(p, n, &b, &bl) || bl < 2 || b[0] != '"')
        return false;
    size_t i = 1;
    while (i < bl && b[i] != '"')
        i += b[i] == '\\' ? 2 : 1;
    if (i >= bl)
        return false;
    *name = b + 1;
    *nlen = i - 1;
    i++;
    if (i < bl && b[i] == ',')
        i++;
    *args = b + i;
    *alen = bl - i;
    return true;
}

bool sb_event_sid(const char *p, size_t n, char *sid, size_t size)
{
    static const char key[] = "\"sid\":\"";
    const char *s = memmem(p, n, key, sizeof(key) - 1);
    if (!s)
        return false;
    s += sizeof(key) - 1;
    const char *e = memchr(s, '"', (size_t)(p + n - s));
    if (!e || (size_t)(e - s) >= size)
        return false;
    memcpy(sid, s, (size_t)(e - s));
    sid[e - s] = '\0';
    return true;
}

bool sb_sse_field(const char *p, size_t n, const char *name, const char **v, size_t *vl)
{
    size_t nl = strlen(name);
    const char *end = p + n;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nl && !memcmp(p, name, nl) && p[nl] == ':') {
            const char *s = p + nl + 1;
            if (s < eol && *s == ' ')
                s++;
            *v = s;
            *vl = (size_t)(eol - s);
            return true;
        }
        if (eol == end)
            break;
        p = eol + 1;
    }
    return false;
}
