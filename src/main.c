/* siohubd — argv, config, context, run the loop; nothing else. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/log.h"
#include "loop/loop.h"

static void on_stop_signal(sh_loop_t *loop, int signo, void *data)
{
    (void)data;
    sh_info("signal %d: shutting down", signo);
    sh_loop_stop(loop);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    sh_loop_t *loop = sh_loop_new();
    if (!loop)
        return EXIT_FAILURE;
    sh_loop_signal(loop, SIGTERM, on_stop_signal, NULL);
    sh_loop_signal(loop, SIGINT, on_stop_signal, NULL);
    int rc = sh_loop_run(loop);
    sh_loop_free(loop);
    return rc < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
