/* api/metrics.h — Prometheus text exposition (format 0.0.4) builder.
 * Each metric family is written once with its HELP and TYPE lines; label
 * values are escaped as the format requires. */
#ifndef SH_API_METRICS_H
#define SH_API_METRICS_H

#include <stdint.h>

#include "core/buf.h"

typedef enum { SH_METRIC_COUNTER, SH_METRIC_GAUGE } sh_metric_type_t;

/* Writes "# HELP name help" and "# TYPE name type". */
void sh_metrics_family(sh_buf_t *out, const char *name, sh_metric_type_t type, const char *help);
/* Writes one sample: name{label="value"} v, or name v when label is NULL. */
void sh_metrics_sample(sh_buf_t *out, const char *name, const char *label, const char *value,
                       uint64_t v);
/* A family with a single unlabelled sample. */
void sh_metrics_one(sh_buf_t *out, const char *name, sh_metric_type_t type, const char *help,
                    uint64_t v);

#endif
