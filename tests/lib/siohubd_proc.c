#include "siohubd_proc.h"

#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_ATTEMPTS 5
#define WAIT_MS        5000 /* for the daemon to come up, or to exit */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static const char *daemon_path(void)
{
    static char path[4096];
    const char *p = getenv("SIOHUBD");
    if (p && *p)
        return p;
    const char *dir = getenv("top_builddir");
    snprintf(path, sizeof(path), "%s/siohubd", dir && *dir ? dir : ".");
    return path;
}

/* A port of 127.0.0.1 nobody holds right now (another process may take it
 * before the daemon binds: th_siohubd_start retries). */
static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static bool accepts(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static pid_t spawn(const char *path, uint16_t port, const char *secret, const char *api_key)
{
    char listen_on[32];
    snprintf(listen_on, sizeof(listen_on), "127.0.0.1:%u", (unsigned)port);
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) /* the test ended before prctl */
            _exit(1);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execl(path, path, "-c", "/dev/null", "--listen", listen_on, "--secret", secret, "--api-key",
              api_key, "--directory", "claims", "--no-presence", (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* True once the daemon accepts on port; false when it exited (the port
 * was taken meanwhile) or did not come up in time (then it is killed). */
static bool wait_ready(pid_t pid, uint16_t port)
{
    uint64_t deadline = now_ms() + WAIT_MS;
    while (now_ms() < deadline) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return false;
        if (accepts(port))
            return true;
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return false;
}

void th_siohubd_start(th_siohubd_t *d, const char *secret, const char *api_key)
{
    const char *path = daemon_path();
    if (access(path, X_OK) != 0)
        ck_abort_msg("no siohubd at %s (set SIOHUBD or top_builddir)", path);
    for (int attempt = 0; attempt < START_ATTEMPTS; attempt++) {
        uint16_t port = free_port();
        pid_t pid = spawn(path, port, secret, api_key);
        if (wait_ready(pid, port)) {
            d->pid = pid;
            d->port = port;
            return;
        }
    }
    ck_abort_msg("siohubd (%s) did not come up", path);
}

void th_siohubd_stop(th_siohubd_t *d)
{
    if (d->pid <= 0)
        return;
    kill(d->pid, SIGTERM);
    uint64_t deadline = now_ms() + WAIT_MS;
    int status = 0;
    while (waitpid(d->pid, &status, WNOHANG) == 0) {
        if (now_ms() >= deadline) {
            kill(d->pid, SIGKILL);
            waitpid(d->pid, &status, 0);
            break;
        }
        sleep_ms(10);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "siohubd ended with status 0x%x\n", (unsigned)status);
    d->pid = 0;
}
