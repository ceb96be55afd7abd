/* SPDX-License-Identifier: MIT */
/*
 * core/server.h - the serving process: sockets, workers, signals, stop.
 */
#ifndef CND_CORE_SERVER_H
#define CND_CORE_SERVER_H

#include "core/conf.h"

/* Serve @conf until SIGTERM or SIGINT: bind every listener (reporting
 * failures on stderr), start the workers, print CoreDNS's start-up lines
 * unless -quiet, write @pidfile when not NULL, then stop gracefully.
 * Takes over the caller's reference to @conf.  Returns the process exit
 * status (0 after a graceful stop, 1 when serving could not start). */
int cnd_server_run(const cnd_opts_t *opts, cnd_conf_t *conf,
                   const char *pidfile);

/* The snapshot being served, or NULL.  Main thread. */
const cnd_conf_t *cnd_server_conf(void);

/* candor's version and build line ("candor-0.1.0", "linux/x86_64, ..."). */
extern const char cnd_version[];
const char *cnd_build_line(void);

#endif
