/* siohubd — argv, config, context, run the loop; nothing else. */
#include <arpa/inet.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h" /* autoconf: PACKAGE_VERSION */

#include "app/app.h"
#include "auth/token_cmd.h"
#include "config/config.h"
#include "core/log.h"
#include "core/map.h"
#include "core/random.h"
#include "http/server.h"
#include "loop/loop.h"
#include "redis/reply.h"
#include "transport/ws.h"

/* How long a graceful shutdown may take before what is left is dropped:
 * close frames need a round trip and the WebSocket close linger is 1 s. */
#define SHUTDOWN_DEADLINE_MS 2000
#define SHUTDOWN_POLL_MS     10

typedef struct daemon_state {
    sh_ctx_t ctx;
    const sh_app_ops_t *ops;
    void *app;
    bool stopping;
    uint64_t stop_deadline;
    sh_timer_t stop_timer;
} daemon_state_t;

static void on_stop_poll(sh_loop_t *loop, sh_timer_t *t)
{
    daemon_state_t *d = t->data;
    size_t left = d->ops->active(d->app);
    if (left == 0 || sh_loop_now(loop) >= d->stop_deadline) {
        if (left)
            sh_warn("shutdown: %zu sessions did not close in time; dropping them", left);
        sh_loop_stop(loop);
        return;
    }
    sh_timer_start(loop, t, SHUTDOWN_POLL_MS, on_stop_poll, d);
}

static void on_stop_signal(sh_loop_t *loop, int signo, void *data)
{
    daemon_state_t *d = data;
    if (d->stopping) {
        sh_warn("signal %s again: stopping now", strsignal(signo));
        sh_loop_stop(loop);
        return;
    }
    d->stopping = true;
    sh_info("signal %s: shutting down (closing %zu sessions)", strsignal(signo),
            d->ops->active(d->app));
    d->ops->begin_shutdown(d->app);
    d->stop_deadline = sh_loop_now(loop) + SHUTDOWN_DEADLINE_MS;
    sh_timer_start(loop, &d->stop_timer, 0, on_stop_poll, d);
}

static void on_reload_signal(sh_loop_t *loop, int signo, void *data)
{
    daemon_state_t *d = data;
    if (d->ops->reload) {
        sh_info("signal %s: reloading", strsignal(signo));
        d->ops->reload(d->app);
    } else {
        sh_info("signal %s: nothing to reload for app %s", strsignal(signo), d->ops->name);
    }
}

/* The listen host as a numeric address: "" is every IPv4 address; a name
 * is resolved once, now (start-up may block; the loop is not running). */
static int numeric_host(const char *host, char *out, size_t outlen, sh_buf_t *err)
{
    if (!host[0]) {
        snprintf(out, outlen, "0.0.0.0");
        return 0;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || !res) {
        sh_buf_appendf(err, "listen: cannot resolve '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    rc =
        getnameinfo(res->ai_addr, res->ai_addrlen, out, (socklen_t)outlen, NULL, 0, NI_NUMERICHOST);
    freeaddrinfo(res);
    if (rc != 0) {
        sh_buf_appendf(err, "listen: cannot use '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    return 0;
}

static const sh_app_ops_t *app_ops(const sh_config_t *cfg)
{
    switch (cfg->app) {
    case SH_CONFIG_APP_ECHO:
        return &sh_app_echo;
    case SH_CONFIG_APP_OPENWEBUI:
        return &sh_app_openwebui;
    default:
        return NULL;
    }
}

static int run_daemon(sh_config_t *cfg)
{
    sh_buf_t err = SH_BUF_INIT;
    int status = EXIT_FAILURE;
    daemon_state_t d = {0};
    d.ctx.cfg = cfg;
    d.ops = app_ops(cfg);
    if (!d.ops) {
        fprintf(stderr, "siohubd: app '%s' is not available in this build\n",
                cfg->app == SH_CONFIG_APP_OPENWEBUI ? "openwebui" : "?");
        return EXIT_FAILURE;
    }
    uint8_t seed[16];
    sh_random_bytes(seed, sizeof(seed));
    sh_map_seed(seed);

    d.ctx.loop = sh_loop_new();
    if (!d.ctx.loop) {
        fprintf(stderr, "siohubd: cannot create the event loop\n");
        return EXIT_FAILURE;
    }
    char host[NI_MAXHOST];
    if (numeric_host(cfg->listen.host, host, sizeof(host), &err) < 0)
        goto out;
    sh_http_options_t hopts = {
        .host = host,
        .port = (uint16_t)cfg->listen.port,
        .max_connections = (unsigned)cfg->max_connections,
        .idle_timeout_ms = (unsigned)cfg->http_timeout_ms,
        /* Request headers live in this per-connection pool; 16 KiB takes
         * cookie-heavy browser requests (see DESIGN.md). */
        .header_memory = 16384,
    };
    d.ctx.http = sh_http_new(d.ctx.loop, &hopts, &err);
    if (!d.ctx.http)
        goto out;
    d.app = d.ops->create(&d.ctx, &err);
    if (!d.app)
        goto out;
    sh_loop_signal(d.ctx.loop, SIGTERM, on_stop_signal, &d);
    sh_loop_signal(d.ctx.loop, SIGINT, on_stop_signal, &d);
    sh_loop_signal(d.ctx.loop, SIGHUP, on_reload_signal, &d);
    sh_info("siohubd %s listening on %s:%u (app %s, config %s)", PACKAGE_VERSION, host,
            (unsigned)sh_http_port(d.ctx.http), d.ops->name,
            cfg->source_path ? cfg->source_path : "none: defaults, environment and options");
    if (sh_loop_run(d.ctx.loop) < 0)
        goto out;
    status = EXIT_SUCCESS;
    sh_info("stopped");
out:
    if (sh_buf_avail(&err))
        fprintf(stderr, "siohubd: %s\n", sh_buf_peek(&err));
    sh_timer_stop(d.ctx.loop, &d.stop_timer);
    /* HTTP first: it ends held requests, whose owners are app sessions. */
    sh_http_free(d.ctx.http);
    sh_loop_run_deferred(d.ctx.loop);
    if (d.app)
        d.ops->destroy(d.app);
    sh_loop_run_deferred(d.ctx.loop);
    sh_loop_free(d.ctx.loop);
    sh_msg_pool_drain();
    sh_ws_ring_pool_drain();
    sh_redis_reply_drain();
    sh_buf_release(&err);
    return status;
}

int main(int argc, char **argv, char **envp)
{
    /* Peers vanish mid-write; the error comes back from the write call. */
    signal(SIGPIPE, SIG_IGN);
    sh_config_t cfg;
    sh_config_cmd_t cmd = {0};
    sh_buf_t err = SH_BUF_INIT;
    int rc = sh_config_load(&cfg, argc, argv, envp, &cmd, &err);
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr, "siohubd: %s\n", sh_buf_peek(&err));
        sh_buf_release(&err);
        sh_config_release(&cfg);
        return rc < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
    }
    sh_buf_release(&err);
    sh_log_set_level(cfg.log_level);
    int status;
    if (cmd.name && !strcmp(cmd.name, "token")) {
        status = sh_token_cmd(&cfg, cmd.argc, cmd.argv);
    } else if (cmd.name) {
        fprintf(stderr, "siohubd: unknown command '%s' (see --help)\n", cmd.name);
        status = EXIT_FAILURE;
    } else {
        status = run_daemon(&cfg);
    }
    sh_config_release(&cfg);
    return status;
}
