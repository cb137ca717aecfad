#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static sh_log_level_t log_level = SH_LOG_INFO;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void sh_log_set_level(sh_log_level_t level)
{
    log_level = level;
}

sh_log_level_t sh_log_get_level(void)
{
    return log_level;
}

int sh_log_level_parse(const char *s)
{
    if (!strcasecmp(s, "debug"))
        return SH_LOG_DEBUG;
    if (!strcasecmp(s, "info"))
        return SH_LOG_INFO;
    if (!strcasecmp(s, "warn") || !strcasecmp(s, "warning"))
        return SH_LOG_WARN;
    if (!strcasecmp(s, "error"))
        return SH_LOG_ERROR;
    return -1;
}

void sh_log(sh_log_level_t level, const char *fmt, ...)
{
    if (level < log_level)
        return;
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ siohubd[%d] %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(tv.tv_usec / 1000), (int)getpid(), level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    /* Control characters from peers must not forge log lines. */
    for (size_t i = (size_t)n; i < len; i++)
        if ((unsigned char)line[i] < 0x20)
            line[i] = '?';
    line[len++] = '\n';
    /* One write() per line keeps lines whole when several processes share
     * the supervisor's pipe. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

sh_log_level_t sh_log_limit_level(sh_log_limit_t *lim, sh_log_level_t level, uint64_t now_ms,
                                  unsigned *held)
{
    if (lim->last_ms && now_ms - lim->last_ms < SH_LOG_LIMIT_MS) {
        lim->held++;
        return SH_LOG_DEBUG;
    }
    /* 0 means "none yet": a clock that reads 0 becomes 1. */
    lim->last_ms = now_ms ? now_ms : 1;
    *held = lim->held;
    lim->held = 0;
    return level;
}

void sh_log_limited(sh_log_limit_t *lim, sh_log_level_t level, const char *fmt, ...)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    uint64_t now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    unsigned held = 0;
    sh_log_level_t at = sh_log_limit_level(lim, level, now_ms, &held);
    if (at < log_level)
        return;
    char text[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (held)
        sh_log(at, "%s (and %u more like it since the last such line, at debug level)", text, held);
    else
        sh_log(at, "%s", text);
}
