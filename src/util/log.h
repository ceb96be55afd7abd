/* SPDX-License-Identifier: MIT */
/*
 * util/log.h - CoreDNS-shaped process log.
 *
 * Lines look exactly like CoreDNS's: no timestamp, a level tag, and for
 * plugins a "plugin/NAME: " prefix:
 *
 *     [INFO] plugin/reload: Running configuration SHA512 = ...
 *     [ERROR] plugin/errors: 2 example.org. A: forward: ...
 *
 * Every line goes to stdout with one write(2), so lines from several
 * threads never interleave.  Any thread may call these functions.
 */
#ifndef CND_UTIL_LOG_H
#define CND_UTIL_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum {
    CND_LOG_DEBUG = 0,
    CND_LOG_INFO,
    CND_LOG_WARNING,
    CND_LOG_ERROR,
    CND_LOG_FATAL
} cnd_log_level_t;

/* Print one line at @lvl; @plugin is NULL for core lines.  FATAL lines exit
 * the process with status 1 after printing. */
void cnd_log(cnd_log_level_t lvl, const char *plugin, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cnd_vlog(cnd_log_level_t lvl, const char *plugin, const char *fmt,
              va_list ap);

/* Print @line (no newline) as it is, with a newline: the query log. */
void cnd_log_raw(const char *line, size_t len);

/* Debug lines are printed only after cnd_log_debug(true) (the debug
 * plugin).  Check cnd_log_debug_on() before formatting anything costly. */
void cnd_log_debug(bool on);
bool cnd_log_debug_on(void);

/* Write to @fd instead of stdout (tests). */
void cnd_log_set_fd(int fd);

#define CND_LOG_INFO(...)  cnd_log(CND_LOG_INFO, NULL, __VA_ARGS__)
#define CND_LOG_WARN(...)  cnd_log(CND_LOG_WARNING, NULL, __VA_ARGS__)
#define CND_LOG_ERR(...)   cnd_log(CND_LOG_ERROR, NULL, __VA_ARGS__)
#define CND_LOG_FATAL(...) cnd_log(CND_LOG_FATAL, NULL, __VA_ARGS__)

#endif
