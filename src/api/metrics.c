#include "api/metrics.h"

void sh_metrics_family(sh_buf_t *out, const char *name, sh_metric_type_t type, const char *help)
{
    sh_buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                   type == SH_METRIC_COUNTER ? "counter" : "gauge");
}

void sh_metrics_sample(sh_buf_t *out, const char *name, const char *label, const char *value,
                       uint64_t v)
{
    if (!label) {
        sh_buf_appendf(out, "%s %llu\n", name, (unsigned long long)v);
        return;
    }
    sh_buf_appendf(out, "%s{%s=\"", name, label);
    for (const char *p = value; *p; p++) {
        if (*p == '\\' || *p == '"')
            sh_buf_append_byte(out, '\\');
        if (*p == '\n') {
            sh_buf_append_str(out, "\\n");
            continue;
        }
        sh_buf_append_byte(out, *p);
    }
    sh_buf_appendf(out, "\"} %llu\n", (unsigned long long)v);
}

void sh_metrics_one(sh_buf_t *out, const char *name, sh_metric_type_t type, const char *help,
                    uint64_t v)
{
    sh_metrics_family(out, name, type, help);
    sh_metrics_sample(out, name, NULL, NULL, v);
}
