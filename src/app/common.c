/* Helpers every app uses to turn the config into server options. */
#include <stdlib.h>

#include "app/app.h"
#include "core/alloc.h"
#include "socketio/sse.h"

void sh_app_eio_options(const sh_config_t *cfg, char **origins, sh_eio_options_t *o,
                        const char *path)
{
    unsigned t = 0;
    if (cfg->transports & SH_CONFIG_TRANSPORT_POLLING)
        t |= SH_EIO_TRANSPORT_POLLING;
    if (cfg->transports & SH_CONFIG_TRANSPORT_WEBSOCKET)
        t |= SH_EIO_TRANSPORT_WEBSOCKET;
    *o = (sh_eio_options_t){
        .path = path,
        .transports = t,
        .ping_interval = (uint64_t)cfg->ping_interval_ms,
        .ping_timeout = (uint64_t)cfg->ping_timeout_ms,
        .upgrade_timeout = (uint64_t)cfg->upgrade_timeout_ms,
        .max_payload = cfg->max_payload,
        .output_limit = cfg->output_queue_limit,
        .origins = (const char *const *)origins,
        .sse_grace = (uint64_t)cfg->sse_grace_ms,
        .sse_buffer = cfg->sse_buffer,
        .sse_buffer_events = (size_t)cfg->sse_buffer_events,
        .sse_render = sh_sio_sse_render,
    };
}

char **sh_app_origins(const sh_config_t *cfg)
{
    if (cfg->cors_allow_origin.any)
        return NULL;
    char **v = sh_calloc(cfg->cors_allow_origin.n + 1, sizeof(char *));
    for (size_t i = 0; i < cfg->cors_allow_origin.n; i++)
        v[i] = sh_strdup(cfg->cors_allow_origin.v[i]);
    return v;
}

void sh_app_origins_free(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}
