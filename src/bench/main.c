/* bench/main.c — siohub-bench: argv, the token, signals, the scenario's
 * run, the report; nothing else (see scenario.h for how a run goes). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench/cli.h"
#include "bench/coord.h"
#include "bench/jwt.h"
#include "bench/report.h"
#include "bench/scenario.h"
#include "bench/util.h"

#define TOKEN_TTL_S 86400

static volatile sig_atomic_t interrupted;

static void on_signal(int signo)
{
    (void)signo;
    interrupted = 1;
}

int main(int argc, char **argv)
{
    sb_opts_t o;
    sb_cli_parse(&o, argc, argv);
    if (o.scenario->prepare && o.scenario->prepare(&o) < 0) {
        sb_cli_release(&o);
        return 2;
    }
    if (o.secret && !o.token)
        o.minted_token = sb_jwt_user(o.secret, o.user, NULL, NULL, 0, TOKEN_TTL_S);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    sb_coord_t co;
    sb_report_t r;
    sb_coord_init(&co, &o, &interrupted);
    sb_report_init(&r);
    int rc = o.scenario->run(&co, &r);
    sb_coord_finish(&co);
    if (interrupted) {
        sb_report_note(&r, "  interrupted");
        rc = 1;
    }
    int wrc = sb_report_print(&r, stdout, o.json_path);
    if (wrc < 0) {
        fprintf(stderr, SB_PROG ": cannot write %s: %s\n", o.json_path, strerror(-wrc));
        rc = 1;
    }
    sb_report_release(&r);
    sb_coord_release(&co);
    sb_cli_release(&o);
    return rc;
}
