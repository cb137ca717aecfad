/* config/internal.h — what config.c (the machinery) and options.c (the
 * table) share; not for other modules. */
#ifndef SH_CONFIG_INTERNAL_H
#define SH_CONFIG_INTERNAL_H

#include <stdint.h>

#include "config/config.h"
#include "core/buf.h"

#define MS_SECOND INT64_C(1000)
#define MS_MINUTE (60 * MS_SECOND)
#define MS_HOUR   (60 * MS_MINUTE)
#define MS_DAY    (24 * MS_HOUR)
#define KIB       INT64_C(1024)
#define MIB       (1024 * KIB)
#define GIB       (1024 * MIB)

/* Room for the table's entries in fixed arrays (options.c checks it). */
#define SH_CONFIG_MAX_OPTIONS 128

/* The env_map of ENABLE_WEBSOCKET_SUPPORT. */
int sh_config_env_websocket_support(const char *value, sh_buf_t *out, sh_buf_t *err);

#endif
