/* bench/scenarios.c — the scenario table. A new scenario is a file
 * sc_NAME.c and one line here (see scenario.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench/coord.h"
#include "bench/scenario.h"
#include "bench/sysstat.h"

extern const sb_scenario_t sb_scenario_idle;
extern const sb_scenario_t sb_scenario_fanout;
extern const sb_scenario_t sb_scenario_churn;
extern const sb_scenario_t sb_scenario_chat;
extern const sb_scenario_t sb_scenario_polling;
extern const sb_scenario_t sb_scenario_sse;

/* One line each (clang-format would pack them), so that scenarios added
 * on different branches merge. */
/* clang-format off */
const sb_scenario_t *const sb_scenarios[] = {
    &sb_scenario_idle,
    &sb_scenario_fanout,
    &sb_scenario_churn,
    &sb_scenario_chat,
    &sb_scenario_polling,
    &sb_scenario_sse,
    NULL,
};
/* clang-format on */

const sb_scenario_t *sb_scenario_find(const char *name)
{
    for (const sb_scenario_t *const *s = sb_scenarios; *s; s++)
        if (!strcmp((*s)->name, name))
            return *s;
    return NULL;
}

void sb_scenario_report_head(const sb_coord_t *co, sb_report_t *r, long long now_connected)
{
    const sb_opts_t *o = co->o;
    sb_report_str(r, "scenario", NULL, o->scenario->name);
    sb_report_str(r, "protocol", NULL, sb_protocol_name(o->protocol));
    if (o->protocol == SB_PROTO_SOCKETIO)
        sb_report_str(r, "transport", NULL, sb_transport_name(o->transport));
    sb_report_int(r, "clients", NULL, o->clients, NULL);
    sb_report_int(r, "connected", NULL,
                  now_connected >= 0 ? now_connected : (long long)co->ready.connected, NULL);
    sb_report_int(r, "procs", NULL, o->procs, NULL);
    sb_report_int(r, "sources", NULL, o->sources, NULL);
}

bool sb_scenario_all_connected(const sb_coord_t *co, sb_report_t *r, int rc, const char *what)
{
    if (rc == 0 && co->ready.connected == co->o->clients)
        return true;
    sb_scenario_report_head(co, r, -1);
    sb_report_int(r, "errors", NULL, (long long)co->ready.failed, NULL);
    sb_report_note(r, "  not every %s connected%s%s", what, co->ready.first_error[0] ? ": " : "",
                   co->ready.first_error);
    return false;
}

void sb_scenario_report_cpu(const sb_coord_t *co, sb_report_t *r, const char *phase,
                            const sb_sample_t *s0, const sb_sample_t *s1, uint64_t count,
                            const char *per_key, const char *per_label, int decimals)
{
    if (!co->o->npids || !s0->have_server || !s1->have_server)
        return;
    double cpu = s1->cpu_s - s0->cpu_s;
    char cpu_key[64], sys_key[64];
    snprintf(cpu_key, sizeof(cpu_key), "%s%sserver_cpu_s", phase ? phase : "", phase ? "_" : "");
    snprintf(sys_key, sizeof(sys_key), "%s%sserver_sys_s", phase ? phase : "", phase ? "_" : "");
    /* A phase's rows are indented under its heading. */
    sb_report_num(r, cpu_key, phase ? "  server CPU" : "server CPU", cpu, 2, "s");
    sb_report_num(r, sys_key, phase ? "    of which system" : "  of which system",
                  s1->sys_s - s0->sys_s, 2, "s");
    sb_report_num(r, per_key, per_label, count ? cpu * 1e6 / (double)count : NAN, decimals, "us");
}
