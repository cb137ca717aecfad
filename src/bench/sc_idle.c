/* bench/sc_idle.c — idle: N clients connect (Socket.IO over the chosen
 * transport, or raw-ws) and stay idle for --duration, answering pings.
 * Measures the server's memory per connection, in user space (VmRSS of
 * --pid) and in the kernel (TCP socket buffer memory of /proc/net/sockstat,
 * and the slab where socket objects live, from /proc/meminfo: the host's,
 * both ends of each connection), separately: sampled before any client,
 * and after the clients connected, settled and idled.
 *
 * Checks: every client connected and none was lost while idle.
 */
#include <errno.h>
#include <math.h>

#include "bench/coord.h"
#include "bench/scenario.h"
#include "bench/sysstat.h"
#include "bench/util.h"

static double per_conn(long long before, long long after, uint64_t conns)
{
    if (before < 0 || after < 0 || !conns)
        return NAN;
    return (double)(after - before) / (double)conns;
}

static int idle_run(sb_coord_t *co, sb_report_t *r)
{
    const sb_opts_t *o = co->o;
    sb_sample_t before, connected, idle0, after;
    sb_stats_t st = {0};
    sb_sample_take(&before, o->pids, o->npids);
    sb_coord_start(co);
    int rc = sb_coord_wait_connected(co);
    sb_sample_take(&connected, o->pids, o->npids);
    if (rc == 0)
        rc = sb_coord_begin(co, NULL, 0);
    if (rc == 0)
        rc = sb_coord_run_until(co, sb_now_ns() + (uint64_t)(o->settle_s * 1e9), NULL, NULL);
    sb_sample_take(&idle0, o->pids, o->npids);
    if (rc == 0)
        rc = sb_coord_run_until(co, sb_now_ns() + (uint64_t)(o->duration_s * 1e9), NULL, NULL);
    sb_sample_take(&after, o->pids, o->npids);
    if (rc == 0)
        rc = sb_coord_end(co, NULL, 0, &st);

    uint64_t conns = co->ready.connected;
    double connect_s = (double)(connected.t_ns - before.t_ns) / 1e9;
    sb_scenario_report_head(co, r, rc == 0 ? (long long)st.connected : -1);
    sb_report_num(r, "duration_s", "idle for", (double)(after.t_ns - idle0.t_ns) / 1e9, 2, "s");
    sb_report_num(r, "connect_s", "all connected in", connect_s, 2, "s");
    sb_report_latency(r, "connect_latency_ms", "connect latency", &co->ready.connect);
    if (o->npids && before.have_server && after.have_server) {
        sb_report_int(r, "server_rss_kib_before", "server RSS before", before.rss_kib, "KiB");
        sb_report_int(r, "server_rss_kib_after", "server RSS after", after.rss_kib, "KiB");
        sb_report_num(r, "rss_kib_per_conn", "server RSS per connection",
                      per_conn(before.rss_kib, after.rss_kib, conns), 2, "KiB");
        sb_report_num(r, "server_connect_cpu_s", "server CPU connecting",
                      connected.cpu_s - before.cpu_s, 2, "s");
        sb_report_num(r, "server_cpu_s", "server CPU while idle", after.cpu_s - idle0.cpu_s, 2,
                      "s");
    }
    if (before.sock_kib >= 0 && after.sock_kib >= 0) {
        sb_report_int(r, "kernel_sock_kib_before", "kernel TCP memory before", before.sock_kib,
                      "KiB");
        sb_report_int(r, "kernel_sock_kib_after", "kernel TCP memory after", after.sock_kib, "KiB");
        sb_report_num(r, "kernel_kib_per_conn", "kernel TCP memory per connection",
                      per_conn(before.sock_kib, after.sock_kib, conns), 2, "KiB");
    }
    if (before.slab_kib >= 0 && after.slab_kib >= 0) {
        sb_report_int(r, "kernel_slab_kib_before", "kernel slab before", before.slab_kib, "KiB");
        sb_report_int(r, "kernel_slab_kib_after", "kernel slab after", after.slab_kib, "KiB");
        sb_report_num(r, "kernel_slab_kib_per_conn", "kernel slab per connection",
                      per_conn(before.slab_kib, after.slab_kib, conns), 2, "KiB");
    }
    /* The workers count each failed or lost client as an error. */
    uint64_t errors = co->ready.errors + st.errors;
    sb_report_int(r, "errors", NULL, (long long)errors, NULL);
    if (co->ready.first_error[0] || st.first_error[0])
        sb_report_note(r, "  first error: %s",
                       co->ready.first_error[0] ? co->ready.first_error : st.first_error);
    if (rc < 0)
        sb_report_note(r, "  run stopped: %s",
                       rc == -ETIMEDOUT ? "connect timeout"
                       : rc == -EINTR   ? "interrupted"
                                        : "a worker died");
    bool ok = rc == 0 && conns == o->clients && st.connected == o->clients && errors == 0;
    sb_report_bool(r, "ok", "all connected, none lost", ok);
    return ok ? 0 : 1;
}

const sb_scenario_t sb_scenario_idle = {
    .name = "idle",
    .summary = "N clients connect and idle: server RSS and kernel TCP memory per connection",
    .raw_ws = true,
    .default_clients = 1000,
    .run = idle_run,
};
