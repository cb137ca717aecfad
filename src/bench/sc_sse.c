/* bench/sc_sse.c — sse: fan-out to siohubd's SSE clients (GET <path>sse
 * with "Authorization: Bearer <token>", events as id/event/data blocks):
 * --clients streams of one user, the publisher POSTing /api/v1/emit at
 * --rate as in fanout, and fanout's checks and figures (each message once,
 * in order; delivery rate, latency, server CPU per delivery; --find-max).
 *
 * It is fanout over the sse transport, under its own name so that a run's
 * report says what it measured: once the options are read, the run uses a
 * copy of fanout's table with this name, so every hook fanout has (now or
 * later) is the one that runs. With --protocol raw-sse the streams are
 * plain EventSource subscribers of --sub-path (nchan, the floor server),
 * each data: event one message, published as raw-ws's are.
 */
#include "bench/scenario.h"
#include "bench/util.h"

extern const sb_scenario_t sb_scenario_fanout;
extern const sb_scenario_t sb_scenario_sse;

static void sse_complete(sb_opts_t *o, bool clients_set)
{
    if (o->transport == SB_TRANSPORT_POLLING)
        sb_cli_bad("the sse scenario is siohubd's SSE endpoint, not polling");
    o->transport = SB_TRANSPORT_SSE;
    if (sb_scenario_fanout.complete)
        sb_scenario_fanout.complete(o, clients_set);
    /* The options own it; workers get it by fork. */
    sb_scenario_t *run = sb_xcalloc(1, sizeof(*run));
    *run = sb_scenario_fanout;
    run->name = sb_scenario_sse.name;
    run->summary = sb_scenario_sse.summary;
    run->raw_ws = false;
    run->complete = NULL;
    o->scenario_buf = run;
    o->scenario = run;
}

/* Never runs: the run is fanout's (see sse_complete). */
static int sse_run(sb_coord_t *co, sb_report_t *r)
{
    return sb_scenario_fanout.run(co, r);
}

const sb_scenario_t sb_scenario_sse = {
    .name = "sse",
    .raw_sse = true,
    .summary = "fanout to siohubd's SSE streams (GET <path>sse, Bearer token), as fanout",
    .default_clients = 1000,
    .complete = sse_complete,
    .run = sse_run,
};
