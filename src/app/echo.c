/* The echo app: what the official Engine.IO and Socket.IO test suites
 * expect of a server, so anyone can check siohub's conformance.
 *  - /engine.io/: raw Engine.IO; every message comes back as it was sent.
 *  - the Socket.IO path (default /socket.io/), namespaces "/" and
 *    "/custom": on connect emit "auth" with the CONNECT payload; "message"
 *    is answered by "message-back" with the same arguments;
 *    "message-with-ack" is acknowledged with the same arguments.
 *  - Beyond the suites, to exercise server-to-client acks: "request-ack"
 *    makes the server emit "ack-request" with the same arguments and an ack
 *    id; the client's answer comes back as "ack-response".
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "core/alloc.h"
#include "core/log.h"
#include "engineio/packet.h"
#include "engineio/server.h"
#include "hub/hub.h"
#include "socketio/server.h"

typedef struct echo_app {
    sh_ctx_t *ctx;
    sh_eio_server_t *raw;
    sh_eio_server_t *eio;
    sh_sio_server_t *sio;
    sh_hub_t *hub;
    char **origins;
} echo_app_t;

/* ---- raw Engine.IO echo ---- */

static void raw_on_message(sh_eio_session_t *s, const char *msg, size_t len, bool binary,
                           void *data)
{
    sh_eio_send(s,
                binary ? sh_eio_msg_binary(msg, len) : sh_eio_msg_text(SH_EIO_MESSAGE, msg, len));
}

static const sh_eio_handler_t raw_handler = {
    .on_message = raw_on_message,
};

/* ---- Socket.IO echo ---- */

static void echo_on_connected(sh_sio_socket_t *sock, json_t *auth, void *data)
{
    json_t *args = json_array();
    json_array_append_new(args, auth ? json_incref(auth) : json_object());
    sh_sio_socket_emit(sock, "auth", args, NULL, 0, NULL, NULL, NULL);
    json_decref(args);
}

static void on_client_ack(sh_sio_server_t *srv, const char *socket_id, int status,
                          const sh_sio_args_t *args, void *data)
{
    if (status < 0)
        return;
    sh_sio_socket_t *sock = sh_sio_server_socket(srv, socket_id);
    if (sock)
        sh_sio_socket_emit(sock, "ack-response", args->args, args->bins, args->nbins, NULL, NULL,
                           NULL);
}

static void echo_on_event(sh_sio_socket_t *sock, const char *event, const sh_sio_args_t *args,
                          int64_t ack_id, void *data)
{
    if (!strcmp(event, "message")) {
        sh_sio_socket_emit(sock, "message-back", args->args, args->bins, args->nbins, NULL, NULL,
                           NULL);
    } else if (!strcmp(event, "message-with-ack")) {
        if (ack_id >= 0)
            sh_sio_socket_ack(sock, ack_id, args->args, args->bins, args->nbins);
    } else if (!strcmp(event, "request-ack")) {
        sh_sio_socket_emit(sock, "ack-request", args->args, args->bins, args->nbins, on_client_ack,
                           NULL, NULL);
    }
}

static const sh_sio_nsp_handler_t echo_nsp = {
    .on_connected = echo_on_connected,
    .on_event = echo_on_event,
};

/* ---- the app ---- */

static void echo_destroy(void *p)
{
    echo_app_t *app = p;
    /* Engine.IO first: its sessions' on_close still reach the layers above. */
    sh_eio_server_free(app->raw);
    sh_eio_server_free(app->eio);
    sh_loop_run_deferred(app->ctx->loop); /* deferred socket ends */
    sh_hub_free(app->hub);
    sh_sio_server_free(app->sio);
    sh_app_origins_free(app->origins);
    free(app);
}

static void *echo_create(sh_ctx_t *ctx, sh_buf_t *err)
{
    const sh_config_t *cfg = ctx->cfg;
    echo_app_t *app = sh_new0(echo_app_t);
    app->ctx = ctx;
    app->origins = sh_app_origins(cfg);
    sh_eio_options_t o;
    sh_app_eio_options(cfg, app->origins, &o, "/engine.io/");
    app->raw = sh_eio_server_new(ctx->loop, ctx->http, &o, &raw_handler, app, err);
    if (!app->raw)
        goto fail;
    sh_sio_options_t so = {.connect_timeout = (uint64_t)cfg->connect_timeout_ms};
    app->sio = sh_sio_server_new(ctx->loop, &so);
    app->hub = sh_hub_new(app->sio);
    sh_hub_add_nsp(app->hub, "/", &echo_nsp, app);
    sh_hub_add_nsp(app->hub, "/custom", &echo_nsp, app);
    sh_app_eio_options(cfg, app->origins, &o, sh_config_path(cfg));
    app->eio = sh_eio_server_new(ctx->loop, ctx->http, &o, sh_sio_eio_handler(), app->sio, err);
    if (!app->eio)
        goto fail;
    sh_info("echo app: Engine.IO echo at /engine.io/, Socket.IO echo at %s", o.path);
    return app;
fail:
    echo_destroy(app);
    return NULL;
}

static void echo_begin_shutdown(void *p)
{
    echo_app_t *app = p;
    sh_eio_server_close_all(app->raw);
    sh_eio_server_close_all(app->eio);
}

static size_t echo_active(void *p)
{
    echo_app_t *app = p;
    return sh_eio_server_active(app->raw) + sh_eio_server_active(app->eio);
}

const sh_app_ops_t sh_app_echo = {
    .name = "echo",
    .create = echo_create,
    .begin_shutdown = echo_begin_shutdown,
    .active = echo_active,
    .destroy = echo_destroy,
    .reload = NULL,
};
