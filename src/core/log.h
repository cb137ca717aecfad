/* log.h — one line per event worth knowing, to stderr.
 *
 * Under supervisord and systemd stderr is the log; the supervisor adds the
 * timestamp, but a wall-clock stamp is printed too so a terminal run reads
 * the same. Format: "2026-11-25T12:00:00.123Z siohubd[pid] LEVEL message".
 * The level threshold is process-wide configuration set once at start-up
 * (the one tolerated mutable global: it is written before the loop runs and
 * only read after), so any layer can log without a context pointer.
 */
#ifndef SH_CORE_LOG_H
#define SH_CORE_LOG_H

#include <stdint.h>

typedef enum {
    SH_LOG_DEBUG = 0,
    SH_LOG_INFO = 1,
    SH_LOG_WARN = 2,
    SH_LOG_ERROR = 3,
} sh_log_level_t;

void sh_log_set_level(sh_log_level_t level);
sh_log_level_t sh_log_get_level(void);
/* Parses "debug", "info", "warn"/"warning", "error"; -1 if unknown. */
int sh_log_level_parse(const char *s);

void sh_log(sh_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define sh_debug(...)                                                                              \
    do {                                                                                           \
        if (sh_log_get_level() <= SH_LOG_DEBUG)                                                    \
            sh_log(SH_LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)
/* Lines a peer can cause at will (a refused request, a malformed payload)
 * go out at their level at most once per SH_LOG_LIMIT_MS per kind, the
 * line saying how many of its kind went to debug level since; the rest go
 * to debug level. So the default log shows that clients are being turned
 * away and why, and neither a hostile client nor a restart (after which
 * every browser comes back once with its old session id) floods it. One
 * zeroed sh_log_limit_t per kind of line. */
#define SH_LOG_LIMIT_MS 10000

typedef struct sh_log_limit {
    uint64_t last_ms; /* monotonic ms of the last line at its level; 0: none yet */
    unsigned held;    /* lines of the kind sent to debug level since */
} sh_log_limit_t;

/* The level the next line of lim's kind goes out at, at now_ms (monotonic):
 * level when none went out at it in the last SH_LOG_LIMIT_MS, with *held
 * set to how many were sent to debug level in between (and the count
 * restarted); SH_LOG_DEBUG otherwise, counted. */
sh_log_level_t sh_log_limit_level(sh_log_limit_t *lim, sh_log_level_t level, uint64_t now_ms,
                                  unsigned *held);
/* Logs fmt at level, or at debug level, as sh_log_limit_level decides. */
void sh_log_limited(sh_log_limit_t *lim, sh_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define sh_info(...)  sh_log(SH_LOG_INFO, __VA_ARGS__)
#define sh_warn(...)  sh_log(SH_LOG_WARN, __VA_ARGS__)
#define sh_error(...) sh_log(SH_LOG_ERROR, __VA_ARGS__)

#endif
