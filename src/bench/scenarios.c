/* bench/scenarios.c — the scenario table. A new scenario is a file
 * sc_NAME.c and one line here (see scenario.h). */
#include <string.h>

#include "bench/coord.h"
#include "bench/scenario.h"

extern const sb_scenario_t sb_scenario_idle;
extern const sb_scenario_t sb_scenario_fanout;
extern const sb_scenario_t sb_scenario_churn;

const sb_scenario_t *const sb_scenarios[] = {
    &sb_scenario_idle,
    &sb_scenario_fanout,
    &sb_scenario_churn,
    NULL,
};

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
