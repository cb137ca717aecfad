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
#define sh_info(...)  sh_log(SH_LOG_INFO, __VA_ARGS__)
#define sh_warn(...)  sh_log(SH_LOG_WARN, __VA_ARGS__)
#define sh_error(...) sh_log(SH_LOG_ERROR, __VA_ARGS__)

#endif
