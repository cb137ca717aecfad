/* tests/lib/siohubd_proc.h — the built siohubd in a child process on a
 * free 127.0.0.1 port, for the unit tests of programs that talk to it (the
 * bench's clients and coordinator): the real server, not a stand-in.
 *
 * The binary is $SIOHUBD, else $top_builddir/siohubd (make check exports
 * top_builddir), else ./siohubd. The child dies with the test process
 * (PR_SET_PDEATHSIG), however the test ends; its output goes to
 * /dev/null. Helpers that cannot go on fail the test with ck_abort_msg.
 */
#ifndef SH_TESTS_SIOHUBD_PROC_H
#define SH_TESTS_SIOHUBD_PROC_H

#include <stdint.h>
#include <sys/types.h>

typedef struct th_siohubd {
    pid_t pid; /* 0: not running */
    uint16_t port;
} th_siohubd_t;

/* Starts siohubd with no configuration file, verifying HS256 tokens with
 * secret, its API behind api_key, users taken from their tokens' claims
 * and no presence; returns once it accepts connections. A port taken
 * between picking it and the daemon's bind is retried with another. */
void th_siohubd_start(th_siohubd_t *d, const char *secret, const char *api_key);
/* SIGTERM, SIGKILL if it has not exited within a few seconds, and reaps
 * it; an exit other than status 0 is reported on stderr. Idempotent. */
void th_siohubd_stop(th_siohubd_t *d);

#endif
