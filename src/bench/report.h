/* bench/report.h — a run's figures, written twice from the same calls:
 * a readable table on stdout and one JSON object, printed as the single
 * line "RESULT {json}" and, with --json FILE, written to FILE.
 *
 * Each sb_report_* call adds one key (in call order) to the JSON object and
 * one row to the table. Keys are the spec's (bench-spec.md): snake_case,
 * units in the name; a figure a scenario does not measure is not added.
 */
#ifndef SB_REPORT_H
#define SB_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "bench/buf.h"
#include "bench/hist.h"

typedef struct sb_report {
    sb_buf_t json;  /* the object's members so far */
    sb_buf_t table; /* rows so far */
} sb_report_t;

void sb_report_init(sb_report_t *r);
void sb_report_release(sb_report_t *r);

/* label: the table's text for the row (NULL: the key); unit: appended to
 * the table's value (may be NULL). */
void sb_report_str(sb_report_t *r, const char *key, const char *label, const char *value);
void sb_report_int(sb_report_t *r, const char *key, const char *label, long long value,
                   const char *unit);
/* decimals: digits after the point, in both outputs. */
void sb_report_num(sb_report_t *r, const char *key, const char *label, double value, int decimals,
                   const char *unit);
void sb_report_bool(sb_report_t *r, const char *key, const char *label, bool value);
/* "latency_ms": {"p50","p99","p999","max"} from a histogram in us. */
void sb_report_latency(sb_report_t *r, const char *key, const char *label, const sb_hist_t *h);
/* A member whose value is JSON text the caller made (an array of rounds),
 * with its own table text (may be NULL: no row). */
void sb_report_json(sb_report_t *r, const char *key, const char *json, const char *table_text);
/* A table-only line (a heading, a note). */
void sb_report_note(sb_report_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints the table and the RESULT line to out, and writes the object to
 * json_path when not NULL. 0, or -errno when the file could not be
 * written. */
int sb_report_print(const sb_report_t *r, FILE *out, const char *json_path);

#endif
