/* app/app.h — the application behind the Socket.IO server, chosen once at
 * start-up from the config (`app = echo | openwebui`).
 *
 * An application builds its Engine.IO/Socket.IO servers and HTTP routes on
 * the shared context and tears them down again. Shutdown is two steps so
 * close packets reach clients: begin_shutdown() closes sessions and the
 * loop keeps running until active() is 0 (or a deadline passes); then
 * destroy() frees whatever is left.
 */
#ifndef SH_APP_APP_H
#define SH_APP_APP_H

#include <stddef.h>

#include "config/config.h"
#include "core/buf.h"
#include "engineio/server.h"
#include "http/server.h"
#include "loop/loop.h"

typedef struct sh_ctx {
    sh_loop_t *loop;
    sh_http_t *http;
    const sh_config_t *cfg;
} sh_ctx_t;

typedef struct sh_app_ops {
    const char *name;
    /* Returns the app's state, or NULL with a reason in err. */
    void *(*create)(sh_ctx_t *ctx, sh_buf_t *err);
    void (*begin_shutdown)(void *app);
    /* Sessions and connections not yet fully closed. */
    size_t (*active)(void *app);
    /* Frees everything; called after the HTTP layer is gone. */
    void (*destroy)(void *app);
    /* SIGHUP: re-read what can be re-read (NULL: nothing). */
    void (*reload)(void *app);
} sh_app_ops_t;

extern const sh_app_ops_t sh_app_echo;
extern const sh_app_ops_t sh_app_openwebui;

/* Helpers shared by the apps. */
/* The allowed Origins as sh_eio_options_t wants them: NULL for any, else a
 * NULL-terminated copy (free with sh_app_origins_free). */
char **sh_app_origins(const sh_config_t *cfg);
void sh_app_origins_free(char **origins);
/* Engine.IO options from the config, for a server at path. */
void sh_app_eio_options(const sh_config_t *cfg, char **origins, sh_eio_options_t *o,
                        const char *path);

#endif
