/* bench/report.c — the table and the RESULT line (see report.h). */
#include "bench/report.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define LABEL_WIDTH 36

void sb_report_init(sb_report_t *r)
{
    memset(r, 0, sizeof(*r));
}

void sb_report_release(sb_report_t *r)
{
    sb_buf_release(&r->json);
    sb_buf_release(&r->table);
}

/* Appends "key": to the object. Keys are ours: no escaping needed. */
static void json_key(sb_report_t *r, const char *key)
{
    sb_buf_printf(&r->json, "%s\"%s\":", r->json.len ? "," : "", key);
}

static void json_str(sb_buf_t *b, const char *s)
{
    sb_buf_puts(b, "\"");
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            sb_buf_printf(b, "\\%c", ch);
        else if (ch < 0x20)
            sb_buf_printf(b, "\\u%04x", ch);
        else
            sb_buf_append(b, s, 1);
    }
    sb_buf_puts(b, "\"");
}

static void row(sb_report_t *r, const char *key, const char *label, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void row(sb_report_t *r, const char *key, const char *label, const char *fmt, ...)
{
    char value[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    sb_buf_printf(&r->table, "  %-*s %s\n", LABEL_WIDTH, label ? label : key, value);
}

void sb_report_str(sb_report_t *r, const char *key, const char *label, const char *value)
{
    json_key(r, key);
    json_str(&r->json, value);
    row(r, key, label, "%s", value);
}

void sb_report_int(sb_report_t *r, const char *key, const char *label, long long value,
                   const char *unit)
{
    json_key(r, key);
    sb_buf_printf(&r->json, "%lld", value);
    row(r, key, label, "%lld%s%s", value, unit ? " " : "", unit ? unit : "");
}

void sb_report_num(sb_report_t *r, const char *key, const char *label, double value, int decimals,
                   const char *unit)
{
    json_key(r, key);
    if (isfinite(value))
        sb_buf_printf(&r->json, "%.*f", decimals, value);
    else
        sb_buf_puts(&r->json, "null");
    row(r, key, label, "%.*f%s%s", decimals, value, unit ? " " : "", unit ? unit : "");
}

void sb_report_bool(sb_report_t *r, const char *key, const char *label, bool value)
{
    json_key(r, key);
    sb_buf_puts(&r->json, value ? "true" : "false");
    row(r, key, label, "%s", value ? "yes" : "no");
}

void sb_report_latency(sb_report_t *r, const char *key, const char *label, const sb_hist_t *h)
{
    double p50 = (double)sb_hist_pct(h, 50) / 1e3, p99 = (double)sb_hist_pct(h, 99) / 1e3;
    double p999 = (double)sb_hist_pct(h, 99.9) / 1e3, max = (double)h->max / 1e3;
    json_key(r, key);
    sb_buf_printf(&r->json, "{\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f}", p50, p99,
                  p999, max);
    row(r, key, label, "p50 %.3f, p99 %.3f, p99.9 %.3f, max %.3f ms (%llu samples)", p50, p99, p999,
        max, (unsigned long long)h->n);
}

void sb_report_json(sb_report_t *r, const char *key, const char *json, const char *table_text)
{
    json_key(r, key);
    sb_buf_puts(&r->json, json);
    if (table_text)
        sb_buf_puts(&r->table, table_text);
}

void sb_report_note(sb_report_t *r, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    sb_buf_printf(&r->table, "%s\n", line);
}

int sb_report_print(const sb_report_t *r, FILE *out, const char *json_path)
{
    fwrite(sb_buf_head(&r->table), 1, sb_buf_avail(&r->table), out);
    fprintf(out, "RESULT {%.*s}\n", (int)sb_buf_avail(&r->json), sb_buf_head(&r->json));
    fflush(out);
    if (!json_path)
        return 0;
    FILE *f = fopen(json_path, "w");
    if (!f)
        return -errno;
    fprintf(f, "{%.*s}\n", (int)sb_buf_avail(&r->json), sb_buf_head(&r->json));
    return fclose(f) ? -errno : 0;
}
