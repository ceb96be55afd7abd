/* SPDX-License-Identifier: MIT */
/*
 * util/log.c - CoreDNS-shaped process log.
 *
 * A line is formatted into a stack buffer and written with one write(2);
 * lines longer than the buffer are cut (with "...") rather than split, so
 * concurrent writers never interleave.
 */
#include "util/log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

/* Process-wide; set once at start-up (tests may change it). */
static int log_fd = STDOUT_FILENO;
/* Any thread reads it; the debug plugin sets it at config time. */
static atomic_bool log_debug;

static const char *const log_tags[] = {
    [CND_LOG_DEBUG] = "[DEBUG] ",     [CND_LOG_INFO] = "[INFO] ",
    [CND_LOG_WARNING] = "[WARNING] ", [CND_LOG_ERROR] = "[ERROR] ",
    [CND_LOG_FATAL] = "[FATAL] ",
};


static void
log_write(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(log_fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}


void
cnd_vlog(cnd_log_level_t lvl, const char *plugin, const char *fmt, va_list ap)
{
    if (lvl == CND_LOG_DEBUG && !cnd_log_debug_on()) {
        return;
    }
    char buf[LOG_LINE_MAX];
    size_t max = sizeof(buf) - 1; /* room for the newline */
    int n = snprintf(buf, max, "%s", log_tags[lvl]);
    if (plugin != NULL) {
        n += snprintf(buf + n, max - (size_t)n, "plugin/%s: ", plugin);
    }
    int m = vsnprintf(buf + n, max - (size_t)n, fmt, ap);
    size_t len = (size_t)n + (m > 0 ? (size_t)m : 0);
    if (len >= max) {
        len = max - 1;
        memcpy(buf + len - 3, "...", 3);
    }
    buf[len++] = '\n';
    log_write(buf, len);
    if (lvl == CND_LOG_FATAL) {
        /* As Go's log.Fatal: no exit handlers.  Other threads are still
         * running; handlers that tear libraries down under them (GnuTLS's
         * destructor while a worker draws random IDs) abort the process. */
        fflush(stdout);
        _exit(1);
    }
}


void
cnd_log(cnd_log_level_t lvl, const char *plugin, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cnd_vlog(lvl, plugin, fmt, ap);
    va_end(ap);
}


void
cnd_log_raw(const char *line, size_t len)
{
    char buf[LOG_LINE_MAX];
    if (len > sizeof(buf) - 1) {
        len = sizeof(buf) - 1;
    }
    memcpy(buf, line, len);
    buf[len++] = '\n';
    log_write(buf, len);
}


void
cnd_log_debug(bool on)
{
    atomic_store(&log_debug, on);
}


bool
cnd_log_debug_on(void)
{
    return atomic_load_explicit(&log_debug, memory_order_relaxed);
}


void
cnd_log_set_fd(int fd)
{
    log_fd = fd;
}
